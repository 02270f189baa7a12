"""Opens .keras files written by Loom in Keras 3 and compares what Keras computes with them.

1. Keras -> Loom -> Keras: every Keras fixture of Tests/LoomCLITests, loaded and saved again by
   Loom (the round-trip test exports its copies when LOOM_EXPORT_DIR is set), opens in Keras and
   predicts what the original predicted.
2. `loom fit` -> Keras: each fit fixture trained by `loom fit` opens in Keras, which predicts what
   `loom predict` predicts, and continues training from Loom's optimizer state as Loom does.

Run after `swift build --build-tests -c release -Xswiftc -enable-testing`:
    KERAS_BACKEND=jax ../keras-ref/bin/python scripts/check_loom_files_in_keras.py
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "Tests", "LoomCLITests", "Fixtures")
LOOM = os.path.join(ROOT, ".build", "release", "loom")


def worst(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3)))


def loom(*args):
    subprocess.run([LOOM, *args], check=True)


def main():
    failures = 0
    export = tempfile.mkdtemp(prefix="loom-export-")
    subprocess.run(["swift", "test", "-c", "release", "-Xswiftc", "-enable-testing", "--skip-build",
                    "--filter", "RoundTripTests"], cwd=ROOT, check=True, env={**os.environ, "LOOM_EXPORT_DIR": export},
                   stdout=subprocess.DEVNULL)
    print(f"Keras {keras.__version__}\n1. Keras -> Loom -> Keras: Keras's predictions from Loom's copy vs from the original")
    for folder in sorted(glob.glob(os.path.join(FIXTURES, "predict", "*"))):
        name = os.path.basename(folder)
        model = keras.saving.load_model(os.path.join(export, f"predict_{name}_model.keras"))
        xs = [np.load(p) for p in sorted(glob.glob(os.path.join(folder, "x*.npy")))]
        ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        ys = ys if isinstance(ys, list) else [ys]
        err = max(worst(y, np.load(p)) for y, p in zip(ys, sorted(glob.glob(os.path.join(folder, "y*.npy")))))
        failures += err > 1e-5
        print(f"   {name:12s} max relative difference {err:.2e}")
    print("2. loom fit -> Keras: predictions (Keras vs loom predict), then one more epoch in each (weights)")
    cases = json.load(open(os.path.join(FIXTURES, "fixtures.json")))["fit"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, c in sorted(cases.items()):
            folder = os.path.join(FIXTURES, "fit", name)
            x, y = os.path.join(folder, "x.npy"), os.path.join(folder, "y.npy")
            common = ["--batch-size", str(c["batch_size"]), "--no-shuffle", "--validation-split", str(c["validation_split"]),
                      "--verbose", "0"]
            trained, more, predicted = (os.path.join(tmp, f"{name}{s}") for s in (".keras", "-more.keras", ".npy"))
            loom("fit", os.path.join(folder, "before.keras"), "--x", x, "--y", y, "--epochs", str(c["epochs"]), *common,
                 "--save", trained)
            loom("predict", trained, "--input", x, "--output", predicted)
            loom("fit", trained, "--x", x, "--y", y, "--epochs", "1", *common, "--save", more)
            model = keras.saving.load_model(trained)
            prediction = worst(model.predict(np.load(x), verbose=0), np.load(predicted))
            model.fit(np.load(x), np.load(y), epochs=1, batch_size=c["batch_size"], shuffle=False,
                      validation_split=c["validation_split"], verbose=0)
            loom_more = keras.saving.load_model(more)
            weights = max(worst(a, b) for a, b in zip(loom_more.get_weights(), model.get_weights()))
            steps = (int(loom_more.optimizer.iterations.numpy()), int(model.optimizer.iterations.numpy()))
            failures += prediction > 1e-5 or weights > 1e-4 or steps[0] != steps[1]
            print(f"   {name:24s} predictions {prediction:.2e}  weights after one more epoch {weights:.2e}  steps {steps}")
    print("all within tolerance" if failures == 0 else f"{failures} case(s) out of tolerance")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

"""The Keras MNIST CNN (or MLP) trained by Keras 3 and by `loom train` from the same initial weights on
the same batches in the same order, so the two trajectories can be compared step for step
instead of over seeds. Dropout can be switched off (its masks cannot be shared), which leaves
only arithmetic: if the two agree without dropout, a difference in accuracy over seeds comes
from the random draws (initialization, dropout, shuffling), not from the training step.

Usage: KERAS_BACKEND=jax|tensorflow python benchmarks/same_start.py --loom .build/release/loom
       [--model cnn|mlp] [--epochs E] [--seed S] [--samples N] [--dropout] [--work DIR]
The CNN trains with Adam (1 epoch by default), the MLP with RMSprop (2 epochs by default), as in
benchmarks/mnist_training_vs_peers.sh; the batches come in the same order in every epoch.
Prints one JSON object: each side's mean training loss, test loss and accuracy, and for each weight
the largest difference between the two sides' final values, relative to the weight's largest value.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from mnist_training_peers import load  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--loom", required=True)
    p.add_argument("--model", default="cnn", choices=["cnn", "mlp"])
    p.add_argument("--epochs", type=int, default=None, help="default: 1 for the CNN, 2 for the MLP")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--samples", type=int, default=60000, help="training samples (one epoch over them)")
    p.add_argument("--dropout", action="store_true", help="keep the model's dropout layers")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data", default="datasets/mnist")
    p.add_argument("--work", default=None)
    args = p.parse_args()
    import keras
    from keras import layers

    work = os.path.abspath(args.work or tempfile.mkdtemp())
    os.makedirs(work, exist_ok=True)
    mlp = args.model == "mlp"
    epochs = args.epochs or (2 if mlp else 1)
    x, y, xt, yt = load(args.data, mlp)
    order = np.random.default_rng(args.seed).permutation(len(x))[:args.samples]
    x, y = x[order], y[order].astype(np.float32)
    np.save(f"{work}/x.npy", x)
    np.save(f"{work}/y.npy", y)
    np.save(f"{work}/xt.npy", xt)
    np.save(f"{work}/yt.npy", yt.astype(np.float32))

    keras.utils.set_random_seed(args.seed)
    rate = (lambda r: r) if args.dropout else (lambda r: 0.0)
    if mlp:
        model = keras.Sequential([keras.Input((784,)), layers.Dense(512, activation="relu"), layers.Dropout(rate(0.2)),
                                  layers.Dense(512, activation="relu"), layers.Dropout(rate(0.2)),
                                  layers.Dense(10, activation="softmax")])
    else:
        model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
                                  layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
                                  layers.Dropout(rate(0.25)), layers.Flatten(), layers.Dense(128, activation="relu"),
                                  layers.Dropout(rate(0.5)), layers.Dense(10, activation="softmax")])
    optimizer = "rmsprop" if mlp else "adam"
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(f"{work}/init.keras")
    history = model.fit(x, y, batch_size=128, epochs=epochs, shuffle=False, verbose=0)
    keras_test = model.evaluate(xt, yt, batch_size=128, verbose=0, return_dict=True)
    keras_weights = [np.asarray(w) for w in model.get_weights()]

    with open(f"{work}/job.yaml", "w") as f:
        f.write(f"""name: {args.model}-same-start
seed: {args.seed}
data:
  train: {{npy: {{x: x.npy, y: y.npy}}}}
  test: {{npy: {{x: xt.npy, y: yt.npy}}}}
model: {{file: init.keras}}
compile:
  optimizer: {optimizer}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
fit: {{epochs: {epochs}, batch_size: 128, shuffle: false, workers: {args.workers}, validation: test}}
""")
    run = f"{work}/run"
    subprocess.run([os.path.abspath(args.loom), "train", f"{work}/job.yaml", "--run-dir", run, "--verbose", "0"],
                   check=True, cwd=work)
    with open(f"{run}/metrics.jsonl") as f:
        loom_metrics = json.loads(f.read().splitlines()[-1])
    loom_model = keras.saving.load_model(f"{run}/model.keras")
    loom_weights = [np.asarray(w) for w in loom_model.get_weights()]
    differences = [round(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-12)), 5) for a, b in zip(keras_weights, loom_weights)]
    print(json.dumps({
        "keras": keras.__version__, "backend": keras.backend.backend(), "seed": args.seed, "samples": args.samples,
        "model": args.model, "epochs": epochs, "dropout": args.dropout,
        "keras_loss": history.history["loss"][-1], "loom_loss": loom_metrics["loss"],
        "keras_test_loss": keras_test["loss"], "loom_test_loss": loom_metrics["val_loss"],
        "keras_test_accuracy": keras_test["accuracy"], "loom_test_accuracy": loom_metrics["val_accuracy"],
        "weight_differences": differences}))


if __name__ == "__main__":
    sys.exit(main())

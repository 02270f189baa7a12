"""Keras 3 model configs, weights and predictions for Loom's model-config tests.

For each model: the config serialize_keras_object writes (a .keras file's config.json), its weights as a .weights.h5 file, inputs, and Keras's predictions. Loom
rebuilds the model from the config, writes the same config back, loads the weights and must
predict the same.

Run: KERAS_BACKEND=jax ../keras-ref/bin/python scripts/make_model_config_fixtures.py
Writes Tests/LoomModelsTests/Fixtures/model_configs.json, model_<name>.weights.h5 and model_<name>.keras
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LoomModelsTests", "Fixtures")


def arr(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "values": [float(v) for v in a.reshape(-1)]}


def models():
    mlp = keras.Sequential([keras.Input((6,)), layers.Dense(5, activation="relu", name="hidden"),
                            layers.BatchNormalization(name="norm"), layers.Dropout(0.3, name="drop"),
                            layers.Dense(3, activation="softmax", name="probs")], name="mlp")
    unbuilt = keras.Sequential([layers.Dense(4, activation="tanh", name="first"), layers.Dense(2, name="second")],
                               name="unbuilt")
    a = keras.Input((6,), name="a")
    b = keras.Input((6,), name="b")
    shared = layers.Dense(5, activation="tanh", name="shared")
    merged = layers.Concatenate(name="merge")([shared(a), shared(b)])
    inner = keras.Sequential([layers.Dense(4, activation="relu", name="inner_dense")], name="inner")
    out1 = layers.Dense(3, name="out1")(merged)
    out2 = layers.Dense(1, activation="sigmoid", name="out2")(inner(layers.BatchNormalization(name="bn")(merged)))
    two_heads = keras.Model([a, b], [out1, out2], name="two_heads")
    cnn = keras.Sequential([keras.Input((8, 8, 2)), layers.Conv2D(4, 3, activation="relu", name="conv"),
                            layers.MaxPooling2D(2, name="pool"), layers.Flatten(name="flat"), layers.Dense(3, name="out")],
                           name="cnn")
    return {"mlp": (mlp, [(5, 6)]), "unbuilt": (unbuilt, None), "two_heads": (two_heads, [(5, 6), (5, 6)]),
            "cnn": (cnn, [(5, 8, 8, 2)])}


def main():
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    out = {"keras_version": keras.__version__}
    for name, (model, input_shapes) in models().items():
        config = keras.saving.serialize_keras_object(model)
        entry = {"config": config}
        if input_shapes is not None:
            for w in model.weights:  # not the initializers' values, so loading is visible
                w.assign(rng.normal(size=w.shape).astype(np.float32) * 0.5 + (1.0 if "variance" in w.path else 0.0))
            xs = [rng.normal(size=s).astype(np.float32) for s in input_shapes]
            ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
            ys = ys if isinstance(ys, list) else [ys]
            model.save_weights(os.path.join(OUT, f"model_{name}.weights.h5"))
            model.save(os.path.join(OUT, f"model_{name}.keras"))
            entry.update({"inputs": [arr(x) for x in xs], "outputs": [arr(y) for y in ys]})
        out[name] = entry
    # A compiled model: Loom compiles it from compile_config and evaluates as Keras does.
    compiled = keras.Sequential([keras.Input((6,)), layers.Dense(8, activation="relu", name="h"),
                                 layers.Dense(3, activation="softmax", name="p")], name="compiled")
    compiled.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                     loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    x = rng.normal(size=(20, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=(20,)).astype(np.float32)
    compiled.fit(x, y, epochs=1, batch_size=10, shuffle=False, verbose=0)
    compiled.save(os.path.join(OUT, "model_compiled.keras"))
    out["compiled"] = {"config": keras.saving.serialize_keras_object(compiled), "x": arr(x), "y": arr(y),
                       "evaluate": {k: float(v) for k, v in compiled.evaluate(x, y, batch_size=10, verbose=0,
                                                                             return_dict=True).items()}}
    with open(os.path.join(OUT, "model_configs.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"), allow_nan=False)
    print("wrote model_configs.json and", [n for n in out if n != "keras_version"])


if __name__ == "__main__":
    main()

"""Reference training runs from Keras 3 for Loom's fit / evaluate tests.

Each case builds a small Sequential model, records its initial weights, compiles it with an
optimizer, a loss and metrics, fits it with shuffle off, and records the per-epoch history,
the final weights and evaluate's results. Loom rebuilds the model from the layer configs,
loads the same initial weights, trains the same way and must agree to 1e-4 relative.

Run: KERAS_BACKEND=jax ../keras-ref/bin/python scripts/make_training_fixtures.py
Writes Tests/LoomModelsTests/Fixtures/training.json.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, losses, metrics, optimizers, regularizers, constraints  # noqa: E402
from keras.optimizers import schedules  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LoomModelsTests", "Fixtures", "training.json")
N, FEATURES, CLASSES = 32, 4, 3


def arr(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "values": [float(v) for v in a.reshape(-1)]}


def data(kind, rng):
    x = rng.normal(size=(N, FEATURES)).astype(np.float32)
    if kind == "regression":
        y = rng.normal(size=(N, CLASSES))
    elif kind == "positive":
        y = rng.uniform(0.1, 2.0, size=(N, CLASSES))
    elif kind == "counts":
        y = rng.poisson(2.0, size=(N, CLASSES))
    elif kind == "binary":
        y = rng.integers(0, 2, size=(N, 1))
    elif kind == "multilabel":
        y = rng.integers(0, 2, size=(N, CLASSES))
    elif kind == "onehot":
        y = np.eye(CLASSES)[rng.integers(0, CLASSES, size=N)]
    elif kind == "sparse":
        y = rng.integers(0, CLASSES, size=(N,))
    elif kind == "distribution":
        y = rng.uniform(0.05, 1, size=(N, CLASSES))
        y = y / y.sum(axis=1, keepdims=True)
    elif kind == "signs":
        y = rng.choice([-1.0, 1.0], size=(N, CLASSES))
    else:
        raise ValueError(kind)
    return x, np.asarray(y, dtype=np.float32)


def mlp(units_out, out_activation="linear", hidden=5, hidden_activation="relu", **dense_kwargs):
    return [layers.Dense(hidden, activation=hidden_activation, **dense_kwargs),
            layers.Dense(units_out, activation=out_activation)]


CASES = []


def case(name, model_layers, optimizer, loss, kind, metric_names=(), epochs=3, batch_size=8, weighted=(), steps=None,
         **fit):
    """steps: sequences of that many time steps of FEATURES values (a trailing run of steps
    zeroed in some samples, for Masking) instead of FEATURES values per sample."""
    CASES.append(dict(name=name, layers=model_layers, optimizer=optimizer, loss=loss, kind=kind,
                      metrics=list(metric_names), weighted_metrics=list(weighted), epochs=epochs,
                      batch_size=batch_size, steps=steps, fit=fit))


# Optimizers (with mean squared error).
case("sgd", mlp(3), optimizers.SGD(learning_rate=0.1), losses.MeanSquaredError(), "regression", ["mae"])
case("sgd_momentum_nesterov", mlp(3), optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
     losses.MeanSquaredError(), "regression")
case("sgd_momentum_clipnorm", mlp(3), optimizers.SGD(learning_rate=0.05, momentum=0.9, clipnorm=0.5),
     losses.MeanSquaredError(), "regression")
case("sgd_global_clipnorm", mlp(3), optimizers.SGD(learning_rate=0.1, global_clipnorm=0.3),
     losses.MeanSquaredError(), "regression")
case("rmsprop", mlp(3), optimizers.RMSprop(), losses.MeanSquaredError(), "regression", ["mse"])
case("rmsprop_centered_momentum", mlp(3), optimizers.RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
     losses.MeanSquaredError(), "regression")
case("adam", mlp(3), optimizers.Adam(learning_rate=0.01), losses.MeanSquaredError(), "regression")
case("adam_amsgrad_clipvalue", mlp(3), optimizers.Adam(learning_rate=0.01, amsgrad=True, clipvalue=0.1),
     losses.MeanSquaredError(), "regression")
case("adamw", mlp(3), optimizers.AdamW(learning_rate=0.01, weight_decay=0.1), losses.MeanSquaredError(), "regression")
case("adagrad", mlp(3), optimizers.Adagrad(learning_rate=0.1), losses.MeanSquaredError(), "regression")
case("adadelta", mlp(3), optimizers.Adadelta(learning_rate=1.0), losses.MeanSquaredError(), "regression")
case("adamax", mlp(3), optimizers.Adamax(learning_rate=0.01), losses.MeanSquaredError(), "regression")
case("nadam", mlp(3), optimizers.Nadam(learning_rate=0.01), losses.MeanSquaredError(), "regression")
case("exponential_decay", mlp(3),
     optimizers.SGD(learning_rate=schedules.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5)),
     losses.MeanSquaredError(), "regression")
case("exponential_decay_staircase", mlp(3),
     optimizers.SGD(learning_rate=schedules.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5, staircase=True)),
     losses.MeanSquaredError(), "regression")
case("piecewise_constant", mlp(3),
     optimizers.SGD(learning_rate=schedules.PiecewiseConstantDecay([2, 6], [0.1, 0.05, 0.01])),
     losses.MeanSquaredError(), "regression")
case("cosine_decay_warmup", mlp(3),
     optimizers.Adam(learning_rate=schedules.CosineDecay(0.001, decay_steps=8, alpha=0.1, warmup_target=0.02, warmup_steps=3)),
     losses.MeanSquaredError(), "regression")
case("inverse_time", mlp(3),
     optimizers.SGD(learning_rate=schedules.InverseTimeDecay(0.1, decay_steps=2, decay_rate=0.5)),
     losses.MeanSquaredError(), "regression")

# Losses (with Adam) and the metrics that go with them.
adam = lambda: optimizers.Adam(learning_rate=0.01)  # noqa: E731
case("mean_absolute_error", mlp(3), adam(), losses.MeanAbsoluteError(), "regression", ["mse", "root_mean_squared_error"])
case("mean_absolute_percentage_error", mlp(3), adam(), losses.MeanAbsolutePercentageError(), "positive")
case("mean_squared_logarithmic_error", mlp(3, "softplus"), adam(), losses.MeanSquaredLogarithmicError(), "positive")
case("huber", mlp(3), adam(), losses.Huber(delta=0.5), "regression")
case("log_cosh", mlp(3), adam(), losses.LogCosh(), "regression")
case("binary_crossentropy", mlp(1, "sigmoid"), adam(), losses.BinaryCrossentropy(), "binary",
     ["accuracy", "precision", "recall", "auc"])
case("binary_crossentropy_logits_smoothing", mlp(1), adam(),
     losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1), "binary", ["binary_accuracy"])
case("binary_crossentropy_multilabel", mlp(3, "sigmoid"), adam(), losses.BinaryCrossentropy(), "multilabel", ["accuracy"])
case("binary_focal_crossentropy", mlp(1, "sigmoid"), adam(),
     losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.3, gamma=1.5), "binary")
case("categorical_crossentropy", mlp(3, "softmax"), adam(), losses.CategoricalCrossentropy(), "onehot",
     ["accuracy", "top_k_categorical_accuracy"])
case("categorical_crossentropy_logits_smoothing", mlp(3), adam(),
     losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2), "onehot", ["categorical_accuracy"])
case("sparse_categorical_crossentropy", mlp(3, "softmax"), adam(), losses.SparseCategoricalCrossentropy(), "sparse",
     ["accuracy"])
case("sparse_categorical_crossentropy_logits", mlp(3), adam(),
     losses.SparseCategoricalCrossentropy(from_logits=True), "sparse", ["sparse_categorical_accuracy"])
case("hinge", mlp(3, "tanh"), adam(), losses.Hinge(), "signs")
case("squared_hinge", mlp(3, "tanh"), adam(), losses.SquaredHinge(), "multilabel")
case("categorical_hinge", mlp(3), adam(), losses.CategoricalHinge(), "onehot")
case("kl_divergence", mlp(3, "softmax"), adam(), losses.KLDivergence(), "distribution")
case("poisson", mlp(3, "softplus"), adam(), losses.Poisson(), "counts")
# tanh, not relu: a sample whose hidden units are all off gets an all-zero output, where
# Keras's normalization has a NaN gradient on JAX.
case("cosine_similarity", mlp(3, hidden_activation="tanh"), adam(), losses.CosineSimilarity(), "regression")

# Regularizers, constraints and batch normalization.
case("kernel_bias_activity_regularizers",
     [layers.Dense(5, activation="relu", kernel_regularizer=regularizers.L1(0.01), bias_regularizer=regularizers.L2(0.02),
                   activity_regularizer=regularizers.L1L2(l1=0.01, l2=0.01)),
      layers.Dense(3, kernel_regularizer=regularizers.L1L2(l1=0.005, l2=0.01), bias_regularizer=regularizers.L1(0.01),
                   activity_regularizer=regularizers.L2(0.05))],
     optimizers.SGD(learning_rate=0.05), losses.MeanSquaredError(), "regression", ["mae"])
case("constraints",
     [layers.Dense(5, activation="relu", kernel_constraint=constraints.NonNeg(), bias_constraint=constraints.MaxNorm(0.5)),
      layers.Dense(4, activation="relu", kernel_constraint=constraints.UnitNorm(axis=0)),
      layers.Dense(3, kernel_constraint=constraints.MinMaxNorm(min_value=0.5, max_value=1.0, rate=0.5))],
     optimizers.Adam(learning_rate=0.05), losses.MeanSquaredError(), "regression")
case("batch_normalization",
     # No bias before BatchNormalization: its gradient is zero up to rounding, which Adam
     # would turn into steps of rounding noise.
     [layers.Dense(6, use_bias=False), layers.BatchNormalization(momentum=0.8), layers.Activation("relu"),
      layers.Dense(3, activation="softmax")],
     optimizers.Adam(learning_rate=0.01), losses.CategoricalCrossentropy(), "onehot", ["accuracy"])

# fit's own arguments.
case("validation_split", mlp(3, "softmax"), adam(), losses.SparseCategoricalCrossentropy(), "sparse", ["accuracy"],
     validation_split=0.25)
case("sample_weight", mlp(3), adam(), losses.MeanSquaredError(), "regression", ["mae"], weighted=["mse"],
     sample_weight=True)
case("class_weight", mlp(3, "softmax"), adam(), losses.SparseCategoricalCrossentropy(), "sparse", ["accuracy"],
     weighted=["sparse_categorical_accuracy"], class_weight={0: 1.0, 1: 2.0, 2: 0.5})
case("uneven_last_batch", mlp(3), adam(), losses.MeanSquaredError(), "regression", batch_size=12)

# Recurrent layers, trained through time.
case("lstm", [layers.LSTM(4), layers.Dense(3)], optimizers.Adam(learning_rate=0.01), losses.MeanSquaredError(),
     "regression", ["mae"], steps=6)
case("gru_stacked_sequences", [layers.GRU(4, return_sequences=True), layers.GRU(3, go_backwards=True),
                               layers.Dense(3, activation="softmax")],
     optimizers.RMSprop(learning_rate=0.01), losses.SparseCategoricalCrossentropy(), "sparse", ["accuracy"], steps=5)
case("gru_reset_before", [layers.GRU(4, reset_after=False, kernel_regularizer=regularizers.L2(0.01)), layers.Dense(3)],
     optimizers.Adam(learning_rate=0.01), losses.MeanSquaredError(), "regression", steps=5)
case("simple_rnn", [layers.SimpleRNN(5, recurrent_constraint=constraints.MaxNorm(1.0)), layers.Dense(3)],
     optimizers.SGD(learning_rate=0.05, momentum=0.9), losses.MeanSquaredError(), "regression", steps=4)
case("lstm_masked", [layers.Masking(0.0), layers.LSTM(4, return_sequences=True), layers.LSTM(3), layers.Dense(1, activation="sigmoid")],
     optimizers.Adam(learning_rate=0.01), losses.BinaryCrossentropy(), "binary", ["accuracy"], steps=6)


def loss_config(loss):
    """The loss's serialized form. Some Keras losses (Huber's delta) leave their arguments
    out of get_config; they are put back so Loom trains with the same ones."""
    config = keras.saving.serialize_keras_object(loss)
    for key, value in getattr(loss, "_fn_kwargs", {}).items():
        config["config"].setdefault(key, value)
    return config


def main():
    out = {"keras_version": keras.__version__, "backend": keras.backend.backend(), "cases": []}
    for i, c in enumerate(CASES):
        keras.utils.set_random_seed(100 + i)
        rng = np.random.default_rng(1000 + i)
        x, y = data(c["kind"], rng)
        input_shape = (FEATURES,)
        if c["steps"]:
            input_shape = (c["steps"], FEATURES)
            x = rng.normal(size=(N,) + input_shape).astype(np.float32)
            for i in range(0, N, 3):
                x[i, c["steps"] - 1 - i % 3:, :] = 0.0
        model = keras.Sequential([keras.Input(input_shape)] + c["layers"])
        initial = [w.numpy().copy() for w in model.weights]
        model.compile(optimizer=c["optimizer"], loss=c["loss"], metrics=c["metrics"],
                      weighted_metrics=c["weighted_metrics"] or None)
        fit = dict(c["fit"])
        sample_weight = None
        if fit.pop("sample_weight", False):
            sample_weight = rng.uniform(0.2, 2.0, size=(N,)).astype(np.float32)
        history = model.fit(x, y, epochs=c["epochs"], batch_size=c["batch_size"], shuffle=False, verbose=0,
                            sample_weight=sample_weight, **fit)
        final = [w.numpy().copy() for w in model.weights]
        evaluation = model.evaluate(x, y, batch_size=c["batch_size"], verbose=0, return_dict=True)
        out["cases"].append({
            "name": c["name"],
            "layers": [keras.saving.serialize_keras_object(l) for l in model.layers],
            "input_shape": [None, *input_shape],
            "weight_names": [w.path for w in model.weights],
            "initial_weights": [arr(w) for w in initial],
            "x": arr(x), "y": arr(y),
            "sample_weight": arr(sample_weight) if sample_weight is not None else None,
            "class_weight": {str(k): v for k, v in fit.get("class_weight", {}).items()} or None,
            "validation_split": fit.get("validation_split", 0.0),
            "optimizer": keras.saving.serialize_keras_object(model.optimizer),
            "loss": loss_config(c["loss"]),
            "metrics": c["metrics"], "weighted_metrics": c["weighted_metrics"],
            "epochs": c["epochs"], "batch_size": c["batch_size"],
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "final_weights": [arr(w) for w in final],
            "evaluate": {k: float(v) for k, v in evaluation.items()},
        })
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"), allow_nan=False)
    print(f"wrote {len(out['cases'])} cases to {OUT}")


if __name__ == "__main__":
    main()


def functional_case():
    """Two inputs, a shared layer, two outputs with their own losses, weights and metrics."""
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    shared = layers.Dense(5, activation="tanh", name="shared")
    merged = layers.Concatenate(name="merge")([shared(a), shared(b)])
    out1 = layers.Dense(3, name="out1")(merged)
    out2 = layers.Dense(1, activation="sigmoid", name="out2")(layers.Dense(4, activation="relu", name="hidden")(merged))
    model = keras.Model([a, b], [out1, out2])
    xa = rng.normal(size=(N, 4)).astype(np.float32)
    xb = rng.normal(size=(N, 4)).astype(np.float32)
    y1 = rng.normal(size=(N, 3)).astype(np.float32)
    y2 = rng.integers(0, 2, size=(N, 1)).astype(np.float32)
    initial = [w.numpy().copy() for w in model.weights]
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss=["mse", "binary_crossentropy"],
                  loss_weights=[1.0, 0.5], metrics=[["mae"], ["accuracy"]])
    history = model.fit([xa, xb], [y1, y2], epochs=3, batch_size=8, shuffle=False, verbose=0)
    evaluation = model.evaluate([xa, xb], [y1, y2], batch_size=8, verbose=0, return_dict=True)
    return {
        "weight_names": [w.path for w in model.weights],
        "initial_weights": [arr(w) for w in initial],
        "xa": arr(xa), "xb": arr(xb), "y1": arr(y1), "y2": arr(y2),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "final_weights": [arr(w.numpy()) for w in model.weights],
        "evaluate": {k: float(v) for k, v in evaluation.items()},
    }


def write_functional():
    path = os.path.join(os.path.dirname(OUT), "functional_training.json")
    with open(path, "w") as f:
        json.dump({"keras_version": keras.__version__, **functional_case()}, f, separators=(",", ":"), allow_nan=False)
    print(f"wrote {path}")


def callback_cases():
    """fit with callbacks that change the course of training; Loom builds the same callbacks."""
    runs = {
        "early_stopping": dict(epochs=30, callbacks=[keras.callbacks.EarlyStopping(
            monitor="loss", min_delta=0.02, patience=2, restore_best_weights=True)], lr=0.05),
        "early_stopping_val_baseline": dict(epochs=30, validation_split=0.25, callbacks=[keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=1, baseline=1.2)], lr=0.05),
        "reduce_lr_on_plateau": dict(epochs=10, callbacks=[keras.callbacks.ReduceLROnPlateau(
            monitor="loss", factor=0.5, patience=1, min_delta=0.03, cooldown=1, min_lr=0.02)], lr=0.2),
        "learning_rate_scheduler": dict(epochs=5, callbacks=[keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: lr * 0.5 if epoch >= 2 else lr)], lr=0.1),
    }
    out = {}
    for i, (name, run) in enumerate(runs.items()):
        keras.utils.set_random_seed(300 + i)
        rng = np.random.default_rng(300 + i)
        x, y = data("regression", rng)
        model = keras.Sequential([keras.Input((FEATURES,))] + mlp(3))
        initial = [w.numpy().copy() for w in model.weights]
        model.compile(optimizer=optimizers.SGD(learning_rate=run["lr"]), loss="mse")
        history = model.fit(x, y, epochs=run["epochs"], batch_size=8, shuffle=False, verbose=0,
                            callbacks=run["callbacks"], validation_split=run.get("validation_split", 0.0))
        out[name] = {
            "initial_weights": [arr(w) for w in initial], "x": arr(x), "y": arr(y), "learning_rate": run["lr"],
            "epochs": run["epochs"], "validation_split": run.get("validation_split", 0.0),
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "final_weights": [arr(w.numpy()) for w in model.weights],
        }
    path = os.path.join(os.path.dirname(OUT), "callback_training.json")
    with open(path, "w") as f:
        json.dump({"keras_version": keras.__version__, **out}, f, separators=(",", ":"), allow_nan=False)
    print(f"wrote {path}")


def weights_files():
    """Keras-written .weights.h5 files and the values they hold, for Loom's loadWeights."""
    keras.utils.set_random_seed(500)
    folder = os.path.dirname(OUT)
    mlp = keras.Sequential([keras.Input((4,)), layers.Dense(5, activation="relu"), layers.BatchNormalization(),
                            layers.Dropout(0.2), layers.Dense(3)])
    a = keras.Input((4,), name="a")
    inner = keras.Sequential([layers.Dense(2, name="inner_dense")], name="inner")
    nested = keras.Model(a, inner(layers.Dense(3, name="outer_dense")(a)), name="nested")
    inner.layers[0].kernel.assign(np.arange(6, dtype=np.float32).reshape(3, 2))
    out = {"keras_version": keras.__version__}
    for name, model in [("mlp", mlp), ("nested", nested)]:
        for w in model.weights:  # values Loom can check: not the initializers' defaults
            w.assign(np.random.default_rng(len(out)).normal(size=w.shape).astype(np.float32) + (1.5 if "variance" in w.path else 0))
        path = os.path.join(folder, f"keras_{name}.weights.h5")
        model.save_weights(path)
        out[name] = {"weight_paths": [w.path for w in model.weights], "weights": [arr(w.numpy()) for w in model.weights]}
    with open(os.path.join(folder, "weights_files.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"), allow_nan=False)
    print("wrote keras_mlp.weights.h5, keras_nested.weights.h5, weights_files.json")


if __name__ == "__main__":
    write_functional()
    callback_cases()
    weights_files()

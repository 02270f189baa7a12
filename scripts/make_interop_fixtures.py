"""Keras 3 .keras files, .npy inputs and Keras's results for the `loom` command-line tests.

predict/<name>/: models that together use every layer Loom supports (all weights set to random
values so loading is visible), saved as model.keras, with x0.npy, x1.npy, ... and Keras's
predictions y0.npy, y1.npy, ...
fit/<name>/: compiled models for `loom fit`: before.keras (compiled, never trained), mid.keras
(after the first epoch, with the optimizer's state), x.npy, y.npy, Keras's after.keras (after all
epochs, shuffle off) and history.json.
bad/: files a user could be handed: a Lambda holding Python bytecode, an unknown layer class, a
weights file with a weight missing, a truncated weights file, a size no machine can allocate.

Run: KERAS_BACKEND=jax ../keras-ref/bin/python scripts/make_interop_fixtures.py [CASE ...]
(with case names, only those are written, next to the existing fixtures)
Writes Tests/LoomCLITests/Fixtures/ (and fixtures.json with the Keras version and the cases).
"""
import io
import json
import os
import shutil
import sys
import zipfile

os.environ.setdefault("KERAS_BACKEND", "jax")
import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LoomCLITests", "Fixtures")


def predict_models():
    """Name -> (model, input shapes, integer inputs?)."""
    reg = dict(kernel_regularizer=keras.regularizers.L1L2(0.01, 0.02), bias_regularizer="l2",
               kernel_constraint=keras.constraints.MaxNorm(3.0), bias_constraint="non_neg")
    x = keras.Input((12,), name="features")
    h = layers.Dense(16, activation="relu", name="dense_in", **reg)(x)
    for layer in [layers.Dropout(0.3), layers.GaussianNoise(0.2), layers.GaussianDropout(0.2), layers.AlphaDropout(0.1),
                  layers.ActivityRegularization(l1=0.01, l2=0.01), layers.Reshape((4, 4)), layers.Permute((2, 1)),
                  layers.Flatten(), layers.RepeatVector(3), layers.Masking(mask_value=0.0), layers.LayerNormalization(),
                  layers.GlobalAveragePooling1D(), layers.Dense(8, kernel_constraint=keras.constraints.UnitNorm()),
                  layers.LeakyReLU(0.2), layers.ELU(0.5), layers.PReLU(), layers.ReLU(max_value=2.0, threshold=0.1),
                  layers.Rescaling(0.5, offset=0.1), layers.Identity(), layers.RMSNormalization(),
                  layers.UnitNormalization(), layers.BatchNormalization(),
                  layers.Dense(6, kernel_constraint=keras.constraints.MinMaxNorm(0.5, 1.5)),
                  layers.Activation("tanh"), layers.Softmax()]:
        h = layer(h)
    core = keras.Model(x, h, name="core")

    tokens = keras.Input((5,), dtype="int32", name="tokens")
    e = layers.Embedding(10, 4, mask_zero=True)(tokens)
    e = layers.GlobalAveragePooling1D()(e)
    embedding = keras.Model(tokens, layers.Dense(3)(e), name="embedding")

    conv1d = keras.Sequential([
        keras.Input((16, 3)), layers.Conv1D(4, 3, padding="same", dilation_rate=2, activation="relu"),
        layers.SpatialDropout1D(0.2), layers.ZeroPadding1D((1, 2)), layers.Cropping1D((2, 1)), layers.UpSampling1D(2),
        layers.DepthwiseConv1D(3, depth_multiplier=2), layers.SeparableConv1D(5, 3, padding="same"),
        layers.Conv1DTranspose(4, 3, strides=2), layers.MaxPooling1D(2), layers.AveragePooling1D(2, padding="same"),
        layers.Conv1D(6, 2, strides=2, padding="causal"), layers.GlobalMaxPooling1D(), layers.Dense(3)], name="conv1d")

    image = keras.Input((12, 12, 3), name="image")
    c = layers.Conv2D(6, 3, padding="same", activation="relu")(image)
    for layer in [layers.BatchNormalization(), layers.SpatialDropout2D(0.2), layers.ZeroPadding2D(((1, 0), (0, 1))),
                  layers.Cropping2D(((0, 1), (1, 0))), layers.UpSampling2D(2, interpolation="nearest"),
                  layers.DepthwiseConv2D(3, strides=2), layers.SeparableConv2D(8, 3, depth_multiplier=2),
                  layers.Conv2DTranspose(4, 3, strides=2, padding="same"), layers.MaxPooling2D(2),
                  layers.AveragePooling2D(2, strides=1), layers.GroupNormalization(groups=2)]:
        c = layer(c)
    conv2d = keras.Model(image, layers.Dense(3)(layers.Concatenate()([layers.GlobalAveragePooling2D()(c),
                                                                      layers.GlobalMaxPooling2D()(c)])), name="conv2d")

    volume = keras.Input((6, 6, 6, 2), name="volume")
    v = layers.Conv3D(4, 3, padding="same", activation="relu")(volume)
    for layer in [layers.SpatialDropout3D(0.2), layers.ZeroPadding3D(1), layers.Cropping3D(1), layers.UpSampling3D(2),
                  layers.Conv3DTranspose(3, 2, strides=2), layers.MaxPooling3D(2), layers.AveragePooling3D(2)]:
        v = layer(v)
    conv3d = keras.Model(volume, layers.Add()([layers.GlobalMaxPooling3D()(v), layers.GlobalAveragePooling3D()(v)]),
                         name="conv3d")

    a = keras.Input((8,), name="a")
    b = keras.Input((8,), name="b")
    shared = layers.Dense(6, activation="sigmoid", name="shared")
    sa, sb = shared(a), shared(b)
    inner = keras.Sequential([layers.Dense(5, activation="relu"), layers.Dense(4)], name="inner")
    merged = layers.Concatenate(name="all")([
        layers.Add()([sa, sb]), layers.Subtract()([sa, sb]), layers.Multiply()([sa, sb]), layers.Average()([sa, sb]),
        layers.Maximum()([sa, sb]), layers.Minimum()([sa, sb]), layers.Dot(axes=1, normalize=True)([sa, sb]),
        inner(a)])
    merging = keras.Model([a, b], [layers.Dense(2, name="left")(merged), layers.Dense(3, activation="softmax",
                                                                                      name="right")(merged)],
                          name="merging")
    seq = keras.Input((7, 3), name="sequence")
    masked = layers.Masking(0.0)(seq)
    forward = layers.Bidirectional(layers.LSTM(4, return_sequences=True, name="lstm"), name="bidirectional")(masked)
    per_step = layers.TimeDistributed(layers.Dense(4, activation="tanh"), name="per_step")(forward)
    backward = layers.GRU(3, go_backwards=True, return_sequences=True, reset_after=False, name="gru")(per_step)
    again = layers.LSTM(3, return_sequences=True, name="lstm_2")(backward)
    last = layers.SimpleRNN(5, name="simple_rnn")(again)
    recurrent = keras.Model(seq, layers.Dense(2, name="out")(last), name="recurrent")
    return {"padded": (padded_model(), [(5, 11, 11, 3)], False),
            "residual": (residual_model(), [(5, 10, 10, 3)], False), "core": (core, [(7, 12)], False), "embedding": (embedding, [(7, 5)], True),
            "conv1d": (conv1d, [(5, 16, 3)], False), "conv2d": (conv2d, [(4, 12, 12, 3)], False),
            "conv3d": (conv3d, [(3, 6, 6, 6, 2)], False), "merging": (merging, [(6, 8), (6, 8)], False),
            "recurrent": (recurrent, [(5, 7, 3)], False)}


def residual_model(name="residual"):
    """ResNet's patterns, each chain Loom fuses: Conv-BN-ReLU, Conv-BN, BN-ReLU, Conv-ReLU, with
    a value read twice (which must not fuse) and the ReLU as a layer and as an activation."""
    x = keras.Input((10, 10, 3), name="image")
    c = layers.Activation("relu")(layers.BatchNormalization(epsilon=1.001e-5)(layers.Conv2D(8, 3, strides=2, padding="same")(x)))
    a = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 1)(c)))
    a = layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(a))
    s = layers.BatchNormalization()(layers.Conv2D(8, 1)(c))
    y = layers.Activation("relu")(layers.Add()([a, s]))
    y = layers.ReLU()(layers.BatchNormalization()(y))
    z = layers.Conv2D(4, 3, activation="relu")(y)
    z = layers.Activation("relu")(layers.Conv2D(4, 1)(z))
    return keras.Model(x, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(z)), name=name)


def padded_model(name="padded"):
    """ZeroPadding before convolutions and max pooling, as ResNet's stem has it, which Loom runs
    as one op: symmetric and asymmetric, before a valid max pooling of signed values (the zeros
    take part in the maximum) and of a ReLU's output, and a padded value read twice (which must
    not fuse)."""
    x = keras.Input((11, 11, 3), name="image")
    p = layers.MaxPooling2D(3, strides=2)(layers.ZeroPadding2D(((1, 2), (2, 0)))(x))
    p = layers.Conv2D(8, 3, strides=2, activation="relu")(layers.ZeroPadding2D(((0, 1), (1, 1)))(p))
    c = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(6, 7, strides=2)(layers.ZeroPadding2D(3)(x))))
    c = layers.MaxPooling2D(3, strides=2)(layers.ZeroPadding2D(1)(c))
    q = layers.ZeroPadding2D(1)(c)
    q = layers.Add()([layers.Conv2D(6, 3)(q), layers.MaxPooling2D(3, strides=1)(q)])
    pooled = [layers.GlobalAveragePooling2D()(t) for t in (p, c, q)]
    return keras.Model(x, layers.Dense(3, activation="softmax")(layers.Concatenate()(pooled)), name=name)


def randomize(model, rng):
    # Not the initializers' values, so loading is visible; variances and norms kept positive.
    for w in model.weights:
        positive = "variance" in w.path
        values = rng.normal(size=w.shape) * 0.4 + (1.0 if positive else 0.0)
        w.assign(np.abs(values).astype(np.float32) if positive else values.astype(np.float32))


def write_predict(rng, cases):
    shared_rng = rng
    for name, (model, shapes, integer) in predict_models().items():
        # Models added later draw from their own stream, so the earlier fixtures stay as they were.
        own = {"recurrent": 7, "residual": 8, "padded": 10}
        rng = np.random.default_rng(own[name]) if name in own else shared_rng
        if ONLY and name not in ONLY:
            continue
        folder = os.path.join(OUT, "predict", name)
        os.makedirs(folder, exist_ok=True)
        randomize(model, rng)
        xs = [rng.integers(0, 10, size=s).astype(np.int32) if integer else rng.normal(size=s).astype(np.float32)
              for s in shapes]
        if integer:
            xs[0][:, -2:] = 0  # padding the mask hides
        if name == "recurrent":
            xs[0][0, -3:, :] = 0  # padded steps Masking hides
            xs[0][2, 1, :] = 0
        ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        ys = ys if isinstance(ys, list) else [ys]
        model.save(os.path.join(folder, "model.keras"))
        for i, v in enumerate(xs):
            np.save(os.path.join(folder, f"x{i}.npy"), v)
        for i, v in enumerate(ys):
            np.save(os.path.join(folder, f"y{i}.npy"), np.asarray(v, dtype=np.float32))
        cases["predict"][name] = {"inputs": len(xs), "outputs": len(ys),
                                  "layers": sorted({type(l).__name__ for l in all_layers(model)})}


def all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def fit_cases():
    """Name -> (layers builder, optimizer, loss, metrics, label kind, epochs, batch size, validation split)."""
    def mlp(out, activation, hidden=6):
        return lambda: [keras.Input((5,)), layers.Dense(hidden, activation="relu", kernel_regularizer="l2"),
                        layers.Dense(out, activation=activation)]

    def cnn():
        return [keras.Input((6, 6, 1)), layers.Conv2D(3, 3, activation="relu"), layers.BatchNormalization(),
                layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(3, activation="softmax")]

    sched = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=3, decay_rate=0.8)
    return {
        "sgd_nesterov_mse": (mlp(2, None), lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True), "mse",
                             ["mae"], "regression", 3, 8, 0.0),
        "adam_categorical": (mlp(3, "softmax"), lambda: keras.optimizers.Adam(0.01), "categorical_crossentropy",
                             ["accuracy"], "onehot", 3, 8, 0.25),
        "rmsprop_sparse_logits": (mlp(3, None), lambda: keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
                                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"], "sparse",
                                  3, 8, 0.0),
        "adagrad_binary": (mlp(1, "sigmoid"), lambda: keras.optimizers.Adagrad(0.1), "binary_crossentropy",
                           ["accuracy"], "binary", 3, 8, 0.0),
        "adamw_huber": (mlp(2, None), lambda: keras.optimizers.AdamW(0.01, weight_decay=0.01, amsgrad=True), "huber",
                        ["mse"], "regression", 3, 8, 0.0),
        "adadelta_mae": (mlp(2, None), lambda: keras.optimizers.Adadelta(1.0), "mae", [], "regression", 3, 8, 0.0),
        "adamax_kld": (mlp(3, "softmax"), lambda: keras.optimizers.Adamax(0.02), "kl_divergence", [], "onehot", 3, 8,
                       0.0),
        "nadam_schedule_cce": (mlp(3, "softmax"), lambda: keras.optimizers.Nadam(sched), "categorical_crossentropy",
                               ["accuracy"], "onehot", 3, 8, 0.0),
        # The other losses of Keras's catalogue, on optimizers above.
        "sgd_mape": (mlp(2, "softplus"), lambda: keras.optimizers.SGD(0.01), "mape", ["mae"], "positive", 3, 8, 0.0),
        "adam_msle": (mlp(2, "softplus"), lambda: keras.optimizers.Adam(0.01), "msle", [], "positive", 3, 8, 0.0),
        "rmsprop_poisson": (mlp(2, "softplus"), lambda: keras.optimizers.RMSprop(0.01), "poisson", [], "positive", 3, 8,
                            0.0),
        "adagrad_cosine": (mlp(2, None), lambda: keras.optimizers.Adagrad(0.1), "cosine_similarity", [], "regression", 3,
                           8, 0.0),
        "nadam_log_cosh": (mlp(2, None), lambda: keras.optimizers.Nadam(0.01), "log_cosh", [], "regression", 3, 8, 0.0),
        "sgd_hinge": (mlp(1, "tanh"), lambda: keras.optimizers.SGD(0.05, momentum=0.5), "hinge", [], "binary", 3, 8, 0.0),
        "adamax_squared_hinge": (mlp(1, "tanh"), lambda: keras.optimizers.Adamax(0.02), "squared_hinge", [], "binary",
                                 3, 8, 0.0),
        "adadelta_categorical_hinge": (mlp(3, "softmax"), lambda: keras.optimizers.Adadelta(1.0), "categorical_hinge",
                                       [], "onehot", 3, 8, 0.0),
        "adamw_binary_focal": (mlp(1, "sigmoid"), lambda: keras.optimizers.AdamW(0.01),
                               keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=1.5),
                               ["accuracy"], "binary", 3, 8, 0.0),
        "adam_cnn_batchnorm": (cnn, lambda: keras.optimizers.Adam(0.01), "categorical_crossentropy", ["accuracy"],
                               "onehot", 3, 8, 0.0),
        "sgd_residual": (lambda: residual_model("sgd_residual"), lambda: keras.optimizers.SGD(0.05, momentum=0.9),
                         "categorical_crossentropy", ["accuracy"], "onehot", 3, 12, 0.0),
        "sgd_padded": (lambda: padded_model("sgd_padded"), lambda: keras.optimizers.SGD(0.05, momentum=0.9),
                       "categorical_crossentropy", ["accuracy"], "onehot", 3, 12, 0.0),
    }


def labels(kind, n, rng):
    if kind == "positive":
        return rng.uniform(0.5, 2.0, size=(n, 2)).astype(np.float32)
    if kind == "regression":
        return rng.normal(size=(n, 2)).astype(np.float32)
    if kind == "binary":
        return rng.integers(0, 2, size=(n, 1)).astype(np.float32)
    classes = rng.integers(0, 3, size=n)
    if kind == "sparse":
        return classes.astype(np.int32)
    return np.eye(3, dtype=np.float32)[classes]


def write_fit(rng, cases):
    for name, (build, optimizer, loss, metrics, kind, epochs, batch, split) in fit_cases().items():
        if ONLY and name not in ONLY:
            continue
        # Cases added later draw from their own stream, so the earlier fixtures stay as they were.
        own = {"sgd_residual": 9, "sgd_padded": 11}
        rng = np.random.default_rng(own[name]) if name in own else rng
        folder = os.path.join(OUT, "fit", name)
        os.makedirs(folder, exist_ok=True)
        model = build()
        model = model if isinstance(model, keras.Model) else keras.Sequential(model, name=name)
        model.compile(optimizer=optimizer(), loss=loss, metrics=metrics or None)
        n = 36
        x = rng.normal(size=(n,) + tuple(model.input_shape[1:])).astype(np.float32)
        y = labels(kind, n, rng)
        np.save(os.path.join(folder, "x.npy"), x)
        np.save(os.path.join(folder, "y.npy"), y)
        before = os.path.join(folder, "before.keras")
        model.save(before)
        full = keras.saving.load_model(before)
        history = full.fit(x, y, epochs=epochs, batch_size=batch, shuffle=False, validation_split=split, verbose=0)
        full.save(os.path.join(folder, "after.keras"))
        with open(os.path.join(folder, "history.json"), "w") as f:
            json.dump({k: [float(v) for v in vs] for k, vs in history.history.items()}, f)
        resumed = keras.saving.load_model(before)
        resumed.fit(x, y, epochs=1, batch_size=batch, shuffle=False, validation_split=split, verbose=0)
        resumed.save(os.path.join(folder, "mid.keras"))
        cases["fit"][name] = {"epochs": epochs, "batch_size": batch, "validation_split": split}


def rewrite(source, target, config=None, weights=None):
    """Copies a .keras archive with config.json and/or model.weights.h5 replaced."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json" and config is not None:
                data = config(data.decode()).encode()
            if item.filename == "model.weights.h5" and weights is not None:
                data = weights(data)
            zout.writestr(item, data)


def write_bad(cases):
    folder = os.path.join(OUT, "bad")
    os.makedirs(folder, exist_ok=True)
    keras.utils.set_random_seed(3)
    lam = keras.Sequential([keras.Input((3,)), layers.Dense(2), layers.Lambda(lambda t: t * 2.0, name="doubler")],
                           name="with_lambda")
    keras.config.enable_unsafe_deserialization()
    lam.save(os.path.join(folder, "lambda_bytecode.keras"))
    plain = os.path.join(folder, "plain.keras")
    keras.Sequential([keras.Input((3,)), layers.Dense(4, name="d1"), layers.Dense(2, name="d2")], name="plain").save(plain)
    np.save(os.path.join(folder, "x_plain.npy"), np.ones((4, 3), dtype=np.float32))
    np.save(os.path.join(folder, "x_wrong_shape.npy"), np.ones((4, 5), dtype=np.float32))
    rewrite(plain, os.path.join(folder, "unknown_layer.keras"),
            config=lambda c: c.replace('"class_name": "Dense"', '"class_name": "FancyDense"', 1))
    rewrite(plain, os.path.join(folder, "huge_units.keras"),
            config=lambda c: c.replace('"units": 4', '"units": 4000000000000', 1))
    rewrite(plain, os.path.join(folder, "huge_input.keras"),
            config=lambda c: c.replace('[null, 3]', '[null, 2000000000, 2000000000, 3]'))

    def drop_bias(data):
        buffer = io.BytesIO(data)
        with h5py.File(buffer, "r+") as f:
            del f["layers/dense_1/vars/1"]
        return buffer.getvalue()

    def wrong_shape(data):
        buffer = io.BytesIO(data)
        with h5py.File(buffer, "r+") as f:
            del f["layers/dense/vars/0"]
            f["layers/dense/vars"].create_dataset("0", data=np.zeros((3, 5), np.float32))
        return buffer.getvalue()

    rewrite(plain, os.path.join(folder, "missing_weight.keras"), weights=drop_bias)
    rewrite(plain, os.path.join(folder, "wrong_weight_shape.keras"), weights=wrong_shape)
    rewrite(plain, os.path.join(folder, "truncated_weights.keras"), weights=lambda d: d[: len(d) // 2])
    with open(plain, "rb") as f:
        data = f.read()
    with open(os.path.join(folder, "truncated_zip.keras"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(os.path.join(folder, "not_a_zip.keras"), "wb") as f:
        f.write(b"PK\x03\x04 this is not really a zip archive" * 3)
    cases["bad"] = sorted(os.listdir(folder))


# Case names given on the command line: only these are written, into the existing fixtures.
ONLY = set(sys.argv[1:])


def main():
    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)
    if ONLY:
        with open(os.path.join(OUT, "fixtures.json")) as f:
            cases = json.load(f)
        assert cases["keras_version"] == keras.__version__, "the other fixtures were made by another Keras"
        write_predict(rng, cases)
        write_fit(rng, cases)
    else:
        if os.path.isdir(OUT):
            shutil.rmtree(OUT)
        os.makedirs(OUT)
        cases = {"keras_version": keras.__version__, "predict": {}, "fit": {}}
        write_predict(rng, cases)
        write_fit(rng, cases)
        write_bad(cases)
    with open(os.path.join(OUT, "fixtures.json"), "w") as f:
        json.dump(cases, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()

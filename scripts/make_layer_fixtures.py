"""Reference fixtures for LoomLayers from real Keras 3 (JAX backend).

Run:  KERAS_BACKEND=jax ../keras-ref/bin/python scripts/make_layer_fixtures.py
Writes Tests/LoomLayersTests/Fixtures/*.json: for each case the serialized config Keras writes,
the inputs, the weights (set to fixed random values so results do not depend on Keras's RNG),
the outputs and output masks, with the Keras and JAX versions that made them.
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import jax
import keras
import numpy as np
from keras import constraints as C
from keras import initializers as I
from keras import layers as L
from keras import regularizers as R

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LoomLayersTests", "Fixtures")
rng = np.random.default_rng(20261124)


def array(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "values": [float(v) for v in a.reshape(-1)]}


def tensor_input(shape, low=-2.0, high=2.0, integers=None):
    if integers is not None:
        return rng.integers(0, integers, size=shape).astype(np.float32)
    return rng.uniform(low, high, size=shape).astype(np.float32)


def layer_case(label, layer, inputs, masks=None, training=False, set_weights=True):
    """Calls `layer` on `inputs` (one array or a list) and records everything."""
    multi = isinstance(inputs, list)
    xs = inputs if multi else [inputs]
    kwargs = {}
    if masks is not None:
        kwargs["mask"] = masks if multi else masks[0]
    layer.build([x.shape for x in xs] if multi else xs[0].shape) if not layer.built else None
    weights_set = []
    if set_weights and layer.weights:
        weights_set = [rng.uniform(-1, 1, size=w.shape).astype(np.float32) for w in layer.weights]
        if isinstance(layer, L.BatchNormalization):
            # A variance must be positive.
            weights_set = [np.abs(w) + 0.1 if "variance" in v.path else w for w, v in zip(weights_set, layer.weights)]
        layer.set_weights(weights_set)
    tensors = [keras.ops.convert_to_tensor(x) for x in xs]
    out = layer(tensors if multi else tensors[0], training=training, **kwargs)
    mask = layer.compute_mask(tensors if multi else tensors[0], kwargs.get("mask"))
    losses = [float(l) for l in layer.losses]
    weights_before = [array(w) for w in weights_set] if set_weights and layer.weights else [array(w.numpy()) for w in layer.weights]
    return {
        "label": label,
        "serialized": keras.saving.serialize_keras_object(layer),
        "inputs": [array(x) for x in xs],
        "input_masks": None if masks is None else [None if m is None else array(m) for m in masks],
        "weights": weights_before,
        "weights_after": [array(w.numpy()) for w in layer.weights],
        "output": array(out),
        "output_mask": None if mask is None else array(np.asarray(mask)),
        "losses": losses,
        "training": training,
    }


def save(name, cases):
    payload = {"keras": keras.__version__, "jax": jax.__version__, "generator": "scripts/make_layer_fixtures.py",
               "cases": cases}
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(payload, f, separators=(",", ":"))
    print(f"{name}: {len(cases)} cases")


def reseed(section):
    """Each section draws from its own stream, so adding a section leaves the others' fixtures unchanged."""
    global rng
    rng = np.random.default_rng([20261124, section])


def core_layers():
    global rng
    rng = np.random.default_rng(20261124)
    x2 = tensor_input((4, 5))
    x3 = tensor_input((2, 3, 4))
    x4 = tensor_input((2, 3, 4, 2))
    cases = [
        layer_case("dense", L.Dense(3), x2),
        layer_case("dense relu no bias", L.Dense(4, activation="relu", use_bias=False), x2),
        layer_case("dense rank 3 gelu", L.Dense(2, activation="gelu"), x3),
        layer_case("dense regularized", L.Dense(3, kernel_regularizer=R.L1L2(0.01, 0.02), bias_regularizer="l2",
                                                activity_regularizer=R.L1(0.05), kernel_constraint=C.MaxNorm(1.5),
                                                bias_constraint="non_neg", kernel_initializer="he_normal",
                                                bias_initializer=I.Constant(0.5)), x2),
        layer_case("activation softmax", L.Activation("softmax"), x3),
        layer_case("activation selu", L.Activation("selu"), x2),
        layer_case("dropout inference", L.Dropout(0.3, seed=7), x2),
        layer_case("dropout noise shape", L.Dropout(0.5, noise_shape=(None, 1, 4), seed=3), x3),
        layer_case("flatten", L.Flatten(), x4),
        layer_case("flatten channels_first", L.Flatten(data_format="channels_first"), x4),
        layer_case("reshape", L.Reshape((4, 3)), x3),
        layer_case("reshape inferred", L.Reshape((-1, 2)), x3),
        layer_case("permute", L.Permute((2, 1)), x3),
        layer_case("permute 3", L.Permute((3, 1, 2)), x4),
        layer_case("repeat vector", L.RepeatVector(3), x2),
        layer_case("activity regularization", L.ActivityRegularization(l1=0.01, l2=0.03), x2),
        layer_case("masking", L.Masking(mask_value=0.5),
                   np.where(rng.uniform(size=(2, 4, 1)) < 0.4, 0.5, tensor_input((2, 4, 3))).astype(np.float32)),
        layer_case("spatial dropout 1d", L.SpatialDropout1D(0.2), x3),
        layer_case("spatial dropout 2d", L.SpatialDropout2D(0.2, data_format="channels_first"), x4),
        layer_case("spatial dropout 3d", L.SpatialDropout3D(0.25), tensor_input((1, 2, 2, 2, 3))),
        layer_case("gaussian noise", L.GaussianNoise(0.1, seed=2), x2),
        layer_case("gaussian dropout", L.GaussianDropout(0.2, seed=2), x2),
        layer_case("alpha dropout", L.AlphaDropout(0.1, seed=2), x2),
        layer_case("identity", L.Identity(), x3),
        layer_case("rescaling", L.Rescaling(1 / 255.0, offset=-0.5), tensor_input((2, 3), 0, 255)),
        layer_case("embedding", L.Embedding(7, 3), tensor_input((2, 5), integers=7)),
        layer_case("embedding mask zero", L.Embedding(6, 2, mask_zero=True, embeddings_regularizer="l1",
                                                      embeddings_constraint=C.UnitNorm(axis=1)),
                   tensor_input((3, 4), integers=6)),
        layer_case("relu layer", L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2), x2),
        layer_case("leaky relu layer", L.LeakyReLU(), x2),
        layer_case("leaky relu slope", L.LeakyReLU(negative_slope=0.05), x2),
        layer_case("elu layer", L.ELU(alpha=0.7), x2),
        layer_case("prelu", L.PReLU(), x3),
        layer_case("prelu shared axes", L.PReLU(shared_axes=[1], alpha_initializer=I.Constant(0.25)), x3),
        layer_case("softmax layer", L.Softmax(axis=1), x3),
        layer_case("softmax masked", L.Softmax(), x3, masks=[(rng.uniform(size=(2, 3, 4)) < 0.7)]),
    ]
    a, b, c = tensor_input((3, 4)), tensor_input((3, 4)), tensor_input((3, 4))
    cases += [
        layer_case("add", L.Add(), [a, b, c]),
        layer_case("subtract", L.Subtract(), [a, b]),
        layer_case("multiply", L.Multiply(), [a, b, c]),
        layer_case("average", L.Average(), [a, b]),
        layer_case("maximum", L.Maximum(), [a, b, c]),
        layer_case("minimum", L.Minimum(), [a, b]),
        layer_case("concatenate", L.Concatenate(), [a, tensor_input((3, 2))]),
        layer_case("concatenate axis 1", L.Concatenate(axis=1), [x3, tensor_input((2, 2, 4))]),
        layer_case("dot", L.Dot(axes=1), [a, b]),
        layer_case("dot normalized", L.Dot(axes=1, normalize=True), [a, b]),
        layer_case("dot 3d", L.Dot(axes=(2, 1)), [x3, tensor_input((2, 4, 5))]),
        layer_case("dot 3d axes 1", L.Dot(axes=1), [x3, tensor_input((2, 3, 2))]),
    ]
    save("core_layers.json", cases)


def convolution_layers():
    """Convolutions over strides, padding, data_format, dilation and groups."""
    reseed(2)
    x1 = tensor_input((2, 9, 4))
    x1f = tensor_input((2, 4, 9))
    x2 = tensor_input((2, 7, 6, 4))
    x2f = tensor_input((2, 4, 7, 6))
    x3 = tensor_input((1, 5, 4, 6, 2))
    x3f = tensor_input((1, 2, 5, 4, 6))
    cases = [
        layer_case("conv1d valid", L.Conv1D(3, 3), x1),
        layer_case("conv1d same stride 2", L.Conv1D(3, 4, strides=2, padding="same"), x1),
        layer_case("conv1d causal dilation 2", L.Conv1D(2, 3, padding="causal", dilation_rate=2), x1),
        layer_case("conv1d groups 2", L.Conv1D(4, 2, groups=2, activation="tanh"), x1),
        layer_case("conv1d channels_first", L.Conv1D(3, 3, padding="same", data_format="channels_first"), x1f),
        layer_case("conv2d valid", L.Conv2D(5, 3), x2),
        layer_case("conv2d same", L.Conv2D(3, (3, 2), padding="same", activation="relu"), x2),
        layer_case("conv2d strides", L.Conv2D(3, 3, strides=(2, 1), padding="same"), x2),
        layer_case("conv2d strides valid", L.Conv2D(2, (2, 3), strides=(2, 3)), x2),
        layer_case("conv2d dilation", L.Conv2D(2, 3, dilation_rate=(2, 1)), x2),
        layer_case("conv2d dilation same", L.Conv2D(2, 2, dilation_rate=2, padding="same"), x2),
        layer_case("conv2d groups", L.Conv2D(6, 3, groups=2, padding="same"), x2),
        layer_case("conv2d groups 4", L.Conv2D(4, 1, groups=4, use_bias=False), x2),
        layer_case("conv2d channels_first", L.Conv2D(3, 3, data_format="channels_first"), x2f),
        layer_case("conv2d channels_first same strides", L.Conv2D(2, 3, strides=2, padding="same",
                                                                  data_format="channels_first"), x2f),
        layer_case("conv2d regularized", L.Conv2D(2, 2, kernel_regularizer="l2", bias_regularizer=R.L1(0.1),
                                                  activity_regularizer="l1", kernel_constraint=C.MaxNorm(1.0, axis=[0, 1, 2])), x2),
        layer_case("conv3d valid", L.Conv3D(3, 2), x3),
        layer_case("conv3d same strides", L.Conv3D(2, (3, 2, 3), strides=(2, 1, 2), padding="same"), x3),
        layer_case("conv3d channels_first dilation", L.Conv3D(2, 2, dilation_rate=(1, 2, 2), data_format="channels_first"), x3f),
        layer_case("depthwise 2d", L.DepthwiseConv2D(3), x2),
        layer_case("depthwise 2d multiplier same strides", L.DepthwiseConv2D(2, strides=2, padding="same", depth_multiplier=2,
                                                                             activation="relu"), x2),
        layer_case("depthwise 2d channels_first dilation", L.DepthwiseConv2D(2, dilation_rate=2, data_format="channels_first"), x2f),
        layer_case("depthwise 1d", L.DepthwiseConv1D(3, depth_multiplier=3, padding="same"), x1),
        layer_case("separable 2d", L.SeparableConv2D(5, 3), x2),
        layer_case("separable 2d multiplier strides", L.SeparableConv2D(3, (3, 2), strides=(2, 1), padding="same",
                                                                        depth_multiplier=2, use_bias=False), x2),
        layer_case("separable 2d channels_first", L.SeparableConv2D(2, 2, data_format="channels_first"), x2f),
        layer_case("separable 1d", L.SeparableConv1D(4, 3, depth_multiplier=2, dilation_rate=2), x1),
        layer_case("conv2d transpose valid", L.Conv2DTranspose(3, 3), x2),
        layer_case("conv2d transpose same strides", L.Conv2DTranspose(2, 3, strides=2, padding="same"), x2),
        layer_case("conv2d transpose valid strides", L.Conv2DTranspose(2, (2, 3), strides=(2, 3)), x2),
        layer_case("conv2d transpose output padding", L.Conv2DTranspose(2, 3, strides=2, output_padding=1), x2),
        layer_case("conv2d transpose same output padding", L.Conv2DTranspose(2, 4, strides=(3, 2), padding="same",
                                                                             output_padding=(2, 0)), x2),
        layer_case("conv2d transpose dilation", L.Conv2DTranspose(2, 2, dilation_rate=2), x2),
        layer_case("conv2d transpose channels_first", L.Conv2DTranspose(3, 2, strides=2, data_format="channels_first"), x2f),
        layer_case("conv1d transpose", L.Conv1DTranspose(3, 4, strides=2, padding="same", activation="tanh"), x1),
        layer_case("conv1d transpose output padding", L.Conv1DTranspose(2, 3, strides=3, output_padding=2), x1),
        layer_case("conv3d transpose", L.Conv3DTranspose(2, 2, strides=(1, 2, 2)), x3),
        layer_case("conv3d transpose same", L.Conv3DTranspose(2, 3, strides=2, padding="same"), x3),
    ]
    save("conv_layers.json", cases)


def pooling_layers():
    """Pooling over pool sizes, strides, padding and data_format; global pooling with keepdims."""
    reseed(5)
    x1 = tensor_input((2, 9, 3))
    x2 = tensor_input((2, 7, 6, 3))
    x2f = tensor_input((2, 3, 7, 6))
    x3 = tensor_input((1, 5, 4, 6, 2))
    mask = rng.uniform(size=(2, 9)) < 0.7
    mask[:, 0] = True
    cases = [
        layer_case("max pool 1d", L.MaxPooling1D(), x1),
        layer_case("max pool 1d same stride 1", L.MaxPooling1D(3, strides=1, padding="same"), x1),
        layer_case("avg pool 1d same", L.AveragePooling1D(2, padding="same"), x1),
        layer_case("max pool 2d", L.MaxPooling2D(), x2),
        layer_case("max pool 2d 3x2 stride 1", L.MaxPooling2D((3, 2), strides=1), x2),
        layer_case("max pool 2d same", L.MaxPooling2D(3, strides=2, padding="same"), x2),
        layer_case("avg pool 2d", L.AveragePooling2D((2, 3)), x2),
        layer_case("avg pool 2d same", L.AveragePooling2D(3, strides=2, padding="same"), x2),
        layer_case("max pool 2d channels_first", L.MaxPooling2D(2, data_format="channels_first"), x2f),
        layer_case("avg pool 2d channels_first same", L.AveragePooling2D(2, padding="same", data_format="channels_first"), x2f),
        layer_case("max pool 3d", L.MaxPooling3D(2), x3),
        layer_case("avg pool 3d same", L.AveragePooling3D((2, 3, 2), strides=(1, 2, 2), padding="same"), x3),
        layer_case("max pool 2d tiling", L.MaxPooling2D(2), tensor_input((2, 6, 4, 9))),
        layer_case("max pool 3d tiling", L.MaxPooling3D((2, 2, 3)), tensor_input((1, 4, 4, 6, 2))),
        layer_case("max pool 1d tiling channels_first", L.MaxPooling1D(3, data_format="channels_first"), tensor_input((2, 3, 9))),
        layer_case("global max 1d", L.GlobalMaxPooling1D(), x1),
        layer_case("global avg 1d", L.GlobalAveragePooling1D(), x1),
        layer_case("global avg 1d masked", L.GlobalAveragePooling1D(), x1, masks=[mask]),
        layer_case("global avg 1d keepdims", L.GlobalAveragePooling1D(keepdims=True), x1),
        layer_case("global max 2d", L.GlobalMaxPooling2D(), x2),
        layer_case("global avg 2d channels_first", L.GlobalAveragePooling2D(data_format="channels_first"), x2f),
        layer_case("global max 2d keepdims", L.GlobalMaxPooling2D(keepdims=True), x2),
        layer_case("global max 3d", L.GlobalMaxPooling3D(), x3),
        layer_case("global avg 3d", L.GlobalAveragePooling3D(keepdims=True), x3),
    ]
    save("pooling_layers.json", cases)


def normalization_and_resizing_layers():
    """Normalization (training and inference), padding, cropping and upsampling."""
    reseed(6)
    x2 = tensor_input((4, 6))
    x3 = tensor_input((3, 4, 6))
    x4 = tensor_input((2, 5, 4, 6))
    x4f = tensor_input((2, 6, 5, 4))
    mask = rng.uniform(size=(3, 4)) < 0.7
    mask[:, 0] = True
    cases = [
        layer_case("batch norm inference", L.BatchNormalization(), x2),
        layer_case("batch norm training", L.BatchNormalization(momentum=0.9), x2, training=True),
        layer_case("batch norm conv training", L.BatchNormalization(epsilon=0.01), x4, training=True),
        layer_case("batch norm channels_first", L.BatchNormalization(axis=1, center=False), x4f, training=True),
        layer_case("batch norm masked", L.BatchNormalization(scale=False), x3, masks=[mask], training=True),
        layer_case("layer norm", L.LayerNormalization(), x3),
        layer_case("layer norm axes", L.LayerNormalization(axis=[1, 2], epsilon=0.01), x3),
        layer_case("layer norm rms", L.LayerNormalization(rms_scaling=True), x3),
        layer_case("layer norm no center", L.LayerNormalization(center=False, gamma_regularizer="l2"), x4),
        layer_case("group norm", L.GroupNormalization(groups=3), x4),
        layer_case("group norm channels_first", L.GroupNormalization(groups=2, axis=1), x4f),
        layer_case("group norm 1d", L.GroupNormalization(groups=6, scale=False), x3),
        layer_case("rms norm", L.RMSNormalization(), x3),
        layer_case("rms norm axes", L.RMSNormalization(axis=[1, 2], epsilon=1e-3), x3),
        layer_case("unit norm", L.UnitNormalization(), x3),
        layer_case("unit norm axes", L.UnitNormalization(axis=[1, 2]), x3),
        layer_case("zero padding 1d", L.ZeroPadding1D((1, 2)), x3),
        layer_case("zero padding 2d", L.ZeroPadding2D(((1, 0), (2, 1))), x4),
        layer_case("zero padding 2d channels_first", L.ZeroPadding2D(1, data_format="channels_first"), x4f),
        layer_case("zero padding 3d", L.ZeroPadding3D((1, 0, 2)), tensor_input((1, 2, 3, 2, 2))),
        layer_case("cropping 1d", L.Cropping1D((1, 1)), x3),
        layer_case("cropping 2d", L.Cropping2D(((1, 2), (0, 1))), x4),
        layer_case("cropping 2d channels_first", L.Cropping2D(1, data_format="channels_first"), x4f),
        layer_case("cropping 3d", L.Cropping3D(((0, 1), (1, 0), (0, 1))), tensor_input((1, 3, 3, 3, 2))),
        layer_case("upsampling 1d", L.UpSampling1D(3), x3),
        layer_case("upsampling 2d", L.UpSampling2D((2, 3)), x4),
        layer_case("upsampling 2d bilinear", L.UpSampling2D(2, interpolation="bilinear"), x4),
        layer_case("upsampling 2d bilinear channels_first", L.UpSampling2D((3, 2), interpolation="bilinear",
                                                                           data_format="channels_first"), x4f),
        layer_case("upsampling 3d", L.UpSampling3D((1, 2, 2)), tensor_input((1, 2, 2, 3, 2))),
    ]
    save("normalization_layers.json", cases)


def objects():
    """Configs of initializers, regularizers, constraints; penalties and projections."""
    reseed(3)
    ser = keras.saving.serialize_keras_object
    inits = [I.Zeros(), I.Ones(), I.Constant(2.5), I.RandomNormal(0.1, 0.2, seed=3), I.RandomUniform(-0.3, 0.7),
             I.TruncatedNormal(stddev=0.1, seed=4), I.VarianceScaling(2.0, "fan_out", "uniform", seed=5),
             I.VarianceScaling(0.5, "fan_avg", "untruncated_normal"), I.Orthogonal(gain=1.5, seed=6),
             I.Identity(gain=1.0), I.GlorotUniform(seed=1), I.GlorotNormal(), I.HeNormal(seed=2), I.HeUniform(),
             I.LecunNormal(), I.LecunUniform(seed=9)]
    w = tensor_input((4, 3))
    k = tensor_input((2, 2, 3, 4))
    regs = [R.L1(), R.L1(0.3), R.L2(), R.L2(0.2), R.L1L2(), R.L1L2(l1=0.1, l2=0.05), R.L1L2(l2=0.4)]
    cons = [C.NonNeg(), C.UnitNorm(), C.UnitNorm(axis=1), C.UnitNorm(axis=[0, 1, 2]), C.MaxNorm(),
            C.MaxNorm(0.8, axis=1), C.MaxNorm(1.2, axis=[0, 1, 2]), C.MinMaxNorm(),
            C.MinMaxNorm(0.5, 1.5, rate=0.3, axis=1), C.MinMaxNorm(1.0, 2.0, rate=0.7, axis=[0, 1, 2])]
    payload = {
        "keras": keras.__version__, "jax": jax.__version__, "generator": "scripts/make_layer_fixtures.py",
        "initializers": [ser(i) for i in inits],
        "regularizers": [{"serialized": ser(r), "input": array(x), "penalty": float(r(x))}
                         for r in regs for x in (w, k)],
        "constraints": [{"serialized": ser(c), "input": array(x), "output": array(c(x))}
                        for c in cons for x in ((w, k) if not isinstance(getattr(c, "axis", 0), list) else (k,))],
        "by_name": {
            "initializers": {n: ser(I.get(n)) for n in ["zeros", "ones", "glorot_uniform", "he_normal", "orthogonal",
                                                         "random_normal", "uniform", "truncated_normal", "lecun_uniform"]},
            "regularizers": {n: ser(R.get(n)) for n in ["l1", "l2", "l1l2"]},
            "constraints": {n: ser(C.get(n)) for n in ["non_neg", "unit_norm", "max_norm", "min_max_norm"]},
        },
    }
    with open(os.path.join(OUT, "objects.json"), "w") as f:
        json.dump(payload, f, separators=(",", ":"))
    print("objects.json")


def activation_functions():
    """Every keras.activations function on one input, with the argument variants."""
    reseed(4)
    from keras import activations as A
    from keras.src.activations import ALL_OBJECTS_DICT as names
    x = np.concatenate([np.linspace(-6, 6, 61), rng.uniform(-3, 3, 35)]).astype(np.float32).reshape(4, 24)
    cases = [(name, {}) for name in sorted(names) if name != "threshold"]
    cases += [("relu", {"negative_slope": 0.1}), ("relu", {"max_value": 2.5}), ("relu", {"threshold": 0.7}),
              ("relu", {"negative_slope": 0.2, "max_value": 3.0, "threshold": -0.5}), ("leaky_relu", {"negative_slope": 0.05}),
              ("elu", {"alpha": 0.4}), ("gelu", {"approximate": True}), ("gelu", {"approximate": False}),
              ("softmax", {"axis": 0}), ("log_softmax", {"axis": 0}), ("celu", {"alpha": 2.0}), ("glu", {"axis": 0}),
              ("squareplus", {"b": 1.0}), ("soft_shrink", {"threshold": 1.0}), ("hard_shrink", {"threshold": 1.2}),
              ("sparsemax", {"axis": 0}), ("threshold", {"threshold": 0.3, "default_value": -1.0})]
    out = []
    for name, kwargs in cases:
        y = A.get(name)(keras.ops.convert_to_tensor(x), **kwargs)
        out.append({"name": name, "arguments": kwargs, "output": array(y)})
    payload = {"keras": keras.__version__, "jax": jax.__version__, "generator": "scripts/make_layer_fixtures.py",
               "input": array(x), "cases": out}
    with open(os.path.join(OUT, "activations.json"), "w") as f:
        json.dump(payload, f, separators=(",", ":"))
    print(f"activations.json: {len(out)} cases")


def recurrent_layers():
    """SimpleRNN, LSTM and GRU: every argument that changes the numbers, with masks (the masked
    steps are whole trailing or inner steps, as Masking makes them)."""
    reseed(7)
    x = tensor_input((3, 5, 4), -1.0, 1.0)
    mask = np.ones((3, 5), dtype=bool)
    mask[0, 3:] = False   # a padded tail
    mask[1, 1] = False    # a hole
    mask[2, 0] = False    # masked first step
    cases = []
    for name, make in [("simple_rnn", L.SimpleRNN), ("lstm", L.LSTM), ("gru", L.GRU)]:
        cases += [
            layer_case(f"{name}", make(3), x),
            layer_case(f"{name} sequences", make(2, return_sequences=True), x),
            layer_case(f"{name} backwards", make(3, go_backwards=True), x),
            layer_case(f"{name} backwards sequences", make(2, go_backwards=True, return_sequences=True), x),
            layer_case(f"{name} masked", make(3), x, masks=[mask]),
            layer_case(f"{name} masked sequences", make(2, return_sequences=True), x, masks=[mask]),
            layer_case(f"{name} masked backwards sequences", make(2, return_sequences=True, go_backwards=True), x, masks=[mask]),
            layer_case(f"{name} relu no bias", make(3, activation="relu", use_bias=False), x),
            layer_case(f"{name} regularized", make(2, kernel_regularizer=R.L2(0.01), recurrent_regularizer=R.L1(0.02),
                                                   bias_regularizer="l2", activity_regularizer=R.L1(0.05),
                                                   recurrent_constraint=C.MaxNorm(1.0)), x),
            layer_case(f"{name} dropout inference", make(3, dropout=0.3, recurrent_dropout=0.2, seed=4), x),
        ]
    cases += [
        layer_case("lstm hard sigmoid gates", L.LSTM(3, recurrent_activation="hard_sigmoid"), x),
        layer_case("lstm no unit forget bias", L.LSTM(2, unit_forget_bias=False), x),
        layer_case("gru reset before", L.GRU(3, reset_after=False), x),
        layer_case("gru reset before masked sequences", L.GRU(2, reset_after=False, return_sequences=True), x, masks=[mask]),
        layer_case("gru reset before no bias", L.GRU(2, reset_after=False, use_bias=False), x),
        layer_case("gru relu gates", L.GRU(3, recurrent_activation="relu", activation="sigmoid"), x),
        layer_case("lstm zero output for mask", L.LSTM(2, return_sequences=True, zero_output_for_mask=True), x, masks=[mask]),
        layer_case("bidirectional lstm", L.Bidirectional(L.LSTM(3)), x),
        layer_case("bidirectional gru sequences sum", L.Bidirectional(L.GRU(2, return_sequences=True), merge_mode="sum"), x),
        layer_case("bidirectional lstm masked sequences", L.Bidirectional(L.LSTM(2, return_sequences=True)), x, masks=[mask]),
        layer_case("bidirectional own backward ave", L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode="ave",
                                                                     backward_layer=L.SimpleRNN(3, return_sequences=True,
                                                                                                go_backwards=True, activation="relu")), x),
        layer_case("bidirectional mul masked", L.Bidirectional(L.GRU(2), merge_mode="mul"), x, masks=[mask]),
        layer_case("time distributed dense", L.TimeDistributed(L.Dense(3, activation="tanh")), x),
        layer_case("time distributed conv", L.TimeDistributed(L.Conv1D(2, 2)), tensor_input((2, 3, 5, 2))),
    ]
    save("recurrent_layers.json", cases)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    keras.utils.set_random_seed(1)
    core_layers()
    convolution_layers()
    pooling_layers()
    normalization_and_resizing_layers()
    objects()
    activation_functions()
    recurrent_layers()

"""Cross-entropies of softmax and sigmoid outputs as Keras 3 computes them on TensorFlow.

On TensorFlow, Keras's crossentropy finds the logits behind a softmax or sigmoid output and
computes the loss from them (keras/src/backend/tensorflow/nn.py, _get_logits); on JAX it
clips the probabilities to [1e-7, 1 - 1e-7] first. The two differ where a sample is
confidently wrong. Each case records per-sample losses and the gradient of their mean with
respect to the logits, inside a tf.function as fit runs them; logits are chosen so some
probabilities fall below 1e-7.

Run: .build-bench-peers/bin/python scripts/make_logits_loss_fixtures.py
(the benchmarks' virtualenv, which has TensorFlow; benchmarks/peers_venv.sh makes it).
Writes Tests/LoomModelsTests/Fixtures/logits_losses.json.
"""
import json
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LoomModelsTests", "Fixtures", "logits_losses.json")


def arr(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "values": [float(v) for v in a.reshape(-1)]}


def case(name, activation, loss, logits, labels):
    z = tf.constant(logits, dtype=tf.float32)
    y = tf.constant(labels)

    @tf.function
    def run(z, y):
        with tf.GradientTape() as tape:
            tape.watch(z)
            values = loss(y, activation(z))
            mean = tf.reduce_mean(values)
        return values, tape.gradient(mean, z)

    values, gradient = run(z, y)
    return {"name": name, "logits": arr(logits), "labels": arr(labels), "losses": arr(values.numpy()),
            "gradient": arr(gradient.numpy())}


def main():
    softmax, sigmoid = keras.activations.softmax, keras.activations.sigmoid
    # Row 0 is confidently wrong (p[label] ~ e^-30), row 1 confidently right, rows 2-3 ordinary.
    z = np.array([[30, 0, -2], [1, 25, -1], [0.5, -0.3, 0.2], [-1, 2, 0.1]], dtype=np.float32)
    sparse = np.array([1, 1, 2, 0], dtype=np.float32)
    onehot = np.eye(3, dtype=np.float32)[sparse.astype(int)]
    binary_z = np.array([[-25, 3], [18, -0.5], [0.4, 40]], dtype=np.float32)
    binary_y = np.array([[1, 0], [0, 1], [1, 0]], dtype=np.float32)
    cases = [
        case("sparse_categorical_crossentropy", softmax, keras.losses.sparse_categorical_crossentropy, z, sparse),
        case("categorical_crossentropy", softmax, keras.losses.categorical_crossentropy, z, onehot),
        case("categorical_crossentropy_label_smoothing", softmax,
             lambda t, p: keras.losses.categorical_crossentropy(t, p, label_smoothing=0.1), z, onehot),
        # ignore_class masks the scores first (ops.where), so they are clipped even on TensorFlow.
        case("sparse_categorical_crossentropy_ignore_class", softmax,
             lambda t, p: keras.losses.sparse_categorical_crossentropy(t, p, ignore_class=2), z, sparse),
        case("binary_crossentropy", sigmoid, keras.losses.binary_crossentropy, binary_z, binary_y),
    ]
    with open(OUT, "w") as f:
        json.dump({"keras": keras.__version__, "tensorflow": tf.__version__,
                   "generator": "scripts/make_logits_loss_fixtures.py", "cases": cases}, f)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

"""Reference fixtures for recurrent layers inside models, from real Keras 3 (JAX backend):
return_state, initial_state (an encoder's states starting a decoder), Bidirectional with
merge_mode None and with states, stateful layers carrying states across calls and across
the batches of fit.

Run:  KERAS_BACKEND=jax ../keras-ref/bin/python scripts/make_recurrent_model_fixtures.py --fit-python PYTHON
PYTHON has Keras 3 with TensorFlow (e.g. .build-bench-data/bin/python): the fit case runs on the
TensorFlow backend, because Keras on JAX does not carry a stateful layer's states between the
batches of fit (its rnn_state variables are not tracked, so the jitted step drops their updates).
Writes Tests/LoomModelsTests/Fixtures/recurrent_models.json: for each case the model's config,
its weights (fixed random values, in model.weights order), and calls: inputs, outputs, and
whether the states were reset before; the fit case adds labels, the per-epoch losses and the
final weights.
"""
import json
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
if os.environ["KERAS_BACKEND"] == "jax":
    import jax
else:
    jax = None
import keras
import numpy as np
from keras import layers as L

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LoomModelsTests", "Fixtures", "recurrent_models.json")
rng = np.random.default_rng([20261124, 10])


def array(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "values": [float(v) for v in a.reshape(-1)]}


def uniform(shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype(np.float32)


def set_random_weights(model):
    weights = [uniform(w.shape, -0.8, 0.8) for w in model.weights]
    model.set_weights(weights)
    return weights


def padded(batch, steps, features):
    """Sequences with masked steps (all-zero rows, for Masking): a padded tail, a hole, a masked first step."""
    x = uniform((batch, steps, features))
    x[0, steps - 2:] = 0
    x[1 % batch, 1] = 0
    x[2 % batch, 0] = 0
    return x


def case(label, model, calls, resets=()):
    """Runs `model` on each call's inputs (resetting stateful layers before the calls listed in
    `resets`) and records the outputs."""
    weights = set_random_weights(model)
    recorded = []
    for k, inputs in enumerate(calls):
        if k in resets:
            for layer in model.layers:
                if hasattr(layer, "reset_states"):
                    layer.reset_states()
        outputs = model(inputs if len(inputs) > 1 else inputs[0], training=False)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        recorded.append({"inputs": [array(x) for x in inputs], "outputs": [array(y) for y in outputs],
                         "reset_before": k in resets})
    return {"label": label, "model": keras.saving.serialize_keras_object(model),
            "weights": [array(w) for w in weights], "calls": recorded}


def single(label, make_layer, x, masked=False):
    """One recurrent layer with return_state (or Bidirectional) on one input."""
    inp = keras.Input(x.shape[1:])
    h = L.Masking()(inp) if masked else inp
    out = make_layer()(h)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    return case(label, keras.Model(inp, outs), [[x]])


def cases():
    x = uniform((3, 5, 4))
    xm = padded(3, 5, 4)
    out = [
        single("lstm return_state", lambda: L.LSTM(3, return_state=True), x),
        single("lstm return_state sequences masked backwards",
               lambda: L.LSTM(2, return_state=True, return_sequences=True, go_backwards=True), xm, masked=True),
        single("lstm relu return_state masked", lambda: L.LSTM(3, activation="relu", return_state=True), xm, masked=True),
        single("gru return_state masked", lambda: L.GRU(3, return_state=True), xm, masked=True),
        single("gru reset before return_state sequences", lambda: L.GRU(2, reset_after=False, return_state=True,
                                                                      return_sequences=True), x),
        single("simple_rnn return_state", lambda: L.SimpleRNN(3, return_state=True), x),
        single("bidirectional merge None sequences", lambda: L.Bidirectional(L.LSTM(2, return_sequences=True), merge_mode=None), x),
        single("bidirectional return_state", lambda: L.Bidirectional(L.LSTM(2, return_state=True)), x),
        single("bidirectional gru merge None return_state masked",
               lambda: L.Bidirectional(L.GRU(2, return_state=True, return_sequences=True), merge_mode=None), xm, masked=True),
    ]

    # Initial states from model inputs, into the fused LSTM, a generic LSTM, GRU and Bidirectional.
    for label, make, states in [("lstm initial_state", lambda: L.LSTM(3, return_state=True, return_sequences=True), 2),
                                ("lstm tanh gates initial_state masked", lambda: L.LSTM(3, recurrent_activation="tanh",
                                                                                       return_state=True), 2),
                                ("gru initial_state", lambda: L.GRU(3, return_sequences=True), 1),
                                ("simple_rnn initial_state backwards", lambda: L.SimpleRNN(3, go_backwards=True), 1)]:
        seq = keras.Input((5, 4))
        given = [keras.Input((3,)) for _ in range(states)]
        masked = "masked" in label
        h = L.Masking()(seq) if masked else seq
        y = make()(h, initial_state=given if states > 1 else given[0])
        ys = list(y) if isinstance(y, (list, tuple)) else [y]
        out.append(case(label, keras.Model([seq] + given, ys if len(ys) > 1 else ys[0]),
                        [[xm if masked else x] + [uniform((3, 3)) for _ in given]]))
    seq = keras.Input((5, 4))
    given = [keras.Input((2,)) for _ in range(4)]
    y = L.Bidirectional(L.LSTM(2))(seq, initial_state=given)
    out.append(case("bidirectional initial_state", keras.Model([seq] + given, y), [[x] + [uniform((3, 2)) for _ in given]]))

    # An encoder's final states start a decoder (sequence to sequence).
    source, target = keras.Input((5, 4)), keras.Input((3, 2))
    _, h, c = L.LSTM(4, return_state=True, name="encoder")(L.Masking()(source))
    decoded = L.LSTM(4, return_sequences=True, name="decoder")(target, initial_state=[h, c])
    y = L.TimeDistributed(L.Dense(2))(decoded)
    out.append(case("encoder decoder", keras.Model([source, target], y), [[xm, uniform((3, 3, 2))]]))

    # Stateful layers: each call starts from the states the previous one ended with.
    chunks = [uniform((2, 3, 4)) for _ in range(3)]
    for label, make in [("lstm stateful", lambda: L.LSTM(3, stateful=True)),
                        ("gru stateful sequences", lambda: L.GRU(2, stateful=True, return_sequences=True)),
                        ("lstm relu stateful", lambda: L.LSTM(2, activation="relu", stateful=True)),
                        ("bidirectional stateful", lambda: L.Bidirectional(L.SimpleRNN(2, stateful=True)))]:
        inp = keras.Input(batch_shape=(2, 3, 4))
        model = keras.Model(inp, make()(inp))
        out.append(case(label, model, [[chunks[0]], [chunks[1]], [chunks[2]], [chunks[1]]], resets=(3,)))
    return out


def stateful_fit():
    """fit with a stateful LSTM: batches of 2 in order, states carried from batch to batch and
    from epoch to epoch (Keras does not reset them)."""
    inp = keras.Input(batch_shape=(2, 3, 4))
    y = L.Dense(1)(L.LSTM(3, stateful=True)(inp))
    model = keras.Model(inp, y)
    weights = set_random_weights(model)
    x, t = uniform((6, 3, 4)), uniform((6, 1))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    history = model.fit(x, t, batch_size=2, epochs=3, shuffle=False, verbose=0)
    return {"label": "stateful fit", "backend": keras.backend.backend(), "tensorflow": __import__("tensorflow").__version__, "model": keras.saving.serialize_keras_object(model), "weights": [array(w) for w in weights],
            "x": array(x), "y": array(t), "batch_size": 2, "epochs": 3, "learning_rate": 0.1,
            "losses": [float(v) for v in history.history["loss"]],
            "weights_after": [array(w.numpy()) for w in model.weights]}


if __name__ == "__main__":
    keras.utils.set_random_seed(1)
    if sys.argv[1:] == ["--fit-only"]:
        print(json.dumps(stateful_fit()))
        sys.exit(0)
    python = sys.argv[sys.argv.index("--fit-python") + 1]
    fit = subprocess.run([python, __file__, "--fit-only"], env={**os.environ, "KERAS_BACKEND": "tensorflow"},
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    payload = {"keras": keras.__version__, "jax": jax.__version__, "generator": "scripts/make_recurrent_model_fixtures.py",
               "cases": cases(), "fit": json.loads(fit)}
    with open(OUT, "w") as f:
        json.dump(payload, f, separators=(",", ":"))
    print(f"recurrent_models.json: {len(payload['cases'])} cases and a fit")

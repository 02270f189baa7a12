"""Keras 3's model.summary() text for Loom's summary tests.

Run: COLUMNS=80 KERAS_BACKEND=jax ../keras-ref/bin/python scripts/make_summary_fixtures.py
Writes Tests/LoomModelsTests/Fixtures/summaries.json: the printed table of a Sequential MLP and
of a functional model with two inputs, a shared layer and two outputs, at the default width
for 80-column output and for a 124-column terminal; and of a model whose layers make several
values (an LSTM with return_state, Bidirectional with merge_mode None).
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ["COLUMNS"] = "80"
import keras  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LoomModelsTests", "Fixtures", "summaries.json")


def text(model, **kwargs):
    lines = []
    model.summary(print_fn=lambda s, line_break=True: lines.append(s), **kwargs)
    return "".join(lines)


def main():
    mlp = keras.Sequential([keras.Input((784,)), layers.Dense(512, activation="relu", name="dense"),
                            layers.Dropout(0.2, name="dropout"), layers.Dense(10, activation="softmax", name="dense_1")],
                           name="sequential")
    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    shared = layers.Dense(5, activation="tanh", name="shared")
    merged = layers.Concatenate(name="merge")([shared(a), shared(b)])
    out1 = layers.Dense(3, name="out1")(merged)
    normalized = layers.BatchNormalization(name="bn")(merged)
    out2 = layers.Dense(1, activation="sigmoid", name="out2")(layers.Dense(4, activation="relu", name="hidden")(normalized))
    functional = keras.Model([a, b], [out1, out2], name="two_heads")
    seq = keras.Input((5, 4), name="seq")
    y, h, c = layers.LSTM(3, return_state=True, name="encoder")(seq)
    both = layers.Bidirectional(layers.GRU(2, return_sequences=True), merge_mode=None, name="both")(seq)
    states = keras.Model(seq, [y, h, c] + list(both), name="states")
    out = {"keras_version": keras.__version__, "sequential": text(mlp), "functional": text(functional),
           "states": text(states)}
    # On a 124-column terminal the tables get their full default widths (88 and 108).
    os.environ["COLUMNS"] = "124"
    out["sequential_wide"] = text(mlp)
    out["functional_wide"] = text(functional)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

"""Reference windows from keras.utils.timeseries_dataset_from_array (Keras 3 on TensorFlow,
whose "tf" format is Keras's default).

Run:  .build-bench-data/bin/python scripts/make_timeseries_fixtures.py
Writes Tests/LoomDataTests/Fixtures/timeseries.json: for each case the arguments, the data and
targets, and every window and target in the order Keras yields them (batch_size=None, so no
batch-level shuffle), with the Keras version.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LoomDataTests", "Fixtures", "timeseries.json")


def case(label, data, targets=None, **kwargs):
    ds = keras.utils.timeseries_dataset_from_array(data, targets, batch_size=None, **kwargs)
    xs, ys = [], []
    for item in ds:
        if targets is None:
            xs.append(np.asarray(item))
        else:
            xs.append(np.asarray(item[0]))
            ys.append(np.asarray(item[1]))
    return {"label": label, "arguments": kwargs, "data": {"shape": list(data.shape), "values": data.reshape(-1).tolist()},
            "targets": None if targets is None else {"shape": list(targets.shape), "values": targets.reshape(-1).tolist()},
            "windows": np.stack(xs).reshape(-1).tolist(), "window_shape": list(np.stack(xs).shape),
            "window_targets": None if targets is None else np.stack(ys).reshape(-1).tolist()}


rng = np.random.default_rng(5)
series = np.arange(40, dtype=np.float32) * 1.5
multi = rng.normal(size=(30, 3)).astype(np.float32)
cases = [
    case("plain", series, sequence_length=5),
    case("forecast targets", series[:-3], targets=series[3:], sequence_length=4),
    case("stride and rate", series, targets=series, sequence_length=3, sequence_stride=4, sampling_rate=2),
    case("start and end", multi, targets=multi[:, 0], sequence_length=5, start_index=3, end_index=25),
    case("shuffled", multi, targets=np.arange(30, dtype=np.float32), sequence_length=6, sequence_stride=2, shuffle=True, seed=17),
]
# With shuffle, Keras orders the windows with NumPy's RandomState(seed).shuffle, then shuffles
# again with tf.data (whose generator is TensorFlow's own): the first order is recorded here,
# the windows themselves are compared as a set.
starts = np.arange(0, 30 - 5, 2, dtype="int32")
np.random.RandomState(17).shuffle(starts)
cases[-1]["numpy_order"] = starts.tolist()
with open(OUT, "w") as f:
    json.dump({"keras": keras.__version__, "generator": "scripts/make_timeseries_fixtures.py", "cases": cases}, f)
print(f"{len(cases)} cases -> {OUT}")

"""Keras 3 side of benchmarks/lstm_vs_keras.sh: LSTM(units) + Dense(1), Adam, MSE, trained with
fit on random sequences; prints one JSON object with training samples/s (timed after a warm-up
fit that compiles the step)."""
import argparse
import json
import os
import time

parser = argparse.ArgumentParser()
parser.add_argument("--backend", default="tensorflow")
parser.add_argument("--units", type=int, default=128)
parser.add_argument("--time-steps", type=int, default=50)
parser.add_argument("--features", type=int, default=32)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--steps", type=int, default=20)
args = parser.parse_args()
os.environ["KERAS_BACKEND"] = args.backend

import keras  # noqa: E402
import numpy as np  # noqa: E402

keras.utils.set_random_seed(5)
n = args.batch_size * args.steps
rng = np.random.default_rng(1)
x = rng.normal(size=(n, args.time_steps, args.features)).astype(np.float32)
y = rng.normal(size=(n, 1)).astype(np.float32)
model = keras.Sequential([keras.Input((args.time_steps, args.features)), keras.layers.LSTM(args.units), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(x[: 2 * args.batch_size], y[: 2 * args.batch_size], batch_size=args.batch_size, epochs=1, verbose=0)
start = time.perf_counter()
model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False)
seconds = time.perf_counter() - start
print(json.dumps({"tool": f"keras-{args.backend}", "keras": keras.__version__, "units": args.units,
                  "time_steps": args.time_steps, "features": args.features, "batch_size": args.batch_size,
                  "train_samples_per_s": round(n / seconds, 1)}))

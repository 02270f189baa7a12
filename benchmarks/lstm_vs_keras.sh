#!/usr/bin/env bash
# An LSTM of 128 units over 50 time steps (32 features, batch 128, Adam, MSE) trained with fit
# by Loom (one worker, then every core) and by Keras 3 on TensorFlow and on JAX, in one run on
# the same shapes; prints training samples/s and Loom's ratios. The peers live in the throwaway
# virtualenv .build-bench-peers (git-ignored), as for mnist_training_vs_peers.sh.
# Usage: benchmarks/lstm_vs_keras.sh [--steps S]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=20
if [ "${1:-}" = "--steps" ]; then steps=$2; fi
source benchmarks/peers_venv.sh
swift build -c release --product loom >/dev/null
cores=$(nproc)
loom1=$(.build/release/loom bench lstm --steps "$steps" --workers 1 --json)
loomn=$(.build/release/loom bench lstm --steps "$steps" --workers "$cores" --json)
tf=$("$venv/bin/python" benchmarks/lstm_peers.py --backend tensorflow --steps "$steps" 2>/dev/null | tail -1)
jx=$("$venv/bin/python" benchmarks/lstm_peers.py --backend jax --steps "$steps" 2>/dev/null | tail -1)
python3 - "$loom1" "$loomn" "$tf" "$jx" "$cores" <<'PY'
import json, sys
loom1, loomn, tf, jx = (json.loads(a) for a in sys.argv[1:5])
cores = sys.argv[5]
rate = lambda r: r["train_samples_per_s"]
print("| LSTM(128), 50 steps x 32, batch 128 | train samples/s | Loom (%s workers) / this |" % cores)
print("|---|---:|---:|")
for name, r in [("Loom, 1 worker", loom1), (f"Loom, {cores} workers", loomn), ("Keras 3 / TensorFlow", tf), ("Keras 3 / JAX", jx)]:
    print(f"| {name} | {rate(r):,.0f} | {rate(loomn) / rate(r):.2f} |")
PY

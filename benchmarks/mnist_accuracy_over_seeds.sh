#!/usr/bin/env bash
# Test accuracy of the MNIST MLP (or CNN) after the same epochs over many seeds: Loom (every
# core) and Keras 3 on TensorFlow and on JAX and PyTorch, each seed changing initialization,
# dropout and shuffling. Prints each tool's mean, standard deviation and standard error, and
# Loom's difference from each in standard errors. One seed's accuracy moves by ~0.002, so
# comparisons need many seeds. Peers come from .build-bench-peers (benchmarks/peers_venv.sh).
# Usage: benchmarks/mnist_accuracy_over_seeds.sh [--model mlp|cnn] [--epochs E] [--seeds N] [--first-seed S]
#        [--tools "keras-tensorflow keras-jax torch"] [--out DIR]
# Each tool's per-seed results are kept in DIR (default a temporary folder) as JSON lines.
set -euo pipefail
cd "$(dirname "$0")/.."
model=mlp epochs=2 seeds=20 first=1 tools="keras-tensorflow keras-jax torch" out=
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model=$2; shift 2 ;;
        --epochs) epochs=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --first-seed) first=$2; shift 2 ;;
        --tools) tools=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: $0 [--model mlp|cnn] [--epochs E] [--seeds N] [--first-seed S] [--tools LIST] [--out DIR]" >&2; exit 2 ;;
    esac
done
source benchmarks/peers_venv.sh
swift build -c release --product loom >/dev/null
out=${out:-$(mktemp -d)}
mkdir -p "$out"
echo "per-seed results in $out" >&2
for s in $(seq "$first" $((first + seeds - 1))); do
    .build/release/loom bench train --model "$model" --epochs "$epochs" --seed "$s" --json 2>/dev/null | tail -1 >> "$out/loom"
    for tool in $tools; do
        "$venv/bin/python" benchmarks/mnist_training_peers.py --tool "$tool" --model "$model" --epochs "$epochs" --seed "$s" \
            2>/dev/null | tail -1 >> "$out/$tool"
    done
done
python3 - "$out" loom $tools <<'PY'
import json, statistics as st, sys
folder, names = sys.argv[1], sys.argv[2:]
rows = {n: [json.loads(l)["test_accuracy"] for l in open(f"{folder}/{n}") if l.strip()] for n in names}
loom = rows["loom"]
print(f"| tool | seeds | mean | sd | se | Loom - tool (in se) |")
print("|---|---:|---:|---:|---:|---:|")
for n in names:
    v = rows[n]
    se = st.stdev(v) / len(v) ** 0.5
    diff = st.mean(loom) - st.mean(v)
    joint = (st.variance(loom) / len(loom) + st.variance(v) / len(v)) ** 0.5
    print(f"| {n} | {len(v)} | {st.mean(v):.4f} | {st.stdev(v):.4f} | {se:.4f} | "
          + ("" if n == "loom" else f"{diff:+.4f} ({diff / joint:+.1f})") + " |")
PY

#!/usr/bin/env bash
# ResNet50 (keras.applications, 224x224x3, 1000 classes, random weights and images) in Loom,
# Keras 3 on TensorFlow and on JAX, and PyTorch (the same network written in
# benchmarks/resnet_peers.py), in one run. Loom reads the .keras file Keras saved.
# Speed: predict images/s at batch 32 and at batch 1, fit images/s at batch 32 (SGD), each tool
# warmed up, in --rounds rounds (default 2) where the tools take turns, so a slow spell of this
# shared machine falls on all of them; each tool's row is its best round.
# Memory and time: one process per tool that predicts the 32 images, and one that fits them for
# one epoch at batch 32 (`loom predict` and `loom fit` for Loom), under /usr/bin/time: peak RSS,
# user and system CPU seconds (model loading included, for every tool).
# Usage: benchmarks/resnet_vs_peers.sh [--rounds R] [--steps S]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=2 steps=3
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        *) echo "usage: $0 [--rounds R] [--steps S]" >&2; exit 2 ;;
    esac
done

source benchmarks/peers_venv.sh
swift build -c release --product loom >/dev/null
data=.build-bench-data/resnet50
if [ ! -f "$data/resnet50.keras" ]; then
    KERAS_BACKEND=jax "$venv/bin/python" benchmarks/resnet_peers.py --make "$data" 2>/dev/null
fi
peers="keras-tensorflow keras-jax torch"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for r in $(seq "$rounds"); do
    .build/release/loom bench model "$data/resnet50.keras" --steps "$steps" --json > "$out/speed.loom.$r"
    for tool in $peers; do
        "$venv/bin/python" benchmarks/resnet_peers.py --tool "$tool" --speed --data "$data" --steps "$steps" \
            > "$out/speed.$tool.$r" 2> "$out/speed.$tool.$r.log"
    done
done

timed() {  # name, command...
    local name=$1; shift
    /usr/bin/time -f '{"peak_rss_kib": %M, "user_seconds": %U, "system_seconds": %S, "wall_seconds": %e}' \
        -o "$out/time.$name" "$@" > "$out/log.$name" 2>&1 || { echo "$name failed:" >&2; tail -5 "$out/log.$name" >&2; exit 1; }
}
timed predict.loom .build/release/loom predict "$data/resnet50.keras" --input "$data/x32.npy" --output "$out/y.npy"
timed fit.loom .build/release/loom fit "$data/resnet50.keras" --x "$data/x32.npy" --y "$data/y32.npy" \
    --epochs 1 --batch-size 32 --save "$out/fitted.keras"
for tool in $peers; do
    timed "predict.$tool" "$venv/bin/python" benchmarks/resnet_peers.py --tool "$tool" --predict-rss --data "$data"
    timed "fit.$tool" "$venv/bin/python" benchmarks/resnet_peers.py --tool "$tool" --fit-rss --data "$data"
done

"$venv/bin/python" - "$out" "$rounds" "$peers" "$(nproc)" <<'PY'
import json, pathlib, sys
out, rounds, peers, cores = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(), int(sys.argv[4])
tools = ["loom"] + peers
names = {"loom": "Loom", "keras-tensorflow": "Keras 3 / TensorFlow", "keras-jax": "Keras 3 / JAX", "torch": "PyTorch (eager)"}
speed = {t: [json.loads((out / f"speed.{t}.{r}").read_text().strip().splitlines()[-1]) for r in range(1, rounds + 1)] for t in tools}
versions = {t: speed[t][0].get("version", "") for t in peers}
keys = [("inference_samples_per_second", "predict, batch 32"), ("batch1_samples_per_second", "predict, batch 1"),
        ("train_samples_per_second", "fit, batch 32 (SGD)")]
best = {t: {k: max(run[k] for run in speed[t]) for k, _ in keys} for t in tools}
print(f"ResNet50 224x224, images/s (best of {rounds} rounds; Loom with {cores} workers)")
print(f"{'':24}" + "".join(f"{names[t]:>22}" for t in tools) + f"{'Loom / fastest peer':>22}")
for k, label in keys:
    fastest = max(best[t][k] for t in peers)
    print(f"{label:24}" + "".join(f"{best[t][k]:22.2f}" for t in tools) + f"{best['loom'][k] / fastest:21.2f}x")
for k, label in keys:
    print(f"  {label} by round: " + "; ".join(f"{t} " + ", ".join(f"{run[k]:.2f}" for run in speed[t]) for t in tools))
print("\nOne process: predict 32 images / fit one epoch of 32 at batch 32 (model loading included)")
print(f"{'':24}{'peak RSS MiB':>14}{'user s':>9}{'system s':>10}{'sys/user':>10}{'wall s':>9}")
for job in ["predict", "fit"]:
    for t in tools:
        m = json.loads((out / f"time.{job}.{t}").read_text().strip().splitlines()[-1])
        print(f"{job + ', ' + names[t]:24}{m['peak_rss_kib'] / 1024:14.0f}{m['user_seconds']:9.2f}{m['system_seconds']:10.2f}"
              f"{m['system_seconds'] / max(m['user_seconds'], 0.01):10.2f}{m['wall_seconds']:9.2f}")
print("\nPeers: " + "; ".join(f"{names[t]}: {versions[t]}" for t in peers))
PY

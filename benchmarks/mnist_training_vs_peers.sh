#!/usr/bin/env bash
# Training the Keras MNIST MLP (784-512-512-10, relu, Dropout 0.2, RMSprop) and CNN (Adam) at
# batch 128 with Loom (one worker, then every core), Keras 3 on TensorFlow and on JAX, and
# PyTorch (threads = cores), in one run over the same data and number of steps. Prints a table
# of training and inference samples/s, peak RSS and test accuracy, and Loom's ratios.
# The peers live in a throwaway virtualenv (.build-bench-peers, git-ignored); PyTorch is the
# CPU wheel alone (the default pulls in gigabytes of CUDA).
# Loom's one- and all-core runs alternate over --rounds rounds (default 3): its rows are the run
# with the median training speed, and the speedup is the median of each round's paired ratio, so
# a slow spell of this shared machine lands on neither side of a ratio alone. Peers run once.
# Usage: benchmarks/mnist_training_vs_peers.sh [--mlp-epochs E] [--cnn-epochs E] [--cnn-steps S] [--rounds R]
set -euo pipefail
cd "$(dirname "$0")/.."
mlp_epochs=2 cnn_epochs=1 cnn_steps="" rounds=3
while [ $# -gt 0 ]; do
    case "$1" in
        --mlp-epochs) mlp_epochs=$2; shift 2 ;;
        --cnn-epochs) cnn_epochs=$2; shift 2 ;;
        --cnn-steps) cnn_steps=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        *) echo "usage: $0 [--mlp-epochs E] [--cnn-epochs E] [--cnn-steps S] [--rounds R]" >&2; exit 2 ;;
    esac
done

source benchmarks/peers_venv.sh
swift build -c release --product loom >/dev/null
cores=$(nproc)

out=$(mktemp -d)
run() {  # model epochs steps-args
    local model=$1 epochs=$2; shift 2
    for r in $(seq "$rounds"); do
        .build/release/loom bench train --model "$model" --epochs "$epochs" "$@" --workers 1 --json > "$out/$model.loom1.$r"
        .build/release/loom bench train --model "$model" --epochs "$epochs" "$@" --workers "$cores" --json > "$out/$model.loom.$r"
    done
    for tool in keras-tensorflow keras-jax torch; do
        "$venv/bin/python" benchmarks/mnist_training_peers.py --tool "$tool" --model "$model" --epochs "$epochs" "$@" \
            > "$out/$model.$tool" 2> "$out/$model.$tool.log"
    done
}
run mlp "$mlp_epochs"
run cnn "$cnn_epochs" ${cnn_steps:+--steps "$cnn_steps"}

"$venv/bin/python" - "$out" "$cores" "$rounds" <<'PY'
import json, statistics, sys, pathlib
out, cores, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
names = {"loom1": "Loom, 1 worker", "loom": f"Loom, {cores} workers", "keras-tensorflow": "Keras 3 / TensorFlow",
         "keras-jax": "Keras 3 / JAX", "torch": "PyTorch"}
for model in ["mlp", "cnn"]:
    runs = {k: [json.loads((out / f"{model}.{k}.{r}").read_text()) for r in range(1, rounds + 1)] for k in ["loom1", "loom"]}
    speed = {k: [run["train_samples_per_second"] for run in v] for k, v in runs.items()}
    # Loom's rows: the run with the median training speed (the lower middle one for an even count).
    rows = {k: sorted(v, key=lambda run: run["train_samples_per_second"])[(len(v) - 1) // 2] for k, v in runs.items()}
    rows.update({k: json.loads((out / f"{model}.{k}").read_text()) for k in names if k not in runs})
    loom = rows["loom"]
    paired = [two / one for one, two in zip(speed["loom1"], speed["loom"])]
    print(f"\n{model.upper()} ({loom['epochs']} epoch(s), batch 128)")
    print(f"{'tool':24} {'train/s':>10} {'infer/s':>10} {'peak RSS MiB':>13} {'test acc':>9} {'Loom train x':>13} {'Loom infer x':>13}")
    for key, name in names.items():
        r = rows[key]
        print(f"{name:24} {r['train_samples_per_second']:10.0f} {r['inference_samples_per_second']:10.0f} "
              f"{r['peak_rss_mib']:13.0f} {r['test_accuracy']:9.4f} "
              f"{loom['train_samples_per_second'] / r['train_samples_per_second']:13.2f} "
              f"{loom['inference_samples_per_second'] / r['inference_samples_per_second']:13.2f}")
    fastest = max(rows[k]["train_samples_per_second"] for k in ["keras-tensorflow", "keras-jax", "torch"])
    print(f"Loom ({cores} workers) / fastest peer, training: {loom['train_samples_per_second'] / fastest:.2f}x; "
          f"{cores}-worker speedup over 1 worker: {statistics.median(paired):.2f}x (median of {rounds} paired rounds)")
    print(f"  Loom train/s by round, 1 worker: {', '.join(f'{v:.0f}' for v in speed['loom1'])}; "
          f"{cores} workers: {', '.join(f'{v:.0f}' for v in speed['loom'])}; ratios: {', '.join(f'{v:.2f}' for v in paired)}")
PY

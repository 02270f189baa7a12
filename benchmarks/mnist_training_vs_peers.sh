#!/usr/bin/env bash
# Training the Keras MNIST MLP (784-512-512-10, relu, Dropout 0.2, RMSprop) and CNN (Adam) at
# batch 128 with Loom (one worker, then every core), Keras 3 on TensorFlow and on JAX, and
# PyTorch (threads = cores), in one run over the same data and number of steps. Prints a table
# of training and inference samples/s, peak RSS and test accuracy, and Loom's ratios.
# The peers live in a throwaway virtualenv (.build-bench-peers, git-ignored); PyTorch is the
# CPU wheel alone (the default pulls in gigabytes of CUDA).
# Usage: benchmarks/mnist_training_vs_peers.sh [--mlp-epochs E] [--cnn-epochs E] [--cnn-steps S]
set -euo pipefail
cd "$(dirname "$0")/.."
mlp_epochs=2 cnn_epochs=1 cnn_steps=""
while [ $# -gt 0 ]; do
    case "$1" in
        --mlp-epochs) mlp_epochs=$2; shift 2 ;;
        --cnn-epochs) cnn_epochs=$2; shift 2 ;;
        --cnn-steps) cnn_steps=$2; shift 2 ;;
        *) echo "usage: $0 [--mlp-epochs E] [--cnn-epochs E] [--cnn-steps S]" >&2; exit 2 ;;
    esac
done

source benchmarks/peers_venv.sh
swift build -c release --product loom >/dev/null
cores=$(nproc)

out=$(mktemp -d)
run() {  # model epochs steps-args
    local model=$1 epochs=$2; shift 2
    .build/release/loom bench train --model "$model" --epochs "$epochs" "$@" --workers 1 --json > "$out/$model.loom1"
    .build/release/loom bench train --model "$model" --epochs "$epochs" "$@" --workers "$cores" --json > "$out/$model.loom"
    for tool in keras-tensorflow keras-jax torch; do
        "$venv/bin/python" benchmarks/mnist_training_peers.py --tool "$tool" --model "$model" --epochs "$epochs" "$@" \
            > "$out/$model.$tool" 2> "$out/$model.$tool.log"
    done
}
run mlp "$mlp_epochs"
run cnn "$cnn_epochs" ${cnn_steps:+--steps "$cnn_steps"}

"$venv/bin/python" - "$out" "$cores" <<'PY'
import json, sys, pathlib
out, cores = pathlib.Path(sys.argv[1]), int(sys.argv[2])
names = {"loom1": "Loom, 1 worker", "loom": f"Loom, {cores} workers", "keras-tensorflow": "Keras 3 / TensorFlow",
         "keras-jax": "Keras 3 / JAX", "torch": "PyTorch"}
for model in ["mlp", "cnn"]:
    rows = {k: json.loads((out / f"{model}.{k}").read_text()) for k in names}
    loom = rows["loom"]
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
          f"{cores}-worker speedup over 1 worker: {loom['train_samples_per_second'] / rows['loom1']['train_samples_per_second']:.2f}x")
PY

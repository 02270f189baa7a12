#!/usr/bin/env bash
# The Keras MNIST CNN, forward and backward at batch 128 on one thread: `loom bench cnn` next to
# PyTorch (CPU build, one thread) in one run, plus this machine's one-thread sgemm for the
# GFLOP/s ratio. PyTorch lives in a throwaway virtualenv (.build-bench-venv, git-ignored).
# Rounds alternate the tools so a noisy neighbour hits both; each keeps its best.
# Usage: benchmarks/mnist_cnn_vs_torch.sh [--rounds R] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 seconds=3
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        *) echo "usage: $0 [--rounds R] [--seconds S]" >&2; exit 2 ;;
    esac
done

venv=.build-bench-venv
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    python3 -m venv "$venv"
    # The CPU wheel alone (the default torch pulls in gigabytes of CUDA), then what it imports.
    "$venv/bin/pip" install -q --no-deps torch==2.13.0+cpu
    "$venv/bin/pip" install -q typing_extensions filelock sympy networkx jinja2 fsspec numpy threadpoolctl
fi
swift build -c release --product loom >/dev/null

out=$(mktemp -d)
for r in $(seq "$rounds"); do
    OMP_NUM_THREADS=1 "$venv/bin/python" benchmarks/mnist_cnn_torch.py --seconds "$seconds" > "$out/torch.$r"
    .build/release/loom bench cnn --seconds "$seconds" --json > "$out/loom.$r"
done
.build/release/loom bench gemm --threads 1 --json > "$out/gemm"

"$venv/bin/python" - "$out" "$rounds" <<'PY'
import json, sys, pathlib
out, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])
def best(tool, key):
    return max(json.loads((out / f"{tool}.{r}").read_text())[key] for r in range(1, rounds + 1))
torch_sps = best("torch", "samples_per_second")
loom_sps = best("loom", "samples_per_second")
conv = best("loom", "conv_gflops")
gemm = {json.loads(l)["shape"]: json.loads(l)["gflops"] for l in (out / "gemm").read_text().splitlines()}
peak = max(gemm.values())
version = json.loads((out / "torch.1").read_text())["version"]
print(f"MNIST CNN training step (forward + backward), batch 128, one thread, best of {rounds} rounds each")
print(f"  PyTorch {version}: {torch_sps:8.1f} samples/s")
print(f"  Loom:            {loom_sps:8.1f} samples/s   ({loom_sps / torch_sps:.2f}x PyTorch; target >= 1.00)")
print(f"  Loom convolution FLOPs over the whole step: {conv:.1f} GFLOP/s = {conv / peak:.1%} of this run's best "
      f"one-thread sgemm ({peak:.1f} GFLOP/s; target >= 60%)")
PY
rm -rf "$out"

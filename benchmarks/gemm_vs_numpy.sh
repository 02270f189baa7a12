#!/usr/bin/env bash
# `loom bench gemm` side by side with NumPy's sgemm on the same shapes, in one run, as ratios.
# NumPy lives in a throwaway virtualenv (.build-bench-venv, git-ignored), never a dependency.
# Rounds alternate NumPy and Loom so that a noisy neighbour hits both; each side keeps its best.
# Usage: benchmarks/gemm_vs_numpy.sh [--threads N] [--rounds R] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=1 rounds=3 seconds=0.5
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        *) echo "usage: $0 [--threads N] [--rounds R] [--seconds S]" >&2; exit 2 ;;
    esac
done

venv=.build-bench-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q numpy threadpoolctl
fi
swift build -c release --product loom >/dev/null

out=$(mktemp -d)
for r in $(seq "$rounds"); do
    "$venv/bin/python" benchmarks/numpy_gemm.py --threads "$threads" --seconds "$seconds" > "$out/numpy.$r"
    .build/release/loom bench gemm --threads "$threads" --seconds "$seconds" --json > "$out/loom.$r"
done

"$venv/bin/python" - "$out" "$rounds" <<'PY'
import json, sys, pathlib
out, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])
def best(tool):
    result = {}
    for r in range(1, rounds + 1):
        for line in (out / f"{tool}.{r}").read_text().splitlines():
            row = json.loads(line)
            result[row["shape"]] = max(result.get(row["shape"], 0), row["gflops"])
    return result
numpy, loom = best("numpy"), best("loom")
meta = json.loads((out / "numpy.1").read_text().splitlines()[0])
print(f"NumPy {meta['numpy']} ({meta['blas']}), best of {rounds} rounds each")
print(f"{'shape (MxNxK)':<18}{'NumPy GFLOP/s':>15}{'Loom GFLOP/s':>15}{'Loom/NumPy':>12}")
worst = min(loom[s] / numpy[s] for s in numpy)
for s in numpy:
    print(f"{s:<18}{numpy[s]:>15.1f}{loom[s]:>15.1f}{loom[s] / numpy[s]:>12.2f}")
print(f"lowest ratio {worst:.2f} (target >= 0.90): {'PASS' if worst >= 0.9 else 'MISS'}")
PY
rm -rf "$out"

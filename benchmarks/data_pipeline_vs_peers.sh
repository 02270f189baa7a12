#!/usr/bin/env bash
# Loom's input pipeline beside tf.data, Pillow and pandas, in one run on the same files:
# decode images/s (10,000 MNIST PNGs, 2,000 224x224 JPEGs) with 1 and 2 workers, CSV rows/s
# (500,000 rows x 21 columns), and the peak RSS of a 100,000-image pipeline with a shuffle
# buffer of 10,000. The peers live in a throwaway virtualenv (.build-bench-data).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.build-bench-data
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import PIL, pandas, tensorflow, pyarrow" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q pillow pandas numpy tensorflow-cpu pyarrow
fi
swift build -c release
"$VENV/bin/python" benchmarks/data_pipeline_peers.py --loom .build/release/loom --work "$VENV/files" "$@"

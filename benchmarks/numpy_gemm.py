"""sgemm GFLOP/s through NumPy (its bundled OpenBLAS), on the shapes `loom bench gemm` uses,
timed the same way: best of repeated batches over at least --seconds per shape.
Prints one JSON object per line, like `loom bench gemm --json`."""
import argparse
import json
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

SHAPES = [(s, s, s, False, False) for s in (256, 512, 1024, 2048)]
for inp, out in ((784, 512), (512, 512), (512, 10)):
    SHAPES += [(128, out, inp, False, False),  # forward  Y = X·W
               (128, inp, out, False, True),   # dX = dY·Wᵀ
               (inp, out, 128, True, False)]   # dW = Xᵀ·dY


def best_seconds(body, minimum):
    body()
    best, spent, calls = float("inf"), 0.0, 1
    while spent < minimum:
        start = time.perf_counter()
        for _ in range(calls):
            body()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed / calls)
        spent += elapsed
        if elapsed < 0.02:
            calls *= 2
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        info = [f"{i['internal_api']} {i['version']} {i.get('architecture', '')} threads={i['num_threads']}"
                for i in threadpool_info() if i["user_api"] == "blas"]
        for m, n, k, ta, tb in SHAPES:
            a = rng.random((k, m) if ta else (m, k), dtype=np.float32)
            b = rng.random((n, k) if tb else (k, n), dtype=np.float32)
            aa, bb = (a.T if ta else a), (b.T if tb else b)
            out = np.empty((m, n), dtype=np.float32)
            seconds = best_seconds(lambda: np.matmul(aa, bb, out=out), args.seconds)
            print(json.dumps({"op": "sgemm", "shape": f"{m}x{n}x{k}", "gflops": round(2 * m * n * k / seconds / 1e9, 2),
                              "threads": args.threads, "numpy": np.__version__, "blas": "; ".join(info)}), flush=True)


if __name__ == "__main__":
    main()

"""Training-step throughput of the Keras MNIST CNN in PyTorch, one thread, timed like
`loom bench cnn`: forward, cross-entropy and backward (every weight's gradient), best of
repeated steps over at least --seconds. Prints one JSON line."""
import argparse
import json
import time

import torch
from torch import nn


def best_seconds(body, minimum):
    body()
    best, spent = float("inf"), 0.0
    while spent < minimum:
        start = time.perf_counter()
        body()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(64 * 12 * 12, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
    model.train()
    x = torch.rand(args.batch_size, 1, 28, 28)
    y = torch.arange(args.batch_size) % 10

    def step():
        model.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()

    seconds = best_seconds(step, args.seconds)
    print(json.dumps({"tool": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(),
                      "batch": args.batch_size, "seconds_per_step": seconds,
                      "samples_per_second": round(args.batch_size / seconds, 1)}))


if __name__ == "__main__":
    main()

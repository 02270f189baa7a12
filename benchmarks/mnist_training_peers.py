"""The Keras MNIST MLP or CNN trained with Keras 3 (TensorFlow or JAX backend) or PyTorch, for
benchmarks/mnist_training_vs_peers.sh: the same data, model, optimizer and batch size as
`loom bench train`. Prints one JSON object: training and inference samples/s, peak RSS and test
accuracy. Keras is timed over one whole fit call after its step functions are compiled (no
per-batch callback); PyTorch from the end of its first step.

Usage: python mnist_training_peers.py --tool keras-tensorflow|keras-jax|torch --model mlp|cnn
       [--epochs E] [--steps S] [--data datasets/mnist]
"""
import argparse
import gzip
import json
import os
import resource
import struct
import sys
import time

import numpy as np


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(folder, flatten):
    x = idx(f"{folder}/train-images-idx3-ubyte.gz").astype(np.float32) / 255
    y = idx(f"{folder}/train-labels-idx1-ubyte.gz").astype(np.int64)
    xt = idx(f"{folder}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255
    yt = idx(f"{folder}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    shape = (-1, 784) if flatten else (-1, 28, 28, 1)
    return x.reshape(shape), y, xt.reshape(shape), yt


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def keras_run(args, x, y, xt, yt):
    import keras
    from keras import layers
    keras.utils.set_random_seed(args.seed)
    if args.model == "mlp":
        model = keras.Sequential([keras.Input((784,)), layers.Dense(512, activation="relu"), layers.Dropout(0.2),
                                  layers.Dense(512, activation="relu"), layers.Dropout(0.2),
                                  layers.Dense(10, activation="softmax")])
        optimizer = keras.optimizers.RMSprop()
    else:
        model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
                                  layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Dropout(0.25),
                                  layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.5),
                                  layers.Dense(10, activation="softmax")])
        optimizer = keras.optimizers.Adam()
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # Timed as Keras users run it: one fit call, no per-batch callback (on JAX a callback that
    # runs every batch makes each step wait for the last, which halved its speed). The step
    # functions are compiled first by a fit on two full batches and one of the last batch's
    # size (the shapes the timed fit meets); those 2-3 extra steps of training are not timed.
    n = len(x)
    tail = n % args.batch_size
    warm = 2 * args.batch_size + (tail if args.steps is None else 0)
    model.fit(x[:warm], y[:warm], batch_size=args.batch_size, epochs=1, shuffle=True, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, steps_per_epoch=args.steps, shuffle=True, verbose=0)
    elapsed = time.perf_counter() - start
    samples = args.epochs * (args.steps * args.batch_size if args.steps else n)
    model.predict(xt[:args.batch_size], batch_size=args.batch_size, verbose=0)  # compiles
    start = time.perf_counter()
    predictions = model.predict(xt, batch_size=args.batch_size, verbose=0)
    infer = time.perf_counter() - start
    return samples / elapsed, infer, predictions


def torch_run(args, x, y, xt, yt):
    import torch
    from torch import nn
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(args.seed)
    if args.model == "mlp":
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2), nn.Linear(512, 512), nn.ReLU(),
                              nn.Dropout(0.2), nn.Linear(512, 10))
        # Keras's RMSprop defaults: rho 0.9, epsilon 1e-7.
        optimizer = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)
    else:
        model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
                              nn.Linear(128, 10))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7)
        x, xt = x.transpose(0, 3, 1, 2).copy(), xt.transpose(0, 3, 1, 2).copy()
    loss_fn = nn.CrossEntropyLoss()  # softmax + cross-entropy on the logits
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    n, stamps = len(x), []
    steps = args.steps or (n + args.batch_size - 1) // args.batch_size
    model.train()
    for epoch in range(args.epochs):
        order = torch.randperm(n)
        for step in range(steps):
            picks = order[(step * args.batch_size) % n:][:args.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(xs[picks]), ys[picks])
            loss.backward()
            optimizer.step()
            stamps.append(time.perf_counter())
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        predictions = torch.cat([torch.softmax(model(torch.from_numpy(xt[i:i + args.batch_size])), 1)
                                 for i in range(0, len(xt), args.batch_size)]).numpy()
    infer = time.perf_counter() - start
    # Eager PyTorch on the CPU runs each step to its end, so stamps cost nothing; the first step
    # (allocator warm-up) is not timed.
    return (len(stamps) - 1) * args.batch_size / (stamps[-1] - stamps[0]), infer, predictions


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tool", required=True, choices=["keras-tensorflow", "keras-jax", "torch"])
    p.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--data", default="datasets/mnist")
    p.add_argument("--seed", type=int, default=0, help="initialization, dropout and shuffling seed")
    args = p.parse_args()
    if args.tool.startswith("keras"):
        os.environ["KERAS_BACKEND"] = args.tool.split("-")[1]
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    x, y, xt, yt = load(args.data, args.model == "mlp")
    run = torch_run if args.tool == "torch" else keras_run
    train, infer, predictions = run(args, x, y, xt, yt)
    accuracy = float((predictions.argmax(1) == yt).mean())
    print(json.dumps({"tool": args.tool, "model": args.model, "train_samples_per_second": round(train, 1),
                      "inference_samples_per_second": round(len(xt) / infer, 1), "peak_rss_mib": round(peak_rss_mib(), 1),
                      "test_accuracy": accuracy, "epochs": args.epochs}))


if __name__ == "__main__":
    sys.exit(main())

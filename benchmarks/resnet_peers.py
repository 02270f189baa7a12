"""ResNet50 (224x224x3, 1000 classes) in Keras 3 on TensorFlow or JAX, or in PyTorch, for
benchmarks/resnet_vs_peers.sh.

  --make DIR     writes DIR/resnet50.keras (keras.applications.ResNet50(weights=None), compiled
                 with SGD(0.01) and categorical cross-entropy), DIR/x32.npy (32 random images in
                 [0, 1)) and DIR/y32.npy (one-hot labels); run with any Keras backend.
  --speed        predict images/s at batch 32 and at batch 1, and fit images/s at batch 32.
  --predict-rss  predicts the 32 images once at batch 32 (the process is timed from outside).
  --fit-rss      fits one epoch on the 32 images at batch 32.

Keras is timed as its users run it: the .keras file Loom reads, predict and fit calls with no
per-batch callback, after a warm-up call has compiled its step functions; batch 1 through
predict_on_batch, Keras's one-batch call on its compiled predict function. PyTorch runs a ResNet50
of the same shape written below (v1 bottlenecks, stride on the first 1x1, as Keras's), eager, in
torch.inference_mode for inference, with its default threads. Prints one JSON object.

Usage: python resnet_peers.py --tool keras-tensorflow|keras-jax|torch (--speed|--predict-rss|--fit-rss)
       --data DIR [--batches 2] [--singles 10] [--steps 3]
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np


def keras_model(data):
    import keras
    return keras.saving.load_model(f"{data}/resnet50.keras")


def make(data):
    import keras
    os.makedirs(data, exist_ok=True)
    model = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3), classes=1000)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy")
    model.save(f"{data}/resnet50.keras")
    rng = np.random.RandomState(0)
    np.save(f"{data}/x32.npy", rng.rand(32, 224, 224, 3).astype(np.float32))
    np.save(f"{data}/y32.npy", np.eye(1000, dtype=np.float32)[rng.randint(0, 1000, 32)])
    return {"keras": keras.__version__, "backend": keras.backend.backend()}


def keras_speed(args, x, y):
    model = keras_model(args.data)
    model.predict(x, batch_size=32, verbose=0)
    xs = np.concatenate([x] * args.batches)
    start = time.perf_counter()
    model.predict(xs, batch_size=32, verbose=0)
    inference = len(xs) / (time.perf_counter() - start)
    one = x[:1]
    model.predict_on_batch(one)
    start = time.perf_counter()
    for _ in range(args.singles):
        model.predict_on_batch(one)
    single = args.singles / (time.perf_counter() - start)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False)
    xs, ys = np.concatenate([x] * args.steps), np.concatenate([y] * args.steps)
    start = time.perf_counter()
    model.fit(xs, ys, batch_size=32, epochs=1, verbose=0, shuffle=False)
    training = len(xs) / (time.perf_counter() - start)
    return inference, single, training


def torch_resnet50():
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin, mid, stride, shortcut):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, mid, 1, stride), nn.BatchNorm2d(mid, eps=1.001e-5), nn.ReLU(inplace=True),
                nn.Conv2d(mid, mid, 3, 1, 1), nn.BatchNorm2d(mid, eps=1.001e-5), nn.ReLU(inplace=True),
                nn.Conv2d(mid, 4 * mid, 1), nn.BatchNorm2d(4 * mid, eps=1.001e-5))
            self.shortcut = nn.Sequential(nn.Conv2d(cin, 4 * mid, 1, stride), nn.BatchNorm2d(4 * mid, eps=1.001e-5)) \
                if shortcut else nn.Identity()
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.relu(self.body(x) + self.shortcut(x))

    layers = [nn.Conv2d(3, 64, 7, 2, 3), nn.BatchNorm2d(64, eps=1.001e-5), nn.ReLU(inplace=True),
              nn.ZeroPad2d(1), nn.MaxPool2d(3, 2)]
    cin = 64
    for mid, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for b in range(blocks):
            layers.append(Bottleneck(cin, mid, stride if b == 0 else 1, b == 0))
            cin = 4 * mid
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)]
    return nn.Sequential(*layers)


def torch_speed(args, x, y):
    import torch
    model = torch_resnet50()
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    labels = torch.from_numpy(y.argmax(1))
    model.eval()
    with torch.inference_mode():
        model(xt)
        start = time.perf_counter()
        for _ in range(args.batches):
            model(xt)
        inference = args.batches * len(xt) / (time.perf_counter() - start)
        one = xt[:1]
        model(one)
        start = time.perf_counter()
        for _ in range(args.singles):
            model(one)
        single = args.singles / (time.perf_counter() - start)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(xt), labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    training = args.steps * len(xt) / (time.perf_counter() - start)
    return inference, single, training


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool", choices=["keras-tensorflow", "keras-jax", "torch"])
    parser.add_argument("--make")
    parser.add_argument("--data")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--predict-rss", action="store_true")
    parser.add_argument("--fit-rss", action="store_true")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--singles", type=int, default=10)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    if args.make:
        print(json.dumps(make(args.make)))
        return
    if args.tool.startswith("keras"):
        os.environ["KERAS_BACKEND"] = args.tool.split("-")[1]
    x, y = np.load(f"{args.data}/x32.npy"), np.load(f"{args.data}/y32.npy")
    result = {"tool": args.tool}
    if args.speed:
        speed = torch_speed if args.tool == "torch" else keras_speed
        inference, single, training = speed(args, x, y)
        result.update(inference_samples_per_second=inference, batch1_samples_per_second=single,
                      train_samples_per_second=training)
    elif args.tool == "torch":
        import torch
        model = torch_resnet50()
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        if args.predict_rss:
            model.eval()
            with torch.inference_mode():
                model(xt)
        else:
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
            loss = torch.nn.CrossEntropyLoss()(model(xt), torch.from_numpy(y.argmax(1)))
            loss.backward()
            optimizer.step()
    else:
        model = keras_model(args.data)
        if args.predict_rss:
            model.predict(x, batch_size=32, verbose=0)
        else:
            model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    if args.tool == "torch":
        import torch
        result["version"] = torch.__version__
    else:
        import keras
        backend = __import__(keras.backend.backend())
        result["version"] = f"keras {keras.__version__}, {keras.backend.backend()} {backend.__version__}"
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()

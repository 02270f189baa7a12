"""Makes the benchmark files, then times Loom, tf.data, Pillow and pandas on them (see
data_pipeline_vs_peers.sh). Each figure is the best of --rounds measurements (alternating between
the tools and worker counts) of --repeats passes each; ratios are same-run."""
import argparse
import gzip
import json
import os
import resource
import subprocess
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def mnist_images():
    with gzip.open(os.path.join(ROOT, "datasets", "mnist", "t10k-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(ROOT, "datasets", "mnist", "t10k-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


def make_files(work):
    os.makedirs(work, exist_ok=True)
    images, labels = mnist_images()
    png = os.path.join(work, "mnist_png")
    if not os.path.isdir(png):
        for i, (image, label) in enumerate(zip(images, labels)):
            os.makedirs(os.path.join(png, str(label)), exist_ok=True)
            Image.fromarray(image).save(os.path.join(png, str(label), f"{i:05d}.png"))
    jpeg = os.path.join(work, "jpeg224")
    if not os.path.isdir(jpeg):
        os.makedirs(os.path.join(jpeg, "photos"))
        photo = Image.open(os.path.join(ROOT, "datasets", "photos", "flower.jpg")).convert("RGB")
        rng = np.random.default_rng(0)
        for i in range(2000):
            side = int(rng.integers(224, 427))
            left, top = int(rng.integers(0, photo.width - side + 1)), int(rng.integers(0, photo.height - side + 1))
            crop = photo.crop((left, top, left + side, top + side)).resize((224, 224), Image.BILINEAR)
            if i % 2:
                crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
            crop.save(os.path.join(jpeg, "photos", f"{i:04d}.jpg"), quality=90)
    many = os.path.join(work, "mnist_100k")
    if not os.path.isdir(many):
        # 100,000 files: the 10,000 test digits ten times, each copy shifted by a pixel.
        for i in range(100_000):
            label = labels[i % 10_000]
            os.makedirs(os.path.join(many, str(label)), exist_ok=True)
            Image.fromarray(np.roll(images[i % 10_000], i // 10_000, axis=1)).save(os.path.join(many, str(label), f"{i:06d}.png"))
    csv = os.path.join(work, "numeric_500k.csv")
    if not os.path.exists(csv):
        rng = np.random.default_rng(1)
        values = rng.normal(size=(500_000, 21)).astype(np.float32)
        np.savetxt(csv, values, fmt="%.6f", delimiter=",", header=",".join(f"c{i}" for i in range(21)), comments="")
    return png, jpeg, many, csv


def files_under(folder):
    out = []
    for root, _, names in os.walk(folder):
        out += [os.path.join(root, n) for n in names]
    return sorted(out)


def best(runs, fn):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def loom(args, *command):
    out = subprocess.run([args.loom, "bench", *command, "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def host_ceiling(args, folder, extra):
    """What the machine gives two independent decoders: the wall time of one single-worker Loom
    process against two running at once (separate processes share no memory, locks or threads,
    so their ratio is the host's own two-core speedup, shared caches and neighbours included)."""
    def wall(copies):
        command = [args.loom, "bench", "decode", folder, "--workers", "1", "--repeats", str(3 * args.repeats), *extra]
        start = time.perf_counter()
        procs = [subprocess.Popen(command, stdout=subprocess.DEVNULL) for _ in range(copies)]
        if any(p.wait() != 0 for p in procs):
            raise SystemExit(f"{' '.join(command)} failed")
        return time.perf_counter() - start
    return wall(1), wall(2)


def tf_decode_rates(files, workers, runs, resize=None):
    """tf.data: read + decode_image (+ resize) with `workers` parallel calls, batched so the
    Python loop does not count."""
    import tensorflow as tf
    if not getattr(tf_decode_rates, "configured", False):
        # Once per process: tf.data's own thread pool (set per dataset below) does the work.
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(2)
        tf_decode_rates.configured = True

    def decode(path):
        image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
        return tf.image.resize(image, resize) if resize else image

    options = tf.data.Options()
    options.threading.private_threadpool_size = workers
    options.threading.max_intra_op_parallelism = 1
    ds = tf.data.Dataset.from_tensor_slices(files).map(decode, num_parallel_calls=workers).batch(256).with_options(options)

    def run():
        for _ in ds:
            pass
    run()  # warm-up: graph tracing
    return len(files) / best(runs, run)


def pillow_rate(files, runs):
    def run():
        for f in files:
            np.asarray(Image.open(f))
    return len(files) / best(runs, run)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--loom", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--repeats", type=int, default=3, help="passes per measurement; the fastest counts")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per tool and worker count, alternating")
    args = parser.parse_args()
    png, jpeg, many, csv = make_files(args.work)
    rows = []
    for name, folder, resize in [("MNIST PNG 28x28 gray (10,000)", png, None), ("JPEG 224x224 RGB q90 (2,000)", jpeg, None),
                                 ("JPEG 224x224 -> 112x112 (2,000)", jpeg, (112, 112))]:
        files = files_under(folder)
        extra = ["--resize", f"{resize[0]}x{resize[1]}"] if resize else []
        # Each tool's 1- and 2-worker runs alternate over the rounds and the best of each counts,
        # so a slow spell of the shared machine does not land on one side of a ratio only.
        loom1 = loom2 = tf1 = tf2 = pil = 0.0
        solo = pair = float("inf")
        for _ in range(args.rounds):
            one, two = host_ceiling(args, folder, extra)
            solo, pair = min(solo, one), min(pair, two)
            loom1 = max(loom1, loom(args, "decode", folder, "--workers", "1", "--repeats", str(args.repeats), *extra)["images_per_s"])
            loom2 = max(loom2, loom(args, "decode", folder, "--workers", "2", "--repeats", str(args.repeats), *extra)["images_per_s"])
            tf1 = max(tf1, tf_decode_rates(files, 1, args.repeats, resize))
            tf2 = max(tf2, tf_decode_rates(files, 2, args.repeats, resize))
            pil = max(pil, pillow_rate(files, args.repeats)) if resize is None else float("nan")
        rows.append((name, loom1, loom2, tf1, tf2, pil, 2 * solo / pair))
    print(f"\n{'images/s':34s} {'Loom 1w':>9s} {'Loom 2w':>9s} {'tf.data 1w':>11s} {'tf.data 2w':>11s} {'Pillow':>8s}"
          f" {'Loom/tf 1w':>10s} {'Loom/tf 2w':>10s} {'Loom 2w/1w':>10s} {'host 2/1':>9s}")
    for name, l1, l2, t1, t2, p, host in rows:
        print(f"{name:34s} {l1:9.0f} {l2:9.0f} {t1:11.0f} {t2:11.0f} {p:8.0f} {l1 / t1:10.2f} {l2 / t2:10.2f} {l2 / l1:10.2f}"
              f" {host:9.2f}")
    print("host 2/1: two single-worker Loom processes at once against one alone (wall time): the two-core speedup the"
          " machine itself gives independent decoders in this run.")

    import pandas as pd
    loom_csv1 = loom_csv2 = pandas_c = pandas_arrow = 0.0
    for _ in range(args.rounds):
        loom_csv1 = max(loom_csv1, loom(args, "csv", csv, "--workers", "1", "--repeats", str(args.repeats))["rows_per_s"])
        loom_csv2 = max(loom_csv2, loom(args, "csv", csv, "--workers", "2", "--repeats", str(args.repeats))["rows_per_s"])
        pandas_c = max(pandas_c, 500_000 / best(args.repeats, lambda: pd.read_csv(csv, engine="c", dtype=np.float32)))
        pandas_arrow = max(pandas_arrow, 500_000 / best(args.repeats, lambda: pd.read_csv(csv, engine="pyarrow")))
    print(f"\n{'CSV rows/s (500,000 x 21)':34s} {'Loom 1w':>9s} {'Loom 2w':>9s} {'pandas C':>9s} {'pandas pyarrow':>15s}"
          f" {'Loom 1w/C':>10s} {'Loom 2w/C':>10s}")
    print(f"{'':34s} {loom_csv1:9.0f} {loom_csv2:9.0f} {pandas_c:9.0f} {pandas_arrow:15.0f} {loom_csv1 / pandas_c:10.2f}"
          f" {loom_csv2 / pandas_c:10.2f}")

    memory = loom(args, "pipeline", many, "--workers", "2", "--shuffle-buffer", "10000", "--batch-size", "128")
    print(f"\nPipeline over {memory['images']} PNGs (decode, shuffle buffer 10,000, batch 128, prefetch 2; 2 workers): "
          f"{memory['images_per_s']} images/s, peak RSS {memory['peak_rss_mib']:.1f} MiB "
          f"(the shuffle buffer's samples: {memory['shuffle_buffer_mib']:.1f} MiB)")
    print(f"Python peak RSS of this script (for scale): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()

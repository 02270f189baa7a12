"""PNG and JPEG files made by other encoders (pypng, Pillow), with what TensorFlow's decode_image
(the decoder keras.utils.image_dataset_from_directory uses) returns for each at 1, 3 and 4
channels: Loom's decoders must agree. 16-bit PNGs are decoded at 16 bits and divided by 257
(Loom keeps their precision on the 8-bit scale; Keras cuts them to 8 bits).

Run in a virtualenv with tensorflow-cpu, pillow and pypng (benchmarks/data_pipeline_vs_peers.sh
makes one: .build-bench-data/bin/pip install pypng):
    .build-bench-data/bin/python scripts/make_image_fixtures.py
Writes Tests/LoomDataTests/Fixtures/images/<name>.png|.jpg and <name>.c<N>.npy, and images.json.
"""
import io
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import png  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LoomDataTests", "Fixtures", "images")
W, H = 13, 9


def ramp(channels, depth):
    top = (1 << depth) - 1
    y, x = np.mgrid[0:H, 0:W]
    planes = [((x * 37 + y * 91 + c * 1013) * (top // 97 + 1)) % (top + 1) for c in range(channels)]
    return np.stack(planes, axis=-1).astype(np.uint16 if depth > 8 else np.uint8)


def pypng_file(pixels, channels, depth, **kw):
    rows = pixels.reshape(H, W * channels).tolist()
    buf = io.BytesIO()
    png.Writer(width=W, height=H, greyscale=channels <= 2, alpha=channels in (2, 4), bitdepth=depth, **kw).write(buf, rows)
    return buf.getvalue()


def palette_file(transparent):
    indices = (ramp(1, 8)[..., 0] % 6).tolist()
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30), (200, 100, 50), (255, 255, 255)]
    palette = [c + ((c[0] // 2,) if transparent else ()) for c in colors]
    buf = io.BytesIO()
    png.Writer(width=W, height=H, palette=palette, bitdepth=8).write(buf, indices)
    return buf.getvalue()


def pillow_jpeg(mode, **kw):
    base = ramp(3, 8)
    image = Image.fromarray(base, "RGB")
    if mode == "L":
        image = image.convert("L")
    elif mode == "CMYK":
        image = image.convert("CMYK")
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=92, **kw)
    return buf.getvalue()


def files():
    return {
        "gray8.png": pypng_file(ramp(1, 8), 1, 8),
        "gray16.png": pypng_file(ramp(1, 16), 1, 16),
        "gray2.png": pypng_file(ramp(1, 2), 1, 2),
        "gray_alpha8.png": pypng_file(ramp(2, 8), 2, 8),
        "rgb8.png": pypng_file(ramp(3, 8), 3, 8),
        "rgb16.png": pypng_file(ramp(3, 16), 3, 16),
        "rgba8.png": pypng_file(ramp(4, 8), 4, 8),
        "rgba16.png": pypng_file(ramp(4, 16), 4, 16),
        "rgb8_interlaced.png": pypng_file(ramp(3, 8), 3, 8, interlace=True),
        "palette.png": palette_file(False),
        "palette_transparent.png": palette_file(True),
        "gray.jpg": pillow_jpeg("L"),
        "rgb_baseline.jpg": pillow_jpeg("RGB"),
        "rgb_444.jpg": pillow_jpeg("RGB", subsampling=0),
        "rgb_progressive.jpg": pillow_jpeg("RGB", progressive=True),
        "cmyk.jpg": pillow_jpeg("CMYK"),
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    listing = {"tensorflow_version": tf.__version__, "files": {}}
    for name, data in files().items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        native = tf.io.decode_image(data, expand_animations=False).numpy()
        entry = {"channels": int(native.shape[-1]), "decoded": []}
        # A 16-bit PNG keeps its 16 bits in Loom, on the 8-bit scale (v / 257); TensorFlow's
        # decode_png with dtype uint16 gives the same transforms at 16 bits.
        sixteen = name.endswith("16.png")
        for c in (1, 3, 4):
            try:
                if sixteen:
                    decoded = (tf.io.decode_png(data, channels=c, dtype=tf.uint16).numpy().astype(np.float64) / 257).astype(np.float32)
                else:
                    decoded = tf.io.decode_image(data, channels=c, expand_animations=False).numpy()
            except tf.errors.InvalidArgumentError:
                continue  # JPEG gives 1 or 3 channels; CMYK only its own 4
            np.save(os.path.join(OUT, f"{name}.c{c}.npy"), decoded)
            entry["decoded"].append(c)
        if name == "cmyk.jpg":
            # TensorFlow returns the stored (Adobe-inverted) CMYK planes; the test converts them.
            np.save(os.path.join(OUT, f"{name}.c0.npy"), native)
        listing["files"][name] = entry
    with open(os.path.join(OUT, "images.json"), "w") as f:
        json.dump(listing, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()

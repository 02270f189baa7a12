"""HDF5 files of every kind Loom's own HDF5 reader must read (or refuse), written by h5py.

Run with the Keras reference virtualenv (../keras-ref/bin/python scripts/make_hdf5_fixtures.py).
Writes Tests/LoomModelsTests/Fixtures/hdf5/*.h5 and expected.json: for each file, each dataset's
shape and values as h5py reads them (as float32), each group's number of links, and the files
Loom must refuse with the words its error must hold.
"""
import json
import os

import h5py
import numpy as np

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "LoomModelsTests", "Fixtures", "hdf5")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)


def fill(f):
    """The same content in every readable file: nested groups, every numeric type Keras or a user
    may store, a scalar, an empty and an unwritten dataset, a compact one, a group of many links."""
    g = f.create_group("layers/dense/vars")
    g.attrs["name"] = "dense"
    g["0"] = rng.standard_normal((4, 3)).astype("<f4")
    g["1"] = rng.standard_normal(3).astype("<f4")
    t = f.create_group("types")
    t["f64"] = rng.standard_normal((2, 5))
    t["f16"] = rng.standard_normal(7).astype("<f2")
    t["be32"] = rng.standard_normal((3, 2)).astype(">f4")
    t["be64"] = rng.standard_normal(4).astype(">f8")
    t["i8"] = np.array([-128, -1, 0, 127], dtype="i1")
    t["u16"] = np.array([0, 1, 65535], dtype="<u2")
    t["be_i32"] = np.array([-7, 123456], dtype=">i4")
    t["i64_scalar"] = np.int64(-123456789)
    t["i32_scalar"] = np.int32(41)
    t["u8"] = np.arange(10, dtype="u1")
    t.create_dataset("empty", shape=(0, 3), dtype="f4")
    t.create_dataset("unwritten", shape=(2, 2), dtype="f4")
    # Compact storage (the data in the object header) through the low-level API.
    values = rng.standard_normal((2, 3)).astype("f4")
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    space = h5py.h5s.create_simple(values.shape)
    dataset = h5py.h5d.create(t.id, b"compact", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
    dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, values)
    many = f.create_group("many")
    for i in range(40):
        many[str(i)] = np.full(2, i, dtype="f4")


def describe(f):
    datasets, groups = {}, {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            datasets[name] = {"shape": list(obj.shape), "values": np.asarray(obj[()], dtype="f4").reshape(-1).tolist()}
        else:
            groups[name] = len(obj)

    f.visititems(visit)
    groups[""] = len(f)
    return {"datasets": datasets, "groups": groups}


expected = {"h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version, "read": {}, "refused": {}}
for name, options in [("earliest", {}), ("latest_small", {"libver": "latest"}), ("userblock", {"userblock_size": 512})]:
    path = os.path.join(out, f"{name}.h5")
    with h5py.File(path, "w", **options) as f:
        if name == "latest_small":
            # The newest format stores a group of more than 8 links in a fractal heap, which Loom
            # refuses (see dense.h5); this one keeps every group small.
            g = f.create_group("layers/dense/vars")
            g["0"] = rng.standard_normal((4, 3)).astype("<f4")
            g["1"] = np.int64(5)
            f["half"] = rng.standard_normal(3).astype("<f2")
        else:
            fill(f)
    with h5py.File(path, "r") as f:
        expected["read"][name] = describe(f)

with h5py.File(os.path.join(out, "chunked.h5"), "w") as f:
    f.create_dataset("x", data=rng.standard_normal((8, 8)).astype("f4"), chunks=(4, 4), compression="gzip")
expected["refused"]["chunked"] = {"dataset": "x", "message": "stored in chunks"}
with h5py.File(os.path.join(out, "dense.h5"), "w", libver="latest") as f:
    for i in range(20):
        f[str(i)] = np.zeros(1, dtype="f4")
expected["refused"]["dense"] = {"dataset": "0", "message": "fractal heap"}
with h5py.File(os.path.join(out, "strings.h5"), "w") as f:
    f["x"] = np.array([b"abc", b"def"])
expected["refused"]["strings"] = {"dataset": "x", "message": "not numbers"}

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
print("wrote", sorted(os.listdir(out)), "with h5py", h5py.__version__, "HDF5", h5py.version.hdf5_version)

"""Small .npy files written by NumPy for Loom's NPY reader tests.

Every array holds arange values (so the test computes what to expect): each supported element
type, Fortran order, format versions 2.0 and 3.0, and files Loom must refuse (big-endian, a
truncated file, an unsupported element type).

Run: ../keras-ref/bin/python scripts/make_npy_fixtures.py  (any Python with NumPy)
Writes Tests/LoomDataTests/Fixtures/*.npy
"""
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LoomDataTests", "Fixtures")


def main():
    os.makedirs(OUT, exist_ok=True)
    a = np.arange(24).reshape(2, 3, 4)
    for name, dtype in [("float32", "<f4"), ("float64", "<f8"), ("int32", "<i4"), ("int64", "<i8"), ("uint8", "|u1")]:
        np.save(os.path.join(OUT, f"{name}.npy"), a.astype(dtype))
    np.save(os.path.join(OUT, "bool.npy"), (a % 3 == 0))
    np.save(os.path.join(OUT, "fortran.npy"), np.asfortranarray(a.astype("<f4")))
    np.save(os.path.join(OUT, "vector.npy"), np.arange(5, dtype="<f4"))
    np.save(os.path.join(OUT, "scalar.npy"), np.array(7.5, dtype="<f4"))
    for version in [(2, 0), (3, 0)]:
        with open(os.path.join(OUT, f"version{version[0]}.npy"), "wb") as f:
            np.lib.format.write_array(f, a.astype("<f4"), version=version)
    np.save(os.path.join(OUT, "bigendian.npy"), a.astype(">f4"))
    np.save(os.path.join(OUT, "complex.npy"), a.astype("<c8"))
    with open(os.path.join(OUT, "float32.npy"), "rb") as f:
        whole = f.read()
    with open(os.path.join(OUT, "truncated.npy"), "wb") as f:
        f.write(whole[:-10])
    print("numpy", np.__version__, "wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()

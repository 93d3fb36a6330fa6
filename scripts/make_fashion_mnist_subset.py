#!/usr/bin/env python3
"""Build the embedded Fashion-MNIST subset (data/fashion-mnist-subset/).

Takes, in file order, the first PER_CLASS_TRAIN images of each class from the
official training set and the first PER_CLASS_TEST of each class from the
official test set, keeps their original relative order, and writes them in the
official idx format and file names, gzipped with a zero timestamp so the output
is byte-for-byte reproducible.

Usage: python3 scripts/make_fashion_mnist_subset.py SOURCE_DIR OUT_DIR
where SOURCE_DIR holds the four official .gz files (for example
/usr/share/datasets/fashion-mnist from Debian's dataset-fashion-mnist).
"""

import gzip
import struct
import sys
from pathlib import Path

PER_CLASS_TRAIN = 500
PER_CLASS_TEST = 100
CLASSES = 10


def read_idx(path, magic):
    data = gzip.open(path).read()
    got, count = struct.unpack(">II", data[:8])
    if got != magic:
        sys.exit(f"{path}: magic {got:#x}, expected {magic:#x}")
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        size = rows * cols
        body = data[16:]
        return [body[i * size:(i + 1) * size] for i in range(count)], (rows, cols)
    return list(data[8:8 + count]), None


def balanced(labels, per_class):
    taken = [0] * CLASSES
    keep = []
    for i, label in enumerate(labels):
        if taken[label] < per_class:
            taken[label] += 1
            keep.append(i)
    if taken != [per_class] * CLASSES:
        sys.exit(f"not enough images per class: {taken}")
    return keep


def write_gz(path, payload):
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(payload)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for prefix, per_class in (("train", PER_CLASS_TRAIN), ("t10k", PER_CLASS_TEST)):
        images, (rows, cols) = read_idx(src / f"{prefix}-images-idx3-ubyte.gz", 2051)
        labels, _ = read_idx(src / f"{prefix}-labels-idx1-ubyte.gz", 2049)
        keep = balanced(labels, per_class)
        n = len(keep)
        write_gz(
            out / f"{prefix}-images-idx3-ubyte.gz",
            struct.pack(">IIII", 2051, n, rows, cols) + b"".join(images[i] for i in keep),
        )
        write_gz(
            out / f"{prefix}-labels-idx1-ubyte.gz",
            struct.pack(">II", 2049, n) + bytes(labels[i] for i in keep),
        )
        print(f"{prefix}: {n} images, {per_class} per class, last source index {keep[-1]}")


if __name__ == "__main__":
    main()

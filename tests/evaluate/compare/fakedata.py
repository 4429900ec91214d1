"""A fake Fashion-MNIST cache for compare tests: 28×28 grey images whose class sets a bar position.

Written as IDX (gzip) with an encoder independent of the reader. Each class draws a bright
horizontal bar at its own height plus noise, and every third image of a class shifts the bar by
a class, so retrieval and clustering are good but not perfect.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

TRAIN = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_gz(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def bar_images(labels: np.ndarray, seed: int) -> np.ndarray:
    """(n, 28, 28) uint8: class c has a bar at rows 2c+3..2c+5; every 3rd image is shifted."""
    rng = np.random.default_rng(seed)
    images = rng.normal(60, 35, size=(len(labels), 28, 28))
    for i, label in enumerate(labels):
        row = 2 * int(label) + 3 + (2 if i % 3 == 2 else 0)
        images[i, row : row + 3, 4:24] += 150
    return np.clip(images, 0, 255).astype(np.uint8)


def write_fake_fashion(cache: Path, per_class: int = 8, n_classes: int = 5) -> Path:
    """Write ``cache/fashion-mnist`` with ``per_class`` train images of the first ``n_classes``
    classes, interleaved (0, 1, 2, ..., 0, 1, ...); returns the cache folder."""
    folder = cache / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    train_labels = np.tile(np.arange(n_classes), per_class)
    test_labels = np.arange(n_classes)
    for names, labels, seed in ((TRAIN, train_labels, 1), (TEST, test_labels, 2)):
        idx_gz(folder / names[0], bar_images(labels, seed))
        idx_gz(folder / names[1], labels)
    return cache

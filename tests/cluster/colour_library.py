"""Labelled pixel libraries for the clustering tests: images whose colours form known groups.

Each class is a base colour; every image is that colour plus seeded noise on a coarse grid,
so the ``pixels`` backbone (3072-d) separates the classes clearly. Images sit in class
subfolders, so ``labels="folder"`` gives each image its class.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike import Library

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


def colour_image(colour: tuple[int, int, int], seed: int, noise: float = 25.0) -> Image.Image:
    """A 40 × 40 image of ``colour`` with smooth seeded noise."""
    rng = np.random.default_rng(seed)
    grid = np.clip(np.array(colour)[None, None, :] + rng.normal(0.0, noise, (8, 8, 3)), 0, 255)
    return Image.fromarray(grid.astype(np.uint8)).resize((40, 40), Image.Resampling.BILINEAR)


def write_colour_classes(
    root: Path, per_class: int = 12, *, start: int = 0, classes: dict[str, tuple[int, int, int]] | None = None
) -> list[Path]:
    """``root/<class>/<class>-<i>.png`` for each class; returns the paths written."""
    paths = []
    for c, (name, colour) in enumerate((classes or COLOURS).items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(start, start + per_class):
            path = root / name / f"{name}-{i}.png"
            colour_image(colour, seed=1000 * c + i).save(path)
            paths.append(path)
    return paths


def build_library(folder: Path, photos: Path, *, labels: str = "folder") -> Library:
    """A pixels library over ``photos`` (open; the caller closes it)."""
    lib = Library.create(folder, backbone="pixels")
    lib.add([photos], labels=labels)
    return lib


def copy_library(source: Path, target: Path) -> Library:
    """A writable copy of a closed library folder (the images stay shared)."""
    shutil.copytree(source, target)
    return Library.open(target)

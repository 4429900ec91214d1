"""Seeded generated images for tests: distinct, deterministic, cheap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_image(seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A smooth random colour image, different for every seed."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BILINEAR)


def write_images(folder: Path, count: int, *, start: int = 0, fmt: str = "png") -> list[Path]:
    """Write ``count`` distinct images ``img-<seed>.<fmt>`` into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(start, start + count):
        path = folder / f"img-{seed:05d}.{fmt}"
        make_image(seed).save(path)
        paths.append(path)
    return paths

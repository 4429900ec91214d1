"""A small gallery library and a held-out query library (pixels backbone), built once per session.

Gallery: 3 colour-layout classes x 12 images (tests/searchlib.py), PCA to 16-d. Queries: other
seeds of the same classes, plus a class the gallery lacks and unlabelled images; the query
library has its own 8-d PCA, which the held-out evaluation must ignore. Noise is high enough that
classes overlap, so the scores are not all 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from lookalike import Library
from lookalike.config import ReduceConfig
from tests.imagegen import write_images
from tests.searchlib import CLASSES, class_image

NOISE = 150.0
PER_CLASS = {"gallery": 12, "queries": 6}
UNKNOWN = {"purple": 4}
UNLABELLED = 3


@dataclass(frozen=True)
class HeldoutPair:
    """Folders of the two (closed) libraries and what the queries hold."""

    gallery: Path
    queries: Path
    n_scored: int
    unknown: dict[str, int]
    n_unlabelled: int


def write_classes(root: Path, classes: dict[str, int], per_class: int, start: int) -> None:
    """``root/<name>/img-<seed>.png``: class ``index`` colour layout, seeds from ``start``."""
    for name, index in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for seed in range(start, start + per_class):
            class_image(index, 1000 * index + seed, noise=NOISE).save(root / name / f"img-{seed:04d}.png")


@pytest.fixture(scope="session")
def pair(tmp_path_factory: pytest.TempPathFactory) -> HeldoutPair:
    tmp = tmp_path_factory.mktemp("holdout")
    known = {name: i for i, name in enumerate(CLASSES)}
    write_classes(tmp / "gallery", known, PER_CLASS["gallery"], start=0)
    write_classes(tmp / "queries", known, PER_CLASS["queries"], start=500)
    write_classes(tmp / "queries", {"purple": len(CLASSES)}, UNKNOWN["purple"], start=500)
    write_images(tmp / "loose", UNLABELLED, start=9000)
    with Library.create(tmp / "gallery.lookalike", backbone="pixels") as gallery:
        gallery.add([tmp / "gallery"], labels="folder")
        gallery.reduce(ReduceConfig(n_components=16))
    with Library.create(tmp / "queries.lookalike", backbone="pixels") as queries:
        queries.add([tmp / "queries"], labels="folder")
        queries.add([tmp / "loose"], labels="none")
        queries.reduce(ReduceConfig(n_components=8))
    return HeldoutPair(tmp / "gallery.lookalike", tmp / "queries.lookalike",
                       len(CLASSES) * PER_CLASS["queries"], UNKNOWN, UNLABELLED)

"""A small labelled pixel library whose classes overlap (so no score is trivially 1), and its report.

The library and the report are built once per session: every test reads them, none writes them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike import Library
from lookalike.config import ReduceConfig
from lookalike.report import ReportConfig
from tests.searchlib import class_image

CLASSES = ("ankle boot", "bag", "coat", "dress")
PER_CLASS = 15
CONFIG = ReportConfig(k_max=8, map_sample=40, max_queries=5000, classify_sample=5000)
"""Every image is a query and a classifier example; the maps show a seeded sample of 40 of the 60."""


def write_noisy_classes(root: Path, per_class: int = PER_CLASS, noise: float = 110.0) -> None:
    """``root/<class>/<i>.png``: each class's colour layout plus strong per-image noise."""
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            class_image(label, 100 * label + i, noise=noise).save(root / name / f"{i:03d}.png")


def build_library(tmp: Path, labels: str = "folder", dims: int = 12) -> Path:
    """A closed pixels library over ``tmp/photos`` with its PCA fitted; returns its folder."""
    write_noisy_classes(tmp / "photos")
    with Library.create(tmp / "lib.lookalike", backbone="pixels") as lib:
        lib.add([tmp / "photos"], labels=labels)
        lib.reduce(ReduceConfig(n_components=dims))
        return lib.folder


@pytest.fixture(scope="session")
def labelled_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_library(tmp_path_factory.mktemp("labelled"))


@pytest.fixture(scope="session")
def labelled_report(labelled_folder: Path, tmp_path_factory: pytest.TempPathFactory):
    """(Evaluation, report folder) of the labelled library."""
    from lookalike.report.write import write_report

    out = tmp_path_factory.mktemp("report") / "report"
    with Library.open(labelled_folder, readonly=True) as lib:
        return write_report(lib.store, out, CONFIG), out

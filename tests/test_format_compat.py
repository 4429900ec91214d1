"""A library written by the commit before the restructuring (0b04c47) opens and answers the same.

tests/data/library-0b04c47 holds a `pixels` library of 16 files (15 images: one file is a copy
in another label folder; one is not an image), clustered with K-Means K=3, and expected.json:
what that commit's code answered on it. The photos themselves are not shipped: nothing here
needs to read them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lookalike import Library
from lookalike.store.labels import image_labels

DATA = Path(__file__).parent / "data" / "library-0b04c47"


@pytest.fixture()
def old_library(tmp_path: Path) -> Path:
    target = tmp_path / "lib.lookalike"
    shutil.copytree(DATA / "lib.lookalike", target)
    return target


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((DATA / "expected.json").read_text())


def test_vectors_runs_and_status_read_back_unchanged(old_library, expected):
    with Library.open(old_library, readonly=True) as lib:
        ids, raw = lib.embeddings()
        assert ids.tolist() == expected["ids"]
        assert float(np.asarray(raw, dtype=np.float64).sum()) == pytest.approx(expected["raw_sum"], rel=1e-9)
        assert lib.reduced().reducer_fingerprint == expected["reduced_fingerprint"]
        status = lib.status()
        assert (status.files, status.embedded) == (expected["status"]["files"], expected["status"]["embedded"])
        run = lib.cluster_run()
        assert run.info.id == expected["run"] and not run.info.stale
        assert run.image_ids.tolist() == expected["run_ids"] and run.labels.tolist() == expected["run_labels"]


def test_search_gives_the_same_neighbours_and_distances(old_library, expected):
    with Library.open(old_library, readonly=True) as lib:
        hits = lib.search(expected["query"], k=5).hits
    assert [h.image_id for h in hits] == expected["hits"]
    np.testing.assert_allclose([h.distance for h in hits], expected["distances"], rtol=1e-5, atol=1e-6)


def test_the_old_library_takes_new_images_and_clusters_again(old_library, tmp_path):
    from PIL import Image

    folder = tmp_path / "more" / "grey"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((30, 30, 3), 60 + 40 * i, np.uint8)).save(folder / f"g{i}.png")
    with Library.open(old_library) as lib:
        report = lib.add([tmp_path / "more"], labels="folder")
        assert report.embedded == 3
        assert lib.status().embedded == 18
        run = lib.cluster()
        assert run.image_ids.size == 18
        labels = image_labels(lib.catalog)
    # red0 is also filed (as a copy) under blue/: its files disagree, so it has no label
    assert len(labels.conflicting) == 1 and next(iter(labels.conflicting)) not in labels.labels
    assert sorted(set(labels.labels.values())) == ["blue", "green", "grey", "red"]

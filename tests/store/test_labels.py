"""The one label rule (store.labels), and that clustering, retrieval and classification all use it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike import Library
from lookalike.classify.train import labelled_vectors
from lookalike.cluster.run import image_labels_of
from lookalike.errors import InvalidParameterError
from lookalike.evaluate.retrieval import evaluate_library_retrieval
from lookalike.store.labels import folder_label, image_labels, set_file_labels


def _write(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(int(value))
    Image.fromarray(np.clip(value + rng.normal(0, 12, (24, 24, 3)), 0, 255).astype(np.uint8)).save(path)


@pytest.fixture()
def lib(tmp_path):
    photos = tmp_path / "photos"
    for n in range(4):
        _write(photos / "dark" / f"d{n}.png", 40 + n)
        _write(photos / "light" / f"l{n}.png", 200 + n)
    # the same content under both labels: its files disagree
    (photos / "light" / "also-d0.png").write_bytes((photos / "dark" / "d0.png").read_bytes())
    _write(photos / "loose.png", 120)  # directly in the root: no label
    with Library.create(tmp_path / "lib.lookalike", backbone="pixels") as library:
        library.add([photos], labels="folder")
        yield library


def test_folder_label_is_the_first_level_subfolder(tmp_path):
    assert folder_label(tmp_path, tmp_path / "cats" / "x" / "a.png") == "cats"
    assert folder_label(tmp_path, tmp_path / "a.png") is None
    with pytest.raises(InvalidParameterError, match="is not inside the folder"):
        folder_label(tmp_path / "cats", tmp_path / "dogs" / "a.png")


def test_files_that_disagree_leave_their_image_unlabelled(lib):
    found = image_labels(lib.catalog)
    assert len(found.conflicting) == 1
    conflicting = next(iter(found.conflicting))
    assert conflicting not in found.labels
    assert sorted(found.labels.values()) == ["dark"] * 3 + ["light"] * 4


def test_empty_labels_do_not_vote(lib, tmp_path):
    light = sorted((tmp_path / "photos" / "light").glob("l*.png"))[0]
    changed, unchanged, unknown = set_file_labels(lib.catalog, {str(light): "", str(tmp_path / "nope.png"): "x"})
    assert (changed, unchanged, unknown) == (1, 0, [str(tmp_path / "nope.png")])
    assert sorted(image_labels(lib.catalog).labels.values()) == ["dark"] * 3 + ["light"] * 3


def test_clustering_retrieval_and_classification_see_the_same_labels(lib):
    expected = image_labels(lib.catalog).labels
    ids = lib.reduced().ids
    truth = image_labels_of(lib.store, ids)
    assert {int(i): t for i, t in zip(ids, truth) if t is not None} == expected
    data = labelled_vectors(lib.store)
    assert dict(zip(data.ids.tolist(), data.labels.tolist())) == expected
    assert data.n_conflicting == 1 and data.n_unlabelled == 1
    report = evaluate_library_retrieval(lib.store, 3, kinds=("exact",), max_queries=100, file_queries=0)
    assert report["labelled_images"] == len(expected) and report["queries"] == len(expected)

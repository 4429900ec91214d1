"""The library's stored reducer and reduced vectors: fitted once, applied to new images."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike import Library
from lookalike.config import ReduceConfig
from lookalike.errors import InvalidParameterError
from tests.imagegen import write_images


@pytest.fixture
def lib(tmp_path):
    library = Library.create(tmp_path / "lib.lookalike", backbone="pixels")
    write_images(tmp_path / "photos", 30)
    library.add([tmp_path / "photos"])
    yield library
    library.close()


def test_reduced_vectors_are_the_stored_reducer_applied_to_the_embeddings(lib):
    reducer = lib.reduce(ReduceConfig(n_components=8))
    reduced = lib.reduced()
    ids, embeddings = lib.embeddings()
    np.testing.assert_array_equal(reduced.ids, ids)
    np.testing.assert_allclose(reduced.vectors, reducer.transform(np.asarray(embeddings)), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(reduced.vectors, axis=1), 1.0, atol=1e-5)
    assert lib.manifest.sections["reducer"]["fingerprint"] == reducer.fingerprint


def test_new_images_use_the_stored_reducer_without_refitting(lib, tmp_path):
    reducer = lib.reduce(ReduceConfig(n_components=8))
    write_images(tmp_path / "photos", 5, start=100)
    lib.add()
    reduced = lib.reduced()
    assert reduced.vectors.shape == (35, 8)
    assert reduced.reducer_fingerprint == reducer.fingerprint == lib.reducer().fingerprint


def test_other_settings_need_an_explicit_refit(lib):
    first = lib.reduce(ReduceConfig(n_components=8))
    with pytest.raises(InvalidParameterError, match="refit"):
        lib.reduce(ReduceConfig(n_components=4))
    second = lib.reduce(ReduceConfig(n_components=4), refit=True)
    assert second.fingerprint != first.fingerprint
    assert lib.reduced().vectors.shape == (30, 4)
    assert lib.reduce_config() == ReduceConfig(n_components=4)


def test_readers_get_up_to_date_vectors_without_writing(lib, tmp_path):
    lib.reduce(ReduceConfig(n_components=8))
    write_images(tmp_path / "photos", 3, start=200)
    lib.add()  # stored reduced vectors are now one state behind
    with Library.open(lib.folder, readonly=True) as reader:
        assert reader.reduced().vectors.shape == (33, 8)


def test_pca_needs_two_images(tmp_path):
    with Library.create(tmp_path / "one.lookalike", backbone="pixels") as lib:
        write_images(tmp_path / "p", 1)
        lib.add([tmp_path / "p"])
        with pytest.raises(InvalidParameterError, match="at least 2 embedded images"):
            lib.reduce()

"""Projections for the scatter: PCA against scikit-learn, and the cache in the library folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA

from lookalike.app.projections import cache_path, pca_project, projection


@pytest.mark.parametrize("dims", [2, 3])
def test_pca_project_matches_sklearn_up_to_sign(dims: int) -> None:
    x = np.random.default_rng(0).normal(size=(200, 12)) * np.linspace(5, 1, 12)
    ours = pca_project(x, dims)
    reference = PCA(dims).fit_transform(x)
    assert ours.shape == (200, dims) and ours.dtype == np.float32
    signs = np.sign(np.sum(ours * reference, axis=0))
    np.testing.assert_allclose(ours, reference * signs, atol=1e-4)


def test_pca_project_pads_when_rank_is_low() -> None:
    x = np.random.default_rng(1).normal(size=(2, 5))
    coords = pca_project(x, 3)
    assert coords.shape == (2, 3)
    np.testing.assert_array_equal(coords[:, 2], 0.0)


def test_projection_is_cached_atomically_and_reused(tmp_path: Path) -> None:
    ids = np.arange(50, dtype=np.int64)
    x = np.random.default_rng(2).normal(size=(50, 8)).astype(np.float32)
    first = projection(tmp_path, ids, x, "fp", 2)
    path = cache_path(tmp_path, "pca", 2, "fp", ids)
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == [path.name]  # no temporaries left
    again = projection(tmp_path, ids, np.zeros_like(x), "fp", 2)  # read back, not recomputed
    np.testing.assert_array_equal(again, first)
    assert cache_path(tmp_path, "pca", 2, "other", ids) != path
    assert cache_path(tmp_path, "pca", 2, "fp", ids[:-1]) != path


def test_tsne_map_is_sampled_cached_and_keeps_neighbours(tmp_path: Path) -> None:
    from lookalike.app import projections

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(3, 10)) * 20
    x = np.concatenate([c + rng.normal(size=(40, 10)) for c in centres]).astype(np.float32)
    ids = np.arange(120, dtype=np.int64) * 3
    rows, coords = projections.map_coordinates(tmp_path, ids, x, "fp", 2, "t-SNE")
    assert rows.tolist() == list(range(120)) and coords.shape == (120, 2)
    groups = np.repeat(np.arange(3), 40)
    nearest = np.argsort(((coords[:, None] - coords[None]) ** 2).sum(-1), axis=1)[:, 1]
    assert np.mean(groups[nearest] == groups) > 0.95  # well separated blobs stay apart
    again = projections.map_coordinates(tmp_path, ids, np.zeros_like(x), "fp", 2, "t-SNE")[1]
    np.testing.assert_array_equal(again, coords)
    sampled = projections.sample_rows(12_000, "t-SNE")
    assert sampled.size == projections.NONLINEAR_MAX_POINTS["t-SNE"] and np.all(np.diff(sampled) > 0)

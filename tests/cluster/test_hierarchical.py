"""Agglomerative: exact below n_micro (vs sklearn and scipy), micro-clustered above it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, is_valid_linkage, linkage
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score

from lookalike.cluster.hierarchical import Agglomerative
from lookalike.errors import InvalidParameterError

Mixture = Callable[..., tuple[np.ndarray, np.ndarray]]
CASES = [("ward", "euclidean"), ("average", "euclidean"), ("complete", "euclidean"), ("average", "cosine"),
         ("complete", "cosine")]  # fmt: skip


@pytest.mark.parametrize(("method", "metric"), CASES, ids=[f"{a}-{b}" for a, b in CASES])
def test_exact_below_n_micro_matches_sklearn_and_scipy(mixture: Mixture, method: str, metric: str) -> None:
    x, _ = mixture(n=400, d=10, k=8, spread=0.8, seed=3)
    ours = Agglomerative(6, linkage=method, metric=metric).fit(x)
    ref = AgglomerativeClustering(6, linkage=method, metric=metric).fit(x)
    assert ours.exact_
    assert adjusted_rand_score(ref.labels_, ours.labels_) == pytest.approx(1.0)
    heights = np.sort(linkage(x.astype(np.float64), method=method, metric=metric)[:, 2])
    np.testing.assert_allclose(ours.linkage_[:, 2], heights, rtol=1e-5, atol=1e-6)


def test_linkage_is_a_valid_scipy_tree(mixture: Mixture) -> None:
    x, _ = mixture(n=3000, k=6, seed=2)
    model = Agglomerative(6, n_micro=200).fit(x)
    assert is_valid_linkage(model.linkage_, throw=True)
    assert model.linkage_.shape == (199, 4)
    assert model.merge_sizes_[-1] == 3000 and model.leaf_sizes_.sum() == 3000
    by_scipy = fcluster(model.linkage_, 6, criterion="maxclust")[model.leaf_labels_]
    assert adjusted_rand_score(by_scipy, model.labels_) == pytest.approx(1.0)


def test_distance_threshold_matches_sklearn(mixture: Mixture) -> None:
    x, _ = mixture(n=300, d=8, k=5, spread=0.6, seed=5)
    ours = Agglomerative(None, distance_threshold=1.5).fit(x)
    ref = AgglomerativeClustering(None, distance_threshold=1.5).fit(x)
    assert ours.n_clusters_ == ref.n_clusters_
    assert adjusted_rand_score(ref.labels_, ours.labels_) == pytest.approx(1.0)


def test_micro_clustered_ward_recovers_groups_and_labels_every_point(mixture: Mixture) -> None:
    x, truth = mixture(n=5000, d=16, k=8, spread=0.4, seed=6)
    model = Agglomerative(8, n_micro=300).fit(x)
    assert not model.exact_
    assert model.labels_.shape == (5000,) and model.n_clusters_ == 8
    assert adjusted_rand_score(truth, model.labels_) > 0.99


def _within_sse(x: np.ndarray, labels: np.ndarray) -> float:
    return float(sum(((x[labels == c] - x[labels == c].mean(0)) ** 2).sum() for c in np.unique(labels)))


@pytest.mark.parametrize(("spread", "min_ari"), [(0.6, 0.98), (0.9, 0.75)], ids=["separated", "overlapping"])
def test_micro_clustered_ward_is_close_to_exact_ward(mixture: Mixture, spread: float, min_ari: float) -> None:
    x, _ = mixture(n=2000, d=16, k=12, spread=spread, seed=1)
    exact = AgglomerativeClustering(12, linkage="ward").fit(x).labels_
    approx = Agglomerative(12, n_micro=400).fit(x).labels_
    assert adjusted_rand_score(exact, approx) > min_ari
    # Ward's objective (within-cluster sum of squares) is as good as the exact tree's.
    assert _within_sse(x, approx) < 1.02 * _within_sse(x, exact)


def test_cut_sizes_are_ordered_and_recut_works(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = blobs
    model = Agglomerative(4).fit(x)
    sizes = np.bincount(model.cut(n_clusters=7))
    assert sizes.size == 7 and list(sizes) == sorted(sizes, reverse=True)
    assert model.cut(distance_threshold=1e9).max() == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"linkage": "ward", "metric": "cosine"}, "ward' needs metric='euclidean'"),
        ({"n_clusters": None}, "exactly one of n_clusters and distance_threshold"),
        ({"n_clusters": 3, "distance_threshold": 1.0}, "exactly one"),
        ({"n_clusters": 50, "n_micro": 20}, "exceeds the 20 micro-clusters"),
        ({"linkage": "single"}, "linkage must be one of"),
        ({"n_clusters": 1}, "n_clusters must be >= 2"),
        ({"n_micro": 50_000}, "n_micro must be in"),
    ],
    ids=["ward-cosine", "no-cut", "two-cuts", "k-above-micro", "single", "k-1", "n-micro"],
)
def test_bad_settings(blobs: tuple[np.ndarray, np.ndarray], kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        Agglomerative(**{"n_clusters": 3, **kwargs}).fit(blobs[0])


def test_identical_points_refused() -> None:
    with pytest.raises(InvalidParameterError, match="identical"):
        Agglomerative(2).fit(np.ones((10, 3)))

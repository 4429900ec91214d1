"""DBSCAN / HDBSCAN on FAISS graphs against scikit-learn on the raw points."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import DBSCAN as SklearnDBSCAN
from sklearn.cluster import HDBSCAN as SklearnHDBSCAN
from sklearn.metrics import adjusted_rand_score

from lookalike.cluster.density import DBSCAN, HDBSCAN, knn_graph, suggest_eps
from lookalike.errors import InvalidParameterError


@pytest.fixture
def noisy_blobs() -> tuple[np.ndarray, np.ndarray]:
    """1500 points in 6 groups, 100 uniform noise points, 5 exact duplicates; truth -1 = noise."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((6, 12))
    truth = rng.integers(0, 6, 1500)
    x = centres[truth] + 0.3 * rng.standard_normal((1500, 12))
    x = np.vstack([x, rng.uniform(-3, 3, (100, 12)), x[:5]]).astype(np.float32)
    return x, np.concatenate([truth, -np.ones(100, dtype=int), truth[:5]])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_dbscan_equals_sklearn_with_the_suggested_eps(noisy_blobs: tuple, metric: str) -> None:
    x, truth = noisy_blobs
    ours = DBSCAN(min_samples=5, metric=metric).fit(x)
    ref = SklearnDBSCAN(eps=ours.eps_, min_samples=5, metric=metric).fit(x)
    np.testing.assert_array_equal(ours.labels_ == -1, ref.labels_ == -1)
    assert adjusted_rand_score(ref.labels_, ours.labels_) == pytest.approx(1.0)
    assert ours.n_noise_ == int((ours.labels_ == -1).sum()) > 0
    assert ours.eps_source_ == "knee of the k-distance curve"
    if metric == "euclidean":  # the groups are built to be apart in Euclidean space
        assert adjusted_rand_score(truth[truth >= 0], ours.labels_[truth >= 0]) > 0.95


def test_suggested_eps_is_the_knee_of_the_k_distance_curve(noisy_blobs: tuple) -> None:
    x, _ = noisy_blobs
    suggestion = suggest_eps(x, 5, metric="euclidean", sample_size=10_000)
    brute = np.sort(np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)), axis=1)[:, 4]
    np.testing.assert_allclose(suggestion.k_distances, np.sort(brute), atol=1e-3)
    assert suggestion.eps == suggestion.k_distances[suggestion.knee]
    # Cluster points' k-distances sit below the knee, the uniform noise above it.
    assert np.mean(brute[1500:1600] > suggestion.eps) > 0.9 and np.mean(brute[:1500] < suggestion.eps) > 0.9


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_hdbscan_close_to_sklearn_and_exact_with_a_full_graph(noisy_blobs: tuple, metric: str) -> None:
    x, _ = noisy_blobs
    ref = SklearnHDBSCAN(min_cluster_size=10, metric=metric, copy=True).fit(x).labels_
    approx = HDBSCAN(10, metric=metric).fit(x)
    full = HDBSCAN(10, metric=metric, n_neighbors=x.shape[0]).fit(x)
    assert adjusted_rand_score(ref, approx.labels_) > 0.9
    assert adjusted_rand_score(ref, full.labels_) > 0.99
    assert approx.n_noise_ == int((approx.labels_ == -1).sum())
    assert approx.n_clusters_ == 6


def test_knn_graph_joins_separate_components() -> None:
    rng = np.random.default_rng(1)
    x = np.vstack([rng.normal(0, 0.1, (40, 3)), rng.normal(50, 0.1, (40, 3))]).astype(np.float32)
    graph, components = knn_graph(x, 5, "euclidean")
    assert components == 2
    from scipy.sparse.csgraph import connected_components

    assert connected_components(graph, directed=False)[0] == 1
    assert abs(graph - graph.T).max() == 0
    labels = HDBSCAN(10, metric="euclidean").fit_predict(x)
    assert adjusted_rand_score(np.repeat([0, 1], 40), labels) == pytest.approx(1.0)


def test_dbscan_refuses_a_radius_graph_that_is_too_big(noisy_blobs: tuple) -> None:
    with pytest.raises(InvalidParameterError, match="lower eps or raise max_edges"):
        DBSCAN(eps=10.0, metric="euclidean", max_edges=10_000).fit(noisy_blobs[0])


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (DBSCAN(eps=-1.0), "eps must be a number > 0"),
        (DBSCAN(metric="manhattan"), "metric must be one of"),
        (HDBSCAN(1), "min_cluster_size must be in"),
        (HDBSCAN(5, min_samples=5, n_neighbors=3), "n_neighbors must be >= 5"),
    ],
    ids=["eps", "metric", "min-cluster-size", "neighbors"],
)
def test_bad_settings(noisy_blobs: tuple, model: DBSCAN | HDBSCAN, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        model.fit(noisy_blobs[0])


@pytest.mark.parametrize("model", [DBSCAN(), HDBSCAN()], ids=["dbscan", "hdbscan"])
@pytest.mark.parametrize(
    ("data", "match"),
    [(np.empty((0, 3)), "0 point"), (np.ones((20, 3)), "identical"), (np.full((20, 3), np.inf), "NaN")],
    ids=["empty", "identical", "inf"],
)
def test_bad_input(model: DBSCAN | HDBSCAN, data: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        model.fit(data)

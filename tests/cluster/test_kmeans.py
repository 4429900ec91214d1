"""KMeans (FAISS) against scikit-learn's KMeans and known labels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.metrics import adjusted_rand_score

from lookalike.cluster import kmeans as kmeans_module
from lookalike.cluster.kmeans import KMeans, kmeans_plusplus, refine
from lookalike.errors import InvalidParameterError

Mixture = Callable[..., tuple[np.ndarray, np.ndarray]]


def test_recovers_known_groups(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, truth = blobs
    km = KMeans(4, seed=0).fit(x)
    assert adjusted_rand_score(truth, km.labels_) == pytest.approx(1.0)
    assert km.cluster_centers_.shape == (4, x.shape[1])
    assert km.labels_.shape == (x.shape[0],)


@pytest.mark.parametrize("spread", [0.5, 1.5], ids=["separated", "overlapping"])
def test_inertia_within_one_percent_of_sklearn(mixture: Mixture, spread: float) -> None:
    """Defaults against defaults, averaged over 5 seeds (single fits swing by ±2 % either way)."""
    x, _ = mixture(n=3000, d=32, k=40, spread=spread, seed=1)
    ours = [KMeans(30, seed=s).fit(x) for s in range(5)]
    ref = [SklearnKMeans(30, random_state=s).fit(x).inertia_ for s in range(5)]
    assert np.mean([m.inertia_ for m in ours]) <= np.mean(ref) * 1.01
    # Same definition of inertia: squared distances to the assigned centres.
    recomputed = ((x - ours[0].cluster_centers_[ours[0].labels_]) ** 2).sum(dtype=np.float64)
    assert ours[0].inertia_ == pytest.approx(recomputed, rel=1e-4)


def test_predict_matches_nearest_centre(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = blobs
    km = KMeans(4).fit(x)
    brute = np.argmin(((x[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(km.predict(x), brute)
    np.testing.assert_array_equal(km.labels_, brute)


def test_same_seed_same_result(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = blobs
    first, second = KMeans(6, seed=3).fit(x), KMeans(6, seed=3).fit(x)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    assert first.inertia_ == second.inertia_


def test_more_restarts_never_worse(mixture: Mixture) -> None:
    x, _ = mixture(n=2000, d=16, k=30, spread=1.0, seed=2)
    one = KMeans(20, n_init=1, init="random", seed=5).fit(x)
    three = KMeans(20, n_init=3, init="random", seed=5).fit(x)
    assert three.inertia_ <= one.inertia_


def test_spherical_centres_have_unit_length(mixture: Mixture) -> None:
    x, truth = mixture(unit=True)
    km = KMeans(4, spherical=True).fit(x)
    np.testing.assert_allclose(np.linalg.norm(km.cluster_centers_, axis=1), 1.0, atol=1e-5)
    assert adjusted_rand_score(truth, km.labels_) == pytest.approx(1.0)


def test_kmeans_plusplus_picks_distinct_data_rows(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, truth = blobs
    seeds = kmeans_plusplus(x, 4, np.random.default_rng(0))
    rows = [int(np.flatnonzero((x == s).all(axis=1))[0]) for s in seeds]
    assert len(set(truth[rows])) == 4  # greedy seeding puts one seed in each separated group


def test_sample_training_then_full_refinement(mixture: Mixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kmeans_module, "SAMPLE_ABOVE", 0)  # train on a sample even at this size
    x, truth = mixture(n=4000, k=4)
    km = KMeans(4, max_points_per_centroid=50, refine_iter=3).fit(x)
    assert km.labels_.shape == (4000,)
    assert km.n_passes_ < km.n_iter_  # the 200-point sample's iterations count as 1/20 pass each
    assert adjusted_rand_score(truth, km.labels_) > 0.99
    recomputed = ((x - km.cluster_centers_[km.labels_]) ** 2).sum(dtype=np.float64)
    assert km.inertia_ == pytest.approx(recomputed, rel=1e-4)


def test_refine_is_lloyd(mixture: Mixture) -> None:
    """From the same start, the full-data refinement converges where scikit-learn's Lloyd does."""
    x, _ = mixture(n=2000, d=8, k=12, spread=1.0, seed=3)
    start = x[:10].copy()
    centers, labels, sq_dist, steps = refine(x, start, 300, 0.0, False)
    ref = SklearnKMeans(10, init=start, n_init=1, algorithm="lloyd", tol=0.0, max_iter=300).fit(x)
    assert 0 < steps < 300
    np.testing.assert_array_equal(labels, ref.labels_)
    np.testing.assert_allclose(centers, ref.cluster_centers_, atol=1e-5)
    assert sq_dist.sum(dtype=np.float64) == pytest.approx(ref.inertia_, rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "data", "match"),
    [
        ({"n_clusters": 1}, None, "n_clusters must be >= 2; got 1"),
        ({"n_clusters": 700}, None, "n_clusters=700 is larger than the number of points \\(600\\)"),
        ({"n_clusters": 3}, np.empty((0, 4)), "0 point"),
        ({"n_clusters": 3}, np.ones((50, 4)), "all 50 points in X are identical"),
        ({"n_clusters": 3}, np.array([[0.0, np.nan]] * 10), "NaN"),
        ({"n_clusters": 3, "n_init": 0}, None, "n_init must be >= 1"),
        ({"n_clusters": 3, "init": "forgy"}, None, "init must be one of"),
        ({"n_clusters": 2.5}, None, "must be an integer"),
    ],
    ids=["k-below-2", "k-above-n", "empty", "identical", "nan", "n-init", "init", "float-k"],
)
def test_bad_input(
    blobs: tuple[np.ndarray, np.ndarray], kwargs: dict, data: np.ndarray | None, match: str
) -> None:
    x = blobs[0] if data is None else data
    with pytest.raises(InvalidParameterError, match=match):
        KMeans(**kwargs).fit(x)


def test_predict_checks_fitted_and_dimension(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = blobs
    with pytest.raises(InvalidParameterError, match="not fitted"):
        KMeans(3).predict(x)
    km = KMeans(3).fit(x)
    with pytest.raises(InvalidParameterError, match="has 15 dimensions but this KMeans was fitted on 16"):
        km.predict(x[:, :15])


def test_duplicate_heavy_data_warns_about_empty_clusters() -> None:
    x = np.repeat(np.eye(3, dtype=np.float32), 20, axis=0)  # 3 distinct points, 60 rows
    with pytest.warns(UserWarning, match="clusters empty"):
        km = KMeans(5).fit(x)
    assert len(np.unique(km.labels_)) == 3


def test_kmeans_plusplus_seeds_do_not_depend_on_the_thread_count() -> None:
    x = np.random.default_rng(3).standard_normal((6_000, 16)).astype(np.float32)
    one = kmeans_plusplus(x, 25, np.random.default_rng(0), threads=1)
    three = kmeans_plusplus(x, 25, np.random.default_rng(0), threads=3)
    np.testing.assert_array_equal(one, three)

"""choose_k sweep and the kneedle elbow."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from lookalike.cluster.choose_k import choose_k, knee_index
from lookalike.cluster.kmeans import KMeans
from lookalike.errors import InvalidParameterError

Mixture = Callable[..., tuple[np.ndarray, np.ndarray]]


def test_finds_the_true_number_of_groups(mixture: Mixture) -> None:
    x, _ = mixture(n=1200, d=16, k=6, spread=0.3, seed=4)
    choice = choose_k(x, range(2, 11), sample_size=600)
    assert choice.recommended_k == 6
    assert choice.silhouette_k == 6
    assert choice.k_values == tuple(range(2, 11))
    assert len(choice.inertia) == len(choice.silhouette) == len(choice.seconds) == 9
    assert choice.silhouette_sample_size == 600
    assert "silhouette peak at 6" in choice.reason


def test_inertia_curve_matches_kmeans_fits(mixture: Mixture) -> None:
    x, _ = mixture(n=800, k=5, spread=0.5, seed=1)
    choice = choose_k(x, [3, 5, 8], sample_size=0, seed=2)
    for k, inertia in zip(choice.k_values, choice.inertia):
        ref = KMeans(k, n_init=1, max_iter=20, seed=2, max_points_per_centroid=256, refine_iter=0).fit(x).inertia_
        assert inertia == pytest.approx(ref)
    assert list(choice.inertia) == sorted(choice.inertia, reverse=True)
    assert choice.silhouette == (None, None, None)
    assert choice.recommended_k == choice.elbow_k and "no silhouette" in choice.reason


def test_kneedle_finds_the_bend() -> None:
    x = np.arange(1.0, 11.0)
    y = np.where(x <= 4, 100.0 - 22.0 * (x - 1), 34.0 - 1.0 * (x - 4))  # bend at x = 4
    assert x[knee_index(x, y, direction="decreasing")] == 4
    rising = np.concatenate([np.linspace(0.0, 0.1, 90), np.linspace(0.2, 2.0, 10)])
    assert knee_index(np.arange(100.0), rising, direction="increasing") == 89


@pytest.mark.parametrize(
    "y",
    [np.linspace(10.0, 0.0, 8), 10.0 - np.linspace(0.0, 3.0, 8) ** 2, np.ones(8)],
    ids=["straight", "concave", "flat"],
)
def test_kneedle_reports_no_elbow_without_a_convex_bend(y: np.ndarray) -> None:
    assert knee_index(np.arange(8.0), y, direction="decreasing") is None


@pytest.mark.parametrize(
    ("k_values", "match"),
    [([], "k_values is empty"), ([1, 3], "k must be >= 2"), ([2, 700], "k=700 is larger"), (5, "iterable")],
    ids=["empty", "k-below-2", "k-above-n", "not-iterable"],
)
def test_bad_k_values(blobs: tuple[np.ndarray, np.ndarray], k_values: object, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        choose_k(blobs[0], k_values)  # type: ignore[arg-type]

"""Clustering metrics against sklearn.metrics, with noise handling."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from lookalike.cluster.metrics import external_scores, internal_scores, purity
from lookalike.errors import InvalidParameterError


def test_internal_scores_match_sklearn(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, labels = blobs
    scores = internal_scores(x, labels)
    assert scores.silhouette == pytest.approx(skm.silhouette_score(x, labels), rel=1e-5)
    assert scores.silhouette_sample_size == x.shape[0]
    assert scores.davies_bouldin == pytest.approx(skm.davies_bouldin_score(x, labels), rel=1e-5)
    assert scores.calinski_harabasz == pytest.approx(skm.calinski_harabasz_score(x, labels), rel=1e-5)
    assert (scores.n_points, scores.n_noise, scores.n_clusters) == (600, 0, 4)


def test_silhouette_is_sampled_above_sample_size(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, labels = blobs
    scores = internal_scores(x, labels, sample_size=200, seed=3)
    rows = np.sort(np.random.default_rng(3).choice(600, 200, replace=False))
    assert scores.silhouette_sample_size == 200
    assert scores.silhouette == pytest.approx(skm.silhouette_score(x[rows], labels[rows]), rel=1e-5)


def test_noise_is_excluded_and_counted(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, labels = blobs
    noisy = labels.copy()
    noisy[:50] = -1
    keep = noisy != -1
    scores = internal_scores(x, noisy)
    assert scores.n_noise == 50 and "excluded: 50 of 600" in scores.note
    assert scores.silhouette == pytest.approx(skm.silhouette_score(x[keep], labels[keep]), rel=1e-5)
    external = external_scores(labels, noisy)
    assert external.n_noise == 50 and external.n_scored == 550
    assert external.ari == pytest.approx(skm.adjusted_rand_score(labels[keep], noisy[keep]))


def test_external_scores_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    truth = rng.choice(np.array(["cat", "dog", "owl"]), 300)
    pred = rng.integers(0, 4, 300)
    scores = external_scores(truth, pred)
    assert scores.nmi == pytest.approx(skm.normalized_mutual_info_score(truth, pred))
    assert scores.ari == pytest.approx(skm.adjusted_rand_score(truth, pred))
    assert scores.homogeneity == pytest.approx(skm.homogeneity_score(truth, pred))
    assert scores.completeness == pytest.approx(skm.completeness_score(truth, pred))
    brute = sum(np.unique(truth[pred == c], return_counts=True)[1].max() for c in np.unique(pred)) / 300
    assert scores.purity == pytest.approx(brute)


def test_purity_of_perfect_and_lumped_clusterings() -> None:
    truth = np.array([0, 0, 1, 1, 2, 2])
    assert purity(truth, np.array([5, 5, 3, 3, 9, 9])) == 1.0
    assert purity(truth, np.zeros(6, dtype=int)) == pytest.approx(2 / 6)


def test_undefined_scores_are_none_with_reason(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = blobs
    scores = internal_scores(x, np.zeros(600, dtype=int))
    assert scores.silhouette is None and scores.davies_bouldin is None and scores.calinski_harabasz is None
    assert "undefined for 1 cluster" in scores.note


@pytest.mark.parametrize(
    ("truth", "pred", "match"),
    [
        (np.zeros(5), np.zeros(4), "labels_pred has 4 entries; expected one per point \\(5\\)"),
        (np.zeros((5, 2)), np.zeros(5), "labels_true must be 1-D"),
        (np.zeros(3), -np.ones(3), "every one of the 3 points is noise"),
    ],
    ids=["length", "2-d", "all-noise"],
)
def test_external_bad_input(truth: np.ndarray, pred: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        external_scores(truth, pred)


def test_internal_bad_labels(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(InvalidParameterError, match="labels has 3 entries"):
        internal_scores(blobs[0], [0, 1, 2])

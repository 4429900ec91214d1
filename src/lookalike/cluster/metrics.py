"""Clustering quality: internal scores (no ground truth) and external scores (against labels).

Noise — label ``-1``, as produced by DBSCAN and HDBSCAN — is never a cluster here: noise points
are left out of every score and counted in ``n_noise`` (the ``note`` field says so). Scores that
are undefined (fewer than 2 clusters, or as many clusters as points) are ``None``, with the
reason in ``note``. The silhouette costs O(n²·d), so above ``sample_size`` points it is computed
on a seeded random sample (with labels from the full clustering) and the sample size is returned
with the score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError
from lookalike.validation import as_matrix, check_choice, check_int

NOISE = -1
METRICS = ("euclidean", "cosine")


@dataclass(frozen=True)
class InternalScores:
    """Scores from the points alone (noise excluded); ``None`` where undefined."""

    silhouette: float | None
    silhouette_sample_size: int
    davies_bouldin: float | None
    calinski_harabasz: float | None
    n_points: int
    n_noise: int
    n_clusters: int
    note: str


@dataclass(frozen=True)
class ExternalScores:
    """Agreement with known labels, over the ``n_scored`` non-noise points."""

    nmi: float
    ari: float
    homogeneity: float
    completeness: float
    purity: float
    n_scored: int
    n_noise: int
    note: str


def check_labels(labels: Any, n_points: int | None = None, *, name: str = "labels") -> np.ndarray:
    """``labels`` as a 1-D array (any hashable dtype), of length ``n_points`` when given."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise InvalidParameterError(f"{name} must be 1-D (one per point); got shape {arr.shape}")
    if n_points is not None and arr.shape[0] != n_points:
        raise InvalidParameterError(f"{name} has {arr.shape[0]} entries; expected one per point ({n_points})")
    return arr


def internal_scores(
    X: Any, labels: Any, *, sample_size: int = 10_000, seed: int = 0, metric: str = "euclidean"
) -> InternalScores:
    """Silhouette (sampled above ``sample_size``), Davies–Bouldin and Calinski–Harabasz.

    ``X`` is (n, d); ``labels`` (n,) int with ``-1`` for noise.
    """
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

    x = as_matrix(X)
    lab = check_labels(labels, x.shape[0]).astype(np.int64)
    check_int(sample_size, "sample_size", low=2)
    check_int(seed, "seed", low=0)
    check_choice(metric, "metric", METRICS)
    keep = lab != NOISE
    n_noise = int(x.shape[0] - keep.sum())
    x, lab = x[keep], lab[keep]
    n_clusters = len(np.unique(lab))
    note = f"noise points (label -1) excluded: {n_noise} of {keep.size}"
    if not 2 <= n_clusters <= x.shape[0] - 1:
        note += f"; scores undefined for {n_clusters} cluster(s) over {x.shape[0]} point(s)"
        return InternalScores(None, 0, None, None, int(keep.size), n_noise, n_clusters, note)
    silhouette, used = sampled_silhouette(x, lab, sample_size=sample_size, seed=seed, metric=metric)
    return InternalScores(
        silhouette=silhouette,
        silhouette_sample_size=used,
        davies_bouldin=float(davies_bouldin_score(x, lab)),
        calinski_harabasz=float(calinski_harabasz_score(x, lab)),
        n_points=int(keep.size),
        n_noise=n_noise,
        n_clusters=n_clusters,
        note=note,
    )


def sampled_silhouette(
    x: np.ndarray, labels: np.ndarray, *, sample_size: int, seed: int, metric: str = "euclidean"
) -> tuple[float | None, int]:
    """Mean silhouette of a seeded sample of at most ``sample_size`` rows, and the rows used.

    ``x`` (n, d) float32 and ``labels`` (n,) without noise are already checked. Returns
    ``(None, used)`` when the sample holds fewer than 2 clusters or no two points share one.
    """
    from sklearn.metrics import silhouette_score

    used = min(sample_size, x.shape[0])
    if used < x.shape[0]:
        rows = np.sort(np.random.default_rng(seed).choice(x.shape[0], used, replace=False))
        x, labels = x[rows], labels[rows]
    n_labels = len(np.unique(labels))
    if not 2 <= n_labels <= used - 1:
        return None, used
    return float(silhouette_score(x, labels, metric=metric)), used


def external_scores(labels_true: Any, labels_pred: Any) -> ExternalScores:
    """NMI, ARI, homogeneity, completeness and purity of ``labels_pred`` against ``labels_true``.

    Both are (n,); ``labels_true`` may hold strings; predicted ``-1`` (noise) points are left out.
    """
    from sklearn.metrics import (
        adjusted_rand_score,
        homogeneity_completeness_v_measure,
        normalized_mutual_info_score,
    )

    truth = check_labels(labels_true, name="labels_true")
    pred = check_labels(labels_pred, truth.shape[0], name="labels_pred").astype(np.int64)
    keep = pred != NOISE
    n_noise = int(truth.size - keep.sum())
    note = f"noise points (label -1) excluded: {n_noise} of {truth.size}"
    if not keep.any():
        raise InvalidParameterError(f"every one of the {truth.size} points is noise; nothing to score")
    truth, pred = truth[keep], pred[keep]
    homogeneity, completeness, _ = homogeneity_completeness_v_measure(truth, pred)
    return ExternalScores(
        nmi=float(normalized_mutual_info_score(truth, pred)),
        ari=float(adjusted_rand_score(truth, pred)),
        homogeneity=float(homogeneity),
        completeness=float(completeness),
        purity=purity(truth, pred),
        n_scored=int(truth.size),
        n_noise=n_noise,
        note=note,
    )


def purity(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """Share of points whose cluster's majority true label is their own (checked 1-D inputs)."""
    from sklearn.metrics.cluster import contingency_matrix

    table = contingency_matrix(labels_true, labels_pred, sparse=True)
    return float(table.max(axis=0).sum() / table.sum())

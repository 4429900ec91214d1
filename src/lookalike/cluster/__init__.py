"""Clustering of reduced vectors: estimators, K selection, metrics and per-cluster summaries.

Every clusterer follows scikit-learn's contract (``fit(X)`` returns self, ``labels_`` (n,) with
-1 for noise). :func:`build_clusterer` maps a :class:`~lookalike.config.ClusterConfig` onto one.
Importing this package is cheap: FAISS and scikit-learn load on first use.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from lookalike.cluster.choose_k import KChoice, choose_cut, choose_k, knee_index
from lookalike.cluster.density import DBSCAN, HDBSCAN, EpsSuggestion, suggest_eps
from lookalike.cluster.hierarchical import Agglomerative
from lookalike.cluster.kmeans import KMeans
from lookalike.cluster.metrics import ExternalScores, InternalScores, external_scores, internal_scores
from lookalike.cluster.summary import ClusterSummary, summarize_clusters
from lookalike.config import ClusterConfig
from lookalike.errors import InvalidParameterError


class Clusterer(Protocol):
    """What every clusterer offers after ``fit``: ``labels_`` (n,) int64, -1 = noise."""

    labels_: np.ndarray

    def fit(self, X: Any, y: Any = None) -> Clusterer: ...


CLUSTERERS: dict[str, type] = {
    "kmeans": KMeans,
    "agglomerative": Agglomerative,
    "dbscan": DBSCAN,
    "hdbscan": HDBSCAN,
}


def build_clusterer(config: ClusterConfig, n_clusters: int | None = None) -> Clusterer:
    """An unfitted clusterer for ``config``; ``n_clusters`` overrides ``config.n_clusters``.

    K-Means needs a K (run :func:`choose_k` first when ``config.n_clusters`` is None);
    agglomerative needs a K or ``config.distance_threshold``.
    """
    k = n_clusters if n_clusters is not None else config.n_clusters
    method = config.method
    if method == "kmeans":
        if k is None:
            raise InvalidParameterError(
                "kmeans needs n_clusters; pick one with choose_k() or set [cluster] n_clusters"
            )
        return KMeans(
            k, n_init=config.n_init, max_iter=config.max_iter, seed=config.seed, spherical=config.spherical
        )
    if method == "agglomerative":
        return Agglomerative(
            k if config.distance_threshold is None else None,
            distance_threshold=config.distance_threshold,
            linkage=config.linkage,
            metric=config.metric or "euclidean",
            n_micro=config.n_micro,
            seed=config.seed,
        )
    if method == "dbscan":
        return DBSCAN(
            config.eps,
            min_samples=config.min_samples,
            metric=config.metric or "cosine",
            sample_size=config.sample_size,
            seed=config.seed,
        )
    return HDBSCAN(config.min_cluster_size, min_samples=config.min_samples, metric=config.metric or "cosine")


__all__ = [
    "CLUSTERERS",
    "DBSCAN",
    "HDBSCAN",
    "Agglomerative",
    "ClusterSummary",
    "Clusterer",
    "EpsSuggestion",
    "ExternalScores",
    "InternalScores",
    "KChoice",
    "KMeans",
    "build_clusterer",
    "choose_cut",
    "choose_k",
    "external_scores",
    "internal_scores",
    "knee_index",
    "suggest_eps",
    "summarize_clusters",
]

"""Clustering quality for the report: the K sweep, then K-Means, Ward and HDBSCAN at one K.

Nothing is stored in the library: the estimators run in memory and are scored with
:func:`lookalike.cluster.run.score` (sampled silhouette, Davies–Bouldin, Calinski–Harabasz and,
with labels, NMI/ARI/purity). Every method uses the euclidean metric so their internal scores
compare (on unit vectors HDBSCAN's clusters are the same as with cosine). K is the number of
labels on a labelled library, else the sweep's recommendation.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np

from lookalike.cluster import KChoice, build_clusterer, choose_k
from lookalike.cluster.run import score
from lookalike.config import ClusterConfig
from lookalike.progress import NoProgress, Progress
from lookalike.report.settings import ReportConfig

METHODS = ("kmeans", "agglomerative", "hdbscan")
MIN_POINTS = 4
"""Fewer images than this are not clustered (two clusters of two is the least that scores)."""
SETTINGS = {
    "kmeans": ("n_clusters", "n_init", "max_iter", "spherical", "metric", "seed"),
    "agglomerative": ("n_clusters", "linkage", "n_micro", "metric", "seed"),
    "hdbscan": ("min_cluster_size", "min_samples", "metric"),
}
"""The :class:`ClusterConfig` fields each method uses (reported as its parameters)."""


def sweep(x: np.ndarray, config: ReportConfig, progress: Progress | None = None) -> KChoice | None:
    """Inertia and sampled silhouette for each K of ``config``'s range on ``x`` (n, d); None if no K fits."""
    progress = progress or NoProgress()
    ks = config.k_values(x.shape[0])
    if not ks:
        return None
    progress.phase("K sweep", len(ks), unit="K values")
    return choose_k(x, ks, sample_size=config.silhouette_sample, seed=config.seed,
                    on_step=lambda _: progress.advance())


def chosen_k(n_labels: int, choice: KChoice | None, n_points: int) -> tuple[int | None, str]:
    """K for K-Means and Ward, and why: the number of labels, else the sweep's recommendation."""
    if n_labels >= 2 and n_labels < n_points:
        return n_labels, f"the number of labels ({n_labels})"
    if choice is not None:
        return choice.recommended_k, f"recommended by the K sweep: {choice.reason}"
    return None, "too few images to sweep K"


def method_config(method: str, k: int | None, config: ReportConfig, n_points: int) -> ClusterConfig:
    """The :class:`ClusterConfig` the report uses for ``method`` on ``n_points`` points."""
    size = config.hdbscan_min_cluster_size or max(ClusterConfig.min_cluster_size, n_points // 100)
    settings: dict[str, Any] = {"method": method, "seed": config.seed, "metric": "euclidean",
                                "sample_size": config.silhouette_sample}
    if method == "hdbscan":
        settings["min_cluster_size"] = min(size, n_points)
        settings["min_samples"] = min(ClusterConfig.min_samples, n_points)
    else:
        settings["n_clusters"] = k
    return ClusterConfig(**settings)


def run_method(x: np.ndarray, truth: np.ndarray | None, cluster_config: ClusterConfig) -> tuple[dict[str, Any], np.ndarray]:
    """Fit one method on ``x`` (n, d) and score it against ``truth`` (n,) object or None: (entry, labels (n,))."""
    start = time.perf_counter()
    model: Any = build_clusterer(cluster_config).fit(x)
    labels = np.asarray(model.labels_, dtype=np.int64)
    fit_seconds = time.perf_counter() - start
    metrics = score(x, labels, truth, cluster_config)
    params = {name: getattr(cluster_config, name) for name in SETTINGS[cluster_config.method]}
    return {"n_points": int(x.shape[0]), "n_clusters": int(metrics["n_clusters"]), "params": params,
            "metrics": metrics, "fit_seconds": round(fit_seconds, 3)}, labels


def hdbscan_rows(n_points: int, config: ReportConfig) -> np.ndarray:
    """Sorted rows (m,) HDBSCAN clusters: all, or a seeded sample of ``config.hdbscan_sample``."""
    if n_points <= config.hdbscan_sample:
        return np.arange(n_points)
    return np.sort(np.random.default_rng(config.seed).choice(n_points, config.hdbscan_sample, replace=False))


def choice_dict(choice: KChoice | None) -> dict[str, Any] | None:
    """The sweep as JSON-ready lists (None when no K was swept)."""
    if choice is None:
        return None
    return {name: list(value) if isinstance(value, tuple) else value for name, value in asdict(choice).items()}

"""Clustering runs of a library: fit on the reduced vectors, score, name, store, read back.

A run (:meth:`Library.cluster`) clusters every embedded image's reduced vector
(:meth:`Library.reduced`, first brought up to date with the stored PCA) and stores, in one catalog
transaction, its settings, the fingerprint of the reducer it was built on, metrics and evidence
(``cluster_runs``), each image's cluster and distance to its centre (``cluster_members``; -1 =
noise) and per-cluster summaries (``clusters``). Arrays go to ``models/cluster-<run id>.npz``,
written atomically before the commit: ``centers`` (K, d) — k-means centroids, else cluster
means; for agglomerative runs the dendrogram (``linkage``, ``leaf_labels``, ``leaf_sizes``,
``merge_sizes``); for DBSCAN with a suggested eps the sorted ``k_distances``. The ``--k auto``
curves (K, inertia, sampled silhouette) are in the run's ``evidence`` (JSON, ready to plot).

Images added after a run. Reading a run describes the images the library holds *now*: removed
images drop out; new images get a cluster from the stored centroids when the run is K-Means
(``predict`` on read, counted in ``n_predicted``, never written back), and ``UNASSIGNED`` (-2)
for the other methods, which have no rule for unseen points: rerun to include them.

Space. ``ClusterConfig.space="projected"`` clusters the library's learned label projection of the
reduced vectors (``lookalike learn-projection``) instead of the vectors themselves; the run
records the projection's fingerprint (``params["projection"]``), and new images are projected
with it before the stored centroids assign them, or left unassigned once the projection was
learned again. The projection saw the labels: NMI/ARI of such a run against those same labels
are not an honest measure (``lookalike compare --projection`` scores held-out images).

Staleness. A run is ``stale`` when the library's reducer is no longer the one it was built on
(``lookalike reduce --refit``): it stays readable, but its centroids live in the old space, so
new images are left unassigned. Reduced vectors that lag behind the catalog are never a problem:
:meth:`Library.reduced` recomputes them with the stored PCA before every run. A PCA fitted on far
fewer images than the library now holds gets a note on the run suggesting a refit.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.cluster import (
    build_clusterer,
    choose_cut,
    choose_k,
    external_scores,
    internal_scores,
    suggest_eps,
    summarize_clusters,
)
from lookalike.cluster._groups import group_means
from lookalike.cluster.runs import (
    NOISE,
    UNASSIGNED,
    ClusterInfo,
    ClusterRun,
    NewRun,
    RunInfo,
    list_runs,
    read_run,
    store_run,
)
from lookalike.config import ClusterConfig, to_dict
from lookalike.errors import InvalidParameterError
from lookalike.progress import NoProgress, Progress
from lookalike.reduce.library_projection import library_projection
from lookalike.reduce.stored import reduced_vectors, stored_reducer
from lookalike.store.images import embedded_count, top_classes
from lookalike.store.labels import image_labels
from lookalike.store.library_store import LibraryStore

__all__ = ["NOISE", "UNASSIGNED", "ClusterInfo", "ClusterRun", "RunInfo", "list_runs", "read_run", "run_clustering"]

REFIT_GROWTH = 2.0
"""A run notes that the PCA may be outdated once the library holds this many times the images it was fitted on."""
_DENSITY = ("dbscan", "hdbscan")


@dataclass
class _Fitted:
    """What a method produced: labels (n,), centres (K, d), artefacts, evidence, resolved params."""

    labels: np.ndarray
    centers: np.ndarray
    arrays: dict[str, np.ndarray]
    evidence: dict[str, Any]
    params: dict[str, Any]


# -- running -----------------------------------------------------------------------------------
def run_clustering(store: LibraryStore, config: ClusterConfig, progress: Progress | None = None) -> ClusterRun:
    """Cluster ``store``'s reduced vectors with ``config``, store the run and return it read back."""
    progress = progress or NoProgress()
    if store.readonly:
        raise InvalidParameterError(f"{store.folder} was opened read-only; a clustering run is stored in it")
    n = embedded_count(store.catalog)
    _check_size(store.folder, n, config)
    progress.phase("reducing", None)
    reduced = reduced_vectors(store)
    x = np.ascontiguousarray(reduced.vectors, dtype=np.float32)
    ids = np.asarray(reduced.ids, dtype=np.int64)
    projector = library_projection(store) if config.space == "projected" else None
    if projector is not None:
        x = np.ascontiguousarray(projector.transform(x), dtype=np.float32)
    start = time.perf_counter()
    fitted = _METHODS[config.method](x, config, progress)
    fitted.params["metric"] = metric_of(config)
    fitted.params["projection"] = None if projector is None else projector.fingerprint
    progress.phase("scoring", None)
    truth = image_labels_of(store, ids)
    metrics = score(x, fitted.labels, truth, config)
    summaries = summarize_clusters(
        x, fitted.labels, true_labels=_fill(truth), class_predictions=image_top_classes(store, ids)
    )
    fitted.evidence["notes"] = pca_notes(store, n)
    fitted.arrays["centers"] = np.asarray(fitted.centers, dtype=np.float32)
    run = NewRun(
        method=config.method,
        params={**to_dict(config), **fitted.params},
        reducer_fingerprint=reduced.reducer_fingerprint,
        metrics=metrics,
        evidence=fitted.evidence,
        seconds=time.perf_counter() - start,
        ids=ids,
        labels=fitted.labels,
        distances=_distances(x, fitted.labels, fitted.centers),
        summaries=summaries,
        arrays=fitted.arrays,
    )
    return read_run(store, store_run(store, run))


def _check_size(folder: Path, n: int, config: ClusterConfig) -> None:
    if n == 0:
        raise InvalidParameterError(
            f"{folder} has no embedded images; add some first: `lookalike index FOLDER --library {folder}`"
        )
    if n < 2:
        raise InvalidParameterError(f"clustering needs at least 2 images; {folder} has {n}")
    k = config.n_clusters
    if k is not None and config.method == "agglomerative" and config.distance_threshold is not None:
        raise InvalidParameterError(
            f"give K or a distance threshold for agglomerative clustering, not both (K={k}, "
            f"distance_threshold={config.distance_threshold})"
        )
    if k is not None and config.method in ("kmeans", "agglomerative") and k > n:
        raise InvalidParameterError(f"K={k} is larger than the number of images in {folder} ({n}); choose K <= {n}")


def k_range(config: ClusterConfig, n: int) -> list[int]:
    """The K values ``--k auto`` sweeps for ``n`` images (the silhouette needs K <= n - 1)."""
    top = min(config.k_max, n - 1)
    if top < config.k_min:
        raise InvalidParameterError(
            f"--k auto sweeps K from {config.k_min} to {config.k_max}, but with {n} images K can be at most "
            f"{n - 1}; give --k N or lower --k-min"
        )
    return list(range(config.k_min, top + 1, config.k_step))


def metric_of(config: ClusterConfig) -> str:
    """The distance a run uses: the configured one, else cosine for density methods, euclidean otherwise."""
    return config.metric or ("cosine" if config.method in _DENSITY else "euclidean")


def _fit_kmeans(x: np.ndarray, config: ClusterConfig, progress: Progress) -> _Fitted:
    evidence: dict[str, Any] = {}
    k = config.n_clusters
    if k is None:
        ks = k_range(config, x.shape[0])
        progress.phase("choosing K", len(ks), unit="K values")
        choice = choose_k(
            x, ks, sample_size=config.sample_size, seed=config.seed, on_step=lambda _: progress.advance()
        )
        evidence["k_choice"] = asdict(choice)
        k = choice.recommended_k
    progress.phase("clustering", None)
    model: Any = build_clusterer(config, k).fit(x)
    params = {"n_clusters": k, "inertia": float(model.inertia_), "n_iter": int(model.n_iter_)}
    return _Fitted(np.asarray(model.labels_, dtype=np.int64), model.cluster_centers_, {}, evidence, params)


def _fit_agglomerative(x: np.ndarray, config: ClusterConfig, progress: Progress) -> _Fitted:
    evidence: dict[str, Any] = {}
    auto = config.n_clusters is None and config.distance_threshold is None
    ks = k_range(config, x.shape[0]) if auto else []
    progress.phase("building the tree", None)
    model: Any = build_clusterer(config, ks[0] if auto else None).fit(x)
    labels = model.labels_
    if auto:
        ks = [k for k in ks if k <= model.leaf_sizes_.shape[0]]
        progress.phase("choosing K", len(ks), unit="K values")
        choice = choose_cut(
            x, model, ks, sample_size=config.sample_size, seed=config.seed, on_step=lambda _: progress.advance()
        )
        evidence["k_choice"] = asdict(choice)
        labels = model.cut(choice.recommended_k)
    arrays = {"linkage": model.linkage_, "leaf_labels": model.leaf_labels_,
              "leaf_sizes": model.leaf_sizes_, "merge_sizes": model.merge_sizes_}  # fmt: skip
    params = {"n_clusters": int(labels.max()) + 1, "exact": bool(model.exact_), "leaves": int(model.leaf_sizes_.size)}
    return _Fitted(labels, cluster_means(x, labels), arrays, evidence, params)


def _fit_density(x: np.ndarray, config: ClusterConfig, progress: Progress) -> _Fitted:
    evidence: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    params: dict[str, Any] = {}
    progress.phase("clustering", None)
    if config.method == "dbscan" and config.eps is None:
        suggestion = suggest_eps(x, min(config.min_samples, x.shape[0]), metric=metric_of(config),
                                 sample_size=config.sample_size, seed=config.seed)  # fmt: skip
        evidence["eps"] = {"eps": suggestion.eps, "source": suggestion.source, "knee": suggestion.knee,
                           "sample_size": suggestion.sample_size}  # fmt: skip
        arrays["k_distances"] = suggestion.k_distances
        config = replace(config, eps=suggestion.eps)
    model: Any = build_clusterer(config).fit(x)
    labels = np.asarray(model.labels_, dtype=np.int64)
    if config.method == "dbscan":
        params["eps"] = float(model.eps_)
        evidence.setdefault("eps", {"eps": float(model.eps_), "source": "given"})
    else:
        evidence["graph_components"] = int(model.n_graph_components_)
    params["n_clusters"] = int(model.n_clusters_)
    return _Fitted(labels, cluster_means(x, labels), arrays, evidence, params)


_METHODS = {
    "kmeans": _fit_kmeans,
    "agglomerative": _fit_agglomerative,
    "dbscan": _fit_density,
    "hdbscan": _fit_density,
}


def cluster_means(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean of each cluster 0..K-1 of ``x`` (n, d), noise (-1) left out: (K, d) float32."""
    keep = labels >= 0
    k = int(labels.max()) + 1 if keep.any() else 0
    return group_means(x[keep], labels[keep], k)[0].astype(np.float32)


def _distances(x: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Euclidean distance of each row to its cluster's centre (n,); NaN for noise."""
    out = np.full(labels.shape[0], np.nan)
    keep = labels >= 0
    out[keep] = np.linalg.norm(x[keep] - centers[labels[keep]], axis=1)
    return out


# -- quality and names -------------------------------------------------------------------------
def score(x: np.ndarray, labels: np.ndarray, truth: np.ndarray | None, config: ClusterConfig) -> dict[str, Any]:
    """Internal scores (silhouette on a stated sample, DB, CH) and, with labels, external ones."""
    metrics = asdict(
        internal_scores(x, labels, sample_size=config.sample_size, seed=config.seed, metric=metric_of(config))
    )
    metrics["external"] = None
    if truth is not None:
        known = np.array([t is not None for t in truth])
        if (known & (labels != NOISE)).any():
            scores = external_scores(truth[known].astype(str), labels[known])
            metrics["external"] = {**asdict(scores), "n_labelled": int(known.sum())}
    return metrics


def image_labels_of(store: LibraryStore, ids: np.ndarray) -> np.ndarray | None:
    """Each image's label (the one rule of ``store.labels``), None where unlabelled; None without labels."""
    labels = image_labels(store.catalog).labels
    if not labels:
        return None
    return np.array([labels.get(int(i)) for i in ids], dtype=object)


def image_top_classes(store: LibraryStore, ids: np.ndarray) -> list[str] | None:
    """Each image's top ImageNet class name; None when the backbone stored none."""
    top_index = top_classes(store.catalog)
    if not top_index:
        return None
    from lookalike.embed.imagenet import imagenet_classes

    names = imagenet_classes()
    top = {i: names[c] for i, c in top_index.items()}
    return [top.get(int(i), "unclassified") for i in ids]


def _fill(truth: np.ndarray | None) -> np.ndarray | None:
    return None if truth is None else np.array(["(unlabelled)" if t is None else t for t in truth], dtype=str)


def pca_notes(store: LibraryStore, n_images: int) -> list[str]:
    """Notes on the stored PCA: clamped components, or fitted on far fewer images than now."""
    reducer = stored_reducer(store)
    notes = [f"PCA: {note}" for note in (reducer.notes_ if reducer is not None else [])]
    fitted_on = int(store.manifest.sections.get("reducer", {}).get("fitted_on", 0) or 0)
    if fitted_on and n_images >= REFIT_GROWTH * fitted_on:
        notes.append(
            f"the PCA was fitted on {fitted_on} images and the library now holds {n_images}: "
            "`lookalike reduce --refit` fits it to all of them (older runs then become stale)"
        )
    return notes



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

Staleness. A run is ``stale`` when the library's reducer is no longer the one it was built on
(``lookalike reduce --refit``): it stays readable, but its centroids live in the old space, so
new images are left unassigned. Reduced vectors that lag behind the catalog are never a problem:
:meth:`Library.reduced` recomputes them with the stored PCA before every run. A PCA fitted on far
fewer images than the library now holds gets a note on the run suggesting a refit.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.cluster import (
    Agglomerative,
    build_clusterer,
    choose_cut,
    choose_k,
    external_scores,
    internal_scores,
    suggest_eps,
    summarize_clusters,
)
from lookalike.cluster._groups import group_means
from lookalike.cluster.kmeans import assign
from lookalike.config import ClusterConfig, to_dict
from lookalike.errors import InvalidParameterError
from lookalike.progress import NoProgress, Progress
from lookalike.store.arrays import load_npz, save_npz

if TYPE_CHECKING:
    from lookalike.library import Library

NOISE = -1
UNASSIGNED = -2
"""Label of an image embedded after a non-K-Means (or stale) run."""
REFIT_GROWTH = 2.0
"""A run notes that the PCA may be outdated once the library holds this many times the images it was fitted on."""
_DENSITY = ("dbscan", "hdbscan")


@dataclass(frozen=True)
class ClusterInfo:
    """One stored cluster: image ids (``medoid``, ``representatives``, medoid first) and paths."""

    cluster: int
    size: int
    name: str
    medoid: int | None
    spread: float | None
    representatives: tuple[int, ...]
    representative_paths: tuple[str, ...]


@dataclass(frozen=True)
class RunInfo:
    """One row of ``cluster_runs``; ``stale`` compares its reducer with the library's current one."""

    id: int
    method: str
    params: dict[str, Any]
    reducer_fingerprint: str
    n_images: int
    n_clusters: int
    n_noise: int
    metrics: dict[str, Any]
    evidence: dict[str, Any]
    created: float
    seconds: float
    stale: bool

    @property
    def notes(self) -> list[str]:
        return list(self.evidence.get("notes", []))


@dataclass(frozen=True)
class ClusterRun:
    """A stored run as it applies to the library now.

    ``image_ids`` (n,) every currently embedded image; ``labels`` (n,) its cluster (-1 noise,
    -2 unassigned); ``distances`` (n,) to the cluster centre (NaN for noise/unassigned);
    ``arrays`` the run's ``.npz`` artefacts.
    """

    info: RunInfo
    clusters: tuple[ClusterInfo, ...]
    image_ids: np.ndarray
    labels: np.ndarray
    distances: np.ndarray
    n_new: int
    n_predicted: int
    n_removed: int
    arrays: dict[str, np.ndarray] = field(repr=False)

    def members(self, cluster: int) -> np.ndarray:
        """Image ids (m,) currently in ``cluster``."""
        return self.image_ids[self.labels == cluster]


@dataclass
class _Fitted:
    """What a method produced: labels (n,), centres (K, d), artefacts, evidence, resolved params."""

    labels: np.ndarray
    centers: np.ndarray
    arrays: dict[str, np.ndarray]
    evidence: dict[str, Any]
    params: dict[str, Any]


def run_file(folder: Path, run_id: int) -> Path:
    """Where a run's arrays live."""
    return folder / "models" / f"cluster-{run_id}.npz"


# -- running -----------------------------------------------------------------------------------
def run_clustering(lib: Library, config: ClusterConfig, progress: Progress | None = None) -> ClusterRun:
    """Cluster ``lib``'s reduced vectors with ``config``, store the run and return it read back."""
    progress = progress or NoProgress()
    if lib.readonly:
        raise InvalidParameterError(f"{lib.folder} was opened read-only; a clustering run is stored in it")
    n = lib.catalog.count("SELECT COUNT(*) FROM images WHERE status = 'embedded'")
    _check_size(lib.folder, n, config)
    progress.phase("reducing", None)
    reduced = lib.reduced()
    x = np.ascontiguousarray(reduced.vectors, dtype=np.float32)
    ids = np.asarray(reduced.ids, dtype=np.int64)
    start = time.perf_counter()
    fitted = _fit(x, config, progress)
    progress.phase("scoring", None)
    truth = image_labels(lib, ids)
    metrics = score(x, fitted.labels, truth, config)
    summaries = summarize_clusters(
        x, fitted.labels, true_labels=_fill(truth), class_predictions=image_top_classes(lib, ids)
    )
    fitted.evidence["notes"] = pca_notes(lib, n)
    distances = _distances(x, fitted.labels, fitted.centers)
    run_id = _store(lib, config, fitted, metrics, ids, distances, summaries, time.perf_counter() - start,
                    reduced.reducer_fingerprint)  # fmt: skip
    progress.close()
    return read_run(lib, run_id)


def _check_size(folder: Path, n: int, config: ClusterConfig) -> None:
    if n == 0:
        raise InvalidParameterError(
            f"{folder} has no embedded images; add some first: `lookalike index FOLDER --library {folder}`"
        )
    if n < 2:
        raise InvalidParameterError(f"clustering needs at least 2 images; {folder} has {n}")
    k = config.n_clusters
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


def _fit(x: np.ndarray, config: ClusterConfig, progress: Progress) -> _Fitted:
    """Run ``config.method`` on checked-size ``x`` (n, d)."""
    params: dict[str, Any] = {}
    evidence: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    method = config.method
    if method == "kmeans":
        k = config.n_clusters or _sweep(evidence, progress, config, x.shape[0],
                                        lambda ks, step: choose_k(x, ks, sample_size=config.sample_size,
                                                                  seed=config.seed, on_step=step))  # fmt: skip
        progress.phase("clustering", None)
        model: Any = build_clusterer(config, k).fit(x)
        labels, centers = model.labels_, model.cluster_centers_
        params["n_clusters"], params["inertia"] = k, float(model.inertia_)
    elif method == "agglomerative":
        progress.phase("clustering", None)
        model = _fit_tree(x, config, evidence, progress)
        labels = model.labels_
        arrays = {"linkage": model.linkage_, "leaf_labels": model.leaf_labels_,
                  "leaf_sizes": model.leaf_sizes_, "merge_sizes": model.merge_sizes_}  # fmt: skip
        params["n_clusters"], params["exact"] = int(labels.max()) + 1, bool(model.exact_)
    else:
        labels = _fit_density(x, config, evidence, arrays, progress)
    labels = np.asarray(labels, dtype=np.int64)
    if method != "kmeans":
        centers = group_means(x, np.maximum(labels, 0), int(labels.max()) + 1)[0] if labels.max() >= 0 \
            else np.zeros((0, x.shape[1]))
        centers = _noise_free_means(x, labels)
    arrays["centers"] = np.asarray(centers, dtype=np.float32)
    params["metric"] = metric_of(config)
    return _Fitted(labels, arrays["centers"], arrays, evidence, params)

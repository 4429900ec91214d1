"""Clustering runs for the images held now: a stored run (``lookalike.store.runs``) applied
to the library's current images, with images embedded since assigned by the stored centroids.

:class:`ClusterRun` is the one view of a run every stage uses: clustering returns it, search
filters and scores confidence with it, the CLI, API, app and report show it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.cluster.kmeans import assign
from lookalike.errors import InvalidParameterError, StaleModelError
from lookalike.reduce.library_projection import library_projection
from lookalike.reduce.stored import reduced_vectors, stored_reducer
from lookalike.store.arrays import load_npz, save_npz
from lookalike.store.images import first_files
from lookalike.store.library_store import LibraryStore
from lookalike.store.runs import (
    NOISE,
    ClusterRow,
    Members,
    RunInfo,
    insert_run,
    run_clusters,
    run_file,
    run_infos,
    run_members,
)

if TYPE_CHECKING:
    from lookalike.cluster import ClusterSummary

UNASSIGNED = -2
"""Label of an image embedded after a non-K-Means (or stale) run: it has no cluster in that run."""

__all__ = ["NOISE", "UNASSIGNED", "ClusterInfo", "ClusterRun", "NewRun", "RunInfo", "list_runs", "read_run",
           "store_run", "find_run", "run_file"]


@dataclass(frozen=True)
class ClusterInfo:
    """One stored cluster, as of its run: image ids (``medoid``; ``representatives``, medoid
    first) and one file path per representative."""

    cluster: int
    size: int
    name: str
    medoid: int | None
    spread: float | None
    representatives: tuple[int, ...]
    representative_paths: tuple[str, ...]


@dataclass(frozen=True)
class ClusterRun:
    """A stored run applied to the images the library holds now.

    ``image_ids`` (n,) every currently embedded image; ``labels`` (n,) its cluster (-1 noise,
    -2 unassigned: embedded after a non-K-Means or stale run); ``distances`` (n,) to the cluster
    centre (NaN for noise and unassigned); ``n_new`` images embedded after the run, of which
    ``n_predicted`` were assigned by the stored centroids; ``n_removed`` members no longer in the
    library; ``arrays`` the run's ``.npz`` artefacts.
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

    @property
    def id(self) -> int:
        return self.info.id

    @property
    def reducer_fingerprint(self) -> str:
        return self.info.reducer_fingerprint

    @property
    def names(self) -> dict[int, str]:
        """Cluster number -> name."""
        return {c.cluster: c.name for c in self.clusters}

    def members(self, cluster: int) -> np.ndarray:
        """Image ids (m,) currently in ``cluster``."""
        return np.asarray(self.image_ids[self.labels == cluster])

    def cluster_of(self, image_id: int) -> int | None:
        """The image's cluster (-1 noise) or None when the run does not assign it."""
        pos = int(np.searchsorted(self.image_ids, image_id))
        if pos < len(self.image_ids) and self.image_ids[pos] == image_id and self.labels[pos] != UNASSIGNED:
            return int(self.labels[pos])
        return None

    def members_of(self, cluster: int) -> np.ndarray:
        """Image ids in ``cluster``; an unknown cluster number raises with the valid ones."""
        known = np.unique(self.labels[self.labels != UNASSIGNED])
        if cluster not in known:
            shown = ", ".join(str(c) for c in known[:20])
            raise InvalidParameterError(f"cluster run {self.id} has no cluster {cluster}; its clusters are {shown}")
        return self.members(cluster)


@dataclass(frozen=True)
class NewRun:
    """Everything one run writes. ``ids``, ``labels``, ``distances`` are (n,); ``summaries`` index rows of ``ids``."""

    method: str
    params: dict[str, Any]
    reducer_fingerprint: str
    metrics: dict[str, Any]
    evidence: dict[str, Any]
    seconds: float
    ids: np.ndarray
    labels: np.ndarray
    distances: np.ndarray
    summaries: list[ClusterSummary]
    arrays: dict[str, np.ndarray]


def store_run(store: LibraryStore, run: NewRun) -> int:
    """Write ``run`` (catalog rows and ``.npz``) in one transaction; returns its id."""
    ids = run.ids
    clusters = [ClusterRow(s.cluster, s.size, s.name, int(ids[s.medoid]), s.spread,
                           tuple(int(ids[i]) for i in s.representatives)) for s in run.summaries]  # fmt: skip
    info = {"method": run.method, "params": run.params, "reducer_fingerprint": run.reducer_fingerprint,
            "metrics": run.metrics, "evidence": run.evidence, "seconds": run.seconds}

    def write_arrays(run_id: int) -> Path:
        path = run_file(store.folder, run_id)
        save_npz(path, run.arrays)
        return path

    return insert_run(store.catalog, info, Members(ids, run.labels, run.distances), clusters, write_arrays)


def list_runs(store: LibraryStore) -> list[RunInfo]:
    """Every stored run of ``store``, oldest first."""
    reducer = stored_reducer(store)
    return run_infos(store.catalog, None if reducer is None else str(reducer.fingerprint))


def read_run(store: LibraryStore, run_id: int | None = None) -> ClusterRun:
    """Run ``run_id`` (default: the latest) applied to the images ``store`` holds now."""
    info = find_run(store, run_id)
    stored = run_members(store.catalog, info.id)
    stored_ids = stored.ids
    current = np.asarray(store.catalog.embedded_rows()[0], dtype=np.int64)
    labels = np.full(current.size, UNASSIGNED, dtype=np.int64)
    distances = np.full(current.size, np.nan)
    found = np.zeros(current.size, dtype=bool)
    if stored_ids.size:
        pos = np.minimum(np.searchsorted(stored_ids, current), stored_ids.size - 1)
        found = stored_ids[pos] == current
        labels[found] = stored.clusters[pos[found]]
        distances[found] = stored.distances[pos[found]]
    arrays = load_npz(run_file(store.folder, info.id))
    n_new = int(np.count_nonzero(~found))
    predicted = 0
    if n_new and info.method == "kmeans" and not info.stale:
        project = _projection_of(store, info)
        if project is not None:
            predicted = _predict_new(store, current[~found], arrays["centers"], labels, distances, ~found, project)
    return ClusterRun(
        info=info,
        clusters=_read_clusters(store, info.id),
        image_ids=current,
        labels=labels,
        distances=distances,
        n_new=n_new,
        n_predicted=predicted,
        n_removed=int(stored_ids.size - np.count_nonzero(found)),
        arrays=arrays,
    )


def _projection_of(store: LibraryStore, info: RunInfo) -> Callable[[np.ndarray], np.ndarray] | None:
    """How new images reach the run's space: as they are, or through the projection the run was
    built on; None when that projection is gone or was learned again (they stay unassigned)."""
    fingerprint = info.params.get("projection")
    if not fingerprint:
        return lambda vectors: vectors
    try:
        projector = library_projection(store)
    except (InvalidParameterError, StaleModelError):
        return None
    return projector.transform if projector.fingerprint == fingerprint else None


def _predict_new(
    store: LibraryStore, new_ids: np.ndarray, centers: np.ndarray, labels: np.ndarray, distances: np.ndarray,
    where: np.ndarray, project: Callable[[np.ndarray], np.ndarray],
) -> int:  # fmt: skip
    """Nearest stored centroid for ``new_ids`` (brought into the run's space by ``project``),
    written into ``labels``/``distances`` at ``where``."""
    reduced = reduced_vectors(store)
    order = np.argsort(reduced.ids)
    rows = order[np.searchsorted(reduced.ids, new_ids, sorter=order)]
    vectors = np.ascontiguousarray(project(np.asarray(reduced.vectors)[rows]), dtype=np.float32)
    new_labels, sq_dist = assign(vectors, np.ascontiguousarray(centers, dtype=np.float32))
    labels[where] = new_labels
    distances[where] = np.sqrt(sq_dist)
    return int(new_ids.size)


def find_run(store: LibraryStore, run_id: int | None) -> RunInfo:
    """The run with ``run_id`` (None: the latest), or an error naming the runs there are."""
    runs = list_runs(store)
    if not runs:
        raise InvalidParameterError(
            f"{store.folder} has no clustering runs yet; run `lookalike cluster --library {store.folder}`"
        )
    if run_id is None:
        return runs[-1]
    for run in runs:
        if run.id == run_id:
            return run
    raise InvalidParameterError(
        f"{store.folder} has no clustering run {run_id}; its runs are {', '.join(str(r.id) for r in runs)}"
    )


def _read_clusters(store: LibraryStore, run_id: int) -> tuple[ClusterInfo, ...]:
    rows = run_clusters(store.catalog, run_id)
    paths = image_paths(store, sorted({i for r in rows for i in r.representatives}))
    return tuple(
        ClusterInfo(
            cluster=r.cluster, size=r.size, name=r.name, medoid=r.medoid, spread=r.spread,
            representatives=r.representatives,
            representative_paths=tuple(paths[i] for i in r.representatives if i in paths),
        )
        for r in rows
    )


def image_paths(store: LibraryStore, image_ids: list[int]) -> dict[int, str]:
    """One file path per image id (its first file); images no longer in the library are left out."""
    return {image: path for image, (path, _) in first_files(store.catalog, image_ids).items()}

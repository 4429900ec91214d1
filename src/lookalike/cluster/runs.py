"""Stored clustering runs: write one run atomically, read runs back (see :mod:`lookalike.cluster.run`).

A run lives in the catalog tables ``cluster_runs`` (settings, reducer fingerprint, metrics and
evidence as JSON), ``cluster_members`` (image id, cluster, distance to the centre; -1 = noise)
and ``clusters`` (size, name, medoid, spread, representatives), plus the arrays in
``models/cluster-<run id>.npz``. The ``.npz`` is written atomically inside the catalog
transaction, before the commit, so a committed run always has its arrays; a killed writer
leaves at most an orphan file whose id the next run reuses (and overwrites).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.cluster.kmeans import assign
from lookalike.errors import InvalidParameterError
from lookalike.reduce.stored import reduced_vectors, stored_reducer
from lookalike.store.arrays import load_npz, save_npz

if TYPE_CHECKING:
    from lookalike.cluster import ClusterSummary
    from lookalike.store.library_store import LibraryStore

NOISE = -1
UNASSIGNED = -2
"""Label of an image embedded after a non-K-Means (or stale) run: it has no cluster in that run."""


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
class RunInfo:
    """One row of ``cluster_runs``; ``stale`` when the library's reducer is not the run's one."""

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
        """Remarks recorded with the run (PCA clamped or fitted on far fewer images, ...)."""
        return [str(note) for note in self.evidence.get("notes", [])]


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

    def members(self, cluster: int) -> np.ndarray:
        """Image ids (m,) currently in ``cluster``."""
        return self.image_ids[self.labels == cluster]


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


def run_file(folder: Path, run_id: int) -> Path:
    """Where a run's arrays live."""
    return folder / "models" / f"cluster-{run_id}.npz"


def store_run(store: LibraryStore, run: NewRun) -> int:
    """Write ``run`` (catalog rows and ``.npz``) in one transaction; returns its id."""
    ids = run.ids
    row = (run.method, json.dumps(run.params), run.reducer_fingerprint, int(ids.size), len(run.summaries),
           int(np.count_nonzero(run.labels == NOISE)), json.dumps(run.metrics), json.dumps(run.evidence),
           time.time(), run.seconds)  # fmt: skip
    distances = [None if np.isnan(d) else float(d) for d in run.distances]
    clusters = [(s.cluster, s.size, s.name, int(ids[s.medoid]), s.spread,
                 json.dumps([int(ids[i]) for i in s.representatives])) for s in run.summaries]  # fmt: skip
    path: Path | None = None
    try:
        with store.catalog.transaction() as db:
            cursor = db.execute(
                "INSERT INTO cluster_runs(method, params, reducer_fingerprint, n_images, n_clusters, n_noise, "
                "metrics, evidence, created, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            run_id = int(cursor.lastrowid or 0)
            path = run_file(store.folder, run_id)
            save_npz(path, run.arrays)
            db.executemany(
                "INSERT INTO cluster_members(run_id, image_id, cluster, distance) VALUES (?, ?, ?, ?)",
                zip([run_id] * ids.size, ids.tolist(), run.labels.tolist(), distances),
            )
            db.executemany(
                "INSERT INTO clusters(run_id, cluster, size, name, medoid_image_id, spread, representatives) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *c) for c in clusters],
            )
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    return run_id


# -- reading -----------------------------------------------------------------------------------
_RUN_COLUMNS = (
    "id, method, params, reducer_fingerprint, n_images, n_clusters, n_noise, metrics, evidence, created, seconds"
)


def list_runs(store: LibraryStore) -> list[RunInfo]:
    """Every stored run of ``store``, oldest first."""
    reducer = stored_reducer(store)
    current = None if reducer is None else str(reducer.fingerprint)
    rows = store.catalog.query(f"SELECT {_RUN_COLUMNS} FROM cluster_runs ORDER BY id")
    return [_run_info(row, current) for row in rows]


def read_run(store: LibraryStore, run_id: int | None = None) -> ClusterRun:
    """Run ``run_id`` (default: the latest) applied to the images ``store`` holds now."""
    info = find_run(store, run_id)
    stored = store.catalog.query(
        "SELECT image_id, cluster, distance FROM cluster_members WHERE run_id = ? ORDER BY image_id", (info.id,)
    )
    stored_ids = np.array([r[0] for r in stored], dtype=np.int64)
    current = np.asarray(store.catalog.embedded_rows()[0], dtype=np.int64)
    labels = np.full(current.size, UNASSIGNED, dtype=np.int64)
    distances = np.full(current.size, np.nan)
    found = np.zeros(current.size, dtype=bool)
    if stored_ids.size:
        pos = np.minimum(np.searchsorted(stored_ids, current), stored_ids.size - 1)
        found = stored_ids[pos] == current
        labels[found] = np.array([r[1] for r in stored], dtype=np.int64)[pos[found]]
        distances[found] = np.array([np.nan if r[2] is None else r[2] for r in stored])[pos[found]]
    arrays = load_npz(run_file(store.folder, info.id))
    n_new = int(np.count_nonzero(~found))
    predicted = 0
    if n_new and info.method == "kmeans" and not info.stale:
        predicted = _predict_new(store, current[~found], arrays["centers"], labels, distances, ~found)
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


def _predict_new(
    store: LibraryStore, new_ids: np.ndarray, centers: np.ndarray, labels: np.ndarray, distances: np.ndarray,
    where: np.ndarray,
) -> int:  # fmt: skip
    """Nearest stored centroid for ``new_ids``, written into ``labels``/``distances`` at ``where``."""
    reduced = reduced_vectors(store)
    order = np.argsort(reduced.ids)
    rows = order[np.searchsorted(reduced.ids, new_ids, sorter=order)]
    vectors = np.ascontiguousarray(np.asarray(reduced.vectors)[rows], dtype=np.float32)
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


def _run_info(row: tuple, current_fingerprint: str | None) -> RunInfo:
    return RunInfo(
        id=int(row[0]), method=str(row[1]), params=json.loads(row[2]), reducer_fingerprint=str(row[3]),
        n_images=int(row[4]), n_clusters=int(row[5]), n_noise=int(row[6]), metrics=json.loads(row[7]),
        evidence=json.loads(row[8]) if row[8] else {}, created=float(row[9]), seconds=float(row[10]),
        stale=row[3] != current_fingerprint,
    )  # fmt: skip


def _read_clusters(store: LibraryStore, run_id: int) -> tuple[ClusterInfo, ...]:
    rows = store.catalog.query(
        "SELECT cluster, size, name, medoid_image_id, spread, representatives FROM clusters "
        "WHERE run_id = ? ORDER BY cluster",
        (run_id,),
    )
    reps = {int(r[0]): tuple(int(i) for i in json.loads(r[5] or "[]")) for r in rows}
    paths = image_paths(store, sorted({i for ids in reps.values() for i in ids}))
    return tuple(
        ClusterInfo(
            cluster=int(r[0]), size=int(r[1]), name=str(r[2]),
            medoid=None if r[3] is None else int(r[3]), spread=None if r[4] is None else float(r[4]),
            representatives=reps[int(r[0])],
            representative_paths=tuple(paths[i] for i in reps[int(r[0])] if i in paths),
        )  # fmt: skip
        for r in rows
    )


def image_paths(store: LibraryStore, image_ids: list[int]) -> dict[int, str]:
    """One file path per image id (its first file); images no longer in the library are left out."""
    out: dict[int, str] = {}
    for start in range(0, len(image_ids), 500):
        chunk = image_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        query = f"SELECT image_id, path FROM files WHERE image_id IN ({marks}) ORDER BY id"
        for image_id, path in store.catalog.query(query, chunk):
            out.setdefault(int(image_id), str(path))
    return out

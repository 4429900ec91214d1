"""Stored clustering runs: the SQL of ``cluster_runs``, ``cluster_members`` and ``clusters``.

A run is written in one transaction with its arrays (``models/cluster-<run id>.npz``, written
atomically before the commit, so a committed run always has its arrays; a killed writer leaves
at most an orphan file whose id the next run reuses). Readers get plain records: what to make
of a run for the images held now is the cluster stage's business (``lookalike.cluster.runs``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError
from lookalike.store.catalog import Catalog

NOISE = -1


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
class ClusterRow:
    """One stored cluster: ``medoid`` and ``representatives`` (medoid first) are image ids."""

    cluster: int
    size: int
    name: str
    medoid: int | None
    spread: float | None
    representatives: tuple[int, ...]


@dataclass(frozen=True)
class Members:
    """A run's stored members, sorted by image id: ids, clusters (-1 noise), distances (NaN: none)."""

    ids: np.ndarray
    clusters: np.ndarray
    distances: np.ndarray


def run_file(folder: Path, run_id: int) -> Path:
    """Where a run's arrays live."""
    return folder / "models" / f"cluster-{run_id}.npz"


def insert_run(
    catalog: Catalog, info: dict[str, Any], members: Members, clusters: list[ClusterRow],
    write_arrays: Callable[[int], Path],
) -> int:  # fmt: skip
    """Write a run in one transaction; ``write_arrays(run_id)`` stores its arrays before the
    commit (and the file is removed again if the transaction fails). Returns the run id."""
    row = (info["method"], json.dumps(info["params"]), info["reducer_fingerprint"], int(members.ids.size),
           len(clusters), int(np.count_nonzero(members.clusters == NOISE)), json.dumps(info["metrics"]),
           json.dumps(info["evidence"]), time.time(), info["seconds"])  # fmt: skip
    distances = [None if np.isnan(d) else float(d) for d in members.distances]
    path: Path | None = None
    try:
        with catalog.transaction() as db:
            cursor = db.execute(
                "INSERT INTO cluster_runs(method, params, reducer_fingerprint, n_images, n_clusters, n_noise, "
                "metrics, evidence, created, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            run_id = int(cursor.lastrowid or 0)
            path = write_arrays(run_id)
            db.executemany(
                "INSERT INTO cluster_members(run_id, image_id, cluster, distance) VALUES (?, ?, ?, ?)",
                zip([run_id] * members.ids.size, members.ids.tolist(), members.clusters.tolist(), distances),
            )
            db.executemany(
                "INSERT INTO clusters(run_id, cluster, size, name, medoid_image_id, spread, representatives) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, c.cluster, c.size, c.name, c.medoid, c.spread, json.dumps(list(c.representatives)))
                 for c in clusters],
            )  # fmt: skip
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    return run_id


_RUN_COLUMNS = (
    "id, method, params, reducer_fingerprint, n_images, n_clusters, n_noise, metrics, evidence, created, seconds"
)


def run_infos(catalog: Catalog, current_fingerprint: str | None) -> list[RunInfo]:
    """Every stored run, oldest first; ``stale`` against the library's current reducer."""
    rows = catalog.query(f"SELECT {_RUN_COLUMNS} FROM cluster_runs ORDER BY id")
    return [_run_info(row, current_fingerprint) for row in rows]


def latest_run(catalog: Catalog, run_id: int | None, where: Path) -> tuple[int, str]:
    """(id, reducer fingerprint) of run ``run_id`` (None: the latest); unknown ids raise with the known."""
    if run_id is None:
        rows = catalog.query("SELECT id, reducer_fingerprint FROM cluster_runs ORDER BY id DESC LIMIT 1")
    else:
        rows = catalog.query("SELECT id, reducer_fingerprint FROM cluster_runs WHERE id = ?", (run_id,))
    if not rows:
        known = [r[0] for r in catalog.query("SELECT id FROM cluster_runs ORDER BY id")]
        raise InvalidParameterError(
            f"{where}: no cluster run {run_id}; stored runs: {known or 'none (cluster the library first)'}"
        )
    return int(rows[0][0]), str(rows[0][1])


def newest_run_id(catalog: Catalog) -> int | None:
    """The latest run's id, None without runs."""
    value = catalog.query("SELECT MAX(id) FROM cluster_runs")[0][0]
    return None if value is None else int(value)


def run_members(catalog: Catalog, run_id: int) -> Members:
    """The run's stored members, sorted by image id."""
    rows = catalog.query(
        "SELECT image_id, cluster, distance FROM cluster_members WHERE run_id = ? ORDER BY image_id", (run_id,)
    )
    return Members(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        clusters=np.array([r[1] for r in rows], dtype=np.int64),
        distances=np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=np.float64),
    )


def run_clusters(catalog: Catalog, run_id: int) -> list[ClusterRow]:
    """The run's clusters, by number."""
    rows = catalog.query(
        "SELECT cluster, size, name, medoid_image_id, spread, representatives FROM clusters "
        "WHERE run_id = ? ORDER BY cluster",
        (run_id,),
    )
    return [
        ClusterRow(
            cluster=int(r[0]), size=int(r[1]), name=str(r[2]),
            medoid=None if r[3] is None else int(r[3]), spread=None if r[4] is None else float(r[4]),
            representatives=tuple(int(i) for i in json.loads(r[5] or "[]")),
        )  # fmt: skip
        for r in rows
    ]


def _run_info(row: tuple[Any, ...], current_fingerprint: str | None) -> RunInfo:
    return RunInfo(
        id=int(row[0]), method=str(row[1]), params=json.loads(row[2]), reducer_fingerprint=str(row[3]),
        n_images=int(row[4]), n_clusters=int(row[5]), n_noise=int(row[6]), metrics=json.loads(row[7]),
        evidence=json.loads(row[8]) if row[8] else {}, created=float(row[9]), seconds=float(row[10]),
        stale=row[3] != current_fingerprint,
    )  # fmt: skip

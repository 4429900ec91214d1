"""What users change in a library by hand: cluster names, file labels, and the log of actions.

Tables (created on first write, so libraries made before them stay readable):

- ``actions``: one row per action run on a selection (export, copy, link, quarantine, label,
  rename, undo): when, kind, how many files, the target (folder, CSV file, label, name), the
  details needed to undo it (JSON) and, once undone, when.

Cluster names live in the ``clusters`` table of the run (see :mod:`lookalike.store.catalog`), so
the CLI, the REST API and the report show a renamed cluster with no change; labels set by hand
go to ``files.label``, where folder labels live.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from lookalike.errors import InvalidParameterError
from lookalike.store.catalog import Catalog, encode_path

_SCHEMA = """CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL,
    undone_at REAL
)"""


@dataclass(frozen=True)
class ActionRecord:
    """One logged action; ``details`` holds what undoing it needs."""

    id: int
    at: float
    kind: str
    count: int
    target: str
    details: dict[str, Any]
    undone_at: float | None


def log_action(catalog: Catalog, kind: str, count: int, target: str, details: dict[str, Any]) -> int:
    """Append an action to the log; returns its id."""
    with catalog.transaction() as db:
        db.execute(_SCHEMA)
        cursor = db.execute(
            "INSERT INTO actions(at, kind, count, target, details) VALUES (?, ?, ?, ?, ?)",
            (time.time(), kind, int(count), target, json.dumps(details)),
        )
        return int(cursor.lastrowid or 0)


def _has_log(catalog: Catalog) -> bool:
    return bool(catalog.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'actions'"))


def read_actions(catalog: Catalog, limit: int | None = None) -> list[ActionRecord]:
    """Logged actions, newest first (``limit``: at most that many)."""
    if not _has_log(catalog):
        return []
    rows = catalog.query(
        "SELECT id, at, kind, count, target, details, undone_at FROM actions ORDER BY id DESC LIMIT ?",
        (-1 if limit is None else int(limit),),
    )
    return [ActionRecord(int(r[0]), float(r[1]), str(r[2]), int(r[3]), str(r[4]), json.loads(r[5]), r[6]) for r in rows]


def find_action(catalog: Catalog, action_id: int) -> ActionRecord:
    """The logged action ``action_id``, or an error naming the latest ones."""
    for record in read_actions(catalog):
        if record.id == action_id:
            return record
    known = ", ".join(str(r.id) for r in read_actions(catalog, 10)) or "none"
    raise InvalidParameterError(f"{catalog.path}: no logged action {action_id}; latest actions: {known}")


def mark_undone(catalog: Catalog, action_id: int) -> None:
    with catalog.transaction() as db:
        db.execute("UPDATE actions SET undone_at = ? WHERE id = ?", (time.time(), action_id))


# -- labels --------------------------------------------------------------------------------------
def file_labels(catalog: Catalog, paths: list[str]) -> dict[str, str | None]:
    """The label of each of ``paths`` the catalog holds (unknown paths are left out)."""
    out: dict[str, str | None] = {}
    for path in paths:
        rows = catalog.query("SELECT label FROM files WHERE path_bytes = ?", (encode_path(path),))
        if rows:
            out[path] = rows[0][0]
    return out


def set_labels(catalog: Catalog, labels: dict[str, str | None]) -> int:
    """Set each file's label (None clears it) in one transaction; returns files changed."""
    with catalog.transaction() as db:
        changed = 0
        for path, label in labels.items():
            changed += db.execute(
                "UPDATE files SET label = ? WHERE path_bytes = ?", (label, encode_path(path))
            ).rowcount
    return changed


# -- cluster names -------------------------------------------------------------------------------
def cluster_name(catalog: Catalog, run_id: int, cluster: int) -> str:
    """The stored name of ``cluster`` in run ``run_id``, or an error naming the run's clusters."""
    rows = catalog.query("SELECT name FROM clusters WHERE run_id = ? AND cluster = ?", (run_id, cluster))
    if not rows:
        known = [
            str(r[0])
            for r in catalog.query("SELECT cluster FROM clusters WHERE run_id = ? ORDER BY cluster", (run_id,))
        ]
        raise InvalidParameterError(
            f"cluster run {run_id} has no cluster {cluster}; its clusters are {', '.join(known) or 'none'}"
        )
    return str(rows[0][0])


def rename_cluster(catalog: Catalog, run_id: int, cluster: int, name: str) -> str:
    """Give ``cluster`` of run ``run_id`` the name ``name``; returns the old name."""
    old = cluster_name(catalog, run_id, cluster)
    with catalog.transaction() as db:
        db.execute("UPDATE clusters SET name = ? WHERE run_id = ? AND cluster = ?", (name, run_id, cluster))
    return old


def latest_run_id(catalog: Catalog) -> int | None:
    """The id of the newest clustering run, None without runs."""
    rows = catalog.query("SELECT MAX(id) FROM cluster_runs")
    return None if rows[0][0] is None else int(rows[0][0])


# -- selections ----------------------------------------------------------------------------------
def catalog_paths_under(catalog: Catalog, path: str) -> list[str]:
    """Catalog paths (files holding an image) equal to ``path`` or below the folder ``path``, sorted."""
    import os

    exact = encode_path(path)
    below = encode_path(path.rstrip(os.sep) + os.sep)
    rows = catalog.query(
        "SELECT path FROM files WHERE image_id IS NOT NULL AND (path_bytes = ? OR substr(path_bytes, 1, ?) = ?) "
        "ORDER BY path",
        (exact, len(below), below),
    )
    return [str(r[0]) for r in rows]


def file_table(catalog: Catalog) -> tuple[list[int], list[str], list[str | None]]:
    """(image id, path, label) of each image's first file, for every image with a file, by image id."""
    rows = catalog.query(
        "SELECT image_id, path, label FROM files WHERE id IN "
        "(SELECT MIN(id) FROM files WHERE image_id IS NOT NULL GROUP BY image_id) ORDER BY image_id"
    )
    return [int(r[0]) for r in rows], [str(r[1]) for r in rows], [r[2] for r in rows]


def image_file(catalog: Catalog, image_id: int) -> tuple[str, str] | None:
    """(content hash, first file path) of an image, None when the library has no such image."""
    rows = catalog.query(
        "SELECT i.hash, f.path FROM images i JOIN files f ON f.image_id = i.id WHERE i.id = ? ORDER BY f.id LIMIT 1",
        (int(image_id),),
    )
    return None if not rows else (str(rows[0][0]), str(rows[0][1]))


def image_files(catalog: Catalog, image_ids: list[int]) -> dict[int, tuple[str, str]]:
    """(content hash, first file path) of each of ``image_ids`` the library holds."""
    out: dict[int, tuple[str, str]] = {}
    for start in range(0, len(image_ids), 500):
        chunk = [int(i) for i in image_ids[start : start + 500]]
        marks = ",".join("?" * len(chunk))
        rows = catalog.query(
            f"SELECT i.id, i.hash, f.path FROM images i JOIN files f ON f.image_id = i.id WHERE i.id IN ({marks}) "
            "ORDER BY f.id",
            chunk,
        )
        for image_id, digest, path in rows:
            out.setdefault(int(image_id), (str(digest), str(path)))
    return out


def labels_in_use(catalog: Catalog) -> list[str]:
    """Every distinct file label, sorted."""
    return [str(r[0]) for r in catalog.query("SELECT DISTINCT label FROM files WHERE label IS NOT NULL ORDER BY label")]


def library_roots(catalog: Catalog) -> list[str]:
    """The scanned folders, as text."""
    return [str(r[0]) for r in catalog.query("SELECT path FROM roots ORDER BY id")]


def image_of_path(catalog: Catalog, path: str) -> int | None:
    """The image held by the library file ``path``, None when the catalog has no such image file."""
    rows = catalog.query(
        "SELECT image_id FROM files WHERE path_bytes = ? AND image_id IS NOT NULL", (encode_path(path),)
    )
    return None if not rows else int(rows[0][0])


def cluster_names(catalog: Catalog, run_id: int) -> dict[int, str]:
    """Each cluster's name in run ``run_id``, by cluster number."""
    rows = catalog.query("SELECT cluster, name FROM clusters WHERE run_id = ? ORDER BY cluster", (run_id,))
    return {int(c): str(n) for c, n in rows}

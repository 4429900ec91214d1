"""Catalog reads behind search: cluster runs and their members, filters by label or path, file names.

Reads the ``cluster_runs`` / ``cluster_members`` / ``clusters`` tables directly (see
:mod:`lookalike.store.catalog`), so search works with any stored run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.errors import InvalidParameterError
from lookalike.index import ClusterSpan
from lookalike.store.catalog import encode_path

if TYPE_CHECKING:
    from lookalike.index.live import LiveIndex
    from lookalike.store.library_store import LibraryStore

NOISE = -1


@dataclass(frozen=True)
class ClusterRun:
    """One stored cluster run: member image ids (sorted) with their cluster, and cluster names."""

    id: int
    reducer_fingerprint: str
    member_ids: np.ndarray
    member_clusters: np.ndarray
    names: dict[int, str]

    def cluster_of(self, image_id: int) -> int | None:
        """The image's cluster (-1 = noise) or None when the run does not hold it."""
        pos = int(np.searchsorted(self.member_ids, image_id))
        if pos < len(self.member_ids) and self.member_ids[pos] == image_id:
            return int(self.member_clusters[pos])
        return None

    def members_of(self, cluster: int) -> np.ndarray:
        """Image ids in ``cluster``; an unknown cluster number raises with the valid ones."""
        known = np.unique(self.member_clusters)
        if cluster not in known:
            shown = ", ".join(str(c) for c in known[:20])
            raise InvalidParameterError(f"cluster run {self.id} has no cluster {cluster}; its clusters are {shown}")
        return self.member_ids[self.member_clusters == cluster]

    def span(self, live: LiveIndex) -> ClusterSpan | None:
        """Confidence over the run's clusters (centres = member means of the live vectors, noise
        left out); None when no cluster has a member left."""
        keep = (self.member_clusters != NOISE) & live.contains(self.member_ids)
        if not keep.any():
            return None
        ids, clusters = self.member_ids[keep], self.member_clusters[keep]
        numbers, labels = np.unique(clusters, return_inverse=True)
        sums = np.zeros((len(numbers), live.dim))
        for start in range(0, len(ids), 16384):
            np.add.at(sums, labels[start : start + 16384], live.reconstruct(ids[start : start + 16384]))
        centroids = (sums / np.bincount(labels)[:, None]).astype(np.float32)
        return ClusterSpan(centroids, ids, labels, live.reconstruct)


def load_run(store: LibraryStore, run_id: int | None = None) -> ClusterRun:
    """Cluster run ``run_id`` (default: the latest stored one)."""
    if run_id is None:
        rows = store.catalog.query("SELECT id, reducer_fingerprint FROM cluster_runs ORDER BY id DESC LIMIT 1")
    else:
        rows = store.catalog.query("SELECT id, reducer_fingerprint FROM cluster_runs WHERE id = ?", (run_id,))
    if not rows:
        known = [r[0] for r in store.catalog.query("SELECT id FROM cluster_runs ORDER BY id")]
        raise InvalidParameterError(
            f"{store.folder}: no cluster run {run_id}; stored runs: {known or 'none (cluster the library first)'}"
        )
    run, fingerprint = int(rows[0][0]), str(rows[0][1])
    members = store.catalog.query(
        "SELECT image_id, cluster FROM cluster_members WHERE run_id = ? ORDER BY image_id", (run,)
    )
    names = store.catalog.query("SELECT cluster, name FROM clusters WHERE run_id = ?", (run,))
    return ClusterRun(
        id=run,
        reducer_fingerprint=fingerprint,
        member_ids=np.array([m[0] for m in members], dtype=np.int64),
        member_clusters=np.array([m[1] for m in members], dtype=np.int64),
        names={int(c): str(n) for c, n in names},
    )


def ids_with_label(store: LibraryStore, label: str) -> np.ndarray:
    """Embedded images with a file labelled ``label``; an unknown label raises with known ones."""
    rows = store.catalog.query(
        "SELECT DISTINCT f.image_id FROM files f JOIN images i ON i.id = f.image_id "
        "WHERE f.label = ? AND i.status = 'embedded'", (label,)
    )
    if not rows:
        known = [r[0] for r in store.catalog.query("SELECT DISTINCT label FROM files WHERE label IS NOT NULL ORDER BY label")]
        shown = ", ".join(known[:30]) + (", ..." if len(known) > 30 else "")
        raise InvalidParameterError(f"no embedded image has the label {label!r}; labels: {shown or 'none'}")
    return np.array(sorted(r[0] for r in rows), dtype=np.int64)


def ids_under(store: LibraryStore, prefix: str | Path) -> np.ndarray:
    """Embedded images with a file at or below the folder ``prefix`` (compared as catalog paths,
    never opened)."""
    folder = os.path.abspath(Path(prefix).expanduser())
    exact = encode_path(folder)
    below = encode_path(folder.rstrip(os.sep) + os.sep)
    rows = store.catalog.query(
        "SELECT DISTINCT f.image_id FROM files f JOIN images i ON i.id = f.image_id "
        "WHERE i.status = 'embedded' AND (f.path_bytes = ? OR substr(f.path_bytes, 1, ?) = ?)",
        (exact, len(below), below),
    )
    if not rows:
        raise InvalidParameterError(f"no embedded image of {store.folder} is under {folder}")
    return np.array(sorted(r[0] for r in rows), dtype=np.int64)


def first_files(store: LibraryStore, image_ids: list[int]) -> dict[int, tuple[str, str | None]]:
    """For each image, (path, label) of its first file (smallest file id)."""
    out: dict[int, tuple[str, str | None]] = {}
    for start in range(0, len(image_ids), 500):
        chunk = image_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = store.catalog.query(
            f"SELECT image_id, path, label FROM files WHERE image_id IN ({marks}) ORDER BY id", chunk
        )
        for image_id, path, label in rows:
            out.setdefault(int(image_id), (str(path), label))
    return out

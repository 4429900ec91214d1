"""Difference hashes for images embedded before lookalike stored them (``images.dhash``), from
their files, without embedding anything again (``lookalike check --repair``).

Each image's hash comes from the first of its files that is still the file the catalog scanned
(same size and modification time): a file changed since may hold another picture. The hash is
made as indexing makes it (the library's decoder, then :func:`lookalike.embed.phash.dhash`), and
hashes are committed in batches, so an interrupted run keeps what it did and the next one goes
on from there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.errors import ImageError
from lookalike.progress import NoProgress, Progress
from lookalike.store.catalog import Catalog, to_signed64

if TYPE_CHECKING:
    from lookalike.store.library_store import LibraryStore

BATCH = 256
"""Hashes committed per transaction."""


def missing_dhashes(catalog: Catalog) -> int:
    """Embedded images without a dHash (every one, in a catalog made before the column existed
    and opened read-only)."""
    embedded = "SELECT COUNT(*) FROM images WHERE status = 'embedded'"
    if not catalog.has_column("images", "dhash"):
        return catalog.count(embedded)
    return catalog.count(embedded + " AND dhash IS NULL")


def fill_dhashes(store: LibraryStore, progress: Progress | None = None) -> tuple[int, int]:
    """Store the missing dHashes; returns (hashes stored, images without an unchanged readable file)."""
    from lookalike.embed.phash import dhash
    from lookalike.embed.query import library_pixels

    progress = progress or NoProgress()
    rows = store.catalog.query(
        "SELECT i.id, f.path_bytes, f.size, f.mtime_ns FROM images i JOIN files f ON f.image_id = i.id "
        "WHERE i.status = 'embedded' AND i.dhash IS NULL ORDER BY i.id, f.id"
    )
    files_of: dict[int, list[tuple[Path, int, int]]] = {}
    for image_id, path_bytes, size, mtime_ns in rows:
        files_of.setdefault(int(image_id), []).append((Path(os.fsdecode(path_bytes)), int(size), int(mtime_ns)))
    progress.phase("difference hashes", len(files_of))
    stored, unreadable, batch = 0, 0, []
    for image_id, files in files_of.items():
        upright = None
        for path, size, mtime_ns in files:
            if not _unchanged(path, size, mtime_ns):
                continue
            try:
                upright = library_pixels(store.manifest, path)[1]
                break
            except (ImageError, OSError):
                continue
        if upright is None:
            unreadable += 1
        else:
            batch.append((to_signed64(dhash(upright)), image_id))
        if len(batch) == BATCH:
            stored += _commit(store.catalog, batch)
            batch = []
        progress.advance()
    return stored + _commit(store.catalog, batch), unreadable


def _unchanged(path: Path, size: int, mtime_ns: int) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    return stat.st_size == size and stat.st_mtime_ns == mtime_ns


def _commit(catalog: Catalog, batch: list[tuple[int, int]]) -> int:
    with catalog.transaction() as db:
        db.executemany("UPDATE images SET dhash = ? WHERE id = ?", batch)
    return len(batch)

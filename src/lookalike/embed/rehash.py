"""Difference hashes for images embedded before lookalike stored them (``images.dhash``), from
their files, without embedding anything again (``lookalike check --repair``).

Each image's hash comes from the first of its files that is still the file the catalog scanned
(same size and modification time): a file changed since may hold another picture. The hash is
made as indexing makes it (the library's decoder, then :func:`lookalike.embed.phash.dhash`), and
hashes are committed in batches, so an interrupted run keeps what it did and the next one goes
on from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.errors import ImageError
from lookalike.progress import NoProgress, Progress
from lookalike.store import images
from lookalike.store.catalog import to_signed64

if TYPE_CHECKING:
    from lookalike.store.library_store import LibraryStore

BATCH = 256
"""Hashes committed per transaction."""


def fill_dhashes(store: LibraryStore, progress: Progress | None = None) -> tuple[int, int]:
    """Store the missing dHashes; returns (hashes stored, images without an unchanged readable file)."""
    from lookalike.embed.phash import dhash
    from lookalike.embed.query import library_pixels

    progress = progress or NoProgress()
    files_of = images.files_without_dhash(store.catalog)
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
            images.store_dhashes(store.catalog, batch)
            stored, batch = stored + len(batch), []
        progress.advance()
    images.store_dhashes(store.catalog, batch)
    return stored + len(batch), unreadable


def _unchanged(path: Path, size: int, mtime_ns: int) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    return stat.st_size == size and stat.st_mtime_ns == mtime_ns

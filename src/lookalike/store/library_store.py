"""The library folder as one object: manifest, catalog, raw vectors and the writer lock.

Every stage (ingest, embed, reduce, cluster, search, classify, evaluate) takes a
:class:`LibraryStore` and arrays; :class:`lookalike.library.Library` is a thin facade that owns
one. The store does no learning and no searching: it opens, locks, reads and commits.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError, LibraryLockedError, LibraryNotFoundError
from lookalike.store import reduced as reduced_files
from lookalike.store.atomic import remove_stale_temporaries
from lookalike.store.catalog import Catalog
from lookalike.store.manifest import MANIFEST_NAME, Manifest, read_manifest, write_manifest
from lookalike.store.vectors import RawVectors

CATALOG_NAME = "catalog.sqlite"
LOCK_NAME = ".lock"


class LibraryStore:
    """One open library folder (see docs/architecture.md for its files).

    A writable store holds the folder's writer lock until :meth:`close`; readers take no lock
    and see the last committed state. ``weights`` overrides the weights file recorded in the
    manifest (a user's local copy).
    """

    def __init__(self, folder: Path, manifest: Manifest, *, readonly: bool, weights: str | None = None) -> None:
        self.folder = folder
        self.manifest = manifest
        self.readonly = readonly
        self.weights = weights
        self.cache: dict[str, Any] = {}  # objects loaded for this open library (its backbone)
        self._lock_fd: int | None = None
        if not readonly:
            self._lock_fd = _lock(folder)
            remove_stale_temporaries(folder)
        self.catalog = Catalog(folder / CATALOG_NAME, readonly=readonly)
        self.vectors = RawVectors(folder / "vectors", manifest.embed.dim)
        if not readonly:
            self.vectors.remove_other_generations(keep=self.raw_state()[0])
            reduced_files.remove_other_reduced(folder, self.catalog.get_meta("reduced_key"))

    @classmethod
    def create(cls, folder: Path, manifest: Manifest, *, weights: str | None = None) -> LibraryStore:
        """Write ``manifest`` into a new (empty or missing) folder and open it for writing."""
        folder.mkdir(parents=True, exist_ok=True)
        write_manifest(folder, manifest)
        return cls(folder, read_manifest(folder), readonly=False, weights=weights)

    @classmethod
    def open(cls, folder: Path, *, readonly: bool = False, weights: str | None = None) -> LibraryStore:
        """Open an existing library folder; a folder without a manifest is refused."""
        if not (folder / MANIFEST_NAME).is_file():
            raise LibraryNotFoundError(
                f"{folder}: no library here (create one with `lookalike index FOLDER --library {folder}`)"
            )
        return cls(folder, read_manifest(folder), readonly=readonly, weights=weights)

    def close(self) -> None:
        self.catalog.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> LibraryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- manifest -----------------------------------------------------------------------------
    def require_writable(self) -> None:
        if self.readonly:
            raise InvalidParameterError(f"{self.folder} was opened read-only")

    def touch_manifest(self) -> None:
        """Record an update time (and any changed sections) in ``lookalike.toml``, atomically."""
        self.manifest = self.manifest.touched()
        write_manifest(self.folder, self.manifest)

    def set_sections(self, **sections: dict[str, Any]) -> None:
        """Replace manifest sections (e.g. ``reduce``) and write the manifest."""
        self.manifest = replace(self.manifest, sections={**self.manifest.sections, **sections})
        self.touch_manifest()

    # -- raw vectors ----------------------------------------------------------------------------
    def raw_state(self) -> tuple[int, int]:
        """(generation, committed rows) of the raw vector file."""
        generation = int(self.catalog.get_meta("raw_generation", "0") or 0)
        return generation, int(self.catalog.get_meta("raw_rows", "0") or 0)

    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(image ids (n,) int64, raw embeddings (n, dim) float32) of every embedded image.

        Memory-mapped when the rows are contiguous; otherwise the live rows are gathered.
        """
        with self.catalog.snapshot():
            ids, rows = self.catalog.embedded_rows()
            generation, committed = self.raw_state()
        matrix = self.vectors.read(generation, committed)
        rows_array = np.asarray(rows, dtype=np.int64)
        if rows_array.size == committed and (committed == 0 or rows_array[-1] == committed - 1):
            return np.asarray(ids, dtype=np.int64), matrix
        return np.asarray(ids, dtype=np.int64), np.asarray(matrix[rows_array])

    def compact(self, min_hole_fraction: float = 0.25) -> bool:
        """Rewrite the raw vectors without the rows of removed images, if holes exceed the fraction.

        The new rows go to the next generation's file; the catalog switches to it in one
        transaction. The old file is deleted when a writer next opens the library, so readers
        that mapped it keep working. Returns whether it compacted.
        """
        self.require_writable()
        with self.catalog.snapshot():
            ids, rows = self.catalog.embedded_rows()
            generation, committed = self.raw_state()
        holes = committed - len(rows)
        if holes == 0 or holes < min_hole_fraction * committed:
            return False
        new_generation = self.vectors.compact(generation, np.asarray(rows, dtype=np.int64))
        self.catalog.move_rows(ids, new_generation)
        return True


def _lock(folder: Path) -> int:
    """Take the library's writer lock (released by the OS if the process dies)."""
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LibraryLockedError(
            f"{folder}: another lookalike process is writing to this library; wait for it to finish"
        ) from None
    return fd

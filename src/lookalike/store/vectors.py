"""Raw embeddings on disk: one append-only float32 row file per generation, memory-mapped.

``vectors/raw-<generation>.f32`` holds rows of ``dim`` float32 values. The catalog is the
source of truth for how many rows are committed (meta ``raw_rows``) and which image owns each
row (``images.row``). Appending is crash-safe without rewriting the file:

1. truncate the file to the committed length (drops rows a killed writer never committed),
2. append the new rows, flush and fsync,
3. commit the catalog transaction that records the new length and the rows' owners.

Committed rows are never modified, so concurrent readers (which map only committed rows) never
see a torn row. Rows of removed images become holes; :meth:`RawVectors.compact` rewrites the live
rows into the next generation's file (a new name, atomically), and the catalog switches
generation in the same transaction that renumbers the rows.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lookalike.errors import LibraryFormatError
from lookalike.store.atomic import atomic_path, fsync_file

ROW_DTYPE = np.float32


class RawVectors:
    """The raw embedding files of one library (``folder`` is ``<library>/vectors``)."""

    def __init__(self, folder: Path, dim: int) -> None:
        self.folder = folder
        self.dim = dim

    def path(self, generation: int) -> Path:
        return self.folder / f"raw-{generation}.f32"

    def row_bytes(self) -> int:
        return self.dim * np.dtype(ROW_DTYPE).itemsize

    def read(self, generation: int, rows: int) -> np.ndarray:
        """The first ``rows`` committed rows, memory-mapped read-only: shape (rows, dim)."""
        if rows == 0:
            return np.zeros((0, self.dim), dtype=ROW_DTYPE)
        path = self.path(generation)
        size = path.stat().st_size if path.exists() else 0
        if size < rows * self.row_bytes():
            raise LibraryFormatError(
                f"{path}: holds {size // self.row_bytes()} rows, the catalog committed {rows}"
            )
        return np.memmap(path, dtype=ROW_DTYPE, mode="r", shape=(rows, self.dim))

    def append(self, generation: int, committed_rows: int, block: np.ndarray) -> int:
        """Write ``block`` (n, dim) after the committed rows, durably; returns the new row count.

        The caller must commit the returned count to the catalog; until then the rows are
        invisible and the next append overwrites them.
        """
        block = np.ascontiguousarray(block, dtype=ROW_DTYPE)
        if block.ndim != 2 or block.shape[1] != self.dim:
            raise ValueError(f"expected rows of dim {self.dim}, got shape {block.shape}")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(generation)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, committed_rows * self.row_bytes())
            os.lseek(fd, 0, os.SEEK_END)
            view = memoryview(block.tobytes())
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        return int(committed_rows + block.shape[0])

    def truncate(self, generation: int, committed_rows: int) -> None:
        """Drop uncommitted trailing rows left by a killed writer."""
        path = self.path(generation)
        if path.exists() and path.stat().st_size > committed_rows * self.row_bytes():
            os.truncate(path, committed_rows * self.row_bytes())

    def compact(self, generation: int, live_rows: np.ndarray, chunk: int = 65536) -> int:
        """Copy ``live_rows`` (in that order) into generation + 1's file; returns the new generation.

        Rows are copied in chunks, so memory stays bounded by ``chunk`` rows.
        """
        source = self.read(generation, int(live_rows.max()) + 1 if live_rows.size else 0)
        target = self.path(generation + 1)
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as out:
                for start in range(0, live_rows.size, chunk):
                    out.write(np.ascontiguousarray(source[live_rows[start : start + chunk]]).tobytes())
            fsync_file(tmp)
        return generation + 1

    def remove_other_generations(self, keep: int) -> None:
        """Delete files of generations other than ``keep`` (after the catalog switched)."""
        for path in self.folder.glob("raw-*.f32"):
            if path != self.path(keep):
                path.unlink(missing_ok=True)

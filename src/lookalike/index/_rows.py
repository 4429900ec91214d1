"""Files of the ``ondisk`` index: an append-only float16 row store and the id -> row map.

Layout beside an index file ``NAME`` (e.g. ``index/ondisk-<fingerprint>.faiss``):

- ``NAME``: the FAISS header (coarse quantizer, PQ codebooks, list offsets), replaced atomically;
- ``NAME.<family>.f16``: float16 rows (r, d), append-only; a row is written once and never
  changed, so readers of an older header keep reading the rows they know;
- ``NAME.<family>.<gen>.ivfdata``: the inverted lists of one saved generation (memory-mapped);
- ``NAME.<family>.<gen>.map.npy``: (2, n) int64, the live ids sorted and the row of each;
- ``NAME.<family>.<gen>.json``: the settings FAISS does not store (re-rank depth, ...).

``family`` is new for every :meth:`fit` (a rebuild), ``gen`` for every save: a save writes the
new generation's files, then renames the header over the old one; only then are the files of
other generations deleted (readers that mapped them keep their data until they unmap it).
"""

from __future__ import annotations

import mmap
import os
import re
import shutil
import uuid
from pathlib import Path

import numpy as np

from lookalike.errors import VectorIndexError

LISTS_SUFFIX = ".ivfdata"
MAP_SUFFIX = ".map.npy"
ROWS_SUFFIX = ".f16"
_LISTS_NAME = re.compile(r"^(?P<name>.+)\.(?P<family>[0-9a-f]{8})\.(?P<gen>[0-9a-f]{8})\.ivfdata$")


def new_tag() -> str:
    """8 random hex digits naming a family or a generation."""
    return uuid.uuid4().hex[:8]


def rows_path(target: Path, family: str) -> Path:
    return target.with_name(f"{target.name}.{family}{ROWS_SUFFIX}")


def lists_path(target: Path, family: str, gen: str) -> Path:
    return target.with_name(f"{target.name}.{family}.{gen}{LISTS_SUFFIX}")


def map_path(target: Path, family: str, gen: str) -> Path:
    return target.with_name(f"{target.name}.{family}.{gen}{MAP_SUFFIX}")


def parse_lists_name(header: Path, lists_file: str) -> tuple[str, str]:
    """(family, gen) from the lists file name a header refers to; VectorIndexError if foreign."""
    match = _LISTS_NAME.match(Path(lists_file).name)
    if match is None or match["name"] != header.name:
        raise VectorIndexError(
            f"{header}: its inverted lists file {lists_file!r} is not named after it; "
            "rebuild the index (lookalike search --rebuild)"
        )
    return match["family"], match["gen"]


def remove_other_generations(target: Path, family: str, gen: str) -> None:
    """Delete side files of ``target`` that belong to another family or generation."""
    keep = {rows_path(target, family).name, lists_path(target, family, gen).name, map_path(target, family, gen).name,
            f"{target.name}.{family}.{gen}.json"}
    for path in target.parent.glob(f"{target.name}.*"):
        if path.name not in keep and path.suffix in (LISTS_SUFFIX, ".npy", ".json", ROWS_SUFFIX):
            path.unlink(missing_ok=True)


class RowStore:
    """Append-only float16 rows (r, d) in one file, read through a memory map.

    Appends go to the end of the file (after any partial row a killed writer left), so rows
    that a saved map refers to never move. Reading maps the file with ``MADV_RANDOM``: a
    re-rank touches a few scattered rows, and read-ahead would fetch 32x more than it uses.
    Each row read maps a whole 4 KB page, so a long-running searcher's RSS counts more and more
    of the file; those are clean page-cache pages that the kernel reclaims under memory pressure.
    Releasing them (``MADV_DONTNEED`` every 65k rows) was measured at 10M and made the warm p50
    3 ms slower (7.1 to 10.1 ms), so they stay mapped.
    """

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.row_bytes = 2 * dim
        self._view: np.ndarray | None = None
        self._mapped_rows = 0
        if not path.exists():
            path.touch()

    @property
    def n_rows(self) -> int:
        """Whole rows in the file (a partial row at the end does not count)."""
        return os.path.getsize(self.path) // self.row_bytes

    def append(self, X: np.ndarray) -> np.ndarray:
        """Write unit rows X (n, d) as float16; returns their row numbers (n,) int64."""
        size = os.path.getsize(self.path)
        start = -(-size // self.row_bytes)
        with open(self.path, "r+b") as fh:
            fh.seek(start * self.row_bytes)
            fh.write(np.ascontiguousarray(X, dtype=np.float16).tobytes())
        return np.arange(start, start + len(X), dtype=np.int64)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Rows (n,) as float32 (n, d), in the order given."""
        need = int(rows.max()) + 1 if len(rows) else 0
        if need > self._mapped_rows:
            self._remap()
            if need > self._mapped_rows:
                raise VectorIndexError(f"{self.path}: row {need - 1} is past its end; the file was truncated")
        assert self._view is not None
        return np.asarray(self._view[rows], dtype=np.float32)

    def copy_to(self, target: Path) -> RowStore:
        """This store's file copied to ``target`` (written beside it, then renamed)."""
        tmp = target.with_name(target.name + ".partial")
        shutil.copyfile(self.path, tmp)
        os.replace(tmp, target)
        return RowStore(target, self.dim)

    def _remap(self) -> None:
        rows = self.n_rows
        if rows == 0:
            return
        with open(self.path, "rb") as fh:
            mapped = mmap.mmap(fh.fileno(), rows * self.row_bytes, access=mmap.ACCESS_READ)
        if hasattr(mapped, "madvise"):
            mapped.madvise(mmap.MADV_RANDOM)
        self._view = np.frombuffer(mapped, dtype=np.float16).reshape(rows, self.dim)
        self._mapped_rows = rows


class IdMap:
    """Live ids sorted (n,) and the row of each (n,), both int64."""

    def __init__(self, ids: np.ndarray, rows: np.ndarray) -> None:
        self.ids = ids
        self.rows = rows

    @classmethod
    def empty(cls) -> IdMap:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64))

    @classmethod
    def load(cls, path: Path, writable: bool) -> IdMap:
        """Read a map file; memory-mapped unless ``writable`` (then copied into RAM)."""
        try:
            both = np.load(path, mmap_mode=None if writable else "r")
        except (OSError, ValueError) as exc:
            raise VectorIndexError(f"{path}: unreadable id map ({exc}); rebuild the index") from exc
        if both.ndim != 2 or both.shape[0] != 2 or both.dtype != np.int64:
            raise VectorIndexError(f"{path}: expected a (2, n) int64 id map, got {both.shape} {both.dtype}")
        return cls(both[0], both[1])

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".partial.npy")
        np.save(tmp, np.stack([self.ids, self.rows]))
        os.replace(tmp, path)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Rows of ids that are all present (checked by the caller): (n,) int64."""
        return np.asarray(self.rows[np.searchsorted(self.ids, ids)], dtype=np.int64)

    def added(self, ids: np.ndarray, rows: np.ndarray) -> IdMap:
        all_ids = np.concatenate([self.ids, ids])
        order = np.argsort(all_ids, kind="stable")
        return IdMap(all_ids[order], np.concatenate([self.rows, rows])[order])

    def removed(self, ids: np.ndarray) -> IdMap:
        keep = ~np.isin(self.ids, ids, assume_unique=True)
        return IdMap(np.asarray(self.ids[keep]), np.asarray(self.rows[keep]))

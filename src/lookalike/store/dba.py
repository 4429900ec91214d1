"""Files of the DBA vector set: ``vectors/dba-<reduced key>-<settings>/{ids,vectors,neighbours}.npy``.

Derived from the reduced vectors (see :mod:`lookalike.store.reduced`): the folder name carries the
reduced key (reducer fingerprint + embedding state) and the DBA settings, so a folder is either
current or ignored. Each file is written atomically; the ``ids`` file is written last, and a
folder without it is incomplete and ignored.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from lookalike.store.arrays import load_npy, save_npy

DBA_DIR = Path("vectors")


def dba_folder(folder: Path, reduced_key: str, settings: str) -> Path:
    return folder / DBA_DIR / f"dba-{reduced_key}-{settings}"


def read_dba(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(ids (n,), DBA vectors (n, d), neighbour ids (n, m)) stored in ``path``, or None."""
    if not (path / "ids.npy").is_file():
        return None
    return np.asarray(load_npy(path / "ids.npy")), load_npy(path / "vectors.npy"), np.asarray(load_npy(path / "neighbours.npy"))


def latest_dba(folder: Path, reducer: str, settings: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The most recently written complete DBA set of reducer fingerprint ``reducer`` with
    ``settings`` (any embedding state), or None. Reduced keys start with the fingerprint."""
    found = [p for p in (folder / DBA_DIR).glob(f"dba-{reducer}-*-{settings}") if (p / "ids.npy").is_file()]
    if not found:
        return None
    return read_dba(max(found, key=lambda p: (p / "ids.npy").stat().st_mtime_ns))


def write_dba(path: Path, ids: np.ndarray, vectors: np.ndarray, neighbours: np.ndarray) -> None:
    """Store a DBA set; ``ids`` last, so a kill leaves an incomplete (ignored) folder."""
    save_npy(path / "vectors.npy", vectors.astype(np.float32, copy=False))
    save_npy(path / "neighbours.npy", neighbours.astype(np.int64, copy=False))
    save_npy(path / "ids.npy", ids.astype(np.int64, copy=False))


def remove_other_dba(folder: Path, keep: Path) -> None:
    """Delete DBA folders other than ``keep``."""
    for path in (folder / DBA_DIR).glob("dba-*"):
        if path.is_dir() and path != keep:
            shutil.rmtree(path, ignore_errors=True)

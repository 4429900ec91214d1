"""Numpy artefacts in the library folder, written atomically and read memory-mapped."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lookalike.errors import LibraryFormatError
from lookalike.store.atomic import atomic_path


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write a dict of arrays as one ``.npz`` file, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **dict(arrays))  # type: ignore[arg-type]


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Read a ``.npz`` file fully; a damaged file is a LibraryFormatError naming it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise LibraryFormatError(f"{path}: unreadable ({exc})") from exc


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write one array as ``.npy``, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array))


def load_npy(path: Path, *, mmap: bool = True) -> np.ndarray:
    """Read a ``.npy`` file, memory-mapped read-only by default."""
    try:
        return np.asarray(np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False))
    except (OSError, ValueError, EOFError) as exc:
        raise LibraryFormatError(f"{path}: unreadable ({exc})") from exc

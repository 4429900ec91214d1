"""Artefacts derived from the raw embeddings: the fitted reducer and the reduced vectors.

``models/reducer.npz`` holds the L2 + PCA model (fitted once; refitting is explicit).
``vectors/reduced-<key>/{vectors,ids}.npy`` hold every embedded image's reduced vector, where
the key names the reducer fingerprint and the embedding state they were computed from; the
catalog's meta ``reduced_key`` says which folder is current. When images are added or removed the reduced vectors
are recomputed with the *stored* reducer (a matrix product: about a second at 100k images);
only ``lookalike.reduce.stored.refresh_reduced(refit=True)`` changes the reducer, which makes everything built on the old one stale.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.store.arrays import load_npy, load_npz, save_npy, save_npz

REDUCER_FILE = Path("models") / "reducer.npz"
REDUCED_DIR = Path("vectors")


@dataclass(frozen=True)
class ReducedVectors:
    """Reduced vectors of the embedded images: ``ids`` (n,) int64, ``vectors`` (n, d) float32."""

    ids: np.ndarray
    vectors: np.ndarray
    reducer_fingerprint: str


def embedding_state(ids: np.ndarray, generation: int, rows: int) -> str:
    """A short digest of which images are embedded (changes whenever one is added or removed)."""
    digest = hashlib.sha256(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
    digest.update(f"{generation}:{rows}".encode())
    return digest.hexdigest()[:16]


def load_reducer_arrays(folder: Path) -> dict[str, np.ndarray] | None:
    """The stored reducer's arrays (``Reducer.to_arrays``), or None when there is none yet."""
    path = folder / REDUCER_FILE
    return load_npz(path) if path.exists() else None


def save_reducer_arrays(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """Store a fitted reducer's arrays atomically."""
    save_npz(folder / REDUCER_FILE, arrays)


def reduced_key(reducer_fingerprint: str, state: str) -> str:
    """Names the reduced vectors of one reducer applied to one embedding state."""
    return f"{reducer_fingerprint}-{state}"


def write_reduced(folder: Path, key: str, ids: np.ndarray, vectors: np.ndarray) -> None:
    """Store reduced vectors and ids under ``vectors/reduced-<key>/`` (each file atomically).

    The caller commits ``key`` to the catalog afterwards; readers only follow committed keys,
    so they never mix the ids of one state with the vectors of another.
    """
    target = folder / REDUCED_DIR / f"reduced-{key}"
    save_npy(target / "vectors.npy", vectors.astype(np.float32, copy=False))
    save_npy(target / "ids.npy", ids.astype(np.int64, copy=False))


def read_reduced(folder: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) stored under ``key``, memory-mapped."""
    target = folder / REDUCED_DIR / f"reduced-{key}"
    return np.asarray(load_npy(target / "ids.npy")), load_npy(target / "vectors.npy")


def remove_other_reduced(folder: Path, keep: str | None) -> None:
    """Delete reduced-vector folders other than ``keep`` (writers call this when opening)."""
    import shutil

    for path in (folder / REDUCED_DIR).glob("reduced-*"):
        if path.is_dir() and path.name != f"reduced-{keep}":
            shutil.rmtree(path, ignore_errors=True)

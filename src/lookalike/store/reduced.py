"""Artefacts derived from the raw embeddings: the fitted reducer and the reduced vectors.

``models/reducer.npz`` holds the L2 + PCA model (fitted once; refitting is explicit).
``vectors/reduced-<key>/{vectors,ids}.npy`` hold every embedded image's reduced vector, where
the key names the reducer fingerprint and the embedding state they were computed from; the
catalog's meta ``reduced_key`` says which folder is current. When images are added or removed the reduced vectors
are recomputed with the *stored* reducer (a matrix product: about a second at 100k images);
only :func:`fit_reducer` changes the reducer, which makes everything built on the old one stale.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.config import ReduceConfig
from lookalike.errors import InvalidParameterError
from lookalike.store.arrays import load_npy, load_npz, save_npy, save_npz

if TYPE_CHECKING:
    from lookalike.reduce import Reducer

REDUCER_FILE = Path("models") / "reducer.npz"
REDUCED_DIR = Path("vectors")
TRANSFORM_CHUNK = 16384


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


def load_reducer(folder: Path) -> Reducer | None:
    """The stored reducer, or None when the library has none yet."""
    from lookalike.reduce import Reducer

    path = folder / REDUCER_FILE
    return Reducer.from_arrays(load_npz(path)) if path.exists() else None


def fit_reducer(folder: Path, embeddings: np.ndarray, config: ReduceConfig) -> Reducer:
    """Fit L2 + PCA on ``embeddings`` (n, D) and store it atomically."""
    from lookalike.reduce import Reducer

    if embeddings.shape[0] < 2:
        raise InvalidParameterError(
            f"need at least 2 embedded images to fit PCA, the library has {embeddings.shape[0]}"
        )
    reducer = Reducer(config.n_components, whiten=config.whiten, renormalize=config.renormalize)
    reducer.fit(embeddings)
    save_npz(folder / REDUCER_FILE, reducer.to_arrays())
    return reducer


def transform_all(reducer: Reducer, embeddings: np.ndarray) -> np.ndarray:
    """Reduce (n, D) embeddings chunk by chunk (bounded memory): (n, d) float32."""
    out = np.empty((embeddings.shape[0], reducer.n_components_), dtype=np.float32)
    for start in range(0, embeddings.shape[0], TRANSFORM_CHUNK):
        out[start : start + TRANSFORM_CHUNK] = reducer.transform(embeddings[start : start + TRANSFORM_CHUNK])
    return out


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

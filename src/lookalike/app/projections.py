"""2D/3D coordinates of the reduced vectors for plotting, cached in the library's projections/.

The cache file is named by the method, the dimension and a digest of the reducer fingerprint and
the image ids, so a changed library gets a new file; it is written to a temporary file and renamed
into place, and is the only thing the app writes into a library.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

PROJECTIONS_DIR = "projections"


def pca_project(vectors: np.ndarray, dims: int) -> np.ndarray:
    """Coordinates (n, dims) float32 of ``vectors`` (n, d) on their top principal axes.

    Signs are fixed so each axis's largest-magnitude loading is positive (stable across runs);
    axes beyond the data's rank are zero.
    """
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0) if x.shape[0] else x
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:dims]
    signs = np.sign(axes[np.arange(axes.shape[0]), np.argmax(np.abs(axes), axis=1)])
    coords = x @ (axes * np.where(signs == 0, 1.0, signs)[:, None]).T
    out = np.zeros((x.shape[0], dims), dtype=np.float32)
    out[:, : coords.shape[1]] = coords
    return out


def cache_path(folder: Path, method: str, dims: int, fingerprint: str, ids: np.ndarray) -> Path:
    digest = hashlib.blake2b(digest_size=12)
    digest.update(fingerprint.encode())
    digest.update(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
    return folder / PROJECTIONS_DIR / f"{method}-{dims}d-{digest.hexdigest()}.npz"


def projection(folder: Path, ids: np.ndarray, vectors: np.ndarray, fingerprint: str, dims: int) -> np.ndarray:
    """PCA coordinates (n, dims) of ``vectors`` (n, d) with ``ids`` (n,): read from the cache, or
    computed and cached (a library folder that cannot be written is just not cached)."""
    from lookalike.store.atomic import atomic_path

    path = cache_path(folder, "pca", dims, fingerprint, ids)
    if path.is_file():
        with np.load(path) as stored:
            if np.array_equal(stored["ids"], ids):
                return np.asarray(stored["coords"])
    coords = pca_project(vectors, dims)
    buffer = io.BytesIO()
    np.savez(buffer, ids=np.asarray(ids, dtype=np.int64), coords=coords)
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(buffer.getvalue())
    except OSError:
        pass  # read-only media: the projection is recomputed next time
    return coords

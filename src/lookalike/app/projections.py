"""2D/3D coordinates of the reduced vectors for plotting (PCA, t-SNE, UMAP), cached in the library's projections/.

The cache file is named by the method, the dimension and a digest of the reducer fingerprint and
the image ids, so a changed library gets a new file; it is written to a temporary file and renamed
into place, and, with the thumbnails, is all the app writes into a library unless the user runs an action.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

PROJECTIONS_DIR = "projections"
METHODS = ("PCA", "t-SNE", "UMAP")
NONLINEAR_MAX_POINTS = {"t-SNE": 5_000, "UMAP": 20_000}
"""Points a t-SNE / UMAP map shows at most (a seeded sample beyond): both cost far more than PCA."""


def available_methods() -> list[str]:
    """The projections installed here: PCA always, t-SNE with scikit-learn, UMAP with umap-learn."""
    import importlib.util

    found = {"PCA": True, "t-SNE": importlib.util.find_spec("sklearn") is not None,
             "UMAP": importlib.util.find_spec("umap") is not None}  # fmt: skip
    return [m for m in METHODS if found[m]]


def sample_rows(n: int, method: str, seed: int = 0) -> np.ndarray:
    """Sorted rows (m,) of the points a ``method`` map shows: all for PCA, a seeded sample past the cap."""
    cap = NONLINEAR_MAX_POINTS.get(method)
    if cap is None or n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def nonlinear_project(vectors: np.ndarray, dims: int, method: str, seed: int = 0) -> np.ndarray:
    """t-SNE (scikit-learn, PCA start) or UMAP coordinates (n, dims) float32 of ``vectors`` (n, d)."""
    x = np.asarray(vectors, dtype=np.float32)
    if method == "t-SNE":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (x.shape[0] - 1) / 3)))
        model = TSNE(dims, perplexity=perplexity, init="pca", random_state=seed)
        return np.asarray(model.fit_transform(x), dtype=np.float32)
    import umap  # type: ignore[import-not-found]

    neighbours = int(min(15, max(2, x.shape[0] - 1)))
    return np.asarray(umap.UMAP(n_components=dims, n_neighbors=neighbours, random_state=seed).fit_transform(x),
                      dtype=np.float32)  # fmt: skip


def map_coordinates(
    folder: Path, ids: np.ndarray, vectors: np.ndarray, fingerprint: str, dims: int, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """(rows (m,) of the points shown, coordinates (m, dims)) of a ``method`` map, cached like PCA."""
    if method == "PCA":
        return np.arange(ids.shape[0]), projection(folder, ids, vectors, fingerprint, dims)
    rows = sample_rows(ids.shape[0], method)
    shown = np.asarray(ids)[rows]
    path = cache_path(folder, method.lower().replace("-", ""), dims, fingerprint, shown)
    coords = _read_cache(path, shown)
    if coords is None:
        coords = nonlinear_project(np.asarray(vectors)[rows], dims, method)
        _write_cache(path, shown, coords)
    return rows, coords


def _read_cache(path: Path, ids: np.ndarray) -> np.ndarray | None:
    if path.is_file():
        with np.load(path) as stored:
            if np.array_equal(stored["ids"], ids):
                return np.asarray(stored["coords"])
    return None


def _write_cache(path: Path, ids: np.ndarray, coords: np.ndarray) -> None:
    from lookalike.store.atomic import atomic_path

    buffer = io.BytesIO()
    np.savez(buffer, ids=np.asarray(ids, dtype=np.int64), coords=coords)
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(buffer.getvalue())
    except OSError:
        pass  # read-only media: the projection is recomputed next time


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
    path = cache_path(folder, "pca", dims, fingerprint, ids)
    coords = _read_cache(path, ids)
    if coords is None:
        coords = pca_project(vectors, dims)
        _write_cache(path, ids, coords)
    return coords

"""2D maps of the reduced vectors: PCA (fitted on every point) and t-SNE, on one seeded sample."""

from __future__ import annotations

from typing import Any

import numpy as np

TSNE_MIN_POINTS = 10
"""Fewer map points than this get no t-SNE (its perplexity must stay well below the point count)."""


def map_rows(n_points: int, size: int, seed: int) -> np.ndarray:
    """Sorted rows (m,) drawn on the maps: all points, or a seeded sample of ``size``."""
    if n_points <= size:
        return np.arange(n_points)
    return np.sort(np.random.default_rng(seed).choice(n_points, size, replace=False))


def pca_map(x: np.ndarray, rows: np.ndarray, seed: int) -> tuple[np.ndarray, list[float]]:
    """PCA(2) fitted on all of ``x`` (n, d), applied to ``x[rows]``: coords (m, 2), explained variance ratios."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(x)
    return pca.transform(x[rows]).astype(np.float32), [float(v) for v in pca.explained_variance_ratio_]


def tsne_map(x: np.ndarray, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """t-SNE (2D, ``init="pca"``) of ``x`` (m, d): coords (m, 2) and the settings used.

    Perplexity is scikit-learn's default 30, lowered for small samples (it must stay below m).
    """
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (x.shape[0] - 1) / 3)))
    model = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed)
    coords = model.fit_transform(x).astype(np.float32)
    return coords, {"perplexity": perplexity, "init": "pca", "kl_divergence": float(model.kl_divergence_),
                    "n_iter": int(model.n_iter_)}

"""Seeded Gaussian mixtures with known labels, shared by the clustering tests."""

from __future__ import annotations

import numpy as np
import pytest


def gaussian_mixture(
    n: int = 600, d: int = 16, k: int = 4, spread: float = 0.15, seed: int = 0, unit: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) float32 points around ``k`` random unit-scale centres, and their (n,) true labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.permutation(np.arange(n) % k)
    x = centres[labels] + spread * rng.standard_normal((n, d)) / np.sqrt(d)
    if unit:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """600 points in 16-d, 4 well-separated groups."""
    return gaussian_mixture()


@pytest.fixture
def mixture():  # type: ignore[no-untyped-def]
    """The :func:`gaussian_mixture` factory, for tests that need other sizes."""
    return gaussian_mixture

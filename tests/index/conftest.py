"""Seeded clustered unit vectors with gappy ids, and a brute-force reference search."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from lookalike._faiss import prefer_fast_blas

prefer_fast_blas()  # before the first faiss import, as the CLI and benchmarks do


@dataclass
class Data:
    X: np.ndarray  # (n, d) float32, unit rows
    ids: np.ndarray  # (n,) int64, unique, not 0..n-1
    labels: np.ndarray  # (n,) generating cluster
    Q: np.ndarray  # (m, d) unit queries near the data


def make_data(
    n: int = 3000, d: int = 32, clusters: int = 20, m: int = 50, seed: int = 0, spread: float = 0.7
) -> Data:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, d))
    labels = rng.integers(0, clusters, n)
    X = centers[labels] + spread * rng.standard_normal((n, d))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    ids = np.sort(rng.choice(10 * n, size=n, replace=False)).astype(np.int64)[rng.permutation(n)]
    Q = X[rng.choice(n, m, replace=False)] + 0.3 * rng.standard_normal((m, d)).astype(np.float32)
    Q = (Q / np.linalg.norm(Q, axis=1, keepdims=True)).astype(np.float32)
    return Data(X, ids, labels, Q)


def brute_force(X: np.ndarray, ids: np.ndarray, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference top-k by cosine over all rows: (ids (m, k), similarities (m, k))."""
    sims = Q.astype(np.float64) @ X.astype(np.float64).T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return ids[order], np.take_along_axis(sims, order, axis=1)


@pytest.fixture(scope="module")
def data() -> Data:
    return make_data()


@pytest.fixture(scope="session")
def make() -> object:
    """The data factory ``make_data(n, d, clusters, m, seed, spread)``."""
    return make_data


@pytest.fixture(scope="session")
def reference() -> object:
    """The brute-force search ``brute_force(X, ids, Q, k)``."""
    return brute_force

"""K-Means on FAISS: greedy k-means++ seeding, BLAS-speed Lloyd iterations, best of ``n_init``.

FAISS's own initialisation is uniform random sampling (or plain k-means++), which lands in worse
local minima than scikit-learn's *greedy* k-means++ on data with many compact groups (7–10 %
higher inertia at K = 300 on a 500-group mixture). So seeding is done here: greedy k-means++ (``2 + ln k``
candidates per step, the one lowering the potential most is kept, as in scikit-learn) on a
seeded sample of at most ``max(10_000, 64 k)`` points, then FAISS runs the Lloyd iterations
on all points. ``inertia_`` is recomputed on all points with the final centres and has
scikit-learn's definition: the sum of squared Euclidean distances to the assigned centre.

Measured (``benchmarks/bench_cluster.py``, 100k × 256, K = 300, 2 cores): defaults 15 s,
inertia +0.6 % over scikit-learn's ``KMeans(300)`` (32 s); ``n_init=1`` 5 s, +1.6 %.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from lookalike._faiss import import_faiss
from lookalike.cluster._checks import (
    as_matrix,
    check_choice,
    check_dim,
    check_int,
    check_n_clusters,
    refuse_identical,
)
from lookalike.errors import InvalidParameterError

INITS = ("k-means++", "random")
_INIT_SAMPLE_MIN = 10_000
_INIT_SAMPLE_PER_CLUSTER = 64


class KMeans:
    """K-Means clustering (scikit-learn's estimator contract, FAISS inside).

    Parameters
    ----------
    n_clusters : K, 2 <= K <= n_points.
    n_init : independent restarts; the one with the lowest inertia is kept.
    max_iter : Lloyd iterations per restart (FAISS stops earlier once assignments settle).
    seed : seeds initialisation and FAISS; equal seed and data give equal labels.
    spherical : normalise centres to unit length after each iteration (cosine k-means).
    init : ``"k-means++"`` (greedy, on a sample) or ``"random"`` (FAISS's sampling; cheaper for
        very large K such as micro-clustering).
    max_points_per_centroid : train on a seeded sample of ``K *`` this many points (None: all).

    Attributes (after ``fit``)
    --------------------------
    cluster_centers_ : (K, d) float32.  labels_ : (n,) int64.  inertia_ : float.
    n_iter_ : iterations of the kept run.  n_features_in_ : d.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        n_init: int = 3,
        max_iter: int = 25,
        seed: int = 0,
        spherical: bool = False,
        init: str = "k-means++",
        max_points_per_centroid: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.seed = seed
        self.spherical = spherical
        self.init = init
        self.max_points_per_centroid = max_points_per_centroid

    def fit(self, X: Any, y: Any = None) -> KMeans:
        """Cluster ``X`` of shape (n, d); sets ``labels_``, ``cluster_centers_``, ``inertia_``."""
        x = as_matrix(X)
        k = check_n_clusters(self.n_clusters, x.shape[0])
        n_init = check_int(self.n_init, "n_init", low=1)
        check_int(self.max_iter, "max_iter", low=1)
        check_int(self.seed, "seed", low=0)
        check_choice(self.init, "init", INITS)
        if self.max_points_per_centroid is not None:
            check_int(self.max_points_per_centroid, "max_points_per_centroid", low=1)
        refuse_identical(x, what="k-means")
        rng = np.random.default_rng(self.seed)
        runs = (self._run(x, k, rng) for _ in range(n_init))
        self.inertia_, self.cluster_centers_, self.labels_, self.n_iter_ = min(runs, key=lambda run: run[0])
        self.n_features_in_ = x.shape[1]
        _warn_if_empty(self.labels_, k)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Index of the nearest centre for each row of ``X`` (n, d) → (n,) int64."""
        if not hasattr(self, "cluster_centers_"):
            raise InvalidParameterError("this KMeans is not fitted yet; call fit(X) first")
        x = as_matrix(X)
        check_dim(x, self.n_features_in_, owner="this KMeans")
        return assign(x, self.cluster_centers_)[0]

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X).labels_``."""
        return self.fit(X).labels_

    def _run(
        self, x: np.ndarray, k: int, rng: np.random.Generator
    ) -> tuple[float, np.ndarray, np.ndarray, int]:
        """One seeded FAISS k-means run on checked input: inertia, centres, labels, iterations."""
        faiss = import_faiss()
        n, d = x.shape
        per_centroid = self.max_points_per_centroid or -(-n // k) + 1
        km = faiss.Kmeans(
            d,
            k,
            niter=int(self.max_iter),
            nredo=1,
            seed=int(rng.integers(2**31 - 1)),
            spherical=bool(self.spherical),
            max_points_per_centroid=int(per_centroid),
            min_points_per_centroid=1,
            verbose=False,
        )
        start = None
        if self.init == "k-means++":
            sample_size = min(n, max(_INIT_SAMPLE_MIN, _INIT_SAMPLE_PER_CLUSTER * k))
            sample = x if sample_size == n else x[np.sort(rng.choice(n, sample_size, replace=False))]
            start = kmeans_plusplus(sample, k, rng)
        km.train(x, init_centroids=start)
        centers = np.ascontiguousarray(km.centroids, dtype=np.float32)
        labels, sq_dist = assign(x, centers)
        return float(sq_dist.sum(dtype=np.float64)), centers, labels, len(km.obj)


def kmeans_plusplus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeds: (k, d) rows of ``x`` (checked float32, n >= k).

    Each step samples ``2 + ln k`` candidates with probability proportional to the squared
    distance to the nearest chosen seed and keeps the one that lowers the total most. Its
    skinny (n, d) @ (d, 2 + ln k) products are memory-bound: BLAS runs single-threaded here,
    which is faster than two threads and far faster when other processes share the cores.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        return _greedy_seeds(x, k, rng)


def _greedy_seeds(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    n = x.shape[0]
    n_trials = 2 + int(np.log(k))
    sq_norms = np.einsum("ij,ij->i", x, x)
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = rng.integers(n)
    closest = np.maximum(sq_norms + sq_norms[chosen[0]] - 2.0 * (x @ x[chosen[0]]), 0.0)
    for step in range(1, k):
        cumulative = np.cumsum(closest, dtype=np.float64)
        if cumulative[-1] <= 0.0:  # fewer distinct points than k: pick any unused rows
            chosen[step] = rng.integers(n)
            continue
        candidates = np.minimum(np.searchsorted(cumulative, rng.random(n_trials) * cumulative[-1]), n - 1)
        dist = sq_norms[:, None] + sq_norms[candidates][None, :] - 2.0 * (x @ x[candidates].T)
        np.clip(dist, 0.0, closest[:, None], out=dist)
        best = int(np.argmin(dist.sum(axis=0, dtype=np.float64)))
        chosen[step] = candidates[best]
        closest = np.ascontiguousarray(dist[:, best])
    return x[chosen].copy()


def assign(x: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre for each row: labels (n,) int64 and squared distances (n,) float32.

    ``x`` (n, d) and ``centers`` (k, d) are checked float32 arrays of equal width.
    """
    faiss = import_faiss()
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(np.ascontiguousarray(centers, dtype=np.float32))
    sq_dist, labels = index.search(x, 1)
    return labels[:, 0].astype(np.int64), np.maximum(sq_dist[:, 0], 0.0)


def _warn_if_empty(labels: np.ndarray, k: int) -> None:
    empty = k - int(np.count_nonzero(np.bincount(labels, minlength=k)))
    if empty:
        warnings.warn(
            f"k-means left {empty} of {k} clusters empty (fewer distinct points than clusters?)",
            UserWarning,
            stacklevel=3,
        )

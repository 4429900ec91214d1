"""K-Means: greedy k-means++ seeding on a sample, FAISS Lloyd on a training sample, a few
Lloyd iterations on all points, best of ``n_init``.

Route (``max_points_per_centroid`` = P, default 64; ``None`` gives classic full-data Lloyd):

1. draw one seeded training sample of ``P·K`` points, shared by every restart — only when a
   full assignment pass costs over ``SAMPLE_ABOVE`` (10⁹) multiply-adds and ``P·K < n``;
   smaller problems train on all points, and step 3 may run up to 100 iterations there;
2. each restart seeds with greedy k-means++ (``2 + 4 ln k`` candidates per step, the one
   lowering the potential most is kept; scikit-learn tries ``2 + ln k``) on at most
   ``max(10_000, 32·K)`` of those points — FAISS's own seeding (uniform sampling or plain
   k-means++) lands 5–9 % higher on data with many compact groups — then FAISS runs
   ``max_iter`` Lloyd iterations on the sample;
3. the restart with the lowest sample inertia is refined by up to ``refine_iter`` Lloyd
   iterations on *all* points (float32 GEMM assignment through FAISS, centroid update as one
   sparse product), stopping early once inertia improves by less than ``tol`` (relative).

``labels_`` and ``inertia_`` come from the last full assignment, with scikit-learn's definition
of inertia (sum of squared Euclidean distances to the assigned centre). ``n_passes_`` counts the
work in full-data assignment passes (sample iterations weighted by the sample's share).

Measured (``benchmarks/bench_cluster.py``, 100k × 256, K = 300, 2 cores): the defaults
(``n_init=1``, like scikit-learn's ``n_init="auto"`` for k-means++; 10 sample iterations, one
full-data refinement) take 0.75–1.1 s against 18–23 s for scikit-learn's ``KMeans(300)`` in the
same run (this VM's timings drift by ±30 % between runs), at an inertia about 0.3 % *below*
scikit-learn's. Splitting the seeding's products over two threads took it from 0.56 to 0.33 s;
10 sample iterations and one refinement instead of 20 and 2 cost +0.13 % inertia (mean of 4
seeds) and save about 0.3 s. On a 2-core Xeon with AVX-512, OpenBLAS's SkylakeX kernels
(:func:`lookalike._faiss.fast_coretype`) took a fit from 0.95 to 0.65 s on overlapping groups
and 1.0 to 0.78 s on the mixture; the seeding is then half of it (0.33 s: 300 steps of a
24 × 256 by 256 × 10k product, ~110 GFLOP/s a core). Running those products in bfloat16 through
torch (AMX) cut the seeding to 0.25 s, but importing torch costs 1.05 s, so a fit in a fresh
process would be slower: not used.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from lookalike._faiss import import_faiss
from lookalike.config import usable_cores
from lookalike.errors import InvalidParameterError
from lookalike.validation import (
    as_matrix,
    check_choice,
    check_dim,
    check_int,
    check_n_clusters,
    refuse_identical,
)

INITS = ("k-means++", "random")
_INIT_SAMPLE_MIN = 10_000
_INIT_SAMPLE_PER_CLUSTER = 32
SAMPLE_ABOVE = 10**9
"""Multiply-adds of one full assignment pass (n·K·d) above which the fit trains on a sample;
below it every pass costs milliseconds and the fit trains on all points."""
_SMALL_REFINE_ITER = 100
"""Full-data Lloyd iterations allowed below ``SAMPLE_ABOVE`` (stopped earlier by ``tol``)."""


class KMeans:
    """K-Means clustering (scikit-learn's estimator contract, FAISS inside).

    Parameters
    ----------
    n_clusters : K, 2 <= K <= n_points.
    n_init : restarts on the training sample; the one with the lowest inertia is refined.
    max_iter : Lloyd iterations per restart on the training sample.
    seed : seeds sampling, initialisation and FAISS; equal seed and data give equal labels.
    spherical : normalise centres to unit length after each iteration (cosine k-means).
    init : ``"k-means++"`` (greedy, on a sample) or ``"random"`` (FAISS's sampling; cheaper for
        very large K such as micro-clustering).
    max_points_per_centroid : train on a seeded sample of ``K *`` this many points (None: all)
        when the data is large (see ``SAMPLE_ABOVE``).
    refine_iter : full-data Lloyd iterations after training on a sample (0: none).
    tol : the refinement stops once inertia improves by less than this fraction.

    Attributes (after ``fit``)
    --------------------------
    cluster_centers_ : (K, d) float32.  labels_ : (n,) int64.  inertia_ : float.
    n_iter_ : Lloyd iterations of the kept run (sample + full data).  n_passes_ : the whole fit's
    work in full-data assignment passes.  n_features_in_ : d.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        n_init: int = 1,
        max_iter: int = 10,
        seed: int = 0,
        spherical: bool = False,
        init: str = "k-means++",
        max_points_per_centroid: int | None = 64,
        refine_iter: int = 1,
        tol: float = 1e-4,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.seed = seed
        self.spherical = spherical
        self.init = init
        self.max_points_per_centroid = max_points_per_centroid
        self.refine_iter = refine_iter
        self.tol = tol

    def fit(self, X: Any, y: Any = None) -> KMeans:
        """Cluster ``X`` of shape (n, d); sets ``labels_``, ``cluster_centers_``, ``inertia_``."""
        x = as_matrix(X)
        k = self._check(x)
        rng = np.random.default_rng(self.seed)
        n = x.shape[0]
        cheap = n * k * x.shape[1] <= SAMPLE_ABOVE
        size = n if cheap or self.max_points_per_centroid is None else min(n, k * self.max_points_per_centroid)
        train = x if size == n else _sample(x, size, rng)
        runs = [self._train(train, k, rng) for _ in range(self.n_init)]
        centers, iters = min(runs, key=lambda run: run[0])[1:]
        passes = self.n_init * iters * size / n
        budget = max(self.refine_iter, _SMALL_REFINE_ITER) if cheap else self.refine_iter
        centers, labels, sq_dist, refined = refine(x, centers, budget, self.tol, self.spherical)
        self.cluster_centers_, self.labels_ = centers, labels
        self.inertia_ = float(sq_dist.sum(dtype=np.float64))
        self.n_iter_ = iters + refined
        self.n_passes_ = passes + refined + 1
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

    def _check(self, x: np.ndarray) -> int:
        k = check_n_clusters(self.n_clusters, x.shape[0])
        check_int(self.n_init, "n_init", low=1)
        check_int(self.max_iter, "max_iter", low=1)
        check_int(self.seed, "seed", low=0)
        check_int(self.refine_iter, "refine_iter", low=0)
        check_choice(self.init, "init", INITS)
        if self.max_points_per_centroid is not None:
            check_int(self.max_points_per_centroid, "max_points_per_centroid", low=1)
        if not (isinstance(self.tol, (int, float)) and 0 <= self.tol < 1):
            raise InvalidParameterError(f"tol must be a number in [0, 1); got {self.tol!r}")
        refuse_identical(x, what="k-means")
        return k

    def _train(self, x: np.ndarray, k: int, rng: np.random.Generator) -> tuple[float, np.ndarray, int]:
        """One seeded FAISS run on the (checked) training points: inertia there, centres, iterations."""
        faiss = import_faiss()
        n, d = x.shape
        km = faiss.Kmeans(
            d,
            k,
            niter=int(self.max_iter),
            nredo=1,
            seed=int(rng.integers(2**31 - 1)),
            spherical=bool(self.spherical),
            max_points_per_centroid=n // k + 1,
            min_points_per_centroid=1,
            verbose=False,
        )
        start = None
        if self.init == "k-means++":
            size = min(n, max(_INIT_SAMPLE_MIN, _INIT_SAMPLE_PER_CLUSTER * k))
            start = kmeans_plusplus(x if size == n else _sample(x, size, rng), k, rng)
        km.train(x, init_centroids=start)
        return float(km.obj[-1]), np.ascontiguousarray(km.centroids, dtype=np.float32), len(km.obj)


def _sample(x: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` distinct rows of ``x``, seeded, in their original order."""
    return x[np.sort(rng.choice(x.shape[0], size, replace=False))]


def refine(
    x: np.ndarray, centers: np.ndarray, max_iter: int, tol: float, spherical: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Lloyd iterations on all of ``x`` (n, d) from ``centers`` (k, d), checked float32.

    Stops after ``max_iter`` updates or once inertia improves by less than ``tol`` (relative).
    Returns the centres, their labels (n,) and squared distances (n,) — from one assignment
    with those very centres — and the number of updates made.
    """
    labels, sq_dist = assign(x, centers)
    inertia = float(sq_dist.sum(dtype=np.float64))
    for step in range(max_iter):
        updated = update_centers(x, labels, centers, spherical)
        new_labels, new_sq = assign(x, updated)
        new_inertia = float(new_sq.sum(dtype=np.float64))
        if new_inertia > inertia:  # float noise at convergence: keep the better state
            return centers, labels, sq_dist, step
        centers, labels, sq_dist = updated, new_labels, new_sq
        if inertia - new_inertia <= tol * new_inertia:
            return centers, labels, sq_dist, step + 1
        inertia = new_inertia
    return centers, labels, sq_dist, max_iter


def update_centers(x: np.ndarray, labels: np.ndarray, centers: np.ndarray, spherical: bool) -> np.ndarray:
    """Mean of each cluster's rows (k, d) float32, as one sparse (k, n) @ (n, d) product;
    an empty cluster keeps its previous centre."""
    from scipy import sparse

    k, n = centers.shape[0], x.shape[0]
    one_hot = sparse.csr_matrix((np.ones(n, dtype=np.float32), (labels, np.arange(n))), shape=(k, n))
    sums = np.asarray(one_hot @ x, dtype=np.float32)
    sizes = np.bincount(labels, minlength=k)
    out = centers.copy()
    filled = sizes > 0
    out[filled] = sums[filled] / sizes[filled, None].astype(np.float32)
    if spherical:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.where(norms > 0, norms, 1.0)
    return np.ascontiguousarray(out)


def kmeans_plusplus(x: np.ndarray, k: int, rng: np.random.Generator, threads: int | None = None) -> np.ndarray:
    """Greedy k-means++ seeds: (k, d) rows of ``x`` (checked float32, n >= k).

    Each step samples :func:`greedy_trials` candidates with probability proportional to the
    squared distance to the nearest chosen seed and keeps the one that lowers the total most.
    The candidates' distances to all points are skinny (n_trials, d) @ (d, n) products, which
    OpenBLAS threads poorly; instead the points are split into ``threads`` column blocks
    (default: one per usable core, but at most one per 2,500 points), each multiplied single-threaded
    in its own Python thread. Equal seeds give equal results whatever ``threads``.
    """
    from threadpoolctl import threadpool_limits

    blocks = threads or min(usable_cores(), max(1, x.shape[0] // 2_500))
    with threadpool_limits(1, user_api="blas"):
        return _greedy_seeds(x, k, rng, max(1, blocks))


def greedy_trials(k: int) -> int:
    """Candidates per greedy k-means++ step: ``2 + 4 ln k`` (scikit-learn uses ``2 + ln k``).

    A step streams the whole seeding sample through one skinny product whatever the number of
    candidates, so extra candidates cost little here, and they pay: at K = 300 on the benchmark
    mixture, 22 candidates instead of 7 lowered the final inertia by about 1 % (mean of 6 seeds).
    """
    return 2 + int(4 * np.log(k))


class _CandidateCosts:
    """Squared distances from candidate rows to every point, computed in column blocks.

    ``costs(rows, row_sq, closest)`` (candidate rows, their squared norms, each point's current
    nearest squared distance) returns ``min(d²(candidate, point), closest)`` as (n_trials, n)
    float32; each block is one single-threaded product run in a worker thread (numpy releases
    the GIL there), so the blocks run in parallel.
    """

    def __init__(self, x: np.ndarray, sq_norms: np.ndarray, blocks: int) -> None:
        bounds = np.linspace(0, x.shape[0], blocks + 1).astype(int)
        self.spans = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        # (d, n_block) contiguous: the skinny product runs ~1.6x faster on it than on x.T
        self.blocks_t = [np.ascontiguousarray(x[span].T) for span in self.spans]
        self.sq_norms = sq_norms
        self.pool = None
        if blocks > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(blocks - 1)

    def costs(self, rows: np.ndarray, row_sq: np.ndarray, closest: np.ndarray) -> np.ndarray:
        scaled = rows * np.float32(-2.0)  # the -2 of |c|² + |x|² - 2 c·x folded into the small operand
        out = np.empty((rows.shape[0], closest.shape[0]), dtype=np.float32)

        def block(i: int) -> None:
            span = self.spans[i]
            part = out[:, span]
            np.matmul(scaled, self.blocks_t[i], out=part)
            part += self.sq_norms[span]
            part += row_sq[:, None]
            np.minimum(part, closest[span], out=part)

        pending = [self.pool.submit(block, i) for i in range(1, len(self.spans))] if self.pool else []
        block(0)
        for job in pending:
            job.result()
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _greedy_seeds(x: np.ndarray, k: int, rng: np.random.Generator, blocks: int) -> np.ndarray:
    n = x.shape[0]
    n_trials = greedy_trials(k)
    sq_norms = np.einsum("ij,ij->i", x, x)
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = rng.integers(n)
    closest = np.maximum(sq_norms + sq_norms[chosen[0]] - 2.0 * (x @ x[chosen[0]]), 0.0)
    candidate_costs = _CandidateCosts(x, sq_norms, blocks)
    try:
        for step in range(1, k):
            cumulative = np.cumsum(closest, dtype=np.float64)
            if cumulative[-1] <= 0.0:  # fewer distinct points than k: pick any unused rows
                chosen[step] = rng.integers(n)
                continue
            candidates = np.minimum(np.searchsorted(cumulative, rng.random(n_trials) * cumulative[-1]), n - 1)
            dist = candidate_costs.costs(x[candidates], sq_norms[candidates], closest)
            best = int(np.argmin(dist.sum(axis=1)))
            chosen[step] = candidates[best]
            closest = np.maximum(dist[best], 0.0)
    finally:
        candidate_costs.close()
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

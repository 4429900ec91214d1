"""Agglomerative clustering that scales to 100k points: K-Means micro-clusters, then an exact
size-aware agglomeration of those micro-clusters.

Route. With ``n <= n_micro`` every point is a leaf and the result is *exact* agglomerative
clustering (it agrees with ``sklearn.cluster.AgglomerativeClustering`` and scipy's linkage up to
ties; the tests check this). Above that, FAISS K-Means (``n_micro`` centres, random init,
10 iterations) groups the points into micro-clusters, which become the leaves:

* ward — exact Ward from that starting partition: Ward's merge cost depends only on sizes and
  centroids, ``d² = 2·|A||B|/(|A|+|B|)·||μA − μB||²`` (scipy's height convention);
* average / complete, euclidean — leaves are represented by their centroids, weighted by size
  for ``average`` (Lance–Williams with the micro-cluster sizes);
* average / complete, cosine — rows are L2-normalised first; the leaf-to-leaf distance is
  ``1 − μA·μB`` (unnormalised means of unit rows): exactly the mean pairwise cosine distance,
  so exact for ``average`` from the leaves up, an approximation for ``complete``.

Merging runs the nearest-neighbour-chain algorithm on an m × m float64 matrix (m = leaves), so
memory is O(m² + n·d), never O(n²).

Accuracy, measured by ``benchmarks/bench_cluster.py`` on a 10k subset of its 100k × 256
mixture, K = 300, default ``n_micro=3000``: ARI 0.91 against exact
``sklearn.cluster.AgglomerativeClustering(linkage="ward")`` (exact Ward against itself after
1e-3 noise: 0.99), with a Ward objective (within-cluster SSE) within 0.1 % of the exact tree's.
``n_micro`` trades accuracy for time: 1000 gave ARI 0.84, 2000 0.89, 5000 0.92. The full
100k × 256 fit took 12 s with a 0.5 GB peak RSS (data included).

The merge tree is ``linkage_``, a scipy linkage matrix over the m leaves (column 3 counts
leaves, as scipy requires; ``merge_sizes_`` counts points), ready for
``scipy.cluster.hierarchy.dendrogram``. ``labels_`` gives every point's cluster.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike.cluster._groups import group_means
from lookalike.cluster.kmeans import KMeans
from lookalike.errors import InvalidParameterError
from lookalike.validation import (
    as_matrix,
    check_choice,
    check_int,
    check_n_clusters,
    l2_normalize,
    refuse_identical,
)

LINKAGES = ("ward", "average", "complete")
METRICS = ("euclidean", "cosine")
MAX_MICRO = 20_000
_MICRO_ITER = 10


class Agglomerative:
    """Hierarchical agglomerative clustering, cut at ``n_clusters`` or ``distance_threshold``.

    Parameters
    ----------
    n_clusters : clusters to cut at (None when ``distance_threshold`` is given).
    distance_threshold : merge only below this linkage height (scipy/sklearn convention).
    linkage : ``ward`` (euclidean only), ``average`` or ``complete``.
    metric : ``euclidean`` or ``cosine``.
    n_micro : leaves (micro-clusters) above which points are pre-grouped by K-Means (<= 20,000).
    seed : seeds the micro-clustering.

    Attributes (after ``fit``)
    --------------------------
    labels_ : (n,) int64.  n_clusters_ : int.  linkage_ : (m - 1, 4) float64.
    leaf_labels_ : (n,) leaf of each point.  leaf_sizes_ : (m,) points per leaf.
    merge_sizes_ : (m - 1,) points under each merge.  exact_ : True when leaves are points.
    """

    def __init__(
        self,
        n_clusters: int | None = 2,
        *,
        distance_threshold: float | None = None,
        linkage: str = "ward",
        metric: str = "euclidean",
        n_micro: int = 3000,
        seed: int = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.distance_threshold = distance_threshold
        self.linkage = linkage
        self.metric = metric
        self.n_micro = n_micro
        self.seed = seed

    def fit(self, X: Any, y: Any = None) -> Agglomerative:
        """Build the tree for ``X`` (n, d) and cut it; sets ``labels_`` and ``linkage_``."""
        x = as_matrix(X, min_rows=2)
        self._check_settings(x.shape[0])
        refuse_identical(x, what="agglomerative clustering")
        if self.metric == "cosine":
            x = l2_normalize(x)
        leaf_labels, centers, sizes = self._leaves(x)
        if self.n_clusters is not None and self.n_clusters > centers.shape[0]:
            raise InvalidParameterError(
                f"n_clusters={self.n_clusters} exceeds the {centers.shape[0]} micro-clusters; raise n_micro"
            )
        merges = _nn_chain(_leaf_distances(centers, sizes, self.linkage, self.metric), sizes, self.linkage)
        self.linkage_, self.merge_sizes_ = _to_scipy(merges, sizes)
        self.leaf_labels_, self.leaf_sizes_ = leaf_labels, sizes.astype(np.int64)
        self.exact_ = centers.shape[0] == x.shape[0]
        self.labels_ = self.cut(self.n_clusters, self.distance_threshold)
        self.n_clusters_ = int(self.labels_.max()) + 1
        return self

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X).labels_``."""
        return self.fit(X).labels_

    def cut(self, n_clusters: int | None = None, distance_threshold: float | None = None) -> np.ndarray:
        """Labels (n,) for another cut of the fitted tree (exactly one argument given)."""
        if not hasattr(self, "linkage_"):
            raise InvalidParameterError("this Agglomerative is not fitted yet; call fit(X) first")
        n_leaves = self.leaf_sizes_.shape[0]
        _check_cut(n_clusters, distance_threshold)
        if distance_threshold is not None:
            n_merges = int(np.searchsorted(self.linkage_[:, 2], float(distance_threshold), side="left"))
        else:
            n_merges = n_leaves - check_n_clusters(n_clusters, n_leaves, name="n_clusters (leaves)")
        return np.asarray(cut_tree(self.linkage_, n_leaves, n_merges)[self.leaf_labels_])

    def _check_settings(self, n_points: int) -> None:
        check_choice(self.linkage, "linkage", LINKAGES)
        check_choice(self.metric, "metric", METRICS)
        check_int(self.n_micro, "n_micro", low=2, high=MAX_MICRO)
        check_int(self.seed, "seed", low=0)
        _check_cut(self.n_clusters, self.distance_threshold)
        if self.n_clusters is not None:
            check_n_clusters(self.n_clusters, n_points)
        if self.linkage == "ward" and self.metric != "euclidean":
            raise InvalidParameterError(
                f"linkage='ward' needs metric='euclidean' (got {self.metric!r}); on L2-normalised "
                "vectors (the Reducer's output) euclidean ward already ranks like cosine"
            )

    def _leaves(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Leaf of each point (n,), leaf centres (m, d) float64 and sizes (m,) float64."""
        n = x.shape[0]
        if n <= self.n_micro:
            return np.arange(n), x.astype(np.float64), np.ones(n)
        km = KMeans(self.n_micro, n_init=1, max_iter=_MICRO_ITER, seed=self.seed, init="random").fit(x)
        used, labels = np.unique(km.labels_, return_inverse=True)  # drop empty micro-clusters
        means, sizes = group_means(x, labels, used.size)
        return labels, means, sizes.astype(np.float64)


def _check_cut(n_clusters: int | None, distance_threshold: float | None) -> None:
    if (n_clusters is None) == (distance_threshold is None):
        raise InvalidParameterError(
            f"give exactly one of n_clusters and distance_threshold; got n_clusters={n_clusters}, "
            f"distance_threshold={distance_threshold}"
        )
    if distance_threshold is not None and not distance_threshold > 0:
        raise InvalidParameterError(f"distance_threshold must be > 0; got {distance_threshold}")


def _leaf_distances(centers: np.ndarray, sizes: np.ndarray, linkage: str, metric: str) -> np.ndarray:
    """Initial (m, m) leaf distances (squared scipy heights for ward), inf on the diagonal."""
    gram = centers @ centers.T
    if metric == "cosine":
        dist = 1.0 - gram
    else:
        sq = np.diag(gram).copy()
        dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)
        if linkage == "ward":
            dist *= 2.0 * np.outer(sizes, sizes) / (sizes[:, None] + sizes[None, :])
        else:
            np.sqrt(dist, out=dist)
    np.maximum(dist, 0.0, out=dist)
    np.fill_diagonal(dist, np.inf)
    return np.asarray(dist)


def _nn_chain(dist: np.ndarray, sizes: np.ndarray, linkage: str) -> np.ndarray:
    """Nearest-neighbour-chain agglomeration (m leaves, in place on ``dist``).

    Returns (m - 1, 3) rows ``[leaf_a, leaf_b, height]`` in merge order, where each leaf stands
    for the cluster it currently belongs to. Valid for reducible linkages (ward/average/complete).
    """
    m = sizes.shape[0]
    sizes = sizes.astype(np.float64).copy()
    active = np.ones(m, dtype=bool)
    merges = np.empty((m - 1, 3))
    chain: list[int] = []
    for step in range(m - 1):
        if not chain:
            chain.append(int(np.argmax(active)))
        while True:
            a = chain[-1]
            b = int(np.argmin(dist[a]))
            if len(chain) > 1 and dist[a, chain[-2]] <= dist[a, b]:
                b = chain[-2]
                break
            chain.append(b)
        chain.pop()
        chain.pop()
        keep, gone = min(a, b), max(a, b)
        merges[step] = (a, b, dist[a, b])
        row = _lance_williams(dist[a], dist[b], dist[a, b], sizes, a, b, linkage)
        dist[gone, :] = np.inf
        dist[:, gone] = np.inf
        row[keep] = row[gone] = np.inf
        dist[keep, :] = row
        dist[:, keep] = row
        sizes[keep] += sizes[gone]
        active[gone] = False
    if linkage == "ward":
        merges[:, 2] = np.sqrt(merges[:, 2])
    return merges


def _lance_williams(
    da: np.ndarray, db: np.ndarray, dab: float, sizes: np.ndarray, a: int, b: int, linkage: str
) -> np.ndarray:
    """Distances (m,) from the union of clusters a and b to every cluster."""
    sa, sb = sizes[a], sizes[b]
    if linkage == "complete":
        return np.asarray(np.maximum(da, db))
    if linkage == "average":
        return np.asarray((sa * da + sb * db) / (sa + sb))
    return np.asarray(((sa + sizes) * da + (sb + sizes) * db - sizes * dab) / (sa + sb + sizes))


def _to_scipy(merges: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NN-chain merges → scipy linkage (m - 1, 4) sorted by height, and points per merge."""
    m = sizes.shape[0]
    order = np.argsort(merges[:, 2], kind="stable")
    parent = np.arange(m)
    node = np.arange(m)
    leaves = np.ones(m, dtype=np.int64)
    points = sizes.astype(np.int64).copy()
    z = np.empty((m - 1, 4))
    merge_sizes = np.empty(m - 1, dtype=np.int64)
    for i, (a, b, height) in enumerate(merges[order]):
        ra, rb = _find(parent, int(a)), _find(parent, int(b))
        z[i] = (min(node[ra], node[rb]), max(node[ra], node[rb]), height, leaves[ra] + leaves[rb])
        parent[rb] = ra
        node[ra] = m + i
        leaves[ra] += leaves[rb]
        points[ra] += points[rb]
        merge_sizes[i] = points[ra]
    return z, merge_sizes


def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        parent[i], i = root, parent[i]
    return root


def cut_tree(linkage: np.ndarray, n_leaves: int, n_merges: int) -> np.ndarray:
    """Leaf labels (n_leaves,) 0..K-1 after applying the first ``n_merges`` rows of ``linkage``.

    Clusters are numbered by size, largest first (ties by smallest leaf index).
    """
    parent = np.arange(2 * n_leaves - 1)
    for i in range(n_merges):
        a, b = int(linkage[i, 0]), int(linkage[i, 1])
        parent[a] = parent[b] = n_leaves + i
    roots = np.array([_find(parent, leaf) for leaf in range(n_leaves)])
    _, first, inverse, counts = np.unique(roots, return_index=True, return_inverse=True, return_counts=True)
    rank = np.lexsort((first, -counts))
    relabel = np.empty_like(rank)
    relabel[rank] = np.arange(rank.size)
    return relabel[inverse].astype(np.int64)

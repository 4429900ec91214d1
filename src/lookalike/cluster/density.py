"""Density clustering without an n × n matrix: DBSCAN and HDBSCAN on sparse FAISS graphs.

* ``DBSCAN`` — FAISS ``range_search`` builds the radius-``eps`` neighbour graph (exact, batched,
  refused past ``max_edges`` edges), and scikit-learn's DBSCAN runs on it as a precomputed
  sparse matrix: the same labels as ``sklearn.cluster.DBSCAN`` on the raw points. When ``eps`` is
  None it is read off the knee of the sorted k-distance curve (:func:`suggest_eps`), computed
  with exact FAISS kNN for a seeded sample of query points against all points.
* ``HDBSCAN`` — an exact FAISS k-nearest-neighbour graph (``n_neighbors`` per point),
  symmetrised, goes to ``sklearn.cluster.HDBSCAN(metric="precomputed")``. Pairs outside the
  graph are treated as far apart; if the graph falls into several components they are joined by
  the minimum spanning tree of true distances between one representative per component.
  With ``n_neighbors`` near n the result is exact; the default is an approximation (tested).

Metrics: ``cosine`` (rows L2-normalised, distance ``1 − cos``) or ``euclidean``. Noise is
label ``-1`` and counted in ``n_noise_``; it is never merged into a cluster. Exact FAISS search
costs O(n²·d) time (about a minute for 100k × 256 on 2 cores) but only O(n·k) memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike._faiss import import_faiss
from lookalike.cluster.choose_k import knee_index
from lookalike.errors import InvalidParameterError
from lookalike.validation import as_matrix, check_choice, check_int, l2_normalize, refuse_identical

METRICS = ("cosine", "euclidean")
_BATCH = 8192
_MIN_DISTANCE = 1e-9  # stands in for 0 so sparse algebra never drops duplicate-point edges


@dataclass(frozen=True)
class EpsSuggestion:
    """``eps`` from the k-distance curve: ``k_distances`` (sample,) ascending, knee position."""

    eps: float
    k_distances: np.ndarray
    knee: int | None
    sample_size: int
    source: str


def suggest_eps(
    X: Any, min_samples: int = 5, *, metric: str = "cosine", sample_size: int = 10_000, seed: int = 0
) -> EpsSuggestion:
    """Suggest DBSCAN's ``eps`` for ``X`` (n, d): the knee of the sorted k-distance curve.

    The k-distance of a point is its distance to the ``min_samples``-th nearest point counting
    itself (scikit-learn's ``min_samples`` convention). Without a knee, the 90th percentile.
    """
    x = _prepare(X, metric)
    k = check_int(min_samples, "min_samples", low=1, high=x.shape[0])
    check_int(sample_size, "sample_size", low=1)
    check_int(seed, "seed", low=0)
    return _suggest(x, k, metric, sample_size, seed)


class DBSCAN:
    """DBSCAN on a FAISS radius graph (scikit-learn's estimator contract).

    Parameters
    ----------
    eps : neighbourhood radius in the metric's units; None suggests one (see ``eps_source_``).
    min_samples : points (counting itself) within ``eps`` that make a point core.
    metric : ``cosine`` or ``euclidean``.
    max_edges : refuse radius graphs with more stored pairs than this (memory guard).
    sample_size, seed : k-distance sample used when ``eps`` is None.

    Attributes: ``labels_`` (n,) with -1 = noise, ``n_clusters_``, ``n_noise_``, ``eps_``,
    ``eps_source_``, ``core_sample_indices_``.
    """

    def __init__(
        self,
        eps: float | None = None,
        *,
        min_samples: int = 5,
        metric: str = "cosine",
        max_edges: int = 50_000_000,
        sample_size: int = 10_000,
        seed: int = 0,
    ) -> None:
        self.eps = eps
        self.min_samples = min_samples
        self.metric = metric
        self.max_edges = max_edges
        self.sample_size = sample_size
        self.seed = seed

    def fit(self, X: Any, y: Any = None) -> DBSCAN:
        """Cluster ``X`` (n, d); noise gets label -1."""
        from sklearn.cluster import DBSCAN as SklearnDBSCAN

        x = _prepare(X, self.metric)
        k = check_int(self.min_samples, "min_samples", low=1)
        check_int(self.max_edges, "max_edges", low=1)
        check_int(self.sample_size, "sample_size", low=1)
        check_int(self.seed, "seed", low=0)
        if self.eps is None:
            suggestion = _suggest(x, min(k, x.shape[0]), self.metric, self.sample_size, self.seed)
            eps, self.eps_source_ = suggestion.eps, suggestion.source
        elif isinstance(self.eps, (int, float)) and not isinstance(self.eps, bool) and self.eps > 0:
            eps, self.eps_source_ = float(self.eps), "given"
        else:
            raise InvalidParameterError(f"eps must be a number > 0 or None (suggest one); got {self.eps!r}")
        graph = radius_graph(x, eps, self.metric, max_edges=int(self.max_edges))
        model = SklearnDBSCAN(eps=eps, min_samples=k, metric="precomputed").fit(graph)
        self.labels_ = model.labels_.astype(np.int64)
        self.core_sample_indices_ = model.core_sample_indices_
        self.eps_ = eps
        self.n_clusters_, self.n_noise_ = count_clusters(self.labels_)
        return self

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X).labels_``."""
        return np.asarray(self.fit(X).labels_)


class HDBSCAN:
    """HDBSCAN on a FAISS k-nearest-neighbour graph (scikit-learn's HDBSCAN inside).

    Parameters
    ----------
    min_cluster_size : smallest group reported as a cluster.
    min_samples : neighbours (counting itself) defining core distance; None = min_cluster_size.
    metric : ``cosine`` or ``euclidean``.
    n_neighbors : graph neighbours per point; None = max(2 * min_samples, 15). More is closer
        to exact HDBSCAN and slower.

    Attributes: ``labels_`` (n,) with -1 = noise, ``probabilities_``, ``n_clusters_``,
    ``n_noise_``, ``n_graph_components_`` (before joining).
    """

    def __init__(
        self,
        min_cluster_size: int = 5,
        *,
        min_samples: int | None = None,
        metric: str = "cosine",
        n_neighbors: int | None = None,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.metric = metric
        self.n_neighbors = n_neighbors

    def fit(self, X: Any, y: Any = None) -> HDBSCAN:
        """Cluster ``X`` (n, d); points in no cluster get label -1."""
        from sklearn.cluster import HDBSCAN as SklearnHDBSCAN

        x = _prepare(X, self.metric)
        n = x.shape[0]
        size = check_int(self.min_cluster_size, "min_cluster_size", low=2, high=n)
        samples = (
            size if self.min_samples is None else check_int(self.min_samples, "min_samples", low=1, high=n)
        )
        neighbors = max(2 * samples, 15)
        if self.n_neighbors is not None:
            neighbors = check_int(self.n_neighbors, "n_neighbors", low=samples)
        graph, self.n_graph_components_ = knn_graph(x, min(neighbors, n), self.metric)
        model = SklearnHDBSCAN(
            min_cluster_size=size, min_samples=samples, metric="precomputed", copy=False
        ).fit(graph)
        self.labels_ = model.labels_.astype(np.int64)
        self.probabilities_ = model.probabilities_
        self.n_clusters_, self.n_noise_ = count_clusters(self.labels_)
        return self

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X).labels_``."""
        return np.asarray(self.fit(X).labels_)


def radius_graph(x: np.ndarray, eps: float, metric: str, *, max_edges: int) -> Any:
    """CSR (n, n) of distances < ``eps`` between rows of prepared ``x`` (self pairs included)."""
    from scipy import sparse

    index = _flat_index(x, metric)
    radius = 1.0 - eps if metric == "cosine" else eps * eps
    n = x.shape[0]
    counts, columns, values = [], [], []
    stored = 0
    for start in range(0, n, _BATCH):
        limits, dist, idx = index.range_search(x[start : start + _BATCH], radius)
        stored += int(limits[-1])
        done = min(start + _BATCH, n)
        if stored > max_edges or stored * (n / done) > 2 * max_edges:
            raise InvalidParameterError(
                f"eps={eps:g} links about {stored / done:.0f} neighbours per point, over "
                f"max_edges={max_edges} pairs for {n} points; lower eps or raise max_edges"
            )
        counts.append(np.diff(limits))
        columns.append(idx)
        values.append(_to_distance(dist, metric))
    indptr = np.concatenate(([0], np.cumsum(np.concatenate(counts))))
    return sparse.csr_matrix((np.concatenate(values), np.concatenate(columns), indptr), shape=(n, n))


def knn_graph(x: np.ndarray, k: int, metric: str) -> tuple[Any, int]:
    """Symmetric CSR (n, n) kNN distance graph of prepared ``x``, joined into one component.

    Returns the graph and the number of components it had before joining.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    n = x.shape[0]
    dist, idx = exact_knn(x, x, k, metric)
    rows = np.repeat(np.arange(n), k)
    graph = sparse.csr_matrix((np.maximum(dist.ravel(), _MIN_DISTANCE), (rows, idx.ravel())), shape=(n, n))
    graph = graph.maximum(graph.T).tocsr()
    n_components, component = connected_components(graph, directed=False)
    if n_components > 1:
        graph = (graph + _bridges(x, component, n_components, metric)).tocsr()
    return graph, int(n_components)


def exact_knn(queries: np.ndarray, x: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of ``x`` for each query: distances (q, k) ascending, indices (q, k)."""
    index = _flat_index(x, metric)
    parts = [index.search(queries[s : s + _BATCH], k) for s in range(0, queries.shape[0], _BATCH)]
    dist = np.concatenate([_to_distance(d, metric) for d, _ in parts])
    return dist, np.concatenate([i for _, i in parts]).astype(np.int64)


def _bridges(x: np.ndarray, component: np.ndarray, n_components: int, metric: str) -> Any:
    """Symmetric CSR of MST edges (true distances) between one representative per component."""
    from scipy import sparse
    from scipy.sparse.csgraph import minimum_spanning_tree

    from lookalike.cluster._groups import group_means

    means, sizes = group_means(x, component, n_components)
    to_mean = ((x - means[component].astype(np.float32)) ** 2).sum(axis=1)
    firsts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    reps = np.lexsort((to_mean, component))[firsts]  # each component's member nearest its mean
    dist, idx = exact_knn(x[reps], x[reps], n_components, metric)
    full = np.zeros((n_components, n_components))
    np.put_along_axis(full, idx, np.maximum(dist, _MIN_DISTANCE), axis=1)
    np.fill_diagonal(full, 0.0)
    tree = minimum_spanning_tree(full).tocoo()
    n = x.shape[0]
    rows, cols = reps[tree.row], reps[tree.col]
    edges = sparse.csr_matrix((tree.data, (rows, cols)), shape=(n, n))
    return edges.maximum(edges.T)


def _prepare(X: Any, metric: str) -> np.ndarray:
    check_choice(metric, "metric", METRICS)
    x = as_matrix(X, min_rows=2)
    refuse_identical(x, what="density clustering")
    return l2_normalize(x) if metric == "cosine" else x


def _suggest(x: np.ndarray, k: int, metric: str, sample_size: int, seed: int) -> EpsSuggestion:
    n = x.shape[0]
    used = min(sample_size, n)
    queries = x if used == n else x[np.sort(np.random.default_rng(seed).choice(n, used, replace=False))]
    dist, _ = exact_knn(queries, x, k, metric)
    curve = np.sort(dist[:, k - 1].astype(np.float64))
    knee = knee_index(np.arange(used, dtype=np.float64), curve, direction="increasing")
    if knee is not None and curve[knee] > 0:
        return EpsSuggestion(float(curve[knee]), curve, knee, used, "knee of the k-distance curve")
    eps = float(np.percentile(curve, 90))
    if eps <= 0:
        raise InvalidParameterError(
            f"over 90% of points have {k - 1} exact duplicates; no eps > 0 can be suggested, give one"
        )
    return EpsSuggestion(eps, curve, None, used, "90th percentile of k-distances (no knee found)")


def _flat_index(x: np.ndarray, metric: str) -> Any:
    faiss = import_faiss()
    index = faiss.IndexFlatIP(x.shape[1]) if metric == "cosine" else faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    return index


def _to_distance(raw: np.ndarray, metric: str) -> np.ndarray:
    """FAISS scores (inner products or squared L2) → distances >= 0, float64."""
    raw = raw.astype(np.float64)
    return np.maximum(1.0 - raw, 0.0) if metric == "cosine" else np.sqrt(np.maximum(raw, 0.0))


def count_clusters(labels: np.ndarray) -> tuple[int, int]:
    """(clusters, noise points) in labels (n,) numbered 0..K-1 with -1 = noise."""
    return (int(labels.max()) + 1 if labels.size else 0), int(np.count_nonzero(labels == -1))

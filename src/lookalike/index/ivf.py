"""``ivf``: cluster-routed search (the reference design's "search the query's cluster").

A coarse quantizer holds K-Means centroids; every vector lives in the list of its cluster, and a
query scans only the lists of its ``nprobe`` nearest centroids. ``nprobe=1`` is exactly the
reference design: find the query's cluster, rank that cluster's members by cosine similarity.

The quantizer ranks centroids by squared L2 (``IndexFlatL2``), the rule k-means assigns with, so
given centroids from a clustering run route queries and vectors to the same cluster the run
would. Inside the lists vectors are ranked by inner product (``IndexIVFFlat``, no compression).
Centroids come from ``centroids=`` or are trained with ``faiss.Kmeans`` (``nlist``, ``seed``).
Removal is a true delete (a hash-table direct map finds each id's list).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike._faiss import import_faiss
from lookalike.config import IndexConfig
from lookalike.errors import InvalidParameterError
from lookalike.index._checks import as_matrix, as_unit_matrix
from lookalike.index.base import VectorIndex, default_nlist, on_one_thread, register, search_raw
from lookalike.index.scores import ClusterRadii

KMEANS_ITERATIONS = 10
KMEANS_POINTS_PER_CENTROID = 64
"""Training budget: at 100k x 256, 64 sampled points per centroid and 10 iterations route as
well as 256 and 20 (same recall@10 at every nprobe) in half the build time."""


@register
class IVFIndex(VectorIndex):
    """Inverted-file index routed by K-Means centroids.

    Parameters
    ----------
    nlist : clusters to train (0 = :func:`default_nlist`); ignored when ``centroids`` is given.
    nprobe : clusters searched per query by default (1 = only the query's own cluster; 16
        reaches recall@10 >= 0.95 with the default nlist at 100k and 1M vectors).
    centroids : (K, d) centroids of an existing clustering run, or None to train.
    seed : k-means seed.
    """

    kind = "ivf"
    search_options = frozenset({"nprobe"})

    def __init__(self, nlist: int = 0, nprobe: int = 16, centroids: Any = None, seed: int = 0) -> None:
        super().__init__()
        self.nlist = nlist
        self.nprobe = nprobe
        self.centroids = centroids
        self.seed = seed
        self._radii: ClusterRadii | None = None
        self._params_by_nprobe: dict[int, Any] = {}
        self._quantizer: Any = None

    @classmethod
    def from_config(cls, config: IndexConfig, centroids: Any = None) -> IVFIndex:
        return cls(nlist=config.nlist, nprobe=config.nprobe, centroids=centroids, seed=config.seed)

    # ------------------------------------------------------------ public extras
    def fit(self, X: Any, ids: Any, assignments: Any = None) -> IVFIndex:
        """Build from X (n, d) and ids (n,); ``assignments`` (n,) optionally fixes each
        vector's cluster (e.g. a clustering run's labels) instead of its nearest centroid."""
        self._build(as_unit_matrix(X, None, "vectors"))
        return self.add(ids, X, assignments)

    def add(self, ids: Any, X: Any, assignments: Any = None) -> IVFIndex:
        """Add X (n, d) under new ids (n,), into their nearest cluster or ``assignments`` (n,)."""
        ids, X = self._checked_new(ids, X)
        labels = None if assignments is None else self._checked_assignments(assignments, len(ids))
        if len(ids):
            self._add(ids, X, labels)
            self._sorted_ids = None
        return self

    @property
    def centroids_(self) -> np.ndarray:
        """The routing centroids: (K, d) float32."""
        self._check_fitted()
        quantizer = import_faiss().downcast_index(self._coarse())
        return np.asarray(quantizer.reconstruct_n(0, self.index_.nlist))

    def assign(self, X: Any) -> np.ndarray:
        """The cluster (nearest centroid, squared L2) of each row of X (n, d): (n,) int64."""
        self._check_fitted()
        X = as_matrix(X, self.dim_, "vectors")
        _, labels = self._coarse().search(X, 1)
        return np.asarray(labels[:, 0].astype(np.int64))

    def list_ids(self, cluster: int) -> np.ndarray:
        """Ids stored in one cluster's list: (size,) int64."""
        self._check_fitted()
        if not 0 <= cluster < self.index_.nlist:
            raise InvalidParameterError(f"cluster must be in [0, {self.index_.nlist}), got {cluster}")
        return self._list_array(cluster, codes=False).copy()

    def cluster_radii(self) -> ClusterRadii:
        """Centroids and each cluster's largest member-to-centroid squared distance (cached)."""
        self._check_fitted()
        if self._radii is None:
            centroids = self.centroids_
            radii = np.zeros(len(centroids), dtype=np.float32)
            for c in range(len(centroids)):
                members = self._list_array(c, codes=True)
                if len(members):
                    radii[c] = ((members - centroids[c]) ** 2).sum(axis=1).max()
            self._radii = ClusterRadii(centroids, radii)
        return self._radii

    # ------------------------------------------------------------ hooks
    def _new_faiss(self, X: np.ndarray) -> Any:
        faiss = import_faiss()
        d = X.shape[1]
        centroids = self._initial_centroids(X)
        quantizer = faiss.IndexFlatL2(d)
        quantizer.add(centroids)
        index = faiss.IndexIVFFlat(quantizer, d, len(centroids), faiss.METRIC_INNER_PRODUCT)
        index.nprobe = min(self.nprobe, len(centroids))
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        self._radii = None
        self._quantizer = None
        return index

    def _initial_centroids(self, X: np.ndarray) -> np.ndarray:
        if self.centroids is not None:
            return as_matrix(self.centroids, X.shape[1], "centroids")
        nlist = self.nlist or default_nlist(len(X))
        if len(X) < nlist:
            raise InvalidParameterError(
                f"ivf with nlist={nlist} needs at least {nlist} training vectors, got {len(X)}; "
                "pass centroids from a clustering run or a smaller nlist"
            )
        if nlist == 1:  # one cluster: its centre is the mean (k-means would only warn about it)
            return np.asarray(X.mean(axis=0, keepdims=True))
        faiss = import_faiss()
        kmeans = faiss.Kmeans(
            X.shape[1], nlist, niter=KMEANS_ITERATIONS, seed=self.seed,
            max_points_per_centroid=KMEANS_POINTS_PER_CENTROID,
        )
        kmeans.train(X)
        return np.asarray(kmeans.centroids)

    def _checked_assignments(self, assignments: Any, n: int) -> np.ndarray:
        labels = np.asarray(assignments)
        nlist = self.index_.nlist
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise InvalidParameterError(f"assignments must be ({n},) integers, got {labels.shape} {labels.dtype}")
        if n and (labels.min() < 0 or labels.max() >= nlist):
            raise InvalidParameterError(f"assignments must be cluster numbers in [0, {nlist})")
        return np.ascontiguousarray(labels, dtype=np.int64)

    def _add(self, ids: np.ndarray, X: np.ndarray, labels: np.ndarray | None = None) -> None:
        self._radii = None
        if labels is None:
            self.index_.add_with_ids(X, ids)
            return
        faiss = import_faiss()
        self.index_.add_core(len(ids), faiss.swig_ptr(X), faiss.swig_ptr(ids), faiss.swig_ptr(labels))

    def _remove(self, ids: np.ndarray) -> None:
        self._radii = None
        self.index_.remove_ids(import_faiss().IDSelectorArray(ids))

    def _live_ids(self) -> np.ndarray:
        lists = [self._list_array(c, codes=False) for c in range(self.index_.nlist)]
        return np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)

    def _list_array(self, cluster: int, codes: bool) -> np.ndarray:
        """One list's ids (size,) or vectors (size, d), copied out of FAISS."""
        faiss = import_faiss()
        invlists = self.index_.invlists
        size = invlists.list_size(cluster)
        if size == 0:
            return np.zeros((0, self.dim_) if codes else 0, dtype=np.float32 if codes else np.int64)
        if codes:
            ptr = invlists.get_codes(cluster)
            raw = faiss.rev_swig_ptr(ptr, size * invlists.code_size).copy()
            invlists.release_codes(cluster, ptr)
            return np.asarray(raw.view(np.float32).reshape(size, self.dim_))
        ptr = invlists.get_ids(cluster)
        out = faiss.rev_swig_ptr(ptr, size).copy()
        invlists.release_ids(cluster, ptr)
        return np.asarray(out)

    def routed_knn(
        self, queries: np.ndarray, k: int, options: dict[str, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`knn_checked` without a selector that also returns each query's own cluster
        (m,), its nearest centroid, for the confidence score.

        One query: the coarse search FAISS needs anyway (its first probe is the own cluster),
        then the list scan, on one thread. Several: FAISS's own ``search``, which splits the
        queries over the threads with the coarse search and the scan of a slice together (a
        separate ``search_preassigned`` call over all of them ran 1.7x slower: 54 against 32 ms
        for 1,000 queries at nprobe 12 over 100k x 256), then a coarse search for one centroid
        each (4 ms)."""
        nprobe = min(int(options.get("nprobe", self.nprobe)), self.index_.nlist)
        params = self._plain_params(nprobe)
        if len(queries) != 1:
            return self._routed_many(queries, k, params)
        return on_one_thread(self._routed_one, queries, k, nprobe, params)

    def _routed_many(
        self, queries: np.ndarray, k: int, params: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Several queries (m, d): FAISS's search, then each query's nearest centroid."""
        scores, labels = search_raw(self.index_, queries, k, params)
        return scores, labels, search_raw(self._coarse(), queries, 1)[1][:, 0]

    def _routed_one(
        self, query: np.ndarray, k: int, nprobe: int, params: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One query (1, d): the coarse search, then the list scan (two FAISS calls, no Python
        between them but the buffers; a few microseconds on top of FAISS's own)."""
        faiss = import_faiss()
        query = np.ascontiguousarray(query, dtype=np.float32)
        centroid_d = np.empty((1, nprobe), dtype=np.float32)
        probes = np.empty((1, nprobe), dtype=np.int64)
        scores = np.empty((1, k), dtype=np.float32)
        labels = np.empty((1, k), dtype=np.int64)
        x, dq, iq = faiss.swig_ptr(query), faiss.swig_ptr(centroid_d), faiss.swig_ptr(probes)
        self._coarse().search_c(1, x, nprobe, dq, iq)
        self.index_.search_preassigned_c(
            1, x, k, iq, dq, faiss.swig_ptr(scores), faiss.swig_ptr(labels), False, params
        )
        return scores, labels, probes[:, 0]

    def _coarse(self) -> Any:
        """The coarse quantizer's FAISS object (fetching it through SWIG costs a microsecond)."""
        if self._quantizer is None:
            self._quantizer = self.index_.quantizer
        return self._quantizer

    def _knn(
        self, queries: np.ndarray, k: int, selector: Any, **options: int
    ) -> tuple[np.ndarray, np.ndarray]:
        nprobe = min(int(options.get("nprobe", self.nprobe)), self.index_.nlist)
        if selector is None:
            return search_raw(self.index_, queries, k, self._plain_params(nprobe))
        params = import_faiss().SearchParametersIVF()
        params.nprobe = nprobe
        params.sel = selector
        distances, labels = self.index_.search(queries, k, params=params)
        return np.asarray(distances), np.asarray(labels)

    def _plain_params(self, nprobe: int) -> Any:
        """Search parameters without a selector, made once per ``nprobe`` (read-only in FAISS)."""
        params = self._params_by_nprobe.get(nprobe)
        if params is None:
            params = import_faiss().SearchParametersIVF()
            params.nprobe = nprobe
            if len(self._params_by_nprobe) < 64:
                self._params_by_nprobe[nprobe] = params
        return params

    def _sync_settings(self) -> None:
        self.index_.nprobe = min(self.nprobe, self.index_.nlist)

    def _adopt(self, raw: Any, read_only: bool) -> None:
        super()._adopt(raw, read_only)
        self.nlist = int(raw.nlist)
        self.nprobe = int(raw.nprobe)
        self._radii = None
        self._quantizer = None

    @classmethod
    def _recognizes(cls, raw: Any) -> bool:
        faiss = import_faiss()
        return isinstance(raw, faiss.IndexIVFFlat) and raw.metric_type == faiss.METRIC_INNER_PRODUCT

"""Vector indexes over unit vectors, routed search with scores and filters, duplicates.

Kinds (one interface, :class:`VectorIndex`; a registry maps names to classes):

- ``exact``: brute-force inner product (cosine on unit vectors), exact.
- ``ivf``: cluster-routed: a query scans its ``nprobe`` nearest K-Means clusters
  (``nprobe=1`` = the reference design's "search the query's cluster").
- ``hnsw``: graph search, fast at high recall; removal by tombstones.
- ``ondisk``: IVF-PQ whose lists stay on disk (memory-mapped), re-ranked exactly against
  float16 vectors; built in shards, for collections larger than memory.
- ``auto``: :func:`choose_kind` by collection size.

Typical use::

    index = create_index(IndexConfig(), n_vectors=len(X)).fit(X, ids)
    hits = search(index, query, k=10, exclude_ids=[query_id])[0]
    index.save(path); index = load_index(path, mmap=True)

Submodules :mod:`.duplicates` and :mod:`.phash` find duplicate images.
FAISS is imported on first use, not by ``import lookalike.index``.
"""

from __future__ import annotations

from lookalike.index._checks import mean_query
from lookalike.index.base import (
    VectorIndex,
    choose_kind,
    create_index,
    default_nlist,
    index_class,
    index_kinds,
    load_index,
    register,
)
from lookalike.index.flat import ExactIndex
from lookalike.index.hnsw import HNSWIndex
from lookalike.index.ivf import IVFIndex
from lookalike.index.ondisk import OnDiskIndex
from lookalike.index.scores import ClusterRadii, ClusterSpan, MatchCalibrator, cluster_max_distances
from lookalike.index.search import (
    EXACT_FILTER_MAX,
    Neighbors,
    fit_calibrator,
    member_neighbors,
    search,
    search_like,
)

__all__ = [
    "EXACT_FILTER_MAX",
    "ClusterRadii",
    "ClusterSpan",
    "ExactIndex",
    "HNSWIndex",
    "IVFIndex",
    "MatchCalibrator",
    "OnDiskIndex",
    "Neighbors",
    "VectorIndex",
    "choose_kind",
    "cluster_max_distances",
    "create_index",
    "default_nlist",
    "fit_calibrator",
    "index_class",
    "index_kinds",
    "load_index",
    "mean_query",
    "member_neighbors",
    "register",
    "search",
    "search_like",
]

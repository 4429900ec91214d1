"""Evaluation metrics. Retrieval for now: precision/recall/mAP@k, approximate-vs-exact recall, latency.

Retrieval is measured with leave-one-out queries: every labelled item queries the collection,
its own entry is not counted, and a neighbour is relevant when it has the query's label.

Definitions (``hits`` (n, k) bool, row i = query i's ranked neighbours, ``R_i`` = other items
with query i's label):

- precision@k = mean_i (hits in the first k) / k (missing results count as misses);
- recall@k = mean_i (hits in the first k) / R_i, over queries with R_i > 0;
- AP@k = sum_{j <= k} precision@j * hit_j / min(k, R_i); mAP@k = its mean over R_i > 0.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.errors import InvalidParameterError

if TYPE_CHECKING:
    from lookalike.index.base import VectorIndex


def _hits_k(hits: Any, k: int) -> np.ndarray:
    arr = np.asarray(hits, dtype=bool)
    if arr.ndim != 2:
        raise InvalidParameterError(f"hits must be a 2-D (n, k) array, got shape {arr.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= arr.shape[1]:
        raise InvalidParameterError(f"k must be an integer in [1, {arr.shape[1]}] (the hits' width), got {k!r}")
    return arr[:, :k]


def _with_relevant(hits: np.ndarray, n_relevant: Any) -> tuple[np.ndarray, np.ndarray]:
    counts = np.asarray(n_relevant, dtype=np.int64)
    if counts.shape != (len(hits),):
        raise InvalidParameterError(f"n_relevant must be ({len(hits)},), got {counts.shape}")
    keep = counts > 0
    return hits[keep], counts[keep]


def precision_at_k(hits: Any, k: int) -> float:
    """Mean share of relevant results among the first k; hits (n, >= k) bool."""
    h = _hits_k(hits, k)
    return float(h.sum(axis=1).mean() / k) if len(h) else float("nan")


def recall_at_k(hits: Any, n_relevant: Any, k: int) -> float:
    """Mean share of each query's relevant items found in its first k (queries with some)."""
    h, counts = _with_relevant(_hits_k(hits, k), n_relevant)
    return float((h.sum(axis=1) / counts).mean()) if len(h) else float("nan")


def average_precision_at_k(hits: Any, n_relevant: Any, k: int) -> np.ndarray:
    """AP@k of each query with relevant items: (n',) float64 (see module notes)."""
    h, counts = _with_relevant(_hits_k(hits, k), n_relevant)
    ranks = np.arange(1, k + 1)
    precision_at_j = np.cumsum(h, axis=1) / ranks
    return (precision_at_j * h).sum(axis=1) / np.minimum(k, counts)


def map_at_k(hits: Any, n_relevant: Any, k: int) -> float:
    """Mean AP@k over queries with relevant items."""
    ap = average_precision_at_k(hits, n_relevant, k)
    return float(ap.mean()) if len(ap) else float("nan")


def recall_vs_exact(approx_ids: Any, exact_ids: Any) -> float:
    """Share of the exact top-k ids (m, k) that the approximate search (m, k) also returned.

    ``-1`` entries (no result) never match; rows with no exact result are skipped.
    """
    approx = np.asarray(approx_ids, dtype=np.int64)
    exact = np.asarray(exact_ids, dtype=np.int64)
    if approx.shape[0] != exact.shape[0] or approx.ndim != 2 or exact.ndim != 2:
        raise InvalidParameterError(f"need (m, k) id arrays with equal m, got {approx.shape} and {exact.shape}")
    found, total = 0, 0
    for a_row, e_row in zip(approx, exact):
        truth = set(e_row[e_row >= 0].tolist())
        found += len(truth.intersection(a_row[a_row >= 0].tolist()))
        total += len(truth)
    return found / total if total else float("nan")


def latency_percentiles(seconds: Any) -> dict[str, float]:
    """p50/p95/p99 and mean of per-call durations in seconds, reported in milliseconds."""
    arr = np.asarray(seconds, dtype=np.float64) * 1000.0
    if arr.ndim != 1 or len(arr) == 0:
        raise InvalidParameterError(f"seconds must be a non-empty 1-D array, got shape {arr.shape}")
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "mean_ms": float(arr.mean())}


def label_hits(query_labels: Any, neighbor_ids: Any, label_of: dict[int, Any]) -> np.ndarray:
    """hits (n, k): neighbour j of query i is labelled and has ``query_labels[i]``.

    neighbor_ids (n, k) with -1 for missing results; ``label_of`` maps id -> label.
    """
    nbrs = np.asarray(neighbor_ids, dtype=np.int64)
    hits = np.zeros(nbrs.shape, dtype=bool)
    for i, (q_label, row) in enumerate(zip(query_labels, nbrs.tolist())):
        hits[i] = [label_of.get(j, _MISSING) == q_label for j in row]
    return hits


_MISSING = object()


def leave_one_out_hits(queries: Any, neighbor_ids: Any, labels: dict[int, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The one leave-one-out scoring rule: (hits (m, K) bool, relevant counts (m,) int64).

    Each query id (m,) is a labelled library image whose own image is excluded from its
    neighbour ids (m, K); a neighbour is relevant when it carries the query's label
    (unlabelled neighbours never are), and the query's relevant set is every *other* image
    with its label. ``labels`` maps every labelled id to its label.
    """
    counts = Counter(labels.values())
    query_labels = [labels[int(q)] for q in np.asarray(queries).tolist()]
    n_relevant = np.array([counts[label] - 1 for label in query_labels], dtype=np.int64)
    return label_hits(query_labels, neighbor_ids, labels), n_relevant


@dataclass(frozen=True)
class RetrievalScores:
    """Leave-one-out retrieval quality of an index on labelled items."""

    k: int
    precision: float
    recall: float
    map: float
    n_queries: int


def evaluate_retrieval(
    index: VectorIndex,
    ids: Any,
    labels: Any,
    k: int = 10,
    *,
    nprobe: int | None = None,
    ef_search: int | None = None,
) -> RetrievalScores:
    """precision/recall/mAP@k with every labelled item (ids (n,), labels (n,)) as a query.

    Neighbours come from the whole index; unlabelled neighbours are not relevant. ``nprobe``
    (ivf) and ``ef_search`` (hnsw) go to the search.
    """
    from lookalike.index.search import member_neighbors

    labels = list(labels)
    ids = np.asarray(ids, dtype=np.int64)
    if len(labels) != len(ids) or len(ids) == 0:
        raise InvalidParameterError(
            f"need one label per id and at least one: got {len(ids)} ids, {len(labels)} labels"
        )
    nbr_ids, _ = member_neighbors(index, ids, k, nprobe=nprobe, ef_search=ef_search)
    hits, n_relevant = leave_one_out_hits(ids, nbr_ids, dict(zip(ids.tolist(), labels)))
    return RetrievalScores(
        k=k,
        precision=precision_at_k(hits, k),
        recall=recall_at_k(hits, n_relevant, k),
        map=map_at_k(hits, n_relevant, k),
        n_queries=len(ids),
    )

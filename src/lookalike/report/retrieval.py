"""Retrieval quality for the report: leave-one-out precision/recall/mAP and the precision@k curve.

Neighbours come once from an exact index for the largest k; every metric slices those hits
(definitions in :mod:`lookalike.evaluate.metrics`). Queries are a seeded sample of the labelled images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike.config import IndexConfig
from lookalike.evaluate.metrics import leave_one_out_hits, map_at_k, precision_at_k, recall_at_k
from lookalike.progress import NoProgress, Progress

HEADLINE_K = (1, 5, 10)
BATCH = 1024


def sample_queries(ids: np.ndarray, labelled: np.ndarray, max_queries: int, seed: int) -> np.ndarray:
    """Sorted ids (m,) of at most ``max_queries`` labelled images (a seeded sample)."""
    queries = ids[labelled]
    if queries.size > max_queries:
        queries = np.sort(np.random.default_rng(seed).choice(queries, max_queries, replace=False))
    return queries


def neighbours(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int,
               progress: Progress | None = None) -> np.ndarray:
    """Leave-one-out neighbour ids (m, k) of ``queries`` among all ``ids`` (n,) / ``vectors`` (n, d)."""
    from lookalike.index import create_index, member_neighbors

    progress = progress or NoProgress()
    index = create_index(IndexConfig(kind="exact"), n_vectors=len(ids)).fit(vectors, ids)
    progress.phase("retrieval (leave-one-out)", len(queries), unit="queries")
    parts = []
    for start in range(0, len(queries), BATCH):
        batch = queries[start : start + BATCH]
        parts.append(member_neighbors(index, batch, k)[0])
        progress.advance(len(batch))
    return np.concatenate(parts) if parts else np.empty((0, k), dtype=np.int64)


def retrieval_scores(queries: np.ndarray, neighbour_ids: np.ndarray, labels: dict[int, Any]) -> dict[str, Any]:
    """precision@1/5/10, recall@10, mAP@10 and the precision@k curve of ``neighbour_ids`` (m, K).

    ``labels`` maps every labelled id to its label; K (the hits' width) bounds every k.
    """
    hits, n_relevant = leave_one_out_hits(queries, neighbour_ids, labels)
    width = hits.shape[1]
    scores: dict[str, Any] = {f"precision_at_{k}": precision_at_k(hits, k) for k in HEADLINE_K if k <= width}
    top = min(10, width)
    scores[f"recall_at_{top}"] = recall_at_k(hits, n_relevant, top)
    scores[f"map_at_{top}"] = map_at_k(hits, n_relevant, top)
    ks = np.arange(1, width + 1)
    ideal = (np.minimum(ks[None, :], n_relevant[:, None]) / ks[None, :]).mean(axis=0)
    scores["precision_curve"] = {"k": ks.tolist(), "precision": [precision_at_k(hits, int(k)) for k in ks],
                                 "best_possible": [float(v) for v in ideal]}
    return scores


def evaluate_retrieval(ids: np.ndarray, vectors: np.ndarray, labels: np.ndarray, *, max_queries: int,
                       curve_k: int, seed: int, progress: Progress | None = None) -> dict[str, Any]:
    """The report's retrieval section for ``ids`` (n,), ``vectors`` (n, d), ``labels`` (n,) (None = unlabelled)."""
    labelled = np.array([label is not None for label in labels], dtype=bool)
    label_of = {int(i): label for i, label in zip(ids[labelled], labels[labelled])}
    queries = sample_queries(ids, labelled, max_queries, seed)
    k = min(curve_k, len(ids) - 1)
    nbrs = neighbours(ids, vectors, queries, k, progress)
    return {
        "queries": int(queries.size), "labelled_images": int(labelled.sum()), "sampled": bool(queries.size < labelled.sum()),
        "index": "exact", "protocol": "leave-one-out: each query's own image is excluded; a neighbour is relevant "
        "when it has the query's label (unlabelled neighbours are not)",
        **retrieval_scores(queries, nbrs, label_of),
    }

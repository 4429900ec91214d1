"""Leave-one-out retrieval quality with query-time re-ranking (``compare`` rows, tuning).

Every labelled image queries all the others exactly as :class:`lookalike.search.searcher.Searcher`
does with ``rerank=METHOD``: a pool of its exact nearest neighbours (itself excluded) re-ordered
by :func:`lookalike.search.rerank.rerank_pool`. DBA vectors are computed over the whole library
(as stored), so a query image is part of the library it searches, as in any leave-one-out measure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike.search.rerank import RerankConfig, check_method, dba_vectors, neighbour_graph, rerank_pool


def reranked_neighbours(
    vectors: np.ndarray, method: str, k: int, config: RerankConfig, augmented: np.ndarray | None = None
) -> np.ndarray:
    """Row indices (n, k) of each row's k best others after re-ranking.

    Parameters
    ----------
    vectors : (n, d) unit vectors of the library.
    method : a re-ranking method (``none`` = exact order).
    k : results per query.
    config : re-ranking settings (``pool`` >= k candidates).
    augmented : (n, d) DBA vectors (computed here for ``dba`` when None).
    """
    check_method(method)
    pool = max(config.pool, k)
    rows, _ = neighbour_graph(vectors, pool)
    if method == "none":
        return rows[:, :k]
    if method == "dba" and augmented is None:
        augmented = dba_vectors(vectors, config.dba_n, config.dba_alpha)
    out = np.empty((len(vectors), min(k, rows.shape[1])), dtype=np.int64)
    for i, candidates in enumerate(rows):
        extra = None if augmented is None else augmented[candidates]
        order, _ = rerank_pool(method, vectors[i], vectors[candidates], config, extra)
        out[i] = candidates[order[: out.shape[1]]]
    return out


def rerank_precision(vectors: np.ndarray, labels: np.ndarray, method: str, k: int, config: RerankConfig) -> dict[str, Any]:
    """Leave-one-out P@k and mAP@k of ``method`` on (n, d) vectors with labels (n,)."""
    from lookalike.evaluate.retrieval import quality

    neighbours = reranked_neighbours(vectors, method, k, config)
    ids = np.arange(len(vectors))
    return quality(ids, neighbours, {int(i): str(label) for i, label in zip(ids, labels)}, k)

"""``exact``: brute-force inner product (``IndexFlatIP`` inside an ``IndexIDMap2``).

Exact by construction; removal is a true delete (the vectors after it shift down, O(n)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike._faiss import import_faiss
from lookalike.index.base import VectorIndex, register


def id_map_view(raw: Any) -> np.ndarray:
    """The ``id_map`` of a FAISS ``IndexIDMap`` as a numpy view (n,) int64: writes go through."""
    faiss = import_faiss()
    size = raw.id_map.size()
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(faiss.rev_swig_ptr(raw.id_map.data(), size))


def wraps(raw: Any, inner_type: str) -> bool:
    """Whether ``raw`` is an ``IndexIDMap2`` around an inner-product index named ``inner_type``."""
    faiss = import_faiss()
    if not isinstance(raw, faiss.IndexIDMap2):
        return False
    inner = faiss.downcast_index(raw.index)
    return type(inner).__name__ == inner_type and inner.metric_type == faiss.METRIC_INNER_PRODUCT


@register
class ExactIndex(VectorIndex):
    """Exact cosine search over every stored vector."""

    kind = "exact"

    def _new_faiss(self, X: np.ndarray) -> Any:
        faiss = import_faiss()
        return faiss.IndexIDMap2(faiss.IndexFlatIP(X.shape[1]))

    def _add(self, ids: np.ndarray, X: np.ndarray) -> None:
        self.index_.add_with_ids(X, ids)

    def _remove(self, ids: np.ndarray) -> None:
        faiss = import_faiss()
        self.index_.remove_ids(faiss.IDSelectorBatch(ids))

    def _live_ids(self) -> np.ndarray:
        return id_map_view(self.index_).copy()

    def _knn(
        self, queries: np.ndarray, k: int, selector: Any, **options: int
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = import_faiss()
        params = faiss.SearchParameters(sel=selector) if selector is not None else None
        distances, labels = self.index_.search(queries, k, params=params)
        return np.asarray(distances), np.asarray(labels)

    @classmethod
    def _recognizes(cls, raw: Any) -> bool:
        return wraps(raw, "IndexFlatIP") or wraps(raw, "IndexFlat")

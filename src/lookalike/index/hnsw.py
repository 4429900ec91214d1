"""``hnsw``: graph search (``IndexHNSWFlat``, inner product, inside an ``IndexIDMap2``).

FAISS cannot delete from an HNSW graph, so :meth:`HNSWIndex.remove` leaves tombstones: the
removed rows' ids become ``-1`` in the id map (so they are saved with the index) and every
search passes an ``IDSelector`` that rejects ``-1``. Removed vectors still route the graph walk
but are never returned. Past ``max_tombstone_fraction`` removed rows, :attr:`needs_rebuild`
turns true and :meth:`rebuild` builds a fresh graph from the live vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike._faiss import import_faiss
from lookalike.config import IndexConfig
from lookalike.index.base import VectorIndex, register
from lookalike.index.flat import id_map_view, wraps

TOMBSTONE = -1


@register
class HNSWIndex(VectorIndex):
    """Hierarchical navigable small-world graph over unit vectors.

    Parameters
    ----------
    m : neighbours per node.
    ef_construction : beam width while inserting.
    ef_search : default beam width while searching (raised to k when k is larger).
    max_tombstone_fraction : removed share of rows past which :attr:`needs_rebuild` is true.
    """

    kind = "hnsw"
    search_options = frozenset({"ef_search"})

    def __init__(
        self, m: int = 32, ef_construction: int = 80, ef_search: int = 64, max_tombstone_fraction: float = 0.2
    ) -> None:
        super().__init__()
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.max_tombstone_fraction = max_tombstone_fraction
        self._n_tombstones = 0

    @classmethod
    def from_config(cls, config: IndexConfig, centroids: Any = None) -> HNSWIndex:
        return cls(
            m=config.hnsw_m,
            ef_construction=config.ef_construction,
            ef_search=config.ef_search,
            max_tombstone_fraction=config.max_tombstone_fraction,
        )

    # ------------------------------------------------------------ tombstones
    @property
    def n_tombstones(self) -> int:
        """Rows removed but still in the graph."""
        self._check_fitted()
        return self._n_tombstones

    @property
    def needs_rebuild(self) -> bool:
        """True once more than ``max_tombstone_fraction`` of the rows are tombstones."""
        rows = self.index_.ntotal if hasattr(self, "index_") else 0
        return rows > 0 and self.n_tombstones / rows > self.max_tombstone_fraction

    def rebuild(self) -> HNSWIndex:
        """Rebuild the graph from the live vectors only (drops tombstones); returns self."""
        self._check_writable()
        ids = self.ids().copy()
        X = self.reconstruct(ids)
        self._build(X)
        if len(ids):
            self._add(ids, X)
        return self

    # ------------------------------------------------------------ hooks
    def _new_faiss(self, X: np.ndarray) -> Any:
        faiss = import_faiss()
        graph = faiss.IndexHNSWFlat(X.shape[1], self.m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = self.ef_construction
        graph.hnsw.efSearch = self.ef_search
        self._n_tombstones = 0
        return faiss.IndexIDMap2(graph)

    def _add(self, ids: np.ndarray, X: np.ndarray) -> None:
        self.index_.add_with_ids(X, ids)

    def _remove(self, ids: np.ndarray) -> None:
        id_map = id_map_view(self.index_)
        rows = np.flatnonzero(np.isin(id_map, ids))
        id_map[rows] = TOMBSTONE
        self.index_.construct_rev_map()
        self._n_tombstones += len(rows)

    def _live_ids(self) -> np.ndarray:
        id_map = id_map_view(self.index_)
        return np.asarray(id_map[id_map != TOMBSTONE].copy())

    def _knn(
        self, queries: np.ndarray, k: int, selector: Any, **options: int
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = import_faiss()
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(int(options.get("ef_search", self.ef_search)), k)
        keep_alive = [selector]
        if self._n_tombstones:
            tombstones = faiss.IDSelectorRange(TOMBSTONE, TOMBSTONE + 1)
            live = faiss.IDSelectorNot(tombstones)
            keep_alive += [tombstones, live]
            selector = live if selector is None else faiss.IDSelectorAnd(live, selector)
            keep_alive.append(selector)
        if selector is not None:
            params.sel = selector
        distances, labels = self.index_.search(queries, k, params=params)
        del keep_alive
        return np.asarray(distances), np.asarray(labels)

    def _sync_settings(self) -> None:
        import_faiss().downcast_index(self.index_.index).hnsw.efSearch = self.ef_search

    def _adopt(self, raw: Any, read_only: bool) -> None:
        super()._adopt(raw, read_only)
        hnsw = import_faiss().downcast_index(raw.index).hnsw
        self.m = int(hnsw.nb_neighbors(1))
        self.ef_construction = int(hnsw.efConstruction)
        self.ef_search = int(hnsw.efSearch)
        self._n_tombstones = int((id_map_view(raw) == TOMBSTONE).sum())

    @classmethod
    def _recognizes(cls, raw: Any) -> bool:
        return wraps(raw, "IndexHNSWFlat")

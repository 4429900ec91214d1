"""A vector index as the catalog sees it now: a committed index plus what changed since it was written.

Readers (the HTTP API, a ``search`` while ``index`` runs elsewhere) cannot write the index, and
the file they load may lag the catalog. :class:`LiveIndex` answers as if it did not: images
embedded since the file was written are searched exactly in a small in-memory ``extra`` index
and merged by similarity; images removed since are excluded (``stale``). Writers keep both
empty by updating the file first (:func:`lookalike.search.library_index.update_index`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError
from lookalike.index import ExactIndex, MatchCalibrator, Neighbors, VectorIndex, search
from lookalike.index._checks import as_ids


def rows_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions of ``wanted`` (all present) in the unique, unsorted ``ids`` (n,): (m,) int64."""
    order = np.argsort(ids, kind="stable")
    return order[np.searchsorted(ids, wanted, sorter=order)]


@dataclass
class LiveIndex:
    """``index`` (stored or built in memory) + ``extra`` (exact, images newer than the file)
    - ``stale`` (sorted ids in the file no longer in the catalog)."""

    index: VectorIndex
    kind: str
    path: Path | None
    extra: ExactIndex | None
    stale: np.ndarray

    @classmethod
    def overlay(cls, index: VectorIndex, path: Path, ids_now: np.ndarray, embeddings: Any, reducer: Any) -> LiveIndex:
        """``index`` corrected to the images ``ids_now`` (n,) with raw ``embeddings`` (n, D)."""
        from lookalike.reduce.stored import transform_all

        stored = index.ids()
        stale = np.setdiff1d(stored, ids_now)
        new = np.setdiff1d(ids_now, stored)
        extra = None
        if len(new):
            rows = np.sort(rows_of(ids_now, new))  # file order: cheap reads from the mapped rows
            extra = ExactIndex().fit(transform_all(reducer, np.asarray(embeddings[rows])), ids_now[rows])
        return cls(index, index.kind, path, extra, stale)

    @property
    def dim(self) -> int:
        return self.index.dim

    @property
    def is_plain(self) -> bool:
        """True when the index alone matches the catalog (nothing overlaid)."""
        return self.extra is None and len(self.stale) == 0

    def __len__(self) -> int:
        return len(self.index) - len(self.stale) + (len(self.extra) if self.extra is not None else 0)

    def ids(self) -> np.ndarray:
        """Every searchable id, sorted: (n,) int64."""
        own = np.setdiff1d(self.index.ids(), self.stale, assume_unique=True)
        return own if self.extra is None else np.union1d(own, self.extra.ids())

    def contains(self, ids: Any) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        found = self.index.contains(ids) & ~np.isin(ids, self.stale)
        return found if self.extra is None else found | self.extra.contains(ids)

    def reconstruct(self, ids: Any) -> np.ndarray:
        """Vectors of searchable ids (m,): (m, d) float32; an unknown id raises."""
        ids = as_ids(ids, unique=False)
        missing = ids[~self.contains(ids)]
        if len(missing):
            raise InvalidParameterError(f"image {int(missing[0])} has no vector in the library")
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        in_extra = np.zeros(len(ids), dtype=bool) if self.extra is None else self.extra.contains(ids)
        if in_extra.any():
            out[in_extra] = self.extra.reconstruct(ids[in_extra])  # type: ignore[union-attr]
        if (~in_extra).any():
            out[~in_extra] = self.index.reconstruct(ids[~in_extra])
        return out

    def plain(self) -> VectorIndex:
        """A VectorIndex equal to this one: the index itself, or an exact copy of all live vectors."""
        if self.is_plain:
            return self.index
        ids = self.ids()
        return ExactIndex().fit(self.reconstruct(ids), ids)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        allowed_ids: Any = None,
        exclude_ids: Any = None,
        clusters: Any = None,
        calibrator: MatchCalibrator | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> list[Neighbors]:
        """:func:`lookalike.index.search` over index + extra - stale, merged by similarity."""
        excluded = self.stale if exclude_ids is None else np.union1d(self.stale, as_ids(exclude_ids, unique=False))
        scored: dict[str, Any] = {"clusters": clusters, "calibrator": calibrator, "allowed_ids": allowed_ids}
        main = search(self.index, queries, k, exclude_ids=excluded, nprobe=nprobe, ef_search=ef_search, **scored)
        if self.extra is None:
            return main
        extra = search(self.extra, queries, k, exclude_ids=exclude_ids, **scored)
        return [_merge(a, b, k) for a, b in zip(main, extra)]


def _merge(a: Neighbors, b: Neighbors, k: int) -> Neighbors:
    """The best k of two result lists, by similarity (ties: ``a`` first)."""
    sims = np.concatenate([a.similarities, b.similarities])
    order = np.argsort(-sims, kind="stable")[:k]

    def pick(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
        return None if x is None or y is None else np.concatenate([x, y])[order]

    return Neighbors(
        ids=np.concatenate([a.ids, b.ids])[order],
        similarities=sims[order],
        distances=np.concatenate([a.distances, b.distances])[order],
        confidences=pick(a.confidences, b.confidences),
        probabilities=pick(a.probabilities, b.probabilities),
    )

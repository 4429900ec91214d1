"""Duplicate detection: identical content, perceptual-hash near duplicates, semantic near duplicates.

Each finder returns :class:`DuplicatePair` rows with a human reason and a score in [0, 1];
:func:`group_pairs` joins them into groups with union-find (a pair of any kind links two items).
No finder builds an n x n matrix: perceptual hashes are searched with FAISS binary range search
(brute-force Hamming, in batches, up to :data:`BINARY_FLAT_MAX` hashes; exact multi-index hashing
beyond) and semantic pairs come from k-NN on the vector index in batches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike._faiss import import_faiss
from lookalike.embed.phash import HASH_BITS, hashes_to_bytes
from lookalike.errors import InvalidParameterError
from lookalike.index._checks import as_ids
from lookalike.index.base import VectorIndex
from lookalike.index.search import member_neighbors

BINARY_FLAT_MAX = 100_000
"""Up to this many hashes brute force is faster: 5.5 s at 100k with t = 8 on 2 cores, against
5.6 s for 3 x 21-bit multi-hashing (and 22 s for 4 x 16), which grows linearly (19.5 s at 300k)
where brute force grows quadratically (~50 s at 300k)."""
MULTIHASH_TABLES = 3
MULTIHASH_BITS = 21
"""Multi-index hashing keys: 3 substrings of 21 bits (63 of the 64 bits)."""
MULTIHASH_MAX_FLIPS = 2
"""Bit flips explored per substring; larger thresholds (t > 8) use brute force."""
QUERY_BATCH = 4096


@dataclass(frozen=True)
class DuplicatePair:
    """Items ``a < b`` are duplicates for ``reason``; ``score`` 1 = certain / identical."""

    a: int
    b: int
    reason: str
    score: float


@dataclass(frozen=True)
class DuplicateGroup:
    """Items linked by duplicate pairs: ids (sorted, >= 2) and the pairs that link them."""

    ids: list[int]
    pairs: list[DuplicatePair]


def identical_pairs(ids: Any, content_hashes: Sequence[Hashable]) -> list[DuplicatePair]:
    """Pairs of items with equal content hashes (each group as a star from its smallest id)."""
    ids = as_ids(ids, n=len(content_hashes))
    by_hash: dict[Hashable, list[int]] = defaultdict(list)
    for item, digest in zip(ids.tolist(), content_hashes):
        by_hash[digest].append(item)
    pairs: list[DuplicatePair] = []
    for members in by_hash.values():
        first, *rest = sorted(members)
        pairs.extend(DuplicatePair(first, other, "identical content", 1.0) for other in rest)
    return pairs


def phash_pairs(ids: Any, hashes: Any, max_distance: int = 8) -> list[DuplicatePair]:
    """Pairs whose 64-bit pHashes differ in at most ``max_distance`` bits (exact search).

    ids (n,), hashes (n,) uint64. Score ``1 - distance / 64``.
    """
    if not 0 <= max_distance < HASH_BITS:
        raise InvalidParameterError(f"max_distance must be in [0, {HASH_BITS}), got {max_distance}")
    codes = hashes_to_bytes(hashes)
    ids = as_ids(ids, n=len(codes))
    if len(ids) < 2:
        return []
    index = _binary_index(codes, max_distance)
    pairs: list[DuplicatePair] = []
    for start in range(0, len(codes), QUERY_BATCH):
        lims, dist, found = index.range_search(codes[start : start + QUERY_BATCH], max_distance + 1)
        for row in range(len(lims) - 1):
            i = start + row
            for j, d in zip(found[lims[row] : lims[row + 1]], dist[lims[row] : lims[row + 1]]):
                if j > i:
                    a, b = sorted((int(ids[i]), int(ids[j])))
                    pairs.append(DuplicatePair(a, b, f"perceptual hash distance {int(d)}/64", 1 - d / HASH_BITS))
    return pairs


def _binary_index(codes: np.ndarray, max_distance: int) -> Any:
    """A FAISS binary index over codes (n, 8) whose range search is exact up to max_distance.

    Multi-index hashing: two codes within t bits differ in at most floor(t / 3) bits of one of
    the 3 hashed substrings (pigeonhole), so exploring that many flips per table is exact.
    """
    faiss = import_faiss()
    flips = max_distance // MULTIHASH_TABLES
    if len(codes) > BINARY_FLAT_MAX and flips <= MULTIHASH_MAX_FLIPS:
        index = faiss.IndexBinaryMultiHash(HASH_BITS, MULTIHASH_TABLES, MULTIHASH_BITS)
        index.nflip = flips
    else:
        index = faiss.IndexBinaryFlat(HASH_BITS)
    index.add(codes)
    return index


def semantic_pairs(
    index: VectorIndex, min_similarity: float = 0.95, *, k: int = 16, vectors: Any = None
) -> list[DuplicatePair]:
    """Pairs of stored items with cosine similarity >= ``min_similarity``.

    Searches each item's k nearest others in batches; an item whose k-th neighbour still passes
    is searched again with 4x k, so dense groups are complete while memory stays O(batch * k).
    ``vectors`` (n, d) in ``index.ids()`` order saves reading them back from the index.
    Exact with the ``exact`` kind; as good as the index's recall otherwise.
    """
    if not -1.0 <= min_similarity <= 1.0:
        raise InvalidParameterError(f"min_similarity must be in [-1, 1], got {min_similarity}")
    ids = index.ids().copy()
    rows = np.arange(len(ids))
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    while len(rows) and len(ids) > 1:
        k = min(k, len(ids) - 1)
        given = None if vectors is None else np.asarray(vectors)[rows]
        nbr_ids, nbr_sims = member_neighbors(index, ids[rows], k, vectors=given)
        passing = np.nan_to_num(nbr_sims, nan=-2.0) >= min_similarity
        q, c = np.nonzero(passing)
        found.append((ids[rows][q], nbr_ids[q, c], nbr_sims[q, c]))
        if k == len(ids) - 1:
            break
        rows = rows[passing[:, -1]]
        k *= 4
    return _unique_pairs(*(np.concatenate(parts) for parts in zip(*found))) if found else []


def _unique_pairs(a: np.ndarray, b: np.ndarray, sims: np.ndarray) -> list[DuplicatePair]:
    """DuplicatePairs from ids a (p,), b (p,) and their similarities (p,), each pair once."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    _, first = np.unique(np.stack([lo, hi], axis=1), axis=0, return_index=True)
    return [DuplicatePair(int(lo[i]), int(hi[i]), f"cosine {sims[i]:.2f}", float(sims[i])) for i in np.sort(first)]


def group_pairs(pairs: Iterable[DuplicatePair]) -> list[DuplicateGroup]:
    """Connected groups of the pairs (union-find), largest first, then by smallest id."""
    pairs = list(pairs)
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for pair in pairs:
        ra, rb = root(pair.a), root(pair.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = defaultdict(list)
    for node in parent:
        members[root(node)].append(node)
    links: dict[int, list[DuplicatePair]] = defaultdict(list)
    for pair in pairs:
        links[root(pair.a)].append(pair)
    groups = [DuplicateGroup(sorted(nodes), links[r]) for r, nodes in members.items()]
    return sorted(groups, key=lambda g: (-len(g.ids), g.ids[0]))


def find_duplicates(
    ids: Any = None,
    *,
    content_hashes: Sequence[Hashable] | None = None,
    phashes: Any = None,
    index: VectorIndex | None = None,
    max_hash_distance: int = 8,
    min_similarity: float = 0.95,
) -> list[DuplicateGroup]:
    """Duplicate groups from every source given.

    ``content_hashes`` and ``phashes`` (n,) are aligned with ``ids`` (n,); semantic pairs
    cover every item in ``index``.
    """
    if ids is None and (content_hashes is not None or phashes is not None):
        raise InvalidParameterError("ids are required with content_hashes or phashes (one id per hash)")
    pairs: list[DuplicatePair] = []
    if content_hashes is not None:
        pairs += identical_pairs(ids, content_hashes)
    if phashes is not None:
        pairs += phash_pairs(ids, phashes, max_hash_distance)
    if index is not None:
        pairs += semantic_pairs(index, min_similarity)
    return group_pairs(pairs)

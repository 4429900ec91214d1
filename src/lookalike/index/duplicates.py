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
from lookalike.index.dihedral import EDIT_OF, transform_hashes
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
    """Items ``a < b`` are duplicates for ``reason``; ``score`` 1 = certain / identical.

    ``edit`` names the edit the evidence points to ("flip", "rotation", …), or None.
    """

    a: int
    b: int
    reason: str
    score: float
    edit: str | None = None


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


def phash_pairs(
    ids: Any, hashes: Any, max_distance: int = 8, *, transforms: Sequence[str] = ("identity",),
    name: str = "perceptual hash",
) -> list[DuplicatePair]:
    """Pairs whose 64-bit pHashes differ in at most ``max_distance`` bits (exact search).

    ids (n,), hashes (n,) uint64 (any 64-bit hash: ``name`` names it in the reasons, e.g.
    "difference hash"). Score ``1 - distance / 64``. Each transform of
    :data:`lookalike.index.dihedral.QUERY_TRANSFORMS` given also searches every hash as that
    transform predicts it for the flipped or turned picture; a pair keeps its smallest distance,
    the untransformed one on ties, and names the transform and its edit.
    """
    if not 0 <= max_distance < HASH_BITS:
        raise InvalidParameterError(f"max_distance must be in [0, {HASH_BITS}), got {max_distance}")
    codes = hashes_to_bytes(hashes)
    ids = as_ids(ids, n=len(codes))
    if len(ids) < 2:
        return []
    # Transforms only permute and invert bits, so d(T(h_i), h_j) = d(h_i, T^-1(h_j)): one search
    # of the plain hashes over every stored hash turned back by each transform finds what one
    # search per transform would, at little more than the cost of one (a query's probes do not
    # grow with the index).
    n = len(codes)
    turned_back = [codes if t == "identity" else hashes_to_bytes(transform_hashes(hashes, _INVERSE.get(t, t)))
                   for t in transforms]  # fmt: skip
    index = _binary_index(np.concatenate(turned_back), max_distance)
    best: dict[tuple[int, int], tuple[int, int, str]] = {}  # (a, b) -> (distance, order, transform)
    for i, row, d in _range_pairs(index, codes, max_distance):
        order, j = divmod(row, n)
        transform = transforms[order]
        if j == i or (transform == "identity" and j < i):
            continue
        a, b = int(ids[i]), int(ids[j])
        turn = transform if a < b else _INVERSE.get(transform, transform)
        key, value = (min(a, b), max(a, b)), (d, order, turn)
        if key not in best or value < best[key]:
            best[key] = value
    pairs = []
    for (a, b), (d, _, turn) in best.items():
        after = "" if turn == "identity" else f" after {turn.replace('-', ' ')}"
        pairs.append(DuplicatePair(a, b, f"{name} distance {d}/64{after}", 1 - d / HASH_BITS, EDIT_OF.get(turn)))
    return pairs


_INVERSE = {"rotate-90": "rotate-270", "rotate-270": "rotate-90"}
TRANSFORM_MARGIN = 10
TRANSFORM_NAMED_BITS = 20
"""A near+semantic pair is named after a transform when the transformed pHashes are within 20
bits and beat the untransformed distance by 10: far apart, the best of a dozen transforms often
wins by chance. On the TUNE set of benchmarks/bench_duplicates.py, 1 % of the crops within 26
bits are then named a flip or turn (19 % when any transform that wins by 6 names the pair), and
97 % of the pictures flipped and written over (their hashes predicted) are still named flips."""


def confirmed_pairs(
    candidates: Sequence[DuplicatePair], ids: Any, hashes: Any, max_distance: int,
    *, transforms: Sequence[str] = ("identity",),
) -> list[DuplicatePair]:
    """The ``candidates`` whose pHashes also differ in at most ``max_distance`` bits.

    Two pieces of evidence, each too weak alone, that agree: candidates are pairs of items with
    a cosine too low for a semantic duplicate (their ``score``), and the hash distance allowed is
    too large for a near duplicate. A picture with text written over it is such a pair: the
    text moves the pHash of a plain picture by 14 to 20 bits while the vectors stay close, and
    two different pictures are rarely close both ways (see ``DUPLICATE_CONFIRM_BITS``).

    ids (n,) and hashes (n,) uint64 aligned; candidates naming an item without a hash are
    dropped. The distance is the smallest over ``transforms`` (as in :func:`phash_pairs`, either
    way round), the untransformed one unless a transform clearly beats it
    (:data:`TRANSFORM_NAMED_BITS`) or it is too large; the pair keeps its score, and its edit is
    the transform's only when the transform clearly won.
    """
    if not 0 <= max_distance < HASH_BITS:
        raise InvalidParameterError(f"max_distance must be in [0, {HASH_BITS}), got {max_distance}")
    ids = as_ids(ids, n=len(hashes_to_bytes(hashes)))
    row_of = {item: row for row, item in enumerate(ids.tolist())}
    kept = [p for p in candidates if p.a in row_of and p.b in row_of]
    if not kept:
        return []
    a = np.array([row_of[p.a] for p in kept])
    b = np.array([row_of[p.b] for p in kept])
    hashes = np.asarray(hashes, dtype=np.uint64)
    best = np.full(len(kept), HASH_BITS + 1, dtype=np.int64)
    name = np.full(len(kept), "identity", dtype=object)
    for transform in transforms:  # in order: the first transform wins ties, as in phash_pairs
        moved = hashes if transform == "identity" else transform_hashes(hashes, transform)
        forward = np.bitwise_count(moved[a] ^ hashes[b]).astype(np.int64)  # a turned into b
        backward = np.bitwise_count(hashes[a] ^ moved[b]).astype(np.int64)  # b turned into a
        for distance, named in ((forward, transform), (backward, _INVERSE.get(transform, transform))):
            better = distance < best
            best[better], name[better] = distance[better], named
    plain = np.bitwise_count(hashes[a] ^ hashes[b]).astype(np.int64)
    clear = (best <= plain - TRANSFORM_MARGIN) & (best <= TRANSFORM_NAMED_BITS)  # else maybe by chance
    chance = ~clear & (plain <= max_distance)
    best[chance], name[chance] = plain[chance], "identity"
    pairs = []
    for pair, d, named, edit_is_clear in zip(kept, best.tolist(), name.tolist(), clear.tolist()):
        if d > max_distance:
            continue
        after = "" if named == "identity" else f" after {named.replace('-', ' ')}"
        reason = f"perceptual hash distance {d}/64{after} and {pair.reason}"
        edit = EDIT_OF.get(named, pair.edit) if edit_is_clear else pair.edit
        pairs.append(DuplicatePair(pair.a, pair.b, reason, pair.score, edit))
    return pairs


def _range_pairs(index: Any, queries: np.ndarray, max_distance: int) -> Iterable[tuple[int, int, int]]:
    """(query row, stored row, distance) of every stored code within ``max_distance`` of a query."""
    for start in range(0, len(queries), QUERY_BATCH):
        lims, dist, found = index.range_search(queries[start : start + QUERY_BATCH], max_distance + 1)
        for row in range(len(lims) - 1):
            for j, d in zip(found[lims[row] : lims[row + 1]].tolist(), dist[lims[row] : lims[row + 1]].tolist()):
                yield start + row, j, int(d)


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
    index: VectorIndex, min_similarity: float = 0.95, *, k: int = 16, vectors: Any = None, edit: str | None = None,
    complete_above: float | None = None,
) -> list[DuplicatePair]:
    """Pairs of stored items with cosine similarity >= ``min_similarity``.

    Searches each item's k nearest others in batches; an item whose k-th neighbour still passes
    (reaches ``complete_above``, default ``min_similarity``) is searched again with 4x k, so dense
    groups are complete while memory stays O(batch * k). Pairs below ``complete_above`` come
    from each item's first k neighbours only: a loose threshold costs no more searches.
    ``vectors`` (n, d) in ``index.ids()`` order saves reading them back from the index. With
    ``edit`` they are the vectors of the items so edited (e.g. "flip": the mirror images), and
    each pair names it. Exact with the ``exact`` kind; as good as the index's recall otherwise.
    """
    if not -1.0 <= min_similarity <= 1.0:
        raise InvalidParameterError(f"min_similarity must be in [-1, 1], got {min_similarity}")
    ids = index.ids().copy()
    rows = np.arange(len(ids))
    again = min_similarity if complete_above is None else max(min_similarity, complete_above)
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
        rows = rows[np.nan_to_num(nbr_sims[:, -1], nan=-2.0) >= again]
        k *= 4
    if not found:
        return []
    a, b, sims = (np.concatenate(parts) for parts in zip(*found))
    return _unique_pairs(a, b, sims, edit)


def _unique_pairs(a: np.ndarray, b: np.ndarray, sims: np.ndarray, edit: str | None) -> list[DuplicatePair]:
    """DuplicatePairs from ids a (p,), b (p,) and their similarities (p,), each pair once (best)."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    by_score = np.argsort(-sims, kind="stable")
    _, first = np.unique(np.stack([lo, hi], axis=1)[by_score], axis=0, return_index=True)
    after = f" after a {edit}" if edit else ""
    return [
        DuplicatePair(int(lo[i]), int(hi[i]), f"cosine {sims[i]:.2f}{after}", float(sims[i]), edit)
        for i in np.sort(by_score[first])
    ]


def group_pairs(
    pairs: Iterable[DuplicatePair], attach: Iterable[DuplicatePair] = (), *, found_above: float | None = None
) -> list[DuplicateGroup]:
    """Connected groups of the pairs (union-find), largest first, then by smallest id.

    ``attach`` holds weaker evidence, taken after every pair of ``pairs`` in the order given
    (best first): such a pair is kept only when one of its items is still alone, so it adds one
    item to a group but never merges two groups (one false link between two groups of copies
    would put every copy of one picture with every copy of the other). With ``found_above``, a
    pair of two items both still alone is kept only when its score reaches it: weak evidence
    joins groups but starts one only when stronger. Groups list the pairs kept.
    """
    parent: dict[int, int] = {}
    size: dict[int, int] = {}

    def root(x: int) -> int:
        if x not in parent:
            parent[x], size[x] = x, 1
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    kept: list[DuplicatePair] = []
    for pair, weak in [*((p, False) for p in pairs), *((p, True) for p in attach)]:
        ra, rb = root(pair.a), root(pair.b)
        if weak and ra != rb and min(size[ra], size[rb]) > 1:
            continue
        if weak and size[ra] == size[rb] == 1 and ra != rb and found_above is not None and pair.score < found_above:
            continue
        kept.append(pair)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
            size[min(ra, rb)] = size[ra] + size[rb]
    members: dict[int, list[int]] = defaultdict(list)
    for node in parent:
        members[root(node)].append(node)
    links: dict[int, list[DuplicatePair]] = defaultdict(list)
    for pair in kept:
        links[root(pair.a)].append(pair)
    groups = [DuplicateGroup(sorted(nodes), links[r]) for r, nodes in members.items() if r in links]
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

"""Duplicates: identical content, pHash near duplicates, semantic near duplicates, grouping."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.index import ExactIndex, duplicates
from lookalike.index.dihedral import QUERY_TRANSFORMS, TRANSFORMS, transform_hashes
from lookalike.index.duplicates import (
    DuplicatePair,
    confirmed_pairs,
    find_duplicates,
    group_pairs,
    identical_pairs,
    phash_pairs,
    semantic_pairs,
)


def flip_bits(value: int, count: int, rng: np.random.Generator) -> int:
    for bit in rng.choice(64, count, replace=False):
        value ^= 1 << int(bit)
    return value


def planted_hashes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n random 64-bit hashes; every 10th is a copy of the previous one with 0..15 bits flipped."""
    rng = np.random.default_rng(seed)
    hashes = [int(h) for h in rng.integers(0, 2**64, n, dtype=np.uint64)]
    for i in range(1, n, 10):
        hashes[i] = flip_bits(hashes[i - 1], int(rng.integers(0, 16)), rng)
    ids = np.arange(n, dtype=np.int64) * 7 + 3
    return ids, np.array(hashes, dtype=np.uint64)


def brute_hash_pairs(ids, hashes, t):
    xor = hashes[:, None] ^ hashes[None, :]
    dist = np.bitwise_count(xor)
    i, j = np.nonzero(np.triu(dist <= t, k=1))
    return {(int(ids[a]), int(ids[b]), int(dist[a, b])) for a, b in zip(i, j)}


@pytest.mark.parametrize("flat_max", [10**9, 0], ids=["flat", "multihash"])
@pytest.mark.parametrize("threshold", [0, 5, 8, 11], ids=lambda t: f"t{t}")
def test_phash_pairs_equal_brute_force_hamming(threshold, flat_max, monkeypatch):
    monkeypatch.setattr(duplicates, "BINARY_FLAT_MAX", flat_max)  # exercise both search paths
    ids, hashes = planted_hashes(1500)
    found = phash_pairs(ids, hashes, threshold)
    assert {(p.a, p.b, round((1 - p.score) * 64)) for p in found} == brute_hash_pairs(ids, hashes, threshold)
    assert all(p.reason == f"perceptual hash distance {round((1 - p.score) * 64)}/64" for p in found)
    assert len(found) > 0


def turned_copies(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Planted hashes where every 10th is also a flipped or turned copy (predicted hash, 0..15 bits off)."""
    ids, hashes = planted_hashes(n, seed)
    rng = np.random.default_rng(seed)
    for k, i in enumerate(range(2, n, 10)):
        turned = transform_hashes(hashes[i - 2 : i - 1], QUERY_TRANSFORMS[k % len(QUERY_TRANSFORMS)])[0]
        hashes[i] = flip_bits(int(turned), int(rng.integers(0, 16)), rng)
    return ids, hashes


@pytest.mark.parametrize("flat_max", [10**9, 0], ids=["flat", "multihash"])
def test_transformed_phash_pairs_equal_brute_force_over_every_transform(flat_max, monkeypatch):
    monkeypatch.setattr(duplicates, "BINARY_FLAT_MAX", flat_max)  # one search of every turned-back hash
    ids, hashes = turned_copies(1200)
    best = np.full((len(ids), len(ids)), 64)
    for transform in TRANSFORMS:  # all eight, both ways round
        d = np.bitwise_count(transform_hashes(hashes, transform)[:, None] ^ hashes[None, :]).astype(int)
        best = np.minimum(best, np.minimum(d, d.T))
    i, j = np.nonzero(np.triu(best <= 9, k=1))
    expected = {(min(ids[a], ids[b]), max(ids[a], ids[b])): int(best[a, b]) for a, b in zip(i, j)}
    found = phash_pairs(ids, hashes, 9, transforms=QUERY_TRANSFORMS)
    assert {(p.a, p.b): round((1 - p.score) * 64) for p in found} == expected
    assert sum(p.edit is not None for p in found) > 50  # the turned copies are found as turned


@pytest.mark.parametrize("threshold", [0, 8, 14, 20], ids=lambda t: f"t{t}")
def test_confirmed_pairs_are_the_candidates_phash_pairs_links_at_that_distance(threshold):
    ids, hashes = turned_copies(400)
    i, j = np.triu_indices(len(ids), k=1)
    sims = np.round(np.random.default_rng(2).uniform(0, 1, len(i)), 2)
    candidates = [DuplicatePair(int(ids[a]), int(ids[b]), f"cosine {c:.2f}", float(c)) for a, b, c in zip(i, j, sims)]
    found = confirmed_pairs(candidates, ids, hashes, threshold, transforms=QUERY_TRANSFORMS)
    reference = phash_pairs(ids, hashes, threshold, transforms=QUERY_TRANSFORMS)  # tested against brute force
    assert {(p.a, p.b) for p in found} == {(p.a, p.b) for p in reference}
    assert len(found) > 0
    by_pair = {(p.a, p.b): p for p in reference}
    score_of = {(p.a, p.b): p.score for p in candidates}
    row = {int(item): k for k, item in enumerate(ids)}
    for pair in found:
        near = by_pair[(pair.a, pair.b)]
        best = round((1 - near.score) * 64)
        plain = int(np.bitwise_count(hashes[row[pair.a]] ^ hashes[row[pair.b]]))
        clear = best <= min(plain - duplicates.TRANSFORM_MARGIN, duplicates.TRANSFORM_NAMED_BITS)
        if clear or plain > threshold:  # the transform that matched, named only when clear
            assert pair.edit == (near.edit if clear else None)
            assert pair.reason == f"{near.reason} and cosine {score_of[(pair.a, pair.b)]:.2f}"
        else:  # a transform no better than chance: the untransformed distance
            assert pair.edit is None
            assert pair.reason == f"perceptual hash distance {plain}/64 and cosine {score_of[(pair.a, pair.b)]:.2f}"
        assert pair.score == score_of[(pair.a, pair.b)]  # the candidate's score is kept
    assert sum(p.edit is not None for p in found) > 0


def test_confirmed_pairs_name_a_transform_only_when_it_clearly_beats_none():
    """Copies made half like the picture and half like its mirror image, plus a few flipped bits:
    the pair is named a flip only when the flip wins by TRANSFORM_MARGIN bits (reference: every
    transform's distance either way round, computed here)."""
    rng = np.random.default_rng(3)
    odd = np.zeros((8, 8), bool)
    odd[:, 1::2] = True  # the bits a left-right flip inverts
    odd_bits = np.flatnonzero(odd.ravel())
    hashes, ids = [], []
    for k, like_mirror in enumerate(range(4, 29, 2)):
        h0 = int(rng.integers(0, 2**63))
        h1 = h0
        for bit in rng.choice(odd_bits, like_mirror, replace=False):
            h1 ^= 1 << (63 - int(bit))
        h1 ^= 1 << (63 - int(rng.choice(np.flatnonzero(~odd.ravel()))))
        hashes += [h0, h1]
        ids += [2 * k, 2 * k + 1]
    hashes = np.array(hashes, dtype=np.uint64)
    candidates = [DuplicatePair(a, a + 1, "cosine 0.90", 0.9) for a in ids[::2]]
    found = {p.a: p for p in confirmed_pairs(candidates, ids, hashes, 40, transforms=QUERY_TRANSFORMS)}
    assert len(found) == len(candidates)
    named = set()
    for a in ids[::2]:
        h = hashes[[a, a + 1]]
        plain = int(np.bitwise_count(h[0] ^ h[1]))
        moved = [int(min(np.bitwise_count(transform_hashes(h[:1], t)[0] ^ h[1]),
                         np.bitwise_count(h[0] ^ transform_hashes(h[1:], t)[0]))) for t in TRANSFORMS[1:]]
        clear = min(moved) <= min(plain - duplicates.TRANSFORM_MARGIN, duplicates.TRANSFORM_NAMED_BITS)
        assert (found[a].edit is not None) == clear, (plain, moved, found[a])
        assert found[a].reason.startswith(f"perceptual hash distance {min(moved) if clear else plain}/64")
        named.add(clear)
    assert named == {True, False}


def test_confirmed_pairs_drop_items_without_a_hash_and_refuse_a_bad_distance():
    hashes = np.array([0, 1, 2**64 - 1], dtype=np.uint64)  # 1 and 64 bits from the first
    candidates = [DuplicatePair(1, 2, "cosine 0.80", 0.8), DuplicatePair(1, 9, "cosine 0.90", 0.9),
                  DuplicatePair(1, 3, "cosine 0.85", 0.85)]
    assert [(p.a, p.b) for p in confirmed_pairs(candidates, [1, 2, 3], hashes, 1)] == [(1, 2)]
    assert confirmed_pairs([], [1, 2, 3], hashes, 1) == []
    with pytest.raises(InvalidParameterError, match=r"max_distance must be in \[0, 64\), got 64"):
        confirmed_pairs(candidates, [1, 2, 3], hashes, 64)


def test_identical_content_groups_become_stars():
    pairs = identical_pairs([5, 9, 2, 7, 4], ["x", "y", "x", "x", "z"])
    assert {(p.a, p.b) for p in pairs} == {(2, 5), (2, 7)}
    assert all(p.reason == "identical content" and p.score == 1.0 for p in pairs)


def near_copies(seed: int = 0):
    """300 unit vectors; rows 0..29 are tight copies of one vector, 100/101 and 200/201 pairs."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, 24))
    X[1:30] = X[0] + 0.02 * rng.standard_normal((29, 24))
    X[101] = X[100] + 0.05 * rng.standard_normal(24)
    X[201] = X[200] + 0.05 * rng.standard_normal(24)
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    return X, np.arange(300, dtype=np.int64) * 2 + 1


def test_semantic_pairs_equal_brute_force_even_for_a_dense_group():
    X, ids = near_copies()
    sims = X.astype(np.float64) @ X.T.astype(np.float64)
    i, j = np.nonzero(np.triu(sims >= 0.97, k=1))
    expected = {(int(ids[a]), int(ids[b])) for a, b in zip(i, j)}
    assert len(expected) > 30 * 29 // 2  # the group of 30 is larger than k = 16 neighbours
    found = semantic_pairs(ExactIndex().fit(X, ids), 0.97, k=16)
    assert {(p.a, p.b) for p in found} == expected
    for p in found:
        np.testing.assert_allclose(p.score, sims[(p.a - 1) // 2, (p.b - 1) // 2], atol=1e-5)
        assert p.reason == f"cosine {p.score:.2f}"
    orthogonal = ExactIndex().fit(np.eye(4, dtype=np.float32), [1, 2, 3, 4])
    assert semantic_pairs(orthogonal, 0.5) == [] and semantic_pairs(ExactIndex().fit(X[:1], [7]), 0.5) == []


def test_group_pairs_is_union_find_over_all_reasons():
    pairs = [DuplicatePair(1, 2, "identical content", 1.0), DuplicatePair(3, 4, "cosine 0.99", 0.99),
             DuplicatePair(2, 3, "perceptual hash distance 2/64", 62 / 64), DuplicatePair(8, 9, "cosine 0.97", 0.97)]
    groups = group_pairs(pairs)
    assert [g.ids for g in groups] == [[1, 2, 3, 4], [8, 9]]
    assert sorted(p.reason for p in groups[0].pairs) == sorted(p.reason for p in pairs[:3])


def reference_attach(strong, weak, found_above=None):
    """Groups (sets of ids) from scratch: the strong pairs' components, then each weak pair in turn,
    kept when one side is alone, and when both are, only at ``found_above`` or more (components
    recomputed after every pair)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes = sorted({x for p in [*strong, *weak] for x in (p.a, p.b)})
    row = {x: k for k, x in enumerate(nodes)}
    kept = list(strong)

    def components():
        a = [row[p.a] for p in kept]
        b = [row[p.b] for p in kept]
        graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(nodes), len(nodes)))
        return connected_components(graph, directed=False)[1]

    for pair in weak:
        label = components()
        sizes = np.bincount(label)
        size_a, size_b = sizes[label[row[pair.a]]], sizes[label[row[pair.b]]]
        if label[row[pair.a]] == label[row[pair.b]] or min(size_a, size_b) == 1:
            if not (size_a == size_b == 1 and found_above is not None and pair.score < found_above):
                kept.append(pair)
    label = components()
    linked = {x for p in kept for x in (p.a, p.b)}
    groups = {}
    for x in linked:
        groups.setdefault(int(label[row[x]]), set()).add(x)
    return sorted(sorted(g) for g in groups.values()), kept


def test_attached_pairs_add_one_item_to_a_group_but_never_merge_two():
    strong = [DuplicatePair(1, 2, "near", 0.9), DuplicatePair(2, 3, "near", 0.9), DuplicatePair(5, 6, "near", 0.9)]
    weak = [DuplicatePair(3, 5, "both", 0.8),  # would merge {1, 2, 3} and {5, 6}: dropped
            DuplicatePair(4, 6, "both", 0.7),  # 4 alone: joins {5, 6}
            DuplicatePair(1, 4, "both", 0.6),  # 4 is no longer alone: dropped
            DuplicatePair(7, 8, "both", 0.5),  # two items alone: a new group
            DuplicatePair(2, 3, "both", 0.4)]  # inside one group: kept as a second link
    groups = group_pairs(strong, attach=weak)
    assert [g.ids for g in groups] == [[1, 2, 3], [4, 5, 6], [7, 8]]
    kept = {(p.a, p.b, p.reason) for g in groups for p in g.pairs}
    assert kept == {(p.a, p.b, p.reason) for p in [*strong, weak[1], weak[3], weak[4]]}
    assert [g.ids for g in group_pairs([], attach=[weak[0]])] == [[3, 5]]


def test_a_weak_pair_of_two_lone_items_starts_a_group_only_above_found_above():
    strong = [DuplicatePair(1, 2, "near", 0.9)]
    weak = [DuplicatePair(7, 8, "both", 0.9),  # both alone, strong enough: a new group
            DuplicatePair(3, 4, "both", 0.8),  # both alone, too weak to start one: dropped
            DuplicatePair(2, 3, "both", 0.7),  # 3 joins {1, 2}: a group needs no more
            DuplicatePair(3, 4, "both", 0.6)]  # 4 alone, 3 in a group now: joins it
    groups = group_pairs(strong, attach=weak, found_above=0.85)
    assert [g.ids for g in groups] == [[1, 2, 3, 4], [7, 8]]
    assert {(p.a, p.b, p.score) for g in groups for p in g.pairs} == {
        (1, 2, 0.9), (7, 8, 0.9), (2, 3, 0.7), (3, 4, 0.6)}


@pytest.mark.parametrize("found_above", [None, 0.5])
@pytest.mark.parametrize("seed", range(5))
def test_attached_groups_equal_a_from_scratch_reference(seed, found_above):
    rng = np.random.default_rng(seed)
    pair = lambda a, b, s: DuplicatePair(int(min(a, b)), int(max(a, b)), "r", float(s))  # noqa: E731
    strong = [pair(a, b, 1.0) for a, b in rng.integers(0, 60, (25, 2)) if a != b]
    weak = [pair(a, b, s) for (a, b), s in zip(rng.integers(0, 60, (40, 2)), rng.random(40)) if a != b]
    groups = group_pairs(strong, attach=weak, found_above=found_above)
    expected_groups, expected_kept = reference_attach(strong, weak, found_above)
    assert sorted(g.ids for g in groups) == expected_groups
    assert sorted(id(p) for g in groups for p in g.pairs) == sorted(id(p) for p in expected_kept)


def test_semantic_pairs_below_complete_above_come_from_the_first_k_neighbours():
    X, ids = near_copies()
    sims = X.astype(np.float64) @ X.T.astype(np.float64)
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")
    expected = set()
    for a in range(len(X)):
        k = 8  # searched again with 4 x k while the k-th neighbour reaches 0.97
        while k < len(X) - 1 and sims[a, order[a, k - 1]] >= 0.97:
            k = min(4 * k, len(X) - 1)
        expected |= {(int(min(ids[a], ids[b])), int(max(ids[a], ids[b]))) for b in order[a, :k] if sims[a, b] >= 0.2}
    i, j = np.nonzero(np.triu(sims >= 0.97, k=1))
    assert {(int(ids[a]), int(ids[b])) for a, b in zip(i, j)} <= expected  # complete above 0.97
    found = semantic_pairs(ExactIndex().fit(X, ids), 0.2, k=8, complete_above=0.97)
    assert {(p.a, p.b) for p in found} == expected
    assert len(expected) < len(semantic_pairs(ExactIndex().fit(X, ids), 0.2, k=8))  # complete: more


def test_find_duplicates_joins_every_source():
    X, ids = near_copies()
    content = [f"h{i}" for i in range(300)]
    content[250] = content[251] = "same"
    phashes = np.arange(300, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # spread out
    phashes[261] = phashes[260] ^ np.uint64(0b101)
    groups = find_duplicates(ids, content_hashes=content, phashes=phashes, index=ExactIndex().fit(X, ids),
                             max_hash_distance=4, min_similarity=0.97)
    by_first = {g.ids[0]: g for g in groups}
    assert by_first[ids[0]].ids == sorted(ids[:30].tolist())
    assert by_first[ids[100]].ids == [ids[100], ids[101]]
    assert by_first[ids[250]].pairs[0].reason == "identical content"
    assert by_first[ids[260]].pairs[0].reason == "perceptual hash distance 2/64"
    assert len(groups) == 5
    with pytest.raises(InvalidParameterError, match="ids are required"):
        find_duplicates(content_hashes=content)


def test_duplicates_at_20k_stay_memory_light():
    rng = np.random.default_rng(5)
    n, d = 20_000, 16
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[1::100] = X[0::100] + 0.01 * rng.standard_normal((n // 100, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    ids = np.arange(n, dtype=np.int64)
    index = ExactIndex().fit(X, ids)
    ids_h, hashes = planted_hashes(n, seed=6)
    tracemalloc.start()
    started = time.perf_counter()
    semantic = semantic_pairs(index, 0.99, k=8)
    hashed = phash_pairs(ids_h, hashes, 8)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64e6  # an n x n float32 matrix would be 1.6 GB
    assert elapsed < 30
    planted = {(i, i + 1) for i in range(0, n, 100)}
    found = {(p.a, p.b) for p in semantic}
    assert planted <= found
    assert all(float(X[a] @ X[b]) >= 0.99 - 1e-5 for a, b in found)
    by_id = dict(zip(ids_h.tolist(), hashes.tolist()))
    planted_h = {(int(ids_h[i - 1]), int(ids_h[i])) for i in range(1, n, 10) if bits(hashes[i] ^ hashes[i - 1]) <= 8}
    assert planted_h <= {(p.a, p.b) for p in hashed}
    assert all(bits(by_id[p.a] ^ by_id[p.b]) <= 8 for p in hashed)


def bits(value) -> int:
    return int(value).bit_count()

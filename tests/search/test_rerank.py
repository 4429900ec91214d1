"""Re-ranking array functions against plain numpy references (loops written from the papers)."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.search.rerank import (
    RerankConfig,
    dba_vectors,
    expand,
    kreciprocal_distances,
    neighbour_graph,
    rerank_pool,
    update_dba,
)


def unit(rng: np.random.Generator, n: int, d: int = 16, clusters: int = 4) -> np.ndarray:
    """Clustered unit vectors (ties are unlikely; neighbourhoods are meaningful)."""
    centres = rng.standard_normal((clusters, d))
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def reference_reranking(features: np.ndarray, k1: int, k2: int, lam: float) -> np.ndarray:
    """The authors' re_ranking (Zhong et al. 2017) with every row both probe and gallery."""
    feats = features.astype(np.float64)
    n = feats.shape[0]
    original = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            original[i, j] = np.sum((feats[i] - feats[j]) ** 2)
    original = np.transpose(original / np.max(original, axis=0))
    V = np.zeros_like(original)
    initial_rank = np.argsort(original, kind="stable").astype(np.int32)
    for i in range(n):
        forward = initial_rank[i, : k1 + 1]
        backward = initial_rank[forward, : k1 + 1]
        recip = forward[np.where(backward == i)[0]]
        expansion = recip
        for candidate in recip:
            c_forward = initial_rank[candidate, : int(np.around(k1 / 2)) + 1]
            c_backward = initial_rank[c_forward, : int(np.around(k1 / 2)) + 1]
            c_recip = c_forward[np.where(c_backward == candidate)[0]]
            if len(np.intersect1d(c_recip, recip)) > 2 / 3 * len(c_recip):
                expansion = np.append(expansion, c_recip)
        expansion = np.unique(expansion)
        weight = np.exp(-original[i, expansion])
        V[i, expansion] = weight / np.sum(weight)
    if k2 != 1:
        V_qe = np.zeros_like(V)
        for i in range(n):
            V_qe[i] = np.mean(V[initial_rank[i, :k2]], axis=0)
        V = V_qe
    inv = [np.where(V[:, i] != 0)[0] for i in range(n)]
    jaccard = np.zeros((n, n))
    for i in range(n):
        temp_min = np.zeros(n)
        nonzero = np.where(V[i] != 0)[0]
        for j in nonzero:
            temp_min[inv[j]] += np.minimum(V[i, j], V[inv[j], j])
        jaccard[i] = 1 - temp_min / (2 - temp_min)
    return jaccard * (1 - lam) + original * lam


@pytest.mark.parametrize(("n", "k1", "k2", "lam"), [(40, 6, 3, 0.3), (61, 20, 6, 0.3), (30, 5, 1, 0.5)],
                         ids=["small", "paper-defaults", "no-local-qe"])
def test_kreciprocal_matches_reference(n: int, k1: int, k2: int, lam: float) -> None:
    pool = unit(np.random.default_rng(n), n)
    expected = reference_reranking(pool, k1, k2, lam)[0]
    np.testing.assert_allclose(kreciprocal_distances(pool, k1, k2, lam), expected, rtol=1e-9, atol=1e-9)


def test_expand_matches_loop() -> None:
    rng = np.random.default_rng(1)
    x = unit(rng, 30)
    rows, sims = neighbour_graph(x, 4)
    got = expand(x, x[rows], sims, alpha=3.0)
    for i in range(30):
        v = x[i].astype(np.float64).copy()
        for j, s in zip(rows[i], sims[i]):
            v += max(float(s), 0.0) ** 3 * x[j]
        np.testing.assert_allclose(got[i], v / np.linalg.norm(v), atol=1e-5)


def test_neighbour_graph_matches_brute_force() -> None:
    x = unit(np.random.default_rng(2), 50)
    rows, sims = neighbour_graph(x, 7)
    full = x @ x.T
    np.fill_diagonal(full, -np.inf)
    expected = np.argsort(-full, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(sims, np.take_along_axis(full, expected, 1), rtol=1e-6)


def test_update_dba_equals_full_recompute() -> None:
    rng = np.random.default_rng(3)
    x = unit(rng, 120)
    ids = np.arange(1000, 1120, dtype=np.int64)
    first, second = np.arange(0, 90), np.r_[np.arange(5, 90), np.arange(90, 120)]  # 5 removed, 30 added
    old_dba, old_nbr = update_dba((np.zeros(0, np.int64), np.zeros((0, 16), np.float32), np.zeros((0, 4), np.int64)),
                                  ids[first], x[first], 4, 3.0)
    np.testing.assert_allclose(old_dba, dba_vectors(x[first], 4, 3.0), atol=1e-6)
    new_dba, _ = update_dba((ids[first], old_dba, old_nbr), ids[second], x[second], 4, 3.0)
    np.testing.assert_allclose(new_dba, dba_vectors(x[second], 4, 3.0), atol=1e-6)


def test_rerank_pool_none_keeps_index_order_and_aqe_uses_expanded_query() -> None:
    rng = np.random.default_rng(4)
    x = unit(rng, 60)
    q, pool = x[0], x[1:]
    order, scores = rerank_pool("none", q, pool, RerankConfig())
    np.testing.assert_array_equal(order, np.argsort(-(pool @ q), kind="stable"))
    config = RerankConfig(qe_n=3, qe_alpha=1.0)
    order, scores = rerank_pool("aqe", q, pool, config)
    top = np.argsort(-(pool @ q))[:3]
    v = q + ((pool[top] @ q)[:, None] * pool[top]).sum(0)
    np.testing.assert_allclose(scores, np.sort(pool @ (v / np.linalg.norm(v)))[::-1], atol=1e-5)


def test_rerank_pool_kreciprocal_orders_by_distance() -> None:
    x = unit(np.random.default_rng(5), 40)
    order, scores = rerank_pool("kreciprocal", x[0], x[1:], RerankConfig(k1=6, k2=3))
    np.testing.assert_array_equal(order, np.argsort(kreciprocal_distances(x, 6, 3, 0.3)[1:], kind="stable"))
    assert np.all(np.diff(scores) <= 0)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match="rerank must be one of"):
        rerank_pool("diffusion", np.ones(2, np.float32), np.ones((1, 2), np.float32), RerankConfig())
    with pytest.raises(InvalidParameterError, match="pool must be an integer"):
        RerankConfig(pool=0)
    with pytest.raises(InvalidParameterError, match="DBA vectors"):
        rerank_pool("dba", np.ones(2, np.float32), np.ones((1, 2), np.float32), RerankConfig())

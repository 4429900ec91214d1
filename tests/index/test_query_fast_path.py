"""The single-query fast path of ``search`` (query checks, FAISS call, scores) against references:
numpy normalisation and brute force; the full checks still refuse what they refused."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.index import ExactIndex, HNSWIndex, search
from lookalike.index._checks import as_queries


@pytest.mark.parametrize("shape", [(16,), (1, 16), (5, 16)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_queries_are_normalised_like_numpy(shape, dtype):
    raw = np.random.default_rng(1).standard_normal(shape).astype(dtype) * 7.0
    got = as_queries(raw, 16)
    rows = np.atleast_2d(raw).astype(np.float64)
    assert got.dtype == np.float32 and got.shape == rows.shape and got.flags.c_contiguous
    np.testing.assert_allclose(got, rows / np.linalg.norm(rows, axis=1, keepdims=True), rtol=1e-6, atol=1e-7)
    assert not np.shares_memory(got, raw)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_huge_but_finite_queries_are_normalised_not_refused():
    query = np.full((1, 16), 3e30, dtype=np.float32)  # its squared norm overflows float32
    np.testing.assert_allclose(as_queries(query, 16), np.full((1, 16), 0.25), rtol=1e-6)


@pytest.mark.parametrize("bad, message", [(np.nan, "NaN or infinity"), (np.inf, "NaN or infinity"),
                                          (0.0, "zero vector")])  # fmt: skip
@pytest.mark.parametrize("rows", [1, 3])
def test_bad_queries_are_refused_with_the_row(bad, message, rows):
    queries = np.ones((rows, 16), dtype=np.float32)
    queries[rows - 1] = 0.0 if bad == 0.0 else 1.0
    queries[rows - 1, 3] = bad
    with pytest.raises(InvalidParameterError, match=message):
        as_queries(queries, 16)
    with pytest.raises(InvalidParameterError, match="dimension 16"):
        as_queries(np.ones((rows, 16), dtype=np.float32), 8)


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_single_queries_match_brute_force_with_exact_scores(kind, data, reference):
    index = ExactIndex() if kind == "exact" else HNSWIndex(ef_search=300)
    index.fit(data.X, data.ids)
    want_ids, want_sims = reference(data.X, data.ids, data.Q, 10)
    for row, query in enumerate(data.Q[:20]):
        got = search(index, query * 3.0, 10)[0]  # any scale: queries are normalised
        np.testing.assert_array_equal(got.ids, want_ids[row])
        np.testing.assert_allclose(got.similarities, want_sims[row], atol=1e-5)
        np.testing.assert_allclose(got.distances, 2.0 - 2.0 * want_sims[row], atol=2e-5)
        assert got.similarities.dtype == got.distances.dtype == np.float32 and got.ids.dtype == np.int64


def test_hnsw_beam_width_per_query_changes_results_and_is_not_sticky(data, reference):
    index = HNSWIndex(ef_search=300).fit(data.X, data.ids)
    want_ids, _ = reference(data.X, data.ids, data.Q, 10)

    def recall(**options: int) -> float:
        found = [search(index, q, 10, **options)[0].ids for q in data.Q]
        return np.mean([len(set(f) & set(w)) / 10 for f, w in zip(found, want_ids)])

    wide = recall()
    narrow = recall(ef_search=10)
    assert wide >= 0.99 and narrow < wide
    assert recall() == wide and recall(ef_search=10) == narrow  # cached parameters are reused as-is


def test_removed_ids_never_come_back_on_the_fast_path(data):
    index = HNSWIndex(ef_search=300).fit(data.X, data.ids)
    before = search(index, data.Q[0], 5)[0].ids
    index.remove(before[:2])
    after = search(index, data.Q[0], 5)[0]
    assert not set(before[:2]) & set(after.ids) and len(after) == 5


def test_k_above_the_collection_returns_everything_once():
    X = np.eye(4, 8, dtype=np.float32)
    got = search(ExactIndex().fit(X, [7, 8, 9, 10]), X[2], 10)[0]
    assert sorted(got.ids.tolist()) == [7, 8, 9, 10] and got.ids[0] == 9
    np.testing.assert_array_equal(got.distances, np.float32(2.0) - np.float32(2.0) * got.similarities)

"""Retrieval metrics against an independent brute-force numpy implementation."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.evaluate.metrics import (
    average_precision_at_k,
    evaluate_retrieval,
    latency_percentiles,
    map_at_k,
    precision_at_k,
    recall_at_k,
    recall_vs_exact,
)
from lookalike.index import ExactIndex


def labelled_vectors(n=300, d=8, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    X = rng.standard_normal((classes, d))[labels] + 1.2 * rng.standard_normal((n, d))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    ids = rng.choice(100 * n, n, replace=False).astype(np.int64)
    return X, ids, labels


def reference_scores(X, labels, queries, k):
    """Loop implementation: rank all other items by cosine; relevant = same (non-None) label."""
    sims = X.astype(np.float64) @ X.T.astype(np.float64)
    precisions, recalls, aps = [], [], []
    for q in queries:
        order = [j for j in np.argsort(-sims[q], kind="stable") if j != q][:k]
        rel = [labels[j] is not None and labels[j] == labels[q] for j in order]
        total = sum(1 for j in range(len(X)) if j != q and labels[j] is not None and labels[j] == labels[q])
        precisions.append(sum(rel) / k)
        if total:
            recalls.append(sum(rel) / total)
            hits, score = 0, 0.0
            for rank, r in enumerate(rel, start=1):
                if r:
                    hits += 1
                    score += hits / rank
            aps.append(score / min(k, total))
    return np.mean(precisions), np.mean(recalls), np.mean(aps)


@pytest.mark.parametrize("k", [1, 5, 10])
def test_leave_one_out_scores_match_the_reference(k):
    X, ids, labels = labelled_vectors()
    got = evaluate_retrieval(ExactIndex().fit(X, ids), ids, labels.tolist(), k)
    expected = reference_scores(X, labels.tolist(), range(len(X)), k)
    np.testing.assert_allclose([got.precision, got.recall, got.map], expected, rtol=1e-9)
    assert got.n_queries == len(X) and got.k == k


def test_partially_labelled_collections_count_only_labelled_neighbours():
    X, ids, labels = labelled_vectors(seed=1)
    partial = [int(lab) if i % 3 else None for i, lab in enumerate(labels)]
    keep = [i for i, lab in enumerate(partial) if lab is not None]
    got = evaluate_retrieval(ExactIndex().fit(X, ids), ids[keep], [partial[i] for i in keep], 5)
    expected = reference_scores(X, partial, keep, 5)
    np.testing.assert_allclose([got.precision, got.recall, got.map], expected, rtol=1e-9)


def test_metrics_on_a_hand_made_ranking():
    hits = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1]], dtype=bool)
    n_relevant = [2, 0, 5]
    assert precision_at_k(hits, 3) == pytest.approx((2 / 3 + 0 + 2 / 3) / 3)
    assert recall_at_k(hits, n_relevant, 3) == pytest.approx((2 / 2 + 2 / 5) / 2)
    # AP@3: query 0 = (1/1 + 2/3) / min(3, 2); query 2 = (1/2 + 2/3) / min(3, 5)
    np.testing.assert_allclose(average_precision_at_k(hits, n_relevant, 3), [(1 + 2 / 3) / 2, (1 / 2 + 2 / 3) / 3])
    assert map_at_k(hits, n_relevant, 3) == pytest.approx(((1 + 2 / 3) / 2 + (1 / 2 + 2 / 3) / 3) / 2)
    with pytest.raises(InvalidParameterError, match=r"k must be an integer in \[1, 4\]"):
        precision_at_k(hits, 5)
    with pytest.raises(InvalidParameterError, match=r"n_relevant must be \(3,\)"):
        recall_at_k(hits, [1, 2], 2)


def test_recall_against_exact_results():
    exact = np.array([[1, 2, 3], [4, 5, -1]])
    approx = np.array([[3, 9, 1], [5, -1, -1]])
    assert recall_vs_exact(approx, exact) == pytest.approx(3 / 5)
    with pytest.raises(InvalidParameterError, match="equal m"):
        recall_vs_exact(approx[:1], exact)


def test_latency_percentiles_in_milliseconds():
    seconds = np.random.default_rng(0).exponential(0.002, 1000)
    got = latency_percentiles(seconds)
    np.testing.assert_allclose(
        [got["p50_ms"], got["p95_ms"], got["p99_ms"], got["mean_ms"]],
        [*np.percentile(seconds * 1000, [50, 95, 99]), seconds.mean() * 1000],
    )
    with pytest.raises(InvalidParameterError, match="non-empty"):
        latency_percentiles([])

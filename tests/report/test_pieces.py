"""The report's compute pieces on synthetic arrays: settings, sampling, retrieval scores, K choice."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from lookalike.cluster import KChoice
from lookalike.errors import InvalidParameterError
from lookalike.report import ReportConfig, parse_k_range
from lookalike.report.classification import sample_rows
from lookalike.report.clusters import chosen_k, method_config
from lookalike.report.retrieval import retrieval_scores, sample_queries


@pytest.mark.parametrize(("text", "expected"), [("2-30", (2, 30, 1)), (" 4 - 12 : 2 ", (4, 12, 2))], ids=["plain", "step"])
def test_parse_k_range(text, expected):
    assert parse_k_range(text) == expected


@pytest.mark.parametrize("text", ["2..30", "30", "a-b", "2-30:"], ids=["dots", "single", "letters", "empty-step"])
def test_parse_k_range_refuses(text):
    with pytest.raises(InvalidParameterError, match="--k-range must look like"):
        parse_k_range(text)


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"k_min": 1}, "k_min must be an integer >= 2"), ({"k_min": 9, "k_max": 4}, "need k_min <= k_max"),
     ({"curve_k": 5}, "curve_k must be an integer >= 10"), ({"models": ("svm", "tree")}, "unknown model"),
     ({"hdbscan_min_cluster_size": 1}, "hdbscan_min_cluster_size must be >= 2")],
    ids=["k-min", "k-order", "curve", "model", "hdbscan"],
)
def test_report_config_refuses(settings, message):
    with pytest.raises(InvalidParameterError, match=message):
        ReportConfig(**settings)


def test_k_values_stop_below_the_point_count():
    assert ReportConfig(k_min=2, k_max=30, k_step=3).k_values(10) == [2, 5, 8]


def test_retrieval_scores_match_a_numpy_reference():
    rng = np.random.default_rng(0)
    ids = np.arange(200)
    labels = {int(i): f"c{rng.integers(4)}" for i in ids}
    queries = np.sort(rng.choice(ids, 50, replace=False))
    nbrs = np.array([rng.choice(ids[ids != q], 20, replace=False) for q in queries])
    got = retrieval_scores(queries, nbrs, labels)
    hits = np.array([[labels[int(j)] == labels[int(q)] for j in row] for q, row in zip(queries, nbrs)])
    counts = Counter(labels.values())
    relevant = np.array([counts[labels[int(q)]] - 1 for q in queries])
    for k in (1, 5, 10):
        assert got[f"precision_at_{k}"] == pytest.approx(hits[:, :k].mean())
    assert got["precision_curve"]["precision"][19] == pytest.approx(hits.mean())
    assert got["recall_at_10"] == pytest.approx(np.mean(hits[:, :10].sum(axis=1) / relevant))
    precision_at_j = np.cumsum(hits[:, :10], axis=1) / np.arange(1, 11)
    assert got["map_at_10"] == pytest.approx(np.mean((precision_at_j * hits[:, :10]).sum(axis=1) / np.minimum(10, relevant)))


def test_sample_queries_are_a_seeded_labelled_subset():
    ids = np.arange(100, 200)
    labelled = np.arange(100) % 3 != 0
    first = sample_queries(ids, labelled, 20, seed=1)
    assert len(first) == 20 and np.all(np.diff(first) > 0) and set(first) <= set(ids[labelled])
    assert np.array_equal(first, sample_queries(ids, labelled, 20, seed=1))
    assert np.array_equal(sample_queries(ids, labelled, 1000, seed=1), ids[labelled])


def test_classifier_sample_keeps_class_shares():
    labels = np.array(["a"] * 600 + ["b"] * 300 + ["c"] * 100)
    rows = sample_rows(labels, 200, seed=0)
    assert len(rows) == 200 and Counter(labels[rows].tolist()) == {"a": 120, "b": 60, "c": 20}
    assert np.array_equal(sample_rows(labels, 5000, seed=0), np.arange(1000))


def test_chosen_k_prefers_the_label_count():
    choice = KChoice((2, 3, 4), (3.0, 2.0, 1.5), (0.2, 0.5, 0.4), 100, 3, 3, 3, "silhouette peak", (0.1,) * 3)
    assert chosen_k(10, choice, 500) == (10, "the number of labels (10)")
    assert chosen_k(0, choice, 500)[0] == 3 and chosen_k(0, None, 3) == (None, "too few images to sweep K")


def test_hdbscan_minimum_cluster_size_scales_with_the_points():
    assert method_config("hdbscan", None, ReportConfig(), 60_000).min_cluster_size == 600
    assert method_config("hdbscan", None, ReportConfig(), 40).min_cluster_size == 5
    assert method_config("hdbscan", None, ReportConfig(hdbscan_min_cluster_size=9), 60_000).min_cluster_size == 9
    assert method_config("kmeans", 7, ReportConfig(), 100).n_clusters == 7


def test_map_groups_order_numbers_and_put_grey_groups_last():
    from lookalike.report.figures import GREY, groups, point_names

    names = point_names(np.array([10, 2, -1, 2], dtype=object))
    assert names.tolist() == ["10", "2", "noise", "2"]
    order, colours = groups(names)
    assert order == ["2", "10", "noise"] and colours["noise"] == GREY and len(set(colours.values())) == 3
    labels = point_names(np.array(["coat", None, "bag"], dtype=object))
    assert groups(labels)[0] == ["bag", "coat", "(unlabelled)"]


def test_json_ready_turns_undefined_scores_into_null():
    from lookalike.report.write import json_ready

    assert json_ready({"a": float("nan"), "b": (1.5, float("inf")), "c": {"d": 2}}) == {"a": None, "b": [1.5, None], "c": {"d": 2}}

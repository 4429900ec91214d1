"""Per-cluster summaries and names."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.cluster.summary import summarize_clusters
from lookalike.errors import InvalidParameterError


def test_size_medoid_representatives_and_spread(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, labels = blobs
    summaries = summarize_clusters(x, labels, n_representatives=3)
    assert [s.cluster for s in summaries] == [0, 1, 2, 3]
    for s in summaries:
        members = np.flatnonzero(labels == s.cluster)
        centre = x[members].mean(axis=0)
        dist = np.linalg.norm(x[members] - centre, axis=1)
        assert s.size == members.size
        assert s.medoid == members[np.argmin(dist)]
        assert list(s.representatives) == list(members[np.argsort(dist)[:3]])
        assert s.spread == pytest.approx(dist.mean(), rel=1e-5)
        assert s.name == f"cluster {s.cluster}" and s.name_source == "index" and s.name_share is None


def test_named_by_majority_label_with_share() -> None:
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    labels = np.array([0] * 5 + [1] * 5)
    truth = np.array(["cat"] * 4 + ["dog"] + ["owl"] * 3 + ["dog"] * 2)
    named = summarize_clusters(x, labels, true_labels=truth)
    assert [(s.name, s.name_share) for s in named] == [("cat (80%)", 0.8), ("owl (60%)", 0.6)]


def test_named_by_predicted_classes() -> None:
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    labels = np.zeros(6, dtype=int)
    top1 = ["tabby", "tabby", "tabby", "tiger cat", "tiger cat", "lynx"]
    (single,) = summarize_clusters(x, labels, class_predictions=top1)
    assert single.name == "tabby (50%), tiger cat (33%)" and single.name_source == "classes"
    topk = [["tabby", "lynx"], ["lynx"], ["tabby"], ["lynx", "tabby"], ["cougar"], ["lynx"]]
    (multi,) = summarize_clusters(x, labels, class_predictions=topk, n_name_classes=1)
    assert multi.name == "lynx (67%)" and multi.name_share == pytest.approx(4 / 6)


def test_noise_gets_no_summary() -> None:
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    summaries = summarize_clusters(x, [-1, 0, 0, -1, 2])
    assert [(s.cluster, s.size) for s in summaries] == [(0, 2), (2, 1)]
    assert summarize_clusters(x, [-1] * 5) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": [0, 1]}, "labels has 2 entries"),
        ({"labels": [0, 0, -2, 1, 1]}, "labels must be >= -1"),
        ({"true_labels": ["a"]}, "true_labels has 1 entries"),
        ({"class_predictions": ["a", "b"]}, "class_predictions has 2 entries"),
    ],
    ids=["labels-length", "labels-below-noise", "truth-length", "classes-length"],
)
def test_bad_input(kwargs: dict, match: str) -> None:
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    arguments = {"labels": [0, 0, 1, 1, 1], **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        summarize_clusters(x, **arguments)

"""build_clusterer maps ClusterConfig onto the estimators."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from lookalike.cluster import CLUSTERERS, build_clusterer
from lookalike.config import ClusterConfig
from lookalike.errors import InvalidParameterError


@pytest.mark.parametrize("method", sorted(CLUSTERERS))
def test_every_method_builds_and_fits(method: str, blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, truth = blobs
    config = ClusterConfig(method=method, n_clusters=4, metric="euclidean", min_cluster_size=20)
    model = build_clusterer(config).fit(x)
    assert isinstance(model, CLUSTERERS[method])
    assert adjusted_rand_score(truth, model.labels_) > 0.95


def test_settings_are_passed_through() -> None:
    config = ClusterConfig(method="agglomerative", distance_threshold=2.0, linkage="average", n_micro=500)
    model = build_clusterer(config)
    assert (model.n_clusters, model.distance_threshold, model.linkage, model.n_micro) == (
        None,
        2.0,
        "average",
        500,
    )
    assert build_clusterer(ClusterConfig(method="kmeans"), n_clusters=7).n_clusters == 7
    assert build_clusterer(ClusterConfig(method="dbscan")).metric == "cosine"


def test_kmeans_without_k_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="choose_k"):
        build_clusterer(ClusterConfig(method="kmeans"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "spectral"}, "method must be one of"),
        ({"k_min": 10, "k_max": 5}, "k_min <= k_max"),
        ({"n_micro": 1}, "n_micro"),
    ],
    ids=["method", "k-range", "n-micro"],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        ClusterConfig(**kwargs)

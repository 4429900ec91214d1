"""Settings of one evaluation report (``lookalike evaluate``), and the K range they sweep."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lookalike.config import CLASSIFY_MODELS, ClusterConfig
from lookalike.errors import InvalidParameterError


@dataclass(frozen=True)
class ReportConfig:
    """What an evaluation report computes, and on how much data.

    Attributes
    ----------
    k_min, k_max, k_step : the K sweep (elbow and silhouette vs K).
    seed : seeds every sample, split, clustering, classifier and t-SNE.
    max_queries : labelled images used as leave-one-out retrieval queries (a seeded sample).
    curve_k : the precision@k curve runs k = 1..curve_k.
    silhouette_sample : points in each sampled silhouette.
    hdbscan_sample : HDBSCAN clusters a seeded sample of at most this many points.
    hdbscan_min_cluster_size : HDBSCAN's smallest cluster; None = 1% of the points it clusters (at least 5).
    classify_sample : classifiers train and validate on a stratified sample of at most this many images.
    map_sample : points drawn on the 2D maps and embedded by t-SNE.
    models : classifiers to evaluate (among ``CLASSIFY_MODELS``).
    """

    k_min: int = ClusterConfig.k_min
    k_max: int = ClusterConfig.k_max
    k_step: int = ClusterConfig.k_step
    seed: int = 0
    max_queries: int = 2000
    curve_k: int = 50
    silhouette_sample: int = ClusterConfig.sample_size
    hdbscan_sample: int = 20_000
    hdbscan_min_cluster_size: int | None = None
    classify_sample: int = 5000
    map_sample: int = 3000
    models: tuple[str, ...] = CLASSIFY_MODELS

    def __post_init__(self) -> None:
        checks = {
            "k_min": (self.k_min, 2), "k_step": (self.k_step, 1), "seed": (self.seed, 0),
            "max_queries": (self.max_queries, 1), "curve_k": (self.curve_k, 10),
            "silhouette_sample": (self.silhouette_sample, 2), "hdbscan_sample": (self.hdbscan_sample, 10),
            "classify_sample": (self.classify_sample, 10), "map_sample": (self.map_sample, 10),
        }
        for name, (value, low) in checks.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidParameterError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.k_max < self.k_min:
            raise InvalidParameterError(f"need k_min <= k_max, got {self.k_min} and {self.k_max}")
        size = self.hdbscan_min_cluster_size
        if size is not None and size < 2:
            raise InvalidParameterError(f"hdbscan_min_cluster_size must be >= 2, got {size}")
        unknown = sorted(set(self.models) - set(CLASSIFY_MODELS))
        if unknown:
            raise InvalidParameterError(f"unknown model(s) {unknown}; expected some of {list(CLASSIFY_MODELS)}")

    def k_values(self, n_points: int) -> list[int]:
        """The swept K values that ``n_points`` points allow (the silhouette needs K <= n - 1)."""
        return list(range(self.k_min, min(self.k_max, n_points - 1) + 1, self.k_step))


def parse_k_range(text: str) -> tuple[int, int, int]:
    """``"MIN-MAX"`` or ``"MIN-MAX:STEP"`` as (k_min, k_max, k_step)."""
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*(?::\s*(\d+)\s*)?", text)
    if match is None:
        raise InvalidParameterError(f"--k-range must look like 2-30 or 2-30:2, got {text!r}")
    low, high, step = int(match.group(1)), int(match.group(2)), int(match.group(3) or 1)
    return low, high, step

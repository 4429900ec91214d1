"""Scores attached to search results: cluster confidence and calibrated match probability.

Distances are squared L2 between unit vectors, ``d = ||q - x||^2 = 2 - 2 cos(q, x)`` in [0, 4].

Confidence (the reference design's definition): ``confidence = 1 - d / max_d`` where ``max_d``
is the largest distance inside the query's cluster. Here the query's cluster is its nearest
centroid (squared L2, as k-means assigns), and a cluster's ``max_d`` is the largest squared L2
distance from one of its members to its centroid (:func:`cluster_max_distances`, computed once
from the data and the centroids). The value is clipped to [0, 1]: 1 for an identical vector, 0
for a result at least as far from the query as the cluster's farthest member is from its centre.
It is a heuristic ranking aid, not a probability.

The match probability is :class:`MatchCalibrator`: a monotone map from cosine similarity to
P(same label), fitted on leave-one-out neighbours of labelled items. Without labels there is no
calibrator and no probability (never a made-up one).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from lookalike._faiss import import_faiss
from lookalike.errors import InvalidParameterError, VectorIndexError
from lookalike.index._checks import as_matrix

CALIBRATION_METHODS = ("isotonic", "logistic")
BLOCK_ROWS = 65_536


def _quantizer(centroids: np.ndarray) -> Any:
    """A FAISS exact L2 index over checked centroids (K, d), to assign vectors to clusters.

    FAISS rather than numpy: its threads do the work that also runs the searches, so the two
    thread pools do not fight over the cores.
    """
    quantizer = import_faiss().IndexFlatL2(centroids.shape[1])
    quantizer.add(centroids)
    return quantizer


def _nearest(quantizer: Any, X: np.ndarray) -> np.ndarray:
    """The nearest centroid (squared L2) of each row of checked X (n, d): (n,) int64."""
    if len(X) == 0:
        return np.zeros(0, dtype=np.int64)
    _, labels = quantizer.search(X, 1)
    return labels[:, 0].astype(np.int64)


def cluster_max_distances(X: Any, centroids: Any, labels: Any = None) -> np.ndarray:
    """Per cluster, the largest squared L2 distance from a member to its centroid: (K,) float32.

    X (n, d) vectors, centroids (K, d); labels (n,) cluster of each row (None = nearest
    centroid). An empty cluster gets 0. Works in blocks: never an (n, K) or (n, d) float64 array.
    """
    centroids = as_matrix(centroids, None, "centroids")
    X = as_matrix(X, centroids.shape[1], "vectors")
    if labels is None:
        labels = _nearest(_quantizer(centroids), X)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(X),) or (len(labels) and (labels.min() < 0 or labels.max() >= len(centroids))):
        raise InvalidParameterError(
            f"labels must be (n,) = ({len(X)},) cluster numbers in [0, {len(centroids)}), "
            f"got shape {labels.shape}"
        )
    out = np.zeros(len(centroids), dtype=np.float64)
    for start in range(0, len(X), BLOCK_ROWS):
        rows = slice(start, start + BLOCK_ROWS)
        sq = ((X[rows].astype(np.float64) - centroids[labels[rows]]) ** 2).sum(axis=1)
        np.maximum.at(out, labels[rows], sq)
    return out.astype(np.float32)


@dataclass(frozen=True)
class ClusterRadii:
    """Centroids (K, d) and each cluster's largest member distance ``max_distances`` (K,)."""

    centroids: np.ndarray
    max_distances: np.ndarray

    @classmethod
    def from_data(cls, X: Any, centroids: Any, labels: Any = None) -> ClusterRadii:
        """Compute ``max_distances`` from the clustered vectors X (n, d) (see module notes)."""
        centroids = as_matrix(centroids, None, "centroids")
        return cls(centroids, cluster_max_distances(X, centroids, labels))

    @cached_property
    def _quantizer(self) -> Any:
        return _quantizer(as_matrix(self.centroids, None, "centroids"))

    def assign(self, queries: np.ndarray) -> np.ndarray:
        """The cluster of each query (m, d): nearest centroid, (m,) int64."""
        return _nearest(self._quantizer, as_matrix(queries, self.centroids.shape[1], "queries"))

    def confidence(self, queries: np.ndarray, distances: np.ndarray) -> np.ndarray:
        """``clip(1 - d / max_d[cluster(query)], 0, 1)`` for distances (m, r) of queries (m, d)."""
        max_d = self.max_distances[self.assign(queries)].astype(np.float64)[:, None]
        d = np.asarray(distances, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            conf = np.where(max_d > 0, 1.0 - d / np.where(max_d > 0, max_d, 1.0), (d <= 0) * 1.0)
        return np.clip(conf, 0.0, 1.0).astype(np.float32)


class MatchCalibrator:
    """P(same label | cosine similarity), fitted on labelled neighbour pairs.

    Parameters
    ----------
    method : ``isotonic`` (monotone, non-parametric; default) or ``logistic`` (a sigmoid).

    Fitted attributes: ``x_`` and ``y_`` (isotonic knots: P is linear between them, constant
    beyond) or ``coef_`` and ``intercept_`` (logistic), ``n_pairs_``, ``positive_rate_`` (share
    of same-label pairs). Predicting needs only numpy; :meth:`to_arrays` / :meth:`from_arrays`
    store and restore the fitted state.
    """

    def __init__(self, method: str = "isotonic") -> None:
        self.method = method

    def fit(self, similarities: Any, same_label: Any) -> MatchCalibrator:
        """Fit on pairs: similarities (n,) in [-1, 1] and same_label (n,) bool; returns self."""
        if self.method not in CALIBRATION_METHODS:
            raise InvalidParameterError(f"method must be one of {CALIBRATION_METHODS}, got {self.method!r}")
        sims = np.asarray(similarities, dtype=np.float64).ravel()
        same = np.asarray(same_label, dtype=bool).ravel()
        if sims.shape != same.shape or not np.isfinite(sims).all():
            raise InvalidParameterError(
                f"similarities and same_label must be finite (n,) arrays of equal length, "
                f"got {sims.shape} and {same.shape}"
            )
        if same.all() or not same.any():
            raise InvalidParameterError(
                f"calibration needs both same-label and different-label pairs; got {int(same.sum())} "
                f"same of {len(same)}"
            )
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression  # type: ignore[import-untyped]

            model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(sims, same * 1.0)
            self.x_ = np.asarray(model.X_thresholds_, dtype=np.float64)
            self.y_ = np.asarray(model.y_thresholds_, dtype=np.float64)
        else:
            from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

            model = LogisticRegression().fit(sims[:, None], same)
            self.coef_ = float(model.coef_[0, 0])
            self.intercept_ = float(model.intercept_[0])
        self.n_pairs_ = len(sims)
        self.positive_rate_ = float(same.mean())
        return self

    def predict_proba(self, similarities: Any) -> np.ndarray:
        """P(same label) for similarities of any shape: same shape, float32 in [0, 1]."""
        if not hasattr(self, "n_pairs_"):
            raise VectorIndexError("this MatchCalibrator is not fitted: call fit(similarities, same_label)")
        sims = np.asarray(similarities, dtype=np.float64)
        if self.method == "isotonic":
            proba = np.interp(sims, self.x_, self.y_)  # constant beyond the end knots ("clip")
        else:
            proba = 1.0 / (1.0 + np.exp(-(self.coef_ * sims + self.intercept_)))
        return np.clip(proba, 0.0, 1.0).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (for ``np.savez``)."""
        if not hasattr(self, "n_pairs_"):
            raise VectorIndexError("this MatchCalibrator is not fitted: nothing to save")
        if self.method == "isotonic":
            params = {"x": self.x_, "y": self.y_}
        else:
            params = {"coef": np.array(self.coef_), "intercept": np.array(self.intercept_)}
        return {"method": np.array(self.method), "n_pairs": np.array(self.n_pairs_),
                "positive_rate": np.array(self.positive_rate_), **params}

    @classmethod
    def from_arrays(cls, arrays: Any) -> MatchCalibrator:
        """A fitted calibrator from :meth:`to_arrays` output; missing keys raise VectorIndexError."""
        try:
            calibrator = cls(str(arrays["method"]))
            if calibrator.method == "isotonic":
                calibrator.x_ = np.asarray(arrays["x"], dtype=np.float64)
                calibrator.y_ = np.asarray(arrays["y"], dtype=np.float64)
            else:
                calibrator.coef_ = float(arrays["coef"])
                calibrator.intercept_ = float(arrays["intercept"])
            calibrator.n_pairs_ = int(arrays["n_pairs"])
            calibrator.positive_rate_ = float(arrays["positive_rate"])
        except KeyError as exc:
            raise VectorIndexError(f"stored match calibrator lacks {exc}") from exc
        return calibrator


def labelled_pairs(
    query_ids: np.ndarray, neighbor_ids: np.ndarray, neighbor_sims: np.ndarray, label_of: dict[int, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """(similarity, same label?) for every neighbour pair whose two ends are labelled.

    query_ids (n,), neighbor_ids (n, k) with -1 padding, neighbor_sims (n, k);
    ``label_of`` maps an id to its label (unlabelled ids are absent). Returns two (p,) arrays.
    """
    sims: list[float] = []
    same: list[bool] = []
    for qid, row_ids, row_sims in zip(query_ids.tolist(), neighbor_ids.tolist(), neighbor_sims.tolist()):
        q_label = label_of.get(qid)
        if q_label is None:
            continue
        for nid, sim in zip(row_ids, row_sims):
            n_label = label_of.get(nid) if nid >= 0 else None
            if n_label is not None:
                sims.append(sim)
                same.append(n_label == q_label)
    return np.asarray(sims, dtype=np.float64), np.asarray(same, dtype=bool)

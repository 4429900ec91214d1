"""Scores attached to search results: cluster confidence and calibrated match probability.

Distances are squared L2 between unit vectors, ``d = ||q - x||^2 = 2 - 2 cos(q, x)`` in [0, 4].

Confidence (the reference design's definition): ``confidence = 1 - d / max_d`` where ``max_d``
is the largest distance inside the query's cluster; the query's cluster is its nearest centroid
(squared L2, as k-means assigns). Two ways to read "largest distance inside the cluster":

- :class:`ClusterSpan` (what library search uses): ``max_d`` = the largest squared distance
  from *the query* to a member of its cluster, computed per query over the members' vectors.
  Every member of the query's cluster then scores in [0, 1], its farthest member exactly 0.
- :class:`ClusterRadii` (cheap, per cluster): ``max_d`` = the largest squared distance from a
  member to the centroid (:func:`cluster_max_distances`). Distances between two points are about
  twice that, so most results score 0 with it; ``ivf`` indexes use it when given nothing else.

Either value is clipped to [0, 1]: 1 for an identical vector. It is a heuristic ranking aid,
not a probability.

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
_ZERO, _ONE = np.float32(0.0), np.float32(1.0)


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
    if len(X) == 1:  # one query: one OpenMP thread, as VectorIndex.knn runs it
        from lookalike.index.base import single_thread_search

        return single_thread_search(quantizer, X, 1)[1][:, 0]
    _, labels = quantizer.search(X, 1)
    return np.asarray(labels[:, 0].astype(np.int64))


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

    def confidence(self, queries: np.ndarray, distances: np.ndarray, clusters: np.ndarray | None = None) -> np.ndarray:
        """``clip(1 - d / max_d[cluster(query)], 0, 1)`` for distances (m, r) of queries (m, d);
        ``clusters`` (m,) are the queries' clusters when already known."""
        own = self.assign(queries) if clusters is None else clusters
        if len(own) == 1:  # one query: a scalar scale, few array calls
            max_d = float(self.max_distances[own[0]])
            if max_d > 0:
                conf: np.ndarray = np.multiply(distances, np.float32(-1.0 / max_d), dtype=np.float32)
                conf += _ONE
                np.maximum(conf, _ZERO, out=conf)
                np.minimum(conf, _ONE, out=conf)
                return conf
        return _confidence(self.max_distances[own].astype(np.float64)[:, None], distances)


class ClusterSpan:
    """Confidence with ``max_d`` = the largest squared distance from the query to a member of
    its cluster (see the module notes).

    Parameters
    ----------
    centroids : (K, d) cluster centres; a query belongs to the nearest one.
    member_ids : (n,) ids of the clustered items; member_labels : (n,) their cluster in [0, K).
    vectors_of : returns the unit vectors (m, d) of given ids (m,), e.g. an index's reconstruct.
    cache_rows : member vectors kept between queries (per cluster, least recently used first out).
    """

    def __init__(
        self, centroids: Any, member_ids: Any, member_labels: Any, vectors_of: Any, cache_rows: int = 200_000
    ) -> None:
        self.centroids = as_matrix(centroids, None, "centroids")
        labels = np.asarray(member_labels, dtype=np.int64)
        ids = np.asarray(member_ids, dtype=np.int64)
        if labels.shape != ids.shape or (len(labels) and (labels.min() < 0 or labels.max() >= len(self.centroids))):
            raise InvalidParameterError(
                f"member_labels must be ({len(ids)},) cluster numbers in [0, {len(self.centroids)})"
            )
        order = np.argsort(labels, kind="stable")
        self._ids = ids[order]
        self._offsets = np.searchsorted(labels[order], np.arange(len(self.centroids) + 1))
        self._vectors_of = vectors_of
        self._cache: dict[int, np.ndarray] = {}
        self._cache_rows = cache_rows
        self._quantizer = _quantizer(self.centroids)

    def assign(self, queries: np.ndarray) -> np.ndarray:
        """The cluster of each query (m, d): nearest centroid, (m,) int64."""
        return _nearest(self._quantizer, as_matrix(queries, self.centroids.shape[1], "queries"))

    def max_distances(self, queries: np.ndarray, clusters: np.ndarray | None = None) -> np.ndarray:
        """Per unit query (m, d), the largest squared distance to a member of its cluster: (m,)."""
        out = np.zeros(len(queries), dtype=np.float64)
        own = self.assign(queries) if clusters is None else clusters
        for row, cluster in enumerate(own.tolist()):
            members = self._members(cluster)
            if len(members):
                out[row] = max(0.0, 2.0 - 2.0 * float((members @ queries[row]).min()))
        return out

    def confidence(self, queries: np.ndarray, distances: np.ndarray, clusters: np.ndarray | None = None) -> np.ndarray:
        """``clip(1 - d / max_d(query), 0, 1)`` for distances (m, r) of unit queries (m, d);
        ``clusters`` (m,) are the queries' clusters when already known."""
        return _confidence(self.max_distances(queries, clusters)[:, None], distances)

    def _members(self, cluster: int) -> np.ndarray:
        if cluster not in self._cache:
            ids = self._ids[self._offsets[cluster] : self._offsets[cluster + 1]]
            vectors = np.asarray(self._vectors_of(ids), dtype=np.float32) if len(ids) else np.zeros((0, 0))
            while self._cache and sum(len(v) for v in self._cache.values()) + len(vectors) > self._cache_rows:
                self._cache.pop(next(iter(self._cache)))
            self._cache[cluster] = vectors
        return self._cache[cluster]


def _confidence(max_d: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """``clip(1 - d / max_d, 0, 1)`` broadcast; where max_d is 0 only d = 0 scores 1."""
    if max_d.size and float(max_d.min()) > 0:  # the common case, in a few array operations
        fast: np.ndarray = np.asarray(distances, dtype=np.float64) / max_d
        np.subtract(1.0, fast, out=fast)
        np.clip(fast, 0.0, 1.0, out=fast)
        return fast.astype(np.float32)
    d = np.asarray(distances, dtype=np.float64)
    positive = max_d > 0
    conf = np.where(positive, 1.0 - d / np.where(positive, max_d, 1.0), (d <= 0) * 1.0)  # never divides by 0
    return np.minimum(np.maximum(conf, 0.0), 1.0).astype(np.float32)


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
            self.x_, self.y_ = isotonic_fit(sims, same * 1.0)
        else:
            from sklearn.linear_model import LogisticRegression

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
        return np.asarray(np.clip(proba, 0.0, 1.0).astype(np.float32))

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


def isotonic_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares non-decreasing fit of y (n,) on x (n,) (pool adjacent violators).

    Returns the knots (xs, ys), (u,) each, xs increasing: the fit at x is ``np.interp(x, xs,
    ys)``, as scikit-learn's ``IsotonicRegression(out_of_bounds="clip")`` predicts, without
    importing scikit-learn (seconds on a cold start).
    """
    xs, inverse = np.unique(x, return_inverse=True)
    weights = np.bincount(inverse).astype(np.float64)
    means = np.bincount(inverse, weights=y) / weights
    # a stack of blocks: (mean, weight, first knot); merge while the last two decrease
    block_mean: list[float] = []
    block_weight: list[float] = []
    block_start: list[int] = []
    for i, (m, w) in enumerate(zip(means.tolist(), weights.tolist())):
        block_mean.append(m)
        block_weight.append(w)
        block_start.append(i)
        while len(block_mean) > 1 and block_mean[-2] >= block_mean[-1]:
            w2, m2 = block_weight.pop(), block_mean.pop()
            block_start.pop()
            total = block_weight[-1] + w2
            block_mean[-1] = (block_mean[-1] * block_weight[-1] + m2 * w2) / total
            block_weight[-1] = total
    starts = np.array(block_start + [len(xs)])
    fitted = np.repeat(np.array(block_mean), np.diff(starts))
    return xs.astype(np.float64), np.clip(fitted, 0.0, 1.0)


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

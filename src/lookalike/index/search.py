"""Search an index: validated queries, id filters, and scored results.

Each result carries the cosine ``similarity``, the ``distance`` = squared L2 between the unit
vectors = ``2 - 2 * similarity``, the cluster ``confidence`` (see :mod:`.scores`; present when
cluster centroids are known: always for ``ivf``, via ``clusters=`` otherwise) and the calibrated
match ``probability`` (present only with a fitted :class:`MatchCalibrator`).

Filters run inside FAISS (an ``IDSelectorBatch`` in the search parameters), so a query returns
up to k *allowed* results rather than k results shortened afterwards. An ``allowed_ids`` set of
at most :data:`EXACT_FILTER_MAX` ids is instead answered exactly by comparing the query with
those vectors only (cheaper, and exact for every kind). With ``ivf`` the larger filters apply
within the probed clusters, so a cluster with fewer than k allowed members gives fewer results.

``k`` larger than the number of (allowed) vectors returns all of them: a result list holds
*up to* k entries, best first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike._faiss import import_faiss
from lookalike.errors import InvalidParameterError, VectorIndexError
from lookalike.index._checks import (
    as_ids,
    as_queries,
    as_unit_matrix,
    check_k,
    mean_query,
)
from lookalike.index.base import VectorIndex
from lookalike.index.ivf import IVFIndex
from lookalike.index.scores import ClusterRadii, ClusterSpan, MatchCalibrator, labelled_pairs

_ZERO, _ONE, _MINUS_ONE, _TWO, _MINUS_TWO = (np.float32(v) for v in (0.0, 1.0, -1.0, 2.0, -2.0))
EXACT_FILTER_MAX = 2048
"""``allowed_ids`` sets up to this size are searched exactly over their members."""


@dataclass(frozen=True)
class Neighbors:
    """The results of one query, best first; every array has shape (r,), r <= k."""

    ids: np.ndarray
    similarities: np.ndarray
    distances: np.ndarray
    confidences: np.ndarray | None = None
    probabilities: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per result: id, similarity, distance, confidence, probability (or None)."""
        rows = []
        for i in range(len(self)):
            rows.append(
                {
                    "id": int(self.ids[i]),
                    "similarity": float(self.similarities[i]),
                    "distance": float(self.distances[i]),
                    "confidence": None if self.confidences is None else float(self.confidences[i]),
                    "probability": None if self.probabilities is None else float(self.probabilities[i]),
                }
            )
        return rows


def search(
    index: VectorIndex,
    queries: Any,
    k: int,
    *,
    nprobe: int | None = None,
    ef_search: int | None = None,
    allowed_ids: Any = None,
    exclude_ids: Any = None,
    clusters: ClusterRadii | ClusterSpan | None = None,
    calibrator: MatchCalibrator | None = None,
) -> list[Neighbors]:
    """The k nearest stored vectors of each query (m, d) or (d,), as one Neighbors per query.

    Queries are normalised (cosine is scale-free); NaN, infinite or zero queries are refused.
    ``nprobe`` (ivf) and ``ef_search`` (hnsw) override the index defaults; giving one to
    another kind raises. ``allowed_ids`` restricts results to those ids; ``exclude_ids`` removes
    ids (e.g. the query image itself). ``clusters`` (ClusterRadii or ClusterSpan) defines the confidence
    (``ivf`` uses its own radii when None); ``calibrator`` adds match probabilities.
    """
    k = check_k(k)
    n_stored = len(index)
    if n_stored == 0:
        raise VectorIndexError("the index is empty: add vectors before searching")
    Q = as_queries(queries, index.dim)
    options = index.check_options(nprobe=nprobe, ef_search=ef_search)
    if allowed_ids is None and exclude_ids is None:  # the common case, kept short: no selector
        if clusters is None and isinstance(index, IVFIndex):  # its coarse search finds the query's cluster
            sims, labels, own = index.routed_knn(Q, min(k, n_stored), options)
            return _results(Q, sims, labels, index.cluster_radii(), calibrator, own)
        sims, labels = index.knn_checked(Q, min(k, n_stored), None, options)
        return _results(Q, sims, labels, clusters, calibrator)
    allowed = None if allowed_ids is None else np.unique(as_ids(allowed_ids, "allowed_ids", unique=False))
    excluded = None if exclude_ids is None else np.unique(as_ids(exclude_ids, "exclude_ids", unique=False))
    k = min(k, len(index))
    if allowed is not None and len(allowed) <= EXACT_FILTER_MAX:
        sims, labels = _subset_knn(index, Q, k, allowed, excluded)
    else:
        sims, labels = _filtered_knn(index, Q, k, allowed, excluded, options)
    if clusters is None and hasattr(index, "cluster_radii"):
        clusters = index.cluster_radii()
    return _results(Q, sims, labels, clusters, calibrator)


def search_like(index: VectorIndex, ids: Any, k: int, *, exclude_self: bool = True, **kwargs: Any) -> Neighbors:
    """Search with the stored vectors of ``ids`` as one query (their mean, re-normalised).

    ``exclude_self`` leaves the query ids out of the results; other keywords go to :func:`search`.
    """
    ids = as_ids(ids, "query ids", unique=False)
    query = mean_query(index.reconstruct(ids))
    if exclude_self:
        extra = kwargs.pop("exclude_ids", None)
        kwargs["exclude_ids"] = ids if extra is None else np.concatenate([ids, as_ids(extra, unique=False)])
    return search(index, query, k, **kwargs)[0]


def _filtered_knn(
    index: VectorIndex,
    Q: np.ndarray,
    k: int,
    allowed: np.ndarray | None,
    excluded: np.ndarray | None,
    options: dict[str, int],
) -> tuple[np.ndarray, np.ndarray]:
    """FAISS search with allowed/excluded ids as one IDSelector (None when no filter)."""
    faiss = import_faiss()
    parts = []
    if allowed is not None:
        parts.append(faiss.IDSelectorBatch(allowed))
    if excluded is not None and len(excluded):
        parts.append(faiss.IDSelectorBatch(excluded))
        parts.append(faiss.IDSelectorNot(parts[-1]))
    selector = None
    if allowed is not None and len(parts) == 3:
        selector = faiss.IDSelectorAnd(parts[0], parts[2])
    elif parts:
        selector = parts[-1]
    result = index.knn_checked(Q, k, selector, options)
    del parts  # the selectors had to outlive the search
    return result


def _subset_knn(
    index: VectorIndex, Q: np.ndarray, k: int, allowed: np.ndarray, excluded: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact search over the allowed ids that are stored and not excluded; -1 pads."""
    members = allowed[index.contains(allowed)]
    if excluded is not None:
        members = members[~np.isin(members, excluded)]
    sims = np.full((len(Q), k), -np.inf, dtype=np.float32)
    labels = np.full((len(Q), k), -1, dtype=np.int64)
    if len(members):
        scores = Q @ index.reconstruct(members).T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        r = order.shape[1]
        sims[:, :r] = np.take_along_axis(scores, order, axis=1)
        labels[:, :r] = members[order]
    return sims, labels


def _results(
    Q: np.ndarray,
    sims: np.ndarray,
    labels: np.ndarray,
    clusters: ClusterRadii | ClusterSpan | None,
    calibrator: MatchCalibrator | None,
    own_clusters: np.ndarray | None = None,
) -> list[Neighbors]:
    """Scored Neighbors per query from FAISS-style (m, k) arrays with -1 padding;
    ``own_clusters`` (m,) are the queries' clusters when the search already found them."""
    if len(Q) == 1 and labels.shape[1] and labels[0, -1] >= 0:  # one query, every slot filled
        return [_one_full_row(Q, sims[0], labels[0], clusters, calibrator, own_clusters)]
    # -1 pads the end of a row (results come best first), so the last column tells completeness
    last = labels[:, -1] if labels.shape[1] else labels[:, :0]
    found = None if bool(np.all(last >= 0)) else labels >= 0
    similarity, distance = _similarity_distance(sims if found is None else np.where(found, sims, _ZERO))
    confidence = None if clusters is None else clusters.confidence(Q, distance, own_clusters)
    probability = None if calibrator is None else calibrator.predict_proba(similarity)
    out = []
    for i in range(len(Q)):
        keep = slice(None) if found is None else found[i]  # whole rows are views
        out.append(
            Neighbors(
                ids=labels[i, keep],
                similarities=similarity[i, keep],
                distances=distance[i, keep],
                confidences=None if confidence is None else confidence[i, keep],
                probabilities=None if probability is None else probability[i, keep],
            )
        )
    return out


def _one_full_row(
    Q: np.ndarray,
    sims: np.ndarray,
    ids: np.ndarray,
    clusters: ClusterRadii | ClusterSpan | None,
    calibrator: MatchCalibrator | None,
    own_clusters: np.ndarray | None,
) -> Neighbors:
    """:func:`_results` for one query (1, d) whose k slots (k,) all hold a result: the same
    numbers with no masks or row slicing (a single query pays microseconds for each)."""
    similarity, distance = _similarity_distance(sims)
    return Neighbors(
        ids=ids,
        similarities=similarity,
        distances=distance,
        confidences=None if clusters is None else clusters.confidence(Q, distance[None], own_clusters)[0],
        probabilities=None if calibrator is None else calibrator.predict_proba(similarity),
    )


def _similarity_distance(sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Similarities clipped to [-1, 1] (NaN stays NaN) as float32, and ``2 - 2 * similarity``,
    exactly, hence >= 0."""
    similarity = np.minimum(sims, _ONE, dtype=np.float32)
    np.maximum(similarity, _MINUS_ONE, out=similarity)
    distance = similarity * _MINUS_TWO
    distance += _TWO
    return similarity, distance


def member_neighbors(
    index: VectorIndex, ids: Any, k: int, *, vectors: Any = None, batch_size: int = 1024, **options: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out neighbours of stored items: each id's k nearest *other* stored vectors.

    ``vectors`` (n, d) are the items' vectors (read from the index when None). Processed in
    batches, so memory is O(batch_size * k). Returns ids (n, k) int64 and similarities (n, k)
    float32, padded with -1 and NaN where fewer than k others exist.
    """
    ids = as_ids(ids, "ids", unique=False)
    k = check_k(k)
    checked = index.check_options(**options)
    kk = min(k + 1, len(index))
    out_ids = np.full((len(ids), k), -1, dtype=np.int64)
    out_sims = np.full((len(ids), k), np.nan, dtype=np.float32)
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        if vectors is None:
            X = index.reconstruct(batch)
        else:
            X = as_unit_matrix(np.asarray(vectors)[start : start + batch_size], index.dim, "vectors")
        sims, labels = index.knn(X, kk, None, **checked)
        keep = (labels >= 0) & (labels != batch[:, None])
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # kept first, rank order kept
        kept = np.take_along_axis(keep, order, axis=1)
        rows = slice(start, start + len(batch))
        out_ids[rows, : order.shape[1]] = np.where(kept, np.take_along_axis(labels, order, axis=1), -1)
        out_sims[rows, : order.shape[1]] = np.where(kept, np.take_along_axis(sims, order, axis=1), np.nan)
    return out_ids, out_sims


def fit_calibrator(
    index: VectorIndex, ids: Any, labels: Any, *, k: int = 10, method: str = "isotonic"
) -> MatchCalibrator | None:
    """A MatchCalibrator fitted on the leave-one-out neighbours of the labelled items.

    ``ids`` (n,) and ``labels`` (n,) list the labelled items (a None label = unlabelled).
    Pairs count only when both ends are labelled. Returns None when there is nothing to
    calibrate on: no labels, or not both same-label and different-label pairs.
    """
    ids = as_ids(ids, "ids")
    labels = list(labels)
    if len(labels) != len(ids):
        raise InvalidParameterError(f"labels: expected {len(ids)} (one per id), got {len(labels)}")
    label_of = {int(i): lab for i, lab in zip(ids.tolist(), labels) if lab is not None}
    if not label_of:
        return None
    query_ids = np.fromiter(label_of, dtype=np.int64)
    nbr_ids, nbr_sims = member_neighbors(index, query_ids, k)
    sims, same = labelled_pairs(query_ids, nbr_ids, nbr_sims, label_of)
    if len(same) == 0 or same.all() or not same.any():
        return None
    return MatchCalibrator(method).fit(sims, same)

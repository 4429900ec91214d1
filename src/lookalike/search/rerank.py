"""Query-time re-ranking on unit vectors: αQE, DBA and k-reciprocal re-ranking (arrays in, arrays out).

Every function takes L2-normalised float32 vectors (inner product = cosine) and does no I/O.
The searcher (:mod:`lookalike.search.searcher`) and the evaluation (:mod:`lookalike.evaluate.compare`)
call the same :func:`rerank_pool`, so what is measured is what users get:

1. the index returns a *pool* of the query's ``pool`` nearest candidates (filters applied);
2. the pool is re-ordered by one method and its first ``k`` are the results.

Methods (Radenović et al. 2018 for αQE/DBA; Zhong et al. 2017 for k-reciprocal):

- ``aqe``: ``q' = normalise(q + Σ_{i<n} max(s_i, 0)^α x_i)`` over the query's ``n`` nearest
  candidates ``x_i`` (similarities ``s_i``); candidates are scored by ``q' · x``.
- ``dba``: every library vector is replaced by the same weighted mean over its own ``n`` nearest
  library neighbours (:func:`dba_vectors`, stored beside the reduced vectors and updated when
  images are added); candidates are scored by ``q · x'``, then ``q`` is expanded by αQE over the
  augmented candidates (the combination the papers recommend).
- ``kreciprocal``: within the pool ∪ {query}, k-reciprocal neighbour sets (``k1``), their
  expansion, local query expansion (``k2``) and the Jaccard distance, mixed with the original
  distance by ``lambda`` (:func:`kreciprocal_distances`, vectorised; equal to the authors'
  reference code restricted to the pool).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lookalike.errors import InvalidParameterError

RERANK_METHODS = ("none", "aqe", "dba", "kreciprocal")
GRAPH_CHUNK = 2048


@dataclass(frozen=True)
class RerankConfig:
    """Settings of the re-ranking methods: αQE and DBA chosen on Fashion-MNIST images 3000–6000
    (a grid over n in 2..12 and α in 1, 3; none of the reported sets), k-reciprocal the paper's.

    Attributes
    ----------
    pool : candidates taken from the index before re-ranking (at least ``k``).
    qe_n, qe_alpha : neighbours and exponent of αQE.
    dba_n, dba_alpha : neighbours (self excluded) and exponent of DBA.
    k1, k2, lam : k-reciprocal neighbourhood, local expansion and original-distance weight.
    """

    pool: int = 100
    qe_n: int = 3
    qe_alpha: float = 3.0
    dba_n: int = 3
    dba_alpha: float = 3.0
    k1: int = 20
    k2: int = 6
    lam: float = 0.3

    def __post_init__(self) -> None:
        for name in ("pool", "qe_n", "dba_n", "k1", "k2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidParameterError(f"rerank {name} must be an integer >= 1, got {value!r}")
        if not 0.0 <= self.lam <= 1.0:
            raise InvalidParameterError(f"rerank lam must be in [0, 1], got {self.lam}")
        if self.qe_alpha < 0 or self.dba_alpha < 0:
            raise InvalidParameterError(f"rerank alphas must be >= 0, got {self.qe_alpha}, {self.dba_alpha}")


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`RERANK_METHODS`, else an error listing them."""
    if method not in RERANK_METHODS:
        raise InvalidParameterError(f"rerank must be one of {', '.join(RERANK_METHODS)}; got {method!r}")
    return method


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def expand(vectors: np.ndarray, neighbours: np.ndarray, sims: np.ndarray, alpha: float) -> np.ndarray:
    """Weighted query expansion: ``normalise(v + Σ_i max(s_i, 0)^α x_i)``.

    Parameters
    ----------
    vectors : (m, d) vectors to expand.
    neighbours : (m, n, d) each vector's neighbours.
    sims : (m, n) their similarities to the vector.
    alpha : exponent of the weights (0: plain average query expansion).

    Returns
    -------
    (m, d) float32 unit vectors.
    """
    weights = np.maximum(sims, 0.0) ** alpha
    return _normalise(vectors + np.einsum("mn,mnd->md", weights, neighbours))


def neighbour_graph(vectors: np.ndarray, n: int, *, against: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``n`` nearest other rows by inner product, exactly (chunked matrix products).

    Parameters
    ----------
    vectors : (m, d) unit vectors (the rows whose neighbours are wanted).
    n : neighbours per row (clamped to the rows available).
    against : (N, d) vectors to search, default ``vectors`` itself (then a row never finds itself).

    Returns
    -------
    (m, n) int64 row indices into ``against``, best first; (m, n) float32 similarities.
    """
    base = vectors if against is None else against
    n = min(n, base.shape[0] - (1 if against is None else 0))
    out_i = np.empty((vectors.shape[0], n), dtype=np.int64)
    out_s = np.empty((vectors.shape[0], n), dtype=np.float32)
    for start in range(0, vectors.shape[0], GRAPH_CHUNK):
        sims = vectors[start : start + GRAPH_CHUNK] @ base.T
        if against is None:
            rows = np.arange(sims.shape[0])
            sims[rows, start + rows] = -np.inf
        top = np.argpartition(-sims, n - 1, axis=1)[:, :n] if n < sims.shape[1] else np.tile(np.arange(n), (len(sims), 1))
        top_s = np.take_along_axis(sims, top, 1)
        order = np.argsort(-top_s, axis=1, kind="stable")
        out_i[start : start + GRAPH_CHUNK] = np.take_along_axis(top, order, 1)
        out_s[start : start + GRAPH_CHUNK] = np.take_along_axis(top_s, order, 1)
    return out_i, out_s


def dba_vectors(vectors: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """Database-side augmentation: each (N, d) unit vector expanded over its ``n`` nearest others."""
    if vectors.shape[0] < 2:
        return vectors.astype(np.float32, copy=True)
    rows, sims = neighbour_graph(vectors, n)
    return expand(vectors, vectors[rows], sims, alpha)


def update_dba(
    old: tuple[np.ndarray, np.ndarray, np.ndarray], ids: np.ndarray, vectors: np.ndarray, n: int, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """DBA vectors of ``(ids (N,), vectors (N, d))`` reusing a previous state where it still holds.

    ``old`` = (ids, DBA vectors, neighbour ids (N_old, n)) of an earlier state. A row is recomputed
    when it is new, when one of its stored neighbours is gone, or when an added image is nearer
    than its last stored neighbour; everything else is copied. Returns (DBA vectors (N, d),
    neighbour ids (N, n)), identical to recomputing from scratch up to ties.
    """
    old_ids, old_dba, old_nbr = old
    position = {int(i): row for row, i in enumerate(old_ids.tolist())}
    rows_old = np.array([position.get(int(i), -1) for i in ids.tolist()], dtype=np.int64)
    known = rows_old >= 0
    n_eff = min(n, len(ids) - 1)
    if n_eff < 1 or old_nbr.shape[1] != n_eff:
        return _full_dba(ids, vectors, n, alpha)
    nbr = np.full((len(ids), n_eff), -1, dtype=np.int64)
    nbr[known] = old_nbr[rows_old[known]]
    alive = np.isin(nbr, ids) & known[:, None]
    redo = np.asarray(~alive.all(axis=1), dtype=bool)
    added = np.flatnonzero(~known)
    if added.size:
        kept = np.flatnonzero(~redo)
        last_rows = _rows_of(ids, nbr[kept, -1])
        for start in range(0, kept.size, GRAPH_CHUNK):
            part = kept[start : start + GRAPH_CHUNK]
            last = np.einsum("md,md->m", vectors[part], vectors[last_rows[start : start + GRAPH_CHUNK]])
            best_new = (vectors[part] @ vectors[added].T).max(axis=1)
            redo[part[best_new > last]] = True
    out = np.empty_like(vectors, dtype=np.float32)
    out[~redo] = old_dba[rows_old[~redo]]
    todo = np.flatnonzero(redo)
    if todo.size:
        rows, sims = _graph_without_self(vectors, todo, n_eff)
        out[todo] = expand(vectors[todo], vectors[rows], sims, alpha)
        nbr[todo] = ids[rows]
    return out, nbr


def _rows_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions in ``ids`` (n,) of the image ids ``wanted`` (all present)."""
    order = np.argsort(ids, kind="stable")
    return order[np.searchsorted(ids[order], wanted)]


def _graph_without_self(vectors: np.ndarray, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours (rows into ``vectors``) of ``vectors[rows]``, each row itself excluded."""
    found_i, found_s = neighbour_graph(vectors[rows], n + 1, against=vectors)
    keep = found_i != rows[:, None]
    out_i = np.stack([r[m][:n] for r, m in zip(found_i, keep)])
    out_s = np.stack([s[m][:n] for s, m in zip(found_s, keep)])
    return out_i, out_s


def _full_dba(ids: np.ndarray, vectors: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    if len(ids) < 2:
        return vectors.astype(np.float32, copy=True), np.zeros((len(ids), 0), dtype=np.int64)
    rows, sims = neighbour_graph(vectors, n)
    return expand(vectors, vectors[rows], sims, alpha), ids[rows]


def kreciprocal_distances(pool: np.ndarray, k1: int = 20, k2: int = 6, lam: float = 0.3) -> np.ndarray:
    """k-reciprocal re-ranking distance from row 0 (the query) to every row of ``pool``.

    Zhong et al., "Re-ranking Person Re-identification with k-reciprocal Encoding" (CVPR 2017),
    applied to the set ``pool`` (query first, then its candidates), vectorised: the same numbers as
    the authors' reference implementation on that set (row 0 of its ``final_dist``).

    Parameters
    ----------
    pool : (p, d) unit vectors, the query in row 0.
    k1, k2 : k-reciprocal neighbourhood size and local query expansion size.
    lam : weight of the original (row-max-normalised squared Euclidean) distance.

    Returns
    -------
    (p,) float64 distances (smaller is nearer; entry 0 is the query itself).
    """
    x = pool.astype(np.float64)
    sq = np.sum(x * x, axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
    dist = dist / np.maximum(dist.max(axis=1, keepdims=True), 1e-12)
    rank = np.argsort(dist, axis=1, kind="stable")
    recip = _reciprocal(rank, k1)
    half = _reciprocal(rank, int(round(k1 / 2)))
    overlap = half.astype(np.int32) @ recip.T.astype(np.int32)  # [c, i] = |R_half(c) ∩ R(i)|
    sizes = half.sum(axis=1)
    grow = recip & (overlap.T > (2.0 / 3.0) * sizes[None, :])  # [i, c]: c's half set joins i's
    expanded = recip | ((grow.astype(np.int32) @ half.astype(np.int32)) > 0)
    weights = np.where(expanded, np.exp(-dist), 0.0)
    v = weights / weights.sum(axis=1, keepdims=True)
    if k2 != 1:
        v = v[rank[:, :k2]].mean(axis=1)
    shared = np.minimum(v[0][None, :], v).sum(axis=1)
    jaccard = 1.0 - shared / (2.0 - shared)
    return (1.0 - lam) * jaccard + lam * dist[0]


def _reciprocal(rank: np.ndarray, k: int) -> np.ndarray:
    """(p, p) bool: j is among i's first k+1 and i among j's first k+1 (self included)."""
    p = rank.shape[0]
    top = np.zeros((p, p), dtype=bool)
    np.put_along_axis(top, rank[:, : k + 1], True, axis=1)
    return top & top.T


def rerank_pool(
    method: str,
    query: np.ndarray,
    candidates: np.ndarray,
    config: RerankConfig,
    augmented: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Order a pool of candidates for one query.

    Parameters
    ----------
    method : one of :data:`RERANK_METHODS`.
    query : (d,) unit vector.
    candidates : (p, d) the pool's unit vectors, nearest first (as the index returned them).
    config : the methods' settings.
    augmented : (p, d) the candidates' DBA vectors (required for ``dba``).

    Returns
    -------
    (p,) int64 order of the candidates (best first); (p,) float32 re-ranking scores in that
    order (higher is better: a similarity, or minus the k-reciprocal distance).
    """
    check_method(method)
    if len(candidates) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if method == "none":
        scores = candidates @ query
    elif method == "aqe":
        scores = _aqe_scores(query, candidates, candidates, config)
    elif method == "dba":
        if augmented is None:
            raise InvalidParameterError("rerank 'dba' needs the candidates' DBA vectors")
        scores = _aqe_scores(query, augmented, augmented, config)
    else:
        pool = np.vstack([query[None], candidates])
        scores = -kreciprocal_distances(pool, config.k1, config.k2, config.lam)[1:]
    order = np.argsort(-scores, kind="stable")
    return order.astype(np.int64), scores[order].astype(np.float32)


def _aqe_scores(query: np.ndarray, first: np.ndarray, scored: np.ndarray, config: RerankConfig) -> np.ndarray:
    """Scores of ``scored`` (p, d) against ``query`` expanded over its nearest rows of ``first``."""
    sims = first @ query
    top = np.argsort(-sims, kind="stable")[: config.qe_n]
    expanded = expand(query[None], first[top][None], sims[top][None], config.qe_alpha)[0]
    result: np.ndarray = scored @ expanded
    return result

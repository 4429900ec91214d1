"""Pick K for K-Means: inertia curve + kneedle elbow, sampled silhouette, and a stated choice.

Each K is fitted once (``n_init=1``) with FAISS training on at most 256 points per centroid
(FAISS's default sampling), then inertia is measured on *all* points; the silhouette is measured
on a seeded sample of ``sample_size`` points with labels from that fit. The elbow is found with
kneedle (Satopää et al., 2011, implemented in :func:`knee_index`): after scaling both axes to
[0, 1], the knee is the point farthest below the chord joining the curve's ends.

Recommendation rule: the silhouette peak, unless it sits on the edge of the swept range (a hint
that the best K lies outside it) and an elbow exists, in which case the elbow; the elbow when
there is no silhouette; else the smallest K. ``reason`` states which rule fired.

:func:`choose_cut` gives the same evidence for the cuts of one fitted agglomerative tree (no
refits: cutting is cheap), with the within-cluster sum of squares in place of inertia.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike.cluster._groups import group_means
from lookalike.cluster.kmeans import KMeans
from lookalike.cluster.metrics import sampled_silhouette
from lookalike.errors import InvalidParameterError
from lookalike.validation import as_matrix, check_int, check_n_clusters, refuse_identical


@dataclass(frozen=True)
class KChoice:
    """The sweep's curves (for plotting) and the recommended K with its reason."""

    k_values: tuple[int, ...]
    inertia: tuple[float, ...]
    silhouette: tuple[float | None, ...]
    silhouette_sample_size: int
    elbow_k: int | None
    silhouette_k: int | None
    recommended_k: int
    reason: str
    seconds: tuple[float, ...]


def choose_k(
    X: Any,
    k_values: Iterable[int],
    *,
    sample_size: int = 5_000,
    seed: int = 0,
    max_iter: int = 20,
    max_points_per_centroid: int | None = 256,
    on_step: Callable[[int], None] | None = None,
) -> KChoice:
    """Sweep K over ``k_values`` on ``X`` (n, d) and recommend one.

    ``sample_size`` bounds the silhouette sample (0 skips the silhouette);
    ``max_points_per_centroid`` bounds each fit's training sample (None: all points);
    ``on_step(k)`` is called after each K (progress).
    """
    x = as_matrix(X)
    ks = _check_k_values(k_values, x.shape[0])
    _check_sweep(x, sample_size, seed, "choosing K")

    def fit(k: int) -> tuple[np.ndarray, float]:
        km = KMeans(
            k, n_init=1, max_iter=max_iter, seed=seed, max_points_per_centroid=max_points_per_centroid,
            refine_iter=0,
        ).fit(x)
        return km.labels_, km.inertia_

    return sweep_k(x, ks, fit, sample_size=sample_size, seed=seed, on_step=on_step)


def choose_cut(
    X: Any,
    tree: Any,
    k_values: Iterable[int],
    *,
    sample_size: int = 5_000,
    seed: int = 0,
    on_step: Callable[[int], None] | None = None,
) -> KChoice:
    """Recommend where to cut a fitted agglomerative ``tree`` (``Agglomerative``) of ``X`` (n, d).

    The same evidence as :func:`choose_k`, from cuts of the one tree instead of K-Means fits:
    ``inertia`` is each cut's within-cluster sum of squares (Ward's objective).
    """
    x = as_matrix(X)
    n_leaves = int(tree.leaf_sizes_.shape[0])
    ks = _check_k_values(k_values, min(x.shape[0], n_leaves))
    _check_sweep(x, sample_size, seed, "choosing K")

    def fit(k: int) -> tuple[np.ndarray, float]:
        labels = tree.cut(k)
        return labels, within_sum_of_squares(x, labels)

    return sweep_k(x, ks, fit, sample_size=sample_size, seed=seed, on_step=on_step)


def within_sum_of_squares(x: np.ndarray, labels: np.ndarray) -> float:
    """Sum of squared distances of rows of ``x`` (n, d) to their cluster mean (labels 0..K-1)."""
    means, _ = group_means(x, labels, int(labels.max()) + 1)
    return float(((x - means[labels].astype(np.float32)) ** 2).sum(dtype=np.float64))


def sweep_k(
    x: np.ndarray,
    ks: list[int],
    fit: Callable[[int], tuple[np.ndarray, float]],
    *,
    sample_size: int,
    seed: int,
    on_step: Callable[[int], None] | None = None,
) -> KChoice:
    """Evidence for each K in ``ks`` (checked) from ``fit(k) -> (labels (n,), inertia)``."""
    inertia, silhouette, seconds = [], [], []
    used = 0
    for k in ks:
        start = time.perf_counter()
        labels, value = fit(k)
        inertia.append(float(value))
        score = None
        if sample_size >= 2:
            score, used = sampled_silhouette(x, labels, sample_size=sample_size, seed=seed)
        silhouette.append(score)
        seconds.append(time.perf_counter() - start)
        if on_step is not None:
            on_step(k)
    elbow = knee_index(np.array(ks, float), np.array(inertia), direction="decreasing")
    elbow_k = None if elbow is None else ks[elbow]
    scored = [(s, k) for s, k in zip(silhouette, ks) if s is not None]
    silhouette_k = max(scored)[1] if scored else None
    recommended, reason = _recommend(ks, elbow_k, silhouette_k, {k: s for s, k in scored})
    return KChoice(
        k_values=tuple(ks),
        inertia=tuple(inertia),
        silhouette=tuple(silhouette),
        silhouette_sample_size=used,
        elbow_k=elbow_k,
        silhouette_k=silhouette_k,
        recommended_k=recommended,
        reason=reason,
        seconds=tuple(seconds),
    )


def _check_sweep(x: np.ndarray, sample_size: int, seed: int, what: str) -> None:
    if check_int(sample_size, "sample_size", low=0) == 1:
        raise InvalidParameterError("sample_size must be 0 (no silhouette) or >= 2; got 1")
    check_int(seed, "seed", low=0)
    refuse_identical(x, what=what)


def knee_index(x: np.ndarray, y: np.ndarray, *, direction: str = "decreasing") -> int | None:
    """Kneedle knee of a convex curve ``y(x)`` (x increasing), or None when there is no bend.

    ``direction="decreasing"``: an elbow such as inertia vs K; ``"increasing"``: a knee such
    as sorted k-distances. Needs at least 3 points.
    """
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    xn = (x - x.min()) / np.ptp(x)
    yn = (y - y.min()) / np.ptp(y)
    gap = (1.0 - xn - yn) if direction == "decreasing" else (xn - yn)
    best = int(np.argmax(gap))
    return best if gap[best] > 1e-9 else None


def _recommend(
    ks: list[int], elbow_k: int | None, silhouette_k: int | None, scores: dict[int, float]
) -> tuple[int, str]:
    elbow_text = f"elbow at {elbow_k}" if elbow_k is not None else "no elbow"
    if silhouette_k is None:
        if elbow_k is not None:
            return elbow_k, f"{elbow_text}; no silhouette computed: chose the elbow"
        return ks[0], f"{elbow_text}; no silhouette computed: chose the smallest K"
    peak = f"silhouette peak at {silhouette_k} ({scores[silhouette_k]:.3f})"
    on_edge = len(ks) > 2 and silhouette_k in (ks[0], ks[-1])
    if on_edge and elbow_k is not None:
        return elbow_k, f"{elbow_text}; {peak} is at the edge of the range: chose the elbow"
    return silhouette_k, f"{elbow_text}; {peak}: chose the silhouette peak"


def _check_k_values(k_values: Iterable[int], n_points: int) -> list[int]:
    try:
        ks = sorted({check_n_clusters(k, n_points, name="k") for k in k_values})
    except TypeError as exc:
        raise InvalidParameterError(f"k_values must be an iterable of integers; got {k_values!r}") from exc
    if not ks:
        raise InvalidParameterError("k_values is empty; give at least one K (3 or more to find an elbow)")
    return ks

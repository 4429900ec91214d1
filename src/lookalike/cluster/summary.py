"""Per-cluster summaries: size, medoid, representatives, spread, and a human-readable name.

Naming, first that applies: the majority known label with its share ("cat (82%)"); else the
most common predicted classes among members ("tabby (40%), tiger cat (25%)"), from one top
class name — or a short list of top names — per point; else "cluster N". Noise (label -1) gets
no summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike.cluster._groups import group_means
from lookalike.cluster.metrics import NOISE, check_labels
from lookalike.errors import InvalidParameterError
from lookalike.validation import as_matrix, check_int


@dataclass(frozen=True)
class ClusterSummary:
    """One cluster. Indices refer to rows of the summarised ``X``.

    ``medoid`` is the member nearest the centre (mean); ``representatives`` the nearest few,
    medoid first; ``spread`` the mean Euclidean distance of members to the centre;
    ``name_source`` is ``labels``, ``classes`` or ``index``; ``name_share`` the share of members
    carrying the (first) naming label or class, None for ``index`` names.
    """

    cluster: int
    size: int
    medoid: int
    representatives: tuple[int, ...]
    spread: float
    name: str
    name_source: str
    name_share: float | None


def summarize_clusters(
    X: Any,
    labels: Any,
    *,
    true_labels: Any = None,
    class_predictions: Sequence[str | Sequence[str]] | None = None,
    n_representatives: int = 5,
    n_name_classes: int = 2,
) -> list[ClusterSummary]:
    """Summaries of every cluster in ``labels`` (n,) over ``X`` (n, d), by cluster id."""
    x = as_matrix(X)
    lab = check_labels(labels, x.shape[0]).astype(np.int64)
    check_int(n_representatives, "n_representatives", low=1)
    check_int(n_name_classes, "n_name_classes", low=1)
    truth = None if true_labels is None else check_labels(true_labels, x.shape[0], name="true_labels")
    if class_predictions is not None and len(class_predictions) != x.shape[0]:
        raise InvalidParameterError(
            f"class_predictions has {len(class_predictions)} entries; expected one per point ({x.shape[0]})"
        )
    if lab.size and lab.min() < NOISE:
        raise InvalidParameterError(f"labels must be >= -1 (-1 = noise); got {lab.min()}")
    members = np.flatnonzero(lab != NOISE)
    if members.size == 0:
        return []
    clusters, dense = np.unique(lab[members], return_inverse=True)
    means, sizes = group_means(x[members], dense, clusters.size)
    dist = np.linalg.norm(x[members] - means[dense].astype(np.float32), axis=1)
    spread = np.bincount(dense, weights=dist) / sizes
    order = members[np.lexsort((dist, dense))]
    starts = np.concatenate(([0], np.cumsum(sizes)))
    out = []
    for c, cluster in enumerate(clusters):
        group = order[starts[c] : starts[c + 1]]
        name, source, share = _name(int(cluster), group, truth, class_predictions, n_name_classes)
        out.append(
            ClusterSummary(
                cluster=int(cluster),
                size=int(sizes[c]),
                medoid=int(group[0]),
                representatives=tuple(int(i) for i in group[:n_representatives]),
                spread=float(spread[c]),
                name=name,
                name_source=source,
                name_share=share,
            )
        )
    return out


def _name(
    cluster: int,
    group: np.ndarray,
    truth: np.ndarray | None,
    predictions: Sequence[str | Sequence[str]] | None,
    n_classes: int,
) -> tuple[str, str, float | None]:
    """Name, its source and the leading share for one cluster's member indices ``group``."""
    if truth is not None:
        values, counts = np.unique(truth[group], return_counts=True)
        best = int(np.argmax(counts))
        share = float(counts[best] / group.size)
        return f"{values[best]} ({share:.0%})", "labels", share
    if predictions is not None:
        counter: Counter[str] = Counter()
        for i in group:
            item = predictions[int(i)]
            counter.update({item} if isinstance(item, str) else set(item))
        top = counter.most_common(n_classes)
        if top:
            text = ", ".join(f"{name} ({count / group.size:.0%})" for name, count in top)
            return text, "classes", top[0][1] / group.size
    return f"cluster {cluster}", "index", None

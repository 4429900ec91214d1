"""Per-group reductions over points, without Python loops over points."""

from __future__ import annotations

import numpy as np


def group_means(x: np.ndarray, labels: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean row of each group: (n_groups, d) float64 and sizes (n_groups,) int64.

    ``labels`` (n,) are ints in ``[0, n_groups)``; empty groups get a zero mean and size 0.
    """
    sizes = np.bincount(labels, minlength=n_groups)
    order = np.argsort(labels, kind="stable")
    present = np.flatnonzero(sizes)
    starts = np.concatenate(([0], np.cumsum(sizes[present])[:-1]))
    means = np.zeros((n_groups, x.shape[1]))
    means[present] = np.add.reduceat(x[order], starts, axis=0, dtype=np.float64) / sizes[present, None]
    return means, sizes

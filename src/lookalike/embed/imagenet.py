"""The 1000 ImageNet-1k class names and turning logits into named top-k predictions.

``imagenet_classes.txt`` (one name a line, in class-index order) was taken from torchvision 0.29.2
(PyPI wheel, file ``torchvision/models/_meta.py``, list ``_IMAGENET_CATEGORIES``, BSD-3-Clause),
the names torchvision shows for its own ImageNet weights. Index 281 is "tabby", 285 "Egyptian cat".
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from lookalike.errors import InvalidParameterError

NUM_CLASSES = 1000


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 class names, index ``i`` naming logit ``i``."""
    text = resources.files(__package__).joinpath("imagenet_classes.txt").read_text("utf-8")
    names = tuple(line for line in text.splitlines() if line)
    if len(names) != NUM_CLASSES:  # a packaging mistake, not user input
        raise RuntimeError(f"imagenet_classes.txt has {len(names)} names, expected {NUM_CLASSES}")
    return names


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits, computed in float64 for stability; returns (N, C)."""
    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def top_k_classes(logits: np.ndarray, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """Named top-k predictions from ImageNet logits.

    Parameters
    ----------
    logits : (N, 1000) array of unnormalised scores.
    top_k : how many classes per image, 1..1000.

    Returns
    -------
    For each image, ``top_k`` pairs ``(class name, probability)``, most probable first.
    """
    if logits.ndim != 2 or logits.shape[1] != NUM_CLASSES:
        raise InvalidParameterError(f"logits must have shape (N, {NUM_CLASSES}), got {logits.shape}")
    if not 1 <= top_k <= NUM_CLASSES:
        raise InvalidParameterError(f"top_k must be in 1..{NUM_CLASSES}, got {top_k}")
    probs = softmax(logits)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
    names = imagenet_classes()
    return [[(names[j], float(row[j])) for j in idx] for row, idx in zip(probs, order)]

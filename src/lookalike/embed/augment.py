"""Test-time augmentation: a library's vectors averaged over simple views of each image.

``augment`` (recorded in the manifest's ``[embed]`` record; ``"none"`` for libraries made before
it existed) names the views of a uint8 model input ``(N, S, S, 3)`` whose raw embeddings are
averaged into the one stored vector:

- ``none``: the image;
- ``flip``: the image and its horizontal mirror: every vector is then exactly invariant to a
  left-right flip of the image (a mirrored copy gets the same vector);
- ``flip-zoom``: those two and, of each, the centre ``ZOOM`` crop resized back to ``S`` (a
  two-scale average).

Embedding cost grows with the number of views (2x for ``flip``, 4x for ``flip-zoom``). The same
wrapper embeds query images, so queries and the library always share the views. ImageNet class
predictions come from the logits averaged over the views.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike.embed.base import Backbone
from lookalike.errors import InvalidParameterError

AUGMENTS = ("none", "flip", "flip-zoom")
DEFAULT_AUGMENT = "none"
ZOOM = 0.8
"""Share of the side kept by the zoomed view of ``flip-zoom``."""


def check_augment(augment: str) -> str:
    """``augment`` if known, else an error listing :data:`AUGMENTS`."""
    if augment not in AUGMENTS:
        raise InvalidParameterError(f"augment must be one of {', '.join(AUGMENTS)}; got {augment!r}")
    return augment


def views(batch: np.ndarray, augment: str) -> np.ndarray:
    """The views of a uint8 batch ``(N, S, S, 3)`` stacked view-major: ``(V * N, S, S, 3)``."""
    check_augment(augment)
    if augment == "none":
        return batch
    stacked = [batch, batch[:, :, ::-1, :]]
    if augment == "flip-zoom":
        stacked += [_zoom(view) for view in stacked]
    return np.ascontiguousarray(np.concatenate(stacked))


def _zoom(batch: np.ndarray) -> np.ndarray:
    """Centre crop of :data:`ZOOM` of each side, resized back (OpenCV bilinear)."""
    import cv2

    size = batch.shape[1]
    keep = max(1, round(size * ZOOM))
    start = (size - keep) // 2
    crops = batch[:, start : start + keep, start : start + keep]
    return np.stack([cv2.resize(np.ascontiguousarray(c), (size, size), interpolation=cv2.INTER_LINEAR) for c in crops])


def mean_over_views(values: np.ndarray, n_views: int) -> np.ndarray:
    """``(V * N, D)`` view-major rows -> their ``(N, D)`` float32 mean per image."""
    mean: np.ndarray = values.reshape(n_views, -1, values.shape[1]).mean(axis=0).astype(np.float32)
    return mean


class AugmentedBackbone(Backbone):
    """Wraps a backbone: each embedding (and the logits) is the mean over :func:`views`."""

    def __init__(self, base: Backbone, augment: str) -> None:
        self.base = base
        self.augment = check_augment(augment)
        self.spec = base.spec
        self.weights_sha256 = base.weights_sha256
        self.n_views = {"none": 1, "flip": 2, "flip-zoom": 4}[augment]

    def _embed(self, batch: np.ndarray) -> np.ndarray:
        return mean_over_views(self.base._embed(views(batch, self.augment)), self.n_views)

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        return mean_over_views(self.base._logits(views(batch, self.augment)), self.n_views)

    def _embed_and_logits(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        embeddings, logits = self.base._embed_and_logits(views(batch, self.augment))
        return mean_over_views(embeddings, self.n_views), mean_over_views(logits, self.n_views)

    def manifest(self) -> dict[str, Any]:
        return {**self.base.manifest(), "augment": self.augment}


def augmented(backbone: Backbone, augment: str) -> Backbone:
    """``backbone`` itself for ``none``, else wrapped in :class:`AugmentedBackbone`."""
    return backbone if check_augment(augment) == "none" else AugmentedBackbone(backbone, augment)

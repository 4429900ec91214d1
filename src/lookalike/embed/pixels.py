"""The raw-pixels baseline backbone: no model, no torch, no ONNX.

The decoder resizes each image to 32×32 RGB (``spec.image_size``); the embedding is those pixels
flattened in (row, column, channel) order and scaled to [0, 1]: 3072 float32 values. It is
deterministic and fast, so tests of everything downstream run in seconds, and it is the floor
that learned backbones are compared against.
"""

from __future__ import annotations

import hashlib

import numpy as np

from lookalike.embed.base import Backbone, BackboneSpec

ALGORITHM = "lookalike-pixels-v1: uint8 RGB (N, 32, 32, 3) -> float32 (N, 3072) = x / 255, C order"
"""Describes the computation; its SHA-256 stands in for a weights hash in library manifests."""


class PixelsBackbone(Backbone):
    """Embeds a uint8 batch ``(N, S, S, 3)`` as ``batch.reshape(N, -1) / 255`` in float32."""

    def __init__(self, spec: BackboneSpec) -> None:
        self.spec = spec
        self.weights_sha256 = hashlib.sha256(ALGORITHM.encode("utf-8")).hexdigest()

    def _embed(self, batch: np.ndarray) -> np.ndarray:
        flat = batch.reshape(len(batch), -1).astype(np.float32)
        flat /= np.float32(255.0)
        return flat

"""Fused backbones: ``efficientnet-lite0+efficientnet-lite2`` (any ``+`` list, optional weights).

A fused name lists registered backbones joined by ``+``, each optionally weighted as
``name*w`` (default 1): ``efficientnet-lite0*0.5+efficientnet-lite2``. The embedding of an image
is the concatenation of each part's L2-normalised embedding times its weight, so the inner
product of two fused vectors is the weighted sum of the parts' cosines (``Σ w_i² cos_i``).

Input: the decoder makes one square uint8 image per file at the largest part's input size (and
its centre crop); each smaller part gets it resized with OpenCV's area filter. The recorded
weights hash is the SHA-256 of the parts' hashes and weights, so a library refuses a fused
backbone whose parts changed. ImageNet classes come from the first part that has a head.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from lookalike.embed.base import Backbone, BackboneSpec
from lookalike.errors import InvalidParameterError

SEPARATOR = "+"
_PART = re.compile(r"^(?P<name>[^*]+?)(?:\*(?P<weight>[0-9]*\.?[0-9]+))?$")


def is_fused(name: str) -> bool:
    """Whether ``name`` lists several backbones."""
    return SEPARATOR in name and not name.startswith("autoencoder:")


def parse_fused(name: str) -> list[tuple[str, float]]:
    """``"a*0.5+b"`` -> ``[("a", 0.5), ("b", 1.0)]``; refuses empty parts and weights <= 0."""
    parts = []
    for piece in name.split(SEPARATOR):
        match = _PART.match(piece.strip())
        if not match or not match.group("name").strip():
            raise InvalidParameterError(f"fused backbone {name!r}: cannot read part {piece!r}; expected NAME or NAME*WEIGHT")
        weight = float(match.group("weight") or 1.0)
        if weight <= 0:
            raise InvalidParameterError(f"fused backbone {name!r}: weight of {piece!r} must be > 0")
        parts.append((match.group("name").strip(), weight))
    if len(parts) < 2:
        raise InvalidParameterError(f"fused backbone {name!r} needs at least two parts joined by '+'")
    return parts


def fused_spec(name: str, get_spec: Callable[[str], BackboneSpec]) -> BackboneSpec:
    """The spec of a fused name (parts resolved by ``get_spec``): dims added, the largest input
    size and its crop."""
    specs = [get_spec(part) for part, _ in parse_fused(name)]
    largest = max(specs, key=lambda s: s.image_size)
    head = next((s for s in specs if s.has_classifier), None)
    return replace(
        largest, name=name, dim=sum(s.dim for s in specs), has_classifier=head is not None,
        normalization=" | ".join(f"{s.name}: {s.normalization}" for s in specs),
        weights_source=" + ".join(f"{s.name}: {s.weights_source}" for s in specs),
    )  # fmt: skip


class FusedBackbone(Backbone):
    """Concatenated, L2-normalised, weighted embeddings of several loaded backbones."""

    def __init__(self, spec: BackboneSpec, parts: list[tuple[Backbone, float]]) -> None:
        self.spec = spec
        self.parts = parts
        digest = hashlib.sha256()
        for backbone, weight in parts:
            digest.update(f"{backbone.spec.name}:{backbone.weights_sha256}:{weight!r};".encode())
        self.weights_sha256 = digest.hexdigest()

    def _inputs(self, batch: np.ndarray, spec: BackboneSpec) -> np.ndarray:
        import cv2

        size = spec.image_size
        if size == batch.shape[1]:
            return batch
        return np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) for image in batch])

    def _embed(self, batch: np.ndarray) -> np.ndarray:
        blocks = []
        for backbone, weight in self.parts:
            vectors = backbone._embed(self._inputs(batch, backbone.spec)).astype(np.float32)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            blocks.append(vectors * np.float32(weight))
        return np.concatenate(blocks, axis=1)

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        backbone = next(b for b, _ in self.parts if b.spec.has_classifier)
        return backbone._logits(self._inputs(batch, backbone.spec))


def load_fused(spec: BackboneSpec, load: Callable[[str], Backbone]) -> FusedBackbone:
    """Every part of fused ``spec`` loaded by ``load(part name)`` (each with its own default weights)."""
    return FusedBackbone(spec, [(load(part), weight) for part, weight in parse_fused(spec.name)])

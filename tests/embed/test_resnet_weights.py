"""ResNet-50's torchvision state_dict layout, and clear errors for weights of the wrong kind."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from lookalike.embed.registry import load_backbone
from lookalike.embed.resnet import ResNet50
from lookalike.errors import BackboneError

TORCHVISION_RESNET50_LAYOUT_SHA256 = "781bb16f43b8f96f5f2ada850a89ff3e7a89c845484027404ea1ba359f00987a"
"""SHA-256 of the ``"key:shape"`` lines (newline-joined, in order) of
``torchvision.models.resnet.ResNet(Bottleneck, [3, 4, 6, 3]).state_dict()``, computed from the
resnet.py of the torchvision 0.29.2 wheel (torchvision itself cannot be imported here)."""

TORCHVISION_RESNET50_NUM_PARAMS = 25_557_032  # ResNet50_Weights.IMAGENET1K_V2.meta["num_params"]


def test_state_dict_layout_matches_torchvision() -> None:
    model = ResNet50()
    lines = [f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items()]
    assert len(lines) == 320
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == TORCHVISION_RESNET50_LAYOUT_SHA256
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_RESNET50_NUM_PARAMS


@pytest.mark.slow
def test_features_and_logits_shapes() -> None:
    model = ResNet50().eval()
    with torch.no_grad():
        x = torch.randn(2, 3, 64, 64)
        assert model.features(x).shape == (2, 2048, 2, 2)
        assert model(x).shape == (2, 1000)


def test_wrong_architecture_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "not-resnet.pth"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).state_dict(), path)
    with pytest.raises(BackboneError, match=r"not-resnet\.pth does not hold resnet50 weights.*missing keys"):
        load_backbone("resnet50", weights=path, cache_dir=tmp_path)


def test_shape_mismatch_is_reported(tmp_path: Path) -> None:
    state = ResNet50(num_classes=10).state_dict()
    path = tmp_path / "ten-classes.pth"
    torch.save(state, path)
    with pytest.raises(
        BackboneError, match=r"2 shape mismatches.*fc\.weight: file \(10, 2048\) vs model \(1000, 2048\)"
    ):
        load_backbone("resnet50", weights=path, cache_dir=tmp_path)


def test_resnet_weights_given_to_efficientnet_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "resnet.pth"
    torch.save(ResNet50().state_dict(), path)
    with pytest.raises(BackboneError, match="does not hold efficientnet-lite0 weights"):
        load_backbone("efficientnet-lite0", weights=path, cache_dir=tmp_path)


def test_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "junk.pth"
    path.write_bytes(b"this is not a pickle")
    with pytest.raises(BackboneError, match=r"junk\.pth: cannot be read as a PyTorch state_dict"):
        load_backbone("mobilenetv2", weights=path, cache_dir=tmp_path)

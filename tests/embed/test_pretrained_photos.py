"""Pretrained backbones on real photos (scikit-image samples), through the ONNX Runtime path.

Checks, per backbone: the exported model agrees with PyTorch on each photo (cosine >= 0.999),
the ImageNet head names chelsea a cat, and the spec's normalisation is the one the weights were
trained with (the first BatchNorm's running statistics fit it best).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lookalike.embed.base import BackboneSpec
from lookalike.embed.imagenet import imagenet_classes
from lookalike.embed.pretrained import build_resnet50, read_state_dict
from lookalike.embed.registry import (
    get_entry,
    load_backbone,
    resolve_weights,
)
from lookalike.embed.resnet import ResNet50

data = pytest.importorskip("skimage.data")

PHOTOS = ("chelsea", "astronaut", "coffee", "rocket", "camera", "hubble_deep_field", "immunohistochemistry")
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat
PRETRAINED = ("efficientnet-lite0", "efficientnet-lite2", "mobilenetv2")

pytestmark = pytest.mark.slow


def centre_crop(image: np.ndarray, size: int, crop_fraction: float) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) -> (size, size, 3): resize shorter side to size/crop_fraction, crop."""
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    picture = Image.fromarray(rgb)
    scale = size / crop_fraction / min(picture.size)
    picture = picture.resize(
        (round(picture.width * scale), round(picture.height * scale)), Image.Resampling.BICUBIC
    )
    left, top = (picture.width - size) // 2, (picture.height - size) // 2
    return np.asarray(picture.crop((left, top, left + size, top + size)))


def photo_batch(spec: BackboneSpec) -> np.ndarray:
    return np.stack([centre_crop(getattr(data, n)(), spec.image_size, spec.crop_fraction) for n in PHOTOS])


def torch_reference(spec: BackboneSpec, weights: Path, batch: np.ndarray) -> np.ndarray:
    """Embeddings from the PyTorch model with preprocessing done here in numpy, not in the graph."""
    module, _, function = get_entry(spec.name).target.partition(":")
    build = getattr(__import__(module, fromlist=[function]), function)
    trunk, _ = build(spec, weights)
    x = (batch.astype(np.float32) - np.float32(spec.mean)) / np.float32(spec.std)
    with torch.no_grad():
        return trunk.eval()(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lookalike-cache")


@pytest.mark.parametrize("name", PRETRAINED)
def test_runtime_matches_pytorch_on_real_photos(name: str, cache_dir: Path) -> None:
    backbone = load_backbone(name, threads=2, cache_dir=cache_dir)
    batch = photo_batch(backbone.spec)
    got = backbone.embed(batch)
    expected = torch_reference(backbone.spec, resolve_weights(name), batch)
    assert got.shape == (len(PHOTOS), backbone.spec.dim) and got.dtype == np.float32
    cosines = row_cosines(got.astype(np.float64), expected.astype(np.float64))
    assert cosines.min() >= 0.999, dict(zip(PHOTOS, cosines.round(5)))
    between = row_cosines(got[:-1], got[1:])
    assert between.max() < 0.99, "distinct photos must not collapse onto one embedding"


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite2"])
def test_chelsea_is_predicted_as_a_cat(name: str, cache_dir: Path) -> None:
    backbone = load_backbone(name, threads=2, cache_dir=cache_dir)
    batch = photo_batch(backbone.spec)
    top = backbone.predict_classes(batch[:1], top_k=5)[0]
    cats = {imagenet_classes()[i] for i in CAT_CLASSES}
    assert top[0][0] in cats, top
    assert top[0][1] > 0.3 and sum(p for _, p in top) <= 1.0 + 1e-6


def test_resnet50_random_torchvision_state_dict_exports_correctly(tmp_path: Path, cache_dir: Path) -> None:
    torch.manual_seed(0)
    model = ResNet50()
    for module in model.modules():  # non-trivial BatchNorm statistics, as in trained weights
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    weights = tmp_path / "resnet50-random.pth"
    torch.save(model.state_dict(), weights)
    backbone = load_backbone("resnet50", weights=weights, threads=2, cache_dir=cache_dir)
    batch = photo_batch(backbone.spec)
    got = backbone.embed(batch).astype(np.float64)
    expected = torch_reference(backbone.spec, weights, batch).astype(np.float64)
    assert got.shape == (len(PHOTOS), 2048)
    assert row_cosines(got, expected).min() >= 0.999
    centred = row_cosines(got - expected.mean(axis=0), expected - expected.mean(axis=0))
    assert centred.min() >= 0.99  # random weights make photos alike; compare what distinguishes them
    _, head = build_resnet50(backbone.spec, weights)
    assert head is not None and len(backbone.predict_classes(batch[:2], top_k=1)) == 2


def _first_layer_fit(spec: BackboneSpec, weight: torch.Tensor, bn: str, state: dict, mean, std) -> float:
    """Mean |log(var / running_var)| of the stem's output channels on the photos for one normalisation."""
    batch = np.stack(
        [centre_crop(getattr(data, n)(), spec.image_size, spec.crop_fraction) for n in PHOTOS[:4]]
    )
    x = torch.from_numpy(
        ((batch - np.float32(mean)) / np.float32(std)).astype(np.float32).transpose(0, 3, 1, 2)
    )
    variance = F.conv2d(x, weight, stride=2, padding=1).var(dim=(0, 2, 3))
    running = state[f"{bn}.running_var"]
    alive = running > 1e-4
    return float((variance[alive] / running[alive]).log().abs().mean())


@pytest.mark.parametrize(
    ("name", "conv", "bn"),
    [
        ("efficientnet-lite0", "_conv_stem.weight", "_bn0"),
        ("efficientnet-lite2", "_conv_stem.weight", "_bn0"),
        ("mobilenetv2", "features.0.0.weight", "features.0.1"),
    ],
)
def test_spec_normalisation_is_what_the_weights_were_trained_with(name: str, conv: str, bn: str) -> None:
    spec = get_entry(name).spec
    state = read_state_dict(resolve_weights(name), name)
    candidates = {
        "spec": (spec.mean, spec.std),
        "[-1, 1]": ((127.0,) * 3, (128.0,) * 3),
        "imagenet": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
        "[0, 1]": ((0.0,) * 3, (255.0,) * 3),
    }
    fits = {k: _first_layer_fit(spec, state[conv], bn, state, *v) for k, v in candidates.items()}
    assert fits["spec"] == min(fits.values()), fits
    assert fits["spec"] < 0.5, fits


def test_concurrent_processes_share_one_export(tmp_path: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from lookalike.embed import runtime, registry as backbones\n"
        "real = runtime.export_onnx\n"
        "def counted(*a, **k):\n"
        "    print('EXPORTED', flush=True); return real(*a, **k)\n"
        "runtime.export_onnx = counted\n"
        "b = backbones.load_backbone('mobilenetv2', threads=1, cache_dir=sys.argv[1])\n"
        "x = runtime.parity_images(224, count=2)\n"
        "print('SUM', float(b.embed(x).astype(np.float64).sum()))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sum(o.count("EXPORTED") for o in outputs) == 1
    sums = {line for o in outputs for line in o.splitlines() if line.startswith("SUM")}
    assert len(sums) == 1
    files = sorted(p.suffix for p in (tmp_path / "onnx").iterdir())
    assert files == [".json", ".lock", ".onnx"]

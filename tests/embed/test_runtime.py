"""ONNX export cache, parity check and the ONNX Runtime backbone, on a tiny seeded model."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lookalike.embed import runtime
from lookalike.embed.base import BackboneSpec, weights_sha256
from lookalike.embed.pretrained import apply_state_dict, read_state_dict
from lookalike.errors import BackboneError, ExportMismatchError, InvalidParameterError

SPEC = BackboneSpec("tiny", 8, 24, 1.0, "(x - m) / s", True, "test", (120.0, 100.0, 80.0), (60.0, 50.0, 40.0))
MEAN_SPEC = BackboneSpec(
    "channel-mean", 3, 16, 1.0, "(x - m) / s", False, "test", (10.0, 20.0, 30.0), (2.0, 4.0, 8.0)
)


class TinyTrunk(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


class ChannelMean(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def _tiny_parts() -> nn.ModuleDict:
    return nn.ModuleDict({"trunk": TinyTrunk(), "head": nn.Linear(8, 1000)})


def build_tiny(spec: BackboneSpec, path: Path) -> tuple[nn.Module, nn.Module | None]:
    parts = _tiny_parts()
    apply_state_dict(parts, read_state_dict(path, spec.name), path, spec.name)
    return parts["trunk"], parts["head"] if spec.has_classifier else None


def build_channel_mean(spec: BackboneSpec, path: Path) -> tuple[nn.Module, None]:
    return ChannelMean(), None


def save_tiny_weights(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    torch.save(_tiny_parts().state_dict(), path)
    return path


@pytest.fixture()
def weights_file(tmp_path: Path) -> Path:
    return save_tiny_weights(tmp_path / "tiny-a.pth", seed=0)


@pytest.fixture()
def export_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    original = runtime.export_onnx

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args[-1])
        return original(*args, **kwargs)

    monkeypatch.setattr(runtime, "export_onnx", counting)
    return calls


def _images(n: int, size: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_preprocessing_is_baked_into_the_graph(tmp_path: Path, weights_file: Path) -> None:
    backbone = runtime.load_exported(
        MEAN_SPEC, build_channel_mean, weights_file, threads=1, cache_dir=tmp_path
    )
    batch = _images(3, 16)
    reference = ((batch.astype(np.float64) - MEAN_SPEC.mean) / MEAN_SPEC.std).mean(axis=(1, 2))
    got = backbone.embed(batch)
    assert got.dtype == np.float32 and got.shape == (3, 3)
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-5)  # RGB order, no BGR swap


def test_onnx_matches_torch_and_batch_axis_is_dynamic(tmp_path: Path, weights_file: Path) -> None:
    backbone = runtime.load_exported(SPEC, build_tiny, weights_file, threads=1, cache_dir=tmp_path)
    batch = _images(7, 24)
    trunk, head = build_tiny(SPEC, weights_file)
    x = (
        torch.from_numpy(batch).permute(0, 3, 1, 2).float() - torch.tensor(SPEC.mean).view(1, 3, 1, 1)
    ) / torch.tensor(SPEC.std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = trunk(x).numpy()
        logits = head(trunk(x)).numpy()  # type: ignore[misc]
    got = backbone.embed(batch)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(backbone.embed(batch[3:4]), expected[3:4], rtol=1e-4, atol=1e-5)
    top = backbone.predict_classes(batch, top_k=2)
    assert [len(t) for t in top] == [2] * 7
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        [t[0][1] for t in top], (exp / exp.sum(axis=1, keepdims=True)).max(axis=1), rtol=1e-4
    )


def test_batch_is_validated(tmp_path: Path, weights_file: Path) -> None:
    backbone = runtime.load_exported(SPEC, build_tiny, weights_file, cache_dir=tmp_path)
    with pytest.raises(InvalidParameterError, match=r"\(N, 24, 24, 3\), got \(2, 32, 32, 3\)"):
        backbone.embed(_images(2, 32))
    assert backbone.embed(np.zeros((0, 24, 24, 3), np.uint8)).shape == (0, 8)


def test_second_load_reuses_the_cache(tmp_path: Path, weights_file: Path, export_calls: list[Path]) -> None:
    runtime.load_exported(SPEC, build_tiny, weights_file, cache_dir=tmp_path)
    path = runtime.cached_model_path(SPEC, weights_sha256(weights_file), tmp_path)
    stamp = path.stat().st_mtime_ns
    runtime.load_exported(SPEC, build_tiny, weights_file, cache_dir=tmp_path)
    assert export_calls == [path]
    assert path.stat().st_mtime_ns == stamp
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["onnx_sha256"] == weights_sha256(path) and record["min_parity_cosine"] >= 0.999
    assert path.parent == tmp_path / "onnx"


def test_cache_is_keyed_by_weights_hash(tmp_path: Path, weights_file: Path, export_calls: list[Path]) -> None:
    other = save_tiny_weights(tmp_path / "tiny-b.pth", seed=1)
    first = runtime.load_exported(SPEC, build_tiny, weights_file, cache_dir=tmp_path)
    second = runtime.load_exported(SPEC, build_tiny, other, cache_dir=tmp_path)
    assert len(set(export_calls)) == 2 and all(p.is_file() for p in export_calls)
    assert first.weights_sha256 != second.weights_sha256
    batch = _images(2, 24)
    assert not np.allclose(first.embed(batch), second.embed(batch))


@pytest.mark.parametrize("damage", ["truncate", "flip-byte", "drop-sidecar", "garbage-sidecar"])
def test_damaged_cache_is_detected_and_reexported(
    tmp_path: Path, weights_file: Path, export_calls: list[Path], damage: str
) -> None:
    batch = _images(3, 24)
    before = runtime.load_exported(SPEC, build_tiny, weights_file, cache_dir=tmp_path).embed(batch)
    path = export_calls[0]
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip-byte":
        path.write_bytes(data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:])
    elif damage == "drop-sidecar":
        path.with_suffix(".json").unlink()
    else:
        path.with_suffix(".json").write_text("{not json")
    after = runtime.load_exported(SPEC, build_tiny, weights_file, cache_dir=tmp_path).embed(batch)
    assert len(export_calls) == 2
    np.testing.assert_allclose(after, before, rtol=1e-6)


def test_concurrent_loads_export_once(tmp_path: Path, weights_file: Path, export_calls: list[Path]) -> None:
    errors: list[Exception] = []

    def load() -> None:
        try:
            runtime.load_exported(SPEC, build_tiny, weights_file, cache_dir=tmp_path)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(export_calls) == 1
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir() if not p.name.endswith(".lock")) == sorted(
        [export_calls[0].name, export_calls[0].with_suffix(".json").name]
    )


class ExportDiffers(nn.Module):
    """Behaves differently when traced for export: the exported graph is wrong."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))
        return -pooled if torch.onnx.is_in_onnx_export() else pooled


def test_parity_failure_raises_and_caches_nothing(tmp_path: Path, weights_file: Path) -> None:
    with pytest.raises(ExportMismatchError, match=r"disagrees with PyTorch.*cosine -?\d"):
        runtime.load_exported(
            MEAN_SPEC, lambda spec, path: (ExportDiffers(), None), weights_file, cache_dir=tmp_path
        )
    assert [p.suffix for p in (tmp_path / "onnx").iterdir()] == [".lock"]


def test_headless_model_has_no_logits(tmp_path: Path, weights_file: Path) -> None:
    backbone = runtime.load_exported(MEAN_SPEC, build_channel_mean, weights_file, cache_dir=tmp_path)
    with pytest.raises(BackboneError, match="no ImageNet classifier"):
        backbone.predict_classes(_images(1, 16))


def test_parity_images_are_structured_not_noise() -> None:
    images = runtime.parity_images(64, count=4)
    assert images.shape == (4, 64, 64, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, runtime.parity_images(64, count=4))
    neighbour_diff = np.abs(np.diff(images.astype(float), axis=2)).mean()
    assert neighbour_diff < 0.25 * images.std()  # mostly smooth like photos; white noise: ~1.13x std


def test_unwritable_cache_dir_is_a_backbone_error(tmp_path: Path, weights_file: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(BackboneError, match="LOOKALIKE_CACHE"):
        runtime.load_exported(SPEC, build_tiny, weights_file, cache_dir=blocker)


def test_default_cache_dir_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path))
    assert runtime.default_cache_dir() == tmp_path
    monkeypatch.delenv("LOOKALIKE_CACHE")
    assert runtime.default_cache_dir() == Path.home() / ".cache" / "lookalike"

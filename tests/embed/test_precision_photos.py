"""Reduced precisions on real photos (scikit-image samples): int8 (ONNX Runtime and OpenVINO)
and bf16 vectors stay nearest to their own fp32 vectors, and an int8 library calibrates on its
first images, records them, and embeds new images with the same quantized model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import Library
from lookalike.embed import precision as prec
from lookalike.embed.reduced_precision import load_reduced, openvino_available
from lookalike.embed.registry import get_spec, load_backbone, resolve_weights, weights_sha256
from lookalike.embed.runtime import cached_model_path
from lookalike.io.decode import load_model_input, to_model_input

data = pytest.importorskip("skimage.data")
pytestmark = pytest.mark.slow

PHOTOS = ("chelsea", "astronaut", "coffee", "rocket", "camera", "coins", "hubble_deep_field",
          "immunohistochemistry", "retina", "page", "moon", "brick", "colorwheel", "grass")  # fmt: skip
NAME = "efficientnet-lite0"


def photos(size: int, crop: float) -> np.ndarray:
    """The sample photos as model inputs (n, size, size, 3), and their mirror images after them."""
    rgb = [np.asarray(Image.fromarray(getattr(data, n)()).convert("RGB")) for n in PHOTOS]
    inputs = [to_model_input(np.ascontiguousarray(a), size, crop) for a in rgb]
    return np.stack(inputs + [np.ascontiguousarray(a[:, ::-1]) for a in inputs])


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("onnx-cache")
    spec = get_spec(NAME)
    batch = photos(spec.image_size, spec.crop_fraction)
    fp32 = load_backbone(NAME, threads=2, cache_dir=cache)
    onnx_path = cached_model_path(spec, weights_sha256(resolve_weights(NAME)), cache)
    return spec, onnx_path, fp32, batch, fp32.embed(batch)


VARIANTS = [("int8", "onnxruntime"), ("int8", "openvino"), ("bf16", "openvino")]


@pytest.mark.parametrize(("precision", "runtime"), VARIANTS, ids=[f"{p}-{r}" for p, r in VARIANTS])
def test_reduced_vectors_are_nearest_to_their_own_fp32_vectors(reference, precision, runtime):
    if runtime == "openvino" and not openvino_available():
        pytest.skip("openvino is not installed")
    spec, onnx_path, fp32, batch, expected = reference
    model = load_reduced(spec, onnx_path, fp32.weights_sha256, precision, threads=2,
                         calibration=batch[: len(PHOTOS)], runtime=runtime)  # fmt: skip
    got = model.embed(batch)
    n = len(PHOTOS)
    same = np.arange(2 * n) % n  # photo i and its mirror image i + n count as one picture
    similarity = unit(got) @ unit(expected).T  # reduced precision against every fp32 vector
    assert np.array_equal(same[similarity.argmax(axis=1)], same), similarity.round(3)
    assert np.diag(similarity).min() > 0.5, np.diag(similarity).round(4)  # unrelated photos: ~0.1-0.2
    # the neighbour structure among different photos survives: each photo's closest other picture
    def nearest_other(v: np.ndarray) -> np.ndarray:
        s = unit(v) @ unit(v).T
        s[same[:, None] == same[None, :]] = -2
        return same[s.argmax(axis=1)]

    # (unrelated photos sit at cosine ~0.1-0.2, so this is a weak signal: int8 on an AVX2 CPU
    # without VNNI keeps 0.64-0.68 of them, bf16 all; the retrieval gate is the real judge)
    assert np.mean(nearest_other(got) == nearest_other(expected)) >= 0.5


def test_openvino_int8_model_is_cached_and_quantized_again_when_a_file_is_damaged(reference, monkeypatch):
    from lookalike.embed import reduced_precision as rp

    if not openvino_available():
        pytest.skip("openvino is not installed")
    spec, onnx_path, fp32, batch, _ = reference
    calls: list[Path] = []
    real = rp.quantize_openvino
    monkeypatch.setattr(rp, "quantize_openvino", lambda source, target, images: (calls.append(target), real(source, target, images)))
    path = rp.ensure_quantized(onnx_path, batch[:4], "openvino")
    assert path.suffix == ".xml" and path.with_suffix(".bin").is_file() and len(calls) == 1
    assert rp.ensure_quantized(onnx_path, batch[:4], "openvino") == path and len(calls) == 1  # cached
    weights = path.with_suffix(".bin")
    damaged = bytearray(weights.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    weights.write_bytes(bytes(damaged))
    assert rp.ensure_quantized(onnx_path, batch[:4], "openvino") == path and len(calls) == 2  # rebuilt
    assert not [f for f in path.parent.iterdir() if f.name.startswith(".")]  # no work folder left behind


def test_openvino_int8_keeps_the_first_last_and_depthwise_convolutions_float(reference):
    from lookalike.embed import reduced_precision as rp

    if not openvino_available():
        pytest.skip("openvino is not installed")
    import openvino as ov

    spec, onnx_path, fp32, batch, _ = reference
    model = ov.Core().read_model(str(rp.ensure_quantized(onnx_path, batch[:4], "openvino")))
    convolutions = [op for op in model.get_ordered_ops() if op.get_type_name() in ("Convolution", "GroupConvolution")]

    def int8(op: object) -> bool:  # NNCF puts a FakeQuantize on the activations it quantizes
        return any(i.get_source_output().get_node().get_type_name() == "FakeQuantize" for i in op.inputs())

    pointwise = [op for op in convolutions[1:-1] if op.get_type_name() == "Convolution"]
    depthwise = [op for op in convolutions if op.get_type_name() == "GroupConvolution"]
    assert not int8(convolutions[0]) and not int8(convolutions[-1])
    assert depthwise and not any(int8(op) for op in depthwise)
    assert pointwise and all(int8(op) for op in pointwise)
    assert rp.float_precision("bf16") == "bf16" and rp.float_precision("fp32") == "f32"
    assert rp.float_precision("int8") == ("bf16" if prec.runs_natively("bf16", prec.cpu_flags()) else "f32")


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_int8_library_calibrates_on_its_first_images(tmp_path, monkeypatch, reference, runtime):
    if runtime == "openvino" and not openvino_available():
        pytest.skip("openvino is not installed")
    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path / "cache"))
    gate = {"tolerance": 0.01, "backbones": {NAME: {
        "fp32": {"passed": True, "runtime": "onnxruntime"},
        "int8": {"passed": True, "runtime": runtime, "worst_delta": 0.0}}}}  # fmt: skip
    monkeypatch.setattr(prec, "gate_table", lambda path=None: gate)
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS[:6]:
        Image.fromarray(getattr(data, name)()).convert("RGB").save(folder / f"{name}.jpg", quality=92)
    with Library.create(tmp_path / "lib.lookalike", backbone=NAME, precision="int8") as lib:
        assert lib.manifest.embed.calibration_sha256 is None
        report = lib.add([folder])
        assert report.embedded == 6
        fingerprint = lib.manifest.embed.calibration_sha256
        assert fingerprint is not None and (lib.folder / "calibration.npy").is_file()
        ids, vectors = lib.embeddings()
        first = vectors.copy()
        paths = [Path(lib.catalog.query("SELECT path FROM files WHERE image_id = ?", (int(i),))[0][0]) for i in ids]
    with Library.open(tmp_path / "lib.lookalike", precision="int8") as lib:
        assert lib.manifest.embed.precision == "int8"
        assert lib.manifest.embed.calibration_sha256 == fingerprint
        spec = get_spec(NAME)
        inputs = [load_model_input(p, size=spec.image_size, crop_fraction=spec.crop_fraction, max_pixels=10**8)
                  for p in paths]  # fmt: skip
        again = lib.backbone().embed(np.stack(inputs))
    # the reopened library runs the same quantized model: vectors agree with the stored ones
    assert (unit(again) * unit(first)).sum(axis=1).min() > 0.999

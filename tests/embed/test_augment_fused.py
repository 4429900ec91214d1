"""Test-time augmentation, fused backbones and the automatic crop, on the pixels backbone
(exact numpy references) and, marked slow, on a real network."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike import Library
from lookalike.embed.augment import AugmentedBackbone, augmented, views
from lookalike.embed.crop import auto_crop, parse_crop_fraction
from lookalike.embed.fused import parse_fused
from lookalike.embed.registry import get_spec, load_backbone
from lookalike.errors import InvalidParameterError


@pytest.fixture
def batch() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)


def test_flip_embedding_is_the_mean_of_image_and_mirror(batch):
    base = load_backbone("pixels")
    flip = augmented(base, "flip")
    expected = (base.embed(batch) + base.embed(np.ascontiguousarray(batch[:, :, ::-1]))) / 2
    np.testing.assert_allclose(flip.embed(batch), expected, rtol=1e-6)
    np.testing.assert_allclose(flip.embed(np.ascontiguousarray(batch[:, :, ::-1])), flip.embed(batch), rtol=1e-6)
    assert augmented(base, "none") is base
    assert isinstance(augmented(base, "flip-zoom"), AugmentedBackbone)
    assert views(batch, "flip-zoom").shape == (20, 32, 32, 3)


def test_unknown_augment_is_refused():
    with pytest.raises(InvalidParameterError, match="augment must be one of none, flip, flip-zoom"):
        augmented(load_backbone("pixels"), "rotate")


def test_fused_backbone_concatenates_weighted_unit_vectors(batch):
    fused = load_backbone("pixels+pixels*0.5")
    part = load_backbone("pixels").embed(batch)
    unit = part / np.linalg.norm(part, axis=1, keepdims=True)
    np.testing.assert_allclose(fused.embed(batch), np.hstack([unit, 0.5 * unit]), rtol=1e-5)
    assert fused.spec.dim == 2 * 3072 and get_spec("pixels+pixels*0.5").dim == 6144
    assert fused.weights_sha256 != load_backbone("pixels+pixels").weights_sha256


@pytest.mark.parametrize("name, match", [("pixels+", "cannot read part"), ("pixels*0+pixels", "must be > 0"),
                                          ("pixels+vgg", "unknown backbone 'vgg'")], ids=["empty", "zero", "unknown"])
def test_bad_fused_names_are_refused(name, match):
    with pytest.raises(InvalidParameterError, match=match):
        get_spec(name)


def test_parse_fused_reads_weights():
    assert parse_fused("a*0.25+b") == [("a", 0.25), ("b", 1.0)]


def test_auto_crop_rule():
    assert auto_crop(np.array([28, 28, 30]), 224, 0.875)[0] == 1.0
    assert auto_crop(np.array([300, 500, 28]), 224, 0.875)[0] == 0.875
    assert auto_crop(np.array([]), 224, 0.875)[0] == 0.875
    assert parse_crop_fraction("auto") == "auto" and parse_crop_fraction("0.5") == 0.5
    with pytest.raises(InvalidParameterError, match="number in \\(0, 1\\] or 'auto'"):
        parse_crop_fraction("big")


def _images(folder, size, count=6):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_library_records_augment_and_auto_crop_and_flipped_copies_get_the_same_vector(tmp_path):
    _images(tmp_path / "photos", 20)
    mirror = tmp_path / "photos" / "mirror.png"
    Image.open(tmp_path / "photos" / "0.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirror)
    with Library.create(tmp_path / "lib", backbone="pixels+pixels", augment="flip", crop_fraction="auto") as lib:
        lib.add([tmp_path / "photos"])
        assert lib.manifest.embed.augment == "flip" and lib.manifest.embed.dim == 6144
        assert lib.manifest.sections["crop"]["chosen"] == 1.0  # 20 px < 32 px model input
        ids, raw = lib.embeddings()
        paths = dict(lib.catalog.query("SELECT path, image_id FROM files"))
        rows = {int(i): r for r, i in enumerate(ids)}
        np.testing.assert_allclose(raw[rows[paths[str(mirror)]]], raw[rows[paths[str(tmp_path / "photos" / "0.png")]]],
                                   rtol=1e-5)
    with pytest.raises(InvalidParameterError, match="built with augment 'flip', not 'none'"):
        Library.create(tmp_path / "lib", backbone="pixels+pixels", augment="none", exist_ok=True)


def test_old_manifests_without_augment_read_as_none(tmp_path):
    _images(tmp_path / "photos", 20, count=3)
    with Library.create(tmp_path / "lib", backbone="pixels") as lib:
        lib.add([tmp_path / "photos"])
    text = (tmp_path / "lib" / "lookalike.toml").read_text()
    (tmp_path / "lib" / "lookalike.toml").write_text("\n".join(line for line in text.splitlines() if not line.startswith("augment")))
    with Library.open(tmp_path / "lib") as lib:
        assert lib.manifest.embed.augment == "none"


@pytest.mark.slow
def test_flip_tta_on_a_real_network_is_flip_invariant():
    from skimage import data

    backbone = augmented(load_backbone("efficientnet-lite0"), "flip")
    image = np.asarray(Image.fromarray(data.astronaut()).resize((224, 224)))[None]
    a, b = backbone.embed(image), backbone.embed(np.ascontiguousarray(image[:, :, ::-1]))
    assert float((a @ b.T)[0, 0] / np.linalg.norm(a) / np.linalg.norm(b)) > 0.9999


def test_index_cli_takes_augment_and_auto_crop(tmp_path):
    from typer.testing import CliRunner

    from lookalike.cli.main import app

    _images(tmp_path / "photos", 20, count=3)
    runner = CliRunner()
    args = ["index", str(tmp_path / "photos"), "--library", str(tmp_path / "lib"), "--backbone", "pixels",
            "--augment", "flip", "--crop-fraction", "auto", "--no-progress"]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    with Library.open(tmp_path / "lib") as lib:
        assert lib.manifest.embed.augment == "flip" and lib.manifest.sections["crop"]["chosen"] == 1.0
    again = runner.invoke(app, [*args[:6], "--augment", "none", "--no-progress"])
    assert again.exit_code != 0 and "built with augment 'flip', not 'none'" in again.output
    bad = runner.invoke(app, ["index", str(tmp_path / "photos"), "--library", str(tmp_path / "new"), "--crop-fraction", "x"])
    assert bad.exit_code != 0 and "'auto'" in bad.output

"""A library crops and resizes images the way its manifest says, also libraries from before ``resize``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lookalike import Library
from lookalike.cli.main import app
from lookalike.embed.phash import DEFAULT_PHASH, phash
from lookalike.embed.registry import load_backbone
from lookalike.errors import InvalidParameterError
from lookalike.io.decode import DEFAULT_RESIZE, load_rgb, to_model_input
from lookalike.store.catalog import from_signed64
from lookalike.store.manifest import MANIFEST_NAME, read_manifest
from tests.imagegen import write_images


def _stored_vector(lib: Library) -> np.ndarray:
    ids, vectors = lib.embeddings()
    assert len(ids) == 1
    return np.asarray(vectors[0])


def _stored_phash(lib: Library) -> int:
    (value,) = [from_signed64(row[0]) for row in lib.catalog.query("SELECT phash FROM images")]
    return value


def _expected(path: Path, resize: str, crop_fraction: float | None = None) -> np.ndarray:
    spec = load_backbone("pixels").spec
    crop = spec.crop_fraction if crop_fraction is None else crop_fraction
    pixels = to_model_input(load_rgb(path, max_pixels=10**8), spec.image_size, crop, resize=resize)
    return load_backbone("pixels").embed(pixels[None])[0]


def test_new_library_records_the_default_resize_and_phash(tmp_path: Path) -> None:
    Library.create(tmp_path / "lib", backbone="pixels").close()
    embed = read_manifest(tmp_path / "lib").embed
    assert (embed.resize, embed.phash) == (DEFAULT_RESIZE, DEFAULT_PHASH)
    text = (tmp_path / "lib" / MANIFEST_NAME).read_text()
    assert f'resize = "{DEFAULT_RESIZE}"' in text and f'phash = "{DEFAULT_PHASH}"' in text


def test_library_without_resize_or_phash_keeps_pillow(tmp_path: Path) -> None:
    (path,) = write_images(tmp_path / "images", 1)
    Image.open(path).resize((97, 61)).save(path)  # a shrink where the two methods differ
    Library.create(tmp_path / "old", backbone="pixels").close()
    manifest = tmp_path / "old" / MANIFEST_NAME
    lines = manifest.read_text().splitlines(True)
    manifest.write_text("".join(line for line in lines if not line.startswith(("resize", "phash"))))
    with Library.open(tmp_path / "old") as lib:
        assert (lib.manifest.embed.resize, lib.manifest.embed.phash) == ("pillow-bilinear", "pillow-lanczos")
        lib.add([tmp_path / "images"])
        old, old_hash = _stored_vector(lib), _stored_phash(lib)
    with Library.create(tmp_path / "new", backbone="pixels") as lib:
        lib.add([tmp_path / "images"])
        new, new_hash = _stored_vector(lib), _stored_phash(lib)
    upright = load_rgb(path, max_pixels=10**8)
    assert (old_hash, new_hash) == (phash(upright, "pillow-lanczos"), phash(upright, DEFAULT_PHASH))
    np.testing.assert_allclose(old, _expected(path, "pillow-bilinear"), atol=1e-6)
    np.testing.assert_allclose(new, _expected(path, DEFAULT_RESIZE), atol=1e-6)
    assert not np.allclose(old, new, atol=1e-3)


def test_crop_fraction_is_recorded_and_used(tmp_path: Path) -> None:
    (path,) = write_images(tmp_path / "images", 1)
    with Library.create(tmp_path / "lib", backbone="pixels", crop_fraction=0.5) as lib:
        assert lib.manifest.embed.crop_fraction == 0.5
        lib.add([tmp_path / "images"])
        stored = _stored_vector(lib)
    np.testing.assert_allclose(stored, _expected(path, DEFAULT_RESIZE, 0.5), atol=1e-6)
    assert not np.allclose(stored, _expected(path, DEFAULT_RESIZE, 1.0), atol=1e-3)


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.2])
def test_crop_fraction_out_of_range_is_refused(tmp_path: Path, bad: float) -> None:
    with pytest.raises(InvalidParameterError, match=r"crop_fraction must be in \(0, 1\]"):
        Library.create(tmp_path / "lib", backbone="pixels", crop_fraction=bad)
    assert not (tmp_path / "lib").exists()


def test_reopening_with_another_crop_is_refused(tmp_path: Path) -> None:
    Library.create(tmp_path / "lib", backbone="pixels", crop_fraction=0.5).close()
    with pytest.raises(InvalidParameterError, match="built with crop_fraction 0.5, not 1"):
        Library.create(tmp_path / "lib", backbone="pixels", exist_ok=True, crop_fraction=1.0)
    Library.create(tmp_path / "lib", backbone="pixels", exist_ok=True, crop_fraction=0.5).close()
    Library.create(tmp_path / "lib", backbone="pixels", exist_ok=True).close()  # None: whatever it has


def test_index_command_takes_a_crop_fraction(tmp_path: Path) -> None:
    write_images(tmp_path / "images", 2)
    runner = CliRunner()
    args = ["index", str(tmp_path / "images"), "--library", str(tmp_path / "lib"), "--backbone", "pixels",
            "--no-progress"]  # fmt: skip
    assert runner.invoke(app, [*args, "--crop-fraction", "0.75"]).exit_code == 0
    assert read_manifest(tmp_path / "lib").embed.crop_fraction == 0.75
    refused = runner.invoke(app, [*args, "--crop-fraction", "1.0"])
    assert refused.exit_code != 0 and "built with crop_fraction 0.75" in refused.output

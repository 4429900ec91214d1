"""A library resizes images the way its manifest says, also libraries from before ``resize``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lookalike import Library
from lookalike.embed.backbones import load_backbone
from lookalike.io.decode import DEFAULT_RESIZE, load_rgb, to_model_input
from lookalike.store.manifest import MANIFEST_NAME, read_manifest
from tests.imagegen import write_images


def _stored_vector(lib: Library) -> np.ndarray:
    ids, vectors = lib.embeddings()
    assert len(ids) == 1
    return np.asarray(vectors[0])


def _expected(path: Path, resize: str) -> np.ndarray:
    spec = load_backbone("pixels").spec
    pixels = to_model_input(load_rgb(path, max_pixels=10**8), spec.image_size, spec.crop_fraction, resize=resize)
    return load_backbone("pixels").embed(pixels[None])[0]


def test_new_library_records_the_default_resize(tmp_path: Path) -> None:
    Library.create(tmp_path / "lib", backbone="pixels").close()
    assert read_manifest(tmp_path / "lib").embed.resize == DEFAULT_RESIZE
    assert f'resize = "{DEFAULT_RESIZE}"' in (tmp_path / "lib" / MANIFEST_NAME).read_text()


def test_library_without_resize_keeps_pillow_resizing(tmp_path: Path) -> None:
    (path,) = write_images(tmp_path / "images", 1)
    Image.open(path).resize((97, 61)).save(path)  # a shrink where the two methods differ
    Library.create(tmp_path / "old", backbone="pixels").close()
    manifest = tmp_path / "old" / MANIFEST_NAME
    manifest.write_text("".join(line for line in manifest.read_text().splitlines(True) if not line.startswith("resize")))
    with Library.open(tmp_path / "old") as lib:
        assert lib.manifest.embed.resize == "pillow-bilinear"
        lib.add([tmp_path / "images"])
        old = _stored_vector(lib)
    with Library.create(tmp_path / "new", backbone="pixels") as lib:
        lib.add([tmp_path / "images"])
        new = _stored_vector(lib)
    np.testing.assert_allclose(old, _expected(path, "pillow-bilinear"), atol=1e-6)
    np.testing.assert_allclose(new, _expected(path, DEFAULT_RESIZE), atol=1e-6)
    assert not np.allclose(old, new, atol=1e-3)

"""Formats beyond the common ones: real files made here decode to the pixels they were made from;
hostile ones (truncated RAW, SVG with external references or entity bombs, extreme sizes) are
refused with a reason, before any expensive work."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lookalike.errors import CorruptImageError, ImageError, ImageTooLargeError, NotAnImageError
from lookalike.io.decode import load_model_input, load_rgb, probe_image, sniff_format
from lookalike.io.formats import jxl_size
from lookalike.io.svg import SVG_MAX_SIDE
from tests.io.formatfiles import (
    Sample,
    dng_bytes,
    optional_samples,
    picture,
    pillow_samples,
    saved,
    sensor,
)

LIMIT = 50_000_000
PILLOW = pillow_samples()
OPTIONAL = optional_samples()
EXTRA_OF = {"jxl": ("pillow_jxl", "jxl"), "svg": ("resvg_py", "svg"), "dng": ("rawpy", "raw"), "dng_preview": ("rawpy", "raw")}


def optional(name: str) -> Sample:
    module, extra = EXTRA_OF[name]
    pytest.importorskip(module, reason=f"needs the optional extra lookalike[{extra}]")
    if name.startswith("dng"):
        pytest.importorskip("tifffile", reason="making a DNG needs tifffile")
    sample = OPTIONAL[name]()
    assert sample is not None
    return sample


@pytest.mark.parametrize("name", sorted(PILLOW))
def test_pillow_format_decodes_to_the_pixels_it_was_made_from(name: str) -> None:
    sample = PILLOW[name]
    assert probe_image(sample.data, max_pixels=LIMIT).format == sample.fmt
    decoded = np.asarray(load_rgb(sample.data, max_pixels=LIMIT)).astype(int)
    assert decoded.shape == sample.expected.shape
    assert np.abs(decoded - sample.expected).max() <= sample.atol


@pytest.mark.parametrize("name", ["jxl", "svg", "dng_preview"])
def test_optional_format_decodes_to_the_pixels_it_was_made_from(name: str) -> None:
    sample = optional(name)
    info = probe_image(sample.data, max_pixels=LIMIT)
    assert info.format == sample.fmt
    min_side = 256 if name == "dng_preview" else None  # the preview covers a model input
    decoded = np.asarray(load_rgb(sample.data, max_pixels=LIMIT, min_side=min_side)).astype(int)
    assert decoded.shape == sample.expected.shape
    assert np.abs(decoded - sample.expected).max() <= sample.atol


def test_raw_without_a_big_enough_preview_is_demosaiced_like_rawpy() -> None:
    import rawpy

    sample = optional("dng")
    info = probe_image(sample.data, max_pixels=LIMIT)
    assert (info.format, info.width, info.height) == ("RAW", 96, 64)
    with rawpy.imread(io.BytesIO(sample.data)) as raw:
        reference = raw.postprocess(use_camera_wb=True, output_bps=8)
    decoded = np.asarray(load_rgb(sample.data, max_pixels=LIMIT, min_side=64))
    np.testing.assert_array_equal(decoded, reference)
    # red rises left to right, blue top to bottom, as the sensor data was made
    assert decoded[:, -8:, 0].mean() > decoded[:, :8, 0].mean() + 40
    assert decoded[-8:, :, 2].mean() > decoded[:8, :, 2].mean() + 40


def test_raw_preview_too_small_for_the_model_input_falls_back_to_demosaicing() -> None:
    optional("dng")
    data = dng_bytes(sensor(640, 960), picture(4))  # a 12 × 8 preview
    assert data is not None
    assert load_rgb(data, max_pixels=LIMIT, min_side=256).size == (480, 320)  # half-size demosaic
    assert load_rgb(data, max_pixels=LIMIT).size == (960, 640)


def test_every_new_format_gives_a_model_input() -> None:
    samples = [*PILLOW.values(), *(s for s in (f() for f in OPTIONAL.values()) if s is not None)]
    for sample in samples:
        pixels = load_model_input(sample.data, size=64, crop_fraction=0.875, max_pixels=LIMIT)
        assert pixels.shape == (64, 64, 3)


@pytest.mark.parametrize("fmt", ["PPM", "TGA", "ICO", "QOI", "SGI", "PCX", "DDS", "JPEG2000", "AVIF"])
def test_sniff_format_agrees_with_pillow_writers(fmt: str) -> None:
    head = saved(Image.new("RGB", (8, 8), (9, 99, 199)), fmt)[:32]
    assert sniff_format(head) == (None if fmt == "TGA" else fmt)  # TGA has no signature: see below


def test_tga_is_recognised_by_its_header_and_other_bytes_are_not() -> None:
    assert probe_image(PILLOW["tga"].data, max_pixels=LIMIT).format == "TGA"
    header = bytearray(PILLOW["tga"].data[:18])
    for data in (b"\x00\x00hello, this is not a picture at all" * 3, bytes(header) + bytes(10)):  # too short
        with pytest.raises(NotAnImageError, match="not a supported image format"):
            probe_image(data, max_pixels=LIMIT)


@pytest.mark.parametrize(("width", "height"), [(48, 32), (64, 48), (80, 80), (37, 19), (8, 4096), (3000, 2)])
def test_jxl_size_header_matches_the_encoder(width: int, height: int) -> None:
    pytest.importorskip("pillow_jxl", reason="needs the optional extra lookalike[jxl]")
    data = saved(Image.new("RGB", (width, height), (1, 2, 3)), "JXL", lossless=True)
    assert jxl_size(data, None) == (width, height)


def jxl_header(height: int) -> bytes:
    """A bare JPEG XL codestream start declaring a square height × height image (30-bit size)."""
    bits = [0, 1, 1] + [((height - 1) >> i) & 1 for i in range(30)] + [1, 0, 0]  # div8=0, selector 3, ratio 1:1
    bits += [0] * (-len(bits) % 8)
    return b"\xff\x0a" + bytes(sum(bit << i for i, bit in enumerate(bits[at : at + 8])) for at in range(0, len(bits), 8))


def test_jxl_bomb_is_refused_from_its_header_before_decoding() -> None:
    pytest.importorskip("pillow_jxl", reason="needs the optional extra lookalike[jxl]")
    with pytest.raises(ImageTooLargeError, match="100000×100000"):
        load_rgb(jxl_header(100_000) + bytes(64), max_pixels=LIMIT)


def test_truncated_raw_is_corrupt() -> None:
    sample = optional("dng")
    with pytest.raises(CorruptImageError, match="truncated or corrupt RAW"):
        load_rgb(sample.data[: len(sample.data) // 2], max_pixels=LIMIT)


def test_raw_over_the_pixel_limit_is_refused_before_unpacking() -> None:
    sample = optional("dng")
    with pytest.raises(ImageTooLargeError, match="96×64"):
        probe_image(sample.data, max_pixels=1000)


SVG_NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
HOSTILE_SVG = {
    "external_image": f'<svg {SVG_NS} width="9" height="9"><image xlink:href="file:///etc/passwd" width="9" height="9"/></svg>',
    "external_href": f'<svg {SVG_NS} width="9" height="9"><use href="other.svg#a"/></svg>',
    "css_import": f'<svg {SVG_NS} width="9" height="9"><style>@import "http://x.example/a.css";</style></svg>',
    "css_url": f'<svg {SVG_NS} width="9" height="9"><rect style="fill: url(/tmp/p.png)" width="9" height="9"/></svg>',
    "stylesheet": f'<?xml-stylesheet href="a.css"?><svg {SVG_NS} width="9" height="9"/>',
    "billion_laughs": '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "lol">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + f']><svg {SVG_NS} width="9" height="9"><text>&j;</text></svg>',
    "external_entity": f'<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg {SVG_NS}><text>&x;</text></svg>',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_SVG))
def test_hostile_svg_is_refused_before_rendering(name: str) -> None:
    pytest.importorskip("resvg_py", reason="needs the optional extra lookalike[svg]")
    reason = "entity" if "entity" in name or "laughs" in name else "external"
    with pytest.raises(CorruptImageError, match=f"unsafe SVG refused: .*{reason}"):
        load_rgb(HOSTILE_SVG[name].encode(), max_pixels=LIMIT)


def test_svg_declaring_a_huge_size_is_rendered_within_the_limits() -> None:
    pytest.importorskip("resvg_py", reason="needs the optional extra lookalike[svg]")
    svg = f'<svg {SVG_NS} width="1000000" height="500000"><rect width="100%" height="100%" fill="blue"/></svg>'
    image = load_rgb(svg.encode(), max_pixels=LIMIT)
    assert max(image.size) == SVG_MAX_SIDE and image.size[0] == 2 * image.size[1]
    assert load_rgb(svg.encode(), max_pixels=LIMIT, min_side=100).size == (200, 100)
    assert np.asarray(image)[10, 10].tolist() == [0, 0, 255]


def test_one_by_hundred_thousand_pgm_decodes_in_bounded_memory() -> None:
    column = np.arange(100_000, dtype=np.uint32) % 256
    data = b"P5\n1 100000\n255\n" + column.astype(np.uint8).tobytes()
    info = probe_image(data, max_pixels=LIMIT)
    assert (info.format, info.width, info.height) == ("PPM", 1, 100_000)
    pixels = load_model_input(data, size=224, crop_fraction=0.875, max_pixels=LIMIT)
    assert pixels.shape == (224, 224, 3)
    with pytest.raises(ImageTooLargeError, match="1×100000"):
        probe_image(data, max_pixels=99_999)


@pytest.mark.parametrize("data", [
    b"P5\n100000 100000\n255\n\x00\x00", b"P2\n100000 100000\n255\n0 0 0\n",
    b"P7\nWIDTH 100000\nHEIGHT 100000\nDEPTH 3\nMAXVAL 255\nENDHDR\n\x00",
], ids=["pgm", "pgm-ascii", "pam"])
def test_netpbm_header_bombs_are_refused(data: bytes) -> None:
    with pytest.raises(ImageTooLargeError, match="100000×100000"):
        load_rgb(data, max_pixels=LIMIT)


def test_truncated_pam_is_corrupt() -> None:
    with pytest.raises(CorruptImageError, match="truncated PAM"):
        load_rgb(PILLOW["pam_rgb"].data[:-10], max_pixels=LIMIT)


@pytest.mark.parametrize(("name", "module", "extra"), [
    ("dng", "rawpy", "raw"), ("svg", "resvg_py", "svg"), ("jxl", "pillow_jxl", "jxl"),
])
def test_missing_extra_is_a_skip_reason_naming_it(name: str, module: str, extra: str, monkeypatch) -> None:
    sample = optional(name)
    monkeypatch.setitem(sys.modules, module, None)  # import now fails as if not installed
    with pytest.raises(ImageError, match=rf"pip install 'lookalike\[{extra}\]'"):
        probe_image(sample.data, max_pixels=LIMIT)


def test_new_formats_index_from_the_cli(tmp_path: Path) -> None:
    from lookalike.cli.main import app

    folder = tmp_path / "photos"
    folder.mkdir()
    files = {f"{name}.bin": s.data for name, s in PILLOW.items()}
    files |= {f"{name}.bin": s.data for name in OPTIONAL if (s := OPTIONAL[name]()) is not None}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    lib = tmp_path / "lib.lookalike"
    result = CliRunner().invoke(app, ["index", str(folder), "--library", str(lib), "--backbone", "pixels", "--no-progress"])
    assert result.exit_code == 0, result.output
    # identical content is embedded once: the DNG sample's content is unique, as is every other
    assert f"embedded {len(set(files.values()))} images this run" in result.output


@pytest.mark.parametrize("text", [b"P2 is the second point.\n", b"P1\n", b"P7 notes\n"])
def test_text_starting_like_netpbm_is_not_an_image(text: bytes) -> None:
    with pytest.raises(NotAnImageError, match="content looks like text"):
        probe_image(text, max_pixels=LIMIT)

"""Decoding the formats no Pillow plugin reads (PAM, JPEG XL, camera RAW, SVG): the header is
read and the pixel limit checked first, then the reader of :mod:`lookalike.io.formats`,
:mod:`lookalike.io.rawfile` or :mod:`lookalike.io.svg` decodes."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from PIL import Image

from lookalike.io._failures import EXTRAS, require, too_large
from lookalike.io.formats import _PAM_MODES, Loader, jxl_image, jxl_size, pam_header, pam_image
from lookalike.io.rawfile import open_raw, raw_image
from lookalike.io.svg import SVG_MAX_BYTES, render_size, render_svg, svg_size

CUSTOM_FORMATS = ("PAM", "JXL", "RAW", "SVG")
"""Formats decoded here rather than by a Pillow plugin."""


def custom_probe(fmt: str, stream: BinaryIO, where: Path | str | None, max_pixels: int) -> tuple[int, int, str]:
    """(width, height, mode) of a :data:`CUSTOM_FORMATS` file from its header, limit checked."""
    data = _read_custom(fmt, stream)
    if fmt in EXTRAS:
        require(fmt, where)  # a file the next step cannot decode is reported now
    if fmt == "SVG":
        return (*render_size(svg_size(data, where), max_pixels=max_pixels, min_side=None), "RGBA")
    if fmt == "RAW":
        raw, width, height = open_raw(data, where, max_pixels)
        raw.close()
        return width, height, "RGB"
    width, height, mode = _checked_size(fmt, data, where, max_pixels)
    return width, height, mode


def custom_load(
    fmt: str, stream: BinaryIO, where: Path | str | None, max_pixels: int, min_side: int | None, load_rgb: Loader
) -> Image.Image:
    """Decode a :data:`CUSTOM_FORMATS` file, upright, in any mode; the limit is checked first."""
    data = _read_custom(fmt, stream)
    if fmt == "SVG":
        return render_svg(data, where, max_pixels=max_pixels, min_side=min_side)
    if fmt == "RAW":
        raw, _, _ = open_raw(data, where, max_pixels)
        try:
            return raw_image(raw, min_side, max_pixels, load_rgb)
        finally:
            raw.close()
    _checked_size(fmt, data, where, max_pixels)
    if fmt == "PAM":
        return pam_image(data, pam_header(data, where), where)
    return jxl_image(data, where, max_pixels, load_rgb)


def _read_custom(fmt: str, stream: BinaryIO) -> bytes:
    if fmt == "SVG":
        return stream.read(SVG_MAX_BYTES + 1)
    return stream.read()


def _checked_size(fmt: str, data: bytes, where: Path | str | None, max_pixels: int) -> tuple[int, int, str]:
    if fmt == "PAM":
        header = pam_header(data, where)
        width, height, mode = header.width, header.height, _PAM_MODES[header.depth]
    else:
        width, height = jxl_size(data, where)
        mode = "RGB"
    if width * height > max_pixels:
        raise too_large(where, width, height, max_pixels)
    return width, height, mode



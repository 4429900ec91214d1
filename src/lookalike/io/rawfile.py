"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2, PEF, …) through rawpy (LibRaw).

The size is read and checked against the pixel limit before anything is unpacked. With a
``min_side`` (the model input), the embedded preview is used when its shorter side covers it
(a JPEG or bitmap the camera wrote: no demosaic, ~50x cheaper); otherwise, and for full-size
decoding, the sensor data is demosaiced with the camera's white balance (at half size when that
still covers ``min_side``). LibRaw's flip is applied, so images come out upright.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.io._failures import require, too_large

_FLIPS = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}
"""LibRaw's ``sizes.flip`` -> the transpose that turns the sensor image upright."""


def open_raw(data: bytes, where: Path | str | None, max_pixels: int) -> tuple[Any, int, int]:
    """(opened RawPy, displayed width, displayed height), refused over ``max_pixels``.

    Opening parses the metadata only; no sensor data is read yet.
    """
    rawpy = require("RAW", where)
    raw = rawpy.RawPy()
    raw.open_buffer(io.BytesIO(data))
    sizes = raw.sizes
    width, height = sizes.width, sizes.height
    for w, h in ((sizes.raw_width, sizes.raw_height), (width, height)):
        if w * h > max_pixels:
            raw.close()
            raise too_large(where, w, h, max_pixels)
    if width < 1 or height < 1:
        raw.close()
        raise ValueError(f"size {width}×{height} in header")
    turned = sizes.flip in (5, 6)
    return raw, height if turned else width, width if turned else height


def raw_image(raw: Any, min_side: int | None, max_pixels: int, load_rgb: Callable[..., Image.Image]) -> Image.Image:
    """The upright RGB image of an opened RAW: the preview when it covers ``min_side``, else
    demosaiced sensor data."""
    if min_side is not None:
        preview = _preview(raw, max_pixels, load_rgb)
        if preview is not None and min(preview.size) >= min_side:
            return preview
    sizes = raw.sizes
    half = min_side is not None and min(sizes.width, sizes.height) // 2 >= min_side
    raw.unpack()
    pixels = raw.postprocess(use_camera_wb=True, output_bps=8, half_size=half, no_auto_bright=False)
    return Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), "RGB")


def _preview(raw: Any, max_pixels: int, load_rgb: Callable[..., Image.Image]) -> Image.Image | None:
    """The embedded preview, upright (a JPEG one decoded by ``load_rgb``), or None when the file
    has none LibRaw can give."""
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        image = load_rgb(bytes(thumb.data), max_pixels=max_pixels)
    else:
        image = Image.fromarray(np.ascontiguousarray(thumb.data, dtype=np.uint8)).convert("RGB")
    flip = raw.sizes.flip
    return image.transpose(_FLIPS[flip]) if flip in _FLIPS else image

"""Real files of every format beyond the common ones, made here, with the pixels each must give.

Each writer returns the file's bytes; the expected RGB array comes from how the file was made
(not from decoding it). Writers that need an optional package return None when it is missing.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

RED, GREEN, BLUE, GREY, WHITE, BLACK = (220, 20, 20), (20, 200, 40), (30, 40, 210), (128, 128, 128), (255,) * 3, (0,) * 3


class Sample(NamedTuple):
    data: bytes
    fmt: str
    expected: np.ndarray
    atol: int


def picture(block: int = 16) -> np.ndarray:
    """Flat colour blocks, 3 wide × 2 high (48 × 32 at block 16), uint8 (H, W, 3)."""
    grid = np.array([[RED, GREEN, BLUE], [GREY, BLUE, RED]], dtype=np.uint8)
    return grid.repeat(block, axis=0).repeat(block, axis=1)


def saved(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def ascii_netpbm(kind: str, values: np.ndarray) -> bytes:
    """P1 (1 = black), P2 or P3 written as text: the form Pillow never writes."""
    height, width = values.shape[:2]
    header = f"{kind}\n# made by the tests\n{width} {height}\n" + ("" if kind == "P1" else "255\n")
    return (header + "\n".join(" ".join(map(str, row.ravel())) for row in values) + "\n").encode()


def pam(values: np.ndarray, maxval: int = 255, tupltype: str = "RGB") -> bytes:
    height, width = values.shape[:2]
    depth = 1 if values.ndim == 2 else values.shape[2]
    header = f"P7\nWIDTH {width}\nHEIGHT {height}\nDEPTH {depth}\nMAXVAL {maxval}\nTUPLTYPE {tupltype}\nENDHDR\n"
    return header.encode() + values.astype(">u2" if maxval > 255 else np.uint8).tobytes()


def grey3(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[..., None], 3, axis=2).astype(np.uint8)


def pillow_samples() -> dict[str, Sample]:
    """Formats decoded by Pillow's own plugins, as Pillow writes them or as written by hand."""
    rgb = picture()
    image = Image.fromarray(rgb)
    grey = np.asarray(image.convert("L"))
    bits = (np.indices(grey.shape).sum(axis=0) % 2).astype(np.uint8)  # checkerboard, 1 = white
    square = picture(512)[:1024, :1024]
    mpo = saved(image, "MPO", save_all=True, append_images=[Image.fromarray(rgb[:, ::-1].copy())], quality=95,
                subsampling=0)
    return {
        "ppm_binary": Sample(saved(image, "PPM"), "PPM", rgb, 0),
        "pgm_binary": Sample(saved(image.convert("L"), "PPM"), "PPM", grey3(grey), 0),
        "pbm_binary": Sample(saved(Image.fromarray(bits.astype(bool)), "PPM"), "PPM", grey3(bits * 255), 0),
        "pbm_ascii": Sample(ascii_netpbm("P1", 1 - bits), "PPM", grey3(bits * 255), 0),
        "pgm_ascii": Sample(ascii_netpbm("P2", grey), "PPM", grey3(grey), 0),
        "ppm_ascii": Sample(ascii_netpbm("P3", rgb), "PPM", rgb, 0),
        "pam_rgb": Sample(pam(rgb), "PAM", rgb, 0),
        "pam_grey16": Sample(pam(grey.astype(np.uint32) * 257, 65535, "GRAYSCALE"), "PAM", grey3(grey), 0),
        "tga": Sample(saved(image, "TGA"), "TGA", rgb, 0),
        "tga_rle": Sample(saved(image, "TGA", compression="tga_rle"), "TGA", rgb, 0),
        "ico": Sample(saved(image, "ICO", sizes=[image.size]), "ICO", rgb, 0),
        "qoi": Sample(saved(image, "QOI"), "QOI", rgb, 0),
        "sgi": Sample(saved(image, "SGI"), "SGI", rgb, 0),
        "pcx": Sample(saved(image, "PCX"), "PCX", rgb, 0),
        "dds": Sample(saved(image, "DDS"), "DDS", rgb, 0),
        "jpeg2000": Sample(saved(image, "JPEG2000"), "JPEG2000", rgb, 0),
        "avif": Sample(saved(image, "AVIF", quality=95, subsampling="4:4:4"), "AVIF", rgb, 8),
        "mpo": Sample(mpo, "MPO", rgb, 6),
        "icns": Sample(saved(Image.fromarray(square), "ICNS"), "ICNS", square, 0),  # the largest size is used
        "psd": Sample(psd(rgb), "PSD", rgb, 0),
    }


def psd(rgb: np.ndarray) -> bytes:
    """A minimal Photoshop file (Pillow cannot write one): RGB, 8 bits, no layers, raw planes."""
    height, width = rgb.shape[:2]
    header = b"8BPS" + (1).to_bytes(2, "big") + bytes(6) + (3).to_bytes(2, "big")
    header += height.to_bytes(4, "big") + width.to_bytes(4, "big") + (8).to_bytes(2, "big") + (3).to_bytes(2, "big")
    sections = bytes(4) * 3  # colour mode data, image resources, layers: all empty
    return header + sections + bytes(2) + rgb.transpose(2, 0, 1).tobytes()


def optional_samples() -> dict[str, Callable[[], Sample | None]]:
    """Formats that need an optional package (None when it is not installed)."""
    return {"jxl": jxl_sample, "svg": svg_sample, "dng": dng_sample, "dng_preview": dng_preview_sample}


def jxl_sample() -> Sample | None:
    try:
        import pillow_jxl  # noqa: F401  (registers the JXL writer)
    except ImportError:
        return None
    rgb = picture()
    return Sample(saved(Image.fromarray(rgb), "JXL", lossless=True), "JXL", rgb, 0)


def svg_sample() -> Sample | None:
    """Six rectangles on whole pixels: rendered without anti-aliased edges."""
    rgb = picture()
    rects = "".join(
        f'<rect x="{16 * col}" y="{16 * row}" width="16" height="16" fill="rgb{tuple(int(v) for v in rgb[16 * row, 16 * col])}"/>'
        for row in range(2) for col in range(3)
    )
    svg = f'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="48" height="32">{rects}</svg>'
    return Sample(svg.encode(), "SVG", rgb, 0)


DNG_TAGS = [
    (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
    (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
    (50708, "s", 0, "Test Camera", True),  # UniqueCameraModel
]
CFA_TAGS = [
    (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
    (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: RGGB
    (50717, "I", 1, 4095, True),  # WhiteLevel
    (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
]


def dng_bytes(cfa: np.ndarray, preview: np.ndarray | None = None) -> bytes | None:
    """A minimal DNG: 12-bit RGGB sensor data, optionally under an RGB preview in IFD0."""
    try:
        import tifffile
    except ImportError:
        return None
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tiff:
        if preview is not None:
            tiff.write(preview, photometric="rgb", subifds=1, subfiletype=1, extratags=DNG_TAGS, metadata=None)
            tiff.write(cfa, photometric=32803, subfiletype=0, extratags=CFA_TAGS, metadata=None)
        else:
            tiff.write(cfa, photometric=32803, subfiletype=0, extratags=DNG_TAGS + CFA_TAGS, metadata=None)
    return buffer.getvalue()


def sensor(height: int = 64, width: int = 96) -> np.ndarray:
    """A smooth 12-bit RGGB mosaic: red rising left to right, blue top to bottom."""
    y, x = np.indices((height, width))
    cfa = np.full((height, width), 1500, dtype=np.uint16)
    cfa[0::2, 0::2] = (300 + 3500 * x / width)[0::2, 0::2]
    cfa[1::2, 1::2] = (300 + 3500 * y / height)[1::2, 1::2]
    return cfa


def dng_sample() -> Sample | None:
    """Sensor data only: decoded by demosaicing (expected: rawpy's own postprocess, checked there)."""
    data = dng_bytes(sensor())
    return None if data is None else Sample(data, "RAW", np.zeros((64, 96, 3), np.uint8), -1)


def dng_preview_sample() -> Sample | None:
    """An RGB preview (the picture, 10x) over larger sensor data: the preview is what a model input uses."""
    preview = picture(160)  # 480 × 320
    data = dng_bytes(sensor(640, 960), preview)
    return None if data is None else Sample(data, "RAW", preview, 0)

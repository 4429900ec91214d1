"""Build a folder of good and bad image files, each with the outcome ingest must report.

Used through the ``bad_folder`` fixture (tests/conftest.py). Every good image comes with the
RGB array a correct decoder must produce, computed here from how the file was made (not by
decoding it), and the largest per-pixel difference allowed (0 for lossless formats).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

OK, NOT_IMAGE, CORRUPT, TOO_LARGE, UNREADABLE = "ok", "not_image", "corrupt", "too_large", "unreadable"
"""Outcome kinds; the four failures match NotAnImageError, CorruptImageError, ImageTooLargeError
and UnreadableFileError (or a scan problem, for links that lead nowhere)."""

BOMB_SIDE = 12000
"""The bomb is BOMB_SIDE² = 144,000,000 pixels: over the default limit and over Pillow's warning limit."""

WHITE = 255


Source = Image.Image | bytes | Callable[[Path], None]
Expected = tuple[np.ndarray, int]
"""The RGB array (H, W, 3) a correct decoder returns, and the largest difference allowed per value."""


class BadFile(NamedTuple):
    path: Path
    kind: str


class BadFolder(dict[str, BadFile]):
    """name -> (path, kind); also ``root``, ``expected`` (name -> (RGB array, atol)) and ``formats``."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.expected: dict[str, Expected] = {}
        self.formats: dict[str, str] = {}

    def add(self, name: str, relative: str, kind: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        self[name] = BadFile(path, kind)
        return path

    def image(self, name: str, relative: str, fmt: str, expected: Expected, source: Source, **options: Any) -> None:
        """Write a good image: a Pillow image (saved with ``options``), raw bytes, or a writer."""
        path = self.add(name, relative, OK)
        if isinstance(source, Image.Image):
            source.save(path, **options)
        elif isinstance(source, bytes):
            path.write_bytes(source)
        else:
            source(path)
        self.expected[name] = expected
        self.formats[name] = fmt


def blocks(colours: list[tuple[int, ...]], block: int = 16, rows: int = 2) -> np.ndarray:
    """Flat colour blocks (16 px: JPEG-friendly), ``rows`` × len(colours)/rows, uint8 (H, W, channels)."""
    grid = np.array(colours, dtype=np.uint8).reshape(rows, -1, len(colours[0]))
    return grid.repeat(block, axis=0).repeat(block, axis=1)


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, raw_rows: bytes) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB, nor lie about the size)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw_rows)) + chunk(b"IEND", b"")


def over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Reference alpha compositing on white, rounded: c·a/255 + 255·(1 − a/255)."""
    a = alpha.astype(np.float64)[..., None] / 255.0
    return np.rint(rgb * a + WHITE * (1.0 - a)).astype(np.uint8)


def make_bad_folder(root: Path) -> BadFolder:
    """Fill ``root`` (created if needed) and return what each file should become."""
    root.mkdir(parents=True, exist_ok=True)
    folder = BadFolder(root)
    _add_formats(folder)
    _add_modes(folder)
    _add_broken(folder)
    _add_links_and_names(folder)
    return folder


def _add_formats(folder: BadFolder) -> None:
    red, green, blue, grey = (220, 20, 20), (20, 200, 40), (30, 40, 210), (128, 128, 128)
    stored = blocks([red, blue, green, grey], block=32, rows=1)  # 128 wide × 32 high, red at the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown turned 90° clockwise
    displayed = np.rot90(stored, k=-1).copy()  # numpy's clockwise turn, independent of Pillow
    jpeg = {"quality": 95, "subsampling": 0}  # no chroma subsampling: colours stay within a few levels
    folder.image("jpeg_orient6", "orient6.jpg", "JPEG", (displayed, 4), Image.fromarray(stored), exif=exif, **jpeg)
    photo = blocks([red, green, blue, grey, blue, red])
    exact = (photo, 0)
    folder.image("png", "rgb.png", "PNG", exact, Image.fromarray(photo))
    folder.image("webp", "lossless.webp", "WEBP", exact, Image.fromarray(photo), lossless=True)
    folder.image("bmp", "plain.bmp", "BMP", exact, Image.fromarray(photo))
    folder.image("no_extension", "noext", "PNG", exact, Image.fromarray(photo), format="PNG")
    folder.image("png_as_jpg", "really_png.jpg", "PNG", exact, Image.fromarray(photo), format="PNG")
    first, second = np.full((24, 40, 3), red, np.uint8), np.full((24, 40, 3), blue, np.uint8)
    frames = [Image.fromarray(first), Image.fromarray(second)]
    options = {"save_all": True, "append_images": frames[1:], "duration": 100, "loop": 0}
    folder.image("gif_animated", "anim.gif", "GIF", (first, 0), frames[0], **options)
    pages = [Image.fromarray(photo), Image.fromarray(photo[::-1].copy())]
    folder.image("tiff_multipage", "pages.tif", "TIFF", exact, pages[0], save_all=True, append_images=pages[1:])
    folder.image("heic", "photo.heic", "HEIF", (photo, 8), _heic_writer(photo))
    # White, red (M+Y), black (K), blue (C+M): exact under the naive CMYK -> RGB formula.
    cmyk = blocks([(0, 0, 0, 0), (0, 255, 255, 0), (0, 0, 0, 255), (255, 255, 0, 0)])
    shown = blocks([(255, 255, 255), (255, 0, 0), (0, 0, 0), (0, 0, 255)])
    cmyk_image = Image.frombytes("CMYK", (cmyk.shape[1], cmyk.shape[0]), cmyk.tobytes())
    folder.image("cmyk", "cmyk.jpg", "JPEG", (shown, 4), cmyk_image, quality=95)


def _heic_writer(rgb: np.ndarray) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import pillow_heif

        pillow_heif.from_pillow(Image.fromarray(rgb)).save(path, quality=95)

    return write


def _add_modes(folder: BadFolder) -> None:
    rng = np.random.default_rng(7)
    h, w = 24, 32
    palette = rng.integers(0, 256, size=(16, 3), dtype=np.uint8)
    index = rng.integers(0, 16, size=(h, w), dtype=np.uint8)
    p = Image.frombytes("P", (w, h), index.tobytes())
    p.putpalette(palette.tobytes())
    folder.image("p", "palette.png", "PNG", (palette[index], 0), p)
    shown = palette[index].copy()
    shown[index == 0] = WHITE
    folder.image("p_transparent", "palette_transparent.png", "PNG", (shown, 0), p, transparency=0)
    alpha = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    pa = p.convert("PA")
    pa.putalpha(Image.frombytes("L", (w, h), alpha.tobytes()))
    folder.image("pa", "palette_alpha.tif", "TIFF", (over_white(palette[index], alpha), 1), pa)
    grey = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    grey3 = np.repeat(grey[..., None], 3, axis=2)
    grey_image = Image.frombytes("L", (w, h), grey.tobytes())
    la = Image.merge("LA", [grey_image, Image.frombytes("L", (w, h), alpha.tobytes())])
    folder.image("la", "grey_alpha.png", "PNG", (over_white(grey3, alpha), 1), la)
    folder.image("gray", "grey.png", "PNG", (grey3, 0), grey_image)
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    rgba_alpha = alpha.copy()
    rgba_alpha[0, 0] = 0  # one fully transparent pixel: must come out white
    rgba = Image.fromarray(np.dstack([rgb, rgba_alpha]))
    folder.image("rgba", "rgba.png", "PNG", (over_white(rgb, rgba_alpha), 1), rgba)
    bits = (np.indices((h, w)).sum(axis=0) % 2).astype(bool)  # a checkerboard
    shown_bits = np.repeat(bits[..., None], 3, axis=2).astype(np.uint8) * WHITE
    folder.image("bilevel", "bilevel.png", "PNG", (shown_bits, 0), Image.fromarray(bits))
    _add_sixteen_bit(folder, rng)


def to8(values: np.ndarray) -> np.ndarray:
    """Reference 16-bit -> 8-bit scaling: round(v / 257), so 0 -> 0 and 65535 -> 255."""
    return np.rint(values / 257.0).astype(np.uint8)


def _add_sixteen_bit(folder: BadFolder, rng: np.random.Generator) -> None:
    h, w = 20, 30
    deep = rng.integers(1000, 60001, size=(h, w), dtype=np.uint16)
    deep[0, :3] = [1000, 32768, 60000]  # scaled: 4, 128, 233; clipped: 255s; stretched: 0, 124, 255
    folder.image("i16", "grey16.png", "PNG", (np.repeat(to8(deep)[..., None], 3, axis=2), 0), Image.fromarray(deep))
    colour = rng.integers(0, 65536, size=(h, w, 3), dtype=np.uint16)
    colour[0, 0] = [1000, 32768, 65535]
    rows = b"".join(b"\x00" + colour[y].astype(">u2").tobytes() for y in range(h))
    # Pillow keeps the high byte of 16-bit RGB: within 1 of the rounded v/257.
    folder.image("rgb16", "rgb16.png", "PNG", (to8(colour), 1), png_bytes(w, h, 16, 2, rows))


def _add_broken(folder: BadFolder) -> None:
    good = io.BytesIO()
    Image.fromarray(blocks([(200, 10, 10), (10, 10, 200)] * 2)).save(good, "JPEG", quality=90)
    jpeg = good.getvalue()
    folder.add("empty", "empty.jpg", NOT_IMAGE).write_bytes(b"")
    folder.add("truncated_jpeg", "truncated.jpg", CORRUPT).write_bytes(jpeg[: len(jpeg) // 2])
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(png, "PNG")
    folder.add("truncated_png", "truncated.png", CORRUPT).write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    folder.add("text", "notes.jpg", NOT_IMAGE).write_text("These are my holiday notes.\nNot a photo.\n")
    folder.add("pdf", "document.png", NOT_IMAGE).write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\n")
    bomb = Image.new("1", (BOMB_SIDE, BOMB_SIDE))
    bomb.save(folder.add("bomb", "bomb.png", TOO_LARGE), compress_level=1)
    # A 100,000 × 100,000 header over 8 × 8 pixels of data: only a header check is safe.
    rows = b"".join(b"\x00" + bytes(8) for _ in range(8))
    folder.add("bomb_header", "bomb_header.png", TOO_LARGE).write_bytes(png_bytes(100_000, 100_000, 8, 0, rows))
    locked_rgb = blocks([(1, 2, 3), (4, 5, 6)] * 2)
    folder.image("no_permission", "locked.png", "PNG", (locked_rgb, 0), Image.fromarray(locked_rgb))
    locked = folder["no_permission"].path
    locked.chmod(0)
    if not os.access(locked, os.R_OK):  # root reads it anyway: then it is simply a good image
        folder["no_permission"] = BadFile(locked, UNREADABLE)
        del folder.expected["no_permission"], folder.formats["no_permission"]


def _add_links_and_names(folder: BadFolder) -> None:
    root = folder.root
    folder.add("broken_link", "broken_link.jpg", UNREADABLE).symlink_to(root / "does-not-exist.jpg")
    folder.add("loop_a", "loop_a.jpg", UNREADABLE).symlink_to("loop_b.jpg")
    folder.add("loop_b", "loop_b.jpg", UNREADABLE).symlink_to("loop_a.jpg")
    picture = blocks([(10, 120, 200), (250, 250, 0)] * 2)
    folder.image("inside_loop", "sub/inside.png", "PNG", (picture, 0), Image.fromarray(picture))
    folder.add("dir_loop", "sub/up", UNREADABLE).symlink_to("..", target_is_directory=True)
    folder.image("non_utf8", os.fsdecode(b"caf\xe9.png"), "PNG", (picture, 0), Image.fromarray(picture))
    folder.image("non_ascii", "日本.jpg", "JPEG", (picture, 4), Image.fromarray(picture), quality=95, subsampling=0)

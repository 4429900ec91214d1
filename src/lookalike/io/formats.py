"""Formats recognised by content beyond the common ones, and the small decoders lookalike owns.

:func:`sniff_more` names the format of a file from its first bytes; :data:`PILLOW_PLUGINS` maps
formats that one of Pillow's own plugins decodes to that plugin. Formats no Pillow plugin reads
safely have a reader here (:data:`CUSTOM_FORMATS`): Netpbm PAM (``P7``), JPEG XL (through
pillow-jxl-plugin, with the size read from the codestream header first, since the plugin decodes
everything when it opens), camera RAW (:mod:`lookalike.io.rawfile`) and SVG
(:mod:`lookalike.io.svg`). Each reader checks the pixel limit from the header before decoding.
Formats that run external programs (EPS through Ghostscript) or are not pictures are left out.
"""

from __future__ import annotations

import codecs
import importlib
import io
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
from PIL import Image

from lookalike.io._failures import corrupt, require

Loader = Callable[..., Image.Image]
""":func:`lookalike.io.decode.load_rgb`, passed in (this module is below decode)."""

PILLOW_PLUGINS = {
    "PPM": ("PpmImagePlugin", "PpmImageFile"),
    "ICO": ("IcoImagePlugin", "IcoImageFile"),
    "CUR": ("CurImagePlugin", "CurImageFile"),
    "TGA": ("TgaImagePlugin", "TgaImageFile"),
    "QOI": ("QoiImagePlugin", "QoiImageFile"),
    "PSD": ("PsdImagePlugin", "PsdImageFile"),
    "ICNS": ("IcnsImagePlugin", "IcnsImageFile"),
    "DDS": ("DdsImagePlugin", "DdsImageFile"),
    "SGI": ("SgiImagePlugin", "SgiImageFile"),
    "PCX": ("PcxImagePlugin", "PcxImageFile"),
    "JPEG2000": ("Jpeg2KImagePlugin", "Jpeg2KImageFile"),
    "AVIF": ("AvifImagePlugin", "AvifImageFile"),
}
"""Formats read by a Pillow plugin: format -> (module in PIL, class)."""


_NETPBM = (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6", b"Pf")
_NETPBM_SIZE = re.compile(rb"P[1-6f][ \t\n\v\f\r]+(?:\d|#)")
"""A Netpbm magic, whitespace, then the width or a comment (text starting 'P2 ' is not a picture)."""
_AVIF_BRANDS = (b"avif", b"avis")
_RAW_SIGNATURES = (
    (0, b"FUJIFILMCCD-RAW"),  # RAF
    (0, b"IIRO"), (0, b"IIRS"), (0, b"MMOR"),  # ORF
    (0, b"IIU\x00"),  # RW2
    (0, b"II\x1a\x00\x00\x00HEAPCCDR"),  # CRW
    (0, b"\x00MRM"),  # MRW
    (0, b"FOVb"),  # X3F
    (4, b"ftypcrx "),  # CR3
)
_TGA_FOOTER = b"TRUEVISION-XFILE.\x00"
_OTHER_FORMATS = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "gzip data"),
    (b"%!PS", "a PostScript document (EPS is not decoded: it runs Ghostscript)"),
)


def sniff_more(head: bytes) -> str | None:
    """The format whose signature starts ``head`` (the first 32 bytes), among those here."""
    if head[:2] in _NETPBM and _NETPBM_SIZE.match(head):
        return "PPM"
    if head[:3] == b"P7\n":
        return "PAM"
    count = int.from_bytes(head[4:6], "little")
    if head[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and count > 0:
        return "ICO" if head[2] == 1 else "CUR"
    simple = {b"qoif": "QOI", b"8BPS": "PSD", b"icns": "ICNS", b"DDS ": "DDS"}
    if head[:4] in simple:
        return simple[head[:4]]
    if len(head) >= 4 and head[:2] == b"\x01\xda" and head[2] in (0, 1) and head[3] in (1, 2):
        return "SGI"
    if len(head) >= 4 and head[0] == 0x0A and head[1] in (0, 2, 3, 4, 5) and head[2] == 1 and head[3] in (1, 2, 4, 8):
        return "PCX"
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "JPEG2000"
    if head[4:8] == b"ftyp" and head[8:12] in _AVIF_BRANDS:
        return "AVIF"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "JXL"
    if any(head[at : at + len(magic)] == magic for at, magic in _RAW_SIGNATURES):
        return "RAW"
    return None


def not_an_image_reason(head: bytes) -> str:
    """Why a file with this head (first 32 bytes) is not an image we decode, for a report."""
    if not head:
        return "empty file (0 bytes)"
    if looks_like_text(head):
        return "not an image (content looks like text)"
    what = next((name for magic, name in _OTHER_FORMATS if head.startswith(magic)), None)
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("latin-1").strip()
        what = "an AVIF image" if brand in ("avif", "avis") else f"ISO media, probably video (brand '{brand}')"
    prefix = f"looks like {what}; " if what else ""
    return f"not a supported image format ({prefix}content starts with {head[:8]!r})"


def looks_like_text(head: bytes) -> bool:
    """Whether ``head`` decodes as printable UTF-8 (or starts with a UTF-16 byte-order mark)."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    try:  # incremental: a multi-byte character cut at byte 32 is fine
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\n\r\f\v" for c in text.removeprefix("\ufeff"))


def pillow_opener(fmt: str) -> Callable[[BinaryIO], Image.Image]:
    """The Pillow plugin class that opens ``fmt`` (imported on first use)."""
    module, name = PILLOW_PLUGINS[fmt]
    return getattr(importlib.import_module(f"PIL.{module}"), name)  # type: ignore[no-any-return]


# -- TIFF-based camera RAW and TGA: recognised from more than the first bytes -----------------------
def tiff_is_raw(stream: BinaryIO) -> bool:
    """Whether a TIFF-signature file is a camera RAW (DNG, CR2, NEF, ARW, PEF, ...), from IFD0.

    DNG has a DNGVersion tag, CR2 a 'CR' marker; other makers' RAW files name a camera maker
    and hold sub-IFDs or a colour-filter-array image. The stream position is kept.
    """
    start = stream.tell()
    try:
        head = stream.read(16)
        if head[8:10] == b"CR":
            return True
        order = "<" if head[:2] == b"II" else ">"
        if head[2:4] not in (b"*\x00", b"\x00*"):
            return False  # BigTIFF: never a camera RAW
        (offset,) = struct.unpack(order + "I", head[4:8])
        tags = _ifd_tags(stream, start + offset, order)
    except (OSError, struct.error):
        return False
    finally:
        stream.seek(start)
    if 50706 in tags:  # DNGVersion
        return True
    make = tags.get(271, b"").split(b"\x00")[0].strip().upper()
    camera = make.startswith((b"NIKON", b"SONY", b"PENTAX", b"SAMSUNG", b"CANON", b"OLYMPUS", b"LEICA", b"HASSELBLAD"))
    return camera and (330 in tags or tags.get(262) == 32803)  # SubIFDs, or CFA photometric


def _ifd_tags(stream: BinaryIO, offset: int, order: str) -> dict[int, Any]:
    """Tags of one IFD: short/long values as ints, ASCII values (up to 64 bytes) as bytes."""
    stream.seek(offset)
    (count,) = struct.unpack(order + "H", stream.read(2))
    entries = stream.read(12 * min(count, 512))
    tags: dict[int, Any] = {}
    for at in range(0, len(entries) - 11, 12):
        tag, kind, n = struct.unpack(order + "HHI", entries[at : at + 8])
        value = entries[at + 8 : at + 12]
        if kind == 3:
            tags[tag] = struct.unpack(order + "H", value[:2])[0]
        elif kind == 4:
            tags[tag] = struct.unpack(order + "I", value)[0]
        elif kind == 2:
            tags[tag] = value if n <= 4 else _read_at(stream, struct.unpack(order + "I", value)[0], min(n, 64))
        else:
            tags[tag] = None
    return tags


def _read_at(stream: BinaryIO, offset: int, size: int) -> bytes:
    here = stream.tell()
    stream.seek(offset)
    data = stream.read(size)
    stream.seek(here)
    return data


def looks_like_tga(head: bytes, stream: BinaryIO) -> bool:
    """Whether a file with no known signature is a Truevision TGA (it has none of its own).

    A TGA 2.0 footer settles it; otherwise the 18-byte header must be consistent (image and
    colour-map types, pixel depth, a non-empty size) and, when uncompressed, the file long
    enough for its pixels. Checked last, after every format with a signature.
    """
    if len(head) < 18:
        return False
    start = stream.tell()
    try:
        stream.seek(0, io.SEEK_END)
        size = stream.tell() - start
        footer = _read_at(stream, start + max(size - 18, 0), 18)
    except OSError:
        return False
    finally:
        stream.seek(start)
    id_len, map_type, kind = head[0], head[1], head[2]
    map_len, map_depth = int.from_bytes(head[5:7], "little"), head[7]
    width, height, depth = int.from_bytes(head[12:14], "little"), int.from_bytes(head[14:16], "little"), head[16]
    mapped = kind in (1, 9)
    if map_type != int(mapped) or kind not in (1, 2, 3, 9, 10, 11) or width < 1 or height < 1:
        return False
    if depth not in ((8,) if mapped else (1, 8, 15, 16, 24, 32)) or head[17] & 0xC0:
        return False
    if footer == _TGA_FOOTER:
        return True
    map_bytes = map_len * ((map_depth + 7) // 8) if mapped else 0
    pixels = width * height * ((depth + 7) // 8) if kind < 9 else 1
    return size >= 18 + id_len + map_bytes + pixels


# -- PAM (Netpbm P7) -------------------------------------------------------------------------------
class PamHeader(NamedTuple):
    width: int
    height: int
    depth: int
    maxval: int
    data_offset: int


_PAM_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def pam_header(data: bytes, where: Path | str | None) -> PamHeader:
    """Parse a PAM header (``P7`` … ``ENDHDR``); raises CorruptImageError when it is not valid."""
    end = data.find(b"ENDHDR\n", 0, 4096)
    if end < 0:
        raise corrupt(where, "PAM header has no ENDHDR line in its first 4 KB")
    fields: dict[str, int] = {}
    for line in data[3:end].decode("latin-1").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) == 2 and words[0] in ("WIDTH", "HEIGHT", "DEPTH", "MAXVAL") and words[1].isdigit():
            fields[words[0]] = int(words[1])
    missing = [name for name in ("WIDTH", "HEIGHT", "DEPTH", "MAXVAL") if name not in fields]
    if missing or fields["DEPTH"] not in _PAM_MODES or not 1 <= fields["MAXVAL"] <= 65535:
        raise corrupt(where, f"PAM header invalid (missing {missing} or bad DEPTH/MAXVAL): {fields}")
    if fields["WIDTH"] < 1 or fields["HEIGHT"] < 1:
        raise corrupt(where, f"PAM size {fields['WIDTH']}×{fields['HEIGHT']} in header")
    return PamHeader(fields["WIDTH"], fields["HEIGHT"], fields["DEPTH"], fields["MAXVAL"], end + len(b"ENDHDR\n"))


def pam_image(data: bytes, header: PamHeader, where: Path | str | None) -> Image.Image:
    """Decode the samples after a checked header to an 8-bit L, LA, RGB or RGBA image."""
    wide = header.maxval > 255
    count = header.width * header.height * header.depth
    raw = data[header.data_offset : header.data_offset + count * (2 if wide else 1)]
    if len(raw) < count * (2 if wide else 1):
        raise corrupt(where, f"truncated PAM: {len(raw):,} bytes of pixels, {count * (2 if wide else 1):,} expected")
    samples = np.frombuffer(raw, dtype=">u2" if wide else np.uint8).astype(np.uint32)
    scaled = (samples * 255 + header.maxval // 2) // header.maxval
    pixels = np.clip(scaled, 0, 255).astype(np.uint8).reshape(header.height, header.width, header.depth)
    return Image.fromarray(pixels[:, :, 0] if header.depth == 1 else pixels, _PAM_MODES[header.depth])


# -- JPEG XL ---------------------------------------------------------------------------------------
_JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


def jxl_size(data: bytes, where: Path | str | None) -> tuple[int, int]:
    """(width, height) from a JPEG XL codestream's SizeHeader (bare or in its ISO-BMFF container)."""
    stream = data[2:] if data[:2] == b"\xff\x0a" else _jxl_codestream(data, where)
    bits = _BitReader(stream)

    def dimension(div8: bool) -> int:
        if div8:
            return 8 * (1 + bits.read(5))
        return 1 + bits.read((9, 13, 18, 30)[bits.read(2)])

    try:
        div8 = bool(bits.read(1))
        height = dimension(div8)
        ratio = bits.read(3)
        if ratio:
            num, den = _JXL_RATIOS[ratio]
            return height * num // den, height
        return dimension(div8), height
    except IndexError:
        raise corrupt(where, "truncated JPEG XL header") from None


def _jxl_codestream(data: bytes, where: Path | str | None) -> bytes:
    """The start of the codestream inside a JPEG XL container (first jxlc or jxlp box)."""
    at = 0
    while at + 8 <= len(data):
        size, kind = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8]
        header = 8
        if size == 1:
            size, header = int.from_bytes(data[at + 8 : at + 16], "big"), 16
        if kind in (b"jxlc", b"jxlp"):
            skip = header + (4 if kind == b"jxlp" else 0)
            stream = data[at + skip : at + skip + 64]
            if stream[:2] == b"\xff\x0a":
                return stream[2:]
            break
        if size == 0 or size < header:
            break
        at += size
    raise corrupt(where, "JPEG XL container without a codestream box")


class _BitReader:
    """Little-endian bit reader (JPEG XL's bit order): least significant bits of each byte first."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, count: int) -> int:
        value = 0
        for i in range(count):
            byte = self.data[(self.pos + i) >> 3]  # IndexError when truncated
            value |= ((byte >> ((self.pos + i) & 7)) & 1) << i
        self.pos += count
        return value


def jxl_image(data: bytes, where: Path | str | None, max_pixels: int, load_rgb: Loader) -> Image.Image:
    """Decode JPEG XL with pillow-jxl-plugin's decoder (one thread: decoding runs one image per
    worker); a losslessly recompressed JPEG comes back as that JPEG, decoded by ``load_rgb``."""
    decoder = require("JXL", where).Decoder(num_threads=1)
    is_jpeg, info, pixels, _icc, _boxes = decoder(data)
    if is_jpeg:
        return load_rgb(bytes(pixels), max_pixels=max_pixels)
    if info.mode not in ("RGB", "RGBA", "L", "LA", "I;16", "F"):
        raise corrupt(where, f"JPEG XL sample format '{info.mode}' is not supported")
    return Image.frombytes(info.mode, (info.width, info.height), bytes(pixels))

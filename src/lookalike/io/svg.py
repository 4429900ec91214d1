"""SVG drawings, rasterised with resvg (``resvg-py``) after a safety check.

Before anything is rendered, the XML is parsed once with expat and refused when it declares
entities (billion-laughs expansion), refers to anything outside itself (``href`` other than
``#fragment`` or ``data:``, CSS ``url()`` or ``@import`` of a file, an ``xml-stylesheet``), or is
larger than :data:`SVG_MAX_BYTES`. The render size is the drawing's own (``width``/``height``,
else its ``viewBox``), scaled so that the shorter side matches ``min_side`` when given, and
always within :data:`SVG_MAX_SIDE` per side and the pixel limit: a vector drawing is never
refused for its declared size, it is rendered smaller.
"""

from __future__ import annotations

import io
import re
import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, PngImagePlugin

from lookalike.io._failures import corrupt, require

SVG_MAX_BYTES = 8 << 20
"""Larger SVG files are refused (a drawing this size is almost surely generated data)."""
SVG_MAX_SIDE = 4096
"""Longest side of a rendered SVG, in pixels."""
_DEFAULT_SIZE = (100.0, 100.0)
_UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0, "em": 16.0}
_LENGTH = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z%]*)\s*$")
_EXTERNAL_CSS = re.compile(r"url\(\s*['\"]?\s*(?!#|data:)([^'\")\s]+)|@import", re.IGNORECASE)


class UnsafeSvgError(ValueError):
    """The SVG is refused before rendering; the message says why."""


@dataclass
class _Scan:
    root: dict[str, str] | None = None
    in_style: bool = False
    styles: list[str] = field(default_factory=list)


def looks_like_svg(text_head: bytes) -> bool:
    """Whether the first few KB of a text file have an ``<svg`` root element."""
    text = text_head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    text = re.sub(r"<\?xml[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(\[.*?\])?\s*>", "", text, flags=re.DOTALL).lstrip()
    return re.match(r"<(?:[A-Za-z_][\w.-]*:)?svg[\s>/]", text) is not None


def svg_size(data: bytes, where: Path | str | None) -> tuple[float, float]:
    """The drawing's own (width, height) in CSS pixels, after the safety check.

    Raises
    ------
    CorruptImageError : refused as unsafe, too large, or not well-formed XML with an svg root.
    """
    if len(data) > SVG_MAX_BYTES:
        raise corrupt(where, f"SVG too large: {len(data):,} bytes, over the limit of {SVG_MAX_BYTES:,}")
    try:
        root = _safe_root(data)
    except UnsafeSvgError as error:
        raise corrupt(where, f"unsafe SVG refused: {error}") from None
    except xml.parsers.expat.ExpatError as error:
        raise corrupt(where, f"truncated or corrupt SVG: {error}") from None
    box = [float(v) for v in re.split(r"[\s,]+", root.get("viewBox", "").strip()) if _is_number(v)]
    box_size = (box[2], box[3]) if len(box) == 4 and box[2] > 0 and box[3] > 0 else None
    width, height = _length(root.get("width")), _length(root.get("height"))
    if width and height:
        return width, height
    if box_size:
        w, h = box_size
        if width:
            return width, width * h / w
        if height:
            return height * w / h, height
        return box_size
    return _DEFAULT_SIZE


def render_svg(data: bytes, where: Path | str | None, *, max_pixels: int, min_side: int | None) -> Image.Image:
    """Rasterise to an RGBA image (transparent background) at :func:`render_size`."""
    width, height = render_size(svg_size(data, where), max_pixels=max_pixels, min_side=min_side)
    resvg = require("SVG", where)
    png = resvg.svg_to_bytes(svg_string=data.decode("utf-8"), width=width, height=height)
    image = PngImagePlugin.PngImageFile(io.BytesIO(bytes(png)))
    image.load()
    return image


def render_size(size: tuple[float, float], *, max_pixels: int, min_side: int | None) -> tuple[int, int]:
    """Whole-pixel render size: ``min_side`` on the shorter side when given, else the drawing's
    own size; then shrunk to fit :data:`SVG_MAX_SIDE` and ``max_pixels``."""
    width, height = size
    scale = min_side / min(width, height) if min_side else 1.0
    scale = min(scale, SVG_MAX_SIDE / max(width, height), (max_pixels / (width * height)) ** 0.5)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _safe_root(data: bytes) -> dict[str, str]:
    """The attributes of the svg root element; raises UnsafeSvgError or ExpatError."""
    scan = _Scan()
    parser = xml.parsers.expat.ParserCreate()
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse(reason: str) -> None:
        raise UnsafeSvgError(reason)

    def entity(name: str, *_: object) -> None:
        refuse(f"it declares the entity '{name}' (entity expansion is not allowed)")

    def external(*_: object) -> int:
        raise UnsafeSvgError("it refers to an external entity")

    def start(name: str, attrs: dict[str, str]) -> None:
        if scan.root is None:
            if name.rsplit(":", 1)[-1] != "svg":
                refuse(f"root element is <{name}>, not <svg>")
            scan.root = attrs
        for key, value in attrs.items():
            if key.rsplit(":", 1)[-1] == "href" and not value.strip().startswith(("#", "data:")) and value.strip():
                refuse(f"it refers to the external resource '{value.strip()[:80]}'")
            if key == "style":
                _check_css(value)
        scan.in_style = name.rsplit(":", 1)[-1] == "style"

    def text(chunk: str) -> None:
        if scan.in_style:
            _check_css(chunk)

    parser.EntityDeclHandler = entity
    parser.UnparsedEntityDeclHandler = entity
    parser.ExternalEntityRefHandler = external
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda name: setattr(scan, "in_style", False)
    parser.CharacterDataHandler = text
    parser.ProcessingInstructionHandler = lambda target, _: (
        refuse("it links an external stylesheet") if target == "xml-stylesheet" else None
    )
    parser.Parse(data, True)
    if scan.root is None:
        refuse("no root element")
    return scan.root  # type: ignore[return-value]


def _check_css(css: str) -> None:
    found = _EXTERNAL_CSS.search(css)
    if found:
        raise UnsafeSvgError(f"its CSS refers to an external resource ('{found.group(0)[:80]}')")


def _length(value: str | None) -> float | None:
    """A positive length in CSS pixels, or None (missing, percentage or unknown unit)."""
    match = _LENGTH.match(value or "")
    if not match or match.group(2) not in _UNITS:
        return None
    number = float(match.group(1)) * _UNITS[match.group(2)]
    return number if number > 0 else None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

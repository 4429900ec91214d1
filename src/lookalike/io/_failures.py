"""ImageErrors for decoding, shared by the decoders of :mod:`lookalike.io` (imports no decoder)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from lookalike.errors import CorruptImageError, ImageError, ImageTooLargeError, MissingDependencyError
from lookalike.io.scan import display_path

EXTRAS = {"JXL": ("pillow-jxl-plugin", "jxl"), "RAW": ("rawpy", "raw"), "SVG": ("resvg-py", "svg")}
"""Formats that need an optional package: format -> (package, lookalike extra)."""
_MODULES = {"JXL": "pillow_jxl", "RAW": "rawpy", "SVG": "resvg_py"}


def fail(cls: type[ImageError], where: Path | str | None, reason: str) -> ImageError:
    """An ImageError whose message shows a printable path and whose ``path`` is the real one."""
    error = cls(display_path(where) if where is not None else None, reason)
    error.path = where
    return error


def too_large_reason(width: int, height: int, limit: int) -> str:
    return (
        f"image too large: {width}×{height} = {width * height:,} pixels, over the limit of {limit:,} "
        "(raise it with --max-pixels)"
    )


def too_large(where: Path | str | None, width: int, height: int, limit: int) -> ImageError:
    return fail(ImageTooLargeError, where, too_large_reason(width, height, limit))


def corrupt(where: Path | str | None, reason: str) -> ImageError:
    return fail(CorruptImageError, where, reason)


def require(fmt: str, where: Path | str | None = None) -> Any:
    """Import the optional package ``fmt`` needs; when it is missing, raise an ImageError for this
    file whose reason names the package and the extra that installs it."""
    package, extra = EXTRAS[fmt]
    try:
        return importlib.import_module(_MODULES[fmt])
    except ImportError as error:
        missing = MissingDependencyError(package, f"Decoding {fmt} images", f"pip install 'lookalike[{extra}]'")
        raise fail(ImageError, where, str(missing)) from error

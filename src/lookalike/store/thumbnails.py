"""Thumbnails cached on disk in the library: ``thumbnails/<side>/<hash[:2]>/<content hash>.jpg``.

Named by the image's content hash, so a cached thumbnail is never stale (changed content is a new
image) and identical files share one. Written atomically; a library folder that cannot be written
still gets its thumbnails, only uncached (in memory, per request).
"""

from __future__ import annotations

import io
from pathlib import Path

from lookalike.errors import ImageError

THUMBNAILS_DIR = "thumbnails"
QUALITY = 85


def thumbnail_file(folder: Path, digest: str, side: int) -> Path:
    """Where the ``side``-pixel thumbnail of the image with content hash ``digest`` is cached."""
    return folder / THUMBNAILS_DIR / str(side) / digest[:2] / f"{digest}.jpg"


def render_thumbnail(source: Path, side: int, max_pixels: int) -> bytes:
    """JPEG bytes of ``source`` (EXIF-upright) shrunk to fit ``side`` x ``side``; raises ImageError."""
    from lookalike.io.decode import load_rgb

    image = load_rgb(source, max_pixels=max_pixels, min_side=side)
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=QUALITY)
    return buffer.getvalue()


def thumbnail(folder: Path, digest: str, source: Path, side: int, max_pixels: int) -> bytes | None:
    """The cached thumbnail's bytes, made (and cached) on first use; None when ``source`` cannot be read."""
    from lookalike.store.atomic import write_bytes

    path = thumbnail_file(folder, digest, side)
    try:
        return path.read_bytes()
    except OSError:
        pass
    try:
        data = render_thumbnail(source, side, max_pixels)
    except ImageError:
        return None
    try:
        write_bytes(path, data)
    except OSError:
        pass  # read-only library: served uncached
    return data

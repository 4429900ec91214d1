"""Thumbnails cached on disk in the library: ``thumbnails/<side>/<hash[:2]>/<content hash>.jpg``.

Named by the image's content hash, so a cached thumbnail is never stale (changed content is a new
image) and identical files share one. Written atomically; a library folder that cannot be written
still gets its thumbnails, only uncached. Making them (decoding) is the caller's: see
:func:`lookalike.app.thumbs.cached_thumbnail`.
"""

from __future__ import annotations

from pathlib import Path

THUMBNAILS_DIR = "thumbnails"


def thumbnail_file(folder: Path, digest: str, side: int) -> Path:
    """Where the ``side``-pixel thumbnail of the image with content hash ``digest`` is cached."""
    return folder / THUMBNAILS_DIR / str(side) / digest[:2] / f"{digest}.jpg"


def read_thumbnail(folder: Path, digest: str, side: int) -> bytes | None:
    """The cached thumbnail's JPEG bytes, None when not cached yet."""
    try:
        return thumbnail_file(folder, digest, side).read_bytes()
    except OSError:
        return None


def write_thumbnail(folder: Path, digest: str, side: int, data: bytes) -> None:
    """Cache a thumbnail atomically; a library that cannot be written just stays uncached."""
    from lookalike.store.atomic import write_bytes

    try:
        write_bytes(thumbnail_file(folder, digest, side), data)
    except OSError:
        pass  # read-only library: served uncached

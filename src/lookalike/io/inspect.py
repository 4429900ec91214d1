"""Look at one found file: is it usable, what content does it hold, what kind of image is it."""

from __future__ import annotations

from dataclasses import dataclass

from lookalike.errors import ImageError, NotAnImageError
from lookalike.io.decode import ImageInfo, probe_image, sniff_format
from lookalike.io.scan import FoundFile, content_hash

HEAD_BYTES = 32


@dataclass(frozen=True)
class Inspection:
    """The outcome for one file.

    Exactly one holds: ``problem`` (the file itself is unusable: no content hash), or
    ``digest`` with either ``info`` (a readable image header) or ``reason`` (an image whose
    header cannot be used, e.g. a decompression bomb).
    """

    problem: str | None = None
    digest: str | None = None
    info: ImageInfo | None = None
    reason: str | None = None


def inspect_file(found: FoundFile, *, max_pixels: int) -> Inspection:
    """Classify ``found`` by content (never by extension); never raises for bad files."""
    if found.problem is not None:
        return Inspection(problem=found.problem)
    if found.size == 0:
        return Inspection(problem="empty file (0 bytes)")
    try:
        with open(found.path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
        if sniff_format(head) is None:
            raise NotAnImageError(found.path, _not_an_image(head))
        digest = content_hash(found.path)
    except ImageError as exc:
        return Inspection(problem=exc.reason)
    except OSError as exc:
        return Inspection(problem=_os_reason(exc))
    try:
        return Inspection(digest=digest, info=probe_image(found.path, max_pixels=max_pixels))
    except ImageError as exc:
        return Inspection(digest=digest, reason=exc.reason)


def _not_an_image(head: bytes) -> str:
    if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "not an image (content looks like text)"
    return f"not a supported image format (content starts with {head[:8]!r})"


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "file vanished while reading"
    return f"cannot read file ({exc.strerror or exc})"

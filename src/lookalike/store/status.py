"""What a library holds: counts, backbone, and every skipped file with its reason."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lookalike.store.catalog import Catalog
from lookalike.store.library_store import LibraryStore


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class LibraryStatus:
    """A summary of one library.

    ``duplicate_files`` counts files whose content is already held by another file (they share
    one embedding). ``skipped_by_reason`` groups skipped files by the kind of reason (the text
    before the first colon), largest group first.
    """

    folder: Path
    backbone: str
    weights_sha256: str
    dim: int
    files: int
    images: int
    embedded: int
    pending: int
    skipped_files: int
    duplicate_files: int
    labelled_files: int
    roots: list[str]
    skipped_by_reason: list[tuple[str, int]]
    updated: str


def reason_kind(reason: str) -> str:
    """The group a reason belongs to: its text before any ``:`` or `` (`` detail.

    ``"truncated or corrupt PNG: image file is truncated"`` → ``"truncated or corrupt PNG"``;
    ``"broken symbolic link (target 'x' does not exist)"`` → ``"broken symbolic link"``.
    """
    return reason.split(":", 1)[0].split(" (", 1)[0].strip()


def read_status(store: LibraryStore) -> LibraryStatus:
    catalog, manifest, folder = store.catalog, store.manifest, store.folder
    count = catalog.count
    kinds: dict[str, int] = {}
    for (reason,) in catalog.query("SELECT reason FROM catalog WHERE status = 'skipped'"):
        kind = reason_kind(reason or "unknown")
        kinds[kind] = kinds.get(kind, 0) + 1
    image_files = count("SELECT COUNT(*) FROM files WHERE image_id IS NOT NULL")
    images = count("SELECT COUNT(*) FROM images")
    return LibraryStatus(
        folder=folder,
        backbone=manifest.embed.backbone,
        weights_sha256=manifest.embed.weights_sha256,
        dim=manifest.embed.dim,
        files=count("SELECT COUNT(*) FROM files"),
        images=images,
        embedded=count("SELECT COUNT(*) FROM images WHERE status = 'embedded'"),
        pending=count("SELECT COUNT(*) FROM images WHERE status = 'pending'"),
        skipped_files=count("SELECT COUNT(*) FROM catalog WHERE status = 'skipped'"),
        duplicate_files=image_files - images,
        labelled_files=count("SELECT COUNT(*) FROM files WHERE label IS NOT NULL"),
        roots=[str(r) for r, _ in catalog.roots()],
        skipped_by_reason=sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])),
        updated=manifest.updated,
    )


def skipped_files(catalog: Catalog, limit: int | None = None) -> list[SkippedFile]:
    """Every skipped file with its full reason, grouped by reason then path."""
    sql = "SELECT path, reason FROM catalog WHERE status = 'skipped' ORDER BY reason, path"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [SkippedFile(p, r or "unknown") for p, r in catalog.query(sql)]

"""Bring the catalog in line with folders on disk: new, changed, unchanged and vanished files.

A file whose size and mtime are unchanged since the last scan is not read again. New or changed
files are classified by content (:func:`lookalike.io.inspect.inspect_file`); identical content
maps to one image row, so it is embedded once while every path is kept. Files that disappeared
from a fully scanned root are dropped, and images left with no file are removed. Work is
committed in batches, so a killed scan resumes where it stopped and never drops a file it did
not finish scanning.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.config import IngestConfig, usable_cores
from lookalike.io.inspect import Inspection, inspect_file
from lookalike.io.scan import FoundFile, walk
from lookalike.store.catalog import Catalog, FileRow, encode_path
from lookalike.store.labels import folder_label

LABEL_MODES = ("none", "folder")
COMMIT_EVERY = 500

ProgressHook = Callable[[int], None]


@dataclass
class SyncReport:
    """What one scan changed."""

    new_files: int = 0
    changed_files: int = 0
    unchanged_files: int = 0
    removed_files: int = 0
    new_images: int = 0
    duplicate_files: int = 0
    problems: Counter[str] = field(default_factory=Counter)

    @property
    def scanned(self) -> int:
        return self.new_files + self.changed_files + self.unchanged_files


def sync_roots(
    catalog: Catalog,
    roots: list[tuple[Path, str]],
    config: IngestConfig,
    on_file: ProgressHook | None = None,
) -> SyncReport:
    """Scan each (root, label mode) and reconcile the catalog; returns what changed."""
    report = SyncReport()
    for root, labels in roots:
        root_id = catalog.add_root(root, labels)
        known = catalog.files_under(root_id)
        _scan_root(catalog, root, root_id, labels, known, config, report, on_file)
        _drop_vanished(catalog, list(known.values()), report)
    return report


def _scan_root(
    catalog: Catalog,
    root: Path,
    root_id: int,
    labels: str,
    known: dict[bytes, FileRow],
    config: IngestConfig,
    report: SyncReport,
    on_file: ProgressHook | None,
) -> None:
    """Walk one root, writing file rows in batches; ``known`` keeps the paths not seen.

    New and changed files are read, hashed and their headers parsed by one thread per core
    (hashing and reading release the GIL), so the scan of large photos keeps every core busy.
    """
    todo: list[tuple[FoundFile, FileRow | None]] = []

    def flush() -> None:
        inspections = pool.map(lambda item: inspect_file(item[0], max_pixels=config.max_pixels), todo)
        _write_batch(catalog, root, root_id, labels, [(f, o, i) for (f, o), i in zip(todo, inspections)], report)
        todo.clear()

    with ThreadPoolExecutor(usable_cores(), thread_name_prefix="inspect") as pool:
        for found in walk([root], follow_symlinks=config.follow_symlinks, include_hidden=config.include_hidden):
            old = known.pop(encode_path(found.path), None)
            unchanged = (
                old is not None
                and old.image_id is not None
                and found.problem is None
                and (old.size, old.mtime_ns) == (found.size, found.mtime_ns)
            )
            if unchanged:
                report.unchanged_files += 1
            else:
                todo.append((found, old))
            if len(todo) >= COMMIT_EVERY:
                flush()
            if on_file is not None:
                on_file(1)
        flush()


def _write_batch(
    catalog: Catalog,
    root: Path,
    root_id: int,
    labels: str,
    batch: list[tuple[FoundFile, FileRow | None, Inspection]],
    report: SyncReport,
) -> None:
    if not batch:
        return
    now = time.time()
    with catalog.transaction() as db:
        for found, old, inspection in batch:
            image_id = None
            if inspection.problem is not None:
                report.problems[inspection.problem] += 1
            else:
                image_id = _image_id(db, catalog, inspection, report, now)
            label = folder_label(root, found.path) if labels == "folder" else None
            catalog.upsert_file(db, found.path, root_id, found.size, found.mtime_ns, image_id,
                                inspection.problem, label, now)
            if old is None:
                report.new_files += 1
            else:
                report.changed_files += 1
        catalog.delete_orphan_images(db)


def _image_id(
    db: sqlite3.Connection, catalog: Catalog, inspection: Inspection, report: SyncReport, now: float
) -> int:
    """The image row for this content, created as pending (or skipped) when new."""
    assert inspection.digest is not None  # prior classification is assumed
    existing = catalog.image_for_hash(db, inspection.digest)
    if existing is not None:
        report.duplicate_files += 1
        return existing
    info = inspection.info
    status = "pending" if info is not None else "skipped"
    image_id = catalog.insert_image(
        db, inspection.digest, info.format if info else None, info.width if info else None,
        info.height if info else None, status, inspection.reason, now,
    )
    report.new_images += 1
    return image_id


def _drop_vanished(catalog: Catalog, rows: list[FileRow], report: SyncReport) -> None:
    """Forget files no longer on disk, and images that no file holds any more."""
    if not rows:
        return
    with catalog.transaction() as db:
        catalog.delete_files(db, [row.id for row in rows])
        catalog.delete_orphan_images(db)
    report.removed_files += len(rows)


def remove_paths(catalog: Catalog, paths: list[Path]) -> int:
    """Forget the given files (and folders' files); returns how many file rows were removed."""
    removed = 0
    with catalog.transaction() as db:
        for path in paths:
            removed += catalog.delete_under(db, path)
        catalog.delete_orphan_images(db)
    return removed

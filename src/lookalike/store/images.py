"""Reads of the ``files`` and ``images`` tables that the stages above need, by name.

Every stage asks the catalog through these functions (or ``store.labels`` / ``store.runs``), so
the SQL lives here and the stages stay free of it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lookalike.errors import InvalidParameterError
from lookalike.store.catalog import Catalog, encode_path, from_signed64

CHUNK = 500


def embedded_count(catalog: Catalog) -> int:
    """How many images are embedded."""
    return catalog.count("SELECT COUNT(*) FROM images WHERE status = 'embedded'")


def data_version(catalog: Catalog) -> int:
    """SQLite's data version: changes whenever another connection commits."""
    return int(catalog.query("PRAGMA data_version")[0][0])


def first_files(catalog: Catalog, image_ids: list[int] | None = None) -> dict[int, tuple[str, str | None]]:
    """For each image (default: every image), (path, label) of its first file (smallest file id)."""
    out: dict[int, tuple[str, str | None]] = {}
    if image_ids is None:
        for image_id, path, label in catalog.query(
            "SELECT image_id, path, label FROM files WHERE image_id IS NOT NULL ORDER BY id"
        ):
            out.setdefault(int(image_id), (str(path), label))
        return out
    for start in range(0, len(image_ids), CHUNK):
        chunk = image_ids[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = catalog.query(f"SELECT image_id, path, label FROM files WHERE image_id IN ({marks}) ORDER BY id", chunk)
        for image_id, path, label in rows:
            out.setdefault(int(image_id), (str(path), label))
    return out


def first_paths(catalog: Catalog, status: tuple[str, ...] = ("embedded",)) -> list[Path]:
    """The first file of every image with one of ``status``, in image id order."""
    marks = ",".join("?" * len(status))
    rows = catalog.query(
        "SELECT (SELECT f.path_bytes FROM files f WHERE f.image_id = i.id ORDER BY f.id LIMIT 1) "
        f"FROM images i WHERE i.status IN ({marks}) ORDER BY i.id", status,
    )  # fmt: skip
    return [Path(os.fsdecode(bytes(r[0]))) for r in rows if r[0] is not None]


def embedded_files(catalog: Catalog) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(file ids (n,), their image ids (n,), file id -> path) of files holding an embedded image."""
    rows = catalog.query(
        "SELECT f.id, f.image_id, f.path FROM files f JOIN images i ON i.id = f.image_id "
        "WHERE i.status = 'embedded' ORDER BY f.id"
    )
    file_ids = np.array([r[0] for r in rows], dtype=np.int64)
    image_of = np.array([r[1] for r in rows], dtype=np.int64)
    return file_ids, image_of, {int(r[0]): str(r[2]) for r in rows}


def image_files(catalog: Catalog, image_id: int) -> list[tuple[Path, str | None]]:
    """Every file of an embedded image (file id order) with the image's format."""
    rows = catalog.query(
        "SELECT f.path_bytes, i.format FROM files f JOIN images i ON i.id = f.image_id "
        "WHERE f.image_id = ? AND i.status = 'embedded' ORDER BY f.id", (image_id,),
    )  # fmt: skip
    return [(Path(os.fsdecode(bytes(p))), None if fmt is None else str(fmt)) for p, fmt in rows]


def files_matching(catalog: Catalog, text: str, limit: int) -> list[tuple[int, str]]:
    """(image id, path) of files whose path contains ``text``, by path, at most ``limit``."""
    rows = catalog.query(
        "SELECT image_id, path FROM files WHERE image_id IS NOT NULL AND path LIKE ? ORDER BY path LIMIT ?",
        (f"%{text}%", limit),
    )
    return [(int(i), str(p)) for i, p in rows]


def embedded_with_hash(catalog: Catalog, digest: str) -> int | None:
    """The embedded image with content hash ``digest``, if any."""
    rows = catalog.query("SELECT id FROM images WHERE hash = ? AND status = 'embedded'", (digest,))
    return int(rows[0][0]) if rows else None


def phashes(catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    """(image ids, uint64 pHashes) of the embedded images that have one."""
    return _hashes(catalog, "phash")


def dhashes(catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    """(image ids, uint64 dHashes) of the embedded images that have one (none in a catalog made
    before dHashes were stored and opened read-only since)."""
    if not catalog.has_column("images", "dhash"):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    return _hashes(catalog, "dhash")


def missing_dhashes(catalog: Catalog) -> int:
    """Embedded images without a dHash (every one, in a catalog made before the column existed
    and opened read-only)."""
    embedded = "SELECT COUNT(*) FROM images WHERE status = 'embedded'"
    if not catalog.has_column("images", "dhash"):
        return catalog.count(embedded)
    return catalog.count(embedded + " AND dhash IS NULL")


def files_without_dhash(catalog: Catalog) -> dict[int, list[tuple[Path, int, int]]]:
    """image id -> its files (path, size, mtime_ns as scanned) for the embedded images without a dHash."""
    rows = catalog.query(
        "SELECT i.id, f.path_bytes, f.size, f.mtime_ns FROM images i JOIN files f ON f.image_id = i.id "
        "WHERE i.status = 'embedded' AND i.dhash IS NULL ORDER BY i.id, f.id"
    )
    files_of: dict[int, list[tuple[Path, int, int]]] = {}
    for image_id, path_bytes, size, mtime_ns in rows:
        files_of.setdefault(int(image_id), []).append((Path(os.fsdecode(path_bytes)), int(size), int(mtime_ns)))
    return files_of


def store_dhashes(catalog: Catalog, hashes: list[tuple[int, int]]) -> None:
    """Store (signed dHash, image id) pairs in one transaction."""
    with catalog.transaction() as db:
        db.executemany("UPDATE images SET dhash = ? WHERE id = ?", hashes)


def _hashes(catalog: Catalog, column: str) -> tuple[np.ndarray, np.ndarray]:
    rows = catalog.query(f"SELECT id, {column} FROM images WHERE status = 'embedded' AND {column} IS NOT NULL")
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    return ids, np.array([from_signed64(int(r[1])) for r in rows], dtype=np.uint64)


def sizes(catalog: Catalog) -> dict[int, tuple[int, int]]:
    """image id -> displayed (width, height) of the embedded images."""
    rows = catalog.query("SELECT id, width, height FROM images WHERE status = 'embedded' AND width > 0")
    return {int(r[0]): (int(r[1]), int(r[2])) for r in rows}


def top_classes(catalog: Catalog) -> dict[int, int]:
    """Each image's top ImageNet class index (backbones with a classifier head; else empty)."""
    return {int(i): int(c) for i, c in catalog.query("SELECT image_id, class_index FROM image_classes WHERE rank = 0")}


def ids_with_label(catalog: Catalog, label: str) -> np.ndarray:
    """Embedded images with a file labelled ``label``; an unknown label raises with the known ones."""
    rows = catalog.query(
        "SELECT DISTINCT f.image_id FROM files f JOIN images i ON i.id = f.image_id "
        "WHERE f.label = ? AND i.status = 'embedded'", (label,),
    )  # fmt: skip
    if not rows:
        known = [r[0] for r in catalog.query("SELECT DISTINCT label FROM files WHERE label IS NOT NULL ORDER BY label")]
        shown = ", ".join(known[:30]) + (", ..." if len(known) > 30 else "")
        raise InvalidParameterError(f"no embedded image has the label {label!r}; labels: {shown or 'none'}")
    return np.array(sorted(r[0] for r in rows), dtype=np.int64)


def ids_under(catalog: Catalog, folder: str, where: Path) -> np.ndarray:
    """Embedded images with a file at or below the absolute ``folder`` (compared as catalog
    paths, never opened)."""
    exact = encode_path(folder)
    below = encode_path(folder.rstrip(os.sep) + os.sep)
    rows = catalog.query(
        "SELECT DISTINCT f.image_id FROM files f JOIN images i ON i.id = f.image_id "
        "WHERE i.status = 'embedded' AND (f.path_bytes = ? OR substr(f.path_bytes, 1, ?) = ?)",
        (exact, len(below), below),
    )
    if not rows:
        raise InvalidParameterError(f"no embedded image of {where} is under {folder}")
    return np.array(sorted(r[0] for r in rows), dtype=np.int64)


def short_sides(catalog: Catalog) -> np.ndarray:
    """The shorter side (pixels) of every image whose size the scan read: (n,) float64."""
    rows = catalog.query("SELECT MIN(width, height) FROM images WHERE width IS NOT NULL AND height IS NOT NULL")
    return np.array([r[0] for r in rows], dtype=np.float64)

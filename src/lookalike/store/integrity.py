"""Integrity checks of what the store owns (catalog, raw vectors), and the repairs that need SQL.

Used by :mod:`lookalike.check` (``lookalike check [--repair]``). Each check returns
:class:`Finding` records; nothing here changes the library except the ``mark_*`` repairs, each
one transaction.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass

import numpy as np

from lookalike.store.catalog import Catalog
from lookalike.store.vectors import RawVectors

SCAN_ROWS = 65536
"""Raw vector rows read per chunk when scanning for non-finite values (bounded memory)."""


@dataclass(frozen=True)
class Finding:
    """One result of a check: ``level`` is ``ok``, ``warning`` (works, but should be brought up
    to date) or ``error`` (broken); ``repair`` says what ``--repair`` does (None: cannot)."""

    part: str
    level: str
    message: str
    repair: str | None = None


def catalog_findings(catalog: Catalog) -> list[Finding]:
    """SQLite's own integrity check, foreign keys, and the vector-row bookkeeping."""
    try:
        verdict = [str(r[0]) for r in catalog.query("PRAGMA quick_check")]
        broken_keys = catalog.query("PRAGMA foreign_key_check")
    except sqlite3.DatabaseError as exc:
        return [Finding("catalog", "error", f"{catalog.path}: unreadable ({exc}); restore it from a backup")]
    if verdict != ["ok"]:
        return [Finding("catalog", "error", f"{catalog.path}: damaged ({'; '.join(verdict[:3])}); restore it from a backup")]
    findings = []
    if broken_keys:
        findings.append(Finding("catalog", "error", f"{len(broken_keys)} rows point to missing rows (foreign keys)"))
    rows = int(catalog.get_meta("raw_rows", "0") or 0)
    unrowed = catalog.count("SELECT COUNT(*) FROM images WHERE status = 'embedded' AND (row IS NULL OR row < 0)")
    beyond = catalog.count("SELECT COUNT(*) FROM images WHERE status = 'embedded' AND row >= ?", (rows,))
    if unrowed or beyond:
        findings.append(Finding("catalog", "error", f"{unrowed + beyond} embedded images have no committed vector row",
                                "mark them pending: the next index run embeds them again"))
    if not findings:
        embedded = catalog.count("SELECT COUNT(*) FROM images WHERE status = 'embedded'")
        files = catalog.count("SELECT COUNT(*) FROM files")
        findings.append(Finding("catalog", "ok", f"{files} files, {embedded} embedded images, schema ok"))
    return findings


def usable_rows(vectors: RawVectors, generation: int, committed: int) -> int:
    """How many of the ``committed`` rows the raw vector file really holds."""
    path = vectors.path(generation)
    size = path.stat().st_size if path.exists() else 0
    return min(committed, size // vectors.row_bytes())


def bad_rows(vectors: RawVectors, generation: int, rows: int) -> np.ndarray:
    """Rows (of the first ``rows``) holding NaN or infinity: (m,) int64."""
    if rows == 0:
        return np.zeros(0, dtype=np.int64)
    matrix = vectors.read(generation, rows)
    found = []
    for start in range(0, rows, SCAN_ROWS):
        block = np.asarray(matrix[start : start + SCAN_ROWS])
        broken = ~np.isfinite(block).all(axis=1)
        found.append(start + np.flatnonzero(broken))
    return np.concatenate(found).astype(np.int64)


def vector_findings(catalog: Catalog, vectors: RawVectors) -> tuple[list[Finding], np.ndarray]:
    """The raw vector file against the catalog; also the ids of embedded images whose vector is
    missing or damaged (n,) int64."""
    generation = int(catalog.get_meta("raw_generation", "0") or 0)
    committed = int(catalog.get_meta("raw_rows", "0") or 0)
    present = usable_rows(vectors, generation, committed)
    damaged = bad_rows(vectors, generation, present)
    lost_rows = np.concatenate([damaged, np.arange(present, committed, dtype=np.int64)])
    ids = embedded_ids_at_rows(catalog, lost_rows)
    path = vectors.path(generation)
    if len(ids) == 0:
        return [Finding("vectors", "ok", f"{path.name}: {committed} committed rows, all finite")], ids
    what = f"{path}: holds {present} of {committed} committed rows" if present < committed else f"{path}: {len(damaged)} damaged rows"
    return [Finding("vectors", "error", f"{what}; {len(ids)} images lost their vector",
                    "mark them pending and embed them again from their files")], ids


def embedded_ids_at_rows(catalog: Catalog, rows: np.ndarray) -> np.ndarray:
    """Ids of embedded images stored at ``rows``: (n,) int64."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    wanted = set(int(r) for r in rows)
    pairs = catalog.query("SELECT id, row FROM images WHERE status = 'embedded'")
    return np.array(sorted(int(i) for i, r in pairs if r is None or int(r) in wanted or int(r) < 0), dtype=np.int64)


def mark_pending(catalog: Catalog, ids: np.ndarray, vectors: RawVectors) -> int:
    """Make images ``ids`` pending again (their vector is lost) and cut the committed rows to
    what the file holds; derived records (reduced vectors, index records) are dropped so they
    are rebuilt. Returns the number of images marked."""
    generation = int(catalog.get_meta("raw_generation", "0") or 0)
    committed = int(catalog.get_meta("raw_rows", "0") or 0)
    present = usable_rows(vectors, generation, committed)
    with catalog.transaction() as db:
        db.executemany("UPDATE images SET status = 'pending', row = NULL, reason = NULL WHERE id = ?",
                       [(int(i),) for i in ids])
        db.execute("UPDATE images SET status = 'pending', row = NULL WHERE status = 'embedded' AND row >= ?", (present,))
        catalog.set_meta(db, "raw_rows", present)
        db.execute("DELETE FROM meta WHERE key = 'reduced_key' OR key LIKE 'vector_index.%'")
    vectors.truncate(generation, present)
    return len(ids)


def forget_reduced(catalog: Catalog) -> None:
    """Drop the committed reduced-vector key, so the next writer recomputes them."""
    with catalog.transaction() as db:
        db.execute("DELETE FROM meta WHERE key = 'reduced_key'")


def forget_index(catalog: Catalog, kind: str) -> None:
    """Drop the record of a stored index kind (its file is rebuilt from the reduced vectors)."""
    with catalog.transaction() as db:
        db.execute("DELETE FROM meta WHERE key = ?", (f"vector_index.{kind}",))


def missing_files(catalog: Catalog) -> tuple[int, int]:
    """(files of images that are gone from disk, files of images in all)."""
    rows = catalog.query("SELECT path_bytes FROM files WHERE image_id IS NOT NULL")
    gone = sum(1 for (raw,) in rows if not os.path.lexists(os.fsdecode(bytes(raw))))
    return gone, len(rows)

"""The SQLite catalog: one row per file, one per distinct image content, and library metadata.

Tables (schema version 1):

- ``files``: every file ever found under a scanned root: path (bytes, exact; plus printable
  text), size, mtime, label, the image content it holds (``image_id``) or, when the file itself
  is unusable (broken link, not an image, ...), its ``problem``.
- ``images``: one row per distinct content hash (identical files share it, so they are
  embedded once): format, width, height, status (pending / embedded / skipped), skip reason,
  the row of its vector in ``vectors/raw-*.f32``, and its 64-bit perceptual hashes (DCT pHash
  and difference hash dHash of the upright image, each stored as a signed 64-bit integer; see
  :func:`to_signed64`). ``dhash`` came later: catalogs made before get the column when first
  opened for writing, and their images already embedded keep it NULL.
- ``roots``: the folders given to ``index``, re-scanned by a bare ``lookalike index``.
- ``image_classes``: each image's top-5 ImageNet classes (backbones with a classifier head).
- ``cluster_runs`` / ``cluster_members`` / ``clusters``: stored clustering runs, side by side:
  settings, reducer they were built on, metrics and evidence (JSON), each image's cluster
  (-1 = noise) and distance to the centre, and per-cluster size, name, medoid, spread,
  representatives. ``cluster_members.image_id`` has no foreign key: removing an image leaves
  old runs readable (joins skip it).
- ``meta``: key/value facts (schema version, committed vector rows, vector file generation,
  current reduced vectors).
- view ``catalog``: the per-file table users see (path, hash, size, mtime, width, height,
  status, reason, label).

The database runs in WAL mode: readers (app, API) see the last committed state while one writer
works; every change is one transaction, so a killed process loses only uncommitted work.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookalike.errors import LibraryFormatError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roots (
    id INTEGER PRIMARY KEY,
    path_bytes BLOB UNIQUE NOT NULL,
    path TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT 'none',
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    hash TEXT UNIQUE NOT NULL,
    format TEXT,
    width INTEGER,
    height INTEGER,
    status TEXT NOT NULL CHECK (status IN ('pending', 'embedded', 'skipped')),
    reason TEXT,
    row INTEGER UNIQUE,
    phash INTEGER,
    dhash INTEGER,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path_bytes BLOB UNIQUE NOT NULL,
    path TEXT NOT NULL,
    root_id INTEGER REFERENCES roots(id),
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    image_id INTEGER REFERENCES images(id),
    problem TEXT,
    label TEXT,
    seen_at REAL NOT NULL,
    CHECK ((image_id IS NULL) <> (problem IS NULL))
);
CREATE INDEX IF NOT EXISTS files_image ON files(image_id);
CREATE INDEX IF NOT EXISTS files_root ON files(root_id);
CREATE INDEX IF NOT EXISTS images_status ON images(status);
CREATE TABLE IF NOT EXISTS image_classes (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    rank INTEGER NOT NULL,
    class_index INTEGER NOT NULL,
    probability REAL NOT NULL,
    PRIMARY KEY (image_id, rank)
);
CREATE TABLE IF NOT EXISTS cluster_runs (
    id INTEGER PRIMARY KEY,
    method TEXT NOT NULL,
    params TEXT NOT NULL,
    reducer_fingerprint TEXT NOT NULL,
    n_images INTEGER NOT NULL,
    n_clusters INTEGER NOT NULL,
    n_noise INTEGER NOT NULL DEFAULT 0,
    metrics TEXT NOT NULL,
    evidence TEXT,
    created REAL NOT NULL,
    seconds REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cluster_members (
    run_id INTEGER NOT NULL REFERENCES cluster_runs(id) ON DELETE CASCADE,
    image_id INTEGER NOT NULL,
    cluster INTEGER NOT NULL,
    distance REAL,
    PRIMARY KEY (run_id, image_id)
);
CREATE TABLE IF NOT EXISTS clusters (
    run_id INTEGER NOT NULL REFERENCES cluster_runs(id) ON DELETE CASCADE,
    cluster INTEGER NOT NULL,
    size INTEGER NOT NULL,
    name TEXT NOT NULL,
    medoid_image_id INTEGER,
    spread REAL,
    representatives TEXT,
    PRIMARY KEY (run_id, cluster)
);
CREATE VIEW IF NOT EXISTS catalog AS
    SELECT f.id AS file_id, f.path, f.path_bytes, f.size, f.mtime_ns, f.label,
           i.id AS image_id, i.hash, i.format, i.width, i.height,
           COALESCE(i.status, 'skipped') AS status,
           COALESCE(f.problem, i.reason) AS reason
    FROM files f LEFT JOIN images i ON i.id = f.image_id;
"""


@dataclass(frozen=True)
class FileRow:
    """What the catalog remembers of one file (for change detection)."""

    id: int
    path_bytes: bytes
    size: int
    mtime_ns: int
    image_id: int | None


@dataclass(frozen=True)
class EmbeddedBatch:
    """One committed batch: images on rows ``first_row...``, skips with reasons, top classes
    (image id, rank, class index, probability), hashes (signed pHash, signed dHash or None,
    image id), and the vector rows committed after it."""

    first_row: int
    ids: list[int]
    skips: list[tuple[int, str]]
    classes: list[tuple[int, int, int, float]]
    hashes: list[tuple[int, int | None, int]]
    rows: int


@dataclass(frozen=True)
class PendingImage:
    """An image waiting for its embedding, with one file that holds its content."""

    image_id: int
    path: Path


def to_signed64(value: int) -> int:
    """An unsigned 64-bit hash as the signed integer SQLite stores."""
    return value - (1 << 64) if value >= 1 << 63 else value


def from_signed64(value: int) -> int:
    """The unsigned 64-bit hash back from SQLite's signed integer."""
    return value + (1 << 64) if value < 0 else value


def encode_path(path: Path | str) -> bytes:
    """The exact bytes of a path (non-UTF-8 names survive the round trip)."""
    return os.fsencode(path)


def printable_path(path: Path | str) -> str:
    """A path as valid UTF-8 text; undecodable bytes shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


class Catalog:
    """The library's SQLite database. One instance per thread; writes are explicit transactions."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        uri = f"file:{path}?mode={'ro' if readonly else 'rwc'}"
        try:
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._db.executescript(_SCHEMA)
                self._add_later_columns()
                self._init_meta()
            self._check_version()
        except sqlite3.DatabaseError as exc:
            raise LibraryFormatError(f"{path}: cannot read the catalog ({exc})") from exc

    def close(self) -> None:
        self._db.close()

    def _add_later_columns(self) -> None:
        """Columns added to the schema after catalogs were made with it (``images.dhash``)."""
        if not self.has_column("images", "dhash"):
            self._db.execute("ALTER TABLE images ADD COLUMN dhash INTEGER")

    def has_column(self, table: str, column: str) -> bool:
        """Whether ``table`` has ``column`` (a catalog opened read-only is not upgraded)."""
        return any(row[1] == column for row in self._db.execute(f"PRAGMA table_info({table})"))

    # -- transactions and metadata -------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that see one consistent committed state (WAL read transaction)."""
        self._db.execute("BEGIN")
        try:
            yield self._db
        finally:
            self._db.execute("COMMIT")

    def _init_meta(self) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )

    def _check_version(self) -> None:
        found = self.get_meta("schema_version")
        if found is None or int(found) > SCHEMA_VERSION:
            raise LibraryFormatError(
                f"{self.path}: catalog schema version {found}, this lookalike reads up to "
                f"{SCHEMA_VERSION}; upgrade lookalike"
            )

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def set_meta(self, db: sqlite3.Connection, key: str, value: str | int) -> None:
        """Set a metadata value inside the caller's transaction."""
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, str(value)))

    # -- roots ------------------------------------------------------------------------------
    def add_root(self, path: Path, labels: str) -> int:
        """Remember a scanned folder (idempotent); returns its id."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO roots(path_bytes, path, labels, added_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(path_bytes) DO UPDATE SET labels = excluded.labels",
                (encode_path(path), printable_path(path), labels, time.time()),
            )
            row = db.execute(
                "SELECT id FROM roots WHERE path_bytes = ?", (encode_path(path),)
            ).fetchone()
        return int(row[0])

    def roots(self) -> list[tuple[Path, str]]:
        rows = self._db.execute("SELECT path_bytes, labels FROM roots ORDER BY id").fetchall()
        return [(Path(os.fsdecode(bytes(b))), str(labels)) for b, labels in rows]

    # -- files ------------------------------------------------------------------------------
    def files_under(self, root_id: int) -> dict[bytes, FileRow]:
        """Every file the catalog holds for one root, keyed by path bytes."""
        rows = self._db.execute(
            "SELECT id, path_bytes, size, mtime_ns, image_id FROM files WHERE root_id = ?",
            (root_id,),
        ).fetchall()
        return {bytes(r[1]): FileRow(r[0], bytes(r[1]), r[2], r[3], r[4]) for r in rows}

    def file_rows(self, paths: Iterable[Path]) -> list[FileRow]:
        """The catalog rows of the given exact paths (unknown paths are left out)."""
        out = []
        for path in paths:
            r = self._db.execute(
                "SELECT id, path_bytes, size, mtime_ns, image_id FROM files WHERE path_bytes = ?",
                (encode_path(path),),
            ).fetchone()
            if r is not None:
                out.append(FileRow(r[0], bytes(r[1]), r[2], r[3], r[4]))
        return out

    # -- images -----------------------------------------------------------------------------
    def image_for_hash(self, db: sqlite3.Connection, digest: str) -> int | None:
        row = db.execute("SELECT id FROM images WHERE hash = ?", (digest,)).fetchone()
        return None if row is None else int(row[0])

    def pending_images(self) -> list[PendingImage]:
        """Images still to embed, each with the first of its files (smallest file id)."""
        rows = self._db.execute(
            "SELECT i.id, (SELECT f.path_bytes FROM files f WHERE f.image_id = i.id "
            "ORDER BY f.id LIMIT 1) FROM images i WHERE i.status = 'pending' ORDER BY i.id"
        ).fetchall()
        return [PendingImage(int(i), Path(os.fsdecode(bytes(p)))) for i, p in rows if p is not None]

    def embedded_rows(self) -> tuple[list[int], list[int]]:
        """(image ids, vector rows) of every embedded image, in row order."""
        rows = self._db.execute(
            "SELECT id, row FROM images WHERE status = 'embedded' ORDER BY row"
        ).fetchall()
        return [int(r[0]) for r in rows], [int(r[1]) for r in rows]

    # -- writes of a sync (inside the caller's transaction) -------------------------------------
    def upsert_file(self, db: sqlite3.Connection, path: Path, root_id: int, size: int, mtime_ns: int,
                    image_id: int | None, problem: str | None, label: str | None, now: float) -> None:
        """Insert or update the row of the file at ``path``."""
        db.execute(
            "INSERT INTO files(path_bytes, path, root_id, size, mtime_ns, image_id, problem,"
            " label, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(path_bytes) DO UPDATE SET root_id=excluded.root_id,"
            " size=excluded.size, mtime_ns=excluded.mtime_ns, image_id=excluded.image_id,"
            " problem=excluded.problem, label=excluded.label, seen_at=excluded.seen_at",
            (encode_path(path), printable_path(path), root_id, size, mtime_ns, image_id, problem, label, now),
        )

    def insert_image(self, db: sqlite3.Connection, digest: str, fmt: str | None, width: int | None,
                     height: int | None, status: str, reason: str | None, now: float) -> int:
        """A new image row for content ``digest``; returns its id."""
        cursor = db.execute(
            "INSERT INTO images(hash, format, width, height, status, reason, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (digest, fmt, width, height, status, reason, now),
        )
        return int(cursor.lastrowid or 0)

    def delete_files(self, db: sqlite3.Connection, file_ids: Iterable[int]) -> None:
        db.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in file_ids])

    def delete_under(self, db: sqlite3.Connection, path: Path) -> int:
        """Forget the file at ``path`` and every file below it; returns how many rows went."""
        prefix = encode_path(path)
        cursor = db.execute(
            "DELETE FROM files WHERE path_bytes = ? OR substr(path_bytes, 1, ?) = ?",
            (prefix, len(prefix) + 1, prefix + b"/"),
        )
        return int(cursor.rowcount)

    def delete_orphan_images(self, db: sqlite3.Connection) -> None:
        """Forget images that no file holds any more."""
        db.execute("DELETE FROM images WHERE id NOT IN (SELECT image_id FROM files WHERE image_id IS NOT NULL)")

    # -- writes of an embedding batch ---------------------------------------------------------
    def commit_embedded(self, db: sqlite3.Connection, batch: EmbeddedBatch, now: float) -> None:
        """Mark a batch embedded (image ``ids[i]`` on vector row ``first_row + i``) or skipped,
        with its ImageNet classes and perceptual hashes, and record ``rows`` committed vector rows."""
        db.executemany(
            "UPDATE images SET status='embedded', row=?, reason=NULL, updated_at=? WHERE id=?",
            [(batch.first_row + i, now, image_id) for i, image_id in enumerate(batch.ids)],
        )
        db.executemany(
            "UPDATE images SET status='skipped', reason=?, updated_at=? WHERE id=?",
            [(reason, now, image_id) for image_id, reason in batch.skips],
        )
        db.executemany(
            "INSERT OR REPLACE INTO image_classes(image_id, rank, class_index, probability) VALUES (?, ?, ?, ?)",
            batch.classes,
        )
        db.executemany("UPDATE images SET phash=?, dhash=? WHERE id=?", batch.hashes)
        self.set_meta(db, "raw_rows", batch.rows)

    def meta_keys(self, prefix: str) -> list[str]:
        """Metadata keys starting with ``prefix``, sorted."""
        rows = self._db.execute("SELECT key FROM meta WHERE key LIKE ? ORDER BY key", (prefix + "%",)).fetchall()
        return [str(r[0]) for r in rows]

    def move_rows(self, ids: Sequence[int], generation: int) -> None:
        """Point image ``ids[i]`` at row ``i`` of raw-vector file ``generation``, in one transaction."""
        with self.transaction() as db:
            # two steps, so the UNIQUE(row) constraint never sees two images on one row
            db.executemany("UPDATE images SET row = ? WHERE id = ?", [(-1 - i, d) for i, d in enumerate(ids)])
            db.execute("UPDATE images SET row = -1 - row WHERE row < 0")
            self.set_meta(db, "raw_generation", generation)
            self.set_meta(db, "raw_rows", len(ids))

    def count(self, sql: str, params: Sequence[object] = ()) -> int:
        return int(self._db.execute(sql, params).fetchone()[0])

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Read-only SQL for reports (status, listings)."""
        return self._db.execute(sql, params).fetchall()

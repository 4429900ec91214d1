"""Parquet in and out: a library's vectors with their catalog facts, in files any tool reads.

Export writes ``part-00000.parquet``, ``part-00001.parquet``, … (``rows_per_file`` rows each), one
row per embedded image:

====================  ==========================  =============================================
column                Arrow type                  meaning
====================  ==========================  =============================================
``image_id``          int64                       the image's id in the exporting library
``hash``              string                      BLAKE2b-256 of the file's bytes, 64 hex digits
``paths``             list<string>                every file holding this content
``label``             string (null)               the label its files agree on (none: null)
``cluster``           int32 (null)                cluster in the latest clustering run (-1 noise)
``vector``            fixed_size_list<float32>    the raw embedding (dim) or the reduced vector
====================  ==========================  =============================================

The schema metadata key ``lookalike`` holds JSON stating how the vectors were made::

    {"format": 1, "vector_kind": "raw" | "reduced", "backbone": "efficientnet-lite0",
     "weights_sha256": "…", "dim": 1280, "content_hash": "blake2b-256",
     "preprocessing": {"image_size": 224, "crop_fraction": 0.875, "normalization": "…",
                       "resize": "opencv-area-linear"},
     "reducer_fingerprint": "…" (reduced only), "library": "…", "exported": "…"}

Import takes raw vectors made elsewhere with the same backbone, weights and preprocessing (any
job that writes that metadata) and commits them the way an indexing run does: rows appended to
the raw vector file, then one catalog transaction per batch. Images are matched by content hash
(or, for rows without one, by path); a pending image gets its vector, an unknown hash becomes a
new embedded image with its paths, an image already embedded or skipped is left as it is.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError, MissingDependencyError, VectorImportError
from lookalike.store.atomic import atomic_path, fsync_file
from lookalike.store.catalog import Catalog, encode_path, printable_path
from lookalike.store.library_store import LibraryStore
from lookalike.store.manifest import EmbedRecord, now
from lookalike.store.vectors import RawVectors

FORMAT = 1
METADATA_KEY = b"lookalike"
VECTOR_KINDS = ("raw", "reduced")
CONTENT_HASH = "blake2b-256"
ROWS_PER_FILE = 1_000_000
ROW_GROUP = 8192
"""Rows per Parquet row group, and per catalog query and commit."""
DICTIONARY_COLUMNS = ["label"]
"""Only labels repeat; dictionary-encoding vectors, hashes or paths costs time and saves nothing."""
PREPROCESSING = ("image_size", "crop_fraction", "normalization", "resize")
"""The ``EmbedRecord`` fields that decide what a vector means, besides backbone and weights."""


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("pyarrow", "Parquet export and import", install="pip install pyarrow") from exc
    return pa


def describe(embed: EmbedRecord, kind: str, dim: int, library: Path, reducer: str | None) -> dict[str, Any]:
    """The ``lookalike`` metadata of an export (see the module docstring)."""
    meta: dict[str, Any] = {
        "format": FORMAT,
        "vector_kind": kind,
        "backbone": embed.backbone,
        "weights_sha256": embed.weights_sha256,
        "dim": dim,
        "content_hash": CONTENT_HASH,
        "preprocessing": {name: getattr(embed, name) for name in PREPROCESSING},
        "library": str(library),
        "exported": now(),
    }
    if reducer is not None:
        meta["reducer_fingerprint"] = reducer
    return meta


def schema(dim: int, meta: dict[str, Any]) -> Any:
    """The Arrow schema of an export with vectors of length ``dim``."""
    pa = _pyarrow()
    return pa.schema(
        [
            ("image_id", pa.int64()),
            ("hash", pa.string()),
            ("paths", pa.list_(pa.string())),
            ("label", pa.string()),
            ("cluster", pa.int32()),
            ("vector", pa.list_(pa.float32(), dim)),
        ],
        metadata={METADATA_KEY: json.dumps(meta, sort_keys=True).encode("utf-8")},
    )


def export_vectors(
    store: LibraryStore, ids: np.ndarray, vectors: np.ndarray, out: Path, kind: str = "raw",
    reducer: str | None = None, rows_per_file: int = ROWS_PER_FILE,
) -> list[Path]:
    """Write ``ids`` (n,) with their ``kind`` vectors (n, d) and catalog facts to ``out/part-*.parquet``.

    ``vectors`` may be memory-mapped: it is read ``ROW_GROUP`` rows at a time. ``reducer`` is the
    reducer's fingerprint for reduced vectors. Each file is written under a temporary name and
    renamed into place. Returns the files written.
    """
    pq = _pyarrow().parquet
    if kind not in VECTOR_KINDS:
        raise InvalidParameterError(f"vectors must be one of {VECTOR_KINDS}, got {kind!r}")
    if rows_per_file < 1:
        raise InvalidParameterError(f"rows_per_file must be >= 1, got {rows_per_file}")
    meta = describe(store.manifest.embed, kind, int(vectors.shape[1]), store.folder, reducer)
    out.mkdir(parents=True, exist_ok=True)
    existing = sorted(out.glob("part-*.parquet"))
    if existing:
        raise InvalidParameterError(f"{out} already holds {existing[0].name}; export into an empty folder")
    arrow_schema = schema(int(vectors.shape[1]), meta)
    written = []
    for part, start in enumerate(range(0, max(len(ids), 1), rows_per_file)):
        target = out / f"part-{part:05d}.parquet"
        with atomic_path(target) as tmp:
            with pq.ParquetWriter(tmp, arrow_schema, use_dictionary=DICTIONARY_COLUMNS) as writer:
                for begin in range(start, min(start + rows_per_file, len(ids)), ROW_GROUP):
                    end = min(begin + ROW_GROUP, start + rows_per_file, len(ids))
                    writer.write_table(_table(store.catalog, ids[begin:end], vectors[begin:end], arrow_schema))
            fsync_file(tmp)
        written.append(target)
    return written


def _table(catalog: Catalog, ids: np.ndarray, vectors: np.ndarray, arrow_schema: Any) -> Any:
    """One row group: catalog facts of ``ids`` beside their vectors."""
    pa = _pyarrow()
    hashes, paths, labels, clusters = _facts(catalog, [int(i) for i in ids])
    block = np.ascontiguousarray(vectors, dtype=np.float32)
    vector = pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), block.shape[1])
    columns = [
        pa.array(ids, pa.int64()),
        pa.array([hashes[int(i)] for i in ids], pa.string()),
        pa.array([paths.get(int(i), []) for i in ids], pa.list_(pa.string())),
        pa.array([labels.get(int(i)) for i in ids], pa.string()),
        pa.array([clusters.get(int(i)) for i in ids], pa.int32()),
        vector,
    ]
    return pa.Table.from_arrays(columns, schema=arrow_schema)


def _facts(catalog: Catalog, ids: list[int]) -> tuple[dict[int, str], dict[int, list[str]], dict[int, str], dict[int, int]]:
    """(hash, paths, label, latest cluster) of each image id; the label is the one its files agree on."""
    wanted = json.dumps(ids)
    hashes = dict(catalog.query("SELECT id, hash FROM images WHERE id IN (SELECT value FROM json_each(?))", (wanted,)))
    paths: dict[int, list[str]] = {}
    found_labels: dict[int, set[str]] = {}
    for image_id, path, label in catalog.query(
        "SELECT image_id, path, label FROM files WHERE image_id IN (SELECT value FROM json_each(?)) ORDER BY id",
        (wanted,),
    ):
        paths.setdefault(image_id, []).append(path)
        if label:
            found_labels.setdefault(image_id, set()).add(label)
    labels = {i: next(iter(s)) for i, s in found_labels.items() if len(s) == 1}
    clusters = dict(
        catalog.query(
            "SELECT image_id, cluster FROM cluster_members WHERE run_id = (SELECT MAX(id) FROM cluster_runs)"
            " AND image_id IN (SELECT value FROM json_each(?))",
            (wanted,),
        )
    )
    return hashes, paths, labels, clusters


# -- import ---------------------------------------------------------------------------------
@dataclass
class ImportReport:
    """What one import did: images that got a vector, and rows that did not, by reason."""

    filled: int = 0
    """pending images of the library that got their vector"""
    added: int = 0
    """images new to the library, added as embedded with their paths"""
    left: Counter[str] = field(default_factory=Counter)
    """rows not used, by reason"""

    @property
    def imported(self) -> int:
        return self.filled + self.added


def read_metadata(path: Path) -> dict[str, Any]:
    """The ``lookalike`` metadata of a Parquet file; :class:`VectorImportError` when absent."""
    pq = _pyarrow().parquet
    try:
        found = pq.read_schema(path).metadata or {}
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise VectorImportError(f"{path}: not a readable Parquet file ({exc})") from exc
    if METADATA_KEY not in found:
        raise VectorImportError(
            f"{path}: no 'lookalike' schema metadata stating backbone, weights and preprocessing "
            "(write it as `lookalike export` does; see README, Parquet)"
        )
    try:
        meta: dict[str, Any] = json.loads(found[METADATA_KEY])
    except ValueError as exc:
        raise VectorImportError(f"{path}: the 'lookalike' schema metadata is not JSON ({exc})") from exc
    return meta


def check_compatible(meta: dict[str, Any], embed: EmbedRecord, path: Path, library: Path) -> None:
    """Refuse vectors that do not mean what the library's vectors mean, naming both values."""
    expected: list[tuple[str, Any, Any]] = [
        ("vector kind", meta.get("vector_kind"), "raw"),
        ("backbone", meta.get("backbone"), embed.backbone),
        ("weights sha256", meta.get("weights_sha256"), embed.weights_sha256),
        ("dim", meta.get("dim"), embed.dim),
    ]
    steps = meta.get("preprocessing") or {}
    expected += [(f"preprocessing {name}", steps.get(name), getattr(embed, name)) for name in PREPROCESSING]
    for name, theirs, ours in expected:
        same = math.isclose(theirs, ours, abs_tol=1e-9) if isinstance(ours, float) and isinstance(theirs, (int, float)) else theirs == ours
        if not same:
            raise VectorImportError(
                f"{path}: {name} is {theirs!r} in the file but {ours!r} in {library}; "
                "only raw vectors made with the library's backbone, weights and preprocessing can join it"
            )


def import_files(store: LibraryStore, files: list[Path]) -> ImportReport:
    """Commit the raw vectors of ``files`` (folders: their ``*.parquet``) to the library.

    Every file's metadata is checked (:func:`check_compatible`) before any row is imported.
    """
    pq = _pyarrow().parquet
    store.require_writable()
    found = list(parquet_files(files))
    for path in found:
        check_compatible(read_metadata(path), store.manifest.embed, path, store.folder)
    store.vectors.truncate(*store.raw_state())
    report = ImportReport()
    for path in found:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=ROW_GROUP, columns=["hash", "paths", "label", "vector"]):
            _import_batch(store.catalog, store.vectors, batch, path, report)
    store.touch_manifest()
    return report


def _import_batch(catalog: Catalog, vectors: RawVectors, batch: Any, path: Path, report: ImportReport) -> None:
    """Match one record batch against the catalog and commit its usable rows in one transaction."""
    block = _vector_block(batch, vectors.dim, path)
    hashes = batch.column("hash").to_pylist()
    paths = batch.column("paths").to_pylist()
    labels = batch.column("label").to_pylist() if "label" in batch.schema.names else [None] * batch.num_rows
    fills: list[tuple[int, int]] = []  # (batch row, image id)
    news: list[int] = []
    known = {
        str(digest): (int(image_id), str(status))
        for digest, image_id, status in catalog.query(
            "SELECT hash, id, status FROM images WHERE hash IN (SELECT value FROM json_each(?))",
            (json.dumps([h for h in hashes if h]),),
        )
    }
    seen: set[str | int] = set()
    for row, (digest, where) in enumerate(zip(hashes, paths)):
        image_id, status = known.get(digest, (None, None)) if digest else _match_path(catalog, where or [])
        key = digest or image_id
        if key is not None and key in seen:
            report.left["repeated in the import"] += 1
            continue
        if key is not None:
            seen.add(key)
        if status in ("embedded", "skipped"):
            report.left[f"already {status} in the library"] += 1
        elif status == "pending" and image_id is not None:
            fills.append((row, image_id))
        elif digest and where:
            news.append(row)
        else:
            report.left["no content hash, and no path known to the library" if where else "no path"] += 1
    _commit(catalog, vectors, block, fills, [(row, hashes[row], paths[row], labels[row]) for row in news])
    report.filled += len(fills)
    report.added += len(news)


def _vector_block(batch: Any, dim: int, path: Path) -> np.ndarray:
    """The batch's vectors as float32 (n, dim), refusing nulls, other lengths and non-finite values."""
    column = batch.column("vector")
    if column.null_count:
        raise VectorImportError(f"{path}: {column.null_count} row(s) have no vector")
    values = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    if values.size != batch.num_rows * dim:
        raise VectorImportError(f"{path}: vectors of length {values.size / max(batch.num_rows, 1):g}, the library's are {dim}")
    block = values.reshape(batch.num_rows, dim)
    if not np.isfinite(block).all():
        raise VectorImportError(f"{path}: vectors hold NaN or infinite values; refusing them")
    return block


def _match_path(catalog: Catalog, where: list[str]) -> tuple[int | None, str | None]:
    """(image id, status) of the image held by the first of ``where`` the catalog knows."""
    for text in where:
        rows = catalog.query(
            "SELECT i.id, i.status FROM files f JOIN images i ON i.id = f.image_id WHERE f.path_bytes = ?",
            (encode_path(text),),
        )
        if rows:
            return int(rows[0][0]), str(rows[0][1])
    return None, None


def _commit(
    catalog: Catalog, vectors: RawVectors, block: np.ndarray, fills: list[tuple[int, int]],
    news: list[tuple[int, str, list[str], str | None]],
) -> None:
    """Append the rows' vectors after the committed ones, then record them in one transaction."""
    if not fills and not news:
        return
    generation = int(catalog.get_meta("raw_generation", "0") or 0)
    first = int(catalog.get_meta("raw_rows", "0") or 0)
    order = [row for row, _ in fills] + [row for row, *_ in news]
    total = vectors.append(generation, first, block[order])
    stamp = time.time()
    with catalog.transaction() as db:
        db.executemany(
            "UPDATE images SET status='embedded', row=?, reason=NULL, updated_at=? WHERE id=?",
            [(first + k, stamp, image_id) for k, (_, image_id) in enumerate(fills)],
        )
        for k, (_, digest, where, label) in enumerate(news, start=len(fills)):
            cursor = db.execute(
                "INSERT INTO images(hash, status, row, updated_at) VALUES (?, 'embedded', ?, ?)",
                (digest, first + k, stamp),
            )
            for text in where:
                size, mtime_ns = _stat(text)
                db.execute(
                    "INSERT OR IGNORE INTO files(path_bytes, path, size, mtime_ns, image_id, label, seen_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (encode_path(text), printable_path(text), size, mtime_ns, cursor.lastrowid, label, stamp),
                )
        catalog.set_meta(db, "raw_rows", total)


def _stat(text: str) -> tuple[int, int]:
    """(size, mtime_ns) of a file on this machine, (0, 0) for one that is elsewhere."""
    try:
        found = os.stat(text)
    except OSError:
        return 0, 0
    return found.st_size, found.st_mtime_ns


def parquet_files(paths: list[Path]) -> Iterator[Path]:
    """The Parquet files named, folders expanded to their ``*.parquet`` files (sorted)."""
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.parquet"))
            if not found:
                raise VectorImportError(f"{path}: folder holds no .parquet file")
            yield from found
        elif path.is_file():
            yield path
        else:
            raise VectorImportError(f"{path}: no such file or folder")

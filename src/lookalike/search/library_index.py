"""The library's stored vector indexes, kept in agreement with the catalog (also after a kill).

Files, all derived from the reduced vectors (``Library.reduced()``) and named after the reducer
fingerprint they were built with (a refit makes them unusable by name, never silently wrong):

- ``index/<kind>-<fingerprint>.faiss``: the index (exact / ivf / hnsw / ondisk), ids = image
  ids; ``ondisk`` keeps its lists and float16 rows in files named after it (``<name>.*``);
- ``index/clusters-<fingerprint>.npz``: the confidence clusters used when the library has no
  cluster run (k-means centroids and each cluster's ``max_d``, see :mod:`lookalike.index.scores`);
- ``models/match-calibrator.npz``: P(same label | similarity), only on labelled libraries.

Agreement protocol. A writer (``update_index``) diffs the ids stored *in the index file* with
the catalog's embedded images, removes and adds the difference (a rebuild when the kind says so:
IVF or ondisk grown or shrunk 2x since training, HNSW past its tombstone limit), writes the file
atomically (temporary file, fsync, rename) and only then commits the catalog meta record
``vector_index.<kind>`` (reducer, ids digest, count, updated). A kill before the rename leaves
the old file; after it, the record lags the file. Either way the next writer diffs again, and
readers never trust the record: :func:`open_index` loads the committed file memory-mapped and
overlays the catalog's current state, searching images embedded since then exactly beside it
and excluding removed ones. So results always match the catalog, whatever state the file is in.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.config import IndexConfig, from_dict
from lookalike.errors import InvalidParameterError, LibraryFormatError, VectorIndexError
from lookalike.index import (
    HNSWIndex,
    IVFIndex,
    MatchCalibrator,
    OnDiskIndex,
    VectorIndex,
    choose_kind,
    create_index,
    load_index,
    member_neighbors,
)
from lookalike.index.live import LiveIndex, rows_of
from lookalike.index.scores import labelled_pairs
from lookalike.reduce.stored import reduced_vectors, stored_reducer
from lookalike.store.arrays import load_npz, save_npz
from lookalike.store.labels import image_labels
from lookalike.store.library_store import LibraryStore
from lookalike.store.manifest import now

INDEX_DIR = "index"
META_PREFIX = "vector_index."
CALIBRATOR_FILE = Path("models") / "match-calibrator.npz"
CALIBRATION_QUERIES = 2000
"""Labelled images (a seeded sample) whose leave-one-out neighbours fit the calibrator."""
CALIBRATION_K = 50
"""Neighbours per calibration query: deep enough that the similarities of lower-ranked results
are covered too (the isotonic fit is flat beyond the similarities it saw)."""
IVF_RETRAIN_FACTOR = 2.0
"""Retrain IVF centroids (and the confidence clusters) once the collection is this many times
larger or smaller than when they were trained."""


@dataclass(frozen=True)
class IndexRecord:
    """What a stored index reflects (catalog meta ``vector_index.<kind>``, JSON)."""

    kind: str
    file: str
    reducer: str
    ids_digest: str
    count: int
    dim: int
    trained_on: int
    updated: str


def ids_digest(ids: np.ndarray) -> str:
    """16 hex digits naming a set of ids (order-free)."""
    return hashlib.sha256(np.sort(np.asarray(ids, dtype=np.int64)).tobytes()).hexdigest()[:16]


def index_path(folder: Path, kind: str, fingerprint: str) -> Path:
    return folder / INDEX_DIR / f"{kind}-{fingerprint}.faiss"


def clusters_path(folder: Path, fingerprint: str) -> Path:
    return folder / INDEX_DIR / f"clusters-{fingerprint}.npz"


def index_config(store: LibraryStore, kind: str | None = None) -> IndexConfig:
    """The ``[index]`` section of the manifest (defaults when absent), with ``kind`` if given."""
    section = store.manifest.sections.get("index") or {}
    config = from_dict(IndexConfig, section, where=f"{store.folder}/lookalike.toml [index]")
    return config if kind is None else replace(config, kind=kind)


def read_record(store: LibraryStore, kind: str) -> IndexRecord | None:
    """The meta record of the stored ``kind`` index, or None."""
    raw = store.catalog.get_meta(META_PREFIX + kind)
    if raw is None:
        return None
    try:
        return IndexRecord(**json.loads(raw))
    except (TypeError, ValueError) as exc:
        raise LibraryFormatError(f"{store.folder}: catalog meta {META_PREFIX}{kind} unreadable ({exc})") from exc


def stored_kinds(store: LibraryStore) -> list[str]:
    """Kinds with a stored index record."""
    return [key[len(META_PREFIX):] for key in store.catalog.meta_keys(META_PREFIX)]


# -- writing ---------------------------------------------------------------------------------------
def update_index(store: LibraryStore, kind: str = "auto", *, rebuild: bool = False) -> IndexRecord:
    """Bring the stored ``kind`` index up to date with the catalog (writable library).

    Builds it the first time (``auto`` resolved by collection size), afterwards removes and adds
    only the difference. Returns the committed record.
    """
    if store.readonly:
        raise InvalidParameterError(f"{store.folder} was opened read-only: cannot update its vector index")
    reduced = reduced_vectors(store)
    ids, vectors = np.asarray(reduced.ids, dtype=np.int64), reduced.vectors
    if len(ids) == 0:
        raise VectorIndexError(f"{store.folder}: no embedded images yet: run `lookalike index FOLDER` first")
    config = index_config(store, kind)
    kind = choose_kind(len(ids), config)
    fingerprint = reduced.reducer_fingerprint
    path = index_path(store.folder, kind, fingerprint)
    record = read_record(store, kind)
    index = _load_writable(path)
    trained_on = record.trained_on if record and record.file == path.name else len(ids)
    if index is None or rebuild or _needs_rebuild(index, trained_on, len(ids)):
        index, trained_on = _build(kind, config, ids, vectors), len(ids)
        index.save(path)
    elif _apply_difference(index, ids, vectors):
        index.save(path)
    _refresh_side_files(store, index, fingerprint, ids, vectors)
    digest = ids_digest(ids)
    new = IndexRecord(kind, path.name, fingerprint, digest, len(ids), int(vectors.shape[1]), trained_on, now())
    if record != replace(new, updated=record.updated if record else new.updated):
        with store.catalog.transaction() as db:
            store.catalog.set_meta(db, META_PREFIX + kind, json.dumps(asdict(new)))
    _remove_other_files(store.folder, fingerprint)
    return new


def update_stored_indexes(store: LibraryStore) -> list[IndexRecord]:
    """Update every index the library already has (none: no-op)."""
    return [update_index(store, kind) for kind in stored_kinds(store)]


def update_after_change(store: LibraryStore) -> None:
    """Bring stored vector indexes up to date after images were added or removed.

    Only the difference is applied (no rebuild); libraries without an index skip this.
    """
    if stored_kinds(store):
        update_stored_indexes(store)


def _load_writable(path: Path) -> VectorIndex | None:
    """The stored index read into memory, or None when missing or unreadable (then rebuilt)."""
    try:
        return load_index(path, mmap=False)
    except VectorIndexError:
        return None


def _needs_rebuild(index: VectorIndex, trained_on: int, n_now: int) -> bool:
    if isinstance(index, HNSWIndex):
        return index.needs_rebuild
    if isinstance(index, (IVFIndex, OnDiskIndex)):
        return not trained_on / IVF_RETRAIN_FACTOR <= n_now <= trained_on * IVF_RETRAIN_FACTOR
    return False


def _build(kind: str, config: IndexConfig, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
    index = create_index(replace(config, kind=kind), n_vectors=len(ids))
    return index.fit(np.asarray(vectors), ids)


def _apply_difference(index: VectorIndex, ids: np.ndarray, vectors: np.ndarray) -> bool:
    """Remove ids gone from the catalog, add new ones; returns whether anything changed."""
    stored = index.ids()
    gone = np.setdiff1d(stored, ids, assume_unique=True)
    new = np.setdiff1d(ids, stored, assume_unique=True)
    if len(gone):
        index.remove(gone)
    if len(new):
        index.add(new, np.asarray(vectors)[rows_of(ids, new)])
    if isinstance(index, HNSWIndex) and index.needs_rebuild:
        index.rebuild()
    return bool(len(gone) or len(new))


def _refresh_side_files(store: LibraryStore, index: VectorIndex, fingerprint: str, ids: np.ndarray, vectors: Any) -> None:
    """Confidence clusters and match calibrator, brought to the ids ``ids`` (n,) when they
    reflect another set. The clusters keep their centroids (new images join the nearest) until
    the collection has grown or shrunk 2x since they were trained."""
    digest = ids_digest(ids)
    cpath = clusters_path(store.folder, fingerprint)
    stored = load_npz(cpath) if cpath.exists() else None
    if stored is None or str(stored.get("ids_digest")) != digest:
        trained_on = 0 if stored is None else int(stored.get("trained_on", 0))
        keep = trained_on / IVF_RETRAIN_FACTOR <= len(ids) <= trained_on * IVF_RETRAIN_FACTOR
        arrays = confidence_clusters(np.asarray(vectors), ids, stored["centroids"] if keep and stored else None)
        arrays.update(ids_digest=np.array(digest), trained_on=np.array(trained_on if keep else len(ids)))
        save_npz(cpath, arrays)
    calibrator_file = store.folder / CALIBRATOR_FILE
    fitted = load_npz(calibrator_file) if calibrator_file.exists() else None
    if fitted is None or str(fitted.get("ids_digest")) != digest or str(fitted.get("reducer")) != fingerprint:
        calibrator = _fit_library_calibrator(store, index, ids)
        if calibrator is None:
            calibrator_file.unlink(missing_ok=True)
        else:
            extra = {"reducer": np.array(fingerprint), "ids_digest": np.array(digest)}
            save_npz(calibrator_file, {**calibrator.to_arrays(), **extra})


def confidence_clusters(
    vectors: np.ndarray, ids: np.ndarray, centroids: np.ndarray | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """The library's own clusters for confidence: ``centroids`` (K, d) (given, or k-means with
    ``K = min(sqrt(n / 2), n / 39, 256)``), member ``ids`` (n,) and their nearest ``labels`` (n,)."""
    from lookalike._faiss import import_faiss

    faiss = import_faiss()
    X = np.ascontiguousarray(vectors, dtype=np.float32)
    k = max(1, min(round((len(X) / 2) ** 0.5), len(X) // 39, 256))
    if centroids is None and k == 1:
        centroids = X.mean(axis=0, keepdims=True)
    elif centroids is None:
        kmeans = faiss.Kmeans(X.shape[1], k, niter=20, seed=seed, max_points_per_centroid=256)
        kmeans.train(X)
        centroids = kmeans.centroids
    quantizer = faiss.IndexFlatL2(X.shape[1])
    quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
    _, labels = quantizer.search(X, 1)
    return {"centroids": np.asarray(centroids, dtype=np.float32), "ids": ids.astype(np.int64),
            "labels": labels[:, 0].astype(np.int64)}


def _fit_library_calibrator(store: LibraryStore, index: VectorIndex, ids: np.ndarray) -> MatchCalibrator | None:
    """Fitted on the leave-one-out neighbours of (a sample of) the labelled images; None
    without two labels or without both same- and different-label neighbour pairs."""
    labels = image_labels(store.catalog).labels
    labelled = np.array(sorted(set(labels).intersection(ids.tolist())), dtype=np.int64)
    if len({labels[int(i)] for i in labelled}) < 2:
        return None
    if len(labelled) > CALIBRATION_QUERIES:
        labelled = np.sort(np.random.default_rng(0).choice(labelled, CALIBRATION_QUERIES, replace=False))
    nbr_ids, nbr_sims = member_neighbors(index, labelled, min(CALIBRATION_K, len(ids) - 1))
    sims, same = labelled_pairs(labelled, nbr_ids, nbr_sims, labels)
    if len(same) == 0 or same.all() or not same.any():
        return None
    return MatchCalibrator().fit(sims, same)


def _remove_other_files(folder: Path, fingerprint: str) -> None:
    """Delete index and cluster files built on other reducer fingerprints (a refit made them
    unusable; their kinds are rebuilt from their records on the next update).

    Readers that mapped a deleted file keep reading it (the data stays until they unmap it).
    """
    for path in (folder / INDEX_DIR).glob("*-*.*"):
        if path.suffix in (".faiss", ".npz") and not path.stem.endswith(f"-{fingerprint}"):
            path.unlink(missing_ok=True)
            for side in path.parent.glob(f"{path.name}.*"):  # an ondisk index's lists and rows
                side.unlink(missing_ok=True)


# -- reading ---------------------------------------------------------------------------------------
def open_index(store: LibraryStore, kind: str = "auto", *, update: bool | None = None) -> LiveIndex:
    """The ``kind`` index over the library's current images, ready to search.

    ``update`` (default: when the library is writable) first brings the stored file up to date.
    Otherwise the committed file is loaded memory-mapped and overlaid with the catalog (see the
    module notes); without a usable file an index of that kind is built in memory (``auto``
    then prefers any kind already stored, else ``exact``).
    """
    if update is None:
        update = not store.readonly
    reducer = stored_reducer(store)
    if update or reducer is None:
        if store.readonly:
            raise VectorIndexError(
                f"{store.folder}: no vectors reduced yet; run `lookalike search` once without other writers"
            )
        record = update_index(store, kind)
        path = store.folder / INDEX_DIR / record.file
        return LiveIndex(load_index(path, mmap=True), record.kind, path, None, np.zeros(0, np.int64))
    return _overlaid(store, kind, reducer)


def _overlaid(store: LibraryStore, kind: str, reducer: Any) -> LiveIndex:
    ids_now, embeddings = store.embeddings()
    ids_now = np.asarray(ids_now, dtype=np.int64)
    config = index_config(store, kind)
    path = _stored_file(store.folder, choose_kind(len(ids_now), config), reducer.fingerprint, kind)
    if path is not None:
        try:
            index = load_index(path, mmap=True)
        except VectorIndexError:  # replaced by a refit since, or damaged: answer from memory
            path = None
        else:
            return LiveIndex.overlay(index, path, ids_now, embeddings, reducer)
    chosen = "exact" if kind == "auto" else kind
    built = _build(chosen, config, ids_now, _reduced(store, reducer, ids_now, embeddings))
    return LiveIndex(built, chosen, None, None, np.zeros(0, np.int64))


def _reduced(store: LibraryStore, reducer: Any, ids: np.ndarray, embeddings: Any) -> np.ndarray:
    """The reduced vectors of ``ids``: the library's stored ones when they are current (a read-only
    app at 60k spent 3.5 s per search reducing every vector again), else computed."""
    from lookalike.reduce.stored import reduced_vectors, transform_all

    stored = reduced_vectors(store)
    if stored.reducer_fingerprint == reducer.fingerprint and np.array_equal(stored.ids, ids):
        return np.asarray(stored.vectors, dtype=np.float32)
    return transform_all(reducer, embeddings)


def _stored_file(folder: Path, chosen: str, fingerprint: str, kind: str) -> Path | None:
    """The committed file for ``chosen``; for ``auto`` any stored kind of this fingerprint."""
    path = index_path(folder, chosen, fingerprint)
    if path.exists():
        return path
    if kind == "auto":
        for other in ("ondisk", "hnsw", "ivf", "exact"):
            candidate = index_path(folder, other, fingerprint)
            if candidate.exists():
                return candidate
    return None


def load_confidence_clusters(folder: Path, fingerprint: str) -> dict[str, np.ndarray] | None:
    """The stored confidence clusters of this reducer (centroids, ids, labels), or None."""
    path = clusters_path(folder, fingerprint)
    return load_npz(path) if path.exists() else None


def load_calibrator(folder: Path, fingerprint: str) -> MatchCalibrator | None:
    """The stored match calibrator when it was fitted on this reducer's vectors, else None."""
    path = folder / CALIBRATOR_FILE
    if not path.exists():
        return None
    arrays = load_npz(path)
    if str(arrays.get("reducer")) != fingerprint:
        return None
    return MatchCalibrator.from_arrays(arrays)


def file_signature(path: Path | None) -> tuple[int, int, int] | None:
    """(inode, size, mtime ns) of a file: changes when it is replaced; None when absent."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


__all__ = [
    "IndexRecord",
    "LiveIndex",
    "confidence_clusters",
    "file_signature",
    "index_config",
    "load_calibrator",
    "load_confidence_clusters",
    "open_index",
    "read_record",
    "stored_kinds",
    "update_index",
    "update_stored_indexes",
]

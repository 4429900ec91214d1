"""``ondisk``: IVF-PQ with memory-mapped inverted lists and exact float16 re-ranking.

For collections larger than memory. A coarse quantizer (k-means centroids, squared L2, as in
``ivf``) routes each vector to a list; inside the lists a vector is a ``pq_bytes``-byte product
quantization code (8 bits per sub-quantizer) of its residual, optionally after an OPQ rotation.
The lists live in a file beside the index (FAISS ``OnDiskInvertedLists``), memory-mapped: only
the lists a query probes are paged in. The PQ scores only shortlist: the ``rerank`` best
candidates are scored again exactly against float16 copies of the vectors, read from a
memory-mapped row file (see :mod:`lookalike.index._rows` for the files and their life cycle).

Building is bounded in memory: :meth:`OnDiskIndex.fit` trains on a sample of at most
``TRAIN_POINTS_PER_CENTROID * nlist`` rows, then adds the rest in chunks of ``shard_rows``;
adds collect in an in-memory shard that is written to a shard file when full. :meth:`save`
merges the stored lists and the shards into a new lists file (``merge_from_multiple``, reading
its sources through memory maps), writes the header beside it and renames it into place.

Removal: ids added since the last save are deleted at once; older ones become tombstones that
every search excludes, and are deleted from the lists when the next save merges them. While
tombstones exist, adds stay in memory (a shard file would be searched with the tombstones).
A ``mmap=True`` load is read-only, like every kind; ``mmap=False`` loads a writable index whose
lists are still on disk (the stored lists are never written: a save writes new ones).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lookalike._faiss import import_faiss
from lookalike.config import IndexConfig
from lookalike.errors import InvalidParameterError, VectorIndexError
from lookalike.index._checks import as_ids, as_unit_matrix
from lookalike.index._rows import (
    IdMap,
    RowStore,
    lists_path,
    map_path,
    new_tag,
    parse_lists_name,
    remove_other_generations,
    rows_path,
)
from lookalike.index.base import VectorIndex, register
from lookalike.store.atomic import atomic_path, fsync_dir, fsync_file

TRAIN_POINTS_PER_CENTROID = 64
"""Training sample: this many rows per coarse centroid (as ``ivf``), at most the collection."""
NLIST_MAX = 2048
"""Coarse clusters at most: assigning n vectors costs n * nlist * d flops, and at 10M vectors
2048 lists (4,900 vectors each) keep building to minutes on two cores; the lists' length costs
little at search time (the codes are 64 bytes)."""
KMEANS_ITERATIONS = 10
"""Iterations of the coarse k-means and of each PQ sub-quantizer's k-means (FAISS: 10 and 25)."""
DENSE_ROWS = 5_000_000
"""Collections this large re-rank 800 candidates by default instead of 400 (see :func:`auto_rerank`)."""
_SETTINGS_SUFFIX = ".json"


@register
class OnDiskIndex(VectorIndex):
    """IVF-PQ with on-disk inverted lists, re-ranked exactly against float16 vectors.

    Parameters
    ----------
    nlist : coarse clusters (0 = ``4 * sqrt(n)`` of the fitted collection, at most ``NLIST_MAX``).
    pq_bytes : bytes per vector in the lists (sub-quantizers of 8 bits); the largest divisor of
        d not above it is used.
    opq : rotate vectors with OPQ before quantizing (better codes for the same bytes).
    nprobe : lists searched per query by default.
    rerank : PQ candidates re-scored exactly per query by default (at least k); 0 = by size
        (:func:`auto_rerank`). The PQ ranking alone finds few true neighbours, and fewer as the
        collection gets denser: at 10M clustered 256-d vectors, 64-byte codes give recall@10 0.59
        from 100 candidates, 0.86 from 400, 0.94 from 800 (benchmarks/bench_scale.py).
    shard_rows : vectors collected in memory before they are written to a shard file.
    workdir : folder for the row and shard files before the first :meth:`save` (None = a new
        temporary folder; the files move beside the index when saved).
    seed : k-means seed.
    """

    kind = "ondisk"
    search_options = frozenset({"nprobe", "rerank"})

    def __init__(
        self, nlist: int = 0, pq_bytes: int = 64, opq: bool = False, nprobe: int = 16, rerank: int = 0,
        shard_rows: int = 500_000, workdir: str | Path | None = None, seed: int = 0,
    ) -> None:
        super().__init__()
        self.nlist = nlist
        self.pq_bytes = pq_bytes
        self.opq = opq
        self.nprobe = nprobe
        self.rerank = rerank
        self.shard_rows = shard_rows
        self.workdir = workdir
        self.seed = seed

    @classmethod
    def from_config(cls, config: IndexConfig, centroids: Any = None) -> OnDiskIndex:
        return cls(nlist=config.nlist, pq_bytes=config.pq_bytes, nprobe=config.ondisk_nprobe,
                   rerank=config.rerank, seed=config.seed)

    # ------------------------------------------------------------ building
    def fit(self, X: Any, ids: Any) -> OnDiskIndex:
        """Train on a sample of X (n, d) (array or memory map), then add it chunk by chunk."""
        ids = as_ids(ids, n=len(X))
        n = len(X)
        nlist = self.nlist or _auto_nlist(n)
        take = min(n, TRAIN_POINTS_PER_CENTROID * nlist)
        rows = np.sort(np.random.default_rng(self.seed).choice(n, take, replace=False))
        self.train(np.asarray(X[rows]), n_expected=n)
        for start in range(0, n, self.shard_rows):
            self.add(ids[start : start + self.shard_rows], np.asarray(X[start : start + self.shard_rows]))
        return self

    def train(self, sample: Any, n_expected: int | None = None) -> OnDiskIndex:
        """Start an empty index trained on unit rows ``sample`` (m, d); returns self.

        ``n_expected`` (default m) sets the automatic ``nlist``. Then :meth:`add` in chunks.
        """
        X = as_unit_matrix(sample, None, "training vectors")
        nlist = self.nlist or _auto_nlist(n_expected or len(X))
        if len(X) < max(nlist, 256):
            raise InvalidParameterError(
                f"ondisk with nlist={nlist} needs at least {max(nlist, 256)} training vectors, got "
                f"{len(X)}; use a smaller nlist or another index kind for small collections"
            )
        code_bytes = max(b for b in range(1, min(self.pq_bytes, X.shape[1]) + 1) if X.shape[1] % b == 0)
        self._template = _trained(X, nlist, code_bytes, self.opq, self.seed)
        self.index_ = _empty_copy(self._template)
        self.dim_ = int(X.shape[1])
        self.read_only_ = False
        self._family = new_tag()
        folder = Path(self.workdir) if self.workdir else Path(tempfile.mkdtemp(prefix="lookalike-ondisk-"))
        folder.mkdir(parents=True, exist_ok=True)
        self._store = RowStore(folder / f"scratch-{self._family}.f16", self.dim_)
        self._scratch = True
        self._reset_changes(IdMap.empty())
        return self

    def _reset_changes(self, id_map: IdMap) -> None:
        self._map = id_map
        self._pending = _without_table(_empty_copy(self._template))
        self._pending_ids: list[np.ndarray] = []
        self._shards: list[tuple[Path, Any]] = []
        self._tombstones = np.zeros(0, np.int64)
        self._sorted_ids = None

    def _new_faiss(self, X: np.ndarray) -> Any:  # fit/train replace the generic build
        raise NotImplementedError

    # ------------------------------------------------------------ hooks
    def ids(self) -> np.ndarray:
        """The ids in the index, sorted: shape (n,) int64 (do not modify)."""
        self._check_fitted()
        return self._map.ids

    def _live_ids(self) -> np.ndarray:
        return np.asarray(self._map.ids)

    def _add(self, ids: np.ndarray, X: np.ndarray) -> None:
        rows = self._store.append(X)
        self._pending.add_with_ids(X, ids)
        self._pending_ids.append(ids)
        self._map = self._map.added(ids, rows)
        if self._pending.ntotal >= self.shard_rows and len(self._tombstones) == 0:
            self._flush()

    def _flush(self) -> None:
        """Write the in-memory shard to a shard file and map it back."""
        faiss = import_faiss()
        path = self._store.path.with_name(f"{self._store.path.name}.shard-{new_tag()}.faiss")
        faiss.write_index(self._pending, str(path))
        shard = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_SKIP_PRECOMPUTE_TABLE)
        self._shards.append((path, shard))
        self._pending = _without_table(_empty_copy(self._template))
        self._pending_ids = []

    def _remove(self, ids: np.ndarray) -> None:
        pending = np.concatenate(self._pending_ids) if self._pending_ids else np.zeros(0, np.int64)
        fresh = np.isin(ids, pending)
        if fresh.any():
            self._pending.remove_ids(import_faiss().IDSelectorBatch(ids[fresh]))
            self._pending_ids = [pending[~np.isin(pending, ids[fresh])]]
        self._tombstones = np.union1d(self._tombstones, ids[~fresh])
        self._map = self._map.removed(ids)

    def reconstruct(self, ids: Any) -> np.ndarray:
        """The stored vectors of these ids, from their float16 copies: (n, d) float32, unit rows."""
        ids = as_ids(ids, unique=False)
        missing = ids[~self.contains(ids)]
        if len(missing):
            raise InvalidParameterError(f"id {int(missing[0])} is not in the index")
        if len(ids) == 0:
            return np.zeros((0, self.dim_), dtype=np.float32)
        X = self._store.read(self._map.rows_of(ids))
        return np.asarray(X / np.linalg.norm(X, axis=1, keepdims=True), dtype=np.float32)

    # ------------------------------------------------------------ searching
    def _knn(self, queries: np.ndarray, k: int, selector: Any, **options: int) -> tuple[np.ndarray, np.ndarray]:
        depth = max(int(options.get("rerank", self.rerank or auto_rerank(len(self)))), k)
        nprobe = min(int(options.get("nprobe", self.nprobe)), self._nlist)
        cand = self._candidates(queries, depth, selector, nprobe)
        return self._rerank(queries, cand, k)

    def _candidates(self, queries: np.ndarray, depth: int, selector: Any, nprobe: int) -> np.ndarray:
        """The ``depth`` best ids (m, depth) by PQ score over stored lists, shards and new adds."""
        faiss = import_faiss()
        keep_alive = [selector]
        old_sel = selector
        if len(self._tombstones):
            dead = faiss.IDSelectorBatch(self._tombstones)
            alive = faiss.IDSelectorNot(dead)
            old_sel = alive if selector is None else faiss.IDSelectorAnd(alive, selector)
            keep_alive += [dead, alive, old_sel]
        parts = [(self.index_, old_sel)] + [(raw, old_sel) for _, raw in self._shards] + [(self._pending, selector)]
        scores, labels = [], []
        for raw, sel in parts:
            if raw.ntotal == 0:
                continue
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            if sel is not None:
                params.sel = sel
            s, i = raw.search(queries, depth, params=params)
            scores.append(s)
            labels.append(i)
        del keep_alive
        if not labels:
            return np.full((len(queries), depth), -1, np.int64)
        if len(labels) == 1:
            return np.asarray(labels[0], dtype=np.int64)
        s, i = np.concatenate(scores, axis=1), np.concatenate(labels, axis=1)
        best = np.argsort(-s, axis=1, kind="stable")[:, :depth]
        return np.take_along_axis(i, best, axis=1)

    def _rerank(self, queries: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products of the candidates (m, depth), best k: scores and ids (m, k)."""
        m = len(queries)
        out_s = np.full((m, k), np.finfo(np.float32).min, np.float32)
        out_i = np.full((m, k), -1, np.int64)
        for q in range(m):
            found = cand[q][cand[q] >= 0]
            if len(found) == 0:
                continue
            rows = self._map.rows_of(found)
            order = np.argsort(rows)  # read the row file front to back
            found, rows = found[order], rows[order]
            sims = self._store.read(rows) @ queries[q]
            top = np.argsort(-sims, kind="stable")[:k]
            out_s[q, : len(top)] = sims[top]
            out_i[q, : len(top)] = found[top]
        return out_s, out_i

    @property
    def code_bytes_(self) -> int:
        """Bytes per vector in the lists (``pq_bytes``, or the largest divisor of d below it)."""
        self._check_fitted()
        return int(import_faiss().extract_index_ivf(self.index_).code_size)

    @property
    def _nlist(self) -> int:
        return int(import_faiss().extract_index_ivf(self.index_).nlist)

    # ------------------------------------------------------------ files
    def save(self, path: str | Path) -> None:
        """Merge everything into new lists beside ``path``, then rename the header into place."""
        self._check_fitted()
        faiss = import_faiss()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch_dir = self._store.path.parent if self._scratch and self.workdir is None else None
        self._place_rows(target)
        gen = new_tag()
        header = self._merged(lists_path(target, self._family, gen))
        self._map.save(map_path(target, self._family, gen))
        settings = {"rerank": self.rerank, "shard_rows": self.shard_rows, "pq_bytes": self.pq_bytes, "opq": self.opq}
        settings_file = target.with_name(f"{target.name}.{self._family}.{gen}{_SETTINGS_SUFFIX}")
        settings_file.write_text(json.dumps(settings))
        for written in (self._store.path, lists_path(target, self._family, gen), map_path(target, self._family, gen),
                        settings_file):
            fsync_file(written)
        faiss.extract_index_ivf(header).nprobe = min(self.nprobe, self._nlist)
        with atomic_path(target) as tmp:
            faiss.write_index(header, str(tmp))
        for shard, _ in self._shards:
            shard.unlink(missing_ok=True)
        if scratch_dir is not None:
            _remove_if_empty(scratch_dir)
        self.index_ = header
        self._reset_changes(self._map)
        remove_other_generations(target, self._family, gen)
        fsync_dir(target.parent)

    def _place_rows(self, target: Path) -> None:
        """Put the row file beside ``target`` (moved from scratch, or copied from another index)."""
        dest = rows_path(target, self._family)
        if self._store.path == dest:
            return
        if self._scratch:
            scratch = self._store.path
            try:
                os.replace(scratch, dest)
                self._store = RowStore(dest, self.dim_)
            except OSError:  # another filesystem: copy instead
                self._store = self._store.copy_to(dest)
                scratch.unlink(missing_ok=True)
        else:
            self._store = self._store.copy_to(dest)
        self._scratch = False

    def _merged(self, lists_file: Path) -> Any:
        """A header over new on-disk lists holding the stored lists, shards and new adds."""
        faiss = import_faiss()
        stored = [faiss.extract_index_ivf(self.index_).invlists] + [
            faiss.extract_index_ivf(raw).invlists for _, raw in self._shards
        ]
        pending = faiss.extract_index_ivf(self._pending).invlists
        readded = len(self._tombstones) and np.isin(self._tombstones, self._map.ids).any()
        if not readded:
            return _merge_into(self._template, stored + [pending], lists_file, self._tombstones)
        staging = lists_file.with_name(lists_file.name + ".staging")
        first = _merge_into(self._template, stored, staging, self._tombstones)
        header = _merge_into(self._template, [faiss.extract_index_ivf(first).invlists, pending], lists_file, None)
        del first
        staging.unlink(missing_ok=True)
        return header

    def _open_files(self, path: Path) -> None:
        faiss = import_faiss()
        ivf = faiss.extract_index_ivf(self.index_)
        lists = faiss.downcast_InvertedLists(ivf.invlists)
        if not isinstance(lists, faiss.OnDiskInvertedLists):
            raise VectorIndexError(f"{path}: an IVF-PQ index without on-disk lists is not an 'ondisk' index")
        self._family, gen = parse_lists_name(path, lists.filename)
        settings_file = path.with_name(f"{path.name}.{self._family}.{gen}{_SETTINGS_SUFFIX}")
        try:
            settings = json.loads(settings_file.read_text())
        except (OSError, ValueError) as exc:
            raise VectorIndexError(f"{settings_file}: unreadable ({exc}); rebuild the index") from exc
        self.rerank, self.shard_rows = int(settings["rerank"]), int(settings["shard_rows"])
        self.pq_bytes, self.opq = int(settings["pq_bytes"]), bool(settings["opq"])
        self.nlist, self.nprobe = int(ivf.nlist), int(ivf.nprobe)
        self._store = RowStore(rows_path(path, self._family), self.dim_)
        self._scratch = False
        self._template = _empty_copy(self.index_)
        self._reset_changes(IdMap.load(map_path(path, self._family, gen), writable=not self.read_only_))

    def _sync_settings(self) -> None:
        return None  # save() writes nprobe and rerank itself

    @classmethod
    def _recognizes(cls, raw: Any) -> bool:
        faiss = import_faiss()
        try:
            ivf = faiss.extract_index_ivf(raw)
        except RuntimeError:
            return False
        lists = faiss.downcast_InvertedLists(ivf.invlists)
        return isinstance(faiss.downcast_index(ivf), faiss.IndexIVFPQ) and isinstance(lists, faiss.OnDiskInvertedLists)

    @property
    def on_disk_files(self) -> list[Path]:
        """The files this index reads through memory maps (lists and float16 rows)."""
        lists = import_faiss().downcast_InvertedLists(import_faiss().extract_index_ivf(self.index_).invlists)
        files = [self._store.path]
        return files + [Path(lists.filename)] if hasattr(lists, "filename") else files


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _auto_nlist(n: int) -> int:
    return max(1, min(round(4 * math.sqrt(n)), n // TRAIN_POINTS_PER_CENTROID, NLIST_MAX))


def _trained(X: np.ndarray, nlist: int, pq_bytes: int, opq: bool, seed: int) -> Any:
    """An empty IVF-PQ (inner product; L2 coarse quantizer), optionally behind OPQ, trained on X."""
    faiss = import_faiss()
    d = X.shape[1]
    quantizer = faiss.IndexFlatL2(d)
    ivf = faiss.IndexIVFPQ(quantizer, d, nlist, pq_bytes, 8, faiss.METRIC_INNER_PRODUCT)
    ivf.own_fields = True
    quantizer.this.disown()
    ivf.cp.niter = KMEANS_ITERATIONS
    ivf.cp.seed = seed
    ivf.cp.max_points_per_centroid = TRAIN_POINTS_PER_CENTROID
    ivf.pq.cp.niter = KMEANS_ITERATIONS
    index: Any = ivf
    if opq:
        matrix = faiss.OPQMatrix(d, pq_bytes)
        index = faiss.IndexPreTransform(matrix, ivf)
        index.own_fields = True
        matrix.this.disown()
        ivf.this.disown()
    index.train(X)
    return index


def _empty_copy(index: Any) -> Any:
    """A trained copy of ``index`` with empty in-memory lists (its own lists untouched)."""
    faiss = import_faiss()
    ivf = faiss.extract_index_ivf(index)
    lists, own, ntotal = ivf.invlists, ivf.own_invlists, index.ntotal
    empty = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
    ivf.own_invlists = False
    ivf.replace_invlists(empty, False)
    ivf.ntotal = index.ntotal = 0
    try:
        copy = faiss.clone_index(index)
    finally:
        ivf.replace_invlists(lists, False)
        ivf.own_invlists = own
        ivf.ntotal = index.ntotal = ntotal
    return copy


def auto_rerank(n: int) -> int:
    """Candidates to re-rank in a collection of n vectors: 400 below :data:`DENSE_ROWS`, 800 from
    there (measured recall@10 at 400 candidates: 0.955 at 1M and 3M, 0.86 at 10M)."""
    return 400 if n < DENSE_ROWS else 800


def _without_table(index: Any) -> Any:
    """``index`` without its IVF-PQ precomputed table (nlist x bytes x 256 floats: 134 MB at 2048
    lists and 64 bytes), which only speeds up search and leaves results unchanged. The adding buffer
    and the shards go without it: one table per shard made a build's memory grow with n (5 GB at 10M)."""
    ivf = import_faiss().downcast_index(import_faiss().extract_index_ivf(index))
    if hasattr(ivf, "precomputed_table"):
        ivf.use_precomputed_table = 0
        ivf.precomputed_table.clear()
    return index


def _merge_into(template: Any, sources: list[Any], lists_file: Path, drop: np.ndarray | None) -> Any:
    """A copy of ``template`` whose lists are ``sources`` merged into a new file, minus ``drop``."""
    faiss = import_faiss()
    lists_file.unlink(missing_ok=True)
    header = _empty_copy(template)
    ivf = faiss.extract_index_ivf(header)
    merged = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(lists_file))
    vector = faiss.InvertedListsPtrVector()
    for lists in sources:
        vector.push_back(lists)
    ntotal = merged.merge_from_multiple(vector.data(), vector.size(), False)
    ivf.replace_invlists(merged, True)
    merged.this.disown()
    ivf.ntotal = header.ntotal = ntotal
    if drop is not None and len(drop):
        header.remove_ids(faiss.IDSelectorBatch(drop))
    return header

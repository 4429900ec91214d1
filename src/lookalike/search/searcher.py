"""Search a library: by image file or bytes, by an image it holds, or by several (their mean).

::

    with LibraryStore.open("photos.lookalike") as store:
        result = lib.search("query.jpg", k=10, filters=SearchFilters(label="cats"))
        for hit in result.hits:
            print(hit.rank, hit.path, hit.similarity, hit.confidence)

A query file or byte string whose content the library already holds (same content hash, or the
same unchanged file) uses the stored vector; anything else is decoded (EXIF-upright, pixel limit
of the library), embedded with the library's backbone and reduced with its PCA. Those library
images are left out of the results unless ``include_self``.

Scores of each hit (see :mod:`lookalike.index.scores`): ``distance`` = squared L2 between the
unit vectors = ``2 - 2 * similarity``; ``similarity`` = cosine; ``confidence`` =
``clip(1 - distance / max_d, 0, 1)`` where ``max_d`` is the largest squared distance from a member
of the query's cluster to that cluster's centre; the query's cluster is its nearest centre among
the clusters of the cluster run in use (the latest, or ``filters.run``) when it was built on the
current PCA, else the library's own confidence clusters (k-means, stored with the index);
``probability`` = calibrated P(the hit has the query's label), only on labelled libraries
(None otherwise, never made up).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from lookalike.cluster.runs import NOISE, UNASSIGNED, ClusterRun, read_run
from lookalike.embed.query import embed_source, library_pixels
from lookalike.errors import InvalidParameterError, UnreadableFileError
from lookalike.index import ClusterSpan, mean_query
from lookalike.io.scan import content_hash, describe_os_error
from lookalike.reduce.stored import require_reducer
from lookalike.search.library_index import (
    file_signature,
    load_calibrator,
    load_confidence_clusters,
    open_index,
)
from lookalike.store.images import data_version, embedded_with_hash, first_files, ids_under, ids_with_label
from lookalike.store.runs import newest_run_id

if TYPE_CHECKING:
    from lookalike.index.live import LiveIndex
    from lookalike.store.library_store import LibraryStore

PROJECTION_POOL = 1000
"""Nearest candidates (in the reduced space) that a projected search re-orders."""
Query = str | Path | bytes | int
"""A file path, an image file's bytes, or the id of an image in the library."""


@dataclass(frozen=True)
class SearchFilters:
    """Restrict results to images in ``cluster`` (of cluster run ``run``, default the latest),
    with ``label``, or with a file under the path prefix ``under``. Filters combine (AND)."""

    cluster: int | None = None
    run: int | None = None
    label: str | None = None
    under: str | Path | None = None


@dataclass(frozen=True)
class SearchHit:
    """One result. ``path`` is the image's first file; ``cluster`` its cluster in the run used."""

    rank: int
    image_id: int
    path: str
    distance: float
    similarity: float
    confidence: float | None
    probability: float | None
    cluster: int | None
    cluster_name: str | None
    label: str | None
    rerank_score: float | None = None
    """The re-ranking method's score (higher is better) when the search re-ranked, else None."""


_HIT_FIELDS = tuple(f.name for f in fields(SearchHit))


@dataclass(frozen=True)
class SearchResult:
    """Hits best first; ``query_images`` = library images the query used (excluded unless asked)."""

    hits: list[SearchHit]
    kind: str
    query_images: list[int]
    cluster_run: int | None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready values (what ``dataclasses.asdict`` gives, faster)."""
        return {
            "hits": [{name: getattr(hit, name) for name in _HIT_FIELDS} for hit in self.hits],
            "kind": self.kind,
            "query_images": list(self.query_images),
            "cluster_run": self.cluster_run,
            "seconds": dict(self.seconds),
        }


class Searcher:
    """Answers queries over one library; keep it to answer many (the index is loaded once).

    ``kind`` picks the index (``auto``: by collection size). ``update`` (default: the library is
    writable) brings the stored index up to date first; read-only searchers overlay the catalog
    instead (see :mod:`lookalike.index.live`) and :meth:`refresh` picks up changes.
    """

    def __init__(self, store: LibraryStore, kind: str = "auto", *, update: bool | None = None) -> None:
        self.store = store
        self.kind = kind
        self.update = (not store.readonly) if update is None else update
        self.max_pixels = store.manifest.ingest.max_pixels
        """Largest query image accepted, in pixels (decompression-bomb limit)."""
        self.backbone: Any = None
        """A loaded backbone to embed queries with (None: the library's); servers share one."""
        self.vector_cache: Any = None
        """Optional ``get(key)`` / ``put(key, vector)`` cache of reduced query vectors by (content
        hash, reducer fingerprint): repeated uploads skip decoding and the CNN."""
        self._signature: tuple[Any, ...] | None = None
        self._run_spans: dict[int, ClusterSpan | None] = {}
        self._runs: dict[int, ClusterRun] = {}
        self.refresh()

    # -- state -----------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Reload when the catalog, the reducer or the index file changed; returns whether it did."""
        signature = self._current_signature()
        if signature == self._signature:
            return False
        version = signature[0]  # read before loading: a commit during the load is seen next time
        self.live: LiveIndex = open_index(self.store, self.kind, update=self.update)  # fits PCA if needed
        self.reducer = require_reducer(self.store)
        fingerprint = self.reducer.fingerprint
        self.calibrator = load_calibrator(self.store.folder, fingerprint)
        self.own_clusters = self._own_span(load_confidence_clusters(self.store.folder, fingerprint))
        self._run_spans, self._runs = {}, {}
        self._dba: tuple[np.ndarray, np.ndarray] | None = None
        now = self._current_signature()
        self._signature = (version, *now[1:])
        return True

    def _current_signature(self) -> tuple[Any, ...]:
        version = data_version(self.store.catalog)
        index_path = getattr(getattr(self, "live", None), "path", None)
        return (version, file_signature(index_path), file_signature(self.store.folder / "models" / "reducer.npz"))

    # -- searching -------------------------------------------------------------------------
    def search(
        self,
        query: Query | Sequence[Query],
        k: int = 10,
        *,
        filters: SearchFilters | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        include_self: bool = False,
        rerank: str = "none",
        projected: bool = False,
    ) -> SearchResult:
        """The ``k`` library images nearest to ``query`` (several queries: their mean).

        ``rerank`` (``aqe``, ``dba``, ``kreciprocal``; see :mod:`lookalike.search.rerank`) re-orders
        a pool of the nearest candidates at query time; ``none`` keeps the exact order.
        ``projected`` orders that pool by similarity in the learned label projection
        (``lookalike learn-projection``) instead; it cannot be combined with ``rerank``.
        """
        from lookalike.search.rerank import RerankConfig, check_method

        check_method(rerank)
        if projected:
            if rerank != "none":
                raise InvalidParameterError(f"projected search re-orders the candidates itself; got rerank={rerank!r} too")
            rerank = "projection"
        started = time.perf_counter()
        filters = filters or SearchFilters()
        vectors, own, seconds = self.query_vectors(query)
        run = self._run(filters.run)
        allowed = self._allowed(filters, run)
        searching = time.perf_counter()
        query_vector = mean_query(vectors)
        found = self.live.search(
            query_vector[None], k if rerank == "none" else max(k, PROJECTION_POOL if projected else RerankConfig().pool),
            allowed_ids=allowed,
            exclude_ids=None if include_self else own or None,
            clusters=self._span(run), calibrator=self.calibrator, nprobe=nprobe, ef_search=ef_search,
        )[0]
        seconds["search"] = time.perf_counter() - searching
        hits = self._hits(found, run)
        if rerank != "none":
            reranking = time.perf_counter()
            hits = self._reranked(hits, query_vector, k, rerank)
            seconds["rerank"] = time.perf_counter() - reranking
        seconds["total"] = time.perf_counter() - started
        return SearchResult(hits, self.live.kind, own, None if run is None else run.id, seconds)

    def query_vectors(self, query: Query | Sequence[Query]) -> tuple[np.ndarray, list[int], dict[str, float]]:
        """Reduced vectors (m, d) of the query items, the library images among them, timings."""
        items: list[Any] = list(query) if isinstance(query, (list, tuple)) else [query]
        if not items:
            raise InvalidParameterError("the query is empty: give an image file, bytes or an image id")
        seconds = {"decode": 0.0, "embed": 0.0}
        vectors, own = [], []
        for item in items:
            image_id = self._known_image(item)
            if image_id is not None:
                vectors.append(self.live.reconstruct([image_id])[0])
                own.append(image_id)
            else:
                vector, parts = self.embed(item)
                vectors.append(vector)
                for name, value in parts.items():
                    seconds[name] += value
        return np.stack(vectors), own, seconds

    def _known_image(self, item: Query) -> int | None:
        """The library image holding ``item``: an id, an unchanged library file, same content."""
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (str, Path, bytes, int, np.integer)):
            raise InvalidParameterError(f"a query item is a file path, bytes or an image id, got {type(item).__name__}")
        if isinstance(item, (int, np.integer)):
            if not self.live.contains([int(item)])[0]:
                raise InvalidParameterError(f"image id {int(item)} is not an embedded image of {self.store.folder}")
            return int(item)
        if isinstance(item, bytes):
            return self._image_with_hash(hashlib.blake2b(item, digest_size=32).hexdigest())
        path = Path(os.path.abspath(Path(item).expanduser()))
        row = next(iter(self.store.catalog.file_rows([path])), None)
        try:
            st = path.stat()
        except OSError as exc:
            raise UnreadableFileError(str(path), describe_os_error(exc, path)) from exc
        if row is not None and row.image_id is not None and (row.size, row.mtime_ns) == (st.st_size, st.st_mtime_ns):
            if self.live.contains([row.image_id])[0]:
                return row.image_id
        return self._image_with_hash(content_hash(path))

    def _image_with_hash(self, digest: str) -> int | None:
        image_id = embedded_with_hash(self.store.catalog, digest)
        if image_id is not None and self.live.contains([image_id])[0]:
            return image_id
        return None

    def embed(self, item: str | Path | bytes) -> tuple[np.ndarray, dict[str, float]]:
        """Decode, embed and reduce one image file or bytes: vector (d,) float32 and the seconds
        spent decoding and embedding (backbone + PCA)."""
        key = None
        if self.vector_cache is not None and isinstance(item, bytes):
            key = (hashlib.blake2b(item, digest_size=32).hexdigest(), self.reducer.fingerprint)
            cached = self.vector_cache.get(key)
            if cached is not None:
                return cached, {"decode": 0.0, "embed": 0.0}
        started = time.perf_counter()
        source = item if isinstance(item, bytes) else Path(item).expanduser()
        if self.backbone is None:
            raw, seconds = embed_source(self.store, source, self.max_pixels)
        else:  # a shared, already checked backbone (the API's)
            pixels, _ = library_pixels(self.store.manifest, source, self.max_pixels)
            seconds = {"decode": time.perf_counter() - started}
            raw = self.backbone.embed(pixels[None])[0]
        vector = np.asarray(self.reducer.transform(raw[None]), dtype=np.float32)[0]
        seconds["embed"] = time.perf_counter() - started - seconds["decode"]
        if key is not None:
            vector.setflags(write=False)
            self.vector_cache.put(key, vector)
        return vector, seconds

    def _reranked(self, hits: list[SearchHit], query: np.ndarray, k: int, method: str) -> list[SearchHit]:
        """The first ``k`` of ``hits`` (a candidate pool) re-ordered by ``method``, ranks renumbered."""
        from dataclasses import replace

        from lookalike.search.rerank import RerankConfig, rerank_pool

        if not hits:
            return hits
        ids = np.array([hit.image_id for hit in hits], dtype=np.int64)
        candidates = np.asarray(self.live.reconstruct(ids), dtype=np.float32)
        augmented = None
        if method == "dba":
            if self._dba is None:
                from lookalike.search.dba import library_dba

                self._dba = library_dba(self.store)
            dba_ids, dba_vectors = self._dba
            order = np.argsort(dba_ids, kind="stable")
            at = np.minimum(np.searchsorted(dba_ids[order], ids), len(dba_ids) - 1)
            rows = order[at]
            known = dba_ids[rows] == ids
            augmented = np.where(known[:, None], dba_vectors[rows], candidates)  # newer images: no DBA yet
        if method == "projection":
            from lookalike.reduce.library_projection import library_projection

            projector = library_projection(self.store)
            scores = projector.transform(candidates) @ projector.transform(np.asarray(query, np.float32)[None])[0]
            order = np.argsort(-scores, kind="stable")
            scores = scores[order]
        else:
            order, scores = rerank_pool(method, np.asarray(query, dtype=np.float32), candidates, RerankConfig(), augmented)
        return [replace(hits[i], rank=rank, rerank_score=float(score))
                for rank, (i, score) in enumerate(zip(order[:k], scores[:k]), start=1)]

    # -- filters, scores, hits ---------------------------------------------------------------
    def _run(self, run_id: int | None) -> ClusterRun | None:
        """Cluster run ``run_id`` (None: the latest, or None without runs), read once per state."""
        if run_id is None:
            run_id = newest_run_id(self.store.catalog)
            if run_id is None:
                return None
        if run_id not in self._runs:
            self._runs[run_id] = read_run(self.store, run_id)
        return self._runs[run_id]

    def _allowed(self, filters: SearchFilters, run: ClusterRun | None) -> np.ndarray | None:
        sets = []
        if filters.cluster is not None:
            if run is None:
                raise InvalidParameterError(f"{self.store.folder} has no cluster run: cluster the library first")
            sets.append(run.members_of(filters.cluster))
        if filters.label is not None:
            sets.append(ids_with_label(self.store.catalog, filters.label))
        if filters.under is not None:
            sets.append(ids_under(self.store.catalog, os.path.abspath(Path(filters.under).expanduser()), self.store.folder))
        if not sets:
            return None
        allowed = sets[0]
        for other in sets[1:]:
            allowed = np.intersect1d(allowed, other)
        return allowed

    def _span(self, run: ClusterRun | None) -> ClusterSpan | None:
        """Confidence clusters: the run's (when built on this PCA), else the library's own."""
        if run is None or run.reducer_fingerprint != self.reducer.fingerprint:
            return self.own_clusters
        if run.id not in self._run_spans:
            self._run_spans[run.id] = _run_span(run, self.live)
        return self._run_spans[run.id] or self.own_clusters

    def _own_span(self, stored: dict[str, np.ndarray] | None) -> ClusterSpan | None:
        if stored is None:
            return None
        keep = self.live.contains(stored["ids"])
        return ClusterSpan(stored["centroids"], stored["ids"][keep], stored["labels"][keep], self.live.reconstruct)

    def _hits(self, found: Any, run: ClusterRun | None) -> list[SearchHit]:
        ids = [int(i) for i in found.ids]
        files = first_files(self.store.catalog, ids)
        hits = []
        for rank, record in enumerate(found.to_records(), start=1):
            image_id = record["id"]
            path, label = files.get(image_id, ("", None))
            cluster = None if run is None else run.cluster_of(image_id)
            hits.append(SearchHit(
                rank=rank, image_id=image_id, path=path, distance=record["distance"],
                similarity=record["similarity"], confidence=record["confidence"],
                probability=record["probability"], cluster=cluster,
                cluster_name=None if run is None or cluster is None else run.names.get(cluster), label=label,
            ))  # fmt: skip
        return hits


def _run_span(run: ClusterRun, live: LiveIndex) -> ClusterSpan | None:
    """Confidence over a run's clusters (centres = member means of the live vectors, noise and
    unassigned images left out); None when no cluster has a member left."""
    keep = (run.labels != NOISE) & (run.labels != UNASSIGNED) & live.contains(run.image_ids)
    if not keep.any():
        return None
    ids, clusters = run.image_ids[keep], run.labels[keep]
    numbers, labels = np.unique(clusters, return_inverse=True)
    sums = np.zeros((len(numbers), live.dim))
    for start in range(0, len(ids), 16384):
        block = labels[start : start + 16384]
        members = sparse.csr_matrix((np.ones(len(block)), (block, np.arange(len(block)))), (len(numbers), len(block)))
        sums += members @ live.reconstruct(ids[start : start + 16384])  # np.add.at took 1.5 s at 60k
    centroids = (sums / np.bincount(labels)[:, None]).astype(np.float32)
    return ClusterSpan(centroids, ids, labels, live.reconstruct)

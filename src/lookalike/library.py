"""The library facade: open/close and one-line delegations to the stages.

Every interface (CLI, Python API, REST API, web app) is a thin layer over :class:`Library`::

    from lookalike import Library
    with Library.create("photos.lookalike", backbone="efficientnet-lite0") as lib:
        report = lib.add(["~/Pictures"])
        ids, vectors = lib.embeddings()          # (n,), (n, 1280)

The state lives in ``lib.store`` (:class:`lookalike.store.library_store.LibraryStore`); the
stage modules take that store and arrays, never a ``Library``.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

from lookalike.config import EmbedConfig, ExtractConfig, IngestConfig, ReduceConfig
from lookalike.embed import indexing
from lookalike.errors import LibraryExistsError
from lookalike.progress import Progress
from lookalike.reduce import stored as reduction
from lookalike.store.catalog import Catalog
from lookalike.store.library_store import LibraryStore
from lookalike.store.manifest import MANIFEST_NAME, Manifest
from lookalike.store.reduced import ReducedVectors
from lookalike.store.status import LibraryStatus, read_status
from lookalike.store.vectors import RawVectors

if TYPE_CHECKING:
    from lookalike.cluster.runs import ClusterRun, RunInfo
    from lookalike.config import ClusterConfig
    from lookalike.embed.base import Backbone
    from lookalike.embed.distributed import RayConfig
    from lookalike.index.live import LiveIndex
    from lookalike.reduce import Reducer
    from lookalike.search.duplicates import FileGroup
    from lookalike.search.searcher import Query, SearchResult
    from lookalike.store.parquet import ImportReport

IndexReport = indexing.IndexReport
PathLike = Path | str


class Library:
    """A collection of images on disk (see docs/architecture.md for the folder layout)."""

    def __init__(self, store: LibraryStore) -> None:
        self.store = store

    # -- life cycle -------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: PathLike,
        *,
        backbone: str = EmbedConfig.backbone,
        weights: PathLike | None = None,
        ingest: IngestConfig | None = None,
        exist_ok: bool = False,
        crop_fraction: float | str | None = None,
        augment: str | None = None,
        precision: str = "fp32",
    ) -> Library:
        """Create a library folder built with ``backbone`` (or open it if ``exist_ok``).

        ``precision`` is ``fp32``, ``bf16``, ``int8`` or ``auto`` (the fastest that passed its
        retrieval gate on this CPU; see ``lookalike.embed.precision``); it is fixed per library.

        ``crop_fraction`` overrides the backbone's centre crop (the share of the shorter side
        kept, in (0, 1]); 1.0 keeps the whole image, which suits tiny images such as 28 px
        Fashion-MNIST or 32 px CIFAR, whose objects fill the frame; ``"auto"`` (the default when
        None) chooses from the image sizes at the first ``add``. ``augment`` names the test-time views averaged into
        every vector (``none``, ``flip``, ``flip-zoom``; see ``lookalike.embed.augment``).
        """
        folder = Path(path).expanduser()
        indexing.check_crop_fraction_value(crop_fraction)
        if (folder / MANIFEST_NAME).exists():
            if not exist_ok:
                raise LibraryExistsError(f"{folder}: a library already exists here")
            lib = cls.open(folder, backbone=backbone, weights=weights, precision=precision)
            lib.check_crop_fraction(crop_fraction)
            lib.check_augment(augment)
            return lib
        store = indexing.create_store(
            folder, backbone=backbone, weights=weights, ingest=ingest, crop_fraction=crop_fraction, augment=augment,
            precision=precision,
        )
        return cls(store)

    @classmethod
    def open(
        cls,
        path: PathLike,
        *,
        backbone: str | None = None,
        weights: PathLike | None = None,
        readonly: bool = False,
        precision: str | None = None,
    ) -> Library:
        """Open an existing library; ``backbone`` and ``precision`` (other than ``auto``), when
        given, must be the ones it was built with."""
        store = indexing.open_store(
            Path(path).expanduser(), backbone=backbone, weights=weights, readonly=readonly, precision=precision
        )
        return cls(store)

    def check_crop_fraction(self, crop_fraction: float | str | None) -> None:
        """Refuse (and close this library) a centre crop other than the one it was built with."""
        try:
            indexing.check_crop_fraction(self.store, crop_fraction)
        except Exception:
            self.close()
            raise

    def check_augment(self, augment: str | None) -> None:
        """Refuse (and close this library) test-time views other than the ones it was built with."""
        try:
            indexing.check_augment(self.store, augment)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- what the store holds ---------------------------------------------------------------------
    @property
    def folder(self) -> Path:
        return self.store.folder

    @property
    def manifest(self) -> Manifest:
        return self.store.manifest

    @property
    def readonly(self) -> bool:
        return self.store.readonly

    @property
    def catalog(self) -> Catalog:
        return self.store.catalog

    @property
    def vectors(self) -> RawVectors:
        return self.store.vectors

    # -- building -----------------------------------------------------------------------------
    def add(
        self,
        paths: list[PathLike] | None = None,
        *,
        labels: str = "none",
        extract: ExtractConfig | None = None,
        progress: Progress | None = None,
        ray: str | RayConfig | None = None,
    ) -> IndexReport:
        """Scan ``paths`` (default: every folder scanned before), then embed what is new.

        ``labels="folder"`` takes each file's first-level subfolder name as its label.
        Re-running is incremental: unchanged files are not read again, vanished ones dropped.
        ``ray="auto"`` (or a cluster address, or a ``RayConfig``) decodes and embeds on a Ray
        cluster's workers while this process scans and commits (``lookalike.embed.distributed``;
        needs ``pip install 'lookalike[ray]'``).
        """
        report = indexing.add(self.store, paths, labels=labels, extract=extract, progress=progress, ray=ray)
        self._update_indexes()
        return report

    index = add

    def remove(self, paths: list[PathLike]) -> int:
        """Forget files (or whole folders) without touching them on disk; returns files removed."""
        removed = indexing.remove(self.store, paths)
        self._update_indexes()
        return removed

    def check_ingest(self, settings: dict[str, object]) -> None:
        """Refuse ingest settings that differ from the ones the library was created with."""
        indexing.check_ingest(self.store, settings)

    def backbone(self, threads: int = 0) -> Backbone:
        """The loaded backbone, checked against the weights the library was built with."""
        from lookalike.embed.query import checked_backbone

        return checked_backbone(self.store, threads)

    def compact(self, min_hole_fraction: float = 0.25) -> bool:
        """Rewrite the raw vectors without removed rows (see ``LibraryStore.compact``)."""
        return self.store.compact(min_hole_fraction)

    # -- clustering (lookalike.cluster.run) --------------------------------------------------------
    def cluster(self, config: ClusterConfig | None = None, *, progress: Progress | None = None) -> ClusterRun:
        """Cluster the reduced vectors with a ``ClusterConfig`` (default: K-Means, K chosen) and
        store the run; returns it as a ``lookalike.cluster.runs.ClusterRun``."""
        from lookalike.cluster.run import run_clustering
        from lookalike.config import ClusterConfig as Settings

        return run_clustering(self.store, config or Settings(), progress)

    def cluster_runs(self) -> list[RunInfo]:
        """Every stored clustering run (``RunInfo``: settings, metrics, ``stale``), oldest first."""
        from lookalike.cluster.runs import list_runs

        return list_runs(self.store)

    def cluster_run(self, run_id: int | None = None) -> ClusterRun:
        """A stored run (default: the latest) applied to the images held now (``ClusterRun``)."""
        from lookalike.cluster.runs import read_run

        return read_run(self.store, run_id)

    # -- reading --------------------------------------------------------------------------------
    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(image ids (n,) int64, raw embeddings (n, dim) float32) of every embedded image."""
        return self.store.embeddings()

    # -- Parquet (lookalike.store.parquet) -------------------------------------------------------
    def export_parquet(self, out: PathLike, *, vectors: str = "raw", rows_per_file: int = 1_000_000) -> list[Path]:
        """Write every embedded image (id, content hash, paths, label, latest cluster) with its
        ``raw`` or ``reduced`` vector to ``out/part-*.parquet``; returns the files written."""
        from lookalike.store import parquet

        if vectors == "reduced":
            reduced = self.reduced()
            ids, matrix, reducer = reduced.ids, reduced.vectors, reduced.reducer_fingerprint
        else:
            ids, matrix, reducer = *self.embeddings(), None
        return parquet.export_vectors(self.store, np.asarray(ids), matrix, Path(out), vectors, reducer, rows_per_file)

    def import_vectors(self, files: list[PathLike]) -> ImportReport:
        """Add raw vectors computed elsewhere (Parquet stating this library's backbone, weights and
        preprocessing; see ``lookalike.store.parquet``)."""
        from lookalike.store import parquet

        report = parquet.import_files(self.store, [Path(f).expanduser() for f in files])
        self._update_indexes()
        return report

    # -- reduction ----------------------------------------------------------------------------
    def reduce_config(self) -> ReduceConfig | None:
        """The settings the stored reducer was fitted with (None before the first fit)."""
        return reduction.reduce_config(self.store)

    def reducer(self) -> Reducer | None:
        """The stored L2 + PCA reducer, or None before ``reduce``."""
        return reduction.stored_reducer(self.store)

    def reduce(self, config: ReduceConfig | None = None, *, refit: bool = False) -> Reducer:
        """Fit the reducer (first time, or ``refit``) and store every image's reduced vector."""
        return reduction.refresh_reduced(self.store, config, refit=refit)

    def learn_projection(self, method: str = "head", *, seed: int = 0, progress: Progress | None = None) -> dict[str, object]:
        """Learn and store the label projection (``lda`` or ``head``) from the labelled images; search
        (``projected=True``) and clustering (``ClusterConfig(space="projected")``) can then use it."""
        from lookalike.reduce.library_projection import learn_projection

        return learn_projection(self.store, method, seed=seed, progress=progress)

    def reduced(self) -> ReducedVectors:
        """Every embedded image's reduced vector, brought up to date with the stored reducer."""
        return reduction.reduced_vectors(self.store)

    def status(self) -> LibraryStatus:
        """Counts, backbone and skipped files grouped by reason."""
        return read_status(self.store)

    # -- vector search (lookalike.search.searcher) -------------------------------------------------------
    def vector_index(self, kind: str = "auto", *, rebuild: bool = False) -> LiveIndex:
        """The ``kind`` vector index over the current images (see ``lookalike.search.library_index``)."""
        from lookalike.search.library_index import open_index, update_index

        if rebuild:
            update_index(self.store, kind, rebuild=True)
        return open_index(self.store, kind)

    def search(self, query: Query | list[Query], k: int = 10, *, kind: str = "auto", **options: object) -> SearchResult:
        """The ``k`` images nearest to ``query`` (file path, bytes, image id, or a list of them,
        averaged): a ``lookalike.search.searcher.SearchResult``; options as ``Searcher.search``."""
        from lookalike.search.searcher import Searcher

        return Searcher(self.store, kind).search(query, k, **options)  # type: ignore[arg-type]

    def duplicates(self, **options: object) -> list[FileGroup]:
        """Groups of duplicate files (exact, near, semantic): ``lookalike.search.duplicates``."""
        from lookalike.search.duplicates import find_library_duplicates

        return find_library_duplicates(self.store, **options)  # type: ignore[arg-type]

    def _update_indexes(self) -> None:
        from lookalike.search.library_index import update_after_change

        update_after_change(self.store)

"""The library facade: one object over the catalog, the vectors and the backbone.

Every interface (CLI, Python API, REST API, web app) is a thin layer over :class:`Library`::

    from lookalike import Library
    with Library.create("photos.lookalike", backbone="efficientnet-lite0") as lib:
        report = lib.add(["~/Pictures"])
        ids, vectors = lib.embeddings()          # (n,), (n, 1280)
"""

from __future__ import annotations

import fcntl
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.store import reduced as derived
from lookalike.config import EmbedConfig, ExtractConfig, IngestConfig, ReduceConfig, from_dict, to_dict
from lookalike.errors import (
    BackboneMismatchError,
    InvalidParameterError,
    LibraryExistsError,
    LibraryLockedError,
    LibraryNotFoundError,
)
from lookalike.index.phash import DEFAULT_PHASH
from lookalike.ingest.sync import LABEL_MODES, SyncReport, remove_paths, sync_roots
from lookalike.io.decode import DEFAULT_RESIZE
from lookalike.progress import NoProgress, Progress
from lookalike.store.status import LibraryStatus, read_status
from lookalike.store.atomic import remove_stale_temporaries
from lookalike.store.catalog import Catalog, PendingImage
from lookalike.store.manifest import EmbedRecord, Manifest, now, read_manifest, write_manifest
from lookalike.store.vectors import RawVectors

if TYPE_CHECKING:
    from lookalike.cluster.runs import ClusterRun, RunInfo
    from lookalike.config import ClusterConfig
    from lookalike.search.duplicates import FileGroup
    from lookalike.index.live import LiveIndex
    from lookalike.search.searcher import SearchResult

CATALOG_NAME = "catalog.sqlite"
LOCK_NAME = ".lock"


@dataclass(frozen=True)
class IndexReport:
    """The outcome of one ``index`` / ``add`` run."""

    sync: SyncReport
    embedded: int
    skipped_while_embedding: dict[str, int]
    seconds_embedding: float

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds_embedding if self.seconds_embedding > 0 else 0.0


class Library:
    """A collection of images on disk (see docs/architecture.md for the folder layout)."""

    def __init__(self, folder: Path, manifest: Manifest, *, readonly: bool, weights: str | None) -> None:
        self.folder = folder
        self.manifest = manifest
        self.readonly = readonly
        self._weights = weights
        self._lock_fd: int | None = None
        if not readonly:
            self._lock_fd = _lock(folder)
            remove_stale_temporaries(folder)
        self.catalog = Catalog(folder / CATALOG_NAME, readonly=readonly)
        self.vectors = RawVectors(folder / "vectors", manifest.embed.dim)
        if not readonly:
            self.vectors.remove_other_generations(keep=self._raw_state()[0])
            derived.remove_other_reduced(folder, self.catalog.get_meta("reduced_key"))
        self._backbone: Any = None
        self._backbone_threads = 0

    # -- life cycle -------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: Path | str,
        *,
        backbone: str = EmbedConfig.backbone,
        weights: str | Path | None = None,
        ingest: IngestConfig | None = None,
        exist_ok: bool = False,
        crop_fraction: float | None = None,
        precision: str = "fp32",
    ) -> Library:
        """Create a library folder built with ``backbone`` (or open it if ``exist_ok``).

        ``precision`` is ``fp32``, ``bf16``, ``int8`` or ``auto`` (the fastest that passed its
        retrieval gate on this CPU; see ``lookalike.embed.precision``); it is fixed per library.

        ``crop_fraction`` overrides the backbone's centre crop (the share of the shorter side
        kept, in (0, 1]); 1.0 keeps the whole image, which suits tiny images such as 28 px
        Fashion-MNIST or 32 px CIFAR, whose objects fill the frame.
        """
        folder = Path(path).expanduser()
        if crop_fraction is not None and not 0.0 < crop_fraction <= 1.0:
            raise InvalidParameterError(f"crop_fraction must be in (0, 1], got {crop_fraction!r}")
        if (folder / "lookalike.toml").exists():
            if exist_ok:
                lib = cls.open(folder, backbone=backbone, weights=weights, precision=precision)
                lib.check_crop_fraction(crop_fraction)
                return lib
            raise LibraryExistsError(f"{folder}: a library already exists here")
        if folder.exists() and any(folder.iterdir()):
            raise LibraryExistsError(f"{folder}: folder exists and is not empty; choose a new path")
        from lookalike.embed.precision import resolve_precision
        from lookalike.embed.registry import load_backbone

        chosen = resolve_precision(backbone, precision)
        model = load_backbone(backbone, weights=weights)
        spec = model.spec
        record = EmbedRecord(
            backbone=spec.name,
            weights_sha256=model.weights_sha256,
            weights_source=spec.weights_source,
            dim=spec.dim,
            image_size=spec.image_size,
            crop_fraction=spec.crop_fraction if crop_fraction is None else float(crop_fraction),
            normalization=spec.normalization,
            weights_path=str(Path(weights).resolve()) if weights else None,
            resize=DEFAULT_RESIZE,
            phash=DEFAULT_PHASH,
            precision=chosen,
        )
        folder.mkdir(parents=True, exist_ok=True)
        stamp = now()
        write_manifest(folder, Manifest(record, ingest or IngestConfig(), stamp, stamp))
        return cls(folder, read_manifest(folder), readonly=False, weights=str(weights) if weights else None)

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        backbone: str | None = None,
        weights: str | Path | None = None,
        readonly: bool = False,
        precision: str | None = None,
    ) -> Library:
        """Open an existing library; ``backbone`` and ``precision`` (other than ``auto``), when
        given, must be the ones it was built with."""
        folder = Path(path).expanduser()
        if not (folder / "lookalike.toml").is_file():
            raise LibraryNotFoundError(
                f"{folder}: no library here (create one with `lookalike index FOLDER --library {folder}`)"
            )
        manifest = read_manifest(folder)
        if backbone is not None and backbone != manifest.embed.backbone:
            raise BackboneMismatchError(
                f"{folder} was built with backbone '{manifest.embed.backbone}', not '{backbone}'; "
                "a library holds vectors of one backbone only: use another --library path"
            )
        _check_same_precision(folder, manifest.embed.precision, precision)
        return cls(folder, manifest, readonly=readonly, weights=str(weights) if weights else None)

    def check_crop_fraction(self, crop_fraction: float | None) -> None:
        """Refuse (and close this library) a requested centre crop other than the one it was built
        with; None accepts any."""
        built = self.manifest.embed.crop_fraction
        if crop_fraction is not None and abs(crop_fraction - built) > 1e-9:
            self.close()
            raise InvalidParameterError(
                f"{self.folder} was built with crop_fraction {built:g}, not {crop_fraction:g}; its vectors "
                "would not compare with new ones: use another --library path"
            )

    def close(self) -> None:
        self.catalog.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Library:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- building -----------------------------------------------------------------------------
    def add(
        self,
        paths: list[Path | str] | None = None,
        *,
        labels: str = "none",
        extract: ExtractConfig | None = None,
        progress: Progress | None = None,
    ) -> IndexReport:
        """Scan ``paths`` (default: every folder scanned before), then embed what is new.

        ``labels="folder"`` takes each file's first-level subfolder name as its label.
        Re-running is incremental: unchanged files are not read again, vanished ones dropped.
        """
        self._require_writable()
        if labels not in LABEL_MODES:
            raise InvalidParameterError(f"labels must be one of {LABEL_MODES}, got {labels!r}")
        roots = self._roots(paths, labels)
        progress = progress or NoProgress()
        config = extract or ExtractConfig()
        progress.phase("scanning", None, unit="files")
        with ThreadPoolExecutor(1, thread_name_prefix="load") as pool:
            loading = pool.submit(self._prepare_embedding, config.runtime_threads())  # during the scan
            sync = sync_roots(self.catalog, roots, self.manifest.ingest, progress.advance)
            backbone = loading.result()  # None: an int8 library calibrates on its first images
        return self._embed_pending(sync, backbone, config, progress)

    index = add

    def remove(self, paths: list[Path | str]) -> int:
        """Forget files (or whole folders) without touching them on disk; returns files removed."""
        self._require_writable()
        removed = remove_paths(self.catalog, [Path(os.path.abspath(Path(p).expanduser())) for p in paths])
        self.compact()
        self._update_derived()
        return removed

    def check_ingest(self, settings: dict[str, Any]) -> None:
        """Refuse ingest settings that differ from the ones the library was created with."""
        current = self.manifest.ingest
        for name, value in settings.items():
            if getattr(current, name) != value:
                raise InvalidParameterError(
                    f"{self.folder} was created with {name}={getattr(current, name)!r}; ingest settings "
                    f"are fixed per library (got {value!r}): create a new library to change them"
                )

    def _roots(self, paths: list[Path | str] | None, labels: str) -> list[tuple[Path, str]]:
        if not paths:
            known = self.catalog.roots()
            if not known:
                raise InvalidParameterError("no folders to index: give at least one folder")
            return known
        roots = []
        for p in paths:
            root = Path(os.path.abspath(Path(p).expanduser()))
            if not os.path.lexists(root):
                raise InvalidParameterError(f"{root}: no such file or folder")
            roots.append((root, labels))
        return roots

    def _prepare_embedding(self, threads: int) -> Any:
        """The loaded backbone, with OpenCV (imported lazily by decoding) imported too: run
        while the scan reads files, so embedding starts without a pause."""
        import cv2  # noqa: F401

        embed = self.manifest.embed
        if embed.precision == "int8" and embed.calibration_sha256 is None:
            return None
        return self.backbone(threads=threads)

    def _embed_pending(self, sync: SyncReport, backbone: Any, config: ExtractConfig, progress: Progress) -> IndexReport:
        from lookalike.embed.extract import extract
        from lookalike.index.phash import phash
        from lookalike.io.decode import load_rgb, to_model_input

        embed = self.manifest.embed
        max_pixels = self.manifest.ingest.max_pixels
        short_side = round(embed.image_size / embed.crop_fraction)

        def decode(image: PendingImage) -> tuple[np.ndarray, int]:
            upright = load_rgb(image.path, max_pixels=max_pixels, min_side=short_side)
            array = np.asarray(upright)  # once, for both
            pixels = to_model_input(array, embed.image_size, embed.crop_fraction, resize=embed.resize)
            return pixels, phash(array, embed.phash)

        if backbone is None:
            backbone = self._calibrate(decode, config.runtime_threads())
        report = extract(self.catalog, self.vectors, decode, backbone.embed_with_classes, config, progress)
        self.compact()
        self._update_derived()
        self._touch_manifest()
        return IndexReport(sync, report.embedded, dict(report.skipped), report.seconds)

    def backbone(self, threads: int = 0) -> Any:
        """The loaded backbone, checked against the weights the library was built with."""
        if self._backbone is None or self._backbone_threads != threads:
            from lookalike.embed.registry import load_backbone

            embed = self.manifest.embed
            weights = self._weights or embed.weights_path
            calibration = None
            if embed.precision == "int8":
                from lookalike.embed.calibration import load_calibration

                calibration = load_calibration(self.folder, embed.calibration_sha256)
            model = load_backbone(
                embed.backbone, weights=weights, threads=threads, precision=embed.precision, calibration=calibration
            )
            if model.weights_sha256 != embed.weights_sha256:
                raise BackboneMismatchError(
                    f"{self.folder} was built with {embed.backbone} weights sha256 "
                    f"{embed.weights_sha256[:12]}…, the weights found have {model.weights_sha256[:12]}…"
                )
            self._backbone, self._backbone_threads = model, threads
        return self._backbone

    def _calibrate(self, decode: Any, threads: int) -> Any:
        """Store the first pending images as this int8 library's calibration; its backbone."""
        from lookalike.embed.calibration import draw_calibration, save_calibration

        embed = self.manifest.embed
        images = draw_calibration(self.catalog.pending_images(), decode, embed.image_size)
        fingerprint = save_calibration(self.folder, images)
        self.manifest = replace(self.manifest, embed=replace(embed, calibration_sha256=fingerprint))
        self._touch_manifest()
        return self.backbone(threads=threads)

    # -- clustering (lookalike.cluster.run) --------------------------------------------------------
    def cluster(self, config: ClusterConfig | None = None, *, progress: Progress | None = None) -> ClusterRun:
        """Cluster the reduced vectors with a ``ClusterConfig`` (default: K-Means, K chosen) and
        store the run; returns it as a ``lookalike.cluster.run.ClusterRun``."""
        from lookalike.cluster.run import run_clustering
        from lookalike.config import ClusterConfig

        self._require_writable()
        return run_clustering(self, config or ClusterConfig(), progress)

    def cluster_runs(self) -> list[RunInfo]:
        """Every stored clustering run (``RunInfo``: settings, metrics, ``stale``), oldest first."""
        from lookalike.cluster.run import list_runs

        return list_runs(self)

    def cluster_run(self, run_id: int | None = None) -> ClusterRun:
        """A stored run (default: the latest) applied to the images held now (``ClusterRun``)."""
        from lookalike.cluster.run import read_run

        return read_run(self, run_id)

    # -- reading --------------------------------------------------------------------------------
    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(image ids (n,) int64, raw embeddings (n, dim) float32) of every embedded image.

        Memory-mapped when the rows are contiguous; otherwise the live rows are gathered.
        """
        with self.catalog.snapshot():
            ids, rows = self.catalog.embedded_rows()
            generation, committed = self._raw_state()
        matrix = self.vectors.read(generation, committed)
        rows_array = np.asarray(rows, dtype=np.int64)
        if rows_array.size == committed and (committed == 0 or rows_array[-1] == committed - 1):
            return np.asarray(ids, dtype=np.int64), matrix
        return np.asarray(ids, dtype=np.int64), np.asarray(matrix[rows_array])

    def _raw_state(self) -> tuple[int, int]:
        """(generation, committed rows) of the raw vector file."""
        generation = int(self.catalog.get_meta("raw_generation", "0") or 0)
        return generation, int(self.catalog.get_meta("raw_rows", "0") or 0)

    def compact(self, min_hole_fraction: float = 0.25) -> bool:
        """Rewrite the raw vectors without the rows of removed images, if holes exceed the fraction.

        The new rows go to the next generation's file; the catalog switches to it in one
        transaction. The old file is deleted when a writer next opens the library, so readers
        that mapped it keep working. Returns whether it compacted.
        """
        self._require_writable()
        with self.catalog.snapshot():
            ids, rows = self.catalog.embedded_rows()
            generation, committed = self._raw_state()
        holes = committed - len(rows)
        if holes == 0 or holes < min_hole_fraction * committed:
            return False
        new_generation = self.vectors.compact(generation, np.asarray(rows, dtype=np.int64))
        with self.catalog.transaction() as db:
            # two steps, so the UNIQUE(row) constraint never sees two images on one row
            db.executemany("UPDATE images SET row = ? WHERE id = ?", [(-1 - i, d) for i, d in enumerate(ids)])
            db.execute("UPDATE images SET row = -1 - row WHERE row < 0")
            self.catalog.set_meta(db, "raw_generation", new_generation)
            self.catalog.set_meta(db, "raw_rows", len(ids))
        return True

    # -- reduction ----------------------------------------------------------------------------
    def reduce_config(self) -> ReduceConfig | None:
        """The settings the stored reducer was fitted with (None before the first fit)."""
        section = self.manifest.sections.get("reduce")
        if section is None:
            return None
        return from_dict(ReduceConfig, section, where=f"{self.folder}/lookalike.toml [reduce]")

    def reducer(self) -> Any:
        """The stored L2 + PCA reducer (``lookalike.reduce.Reducer``), or None before ``reduce``."""
        return derived.load_reducer(self.folder)

    def reduce(self, config: ReduceConfig | None = None, *, refit: bool = False) -> Any:
        """Fit the reducer (first time, or ``refit``) and store every image's reduced vector.

        Without ``refit`` an existing reducer is kept and only applied to the current
        embeddings; asking for different settings then is an error that names ``--refit``.
        Refitting makes cluster runs and indexes built on the old reducer stale.
        """
        self._require_writable()
        stored = self.reduce_config()
        if config is not None and stored is not None and config != stored and not refit:
            raise InvalidParameterError(
                f"{self.folder}: PCA was fitted with {to_dict(stored)}; to use {to_dict(config)} "
                "refit it (`lookalike reduce --refit`), which makes clusters and indexes stale"
            )
        ids, embeddings = self.embeddings()
        reducer = None if refit else self.reducer()
        if reducer is None:
            config = config or stored or ReduceConfig()
            reducer = derived.fit_reducer(self.folder, embeddings, config)
            fitted = {"fingerprint": reducer.fingerprint, "dim": int(reducer.n_components_),
                      "fitted_on": int(embeddings.shape[0]), "fitted": now()}
            self.manifest = replace(
                self.manifest,
                sections={**self.manifest.sections, "reduce": to_dict(config), "reducer": fitted},
            )
            self._touch_manifest()
        self._store_reduced(reducer, ids, embeddings)
        return reducer

    def reduced(self) -> derived.ReducedVectors:
        """Every embedded image's reduced vector, brought up to date with the stored reducer.

        Fits the default reducer on first use (writable libraries). A read-only library whose
        stored reduced vectors are out of date gets them computed in memory.
        """
        reducer = self.reducer()
        if reducer is None:
            if self.readonly:
                raise InvalidParameterError(f"{self.folder}: no PCA yet; run `lookalike reduce` first")
            reducer = self.reduce()
        with self.catalog.snapshot():
            ids, _ = self.catalog.embedded_rows()
            key = derived.reduced_key(reducer.fingerprint, derived.embedding_state(np.asarray(ids), *self._raw_state()))
            committed = self.catalog.get_meta("reduced_key")
        if committed == key:
            stored_ids, vectors = derived.read_reduced(self.folder, key)
            return derived.ReducedVectors(stored_ids, vectors, reducer.fingerprint)
        ids_now, embeddings = self.embeddings()
        if self.readonly:
            return derived.ReducedVectors(ids_now, derived.transform_all(reducer, embeddings), reducer.fingerprint)
        return self._store_reduced(reducer, ids_now, embeddings)

    def _store_reduced(self, reducer: Any, ids: np.ndarray, embeddings: np.ndarray) -> derived.ReducedVectors:
        vectors = derived.transform_all(reducer, embeddings)
        key = derived.reduced_key(reducer.fingerprint, derived.embedding_state(ids, *self._raw_state()))
        derived.write_reduced(self.folder, key, ids, vectors)
        with self.catalog.transaction() as db:
            self.catalog.set_meta(db, "reduced_key", key)
        return derived.ReducedVectors(ids, vectors, reducer.fingerprint)

    def status(self) -> LibraryStatus:
        """Counts, backbone and skipped files grouped by reason."""
        return read_status(self.catalog, self.manifest, self.folder)

    # -- vector search (lookalike.search.searcher) -------------------------------------------------------
    def vector_index(self, kind: str = "auto", *, rebuild: bool = False) -> LiveIndex:
        """The ``kind`` vector index over the current images (a ``lookalike.index.live.LiveIndex``).

        A writable library first brings its stored index up to date (built the first time,
        then only the added and removed images); a read-only one loads the committed file and
        overlays what the catalog changed since (see ``lookalike.search.library_index``).
        """
        from lookalike.search.library_index import open_index, update_index

        if rebuild:
            update_index(self, kind, rebuild=True)
        return open_index(self, kind)

    def search(self, query: Any, k: int = 10, *, kind: str = "auto", **options: Any) -> SearchResult:
        """The ``k`` images nearest to ``query`` (file path, bytes, image id, or a list of them,
        averaged): a ``lookalike.search.searcher.SearchResult``; options as ``Searcher.search``."""
        from lookalike.search.searcher import Searcher

        return Searcher(self, kind).search(query, k, **options)

    def duplicates(self, **options: Any) -> list[FileGroup]:
        """Groups of duplicate files (exact, near, semantic): ``lookalike.search.duplicates``."""
        from lookalike.search.duplicates import find_library_duplicates

        return find_library_duplicates(self, **options)

    # -- helpers --------------------------------------------------------------------------------
    def _update_derived(self) -> None:
        """Bring stored vector indexes up to date after images were added or removed.

        Only the difference is applied (no rebuild); libraries without an index skip this.
        """
        from lookalike.search.library_index import stored_kinds, update_stored_indexes

        if stored_kinds(self):
            update_stored_indexes(self)

    def _require_writable(self) -> None:
        if self.readonly:
            raise InvalidParameterError(f"{self.folder} was opened read-only")

    def _touch_manifest(self) -> None:
        self.manifest = self.manifest.touched()
        write_manifest(self.folder, self.manifest)


def _lock(folder: Path) -> int:
    """Take the library's writer lock (released by the OS if the process dies)."""
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LibraryLockedError(
            f"{folder}: another lookalike process is writing to this library; wait for it to finish"
        ) from None
    return fd


def _check_same_precision(folder: Path, built: str, requested: str | None) -> None:
    """Refuse a requested precision other than the library's (None and ``auto`` accept any)."""
    if requested in (None, "auto", built):
        return
    from lookalike.embed.precision import CHOICES
    from lookalike.errors import PrecisionError

    if requested not in CHOICES:
        raise InvalidParameterError(f"precision must be one of {', '.join(CHOICES)}, got {requested!r}")
    raise PrecisionError(
        f"{folder} was built at precision {built}, not {requested}; its vectors would not compare with "
        f"new ones: reopen it with --precision {built} (or auto), or use another --library path"
    )

"""Indexing a library: create it for a backbone, sync its folders, embed what is new.

``add`` is the whole local run: the scan (``ingest.sync``) and the backbone load overlap, then
``embed.extract`` decodes and embeds every pending image and commits it. Updating the stored
vector indexes afterwards belongs to the search stage (the facade calls it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.config import EmbedConfig, ExtractConfig, IngestConfig
from lookalike.embed.base import Backbone
from lookalike.embed.query import checked_backbone, library_pixels
from lookalike.errors import BackboneMismatchError, InvalidParameterError, LibraryExistsError
from lookalike.ingest.sync import LABEL_MODES, SyncReport, remove_paths, sync_roots
from lookalike.progress import NoProgress, Progress
from lookalike.store.catalog import PendingImage
from lookalike.store.library_store import LibraryStore
from lookalike.store.manifest import MANIFEST_NAME, EmbedRecord, Manifest, now

PathLike = Path | str


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


def create_store(
    folder: Path,
    *,
    backbone: str = EmbedConfig.backbone,
    weights: PathLike | None = None,
    ingest: IngestConfig | None = None,
    crop_fraction: float | None = None,
    precision: str = "fp32",
) -> LibraryStore:
    """Create a new library folder built with ``backbone`` at ``precision`` (``auto`` resolved
    here: see :mod:`lookalike.embed.precision`); the folder must be new or empty."""
    from lookalike.embed.phash import DEFAULT_PHASH
    from lookalike.embed.precision import resolve_precision
    from lookalike.embed.registry import load_backbone
    from lookalike.io.decode import DEFAULT_RESIZE

    check_crop_fraction_value(crop_fraction)
    if (folder / MANIFEST_NAME).exists():
        raise LibraryExistsError(f"{folder}: a library already exists here")
    if folder.exists() and any(folder.iterdir()):
        raise LibraryExistsError(f"{folder}: folder exists and is not empty; choose a new path")
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
    stamp = now()
    manifest = Manifest(record, ingest or IngestConfig(), stamp, stamp)
    return LibraryStore.create(folder, manifest, weights=str(weights) if weights else None)


def open_store(
    folder: Path,
    *,
    backbone: str | None = None,
    weights: PathLike | None = None,
    readonly: bool = False,
    precision: str | None = None,
) -> LibraryStore:
    """Open an existing library; ``backbone`` and ``precision`` (other than ``auto``), when
    given, must be the ones it was built with."""
    store = LibraryStore.open(folder, readonly=readonly, weights=str(weights) if weights else None)
    try:
        check_precision_matches(folder, store.manifest.embed.precision, precision)
    except InvalidParameterError:
        store.close()
        raise
    built = store.manifest.embed.backbone
    if backbone is not None and backbone != built:
        store.close()
        raise BackboneMismatchError(
            f"{folder} was built with backbone '{built}', not '{backbone}'; "
            "a library holds vectors of one backbone only: use another --library path"
        )
    return store


def open_or_create_store(
    folder: Path, *, backbone: str, weights: PathLike | None = None, crop_fraction: float | None = None
) -> LibraryStore:
    """The library at ``folder`` built with ``backbone`` and ``crop_fraction``, created when missing."""
    if not (folder / MANIFEST_NAME).exists():
        return create_store(folder, backbone=backbone, weights=weights, crop_fraction=crop_fraction)
    store = open_store(folder, backbone=backbone, weights=weights)
    try:
        check_crop_fraction(store, crop_fraction)
    except InvalidParameterError:
        store.close()
        raise
    return store


def check_precision_matches(folder: Path, built: str, requested: str | None) -> None:
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


def check_crop_fraction_value(crop_fraction: float | None) -> None:
    if crop_fraction is not None and not 0.0 < crop_fraction <= 1.0:
        raise InvalidParameterError(f"crop_fraction must be in (0, 1], got {crop_fraction!r}")


def check_crop_fraction(store: LibraryStore, crop_fraction: float | None) -> None:
    """Refuse a requested centre crop other than the one the library was built with; None accepts any."""
    built = store.manifest.embed.crop_fraction
    if crop_fraction is not None and abs(crop_fraction - built) > 1e-9:
        raise InvalidParameterError(
            f"{store.folder} was built with crop_fraction {built:g}, not {crop_fraction:g}; its vectors "
            "would not compare with new ones: use another --library path"
        )


def check_ingest(store: LibraryStore, settings: dict[str, object]) -> None:
    """Refuse ingest settings that differ from the ones the library was created with."""
    current = store.manifest.ingest
    for name, value in settings.items():
        if getattr(current, name) != value:
            raise InvalidParameterError(
                f"{store.folder} was created with {name}={getattr(current, name)!r}; ingest settings "
                f"are fixed per library (got {value!r}): create a new library to change them"
            )


def add(
    store: LibraryStore,
    paths: list[PathLike] | None = None,
    *,
    labels: str = "none",
    extract: ExtractConfig | None = None,
    progress: Progress | None = None,
) -> IndexReport:
    """Scan ``paths`` (default: every folder scanned before), then embed what is new."""
    store.require_writable()
    if labels not in LABEL_MODES:
        raise InvalidParameterError(f"labels must be one of {LABEL_MODES}, got {labels!r}")
    roots = _roots(store, paths, labels)
    progress = progress or NoProgress()
    config = extract or ExtractConfig()
    progress.phase("scanning", None, unit="files")
    with ThreadPoolExecutor(1, thread_name_prefix="load") as pool:
        loading = pool.submit(_prepare_embedding, store, config.runtime_threads())  # during the scan
        sync = sync_roots(store.catalog, roots, store.manifest.ingest, progress.advance)
        backbone = loading.result()  # None: an int8 library calibrates on its first images
    return _embed_pending(store, sync, backbone, config, progress)


def remove(store: LibraryStore, paths: list[PathLike]) -> int:
    """Forget files (or whole folders) without touching them on disk; returns files removed."""
    store.require_writable()
    removed = remove_paths(store.catalog, [Path(os.path.abspath(Path(p).expanduser())) for p in paths])
    store.compact()
    return removed


def _roots(store: LibraryStore, paths: list[PathLike] | None, labels: str) -> list[tuple[Path, str]]:
    if not paths:
        known = store.catalog.roots()
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


def _prepare_embedding(store: LibraryStore, threads: int) -> Backbone | None:
    """The loaded backbone, with OpenCV (imported lazily by decoding) imported too: run
    while the scan reads files, so embedding starts without a pause."""
    import cv2  # noqa: F401

    embed = store.manifest.embed
    if embed.precision == "int8" and embed.calibration_sha256 is None:
        return None
    return checked_backbone(store, threads=threads)


def _embed_pending(
    store: LibraryStore, sync: SyncReport, backbone: Backbone | None, config: ExtractConfig, progress: Progress
) -> IndexReport:
    from lookalike.embed.extract import extract
    from lookalike.embed.phash import phash

    manifest, method = store.manifest, store.manifest.embed.phash

    def decode(image: PendingImage) -> tuple[np.ndarray, int]:
        pixels, upright = library_pixels(manifest, image.path)
        return pixels, phash(upright, method)

    if backbone is None:
        backbone = _calibrate(store, decode, config.runtime_threads())
    report = extract(store.catalog, store.vectors, decode, backbone.embed_with_classes, config, progress)
    store.compact()
    store.touch_manifest()
    return IndexReport(sync, report.embedded, dict(report.skipped), report.seconds)


def _calibrate(store: LibraryStore, decode: Callable[[PendingImage], tuple[np.ndarray, int]], threads: int) -> Backbone:
    """Store the first pending images as this int8 library's calibration; its backbone."""
    from dataclasses import replace

    from lookalike.embed.calibration import draw_calibration, save_calibration

    embed = store.manifest.embed
    images = draw_calibration(store.catalog.pending_images(), decode, embed.image_size)
    fingerprint = save_calibration(store.folder, images)
    store.manifest = replace(store.manifest, embed=replace(embed, calibration_sha256=fingerprint))
    store.touch_manifest()
    return checked_backbone(store, threads=threads)

"""Indexing a library: create it for a backbone, sync its folders, embed what is new.

``add`` is the whole local run: the scan (``ingest.sync``) and the backbone load overlap, then
``embed.extract`` decodes and embeds every pending image and commits it. Updating the stored
vector indexes afterwards belongs to the search stage (the facade calls it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.config import EmbedConfig, ExtractConfig, IngestConfig
from lookalike.embed.base import Backbone
from lookalike.embed.query import checked_backbone, pending_decoder
from lookalike.errors import BackboneMismatchError, InvalidParameterError, LibraryExistsError
from lookalike.ingest.sync import LABEL_MODES, SyncReport, remove_paths, sync_roots
from lookalike.progress import NoProgress, Progress
from lookalike.store.catalog import PendingImage
from lookalike.store.library_store import LibraryStore
from lookalike.store.manifest import MANIFEST_NAME, EmbedRecord, Manifest, now

if TYPE_CHECKING:
    from lookalike.embed.distributed import RayConfig

PathLike = Path | str


@dataclass(frozen=True)
class IndexReport:
    """The outcome of one ``index`` / ``add`` run."""

    sync: SyncReport
    embedded: int
    skipped_while_embedding: dict[str, int]
    seconds_embedding: float
    by_worker: dict[str, int] = field(default_factory=dict)
    """Images embedded per Ray node id (empty for a local run)."""

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds_embedding if self.seconds_embedding > 0 else 0.0


def create_store(
    folder: Path,
    *,
    backbone: str = EmbedConfig.backbone,
    weights: PathLike | None = None,
    ingest: IngestConfig | None = None,
    crop_fraction: float | str | None = None,
    augment: str | None = None,
    precision: str = "fp32",
) -> LibraryStore:
    """Create a new library folder built with ``backbone`` at ``precision`` (the folder must be new or empty).

    ``augment``: test-time views averaged into every vector (``lookalike.embed.augment``);
    ``crop_fraction="auto"``: chosen from the scanned image sizes at the first :func:`add`
    (``lookalike.embed.crop``); ``precision="auto"`` is resolved here (``lookalike.embed.precision``).
    """
    from lookalike.embed.augment import DEFAULT_AUGMENT, check_augment
    from lookalike.embed.crop import DEFAULT_CROP
    from lookalike.embed.phash import DEFAULT_PHASH
    from lookalike.embed.precision import resolve_precision
    from lookalike.embed.registry import load_backbone
    from lookalike.io.decode import DEFAULT_RESIZE

    check_crop_fraction_value(crop_fraction)
    check_augment(augment or DEFAULT_AUGMENT)
    crop_fraction = DEFAULT_CROP if crop_fraction is None else crop_fraction
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
        crop_fraction=spec.crop_fraction if crop_fraction in (None, "auto") else float(crop_fraction),
        normalization=spec.normalization,
        weights_path=str(Path(weights).resolve()) if weights else None,
        resize=DEFAULT_RESIZE,
        phash=DEFAULT_PHASH,
        augment=augment or DEFAULT_AUGMENT,
        precision=chosen,
    )
    stamp = now()
    sections = {"crop": {"mode": "auto", "backbone_crop": spec.crop_fraction}} if crop_fraction == "auto" else {}
    manifest = Manifest(record, ingest or IngestConfig(), stamp, stamp, sections)
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
    folder: Path, *, backbone: str, weights: PathLike | None = None, crop_fraction: float | str | None = None,
    augment: str | None = None,
) -> LibraryStore:
    """The library at ``folder`` built with ``backbone``, ``crop_fraction`` and ``augment``, created when missing."""
    if not (folder / MANIFEST_NAME).exists():
        return create_store(folder, backbone=backbone, weights=weights, crop_fraction=crop_fraction, augment=augment)
    store = open_store(folder, backbone=backbone, weights=weights)
    try:
        check_crop_fraction(store, crop_fraction)
        check_augment(store, augment)
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


def check_crop_fraction_value(crop_fraction: float | str | None) -> None:
    from lookalike.embed.crop import check_crop_fraction as check

    check(crop_fraction)


def check_crop_fraction(store: LibraryStore, crop_fraction: float | str | None) -> None:
    """Refuse a requested centre crop other than the one the library was built with; None and
    ``"auto"`` (resolved once, when the library is first filled) accept any."""
    built = store.manifest.embed.crop_fraction
    if crop_fraction is None or isinstance(crop_fraction, str):
        return
    if abs(crop_fraction - built) > 1e-9:
        raise InvalidParameterError(
            f"{store.folder} was built with crop_fraction {built:g}, not {crop_fraction:g}; its vectors "
            "would not compare with new ones: use another --library path"
        )


def check_augment(store: LibraryStore, augment: str | None) -> None:
    """Refuse test-time views other than the ones the library was built with; None accepts any."""
    built = store.manifest.embed.augment
    if augment is not None and augment != built:
        raise InvalidParameterError(
            f"{store.folder} was built with augment {built!r}, not {augment!r}; its vectors would not "
            "compare with new ones: use another --library path"
        )


def resolve_auto_crop(store: LibraryStore) -> None:
    """Fix a ``crop_fraction="auto"`` library's crop from the scanned sizes, before any embedding."""
    from dataclasses import replace

    from lookalike.embed.crop import auto_crop

    section = store.manifest.sections.get("crop") or {}
    if section.get("mode") != "auto" or "chosen" in section:
        return
    from lookalike.store.images import short_sides

    chosen, why = auto_crop(short_sides(store.catalog), store.manifest.embed.image_size,
                            float(section.get("backbone_crop", store.manifest.embed.crop_fraction)))
    store.manifest = replace(store.manifest, embed=replace(store.manifest.embed, crop_fraction=chosen))
    store.set_sections(crop={**section, **why, "chosen": chosen})


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
    ray: str | RayConfig | None = None,
) -> IndexReport:
    """Scan ``paths`` (default: every folder scanned before), then embed what is new, here or,
    with ``ray`` (an address or a ``RayConfig``), on a Ray cluster (``embed.distributed``)."""
    store.require_writable()
    if labels not in LABEL_MODES:
        raise InvalidParameterError(f"labels must be one of {LABEL_MODES}, got {labels!r}")
    if ray is not None:
        from lookalike.embed.distributed import require_ray

        require_ray()
    roots = _roots(store, paths, labels)
    progress = progress or NoProgress()
    config = extract or ExtractConfig()
    progress.phase("scanning", None, unit="files")
    with ThreadPoolExecutor(1, thread_name_prefix="load") as pool:
        loading = pool.submit(_prepare_embedding, store, config.runtime_threads())  # during the scan
        sync = sync_roots(store.catalog, roots, store.manifest.ingest, progress.advance)
        backbone = loading.result()  # None: an int8 library calibrates on its first images
    resolve_auto_crop(store)
    return _embed_pending(store, sync, backbone, config, progress, ray)


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
    store: LibraryStore, sync: SyncReport, backbone: Backbone | None, config: ExtractConfig, progress: Progress,
    ray: str | RayConfig | None,
) -> IndexReport:
    decode = pending_decoder(store.manifest)
    if backbone is None:
        backbone = _calibrate(store, decode, config.runtime_threads())
    if ray is not None:
        from lookalike.embed.distributed import RayConfig, extract_on_ray

        settings = ray if isinstance(ray, RayConfig) else RayConfig(address=ray)
        report = extract_on_ray(store.catalog, store.vectors, backbone, store.manifest, config, settings, progress)
    else:
        from lookalike.embed.extract import extract

        report = extract(store.catalog, store.vectors, decode, backbone.embed_with_classes, config, progress)
    store.compact()
    store.touch_manifest()
    return IndexReport(sync, report.embedded, dict(report.skipped), report.seconds, dict(report.by_worker))


def _calibrate(store: LibraryStore, decode: Callable[[PendingImage], tuple[np.ndarray, int, int]], threads: int) -> Backbone:
    """Store the first pending images as this int8 library's calibration; its backbone."""
    from dataclasses import replace

    from lookalike.embed.calibration import draw_calibration, save_calibration

    embed = store.manifest.embed
    images = draw_calibration(store.catalog.pending_images(), decode, embed.image_size)
    fingerprint = save_calibration(store.folder, images)
    store.manifest = replace(store.manifest, embed=replace(embed, calibration_sha256=fingerprint))
    store.touch_manifest()
    return checked_backbone(store, threads=threads)

"""``lookalike compare``: one labelled image set, one library per backbone, one table of numbers.

Runner (reader → per-backbone builder → measures → writer):

1. the dataset subset is exported once to ``WORK/images/<class>/`` (reused while the export
   record says the same dataset, split, subset and seed);
2. per backbone, ``WORK/<backbone>.lookalike`` is created or opened and indexed with labels from
   the class folders. Indexing is incremental, so an existing complete library embeds nothing
   and a killed compare resumes where it stopped;
3. the library is reduced (L2 + PCA, refitted only when the settings or the images changed),
   clustered by K-Means with K = number of classes (a matching stored run is reused), evaluated
   (leave-one-out P@k / mAP@k, silhouette and NMI of the K-Means run, RBF-SVM accuracy on a
   seeded stratified split) and given an exact FAISS index, whose file size is reported.

The raw-pixels baseline is always included. A backbone that cannot be built (weights missing)
gets a row with its error; the others still run. What compare learns about a library that the
library itself does not keep (embedding speed when it was built, the image set the PCA was fitted
on, SVM results per reducer) is kept in ``<library>/reports/compare.json``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from lookalike.config import AutoencoderConfig
from lookalike.embed.indexing import add, open_or_create_store
from lookalike.errors import InvalidParameterError, LookalikeError, UnknownBackboneError
from lookalike.evaluate.compare.measure import BackboneResult, embedded_count, measure_library
from lookalike.evaluate.compare.settings import CompareConfig, describe_subset
from lookalike.progress import NoProgress, Progress
from lookalike.search.library_index import update_after_change
from lookalike.store.atomic import write_bytes
from lookalike.store.library_store import LibraryStore
from lookalike.store.status import read_status

BASELINE = "pixels"
IMAGES_DIR = "images"
STATE_FILE = Path("reports") / "compare.json"
MIN_PER_CLASS = 4
"""Fewest images per class: a 75/25 split then keeps 3 to train and 1 to test."""


@dataclass(frozen=True)
class CompareReport:
    """Everything one compare run measured, JSON-ready through :meth:`to_dict`."""

    config: CompareConfig
    work: Path
    images: Path
    classes: dict[str, int]
    rows: list[BackboneResult]
    versions: dict[str, str]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.config).items()}
        return {
            "config": config, "work": str(self.work), "images": str(self.images),
            "n_images": sum(self.classes.values()), "classes": self.classes,
            "rows": [asdict(row) for row in self.rows], "versions": self.versions,
            "seconds": round(self.seconds, 1),
            "definitions": DEFINITIONS,
        }  # fmt: skip


DEFINITIONS = {
    "precision_at_k": "leave-one-out: every image queries all others (exact search on the reduced "
    "vectors); share of the k nearest with the query's label",
    "map_at_k": "mean over queries of AP@k = sum_j P@j * hit_j / min(k, other images of the label)",
    "nmi": "normalised mutual information of K-Means (K = number of classes) against the labels",
    "silhouette": "silhouette of that K-Means run, Euclidean on the reduced vectors (sampled above 10,000)",
    "svm_accuracy": "RBF SVM (lookalike.classify.estimator, calibrated) on a seeded stratified split",
    "images_per_second": "embedding throughput (decode + model) of the indexing run that built the library",
    "index_bytes": "size of the library's exact FAISS index file (reduced vectors + ids)",
}


# -- the runner -------------------------------------------------------------------------------------
def run_compare(
    config: CompareConfig,
    work: Path,
    *,
    progress: Progress | None = None,
    on_row: Callable[[BackboneResult], None] | None = None,
) -> CompareReport:
    """Build (or reuse) one library per backbone under ``work`` and measure each."""
    started = time.perf_counter()
    names = backbone_names(config)
    work = Path(work).expanduser()
    progress = progress or NoProgress()
    images = work / IMAGES_DIR
    classes = prepare_images(config, images, progress)
    rows: list[BackboneResult] = []
    for name in names:
        rows.append(compare_backbone(name, config, work, progress))
        if on_row:
            on_row(rows[-1])
    if config.autoencoder:
        rows.append(_autoencoder_row(config, work, progress))
        if on_row:
            on_row(rows[-1])
    return CompareReport(config, work, images, classes, rows, versions(), time.perf_counter() - started)


def backbone_names(config: CompareConfig) -> list[str]:
    """The backbones to compare, baseline last; unknown names are refused listing the known ones.

    A known backbone that cannot be loaded (e.g. ``autoencoder:PATH`` of a missing file) is not
    an error here: its row reports it.
    """
    from lookalike.embed.registry import get_entry

    names = list(dict.fromkeys(name.strip() for name in config.backbones if name.strip()))
    for name in names:
        try:
            get_entry(name)
        except UnknownBackboneError:
            raise
        except LookalikeError:
            pass
    return [n for n in names if n != BASELINE] + [BASELINE]


def library_folder(work: Path, backbone: str) -> Path:
    """``work/<backbone>.lookalike``; names that are not plain file names get a short hash."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", backbone).strip("-.")
    if safe != backbone or len(safe) > 40:
        safe = f"{safe[-40:].strip('-.')}-{sha256(backbone.encode()).hexdigest()[:8]}"
    return work / f"{safe}.lookalike"


# -- images ---------------------------------------------------------------------------------------
def prepare_images(config: CompareConfig, folder: Path, progress: Progress) -> dict[str, int]:
    """Export the subset to ``folder`` unless a complete export of the same subset is there.

    Returns the images per class folder; refuses subsets too small to compare on.
    """
    from lookalike.io.datasets import dataset_info, resolve_split
    from lookalike.io.datasets.export_folder import export, export_record

    split = resolve_split(dataset_info(config.dataset), config.split)
    wanted = {"dataset": config.dataset, "split": split, "first": config.first, "limit": config.limit,
              "per_class": config.per_class, "seed": config.seed}  # fmt: skip
    if config.limit is None and config.per_class is None:
        del wanted["seed"]  # it chooses nothing without --limit / --per-class
    record = export_record(folder)
    if record and record.get("complete") and all(record.get(key) == value for key, value in wanted.items()):
        counts = {str(name): int(n) for name, n in record["counts"].items()}
    else:
        counts = export(config.dataset, folder, split=split, first=config.first, limit=config.limit,
                        per_class=config.per_class, seed=config.seed, cache_dir=config.cache_dir,
                        progress=progress)  # fmt: skip
    check_classes(counts, config)
    return counts


def check_classes(counts: dict[str, int], config: CompareConfig) -> None:
    """Refuse a subset with one class, a class under :data:`MIN_PER_CLASS` or <= k images."""
    total = sum(counts.values())
    where = f"{describe_subset(config)} holds {total} image(s)"
    if len(counts) < 2:
        raise InvalidParameterError(
            f"compare needs images of at least 2 classes; {where}, all of class {sorted(counts)}: "
            "choose another subset (--first/--limit/--per-class)"
        )
    small = {name: n for name, n in counts.items() if n < MIN_PER_CLASS}
    if small:
        raise InvalidParameterError(
            f"compare needs at least {MIN_PER_CLASS} images per class (a 75/25 split keeps 3 to train, "
            f"1 to test); {where} and these classes have fewer: {small}"
        )
    if total <= config.k:
        raise InvalidParameterError(f"retrieval at k={config.k} needs more than {config.k} images; {where}")


# -- one backbone -----------------------------------------------------------------------------------
def compare_backbone(name: str, config: CompareConfig, work: Path, progress: Progress) -> BackboneResult:
    """Build or reuse ``name``'s library and measure it; errors end up in the row."""

    folder = library_folder(work, name)
    result = BackboneResult(backbone=name, library=str(folder))
    try:
        with open_or_create_store(folder, backbone=name, crop_fraction=config.crop_fraction) as store:
            state = _read_state(store.folder)
            _index(store, work / IMAGES_DIR, state, result, progress)
            _write_state(store.folder, state)  # the build's speed survives a failed or killed measure
            measure_library(store, config, state, result, progress)
            _write_state(store.folder, state)
    except LookalikeError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def _index(store: LibraryStore, images: Path, state: dict[str, Any], result: BackboneResult, progress: Progress) -> None:
    """Index ``images`` (incremental); the speed comes from this run or the one that built it."""
    started = time.perf_counter()
    report = add(store, [images], labels="folder", progress=progress)
    update_after_change(store)
    result.seconds["scan_embed"] = round(time.perf_counter() - started, 2)
    if report.embedded:
        state["build"] = {"images_per_second": round(report.images_per_second, 1), "embedded": report.embedded,
                          "seconds_embedding": round(report.seconds_embedding, 2), "when": _now()}  # fmt: skip
        result.speed_source = "this run" if report.embedded == embedded_count(store) else (
            f"this run, which embedded {report.embedded} of the images (resumed)"
        )
    elif "build" in state:
        result.speed_source = f"recorded when the library was built ({state['build']['when']})"
    else:
        result.speed_source = "n/a (library built outside compare)"
    result.images_per_second = state.get("build", {}).get("images_per_second")
    skipped = {reason: n for reason, n in read_status(store).skipped_by_reason if not reason.startswith("hidden")}
    if skipped:  # the export's hidden record file is always listed as skipped: not worth a note
        result.notes.append(f"files skipped while indexing: {skipped} (`lookalike status --files`)")
    result.dim = store.manifest.embed.dim


# -- the autoencoder ------------------------------------------------------------------------------
def _autoencoder_row(config: CompareConfig, work: Path, progress: Progress) -> BackboneResult:
    """Train an autoencoder on the images (held by the baseline's library) and compare it.

    The encoder goes to ``work/autoencoder/encoder.npz`` and is reused while it exists (delete
    the folder to train again).
    """
    from lookalike.embed.autoencoder.train import train_library

    encoder = (work / "autoencoder" / "encoder.npz").resolve()
    name = f"autoencoder:{encoder}"
    trained = 0.0
    if not encoder.is_file():
        started = time.perf_counter()
        try:
            settings = AutoencoderConfig(epochs=config.autoencoder_epochs, seed=config.seed)
            train_library(library_folder(work, BASELINE), settings, out=encoder, progress=progress)
        except LookalikeError as exc:
            return BackboneResult(name, str(library_folder(work, name)), error=f"{type(exc).__name__}: {exc}")
        trained = time.perf_counter() - started
    result = compare_backbone(name, config, work, progress)
    if trained:
        result.seconds["train_autoencoder"] = round(trained, 1)
    return result


# -- helpers ----------------------------------------------------------------------------------------
def _read_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        state = {}  # compare's own cache: unreadable means start over
    return state if isinstance(state, dict) else {}


def _write_state(folder: Path, state: dict[str, Any]) -> None:
    write_bytes(folder / STATE_FILE, (json.dumps(state, indent=1) + "\n").encode("utf-8"))


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def versions() -> dict[str, str]:
    """Versions of Python and of the packages the numbers depend on."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("lookalike", "numpy", "scikit-learn", "faiss-cpu", "onnxruntime", "torch", "pillow"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found

"""Compute every number of an evaluation report into a JSON-ready dict (no files written).

Stages (each timed): reduce (only when the library has no PCA yet), load, retrieval, K sweep,
K-Means / Ward / HDBSCAN, each classifier, PCA and t-SNE maps. Sections that need labels
(retrieval, external clustering scores, classification) say why they were skipped on an
unlabelled library. Arrays the figures need travel beside the report in :class:`Evaluation`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.cluster import KChoice
from lookalike.config import ClassifyConfig
from lookalike.errors import InvalidParameterError
from lookalike.progress import NoProgress, Progress
from lookalike.reduce.stored import stored_reducer
from lookalike.report import classification, clusters, data, projection, retrieval
from lookalike.report.settings import ReportConfig
from lookalike.store.manifest import now

if TYPE_CHECKING:
    from lookalike.store.library_store import LibraryStore

FORMAT_VERSION = 1


class Stopwatch:
    """Seconds per named stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)


@dataclass
class MapData:
    """What the 2D maps draw for the ``rows`` (m,) sampled points: coords (m, 2) per method, each
    point's label (None = unlabelled), cluster (K-Means, -1 when none) and file path."""

    rows: np.ndarray
    coords: dict[str, np.ndarray]
    labels: np.ndarray
    clusters: np.ndarray
    paths: list[str]


@dataclass
class Evaluation:
    """The report (JSON-ready), the K sweep, the map data, and each clustering method's
    ``assignments`` (rows of the library's reduced vectors (m,), cluster labels (m,));
    ``stopwatch`` keeps the timings."""

    report: dict[str, Any]
    sweep: KChoice | None
    maps: MapData
    assignments: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    stopwatch: Stopwatch = field(default_factory=Stopwatch)


def collect(store: LibraryStore, config: ReportConfig | None = None, progress: Progress | None = None) -> Evaluation:
    """Evaluate ``store`` (fitting its PCA first when it has none): every number of the report."""
    config = config or ReportConfig()
    progress = progress or NoProgress()
    watch, notes = Stopwatch(), []
    data.check_not_empty(store)
    if stored_reducer(store) is None:
        with watch.stage("reduce"):
            data.ensure_reducer(store)
        notes.append("the library had no PCA yet: the default one was fitted and stored (`lookalike reduce`)")
    progress.phase("loading vectors", None)
    with watch.stage("load"):
        lib_data = data.load_data(store)
    report: dict[str, Any] = {
        "format_version": FORMAT_VERSION, "generated": now(), "library": data.library_info(store, lib_data),
        "sizes": _sizes(store, lib_data), "parameters": _parameters(config), "seeds": _seeds(config),
        "versions": data.versions(), "notes": notes,
    }
    report["retrieval"] = _retrieval(lib_data, config, watch, progress)
    report["clustering"], sweep, assignments = _clustering(lib_data, config, watch, progress)
    report["classification"] = _classification(store, config, watch, progress)
    kmeans = assignments.get("kmeans")
    maps, report["maps"] = _maps(lib_data, None if kmeans is None else kmeans[1], config, watch, progress)
    report["timings"] = watch.seconds
    report["notes"] += sampling_notes(report)
    return Evaluation(report, sweep, maps, assignments, watch)


def sampling_notes(report: dict[str, Any]) -> list[str]:
    """What was sampled and what was skipped, one sentence each."""
    notes = ["clusterings and classifiers ran in memory: no cluster run or model was stored in the library"]
    if report["library"]["labels"] < 2:
        notes.append("the library has fewer than 2 labels, so retrieval precision@k, NMI/ARI/purity and "
                     "classification were skipped; K comes from the K sweep")
    retrieval = report["retrieval"]
    if retrieval.get("sampled"):
        notes.append(f"retrieval: {retrieval['queries']:,} of {retrieval['labelled_images']:,} labelled images "
                     "were the queries (seeded sample); every image is searched")
    methods = {m: e for m, e in report["clustering"].get("methods", {}).items() if "metrics" in e}
    if methods:
        sizes = ", ".join(f"{m} {e['metrics']['silhouette_sample_size']:,}" for m, e in methods.items())
        notes.append(f"clustering: silhouettes on seeded samples of at most {report['parameters']['silhouette_sample']:,} "
                     f"points ({sizes}); noise points are left out of every score")
    hdbscan = methods.get("hdbscan")
    if hdbscan and hdbscan["sampled"]:
        notes.append(f"hdbscan clustered a seeded sample of {hdbscan['n_points']:,} images "
                     f"(min_cluster_size {hdbscan['params']['min_cluster_size']})")
    classification = report["classification"]
    if classification.get("sampled"):
        notes.append(f"classification: a stratified seeded sample of {classification['n_used']:,} of "
                     f"{classification['n_labelled']:,} labelled images")
    if classification.get("dropped_classes"):
        notes.append(f"classification left out classes with too few images: {classification['dropped_classes']}")
    if report["maps"]["sampled"]:
        notes.append(f"2D maps: {report['maps']['points']:,} points (seeded sample); PCA fitted on every image")
    return notes


def _sizes(store: LibraryStore, lib_data: data.LibraryData) -> dict[str, Any]:
    n, d = lib_data.vectors.shape
    return {"images": int(n), "embedding_dim": int(store.manifest.embed.dim), "reduced_dim": int(d),
            "bytes_on_disk": data.folder_sizes(store.folder)}


def _parameters(config: ReportConfig) -> dict[str, Any]:
    return {name: list(value) if isinstance(value, tuple) else value for name, value in asdict(config).items()}


def _seeds(config: ReportConfig) -> dict[str, int]:
    used = ("query sample", "K sweep", "k-means", "agglomerative", "hdbscan sample", "silhouette samples",
            "classifier split and folds", "map sample", "pca", "t-sne")
    return {name: config.seed for name in used}


def _skipped(reason: str) -> dict[str, Any]:
    return {"skipped": reason}


def _retrieval(lib_data: data.LibraryData, config: ReportConfig, watch: Stopwatch, progress: Progress) -> dict[str, Any]:
    if len(lib_data.classes) < 2:
        return _skipped(f"needs images with at least 2 labels; the library has {len(lib_data.classes)}")
    with watch.stage("retrieval"):
        return retrieval.evaluate_retrieval(
            lib_data.ids, lib_data.vectors, lib_data.labels, max_queries=config.max_queries,
            curve_k=config.curve_k, seed=config.seed, progress=progress,
        )


def _clustering(lib_data: data.LibraryData, config: ReportConfig, watch: Stopwatch,
                progress: Progress) -> tuple[dict[str, Any], KChoice | None, dict[str, tuple[np.ndarray, np.ndarray]]]:
    x, n = lib_data.vectors, lib_data.vectors.shape[0]
    if n < clusters.MIN_POINTS:
        return _skipped(f"clustering needs at least {clusters.MIN_POINTS} images, the library has {n}"), None, {}
    truth = lib_data.labels if lib_data.labelled.any() else None
    with watch.stage("k_sweep"):
        choice = clusters.sweep(x, config, progress)
    k, why = clusters.chosen_k(len(lib_data.classes), choice, n)
    section: dict[str, Any] = {"k": k, "k_reason": why, "sweep": clusters.choice_dict(choice), "methods": {}}
    assignments: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for method in clusters.METHODS:
        rows = clusters.hdbscan_rows(n, config) if method == "hdbscan" else np.arange(n)
        if method != "hdbscan" and k is None:
            section["methods"][method] = _skipped(why)
            continue
        progress.phase(f"clustering: {method}", None)
        cluster_config = clusters.method_config(method, k, config, rows.size)
        with watch.stage(f"cluster_{method}"):
            entry, labels = clusters.run_method(x[rows], None if truth is None else truth[rows], cluster_config)
        entry["sampled"] = bool(rows.size < n)
        section["methods"][method] = entry
        assignments[method] = (rows, labels)
    return section, choice, assignments


def _classification(store: LibraryStore, config: ReportConfig, watch: Stopwatch, progress: Progress) -> dict[str, Any]:
    from lookalike.classify.train import labelled_vectors, usable

    if not config.models:
        return _skipped("no models requested")
    classify_config = ClassifyConfig(seed=config.seed, drop_small_classes=True)
    try:
        labelled = usable(labelled_vectors(store), classify_config, store.folder)
    except InvalidParameterError as exc:
        return _skipped(str(exc))
    rows = classification.sample_rows(labelled.labels, config.classify_sample, config.seed)
    section = classification.evaluate_models(labelled.vectors[rows], labelled.labels[rows], config.models,
                                             classify_config, progress)
    for model, entry in section["models"].items():
        watch.seconds[f"classify_{model}"] = entry["seconds"]
    section.update(n_labelled=int(labelled.labels.size), n_used=int(rows.size), sampled=bool(rows.size < labelled.labels.size),
                   dropped_classes=labelled.dropped_classes)
    return section


def _maps(lib_data: data.LibraryData, kmeans_labels: np.ndarray | None, config: ReportConfig, watch: Stopwatch,
          progress: Progress) -> tuple[MapData, dict[str, Any]]:
    x, n = lib_data.vectors, lib_data.vectors.shape[0]
    rows = projection.map_rows(n, config.map_sample, config.seed)
    coords: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {"points": int(rows.size), "sampled": bool(rows.size < n)}
    progress.phase("2D maps: PCA", None)
    if min(x.shape) >= 2:
        with watch.stage("pca_2d"):
            coords["pca"], info["pca_explained_variance"] = projection.pca_map(x, rows, config.seed)
    if rows.size >= projection.TSNE_MIN_POINTS:
        progress.phase(f"2D maps: t-SNE of {rows.size:,} points", None)
        with watch.stage("tsne"):
            coords["tsne"], info["tsne"] = projection.tsne_map(x[rows], config.seed)
    else:
        info["tsne"] = _skipped(f"t-SNE needs at least {projection.TSNE_MIN_POINTS} points, the map has {rows.size}")
    groups = kmeans_labels[rows] if kmeans_labels is not None else np.full(rows.size, -1, dtype=np.int64)
    maps = MapData(rows, coords, lib_data.labels[rows], groups, [lib_data.paths[i] for i in rows])
    return maps, info

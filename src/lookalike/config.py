"""Settings, one frozen dataclass per pipeline stage.

The library manifest (``lookalike.toml``) has one section per class; CLI flags override fields
with :func:`dataclasses.replace`. Every class validates itself in ``__post_init__``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from lookalike.errors import InvalidParameterError

DEFAULT_MAX_PIXELS = 100_000_000
"""Largest image accepted, in pixels: a 10,000 × 10,000 photo passes, a decompression bomb not."""


def cache_root() -> Path:
    """Where downloads and exports are cached: ``$LOOKALIKE_CACHE``, else ``~/.cache/lookalike``."""
    return Path(os.environ.get("LOOKALIKE_CACHE") or Path.home() / ".cache" / "lookalike").expanduser()


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidParameterError(message)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo is unavailable)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask; the CPU count off Linux)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class IngestConfig:
    """How files are found and decoded.

    Attributes
    ----------
    max_pixels : images with more pixels than this are skipped as possible decompression bombs.
    follow_symlinks : follow symbolic links while scanning (loops are detected and reported).
    include_hidden : scan files and folders whose name starts with ``.``; when False they are
        listed as skipped ("hidden ..., not scanned") without being read.
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    follow_symlinks: bool = True
    include_hidden: bool = False

    def __post_init__(self) -> None:
        _require(self.max_pixels >= 1, f"max_pixels must be >= 1, got {self.max_pixels}")


@dataclass(frozen=True)
class EmbedConfig:
    """Which network turns images into vectors (fixed when a library is created).

    Attributes
    ----------
    backbone : registered backbone name, e.g. ``efficientnet-lite0``.
    weights : optional local weights file (needed offline for ``resnet50``).
    """

    backbone: str = "efficientnet-lite0"
    weights: str | None = None


@dataclass(frozen=True)
class ExtractConfig:
    """How an indexing run embeds images (may change from run to run).

    Attributes
    ----------
    batch_size : images per inference call.
    decode_workers : threads decoding images while the model runs (0: one per core; the
        decoders release the GIL, and on camera photos decoding, not the model, sets the pace).
    streams : inference batches run at once (each on its own runtime threads).
    threads : runtime threads per stream (0: the machine's cores divided by ``streams``).
    commit_every : images embedded between catalog commits (bounds work lost to a kill).
    """

    batch_size: int = 32
    decode_workers: int = 0
    streams: int = 2
    threads: int = 0
    commit_every: int = 256

    def runtime_threads(self) -> int:
        """Threads each inference stream's runtime session uses."""
        return self.threads or max(1, usable_cores() // self.streams)

    def decode_threads(self) -> int:
        """Threads decoding images."""
        return self.decode_workers or usable_cores()

    def __post_init__(self) -> None:
        _require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _require(self.decode_workers >= 0, f"decode_workers must be >= 0, got {self.decode_workers}")
        _require(self.threads >= 0, f"threads must be >= 0, got {self.threads}")
        _require(self.streams >= 1, f"streams must be >= 1, got {self.streams}")
        _require(self.commit_every >= 1, f"commit_every must be >= 1, got {self.commit_every}")


T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """A config as a TOML-friendly dict (None values left out)."""
    return {k: v for k, v in asdict(config).items() if v is not None}


def from_dict(cls: type[T], data: dict[str, Any], *, where: str) -> T:
    """Build ``cls`` from a manifest section, refusing unknown keys with the section name."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    _require(not unknown, f"{where}: unknown setting(s) {unknown}; expected some of {sorted(known)}")
    return cls(**data)


INDEX_KINDS = ("auto", "exact", "ivf", "hnsw", "ondisk")
DUPLICATE_NEAR_BITS = 6
"""Near duplicates: largest pHash distance (of 64 bits). The four DUPLICATE_* thresholds are the
point of benchmarks/bench_duplicates.py's TUNE curve (4,800 images: 300 photos edited 7 ways at
2 strengths, 300 unrelated) with the best recall of the groups shown at precision >= 0.95 of
those groups; README, "Duplicates", gives what they score on the separate REPORT set."""
DUPLICATE_MIN_SIMILARITY = 0.99
"""Semantic duplicates: smallest cosine of reduced vectors, from the same TUNE curve. Lower
values find more crops but also link look-alike pictures, and each false link merges two groups
(semantic links, unlike near+semantic ones, may merge groups); crops are found by the
near+semantic rule instead."""
DUPLICATE_CONFIRM_BITS = 26
"""Near+semantic duplicates: largest pHash distance of a pair whose cosine is at least
DUPLICATE_CONFIRM_SIMILARITY (from the same TUNE curve). So loose a distance is weak evidence
alone (two random 64-bit hashes are within it, after one of the transforms, about half the
time); it works because such a link only adds a file to a group and never merges two groups, so
a look-alike drawing (b and d) no longer puts two groups together (with 14 bits, cosine 0.9 and
no such rule, groups on the REPORT set were 0.945 precise and 0.11 of the crops were found)."""
DUPLICATE_CONFIRM_SIMILARITY = 0.75
"""Near+semantic duplicates: smallest cosine of a pair whose pHashes differ in at most
DUPLICATE_CONFIRM_BITS (from the same TUNE curve)."""
DUPLICATE_DHASH_BITS = 4
"""Near duplicates, second hash: largest dHash distance (of 64 bits) of a weak link (it only
attaches a file to a group, scored by its cosine, like near+semantic links). The largest value
whose groups stay >= 0.95 precise on bench_duplicates.py's TUNE set through `Library.duplicates`
(none: 0.952, 2: 0.952, 3: 0.951, 4: 0.950, 5: 0.949); it takes text written over a picture
from 0.96 to 0.98 of the groups shown there, and on direct links from 0.94 to 0.98."""
DUPLICATE_FOUND_SIMILARITY = 0.85
"""Near+semantic duplicates: smallest cosine of such a link between two files that are both in
no group yet (a link to a group needs only DUPLICATE_CONFIRM_SIMILARITY). The TUNE curve cannot
choose it: there every photo has 14 copies, so a copy always has a group to join. It is chosen
by hand (0.8, 0.85 and 0.9 tried) on what the curve does not see (bench_duplicates.py,
``lone_copies``): photos with one copy each among unrelated photos, and photos without copies.
On the TUNE set, against no such limit, it keeps 0.86 of the lone mild crops (0.96) and 0.19 of
the strong ones (0.36), and links 106 pairs of 600 photos without copies in 18 groups (121 in
30); on 1,600 dogs-vs-cats photos without copies, 28 files land in groups instead of 75."""


@dataclass(frozen=True)
class IndexConfig:
    """Which vector index to build, and how (see ``lookalike.index``).

    Attributes
    ----------
    kind : ``auto`` picks by collection size (see ``lookalike.index.choose_kind``), or one of
        ``exact`` (brute force, exact), ``ivf`` (cluster-routed), ``hnsw`` (graph), ``ondisk``
        (IVF-PQ with memory-mapped lists, re-ranked against float16 vectors).
    exact_max : ``auto`` keeps exact search up to this many vectors.
    hnsw_max : ``auto`` uses HNSW up to this many vectors, IVF beyond.
    ondisk_min : ``auto`` uses ``ondisk`` above this many vectors (IVF keeps every vector as
        float32 in RAM: 4 GB at 4M x 256).
    pq_bytes : ``ondisk`` bytes per vector in its lists.
    ondisk_nprobe : ``ondisk`` lists searched per query by default.
    rerank : ``ondisk`` candidates re-scored exactly per query by default; 0 = 400 below 5M
        vectors, 800 from there.
    nlist : IVF clusters; 0 picks ``4 * sqrt(n)`` (ignored when centroids are given).
    nprobe : IVF clusters searched per query by default (1 = only the query's cluster).
    hnsw_m : HNSW neighbours per node (more = better recall, more memory).
    ef_construction : HNSW build-time beam width.
    ef_search : HNSW default search beam width.
    max_tombstone_fraction : HNSW signals ``needs_rebuild`` once this fraction is removed.
    seed : seed of the IVF k-means.
    """

    kind: str = "auto"
    exact_max: int = 20_000
    hnsw_max: int = 250_000
    ondisk_min: int = 2_000_000
    pq_bytes: int = 64
    ondisk_nprobe: int = 16
    rerank: int = 0
    nlist: int = 0
    nprobe: int = 16
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    max_tombstone_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        _require(self.kind in INDEX_KINDS, f"index kind must be one of {INDEX_KINDS}, got {self.kind!r}")
        _require(self.exact_max >= 0, f"exact_max must be >= 0, got {self.exact_max}")
        _require(self.hnsw_max >= self.exact_max, f"hnsw_max must be >= exact_max, got {self.hnsw_max}")
        _require(self.ondisk_min >= self.hnsw_max, f"ondisk_min must be >= hnsw_max, got {self.ondisk_min}")
        _require(self.pq_bytes >= 1, f"pq_bytes must be >= 1, got {self.pq_bytes}")
        _require(self.ondisk_nprobe >= 1, f"ondisk_nprobe must be >= 1, got {self.ondisk_nprobe}")
        _require(self.rerank >= 0, f"rerank must be >= 0 (0 = by collection size), got {self.rerank}")
        _require(self.nlist >= 0, f"nlist must be >= 0, got {self.nlist}")
        _require(self.nprobe >= 1, f"nprobe must be >= 1, got {self.nprobe}")
        _require(self.hnsw_m >= 2, f"hnsw_m must be >= 2, got {self.hnsw_m}")
        _require(self.ef_construction >= 1, f"ef_construction must be >= 1, got {self.ef_construction}")
        _require(self.ef_search >= 1, f"ef_search must be >= 1, got {self.ef_search}")
        _require(
            0.0 < self.max_tombstone_fraction <= 1.0,
            f"max_tombstone_fraction must be in (0, 1], got {self.max_tombstone_fraction}",
        )


@dataclass(frozen=True)
class SearchConfig:
    """How queries are answered.

    Attributes
    ----------
    k : neighbours returned per query (fewer when the index or filter holds fewer).
    nprobe : IVF clusters to search (None = the index's default).
    ef_search : HNSW beam width (None = the index's default).
    mmap : memory-map index files when loading (read-only; see ``lookalike.index.load_index``).
    """

    k: int = 10
    nprobe: int | None = None
    ef_search: int | None = None
    mmap: bool = True

    def __post_init__(self) -> None:
        _require(self.k >= 1, f"k must be >= 1, got {self.k}")
        _require(self.nprobe is None or self.nprobe >= 1, f"nprobe must be >= 1, got {self.nprobe}")
        _require(
            self.ef_search is None or self.ef_search >= 1, f"ef_search must be >= 1, got {self.ef_search}"
        )


@dataclass(frozen=True)
class ReduceConfig:
    """How raw embeddings become reduced vectors (``lookalike.reduce.Reducer``).

    Attributes
    ----------
    n_components : dimensions kept (int >= 1), or the explained-variance fraction to reach
        (float in (0, 1)). Clamped to min(n_images, embedding dim) with a recorded note.
    whiten : divide each component by its standard deviation.
    renormalize : L2-normalise after PCA, so inner product = cosine (the default).
    """

    n_components: int | float = 256
    whiten: bool = False
    renormalize: bool = True

    def __post_init__(self) -> None:
        n = self.n_components
        _require(
            not isinstance(n, bool) and ((isinstance(n, int) and n >= 1) or (isinstance(n, float) and 0 < n < 1)),
            f"n_components must be an int >= 1 or a float in (0, 1), got {n!r}",
        )


CLUSTER_METHODS = ("kmeans", "agglomerative", "dbscan", "hdbscan")
CLUSTER_SPACES = ("reduced", "projected")
PROJECTION_METHODS = ("lda", "head")
"""Label projections (``lookalike.reduce.project``): linear discriminants or a metric-learning head."""


@dataclass(frozen=True)
class ClusterConfig:
    """How vectors are clustered (``lookalike.cluster.build_clusterer``).

    Attributes
    ----------
    method : ``kmeans``, ``agglomerative``, ``dbscan`` or ``hdbscan``.
    n_clusters : K for kmeans/agglomerative; None = pick K with ``choose_k`` (kmeans) or cut at
        ``distance_threshold`` (agglomerative).
    seed : seed for every random choice.
    n_init, max_iter, spherical : k-means restarts, Lloyd iterations, unit-length centres.
    k_min, k_max, k_step : the K sweep of ``choose_k``.
    sample_size : points in the silhouette sample (``choose_k``, metrics) and the eps sample.
    linkage, distance_threshold, n_micro : agglomerative linkage (ward/average/complete), cut
        height, and micro-clusters above which points are pre-grouped by k-means.
    metric : ``euclidean`` or ``cosine``; None = euclidean for kmeans/agglomerative, cosine for
        dbscan/hdbscan.
    eps, min_samples : DBSCAN radius (None = suggested from the k-distance knee) and core size;
        ``min_samples`` is also HDBSCAN's.
    min_cluster_size : HDBSCAN's smallest cluster.
    space : ``reduced`` (the PCA vectors) or ``projected`` (the library's learned label projection,
        ``lookalike learn-projection``: groups that follow the labels; new images are projected too).
    """

    method: str = "kmeans"
    n_clusters: int | None = None
    seed: int = 0
    n_init: int = 3
    max_iter: int = 25
    spherical: bool = False
    k_min: int = 2
    k_max: int = 30
    k_step: int = 1
    sample_size: int = 10_000
    linkage: str = "ward"
    distance_threshold: float | None = None
    n_micro: int = 3000
    metric: str | None = None
    eps: float | None = None
    min_samples: int = 5
    min_cluster_size: int = 5
    space: str = "reduced"

    def __post_init__(self) -> None:
        _require(self.method in CLUSTER_METHODS, f"method must be one of {CLUSTER_METHODS}, got {self.method!r}")
        _require(self.n_clusters is None or self.n_clusters >= 2, f"n_clusters must be >= 2, got {self.n_clusters}")
        _require(self.n_init >= 1, f"n_init must be >= 1, got {self.n_init}")
        _require(self.max_iter >= 1, f"max_iter must be >= 1, got {self.max_iter}")
        _require(2 <= self.k_min <= self.k_max, f"need 2 <= k_min <= k_max, got {self.k_min}, {self.k_max}")
        _require(self.k_step >= 1, f"k_step must be >= 1, got {self.k_step}")
        _require(self.sample_size >= 2, f"sample_size must be >= 2, got {self.sample_size}")
        _require(self.linkage in ("ward", "average", "complete"), f"unknown linkage {self.linkage!r}")
        _require(
            self.distance_threshold is None or self.distance_threshold > 0,
            f"distance_threshold must be > 0, got {self.distance_threshold}",
        )
        _require(2 <= self.n_micro <= 20_000, f"n_micro must be in [2, 20000], got {self.n_micro}")
        _require(self.metric in (None, "euclidean", "cosine"), f"unknown metric {self.metric!r}")
        _require(self.eps is None or self.eps > 0, f"eps must be > 0, got {self.eps}")
        _require(self.min_samples >= 1, f"min_samples must be >= 1, got {self.min_samples}")
        _require(self.min_cluster_size >= 2, f"min_cluster_size must be >= 2, got {self.min_cluster_size}")
        _require(self.space in CLUSTER_SPACES, f"space must be one of {CLUSTER_SPACES}, got {self.space!r}")


@dataclass(frozen=True)
class AutoencoderConfig:
    """How a convolutional autoencoder is trained on a library's images (``lookalike.embed.autoencoder.train``).

    Attributes
    ----------
    image_size : side of the square training images; every image, whatever its size, is resized
        (shorter side to ``image_size``) and centre-cropped to a square. A multiple of 16.
    latent_dim : length of the encoder's output: the embedding of the ``autoencoder:PATH`` backbone.
    width : channels of the first convolution, doubled at each of the 4 downsampling stages.
    epochs : most passes over the training split (early stopping may end sooner).
    batch_size : images per optimiser step.
    learning_rate : Adam step size.
    val_fraction : share of images held out to measure the validation loss (at least 1 image).
    patience : epochs without a better validation loss before training stops; 0 never stops early.
    augment : light augmentations (horizontal flip, small shift, brightness) on training batches.
    max_images : at most this many images (a seeded random subset) are decoded into memory.
    seed : seeds the weights, the split, the shuffling and the augmentations.
    threads : PyTorch intra-op threads (0 leaves PyTorch's default).
    """

    image_size: int = 64
    latent_dim: int = 128
    width: int = 32
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    val_fraction: float = 0.1
    patience: int = 3
    augment: bool = True
    max_images: int = 20_000
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        _require(
            self.image_size >= 16 and self.image_size % 16 == 0,
            f"image_size must be a multiple of 16 and >= 16, got {self.image_size}",
        )
        _require(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        _require(self.width >= 1, f"width must be >= 1, got {self.width}")
        _require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _require(self.batch_size >= 2, f"batch_size must be >= 2, got {self.batch_size}")
        _require(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        _require(0 < self.val_fraction < 1, f"val_fraction must be in (0, 1), got {self.val_fraction}")
        _require(self.patience >= 0, f"patience must be >= 0, got {self.patience}")
        _require(self.max_images >= 2, f"max_images must be >= 2, got {self.max_images}")
        _require(self.threads >= 0, f"threads must be >= 0, got {self.threads}")


CLASSIFY_MODELS = ("svm", "rf", "knn", "logreg")


@dataclass(frozen=True)
class ClassifyConfig:
    """How classifiers are trained on the reduced vectors (``lookalike.classify.estimator``).

    Attributes
    ----------
    test_size : fraction of the labelled images held out for validation (stratified, seeded).
    cv : folds of the k-fold cross-validation and of the hyperparameter grid searches
        (fewer when the smallest class is too small; 0 skips the k-fold cross-validation, the
        searches then use 5 folds).
    seed : seeds the split, the folds and the random forest.
    min_class_images : classes with fewer labelled images are refused (or left out, with
        ``drop_small_classes``); 3 keeps 2 training images per class after an 80/20 split.
    drop_small_classes : leave such classes out (counted in the report) instead of failing.
    svm_C, svm_gamma : SVM grid; gamma as multiples of scikit-learn's ``"scale"`` gamma.
    logreg_C : logistic-regression grid of C values (vectors divided by their overall std).
    n_neighbors : k of the cosine k-NN.  n_estimators : trees of the random forest.
    calibration_folds : folds of the SVM's probability calibration (isotonic or sigmoid).
    projection : None, or ``lda`` / ``head``: a label projection learned inside each training
        split (never on the images that score it) and applied before the classifier.
    """

    test_size: float = 0.2
    cv: int = 5
    seed: int = 0
    min_class_images: int = 3
    drop_small_classes: bool = False
    svm_C: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
    svm_gamma: tuple[float, ...] = (0.25, 1.0, 4.0)
    logreg_C: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 1.0, 10.0, 100.0)
    n_neighbors: int = 10
    n_estimators: int = 200
    calibration_folds: int = 3
    projection: str | None = None

    def __post_init__(self) -> None:
        _require(0.0 < self.test_size < 1.0, f"test_size must be in (0, 1), got {self.test_size}")
        _require(self.cv == 0 or self.cv >= 2, f"cv must be 0 (off) or >= 2, got {self.cv}")
        _require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        _require(self.min_class_images >= 3, f"min_class_images must be >= 3, got {self.min_class_images}")
        for name in ("svm_C", "svm_gamma", "logreg_C"):
            values = getattr(self, name)
            _require(len(values) >= 1 and min(values) > 0, f"{name} must be values > 0, got {values!r}")
        _require(self.n_neighbors >= 1, f"n_neighbors must be >= 1, got {self.n_neighbors}")
        _require(self.n_estimators >= 1, f"n_estimators must be >= 1, got {self.n_estimators}")
        _require(self.calibration_folds >= 2, f"calibration_folds must be >= 2, got {self.calibration_folds}")
        _require(self.projection in (None, *PROJECTION_METHODS),
                 f"projection must be None, {' or '.join(PROJECTION_METHODS)}, got {self.projection!r}")

"""What one ``lookalike compare`` measures: :class:`CompareConfig`, and how its image subset is named."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lookalike.config import AutoencoderConfig, ReduceConfig
from lookalike.errors import InvalidParameterError

MIN_PER_CLASS = 4
"""Fewest images per class: a 75/25 split then keeps 3 to train and 1 to test."""


@dataclass(frozen=True)
class CompareConfig:
    """What ``lookalike compare`` measures, and on which images.

    Attributes
    ----------
    dataset, split : a dataset of ``lookalike dataset list`` and its split (None: its default).
    first, limit, per_class, seed : the subset (see ``lookalike.io.datasets.select_subset``).
    backbones : backbone names; ``pixels`` (the baseline) is added when missing.
    k : neighbours of the retrieval metrics (P@k, mAP@k).
    pca, whiten : PCA components (0 keeps all: centring and rotation only) and whitening.
    crop_fraction : centre crop of the libraries (None: each backbone's own; 1.0 keeps the
        whole image; ``"auto"`` chooses from the image sizes). A library in WORK built with
        another crop is refused.
    augment : test-time views of the libraries (None: the default, see ``lookalike.embed.augment``).
    rerank : re-ranking methods measured as extra rows per backbone (``BACKBONE +METHOD``).
    projection : also a held-out learned-projection row per backbone (``lookalike.reduce.project``).
    projection_method : its method, ``head`` or ``lda``.
    svm_tune : choose the SVM's C and gamma by 5-fold grid search on the training part
        (``ClassifyConfig`` grid); False uses C = 1, gamma = scikit-learn's ``"scale"``.
    test_size : held-out share of the SVM split (stratified, seeded).
    autoencoder, autoencoder_epochs : also train an autoencoder on the images and compare it.
    cache_dir : dataset cache (default ``$LOOKALIKE_CACHE/datasets``).
    """

    dataset: str
    backbones: tuple[str, ...] = ("efficientnet-lite0",)
    split: str | None = None
    first: int | None = None
    limit: int | None = None
    per_class: int | None = None
    seed: int = 0
    k: int = 10
    pca: int = 256
    whiten: bool = False
    crop_fraction: float | str | None = None
    svm_tune: bool = True
    test_size: float = 0.25
    autoencoder: bool = False
    autoencoder_epochs: int = AutoencoderConfig.epochs
    cache_dir: Path | None = None
    augment: str | None = None
    rerank: tuple[str, ...] = ()
    projection: bool = False
    projection_method: str = "head"

    def __post_init__(self) -> None:
        checks = [
            (self.k >= 1, f"k must be >= 1, got {self.k}"),
            (self.pca >= 0, f"pca must be >= 0 (0 keeps every component), got {self.pca}"),
            (self.crop_fraction in (None, "auto") or 0.0 < float(self.crop_fraction) <= 1.0,
             f"crop_fraction must be in (0, 1] or 'auto', got {self.crop_fraction}"),
            (all(m in ("none", "aqe", "dba", "kreciprocal") for m in self.rerank),
             f"rerank methods must be among none, aqe, dba, kreciprocal; got {list(self.rerank)}"),
            (self.projection_method in ("lda", "head"),
             f"projection_method must be lda or head; got {self.projection_method!r}"),
            (0.0 < self.test_size < 1.0, f"test_size must be in (0, 1), got {self.test_size}"),
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
            (self.autoencoder_epochs >= 1, f"autoencoder_epochs must be >= 1, got {self.autoencoder_epochs}"),
            (len(self.backbones) >= 1 or self.autoencoder, "give at least one backbone"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidParameterError(message)

    def reduce_config(self, n_images: int, dim: int) -> ReduceConfig:
        """The PCA settings for ``n_images`` (>= 2) embeddings of ``dim`` values; ``pca`` is clamped
        to ``min(n_images - 1, dim)``, the directions with any variance after centring."""
        top = min(n_images - 1, dim)  # centring leaves at most n - 1 directions with variance
        return ReduceConfig(n_components=max(1, min(self.pca or top, top)), whiten=self.whiten)


def describe_subset(config: CompareConfig) -> str:
    """E.g. ``fashion-mnist (train, first 3000)``."""
    from lookalike.io.datasets import dataset_info, resolve_split

    parts = [resolve_split(dataset_info(config.dataset), config.split)]
    for value, what in ((config.first, "first"), (config.limit, "limit"), (config.per_class, "per class")):
        if value is not None:
            parts.append(f"{what} {value}")
    return f"{config.dataset} ({', '.join(parts)})"

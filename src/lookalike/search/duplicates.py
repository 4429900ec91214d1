"""Duplicate files of a library, grouped, each link with its reason and score.

Three sources, each without an n x n matrix (see :mod:`lookalike.index.duplicates`):

- exact: files with the same content hash (the catalog stores one image per distinct content,
  so these are the files sharing an image);
- near: images whose perceptual hashes (``images.phash``, DCT pHash of the EXIF-upright image)
  differ in at most ``near_bits`` of 64 bits;
- semantic: images whose reduced vectors have cosine similarity >= ``min_similarity``, found
  by k-NN on the library's vector index.

Items are files: near and semantic links join the first file of each image, exact links join
every file of an image to its first one; connected files form one group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lookalike.errors import InvalidParameterError
from lookalike.index.duplicates import DuplicatePair, group_pairs, identical_pairs, phash_pairs, semantic_pairs
from lookalike.store import images

if TYPE_CHECKING:
    from lookalike.store.library_store import LibraryStore


@dataclass(frozen=True)
class DuplicateLink:
    """Files ``a`` and ``b`` (paths) are duplicates for ``reason``; ``score`` 1 = identical."""

    a: str
    b: str
    kind: str
    reason: str
    score: float


@dataclass(frozen=True)
class FileGroup:
    """Files linked by duplicate links (paths sorted), and the links."""

    paths: list[str]
    links: list[DuplicateLink]

    @property
    def kinds(self) -> list[str]:
        return sorted({link.kind for link in self.links})


def find_library_duplicates(
    store: LibraryStore,
    *,
    exact: bool = True,
    near_bits: int | None = 8,
    min_similarity: float | None = 0.95,
    kind: str = "auto",
) -> list[FileGroup]:
    """Duplicate groups of ``store``'s files, largest first. ``None`` turns a source off."""
    file_ids, image_of, path_of = _embedded_files(store)
    first_file = _first_file_per_image(file_ids, image_of)
    source_of: dict[int, str] = {}  # id() of each pair (all kept alive in ``pairs``) -> source
    pairs: list[DuplicatePair] = []

    def take(found: list[DuplicatePair], source: str, per_image: bool) -> None:
        for pair in found:
            a, b = (first_file[pair.a], first_file[pair.b]) if per_image else (pair.a, pair.b)
            link = DuplicatePair(min(a, b), max(a, b), pair.reason, pair.score)
            pairs.append(link)
            source_of[id(link)] = source

    if exact:
        take(identical_pairs(file_ids, image_of.tolist()), "exact", per_image=False)
    if near_bits is not None:
        image_ids, hashes = _phashes(store)
        take(phash_pairs(image_ids, hashes, near_bits), "near", per_image=True)
    if min_similarity is not None:
        take(_semantic(store, kind, min_similarity), "semantic", per_image=True)
    groups = []
    for group in group_pairs(pairs):
        links = [
            DuplicateLink(path_of[p.a], path_of[p.b], source_of[id(p)], p.reason, float(p.score))
            for p in group.pairs
        ]
        groups.append(FileGroup(sorted(path_of[i] for i in group.ids), links))
    return groups


def _embedded_files(store: LibraryStore) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(file ids (n,), their image ids (n,), file id -> path) of files holding an embedded image."""
    return images.embedded_files(store.catalog)


def _first_file_per_image(file_ids: np.ndarray, image_of: np.ndarray) -> dict[int, int]:
    first: dict[int, int] = {}
    for file_id, image_id in zip(file_ids.tolist(), image_of.tolist()):
        first.setdefault(image_id, file_id)
    return first


def _phashes(store: LibraryStore) -> tuple[np.ndarray, np.ndarray]:
    """(image ids, uint64 pHashes) of the embedded images that have one."""
    return images.phashes(store.catalog)


def _semantic(store: LibraryStore, kind: str, min_similarity: float) -> list[DuplicatePair]:
    if not -1.0 <= min_similarity <= 1.0:
        raise InvalidParameterError(f"min_similarity must be in [-1, 1], got {min_similarity}")
    from lookalike.search.library_index import open_index

    live = open_index(store, kind)
    if len(live) < 2:
        return []
    return semantic_pairs(live.plain(), min_similarity)

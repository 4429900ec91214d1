"""Duplicate files of a library, grouped, each link with its reason and score.

Four sources, each without an n x n matrix (see :mod:`lookalike.index.duplicates`):

- exact: files with the same content hash (the catalog stores one image per distinct content,
  so these are the files sharing an image);
- near: images whose perceptual hashes (``images.phash``, DCT pHash of the EXIF-upright image)
  differ in at most ``near_bits`` of 64 bits, also after a flip or a turn by 90° or 180° of
  either (``transforms``: the flipped or turned hash is predicted from the stored one, see
  :mod:`lookalike.index.dihedral`); and, as weaker links (below), images whose difference
  hashes (``images.dhash``) differ in at most ``dhash_bits`` (text or a watermark over part of
  a picture moves the dHash by a few bits where the pHash moves 8 to 14; images embedded before
  dHashes were stored have none until ``lookalike check --repair``, and near-plain pictures are
  left out: ``DHASH_INFORMATIVE``);
- semantic: images whose reduced vectors have cosine similarity >= ``min_similarity``, found
  by k-NN on the library's vector index; with ``mirror``, each image's mirrored vector is
  searched too (:mod:`lookalike.search.flipped`: one more embedding pass), so flipped copies
  pass at the similarity of unedited ones;
- near+semantic: images whose cosine is at least ``confirm_similarity`` (found by the same k-NN
  search) and whose pHashes, after the same transforms, differ in at most ``confirm_bits``:
  each piece of evidence too weak alone, both together rarely wrong. Text written over a
  picture and crops are found this way (:func:`lookalike.index.duplicates.confirmed_pairs`).
  Runs when the near and semantic tiers both do; its candidates are each image's 16 nearest
  neighbours. Being weaker, these links (and the dHash ones, scored by their cosine too) only
  attach an image to a group, best first: a link
  that would merge two groups is dropped (one false link between two look-alike drawings would
  put every copy of one with every copy of the other), and a link between two images in no
  group yet needs the higher cosine ``DUPLICATE_FOUND_SIMILARITY``.

Each link names the edit its evidence points to: "flip" or "rotation" (the transform that
matched), "re-encode" (hashes within a few bits, same size), "resize" (same aspect ratio, other
size) or "crop" (other aspect ratio, not turned); None when nothing singles one out (colour
changes, overlaid text, or a different photo of the same thing).

The default thresholds (:mod:`lookalike.config`) come from benchmarks/bench_duplicates.py: the
ones with the best recall at precision >= 0.95 of the groups shown, on its TUNE set.

Items are files: near and semantic links join the first file of each image, exact links join
every file of an image to its first one; connected files form one group.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.config import (
    DUPLICATE_CONFIRM_BITS,
    DUPLICATE_CONFIRM_SIMILARITY,
    DUPLICATE_DHASH_BITS,
    DUPLICATE_FOUND_SIMILARITY,
    DUPLICATE_MIN_SIMILARITY,
    DUPLICATE_NEAR_BITS,
)
from lookalike.embed.phash import HASH_BITS
from lookalike.errors import InvalidParameterError
from lookalike.index.dihedral import QUERY_TRANSFORMS
from lookalike.index.duplicates import (
    DuplicatePair,
    confirmed_pairs,
    group_pairs,
    identical_pairs,
    phash_pairs,
    semantic_pairs,
)
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
    edit: str | None = None


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
    near_bits: int | None = DUPLICATE_NEAR_BITS,
    min_similarity: float | None = DUPLICATE_MIN_SIMILARITY,
    confirm_bits: int | None = DUPLICATE_CONFIRM_BITS,
    confirm_similarity: float = DUPLICATE_CONFIRM_SIMILARITY,
    kind: str = "auto",
    transforms: bool = True,
    mirror: bool = False,
    dhash_bits: int | None = DUPLICATE_DHASH_BITS,
) -> list[FileGroup]:
    """Duplicate groups of ``store``'s files, largest first. ``None`` turns a source off (the
    near+semantic links need ``near_bits``, ``min_similarity`` and ``confirm_bits``; dHash
    links need ``near_bits`` and ``dhash_bits``)."""
    for name, bits in (("confirm_bits", confirm_bits), ("dhash_bits", dhash_bits)):
        if bits is not None and not 0 <= bits < HASH_BITS:
            raise InvalidParameterError(f"{name} must be in [0, {HASH_BITS}), got {bits}")
    for name, value in (("min_similarity", min_similarity), ("confirm_similarity", confirm_similarity)):
        if value is not None and not -1.0 <= value <= 1.0:
            raise InvalidParameterError(f"{name} must be in [-1, 1], got {value}")
    file_ids, image_of, path_of = _embedded_files(store)
    found = _image_pairs(
        store, near_bits, dhash_bits, min_similarity, confirm_bits, confirm_similarity, kind, transforms, mirror
    )
    strong = [(p, source) for source in ("near", "semantic") for p in found[source]]
    weak = sorted(  # attached best first
        [(p, source) for source in ("near+semantic", "dhash") for p in found[source]], key=lambda ps: -ps[0].score
    )
    grouped = group_pairs([p for p, _ in strong], attach=[p for p, _ in weak], found_above=DUPLICATE_FOUND_SIMILARITY)
    kept = {id(p) for group in grouped for p in group.pairs}
    sizes = images.sizes(store.catalog)
    first_file = _first_file_per_image(file_ids, image_of)
    near_edit: dict[tuple[int, int], str | None] = {}  # image pair -> what the near tier said
    links: list[tuple[DuplicatePair, str]] = []
    for pair, source in [*strong, *weak]:
        if id(pair) not in kept:
            continue
        known = near_edit.get((pair.a, pair.b)) if source == "semantic" else None
        edit = known or infer_edit(pair, source, sizes.get(pair.a), sizes.get(pair.b))
        if source == "near":
            near_edit[(pair.a, pair.b)] = edit
        a, b = first_file[pair.a], first_file[pair.b]
        links.append((DuplicatePair(min(a, b), max(a, b), pair.reason, pair.score, edit), _KIND_OF.get(source, source)))
    if exact:
        links += [(p, "exact") for p in identical_pairs(file_ids, image_of.tolist())]
    source_of = {id(p): source for p, source in links}  # every pair is kept alive in ``links``
    groups = []
    for group in group_pairs(p for p, _ in links):
        shown = [
            DuplicateLink(path_of[p.a], path_of[p.b], source_of[id(p)], p.reason, float(p.score), p.edit)
            for p in group.pairs
        ]
        groups.append(FileGroup(sorted(path_of[i] for i in group.ids), shown))
    return groups


_KIND_OF = {"dhash": "near"}
"""The kind a link of each source is shown as: dHash links are near duplicates too."""


def _image_pairs(
    store: LibraryStore, near_bits: int | None, dhash_bits: int | None, min_similarity: float | None,
    confirm_bits: int | None, confirm_similarity: float, kind: str, transforms: bool, mirror: bool,
) -> dict[str, list[DuplicatePair]]:
    """Pairs of images by source: "near" (pHash), "dhash" (pairs only the dHashes link, scored
    by cosine), "semantic" and "near+semantic" (thresholds checked)."""
    found: dict[str, list[DuplicatePair]] = {"near": [], "dhash": [], "semantic": [], "near+semantic": []}
    queried = QUERY_TRANSFORMS if transforms else ("identity",)
    live = functools.cache(lambda: _open_index(store, kind))  # opened once, for whichever tier needs it first
    if near_bits is not None:
        image_ids, hashes = _phashes(store)
        found["near"] = phash_pairs(image_ids, hashes, near_bits, transforms=queried)
        if dhash_bits is not None:
            found["dhash"] = _dhash_pairs(store, live, dhash_bits, {(p.a, p.b) for p in found["near"]})
    if min_similarity is not None:
        both_bits = confirm_bits if near_bits is not None else None  # near+semantic needs both tiers
        floor = min_similarity if both_bits is None else min(min_similarity, confirm_similarity)
        similar = _semantic(store, live(), floor, mirror, min_similarity)  # one k-NN search serves both
        found["semantic"] = [p for p in similar if p.score >= min_similarity]
        if both_bits is not None:
            near = {(p.a, p.b) for p in found["near"]}
            weak = [p for p in similar if p.score < min_similarity and (p.a, p.b) not in near]
            found["near+semantic"] = confirmed_pairs(weak, image_ids, hashes, both_bits, transforms=queried)
    taken = {(p.a, p.b) for source in ("semantic", "near+semantic") for p in found[source]}
    found["dhash"] = [p for p in found["dhash"] if (p.a, p.b) not in taken]
    return found


DHASH_INFORMATIVE = (8, 56)
"""dHashes with fewer or more bits set than this are left out of the dHash links: a plain or
nearly plain picture (a blank page, a flat background) has almost no brighter neighbours, so
all such pictures share a dHash near 0."""


def _open_index(store: LibraryStore, kind: str) -> Any:
    from lookalike.search.library_index import open_index

    return open_index(store, kind)


def _dhash_pairs(
    store: LibraryStore, live: Callable[[], Any], max_bits: int, linked: set[tuple[int, int]]
) -> list[DuplicatePair]:
    """Pairs of informative dHashes within ``max_bits`` that the pHash did not link (``linked``),
    scored by the cosine of their vectors: weak links, attached best first like near+semantic
    ones."""
    ids, hashes = images.dhashes(store.catalog)
    set_bits = np.bitwise_count(hashes)
    informative = (set_bits >= DHASH_INFORMATIVE[0]) & (set_bits <= DHASH_INFORMATIVE[1])
    pairs = [p for p in phash_pairs(ids[informative], hashes[informative], max_bits, name="difference hash")
             if (p.a, p.b) not in linked]  # fmt: skip
    if not pairs:
        return []
    index = live().plain()
    a = index.reconstruct(np.array([p.a for p in pairs]))
    b = index.reconstruct(np.array([p.b for p in pairs]))
    cosines = np.einsum("ij,ij->i", a, b).tolist()
    return [DuplicatePair(p.a, p.b, f"{p.reason} and cosine {c:.2f}", c) for p, c in zip(pairs, cosines)]


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


def _semantic(
    store: LibraryStore, live: Any, min_similarity: float, mirror: bool, complete_above: float
) -> list[DuplicatePair]:
    """Semantic pairs at ``min_similarity`` or more, complete from ``complete_above`` (see
    :func:`lookalike.index.duplicates.semantic_pairs`)."""
    if not -1.0 <= min_similarity <= 1.0:
        raise InvalidParameterError(f"min_similarity must be in [-1, 1], got {min_similarity}")
    if len(live) < 2:
        return []
    index = live.plain()
    pairs = semantic_pairs(index, min_similarity, complete_above=complete_above)
    if not mirror:
        return pairs
    from lookalike.index.flat import ExactIndex
    from lookalike.search.flipped import mirrored_vectors

    ids, vectors = mirrored_vectors(store, index.ids())
    if len(ids) < 2:
        return pairs
    searched = index if len(ids) == len(index) else ExactIndex().fit(index.reconstruct(ids), ids)
    flipped = semantic_pairs(searched, min_similarity, vectors=vectors, edit="flip", complete_above=complete_above)
    return _merge_flipped(index, pairs, flipped)


FLIP_MARGIN = 0.03
"""A semantic pair is called a flip when its mirrored cosine beats the plain one by this much
(a flipped copy gains ~0.05; other edits move either way by ~0.01)."""


def _merge_flipped(index: Any, plain: list[DuplicatePair], flipped: list[DuplicatePair]) -> list[DuplicatePair]:
    """One pair per (a, b) with the higher score, named a flip only when the mirror clearly wins."""
    best = {(p.a, p.b): p for p in plain}
    for pair in flipped:
        held = best.get((pair.a, pair.b))
        if held is None:
            a, b = index.reconstruct(np.array([pair.a, pair.b]))
            held = DuplicatePair(pair.a, pair.b, "", float(a @ b))
            best[(pair.a, pair.b)] = pair if pair.score >= held.score + FLIP_MARGIN else replace(pair, edit=None)
        elif pair.score >= held.score + FLIP_MARGIN:
            best[(pair.a, pair.b)] = pair
    return list(best.values())


def infer_edit(
    pair: DuplicatePair, source: str, size_a: tuple[int, int] | None, size_b: tuple[int, int] | None
) -> str | None:
    """The edit the evidence of ``pair`` (from ``source``: near or semantic) points to, or None.

    A matched transform (flip, rotation) says it; otherwise the two displayed sizes (width,
    height) do. Width and height swapped: a rotation. Near pairs (the same picture) of one size
    are re-encodes (a mild colour change or a small overlay looks the same to the hash), of one
    aspect ratio resizes, else crops. Semantic pairs the near tier did not link are crops when
    the sizes differ (a plain resize would have been near); of one size, nothing singles an edit
    out (colour changes, overlaid text, or another photo of the same thing). Near+semantic pairs
    (hashes further apart) of one size are not named either (text written over the picture, a
    strong colour change); of other sizes they are crops, even of one aspect ratio (a plain
    resize would have been a near pair; on the benchmark, crops keep the aspect ratio). Pairs
    only the dHashes link ("dhash") of one size are not named (text or a watermark over the
    picture: a re-encode would be within the pHash's bits), of one aspect ratio they are resizes.
    """
    if pair.edit is not None:
        return pair.edit
    if size_a is None or size_b is None:
        return None
    aspect_a, aspect_b = size_a[0] / size_a[1], size_b[0] / size_b[1]
    if abs(aspect_a * aspect_b - 1) <= 0.02 and abs(aspect_a - 1) > 0.02:  # width and height swapped
        return "rotation"
    if size_a == size_b:
        return "re-encode" if source == "near" else None
    if source in ("near", "dhash") and abs(aspect_a / aspect_b - 1) <= 0.02:
        return "resize"
    return "crop"

"""Reduced vectors of the library's images mirrored left-right, for flip-aware semantic duplicates.

A CNN embedding is not mirror-invariant: a flipped copy of a photo sits at cosine ~0.93-0.97 from
it, which a strict duplicate threshold misses. Searching each image's *mirrored* vector against
the stored ones finds such copies at the similarity the unedited copy would have. The mirrored
vectors cost one more embedding pass (decode, flip, embed, reduce with the stored reducer), so
they are computed only when asked for; a library whose stored vectors already average each image
with its mirror image does not need them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.errors import ImageError

if TYPE_CHECKING:
    from lookalike.library import Library

BATCH = 32


def mirrored_vectors(lib: Library, image_ids: np.ndarray, *, threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The reduced vectors of the given images mirrored left-right.

    Parameters
    ----------
    lib : the library (its backbone, decoding settings and stored reducer are used).
    image_ids : (n,) image ids, e.g. the vector index's ``ids()``.
    threads : backbone threads (0: ONNX Runtime's default).

    Returns
    -------
    (ids (m,) int64, vectors (m, d) float32): the images whose first file still decodes, in the
    order given (the others are left out).
    """
    path_of = _first_paths(lib)
    embed = lib.manifest.embed
    max_pixels = lib.manifest.ingest.max_pixels
    backbone = lib.backbone(threads=threads)
    reducer = lib.reducer()

    def mirrored(image_id: int) -> np.ndarray | None:
        from lookalike.io.decode import load_model_input

        try:
            pixels = load_model_input(
                path_of[image_id], size=embed.image_size, crop_fraction=embed.crop_fraction,
                max_pixels=max_pixels, resize=embed.resize,
            )
        except (ImageError, KeyError):  # moved or changed since indexing: no mirrored vector
            return None
        return np.ascontiguousarray(pixels[:, ::-1])

    kept: list[int] = []
    rows: list[np.ndarray] = []
    for batch_ids, batch in _batches([int(i) for i in image_ids], mirrored):
        kept.extend(batch_ids)
        rows.append(reducer.transform(backbone.embed(batch)))
    if not rows:
        return np.empty(0, np.int64), np.empty((0, int(reducer.n_components_)), np.float32)
    return np.asarray(kept, dtype=np.int64), np.concatenate(rows).astype(np.float32)


def _batches(
    ids: Sequence[int], load: Callable[[int], np.ndarray | None]
) -> Iterator[tuple[list[int], np.ndarray]]:
    """(ids, stacked inputs (b, S, S, 3)) of up to BATCH decodable images, decoded by 2 threads."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            loaded = [(i, x) for i, x in zip(chunk, pool.map(load, chunk)) if x is not None]
            if loaded:
                yield [i for i, _ in loaded], np.stack([x for _, x in loaded])


def _first_paths(lib: Library) -> dict[int, Any]:
    """image id -> path of its first file."""
    rows = lib.catalog.query("SELECT image_id, path_bytes FROM files WHERE image_id IS NOT NULL ORDER BY id")
    paths: dict[int, Any] = {}
    for image_id, path in rows:
        paths.setdefault(int(image_id), Path(os.fsdecode(bytes(path))))
    return paths

"""Reduced vectors of the library's images mirrored left-right, for flip-aware semantic duplicates.

A CNN embedding is not mirror-invariant: a flipped copy of a photo sits at cosine ~0.93-0.97 from
it, which a strict duplicate threshold misses. Searching each image's *mirrored* vector against
the stored ones finds such copies at the similarity the unedited copy would have. The mirrored
vectors cost one more embedding pass (decode, flip, embed, reduce with the stored reducer), so
they are computed only when asked for; a library whose stored vectors already average each image
with its mirror image does not need them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.errors import ImageError, InvalidParameterError
from lookalike.store import images

if TYPE_CHECKING:
    from lookalike.store.library_store import LibraryStore

BATCH = 32


def mirrored_vectors(store: LibraryStore, image_ids: np.ndarray, *, threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The reduced vectors of the given images mirrored left-right.

    Each image's first file is decoded the way the library decodes it
    (:func:`lookalike.embed.query.library_pixels`), mirrored, embedded with the library's
    checked backbone and reduced with the stored reducer.

    Parameters
    ----------
    store : the library's store.
    image_ids : (n,) image ids, e.g. the vector index's ``ids()``.
    threads : backbone threads (0: ONNX Runtime's default).

    Returns
    -------
    (ids (m,) int64, vectors (m, d) float32): the images whose first file still decodes, in the
    order given (the others are left out).
    """
    from lookalike.embed.query import checked_backbone, library_pixels
    from lookalike.reduce import stored as reduction

    ids = [int(i) for i in image_ids]
    path_of = {image_id: Path(path) for image_id, (path, _) in images.first_files(store.catalog, ids).items()}
    backbone = checked_backbone(store, threads)
    reducer = reduction.stored_reducer(store)
    if reducer is None:
        raise InvalidParameterError(f"{store.folder}: no PCA yet; run `lookalike reduce` first")

    def mirrored(image_id: int) -> np.ndarray | None:
        try:
            pixels, _ = library_pixels(store.manifest, path_of[image_id])
        except (ImageError, KeyError):  # moved or changed since indexing: no mirrored vector
            return None
        return np.ascontiguousarray(pixels[:, ::-1])

    kept: list[int] = []
    rows: list[np.ndarray] = []
    for batch_ids, batch in _batches(ids, mirrored):
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

"""The one path from an image file to a vector: decode with the library's preprocessing, then
embed with the library's (checked) backbone.

Indexing (``embed.indexing``), search (``search.searcher``) and classifier prediction
(``classify.train``) all decode through :func:`library_pixels` and embed through
:func:`checked_backbone`, so a query image becomes exactly the vector it would have had as a
library image.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.errors import BackboneMismatchError, ImageError
from lookalike.store.catalog import PendingImage
from lookalike.store.library_store import LibraryStore
from lookalike.store.manifest import Manifest

if TYPE_CHECKING:
    from lookalike.embed.base import Backbone

Source = Path | bytes


def library_pixels(manifest: Manifest, source: Source, max_pixels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``source`` as the library decodes its images (``max_pixels`` may lower the
    library's pixel limit, e.g. for uploads).

    Returns
    -------
    (model input (size, size, 3) uint8, upright image (H, W, 3) uint8 at the decode scale)
    """
    from lookalike.io.decode import load_rgb, to_model_input

    embed = manifest.embed
    short_side = round(embed.image_size / embed.crop_fraction)
    limit = manifest.ingest.max_pixels if max_pixels is None else max_pixels
    upright = np.asarray(load_rgb(source, max_pixels=limit, min_side=short_side))
    return to_model_input(upright, embed.image_size, embed.crop_fraction, resize=embed.resize), upright


def pending_decoder(manifest: Manifest) -> Callable[[PendingImage], tuple[np.ndarray, int, int]]:
    """How every indexing run, local or on Ray workers, decodes a pending image: (model input
    (size, size, 3) uint8, 64-bit pHash and dHash of the upright image). Raises as
    :func:`library_pixels`."""
    from lookalike.embed.phash import image_hashes

    method = manifest.embed.phash

    def decode(image: PendingImage) -> tuple[np.ndarray, int, int]:
        pixels, upright = library_pixels(manifest, image.path)
        return pixels, *image_hashes(upright, method)

    return decode


def checked_backbone(store: LibraryStore, threads: int = 0) -> Backbone:
    """The library's backbone, loaded once per open store and thread count, refused when its
    weights are not the ones the library was built with."""
    key = f"backbone:{threads}"
    if key not in store.cache:
        from lookalike.embed.registry import load_backbone

        embed = store.manifest.embed
        calibration = None
        if embed.precision == "int8":
            from lookalike.embed.calibration import load_calibration

            calibration = load_calibration(store.folder, embed.calibration_sha256)
        model = load_backbone(
            embed.backbone, weights=store.weights or embed.weights_path, threads=threads,
            precision=embed.precision, calibration=calibration,
        )  # fmt: skip
        if model.weights_sha256 != embed.weights_sha256:
            raise BackboneMismatchError(
                f"{store.folder} was built with {embed.backbone} weights sha256 "
                f"{embed.weights_sha256[:12]}…, the weights found have {model.weights_sha256[:12]}…"
            )
        from lookalike.embed.augment import augmented

        store.cache.clear()  # one loaded backbone per store at a time
        store.cache[key] = augmented(model, embed.augment)
    loaded: Backbone = store.cache[key]
    return loaded


def embed_source(
    store: LibraryStore, source: Source, max_pixels: int | None = None
) -> tuple[np.ndarray, dict[str, float]]:
    """Raw embedding (D,) float32 of one image file or its bytes, and seconds decoding/embedding."""
    started = time.perf_counter()
    pixels, _ = library_pixels(store.manifest, source, max_pixels)
    decoded = time.perf_counter()
    raw = checked_backbone(store).embed(pixels[None])[0]
    return raw, {"decode": decoded - started, "embed": time.perf_counter() - decoded}


def embed_files(store: LibraryStore, paths: list[Path]) -> tuple[np.ndarray, list[int], dict[int, str]]:
    """Raw embeddings of the files that decode, in one batch.

    Returns
    -------
    (vectors (m, D) float32, indices into ``paths`` of those m files, reason per failed index)
    """
    inputs, good, failed = [], [], {}
    for i, path in enumerate(paths):
        try:
            inputs.append(library_pixels(store.manifest, path)[0])
            good.append(i)
        except ImageError as exc:
            failed[i] = exc.reason
    if not inputs:
        return np.empty((0, store.manifest.embed.dim), dtype=np.float32), good, failed
    return checked_backbone(store).embed(np.stack(inputs)), good, failed

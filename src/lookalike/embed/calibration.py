"""The calibration images of an int8 library: its own first images, kept in the library folder.

Static int8 quantization needs activation ranges seen on typical inputs; the images being
indexed are the most typical there are. At the first ``index`` of an int8 library the first
:data:`CALIBRATION_IMAGES` decodable pending images (model inputs, exactly as the pipeline
decodes them) are stored in ``calibration.npy`` and their fingerprint in the manifest, so the
same quantized model is rebuilt from the library alone on any machine. A library with fewer
images is topped up with deterministic photo-like images (``runtime.parity_images``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import BackboneError, ImageError
from lookalike.store.arrays import load_npy, save_npy

CALIBRATION_IMAGES = 64
CALIBRATION_NAME = "calibration.npy"


def draw_calibration(
    images: Iterable[Any], decode: Callable[[Any], tuple[Any, ...]], size: int,
    count: int = CALIBRATION_IMAGES,
) -> np.ndarray:  # fmt: skip
    """The first ``count`` decodable ``images`` as model inputs ``(count, size, size, 3)`` uint8.

    ``decode`` is the pipeline's decoder (image -> (pixels, pHash, dHash)); undecodable images are
    passed over; fewer than ``count`` are topped up with photo-like images.
    """
    from lookalike.embed.runtime import parity_images

    drawn: list[np.ndarray] = []
    for image in images:
        if len(drawn) == count:
            break
        try:
            drawn.append(decode(image)[0])
        except (ImageError, OSError):
            continue  # the extraction run reports it; calibration only needs good images
    if len(drawn) < count:
        drawn.extend(parity_images(size, count=count - len(drawn), seed=1))
    return np.stack(drawn).astype(np.uint8, copy=False)


def save_calibration(folder: Path, images: np.ndarray) -> str:
    """Store ``images`` in ``folder/calibration.npy`` (atomically); returns their fingerprint."""
    from lookalike.embed.reduced_precision import calibration_fingerprint

    save_npy(folder / CALIBRATION_NAME, images)
    return calibration_fingerprint(images)


def load_calibration(folder: Path, fingerprint: str | None) -> np.ndarray:
    """The stored calibration images, checked against the manifest's ``fingerprint``.

    Raises :class:`BackboneError` when they are missing (nothing indexed yet) or altered.
    """
    from lookalike.embed.reduced_precision import calibration_fingerprint

    path = folder / CALIBRATION_NAME
    if fingerprint is None or not path.is_file():
        raise BackboneError(
            f"{folder} runs at int8 but is not calibrated yet ({CALIBRATION_NAME} is made from the first "
            "images indexed): run `lookalike index FOLDER` on it first"
        )
    images = np.asarray(load_npy(path, mmap=False))
    found = calibration_fingerprint(images)
    if found != fingerprint:
        _refuse_an_older_recipe(folder, images, fingerprint)
        raise BackboneError(
            f"{path}: calibration images changed (sha256 {found[:12]}…, the manifest records {fingerprint[:12]}…); "
            "restore the file, or rebuild the library"
        )
    return images


def _refuse_an_older_recipe(folder: Path, images: np.ndarray, fingerprint: str) -> None:
    """Raise :class:`BackboneError` if ``fingerprint`` is these images' under an older quantization
    recipe: the library is intact, but its vectors came from a model this version no longer makes."""
    from lookalike.embed.reduced_precision import QUANT_FORMAT, calibration_fingerprint

    for recipe in range(QUANT_FORMAT - 1, 0, -1):
        if calibration_fingerprint(images, recipe) == fingerprint:
            raise BackboneError(
                f"{folder}: its int8 vectors come from quantization recipe {recipe}, and this lookalike "
                f"quantizes with recipe {QUANT_FORMAT}, whose vectors differ, so new images and queries would "
                "not match the stored ones: index the images into a new library (or open this one with the "
                "lookalike version that made it)"
            )

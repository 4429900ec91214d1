"""How one image file becomes a model input: the one rule every embedding run applies.

A local run (:mod:`lookalike.embed.extract`) and a Ray worker (:mod:`lookalike.embed.distributed`)
both decode with :meth:`Preprocessing.decoder`, so they produce the same pixels, the same perceptual hash
and the same skip reasons for the same file. :class:`Preprocessing` is a frozen, picklable record
of the library's settings (from its manifest), cheap to send to remote workers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lookalike.store.manifest import EmbedRecord


@dataclass(frozen=True)
class Preprocessing:
    """A library's decode and preprocessing settings.

    Attributes
    ----------
    image_size : side ``S`` of the square model input.
    crop_fraction : share of the shorter side kept by the centre crop.
    resize : resize method (``lookalike.io.decode.RESIZE_METHODS``).
    phash : perceptual-hash method (``lookalike.index.phash.PHASH_METHODS``).
    max_pixels : larger images are skipped (decompression bombs).
    """

    image_size: int
    crop_fraction: float
    resize: str
    phash: str
    max_pixels: int

    @classmethod
    def of(cls, embed: EmbedRecord, max_pixels: int) -> Preprocessing:
        """The settings a library's manifest records (``[embed]`` and ``[ingest] max_pixels``)."""
        return cls(embed.image_size, embed.crop_fraction, embed.resize, embed.phash, max_pixels)

    @property
    def short_side(self) -> int:
        """Shorter side after the resize that precedes the centre crop."""
        return round(self.image_size / self.crop_fraction)

    def decoder(self) -> Callable[[Path], tuple[np.ndarray, int]]:
        """A function decoding one file to (model input, pHash); imports happen once, here.

        The function returns ``pixels``, uint8 (S, S, 3) upright RGB, resized and centre-cropped,
        and ``phash``, the 64-bit perceptual hash of the upright image. It raises
        :class:`~lookalike.errors.ImageError` (whose ``reason`` is the skip reason) for a file
        that is not a usable image, and ``OSError`` for one that cannot be read.
        """
        from lookalike.index.phash import phash
        from lookalike.io.decode import load_rgb, to_model_input

        size, crop, resize, method = self.image_size, self.crop_fraction, self.resize, self.phash
        max_pixels, short_side = self.max_pixels, self.short_side

        def decode(path: Path) -> tuple[np.ndarray, int]:
            upright = load_rgb(path, max_pixels=max_pixels, min_side=short_side)
            array = np.asarray(upright)  # once, for both
            return to_model_input(array, size, crop, resize=resize), phash(array, method)

        return decode

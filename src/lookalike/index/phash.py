"""64-bit perceptual hash (DCT pHash) and Hamming distances.

The hash of an image: apply its EXIF orientation, convert to grey, resize to 32 x 32 (Lanczos,
with a reducing gap of 2 for speed),
take the 2-D DCT-II, keep the 8 x 8 lowest frequencies, and set one bit per coefficient that
is above their median. Resizing, re-encoding and mild colour or brightness changes move few
bits; different pictures differ in about half of them. Bits are packed row-major, first
coefficient in the most significant bit, into an unsigned 64-bit integer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError

HASH_BITS = 64
HASH_SIDE = 8
RESIZE_SIDE = 32
_ORIENTATION = 0x0112
"""EXIF tag of the orientation."""


def phash(image: Any) -> int:
    """The 64-bit pHash of a PIL image or a uint8 array (H, W), (H, W, 3) or (H, W, 4).

    PIL images are turned upright from their EXIF orientation first; arrays are taken as they
    are. Returns an int in [0, 2**64).
    """
    from PIL import Image
    from scipy.fft import dctn  # type: ignore[import-untyped]

    grey = _grey_image(image).resize((RESIZE_SIDE, RESIZE_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    pixels = np.asarray(grey, dtype=np.float64)
    low = dctn(pixels, type=2, norm="ortho")[:HASH_SIDE, :HASH_SIDE]
    bits = (low > np.median(low)).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def phash_many(images: Iterable[Any]) -> np.ndarray:
    """pHashes of several images: (n,) uint64."""
    return np.array([phash(image) for image in images], dtype=np.uint64)


def hamming_distance(a: Any, b: Any) -> np.ndarray:
    """Bits that differ between uint64 hashes a and b (broadcast): int array (or 0-d)."""
    xor = np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    return np.bitwise_count(xor).astype(np.int64)


def hashes_to_bytes(hashes: Any) -> np.ndarray:
    """uint64 hashes (n,) as FAISS binary codes (n, 8) uint8 (big-endian, like the bits)."""
    arr = np.asarray(hashes)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.unsignedinteger):
        raise InvalidParameterError(f"hashes must be a 1-D uint64 array, got shape {arr.shape} {arr.dtype}")
    return np.ascontiguousarray(arr.astype(">u8")).view(np.uint8).reshape(len(arr), 8)


def _grey_image(image: Any) -> Any:
    """A PIL greyscale ('L') image from a PIL image (EXIF-transposed) or a uint8 array."""
    from PIL import Image, ImageOps

    if isinstance(image, Image.Image):
        if image.getexif().get(_ORIENTATION, 1) != 1:  # exif_transpose would copy even when upright
            image = ImageOps.exif_transpose(image)
        return image.convert("L")
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise InvalidParameterError(f"image arrays must be uint8, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise InvalidParameterError(f"image arrays must be (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidParameterError(f"image is empty: shape {arr.shape}")
    return Image.fromarray(arr).convert("L")

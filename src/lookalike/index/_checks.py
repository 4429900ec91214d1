"""Validation of vectors, queries and ids at the index boundary (one place, clear messages)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError

UNIT_NORM_TOLERANCE = 1e-3
"""Stored vectors must have ``| ||x|| - 1 | <= UNIT_NORM_TOLERANCE`` (cosine = inner product)."""
UNIT_QUERY_TOLERANCE = 2.0**-22
"""A single float32 query whose squared norm is within this of 1 is used as given (its norm is
within 1.2e-7 of 1, below float32 resolution near 1): most queries are stored or embedded unit
vectors, and skipping the copy and division saves about a tenth of an IVF query."""


def as_matrix(X: Any, dim: int | None, what: str) -> np.ndarray:
    """``X`` as a finite C-contiguous float32 (n, dim) matrix, or InvalidParameterError.

    Any real floating dtype is accepted and cast to float32; integers, bools and objects are not.
    """
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise InvalidParameterError(f"{what} must be a 2-D array (n, d), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InvalidParameterError(f"{what} must have a floating dtype (float32), got {arr.dtype}")
    if dim is not None and arr.shape[1] != dim:
        raise InvalidParameterError(f"{what} have dimension {arr.shape[1]}, the index expects {dim}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise InvalidParameterError(f"{what} contain NaN or infinity (first at row {row})")
    return arr


def as_unit_matrix(X: Any, dim: int | None, what: str) -> np.ndarray:
    """Like :func:`as_matrix`, and every row must already be L2-normalised."""
    arr = as_matrix(X, dim, what)
    if len(arr):
        norms = np.linalg.norm(arr, axis=1)
        bad = np.flatnonzero(np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE)
        if len(bad):
            raise InvalidParameterError(
                f"{what} must be L2-normalised (norm 1 +- {UNIT_NORM_TOLERANCE}); "
                f"row {int(bad[0])} has norm {float(norms[bad[0]]):.4g}"
            )
    return arr


def as_queries(queries: Any, dim: int) -> np.ndarray:
    """Queries (m, dim) or one query (dim,) as unit float32 rows; zero vectors are refused.

    Float32 C-contiguous queries take a fast path (one pass for norms and finiteness: a NaN or
    infinity makes its row's squared norm non-finite); anything else, or any doubt (a zero or
    overflowing norm), goes through the full checks and their messages.
    """
    arr = np.asarray(queries)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.dtype == np.float32 and arr.ndim == 2 and arr.shape[1] == dim and arr.flags.c_contiguous:
        if arr.shape[0] == 1:
            sq_norm = float(np.dot(arr[0], arr[0]))
            if abs(sq_norm - 1.0) <= UNIT_QUERY_TOLERANCE:
                return arr  # already unit: dividing would change no similarity by a float32 step
            if 0.0 < sq_norm < math.inf:
                unit: np.ndarray = arr / np.float32(math.sqrt(sq_norm))
                return unit
        elif arr.shape[0]:
            sq_norms = np.add.reduce(arr * arr, axis=1)
            if math.isfinite(float(np.add.reduce(sq_norms))) and float(np.minimum.reduce(sq_norms)) > 0.0:
                units: np.ndarray = arr / np.sqrt(sq_norms)[:, None]
                return units
    arr = as_matrix(arr, dim, "queries")
    if len(arr) == 0:
        raise InvalidParameterError("queries are empty: expected at least one query vector")
    norms = np.linalg.norm(arr.astype(np.float64), axis=1, keepdims=True)  # float64: no overflow
    if (norms == 0).any():
        row = int(np.flatnonzero(norms[:, 0] == 0)[0])
        raise InvalidParameterError(f"query {row} is the zero vector: it has no direction")
    return np.asarray(arr / norms, dtype=np.float32)


def as_ids(ids: Any, what: str = "ids", *, n: int | None = None, unique: bool = True) -> np.ndarray:
    """``ids`` as a 1-D int64 array of non-negative, optionally unique, values."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise InvalidParameterError(f"{what} must be a 1-D array, got shape {arr.shape}")
    if len(arr) and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidParameterError(f"{what} must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if n is not None and len(arr) != n:
        raise InvalidParameterError(f"{what}: expected {n} ids (one per vector), got {len(arr)}")
    if len(arr) and arr.min() < 0:
        raise InvalidParameterError(f"{what} must be >= 0, got {int(arr.min())}")
    if unique and len(np.unique(arr)) != len(arr):
        values, counts = np.unique(arr, return_counts=True)
        raise InvalidParameterError(f"{what} repeat: id {int(values[counts > 1][0])} appears twice")
    return arr


def check_k(k: Any) -> int:
    """``k`` as a positive int."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidParameterError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def mean_query(vectors: Any) -> np.ndarray:
    """One query from several vectors (m, d): their mean, re-normalised; shape (d,)."""
    arr = as_matrix(np.atleast_2d(np.asarray(vectors)), None, "query vectors")
    if len(arr) == 0:
        raise InvalidParameterError("query vectors are empty: expected at least one")
    mean = arr.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-6:
        raise InvalidParameterError("the query vectors cancel out: their mean is the zero vector")
    return np.asarray((mean / norm).astype(np.float32))

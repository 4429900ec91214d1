"""Input checks shared by reduction and clustering: run once, at the public boundary.

Everything past these checks may assume a C-contiguous float32 matrix with finite values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError

_CHUNK_ROWS = 65_536


def as_matrix(x: Any, *, name: str = "X", min_rows: int = 1) -> np.ndarray:
    """``x`` as a C-contiguous float32 array of shape (n_points, n_dims), checked.

    Refuses non-2-D input, fewer than ``min_rows`` rows, zero columns, non-numeric dtypes and
    NaN/inf values (the message gives how many rows and the first one).
    """
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise InvalidParameterError(f"{name} must be a 2-D array (n_points, n_dims); got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise InvalidParameterError(f"{name} must hold numbers; got dtype {arr.dtype}")
    n, d = arr.shape
    if n < min_rows:
        raise InvalidParameterError(f"{name} has {n} point(s); need at least {min_rows}")
    if d == 0:
        raise InvalidParameterError(f"{name} has 0 dimensions; expected shape (n_points, n_dims >= 1)")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    _check_finite(out, name)
    return out


def _check_finite(x: np.ndarray, name: str) -> None:
    bad_rows = 0
    first = -1
    for start in range(0, x.shape[0], _CHUNK_ROWS):
        ok = np.isfinite(x[start : start + _CHUNK_ROWS]).all(axis=1)
        if not ok.all():
            if first < 0:
                first = start + int(np.argmin(ok))
            bad_rows += int((~ok).sum())
    if bad_rows:
        raise InvalidParameterError(
            f"{name} has NaN or infinite values in {bad_rows} of {x.shape[0]} rows (first: row {first}); "
            "expected finite numbers"
        )


def check_dim(x: np.ndarray, expected: int, *, name: str = "X", owner: str = "the model") -> None:
    """Refuse ``x`` when its column count differs from what ``owner`` was fitted on."""
    if x.shape[1] != expected:
        raise InvalidParameterError(
            f"{name} has {x.shape[1]} dimensions but {owner} was fitted on {expected}"
        )


def as_vectors_of(x: Any, dim: int) -> np.ndarray:
    """``x`` as float32 (n, dim) vectors for a fitted map, or an error naming both shapes."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise InvalidParameterError(f"expected vectors of shape (n, {dim}), got {arr.shape}")
    return arr


def check_int(value: Any, name: str, *, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, or InvalidParameterError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidParameterError(f"{name} must be an integer; got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise InvalidParameterError(f"{name} must be {bound}; got {value}")
    return int(value)


def check_n_clusters(n_clusters: Any, n_points: int, *, name: str = "n_clusters") -> int:
    """Number of clusters: an int with 2 <= k <= n_points."""
    k = check_int(n_clusters, name, low=2)
    if k > n_points:
        raise InvalidParameterError(f"{name}={k} is larger than the number of points ({n_points})")
    return k


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else InvalidParameterError listing them."""
    if value not in choices:
        raise InvalidParameterError(f"{name} must be one of {choices}; got {value!r}")
    return str(value)


def all_identical(x: np.ndarray) -> bool:
    """True when every row of ``x`` (already checked, n >= 1) equals every other."""
    return bool(np.array_equal(x.min(axis=0), x.max(axis=0)))


def refuse_identical(x: np.ndarray, *, name: str = "X", what: str = "clustering") -> None:
    """Raise when all rows are the same point: no method can split them."""
    if x.shape[0] > 1 and all_identical(x):
        raise InvalidParameterError(
            f"all {x.shape[0]} points in {name} are identical; {what} needs at least 2 distinct points"
        )


def l2_normalize(x: np.ndarray, *, copy: bool = True) -> np.ndarray:
    """Rows scaled to unit Euclidean length, float32, shape unchanged; all-zero rows stay zero."""
    out = np.array(x, dtype=np.float32) if copy else np.asarray(x, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", out, out, dtype=np.float64)).astype(np.float32)
    norms[norms == 0] = 1.0
    out /= norms[:, None]
    return out

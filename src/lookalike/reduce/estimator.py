"""Raw embeddings → reduced vectors: L2-normalise, PCA, optional whitening, L2-normalise again.

The default pipeline (``Reducer()``) is::

    x / ||x||  →  (x - mean) @ components.T  →  y / ||y||      (n, D) float → (n, 256) float32

Re-normalising after PCA is the documented default: the reduced vectors have unit length, so an
inner product *is* the cosine similarity and Euclidean distance is a monotone function of it
(``||a - b||² = 2 - 2 cos``). Pass ``renormalize=False`` to keep the raw PCA coordinates.

PCA is fitted from the covariance matrix, accumulated in float64 over float32 chunks of
mean-centred rows (two passes, never a float64 copy of the data): a 100k × 1280 fit holds the
float32 input plus one chunk and a 1280 × 1280 matrix; only the wanted top eigenpairs are
computed (LAPACK ``syevr`` on an index range). With fewer samples than features the (n, n) Gram
matrix of the centred rows is decomposed instead (a float64 copy of at most n·d < d² values):
30 images of 3072-d pixels fit in milliseconds instead of ~10 s for a 3072 × 3072 ``eigh``. Components follow scikit-learn's sign
convention (the largest-magnitude entry of each component is positive), so results agree with
``sklearn.decomposition.PCA`` up to float32 rounding and the fingerprint is stable.

``n_components`` larger than ``min(n_samples, n_features)`` is *clamped* to that value; the
clamp is recorded in ``notes_`` (saved with the model) and announced with a ``UserWarning``.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError
from lookalike.validation import as_matrix, check_dim, l2_normalize

FORMAT_VERSION = 1
_CHUNK_ROWS = 8192
_ARRAY_KEYS = (
    "format_version", "n_components_param", "whiten", "normalize_input", "renormalize",
    "mean", "components", "explained_variance", "explained_variance_ratio",
    "total_variance", "n_samples", "notes",
)  # fmt: skip


class Reducer:
    """L2 → PCA → (whitening) → L2, following scikit-learn's transformer contract.

    Parameters
    ----------
    n_components : int >= 1 (dimensions kept) or float in (0, 1) (smallest number of components
        whose explained variance ratio reaches it, as in scikit-learn).
    whiten : divide each component by its standard deviation.
    normalize_input : L2-normalise rows before PCA.
    renormalize : L2-normalise rows after PCA (default: inner product = cosine).

    Attributes (after ``fit``)
    --------------------------
    mean_ : (n_features,) float32, mean of the normalised input.
    components_ : (n_components_, n_features) float32, orthonormal rows.
    explained_variance_, explained_variance_ratio_ : (n_components_,) float64.
    n_components_, n_features_in_, n_samples_ : ints.  notes_ : list of str (e.g. a clamp).
    """

    def __init__(
        self,
        n_components: float = 256,
        *,
        whiten: bool = False,
        normalize_input: bool = True,
        renormalize: bool = True,
    ) -> None:
        self.n_components = n_components
        self.whiten = whiten
        self.normalize_input = normalize_input
        self.renormalize = renormalize

    def fit(self, X: Any, y: Any = None) -> Reducer:
        """Learn mean and principal axes from ``X`` of shape (n_samples >= 2, n_features)."""
        _check_n_components(self.n_components)
        x = as_matrix(X, min_rows=2)
        mean = self._mean(x)
        n, d = x.shape
        limit = min(n, d)
        wanted = None if isinstance(self.n_components, (float, np.floating)) else min(int(self.n_components), limit)
        if n < d:
            values, vectors, total = self._gram_eigen(x, mean)
        else:
            values, vectors, total = _top_eigen(self._covariance(x, mean), wanted)
        if total <= 0.0:
            raise InvalidParameterError(
                f"all {n} points in X are identical after normalisation; PCA needs variation"
            )
        ratio = values / total
        k, notes = _resolve_n_components(self.n_components, ratio, n, d)
        for note in notes:
            warnings.warn(note, UserWarning, stacklevel=2)
        self.mean_ = mean.astype(np.float32)
        self.components_ = np.ascontiguousarray(_flip_signs(vectors[:k]), dtype=np.float32)
        self.explained_variance_ = values[:k].copy()
        self.explained_variance_ratio_ = ratio[:k].copy()
        self.total_variance_ = total
        self.n_components_ = k
        self.n_features_in_ = d
        self.n_samples_ = n
        self.notes_ = notes
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Reduce ``X`` (n, n_features_in_) to float32 (n, n_components_)."""
        self._check_fitted()
        x = as_matrix(X)
        check_dim(x, self.n_features_in_, owner="this Reducer")
        weights = self.components_
        if self.whiten:
            scale = np.sqrt(np.maximum(self.explained_variance_, self.explained_variance_[0] * 1e-12))
            weights = (weights / scale[:, None].astype(np.float32)).astype(np.float32)
        offset = self.mean_ @ weights.T
        out = np.empty((x.shape[0], self.n_components_), dtype=np.float32)
        for start in range(0, x.shape[0], _CHUNK_ROWS):
            chunk = self._prepare(x[start : start + _CHUNK_ROWS])
            block = chunk @ weights.T
            block -= offset
            out[start : start + _CHUNK_ROWS] = l2_normalize(block, copy=False) if self.renormalize else block
        return out

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)

    @property
    def fingerprint(self) -> str:
        """16 hex digits of SHA-256 over the learned state and settings; equal state, equal print.

        Remembered for the arrays it was computed from (hashing 300 x 1280 floats costs about a
        millisecond, and the API asks once per uploaded query)."""
        self._check_fitted()
        flags = (self.whiten, self.normalize_input, self.renormalize)
        arrays = (self.mean_, self.components_, self.explained_variance_)
        remembered = getattr(self, "_fingerprint", None)
        if remembered is not None and remembered[0] == flags and all(a is b for a, b in zip(remembered[1], arrays)):
            return str(remembered[2])
        digest = hashlib.sha256()
        digest.update(repr(flags).encode())
        for array in arrays:
            digest.update(np.ascontiguousarray(array).tobytes())
        self._fingerprint = (flags, arrays, digest.hexdigest()[:16])
        return self._fingerprint[2]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as plain arrays (0-d for scalars), ready for ``np.savez``."""
        self._check_fitted()
        return {
            "format_version": np.array(FORMAT_VERSION),
            "n_components_param": np.array(float(self.n_components)),
            "whiten": np.array(bool(self.whiten)),
            "normalize_input": np.array(bool(self.normalize_input)),
            "renormalize": np.array(bool(self.renormalize)),
            "mean": self.mean_,
            "components": self.components_,
            "explained_variance": self.explained_variance_,
            "explained_variance_ratio": self.explained_variance_ratio_,
            "total_variance": np.array(self.total_variance_),
            "n_samples": np.array(self.n_samples_),
            "notes": np.array(self.notes_, dtype=str),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> Reducer:
        """Rebuild a fitted Reducer from :meth:`to_arrays` output (or an ``np.load`` result)."""
        missing = [key for key in _ARRAY_KEYS if key not in arrays]
        if missing:
            raise InvalidParameterError(
                f"saved Reducer state lacks {missing}; expected keys {list(_ARRAY_KEYS)}"
            )
        version = int(arrays["format_version"])
        if version != FORMAT_VERSION:
            raise InvalidParameterError(
                f"saved Reducer format {version} is not the supported {FORMAT_VERSION}"
            )
        param = float(arrays["n_components_param"])
        reducer = cls(
            int(param) if param >= 1 else param,
            whiten=bool(arrays["whiten"]),
            normalize_input=bool(arrays["normalize_input"]),
            renormalize=bool(arrays["renormalize"]),
        )
        components = np.ascontiguousarray(arrays["components"], dtype=np.float32)
        reducer.mean_ = np.asarray(arrays["mean"], dtype=np.float32)
        reducer.components_ = components
        reducer.explained_variance_ = np.asarray(arrays["explained_variance"], dtype=np.float64)
        reducer.explained_variance_ratio_ = np.asarray(arrays["explained_variance_ratio"], dtype=np.float64)
        reducer.total_variance_ = float(arrays["total_variance"])
        reducer.n_components_, reducer.n_features_in_ = components.shape
        reducer.n_samples_ = int(arrays["n_samples"])
        reducer.notes_ = [str(note) for note in np.asarray(arrays["notes"]).ravel()]
        if reducer.mean_.shape != (components.shape[1],):
            raise InvalidParameterError(
                f"saved Reducer mean has shape {reducer.mean_.shape}; expected ({components.shape[1]},)"
            )
        return reducer

    # -- private helpers (input already checked) ------------------------------------------

    def _prepare(self, chunk: np.ndarray) -> np.ndarray:
        """A fresh float32 copy of ``chunk``, L2-normalised when ``normalize_input``."""
        return l2_normalize(chunk) if self.normalize_input else chunk.copy()

    def _mean(self, x: np.ndarray) -> np.ndarray:
        total = np.zeros(x.shape[1], dtype=np.float64)
        for start in range(0, x.shape[0], _CHUNK_ROWS):
            total += self._prepare(x[start : start + _CHUNK_ROWS]).sum(axis=0, dtype=np.float64)
        return total / x.shape[0]

    def _covariance(self, x: np.ndarray, mean: np.ndarray) -> np.ndarray:
        mean32 = mean.astype(np.float32)
        cov = np.zeros((x.shape[1], x.shape[1]), dtype=np.float64)
        for start in range(0, x.shape[0], _CHUNK_ROWS):
            centred = self._prepare(x[start : start + _CHUNK_ROWS])
            centred -= mean32
            cov += centred.T @ centred
        cov /= x.shape[0] - 1
        return cov

    def _gram_eigen(self, x: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Eigen-decomposition through the (n, n) Gram matrix, for n_samples < n_features.

        The covariance ``C = Xcᵀ Xc / (n-1)`` and ``G = Xc Xcᵀ / (n-1)`` share their non-zero
        eigenvalues, and ``u = Xcᵀ v / sqrt((n-1) λ)`` turns an eigenvector of G into one of C:
        O(n²·d + n³) instead of O(n·d² + d³). Returns (n,) descending eigenvalues, (n, d) unit
        axes and the total variance. Axes of (numerically) zero variance — centring leaves at most
        n - 1 non-zero ones — are completed to an orthonormal set deterministically.
        """
        centred = np.empty(x.shape, dtype=np.float64)
        for start in range(0, x.shape[0], _CHUNK_ROWS):
            centred[start : start + _CHUNK_ROWS] = self._prepare(x[start : start + _CHUNK_ROWS])
        centred -= mean
        gram = centred @ centred.T
        gram /= x.shape[0] - 1
        values, small = np.linalg.eigh(gram)
        values, small = np.clip(values[::-1], 0.0, None), small[:, ::-1]
        good = values > max(values[0] * 1e-10, 0.0)
        axes = (centred.T @ small[:, good]) / np.sqrt((x.shape[0] - 1) * values[good])
        return values, _complete_orthonormal(axes.T, x.shape[0]), float(np.trace(gram))

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise InvalidParameterError("this Reducer is not fitted yet; call fit(X) first")


def _top_eigen(cov: np.ndarray, wanted: int | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Largest eigenvalues (descending) and unit axes (rows) of a (d, d) covariance, and its trace.

    ``wanted`` components only (LAPACK ``syevr`` on that index range: about half the time of a
    full decomposition at d = 3072), or the full spectrum when None (variance-fraction targets).
    """
    import scipy.linalg

    total = float(np.trace(cov))
    d = cov.shape[0]
    subset = None if wanted is None or wanted >= d else (d - wanted, d - 1)
    values, vectors = scipy.linalg.eigh(cov, subset_by_index=subset, driver="evr" if subset else "evd")
    return np.clip(values[::-1], 0.0, None), vectors[:, ::-1].T, total


def _complete_orthonormal(axes: np.ndarray, count: int) -> np.ndarray:
    """``axes`` (r, d) orthonormal rows extended to ``count`` rows with seeded orthonormal ones."""
    missing = count - axes.shape[0]
    if missing <= 0:
        return axes
    rng = np.random.default_rng(0)
    extra = rng.standard_normal((missing, axes.shape[1]))
    extra -= (extra @ axes.T) @ axes
    basis, _ = np.linalg.qr(extra.T)
    return np.vstack([axes, basis.T])


def _check_n_components(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidParameterError(f"n_components must be an int >= 1 or a float in (0, 1); got {value!r}")
    if isinstance(value, (float, np.floating)) and not 0.0 < value < 1.0:
        raise InvalidParameterError(f"n_components as a fraction must be in (0, 1); got {value}")
    if isinstance(value, (int, np.integer)) and value < 1:
        raise InvalidParameterError(f"n_components must be >= 1; got {value}")


def _resolve_n_components(
    requested: float, ratio: np.ndarray, n_samples: int, n_features: int
) -> tuple[int, list[str]]:
    """Components to keep and any notes; ``requested`` is already valid."""
    limit = min(n_samples, n_features)
    if isinstance(requested, (float, np.floating)):
        k = int(np.searchsorted(np.cumsum(ratio), requested, side="right")) + 1
        return min(k, limit), []
    if requested > limit:
        note = (
            f"n_components={requested} clamped to {limit} = min(n_samples={n_samples}, "
            f"n_features={n_features})"
        )
        return limit, [note]
    return int(requested), []


def _flip_signs(components: np.ndarray) -> np.ndarray:
    """Make the largest-magnitude entry of each row positive (scikit-learn's ``svd_flip``)."""
    rows = np.arange(components.shape[0])
    signs = np.sign(components[rows, np.argmax(np.abs(components), axis=1)])
    signs[signs == 0] = 1.0
    return components * signs[:, None]

"""Learned projection from labels: reduced vectors → a space where same-label images are near.

:class:`LabelProjector` fits linear discriminant analysis (scikit-learn, ``eigen`` solver with
shrinkage 0.05, so a few hundred images of 256-d vectors fit stably) on labelled reduced vectors
``x`` (n, d) and maps them to ``normalise([x, beta * z])`` (n, d + c - 1), where ``z`` are the
``c - 1`` discriminant coordinates (``c`` = classes; within-class variance 1). Keeping ``x``
keeps the within-class order (which LDA alone flattens: with 2 classes it is one number) while
``z`` pulls same-label images together; ``beta`` weighs the two (1.0 and shrinkage 0.05 chosen
on Fashion-MNIST images 3000–6000, a set none of the reported numbers use). It follows
scikit-learn's estimator contract; its state is plain arrays, stored like the PCA
(``lookalike.store.projection``) with the fingerprint of the reducer it was fitted on: a refitted
PCA makes it stale. Honest scores: ``lookalike.evaluate.projection``.

The other method, ``head`` (:class:`lookalike.reduce.head.HeadProjector`, the default: better on
the tuning set), trains a small metric-learning head instead. :func:`make_projector` builds either
by name; :func:`projector_from_arrays` reads either back (arrays without ``method``, written
before the head existed, are LDA).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from lookalike.config import PROJECTION_METHODS
from lookalike.errors import InvalidParameterError
from lookalike.progress import Progress
from lookalike.validation import as_vectors_of, l2_normalize

if TYPE_CHECKING:
    from lookalike.reduce.head import HeadProjector

METHODS = PROJECTION_METHODS
DEFAULT_METHOD = "head"


class LabelProjector:
    """LDA projection of unit vectors, re-normalised to unit length.

    Parameters
    ----------
    beta : weight of the discriminant coordinates beside the reduced vector.
    shrinkage : ``"auto"`` (Ledoit-Wolf) or a float in [0, 1].

    Attributes (after ``fit``)
    --------------------------
    mean_ : (d,) float32.  scalings_ : (d, c - 1) float32.  classes_ : (c,) str.  n_features_in_ : int.
    """

    def __init__(self, beta: float = 1.0, shrinkage: str | float = 0.05) -> None:
        self.beta = beta
        self.shrinkage = shrinkage

    def fit(self, X: np.ndarray, y: np.ndarray, progress: Progress | None = None) -> LabelProjector:
        """Learn the projection from ``X`` (n, d) and labels ``y`` (n,) with >= 2 classes
        (``progress``: accepted like :class:`~lookalike.reduce.head.HeadProjector`'s; LDA is quick)."""
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        x = np.asarray(X, dtype=np.float64)
        labels = np.asarray(y).astype(str)
        classes = np.unique(labels)
        if classes.size < 2 or x.shape[0] != labels.size:
            raise InvalidParameterError(
                f"a projection needs labelled vectors of at least 2 classes; got {classes.size} class(es), "
                f"{x.shape[0]} vectors and {labels.size} labels"
            )
        lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=self.shrinkage).fit(x, labels)
        wanted = classes.size - 1
        self.mean_ = x.mean(axis=0).astype(np.float32)
        self.scalings_ = np.ascontiguousarray(lda.scalings_[:, :wanted], dtype=np.float32)
        self.classes_ = classes
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(n, d) reduced vectors -> (n, m) float32 unit vectors."""
        if not hasattr(self, "scalings_"):
            raise InvalidParameterError("this LabelProjector is not fitted: call fit first")
        x = as_vectors_of(X, self.n_features_in_)
        z = (x - self.mean_) @ self.scalings_
        projected: np.ndarray = l2_normalize(np.hstack([x, np.float32(self.beta) * z]), copy=False)
        return projected

    @property
    def n_features_out_(self) -> int:
        return int(self.n_features_in_ + self.scalings_.shape[1])

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.scalings_.tobytes() + self.mean_.tobytes() + repr(float(self.beta)).encode())
        return digest.hexdigest()[:16]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"method": np.array("lda"), "mean": self.mean_, "scalings": self.scalings_, "classes": self.classes_.astype(str),
                "beta": np.array(float(self.beta))}  # fmt: skip

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> LabelProjector:
        projector = cls(beta=float(arrays["beta"]))
        projector.mean_ = np.asarray(arrays["mean"], dtype=np.float32)
        projector.scalings_ = np.ascontiguousarray(arrays["scalings"], dtype=np.float32)
        projector.classes_ = np.asarray(arrays["classes"]).astype(str)
        projector.n_features_in_ = int(projector.scalings_.shape[0])
        return projector


Projector = Union[LabelProjector, "HeadProjector"]


def make_projector(
    method: str = DEFAULT_METHOD, *, seed: int = 0, beta: float = 1.0, shrinkage: float = 0.05
) -> Projector:
    """An unfitted projector: ``lda`` (``beta``, ``shrinkage``) or ``head`` (``seed``)."""
    if method == "lda":
        return LabelProjector(beta=beta, shrinkage=shrinkage)
    if method == "head":
        from lookalike.reduce.head import HeadProjector

        return HeadProjector(seed=seed)
    raise InvalidParameterError(f"projection method must be one of {', '.join(METHODS)}; got {method!r}")


def projector_from_arrays(arrays: Mapping[str, Any]) -> Projector:
    """The projector stored as ``arrays`` (``to_arrays``); no ``method`` means LDA (older files)."""
    method = str(arrays["method"]) if "method" in arrays else "lda"
    if method == "lda":
        return LabelProjector.from_arrays(arrays)
    if method == "head":
        from lookalike.reduce.head import HeadProjector

        return HeadProjector.from_arrays(arrays)
    raise InvalidParameterError(f"unknown stored projection method {method!r}; expected one of {', '.join(METHODS)}")

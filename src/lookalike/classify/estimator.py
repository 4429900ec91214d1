"""Classifiers on reduced vectors: SVM, Random Forest, k-nearest neighbours, logistic regression.

Arrays in, arrays out; no I/O (``lookalike.classify.train`` stores models in a library).

Models (``VectorClassifier(model=...)``):

- ``svm``: RBF ``SVC``; C and gamma chosen by stratified k-fold grid search (gamma as multiples of
  scikit-learn's ``"scale"`` heuristic ``1 / (n_features * X.var())``, so the grid suits any
  vector scale). Probabilities come from ``CalibratedClassifierCV(ensemble=False)``: calibrators
  are fitted on out-of-fold decision values and one SVC trained on all data serves predictions,
  so ``predict`` is the arg-max of ``predict_proba``. Isotonic calibration from
  :data:`ISOTONIC_MIN_IMAGES` training images, sigmoid (Platt) below, where isotonic overfits (as
  scikit-learn's calibration guide advises). ``SVC(probability=True)`` is not used: scikit-learn 1.9
  deprecates it (removal in 1.11; the warning recommends exactly this replacement), and its
  class predictions can disagree with its own probabilities. Measured on Fashion-MNIST (3,000 images,
  75/25): validation log-loss 0.46 isotonic, 0.57 sigmoid (libsvm's pairwise coupling: 0.38),
  accuracy 0.876 either way.
- ``rf``: ``RandomForestClassifier``; native probabilities (mean of the trees' class fractions).
- ``knn``: ``KNeighborsClassifier`` with cosine distance, distance-weighted votes; native
  probabilities (weighted vote fractions).
- ``logreg``: multinomial ``LogisticRegression`` on the vectors divided by their overall standard
  deviation (one number: the geometry and the PCA's variance ordering are kept, unlike per-feature
  standardising, which inflates noise components); C chosen by grid search; native (softmax)
  probabilities.

Fits and predictions run with one BLAS thread (``threadpoolctl``): these matrices are small, and on
a busy machine OpenBLAS threads made a logistic regression fit 25x slower (5.7 s vs 0.2 s).

``projection`` (``"lda"`` or ``"head"``, :mod:`lookalike.reduce.project`) first learns a label
projection from the training vectors only and classifies in its space; being part of ``fit``, it is
learned again inside every split and fold, so validation and cross-validation images never shape
it (a projection learned on all labels would inflate them). Within a grid search the folds share
the projection of their training part.

:func:`cross_validate` reuses the hyperparameters it is given (pass the ones chosen on a training
split): it measures the spread over folds of one configuration, it is not a nested search.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike.cluster.metrics import check_labels
from lookalike.config import CLASSIFY_MODELS, ClassifyConfig
from lookalike.errors import InvalidParameterError
from lookalike.validation import as_matrix, check_choice, check_dim, check_int

MODELS = CLASSIFY_MODELS
ISOTONIC_MIN_IMAGES = 1000
"""SVM calibration is isotonic from this many training images, sigmoid (Platt) below."""
PROBABILITIES = {
    "svm": "calibrated: CalibratedClassifierCV(ensemble=False) on out-of-fold SVC decision values",
    "rf": "native: mean class fraction over the trees",
    "knn": "native: distance-weighted neighbour vote",
    "logreg": "native: softmax",
}


class VectorClassifier:
    """One classifier on vectors (scikit-learn's estimator contract).

    Parameters
    ----------
    model : one of :data:`MODELS`.
    seed : seeds the folds, the calibration split and the forest.
    cv : folds of the hyperparameter grid search (fewer when a class has fewer images).
    svm_C, svm_gamma : SVM grid: C values, and gamma as multiples of the ``"scale"`` gamma.
    logreg_C : logistic regression grid of C values.
    n_neighbors : k of k-NN (clamped to the training size).
    n_estimators : trees of the forest.
    calibration_folds : folds of the SVM's probability calibration.
    projection : None, or a label projection (``lda``, ``head``) learned from the training vectors
        and applied before the classifier.

    Attributes (after ``fit``)
    --------------------------
    classes_ : (n_classes,) sorted labels.  n_features_in_ : d.
    projector_ : the fitted projection, or None.
    estimator_ : the fitted scikit-learn estimator (trained on class codes 0..n_classes-1).
    best_params_ : dict of chosen hyperparameters (and ``cv_accuracy`` when searched).
    """

    def __init__(
        self,
        model: str = "svm",
        *,
        seed: int = 0,
        cv: int = 5,
        svm_C: tuple[float, ...] = ClassifyConfig.svm_C,
        svm_gamma: tuple[float, ...] = ClassifyConfig.svm_gamma,
        logreg_C: tuple[float, ...] = ClassifyConfig.logreg_C,
        n_neighbors: int = ClassifyConfig.n_neighbors,
        n_estimators: int = ClassifyConfig.n_estimators,
        calibration_folds: int = ClassifyConfig.calibration_folds,
        projection: str | None = None,
    ) -> None:
        self.model = model
        self.seed = seed
        self.cv = cv
        self.svm_C = svm_C
        self.svm_gamma = svm_gamma
        self.logreg_C = logreg_C
        self.n_neighbors = n_neighbors
        self.n_estimators = n_estimators
        self.calibration_folds = calibration_folds
        self.projection = projection

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor settings (lets ``sklearn.base.clone`` copy this estimator)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params: Any) -> VectorClassifier:
        """Change constructor settings; unknown names are refused."""
        known = self.get_params()
        for name, value in params.items():
            if name not in known:
                raise InvalidParameterError(f"unknown parameter {name!r}; expected one of {sorted(known)}")
            setattr(self, name, value)
        return self

    def fit(self, X: Any, y: Any) -> VectorClassifier:
        """Train on ``X`` (n, d) with labels ``y`` (n,) of at least 2 classes."""
        check_choice(self.model, "model", MODELS)
        check_int(self.seed, "seed", low=0)
        x = as_matrix(X, min_rows=2)
        labels = check_labels(y, x.shape[0], name="y")
        classes, codes = np.unique(labels, return_inverse=True)
        if classes.size < 2:
            raise InvalidParameterError(
                f"need at least 2 classes to train a classifier; all {x.shape[0]} labels are {classes[0]!r}"
            )
        self.n_features_in_ = x.shape[1]
        self.projector_ = None
        if self.projection is not None:
            from lookalike.reduce.project import make_projector

            self.projector_ = make_projector(self.projection, seed=self.seed).fit(x, labels)
            x = self.projector_.transform(x)
        with _one_blas_thread():
            self.estimator_, self.best_params_ = _FITTERS[self.model](self, x, codes)
        if self.projector_ is not None:
            self.best_params_["projection"] = self.projection
        self.classes_ = classes
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of ``X`` (n, d): (n, n_classes) float64, columns in ``classes_`` order."""
        x = self._checked(X)
        with _one_blas_thread():
            return np.asarray(self.estimator_.predict_proba(x), dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row of ``X`` (n, d): (n,) labels."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def top_k(self, X: Any, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """(labels (n, k'), probabilities (n, k')) best first, with k' = min(k, n_classes)."""
        proba = self.predict_proba(X)
        k = min(check_int(k, "k", low=1), proba.shape[1])
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        return self.classes_[order], np.take_along_axis(proba, order, axis=1)

    def _checked(self, X: Any) -> np.ndarray:
        if not hasattr(self, "estimator_"):
            raise InvalidParameterError("this VectorClassifier is not fitted yet; call fit(X, y) first")
        x = as_matrix(X)
        check_dim(x, self.n_features_in_, owner=f"this {self.model} classifier")
        projector = getattr(self, "projector_", None)  # models stored before projections have none
        return x if projector is None else projector.transform(x)


def _one_blas_thread() -> Any:
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


# -- estimators (input already checked: float32 matrix, integer codes 0..C-1) -------------------
def _folds(codes: np.ndarray, wanted: int, seed: int, purpose: str) -> Any:
    """Stratified folds for ``purpose``: ``min(wanted, smallest class)``, at least 2."""
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.bincount(codes).min())
    n = min(check_int(wanted, f"{purpose} folds", low=2), smallest)
    if n < 2:
        raise InvalidParameterError(
            f"{purpose} needs at least 2 training images per class; the smallest class has {smallest}"
        )
    return StratifiedKFold(n_splits=n, shuffle=True, random_state=seed)


def _search(estimator: Any, grid: dict[str, list[Any]], x: np.ndarray, codes: np.ndarray,
            params: VectorClassifier) -> tuple[dict[str, Any], float | None]:
    """Best grid point by k-fold accuracy (no search for a single point): (params, cv accuracy)."""
    if all(len(values) == 1 for values in grid.values()):
        return {name: values[0] for name, values in grid.items()}, None
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(estimator, grid, cv=_folds(codes, params.cv, params.seed, "the grid search"),
                          scoring="accuracy", refit=False)
    search.fit(x, codes)
    return dict(search.best_params_), float(search.best_score_)


def _grid(values: Any, name: str) -> list[float]:
    grid = [float(v) for v in np.atleast_1d(np.asarray(values, dtype=np.float64))]
    if not grid or min(grid) <= 0:
        raise InvalidParameterError(f"{name} must be one or more values > 0; got {values!r}")
    return grid


def _fit_svm(params: VectorClassifier, x: np.ndarray, codes: np.ndarray) -> tuple[Any, dict[str, Any]]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    variance = float(x.var())
    scale = 1.0 / (x.shape[1] * variance) if variance > 0 else 1.0
    factors = _grid(params.svm_gamma, "svm_gamma")
    grid = {"C": _grid(params.svm_C, "svm_C"), "gamma": [f * scale for f in factors]}
    best, score = _search(SVC(kernel="rbf"), grid, x, codes, params)
    folds = _folds(codes, params.calibration_folds, params.seed, "SVM probability calibration")
    method = "isotonic" if x.shape[0] >= ISOTONIC_MIN_IMAGES else "sigmoid"
    model = CalibratedClassifierCV(SVC(kernel="rbf", **best), method=method, cv=folds, ensemble=False)
    model.fit(x, codes)
    factor = factors[grid["gamma"].index(best["gamma"])]
    return model, {"C": best["C"], "gamma": best["gamma"], "gamma_factor": factor, "cv_accuracy": score,
                   "calibration": method}


def _fit_logreg(params: VectorClassifier, x: np.ndarray, codes: np.ndarray) -> tuple[Any, dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    std = float(x.std())
    factor = 1.0 / std if std > 0 else 1.0

    def build(C: float = 1.0) -> Any:
        scale = FunctionTransformer(_scaled, kw_args={"factor": factor})
        return make_pipeline(scale, LogisticRegression(C=C, max_iter=1000))

    grid = {"logisticregression__C": _grid(params.logreg_C, "logreg_C")}
    best, score = _search(build(), grid, x, codes, params)
    C = best["logisticregression__C"]
    return build(C).fit(x, codes), {"C": C, "cv_accuracy": score}


def _scaled(x: np.ndarray, factor: float) -> np.ndarray:
    """``x * factor`` (a module-level function, so stored pipelines can be unpickled)."""
    return x * np.float32(factor)


def _fit_knn(params: VectorClassifier, x: np.ndarray, codes: np.ndarray) -> tuple[Any, dict[str, Any]]:
    from sklearn.neighbors import KNeighborsClassifier

    k = min(check_int(params.n_neighbors, "n_neighbors", low=1), x.shape[0])
    model = KNeighborsClassifier(n_neighbors=k, metric="cosine", weights="distance", algorithm="brute")
    return model.fit(x, codes), {"n_neighbors": k}


def _fit_rf(params: VectorClassifier, x: np.ndarray, codes: np.ndarray) -> tuple[Any, dict[str, Any]]:
    from sklearn.ensemble import RandomForestClassifier

    trees = check_int(params.n_estimators, "n_estimators", low=1)
    model = RandomForestClassifier(n_estimators=trees, random_state=params.seed)
    return model.fit(x, codes), {"n_estimators": trees}


_FITTERS: dict[str, Callable[[VectorClassifier, np.ndarray, np.ndarray], tuple[Any, dict[str, Any]]]] = {
    "svm": _fit_svm, "rf": _fit_rf, "knn": _fit_knn, "logreg": _fit_logreg,
}


# -- metrics, split, cross-validation -------------------------------------------------------------
@dataclass(frozen=True)
class ClassificationMetrics:
    """Scores of predictions against true labels; per-class arrays follow ``labels``.

    ``confusion[i, j]`` counts images of class ``labels[i]`` predicted as ``labels[j]``.
    """

    labels: np.ndarray
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    confusion: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: scalars, and per-class values keyed by label."""
        names = [str(label) for label in self.labels]
        per_class = {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, self.precision, self.recall, self.f1, self.support)
        }
        return {
            "accuracy": self.accuracy, "balanced_accuracy": self.balanced_accuracy, "macro_f1": self.macro_f1,
            "per_class": per_class, "labels": names, "confusion": self.confusion.tolist(),
        }


def classification_metrics(y_true: Any, y_pred: Any, labels: Any | None = None) -> ClassificationMetrics:
    """Accuracy, balanced accuracy, macro-F1, per-class precision/recall/F1, confusion matrix.

    ``labels`` fixes the class order (default: sorted union of both); all via ``sklearn.metrics``.
    """
    import warnings

    from sklearn import metrics

    truth = check_labels(y_true, name="y_true")
    pred = check_labels(y_pred, truth.shape[0], name="y_pred")
    if truth.size == 0:
        raise InvalidParameterError("no predictions to score: y_true is empty")
    order = np.unique(np.concatenate([truth, pred])) if labels is None else np.asarray(labels)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        truth, pred, labels=order, zero_division=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a predicted class absent from y_true
        balanced = metrics.balanced_accuracy_score(truth, pred)
    return ClassificationMetrics(
        labels=order,
        accuracy=float(metrics.accuracy_score(truth, pred)),
        balanced_accuracy=float(balanced),
        macro_f1=float(metrics.f1_score(truth, pred, labels=order, average="macro", zero_division=0)),
        precision=precision, recall=recall, f1=f1, support=support.astype(np.int64),
        confusion=metrics.confusion_matrix(truth, pred, labels=order),
    )


def stratified_split(y: Any, test_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified (train indices, validation indices) of labels ``y`` (n,).

    Refuses classes with fewer than 2 images and a validation split smaller than the class count,
    naming the numbers (scikit-learn's ``train_test_split`` would fail less clearly).
    """
    from sklearn.model_selection import train_test_split

    labels = check_labels(y, name="y")
    if not 0.0 < float(test_size) < 1.0:
        raise InvalidParameterError(f"test_size must be in (0, 1); got {test_size}")
    classes, counts = np.unique(labels, return_counts=True)
    small = {str(c): int(n) for c, n in zip(classes, counts) if n < 2}
    if small:
        raise InvalidParameterError(
            f"a stratified split needs at least 2 images per class; {len(small)} class(es) have 1: "
            f"{_sample(small)}"
        )
    n_test = int(np.ceil(float(test_size) * labels.size))
    if n_test < classes.size or labels.size - n_test < classes.size:
        raise InvalidParameterError(
            f"test_size={test_size} of {labels.size} images gives {n_test} validation and "
            f"{labels.size - n_test} training images; each side needs at least one per class "
            f"({classes.size} classes): add images or change test_size"
        )
    indices = np.arange(labels.size)
    train, test = train_test_split(indices, test_size=float(test_size), random_state=seed, stratify=labels)
    return np.sort(train), np.sort(test)


@dataclass(frozen=True)
class CrossValidation:
    """k-fold scores: ``folds`` per-fold metrics, and the confusion matrix summed over folds."""

    n_folds: int
    folds: list[ClassificationMetrics]
    confusion: np.ndarray

    def summary(self) -> dict[str, Any]:
        """Mean and standard deviation of accuracy, balanced accuracy and macro-F1 over the folds."""
        out: dict[str, Any] = {"n_folds": self.n_folds}
        for name in ("accuracy", "balanced_accuracy", "macro_f1"):
            values = np.array([getattr(f, name) for f in self.folds])
            out[name] = {"mean": float(values.mean()), "std": float(values.std())}
        return out


def cross_validate(make: Callable[[], VectorClassifier], X: Any, y: Any, *, folds: int = 5,
                   seed: int = 0) -> CrossValidation | None:
    """Stratified k-fold scores of fresh ``make()`` classifiers on ``X`` (n, d), ``y`` (n,).

    The fold count drops to what the smallest class allows (each training fold keeps at least
    2 images per class); None when not even 2 folds fit.
    """
    from sklearn.model_selection import StratifiedKFold

    x = as_matrix(X, min_rows=2)
    labels = check_labels(y, x.shape[0], name="y")
    classes, counts = np.unique(labels, return_counts=True)
    n = _cv_folds(int(counts.min()), check_int(folds, "folds", low=2))
    if n is None:
        return None
    results = []
    for train, test in StratifiedKFold(n_splits=n, shuffle=True, random_state=seed).split(x, labels):
        model = make().fit(x[train], labels[train])
        results.append(classification_metrics(labels[test], model.predict(x[test]), classes))
    return CrossValidation(n, results, np.sum([r.confusion for r in results], axis=0))


def _cv_folds(smallest: int, wanted: int) -> int | None:
    """Most folds <= wanted leaving every training fold >= 2 images of the smallest class."""
    for n in range(min(wanted, smallest), 1, -1):
        if smallest - int(np.ceil(smallest / n)) >= 2:
            return n
    return None


def _sample(counts: dict[str, int], shown: int = 5) -> str:
    items = [f"{name!r} ({n})" for name, n in list(counts.items())[:shown]]
    more = f" and {len(counts) - shown} more" if len(counts) > shown else ""
    return ", ".join(items) + more

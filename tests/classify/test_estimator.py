"""Classifiers on arrays: the estimator contract, sklearn as the reference for metrics and models."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from lookalike.classify.estimator import (
    MODELS,
    VectorClassifier,
    classification_metrics,
    cross_validate,
    stratified_split,
)
from lookalike.errors import InvalidParameterError


def blobs(n_per_class=20, n_classes=3, dim=12, spread=0.35, seed=0):
    """Seeded Gaussian blobs around random unit centres; labels are strings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.concatenate([c + spread * rng.normal(size=(n_per_class, dim)) / np.sqrt(dim) for c in centres])
    y = np.repeat(np.array([f"class-{i}" for i in range(n_classes)]), n_per_class)
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


FAST = {"svm_C": (1.0, 10.0), "svm_gamma": (1.0,), "logreg_C": (1.0, 10.0), "n_estimators": 30, "cv": 3}


@pytest.mark.parametrize("model", MODELS, ids=MODELS)
def test_every_model_learns_separable_classes_with_consistent_probabilities(model):
    x, y = blobs(seed=1)
    xt, yt = blobs(seed=1, n_per_class=10)  # same centres, new points
    clf = VectorClassifier(model, **FAST).fit(x, y)
    proba = clf.predict_proba(xt)
    assert proba.shape == (len(yt), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert list(clf.classes_) == ["class-0", "class-1", "class-2"]
    np.testing.assert_array_equal(clf.predict(xt), clf.classes_[proba.argmax(axis=1)])
    assert skm.accuracy_score(yt, clf.predict(xt)) >= 0.9


def test_svm_picks_the_same_C_and_gamma_as_sklearn_grid_search():
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    x, y = blobs(n_per_class=25, spread=1.5, seed=2)
    clf = VectorClassifier("svm", svm_C=(0.1, 1.0, 10.0), svm_gamma=(0.25, 1.0, 4.0), cv=3, seed=5).fit(x, y)
    scale = 1.0 / (x.shape[1] * x.var())
    codes = np.unique(y, return_inverse=True)[1]
    reference = GridSearchCV(
        SVC(kernel="rbf"), {"C": [0.1, 1.0, 10.0], "gamma": [f * scale for f in (0.25, 1.0, 4.0)]},
        cv=StratifiedKFold(3, shuffle=True, random_state=5), scoring="accuracy",
    ).fit(x, codes)
    assert clf.best_params_["C"] == reference.best_params_["C"]
    assert clf.best_params_["gamma"] == pytest.approx(reference.best_params_["gamma"])
    assert clf.best_params_["cv_accuracy"] == pytest.approx(reference.best_score_)


@pytest.mark.parametrize(("per_class", "method"), [(10, "sigmoid"), (340, "isotonic")], ids=["small", "large"])
def test_svm_calibration_is_isotonic_only_with_enough_images(per_class, method):
    from sklearn.metrics import log_loss

    x, y = blobs(n_per_class=per_class, spread=2.0, seed=10)
    xt, yt = blobs(n_per_class=50, spread=2.0, seed=10)
    clf = VectorClassifier("svm", svm_C=(1.0,), svm_gamma=(1.0,)).fit(x, y)
    assert clf.best_params_["calibration"] == method and clf.best_params_["cv_accuracy"] is None
    proba = clf.predict_proba(xt)
    uniform = np.full_like(proba, 1 / 3)
    assert log_loss(yt, proba, labels=clf.classes_) < log_loss(yt, uniform, labels=clf.classes_)


def test_knn_probabilities_match_sklearn_cosine_distance_weighted():
    from sklearn.neighbors import KNeighborsClassifier

    x, y = blobs(spread=1.5, seed=3)
    xt, _ = blobs(spread=1.5, seed=4)
    ours = VectorClassifier("knn", n_neighbors=7).fit(x, y).predict_proba(xt)
    reference = KNeighborsClassifier(7, metric="cosine", weights="distance").fit(x, y).predict_proba(xt)
    np.testing.assert_allclose(ours, reference, atol=1e-6)


def test_top_k_is_sorted_and_clamped_to_the_class_count():
    x, y = blobs(spread=1.5, seed=6)
    clf = VectorClassifier("logreg", logreg_C=(1.0,)).fit(x, y)
    labels, proba = clf.top_k(x[:4], k=10)
    assert labels.shape == proba.shape == (4, 3)
    assert np.all(np.diff(proba, axis=1) <= 0)
    full = clf.predict_proba(x[:4])
    for row in range(4):
        np.testing.assert_allclose(proba[row], [full[row, list(clf.classes_).index(c)] for c in labels[row]])
    np.testing.assert_array_equal(labels[:, 0], clf.predict(x[:4]))


def test_sklearn_clone_copies_the_settings():
    from sklearn.base import clone

    clf = VectorClassifier("knn", n_neighbors=3, seed=7)
    copy = clone(clf)
    assert copy is not clf and copy.get_params() == clf.get_params()
    with pytest.raises(InvalidParameterError, match="unknown parameter 'k'"):
        clf.set_params(k=3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x, y: VectorClassifier("tree").fit(x, y), "model must be one of"),
        (lambda x, y: VectorClassifier("knn").fit(x, np.full(len(y), "a")), "need at least 2 classes"),
        (lambda x, y: VectorClassifier("knn").fit(x, y[:-1]), "expected one per point"),
        (lambda x, y: VectorClassifier("knn").predict(x), "not fitted"),
        (lambda x, y: VectorClassifier("knn").fit(x, y).predict(x[:, :5]), "5 dimensions but this knn"),
        (lambda x, y: VectorClassifier("svm", svm_C=(0.0,)).fit(x, y), "svm_C must be"),
    ],
    ids=["unknown-model", "one-class", "label-count", "not-fitted", "dimension", "bad-grid"],
)
def test_bad_input_is_refused_with_a_clear_message(call, message):
    x, y = blobs()
    with pytest.raises(InvalidParameterError, match=message):
        call(x, y)


def test_svm_refuses_a_class_with_one_training_image():
    x, y = blobs(n_per_class=5)
    y = y.copy()
    y[0] = "lonely"
    with pytest.raises(InvalidParameterError, match="at least 2 training images per class"):
        VectorClassifier("svm", **FAST).fit(x, y)


def test_metrics_agree_with_sklearn():
    rng = np.random.default_rng(0)
    names = np.array(["cat", "dog", "eel", "fox"])
    truth = names[rng.integers(0, 4, 200)]
    pred = np.where(rng.random(200) < 0.6, truth, names[rng.integers(0, 4, 200)])
    m = classification_metrics(truth, pred)
    assert list(m.labels) == list(names)
    assert m.accuracy == pytest.approx(skm.accuracy_score(truth, pred))
    assert m.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(truth, pred))
    assert m.macro_f1 == pytest.approx(skm.f1_score(truth, pred, average="macro"))
    np.testing.assert_allclose(m.precision, skm.precision_score(truth, pred, average=None, labels=names))
    np.testing.assert_allclose(m.recall, skm.recall_score(truth, pred, average=None, labels=names))
    np.testing.assert_array_equal(m.confusion, skm.confusion_matrix(truth, pred, labels=names))
    as_dict = m.to_dict()
    assert as_dict["per_class"]["dog"]["support"] == int((truth == "dog").sum())
    assert as_dict["confusion"] == m.confusion.tolist()


def test_metrics_with_a_class_missing_from_the_truth_follow_the_given_order():
    m = classification_metrics(["a", "a", "b"], ["a", "c", "b"], labels=["a", "b", "c"])
    assert m.confusion.tolist() == [[1, 0, 1], [0, 1, 0], [0, 0, 0]]
    assert m.recall.tolist() == [0.5, 1.0, 0.0] and m.precision[2] == 0.0
    assert m.macro_f1 == pytest.approx(skm.f1_score(["a", "a", "b"], ["a", "c", "b"], average="macro",
                                                    labels=["a", "b", "c"], zero_division=0))


def test_stratified_split_keeps_class_proportions_and_is_seeded():
    y = np.repeat(["a", "b", "c"], [50, 30, 20])
    train, test = stratified_split(y, test_size=0.2, seed=3)
    assert len(test) == 20 and len(train) == 80
    assert set(train).isdisjoint(test) and set(train) | set(test) == set(range(100))
    assert sorted(np.unique(y[test], return_counts=True)[1].tolist()) == [4, 6, 10]
    again = stratified_split(y, test_size=0.2, seed=3)
    np.testing.assert_array_equal(test, again[1])
    assert not np.array_equal(test, stratified_split(y, test_size=0.2, seed=4)[1])


@pytest.mark.parametrize(
    ("labels", "test_size", "message"),
    [
        (["a"] * 5 + ["b"], 0.2, "1 class\\(es\\) have 1: 'b' \\(1\\)"),
        (["a"] * 5 + ["b"] * 5 + ["c"] * 5, 0.1, "2 validation and 13 training images"),
        (["a"] * 5 + ["b"] * 5, 1.0, "test_size must be in"),
    ],
    ids=["one-image-class", "validation-too-small", "bad-fraction"],
)
def test_stratified_split_explains_why_it_cannot_split(labels, test_size, message):
    with pytest.raises(InvalidParameterError, match=message):
        stratified_split(np.array(labels), test_size=test_size)


def test_cross_validation_scores_each_fold_and_sums_the_confusion_matrix():
    from sklearn.model_selection import StratifiedKFold

    x, y = blobs(n_per_class=12, spread=1.5, seed=8)
    result = cross_validate(lambda: VectorClassifier("knn", n_neighbors=3), x, y, folds=4, seed=1)
    assert result is not None and result.n_folds == 4 and len(result.folds) == 4
    assert result.confusion.sum() == len(y)
    folds = StratifiedKFold(4, shuffle=True, random_state=1).split(x, y)
    for fold, (train, test) in zip(result.folds, folds):
        pred = VectorClassifier("knn", n_neighbors=3).fit(x[train], y[train]).predict(x[test])
        assert fold.accuracy == pytest.approx(skm.accuracy_score(y[test], pred))
    summary = result.summary()
    assert summary["accuracy"]["mean"] == pytest.approx(np.mean([f.accuracy for f in result.folds]))


def test_cross_validation_uses_fewer_folds_for_small_classes_or_none():
    x, y = blobs(n_per_class=10, seed=9)
    y = y.copy()
    y[np.flatnonzero(y == "class-0")[3:]] = "class-1"  # class-0 keeps 3 images
    result = cross_validate(lambda: VectorClassifier("knn"), x, y, folds=5)
    assert result is not None and result.n_folds == 3  # each training fold keeps 2 of the 3
    assert cross_validate(lambda: VectorClassifier("knn"), x, y, folds=2) is None  # 2 folds leave 1
    y[np.flatnonzero(y == "class-0")[2:]] = "class-1"  # class-0 keeps 2 images
    assert cross_validate(lambda: VectorClassifier("knn"), x, y, folds=5) is None


def digits_split():
    """scikit-learn's digits (real 8×8 scans), unit rows, split 2:1 with a fixed seed."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    train, test = stratified_split(y.astype(str), test_size=1 / 3, seed=0)
    return x[train], y[train].astype(str), x[test], y[test].astype(str)


def test_projection_is_learned_on_the_training_vectors_and_applied_before_the_classifier():
    from sklearn.neighbors import KNeighborsClassifier

    from lookalike.reduce.project import LabelProjector

    x, y, xt, yt = digits_split()
    clf = VectorClassifier("knn", projection="lda", n_neighbors=5).fit(x, y)
    reference = LabelProjector().fit(x, y)  # the same map, fitted on the same training vectors only
    np.testing.assert_allclose(clf.projector_.scalings_, reference.scalings_, rtol=1e-5, atol=1e-6)
    knn = KNeighborsClassifier(5, metric="cosine", weights="distance").fit(reference.transform(x), y)
    np.testing.assert_array_equal(clf.predict(xt), knn.predict(reference.transform(xt)))
    assert clf.best_params_["projection"] == "lda" and clf.n_features_in_ == x.shape[1]
    assert skm.accuracy_score(yt, clf.predict(xt)) >= 0.95


def test_cross_validation_learns_the_projection_again_in_every_fold(monkeypatch):
    from lookalike.reduce.project import LabelProjector

    seen: list[int] = []
    fit = LabelProjector.fit
    monkeypatch.setattr(LabelProjector, "fit", lambda self, x, y, progress=None: (seen.append(len(x)), fit(self, x, y))[1])
    x, y = blobs(n_per_class=12, seed=4)
    result = cross_validate(lambda: VectorClassifier("logreg", projection="lda", **FAST), x, y, folds=3, seed=0)
    assert result.n_folds == 3 and seen == [24, 24, 24]  # each fold's 2/3, never all 36 images


def test_an_unknown_projection_is_refused():
    x, y = blobs()
    with pytest.raises(InvalidParameterError, match="projection method must be one of lda, head"):
        VectorClassifier("knn", projection="pca").fit(x, y)

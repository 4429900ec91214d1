"""Classifiers of a library: labels in, stored and stamped models out, predictions, staleness, CSV labels.

Libraries use the fast ``pixels`` backbone on generated images whose colour depends on the class
(class subfolders), so a classifier can reach perfect accuracy and predictions are checkable.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import Library
from lookalike.classify.train import (
    import_labels,
    labelled_vectors,
    load_classifier,
    model_info,
    model_path,
    predict_files,
    stored_models,
    train,
    usable,
)
from lookalike.config import ClassifyConfig, ReduceConfig
from lookalike.errors import InvalidParameterError, LibraryError, StaleModelError

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}
FAST = ClassifyConfig(cv=3, svm_C=(1.0, 10.0), svm_gamma=(1.0,), n_estimators=20)


def coloured_image(colour: tuple[int, int, int], seed: int, size: int = 40) -> Image.Image:
    """A noisy image around ``colour``, different for every seed."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, size=(size, size, 3)), 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


def write_labelled_folder(root: Path, per_class: dict[str, int], *, seed: int = 0) -> dict[str, list[Path]]:
    """``root/<class>/img-<seed>.png`` images coloured by class; returns class → paths."""
    paths: dict[str, list[Path]] = {}
    for c, (name, count) in enumerate(per_class.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        paths[name] = []
        for i in range(count):
            path = folder / f"img-{seed + 1000 * c + i:05d}.png"
            coloured_image(COLOURS[name], seed + 1000 * c + i).save(path)
            paths[name].append(path)
    return paths


def build_library(folder: Path, images: Path, *, labels: str = "folder") -> Path:
    with Library.create(folder, backbone="pixels") as lib:
        lib.add([images], labels=labels)
        lib.reduce(ReduceConfig(n_components=4))
    return folder


@pytest.fixture(scope="module")
def labelled_library(tmp_path_factory) -> Path:
    """A library of 3 colour classes × 8 images, labelled by subfolder (build once, copy to change).

    Tests may store models in it; ``library_copy`` is a copy without models.
    """
    root = tmp_path_factory.mktemp("labelled")
    write_labelled_folder(root / "images", {"red": 8, "green": 8, "blue": 8})
    return build_library(root / "lib.lookalike", root / "images")


@pytest.fixture
def library_copy(labelled_library, tmp_path) -> Path:
    target = tmp_path / "copy.lookalike"
    shutil.copytree(labelled_library, target, ignore=shutil.ignore_patterns(".lock", "models"))
    return target


def test_labelled_vectors_count_unlabelled_and_conflicting_images(tmp_path):
    images = tmp_path / "images"
    paths = write_labelled_folder(images, {"red": 4, "green": 4})
    coloured_image(COLOURS["blue"], 99).save(images / "loose.png")  # top level: no label
    shutil.copy(paths["red"][0], images / "green" / "copy-of-red.png")  # same content, two labels
    with Library.open(build_library(tmp_path / "lib.lookalike", images)) as lib:
        data = labelled_vectors(lib.store)
        reduced = lib.reduced()
    assert (data.n_embedded, data.n_unlabelled, data.n_conflicting) == (9, 1, 1)
    assert data.labels.size == 7 and sorted(set(data.labels)) == ["green", "red"]
    rows = {int(i): k for k, i in enumerate(reduced.ids)}
    np.testing.assert_array_equal(data.vectors, np.asarray(reduced.vectors)[[rows[int(i)] for i in data.ids]])


@pytest.mark.parametrize("model", ["svm", "rf", "knn", "logreg"])
def test_train_stores_a_stamped_model_that_predicts_image_files(labelled_library, tmp_path, model):
    with Library.open(labelled_library) as lib:
        report = train(lib.store, model, FAST)
        info = model_info(lib.store, model)
        fingerprint = lib.reducer().fingerprint
        embed = lib.manifest.embed
    assert report.path == model_path(lib.store, model) and report.path.is_file()
    n_validation = math.ceil(0.2 * 24)  # scikit-learn's train_test_split rounds the test part up
    assert (report.n_train, report.n_validation) == (24 - n_validation, n_validation)
    assert report.metrics.accuracy == 1.0 and report.metrics.confusion.trace() == n_validation
    assert report.cross_validation is not None and report.cross_validation.n_folds == 3
    assert info["reducer_fingerprint"] == fingerprint
    assert (info["backbone"], info["weights_sha256"]) == (embed.backbone, embed.weights_sha256)
    assert info["classes"] == ["blue", "green", "red"]
    assert json.loads(json.dumps(report.to_dict()))["validation"]["accuracy"] == 1.0

    new = tmp_path / "new-green.png"  # not in the library
    coloured_image(COLOURS["green"], 12345).save(new)
    with Library.open(labelled_library, readonly=True) as lib:
        (prediction,) = predict_files(lib.store, [new], model, k=2)
    assert prediction.model == model and prediction.error is None
    assert [c for c, _ in prediction.classes][0] == "green" and len(prediction.classes) == 2
    assert prediction.classes[0][1] >= prediction.classes[1][1] and prediction.classes[0][1] <= 1.0


def test_predict_reports_unreadable_files_and_picks_the_best_model(library_copy, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    good = tmp_path / "red.png"
    coloured_image(COLOURS["red"], 777).save(good)
    with Library.open(library_copy) as lib:
        train(lib.store, "knn", FAST)
        assert stored_models(lib.store) == ["knn"]
        bad, ok = predict_files(lib.store, [text, good], k=5, batch_size=1)
    assert bad.classes == [] and "not an image" in (bad.error or "")
    assert ok.model == "knn" and ok.classes[0][0] == "red" and len(ok.classes) == 3
    np.testing.assert_allclose(sum(p for _, p in ok.classes), 1.0, atol=1e-6)


def test_the_default_model_is_the_one_with_the_best_validation_accuracy(library_copy):
    def set_accuracy(lib, model, value):
        path = model_path(lib.store, model).with_suffix(".json")
        info = json.loads(path.read_text())
        info["report"]["validation"]["accuracy"] = value
        path.write_text(json.dumps(info))

    with Library.open(library_copy) as lib:
        train(lib.store, "knn", FAST)
        train(lib.store, "logreg", FAST)
        set_accuracy(lib, "knn", 0.5)
        assert load_classifier(lib.store).model == "logreg"
        set_accuracy(lib, "logreg", 0.4)
        assert load_classifier(lib.store).model == "knn"


def test_a_model_trained_before_pca_was_refitted_is_refused(library_copy):
    with Library.open(library_copy) as lib:
        train(lib.store, "knn", FAST)
        load_classifier(lib.store, "knn")  # fresh: loads
        lib.reduce(ReduceConfig(n_components=5), refit=True)
        with pytest.raises(StaleModelError, match="trained on PCA .* \\(PCA refitted since\\); retrain it"):
            load_classifier(lib.store, "knn")


def test_missing_model_is_a_clear_error(labelled_library, tmp_path):
    empty = tmp_path / "empty.lookalike"
    shutil.copytree(labelled_library, empty, ignore=shutil.ignore_patterns(".lock", "models"))
    with Library.open(empty) as lib:
        with pytest.raises(LibraryError, match="no trained 'rf' classifier \\(have: none\\); train it"):
            load_classifier(lib.store, "rf")
        with pytest.raises(LibraryError, match="no trained classifier; train one"):
            load_classifier(lib.store)
        with pytest.raises(InvalidParameterError, match="model must be one of"):
            load_classifier(lib.store, "tree")


def test_unlabelled_library_is_refused(tmp_path):
    write_labelled_folder(tmp_path / "images", {"red": 3, "blue": 3})
    with Library.open(build_library(tmp_path / "lib.lookalike", tmp_path / "images", labels="none")) as lib:
        with pytest.raises(InvalidParameterError, match="none of the 6 embedded images has a label"):
            train(lib.store, "svm", FAST)


def test_single_class_and_tiny_classes_are_refused_or_dropped(tmp_path):
    write_labelled_folder(tmp_path / "images", {"red": 6, "green": 6, "blue": 1})
    with Library.open(build_library(tmp_path / "lib.lookalike", tmp_path / "images")) as lib:
        with pytest.raises(InvalidParameterError, match="1 class\\(es\\) have fewer than 3 .* 'blue' \\(1\\)"):
            train(lib.store, "knn", FAST)
        config = ClassifyConfig(drop_small_classes=True, cv=3)
        report = train(lib.store, "knn", config)
        assert report.data.dropped_classes == {"blue": 1} and report.data.labels.size == 12
        checked = usable(labelled_vectors(lib.store), config, lib.folder)  # as the CLI does, before train
        assert train(lib.store, "knn", config, checked).to_dict()["dropped_classes"] == {"blue": 1}
        assert list(load_classifier(lib.store, "knn").classifier.classes_) == ["green", "red"]
        with lib.catalog.transaction() as db:
            db.execute("UPDATE files SET label = 'red'")
        with pytest.raises(InvalidParameterError, match="need at least 2 classes .* found 1: \\['red'\\]"):
            train(lib.store, "knn", FAST)


def test_labels_csv_sets_labels_and_reports_unknown_paths_and_bad_rows(tmp_path):
    images = tmp_path / "images"
    paths = write_labelled_folder(images, {"red": 3, "green": 3})
    build_library(tmp_path / "lib.lookalike", images, labels="none")
    rows = ["path,label"]
    rows += [f"{p},warm" for p in paths["red"]]                        # absolute paths
    rows += [f"images/green/{p.name},cool" for p in paths["green"]]     # relative to the CSV
    rows += [
        "images/missing.png,cool",          # unknown path
        "only-one-field",                   # bad: 1 field
        f"{paths['red'][0]},",              # bad: empty label
        f"{paths['red'][1]},cool",          # bad: conflicts with an earlier row
        f"{paths['red'][2]},warm,extra",    # bad: 3 fields
    ]
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("\n".join(rows) + "\n")
    with Library.open(tmp_path / "lib.lookalike") as lib:
        result = import_labels(lib.store, csv_file)
        stored = dict(lib.catalog.query("SELECT path, label FROM files"))
        again = import_labels(lib.store, csv_file)
    assert (result.rows, result.changed, result.unchanged) == (11, 6, 0)
    assert result.unknown == [str(tmp_path / "images" / "missing.png")]
    assert [line for line, _ in result.bad] == [9, 10, 11, 12]
    assert "expected 2 fields (path,label), got 1" in result.bad[0][1]
    assert "conflicts with 'warm' on line 3" in result.bad[2][1]
    assert {stored[str(p)] for p in paths["red"]} == {"warm"}
    assert {stored[str(p)] for p in paths["green"]} == {"cool"}
    assert (again.changed, again.unchanged) == (0, 6)


@pytest.mark.parametrize(
    ("content", "message"),
    [("path,label\n", "no usable 'path,label' rows \\(0 bad\\)"),
     ("a;b\n,x\n", "no usable 'path,label' rows \\(2 bad\\); first: line 1: expected 2 fields")],
    ids=["header-only", "all-bad"],
)
def test_labels_csv_without_usable_rows_is_an_error(labelled_library, tmp_path, content, message):
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(content)
    with Library.open(labelled_library) as lib, pytest.raises(InvalidParameterError, match=message):
        import_labels(lib.store, csv_file)


def test_a_projection_never_sees_the_validation_images_and_travels_with_the_model(library_copy, tmp_path, monkeypatch):
    from lookalike.reduce.project import LabelProjector

    seen: list[int] = []
    fit = LabelProjector.fit
    monkeypatch.setattr(LabelProjector, "fit", lambda self, x, y, progress=None: (seen.append(len(x)), fit(self, x, y))[1])
    with Library.open(library_copy) as lib:
        report = train(lib.store, "knn", replace(FAST, projection="lda"))
    # the split's training part, then each CV fold's training part, then every image for the stored model
    assert seen[0] == report.n_train and seen[-1] == 24 and len(seen) == 2 + report.cross_validation.n_folds
    assert all(n < 24 for n in seen[:-1]) and report.best_params["projection"] == "lda"
    new = tmp_path / "new-red.png"
    coloured_image(COLOURS["red"], 777).save(new)
    with Library.open(library_copy, readonly=True) as lib:
        (prediction,) = predict_files(lib.store, [new], "knn", k=1)
        stored = load_classifier(lib.store, "knn")
    assert prediction.classes[0][0] == "red" and stored.classifier.projector_ is not None


def test_an_unknown_projection_is_refused_by_the_config():
    with pytest.raises(InvalidParameterError, match="projection must be None, lda or head"):
        ClassifyConfig(projection="pca")

"""``lookalike classify train | predict | labels``: exit codes and messages on small libraries."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from lookalike.cli.main import app
from tests.classify.test_train import COLOURS, build_library, coloured_image, write_labelled_folder

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-classify")
    write_labelled_folder(root / "images", {"red": 6, "green": 6, "blue": 6})
    return build_library(root / "lib.lookalike", root / "images")


def test_train_prints_metrics_and_confusion_matrix_then_predict_uses_it(library, tmp_path):
    result = run("classify", "train", "--library", library, "--model", "knn", "--cv", "3")
    assert result.exit_code == 0, result.output
    assert "18 labelled images of 18 embedded, 3 classes" in result.output
    assert "validation: accuracy 1.000, balanced accuracy 1.000, macro-F1 1.000" in result.output
    assert "3-fold CV: accuracy 1.000 ± 0.000" in result.output
    assert "confusion matrix, validation split" in result.output
    assert "classifier-knn.joblib" in result.output

    image = tmp_path / "blue.png"
    coloured_image(COLOURS["blue"], 4242).save(image)
    predicted = run("classify", "predict", image, "--library", library, "-k", "2")
    assert predicted.exit_code == 0, predicted.output
    lines = predicted.output.splitlines()
    assert lines[0] == "model: knn" and lines[1] == str(image)
    assert lines[2].split()[:2] == ["1.", "blue"] and lines[3].split()[0] == "2."
    assert len(lines) == 4


def test_train_all_prints_a_comparison(library):
    result = run("classify", "train", "--library", library, "--model", "all", "--cv", "0", "--n-estimators", "20")
    assert result.exit_code == 0, result.output
    for model in ("svm", "rf", "knn", "logreg"):
        assert f"classifier-{model}.joblib" in result.output
    assert "k-fold CV: not run" in result.output
    assert "confusion matrix of the best model" in result.output


def test_predict_exits_1_for_an_unreadable_image(library, tmp_path):
    run("classify", "train", "--library", library, "--model", "knn", "--cv", "0")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = run("classify", "predict", text, "--library", library, "--model", "knn")
    assert result.exit_code == 1
    assert "notes.txt: not an image" in result.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--model", "tree"], 2, "expected one of svm, rf, knn, logreg or all"),
        (["--test-size", "1.5"], 1, "test_size must be in (0, 1), got 1.5"),
        (["--cv", "1"], 1, "cv must be 0 (off) or >= 2"),
    ],
    ids=["unknown-model", "bad-test-size", "bad-cv"],
)
def test_train_refuses_bad_options(library, args, code, message):
    result = run("classify", "train", "--library", library, *args)
    assert result.exit_code == code
    assert message in " ".join(result.output.split())


def test_unlabelled_library_and_missing_or_stale_models_exit_1(tmp_path):
    write_labelled_folder(tmp_path / "images", {"red": 3, "green": 3})
    lib = build_library(tmp_path / "lib.lookalike", tmp_path / "images", labels="none")
    result = run("classify", "train", "--library", lib)
    assert result.exit_code == 1 and "none of the 6 embedded images has a label" in result.output
    assert "Traceback" not in result.output

    missing = run("classify", "predict", tmp_path / "images" / "red" / "img-00000.png", "--library", lib)
    assert missing.exit_code == 1 and "no trained classifier; train one" in missing.output

    labelled = build_library(tmp_path / "labelled.lookalike", tmp_path / "images")
    assert run("classify", "train", "--library", labelled, "--model", "knn", "--cv", "0").exit_code == 0
    assert run("reduce", "--library", labelled, "--components", "3", "--refit").exit_code == 0
    stale = run("classify", "predict", tmp_path / "images" / "red" / "img-00000.png", "--library", labelled)
    assert stale.exit_code == 1
    assert "(PCA refitted since); retrain it" in " ".join(stale.output.split())


def test_labels_command_reports_counts_unknown_paths_and_bad_rows(library, tmp_path):
    copy = tmp_path / "copy.lookalike"
    shutil.copytree(library, copy, ignore=shutil.ignore_patterns(".lock", "models"))
    images = library.parent / "images"
    csv_file = tmp_path / "labels.csv"
    red = sorted((images / "red").iterdir())
    csv_file.write_text(f"path,label\n{red[0]},crimson\n{red[1]},crimson\n/nowhere/x.png,blue\nbroken\n")
    result = run("classify", "labels", csv_file, "--library", copy)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "4 rows: 2 files labelled (2 changed, 0 already so), 1 unknown paths, 1 bad rows" in text
    assert "1 path(s) not in the library, not labelled: /nowhere/x.png" in text
    assert "line 5: expected 2 fields (path,label), got 1" in text

    empty = tmp_path / "empty.csv"
    empty.write_text("path,label\n")
    failed = run("classify", "labels", empty, "--library", copy)
    assert failed.exit_code == 1 and "no usable 'path,label' rows" in failed.output


def test_train_with_a_projection_reports_it_and_a_bad_one_is_refused(library):
    result = run("classify", "train", "--library", library, "--model", "knn", "--cv", "0", "--projection", "lda")
    assert result.exit_code == 0, result.output
    assert "projection" in result.output and "lda" in result.output
    bad = run("classify", "train", "--library", library, "--model", "knn", "--projection", "pca")
    assert bad.exit_code != 0 and "projection must be None, lda or head" in bad.output

"""``lookalike evaluate`` end to end, on unlabelled and empty libraries, and ``evaluate retrieval``
still working after the move to lookalike.cli.evaluate."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lookalike import Library
from lookalike.cli.main import app
from lookalike.errors import LibraryError
from lookalike.report import ReportConfig
from lookalike.report.write import write_report
from tests.report.conftest import build_library, write_noisy_classes

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.mark.slow
def test_cli_writes_the_report_and_fits_a_missing_pca(tmp_path):
    write_noisy_classes(tmp_path / "photos", per_class=8)
    with Library.create(tmp_path / "lib.lookalike", backbone="pixels") as lib:
        lib.add([tmp_path / "photos"], labels="folder")
        folder = lib.folder
    result = run("evaluate", "--library", folder, "--k-range", "2-5", "--tsne-sample", "20", "--models", "knn,logreg",
                 "--seed", "3", "--no-progress")
    assert result.exit_code == 0, result.output
    out = folder / "reports" / "evaluation"  # the default --out
    report = json.loads((out / "report.json").read_text())
    assert "report written to" in result.output and "retrieval precision@1" in result.output
    assert list(report["classification"]["models"]) == ["knn", "logreg"]
    assert report["parameters"]["seed"] == 3 and report["clustering"]["sweep"]["k_values"] == [2, 3, 4, 5]
    assert any("no PCA yet" in note for note in report["notes"]) and report["timings"]["reduce"] > 0
    with Library.open(folder, readonly=True) as lib:
        assert lib.reducer() is not None
    assert (out / "report.md").is_file() and (out / "figures" / "summary.png").is_file()


@pytest.mark.slow
def test_unlabelled_library_skips_what_needs_labels(tmp_path):
    folder = build_library(tmp_path, labels="none")
    with Library.open(folder, readonly=True) as lib:
        evaluation = write_report(lib.store, tmp_path / "out", ReportConfig(k_max=6, map_sample=30, models=("knn",)))
    report = evaluation.report
    assert "at least 2 labels" in report["retrieval"]["skipped"]
    assert "none of the 60 embedded images has a label" in report["classification"]["skipped"]
    clustering = report["clustering"]
    assert clustering["k"] == evaluation.sweep.recommended_k and clustering["k_reason"].startswith("recommended")
    assert all(entry["metrics"]["external"] is None for entry in clustering["methods"].values())
    assert set(report["figures"]) == {"k_sweep", "map_pca", "map_pca_html", "map_tsne", "map_tsne_html", "summary"}
    text = (tmp_path / "out" / "report.md").read_text()
    assert "fewer than 2 labels" in text and text.count("Skipped:") == 2


def test_empty_library_is_a_clear_error(tmp_path):
    with Library.create(tmp_path / "empty.lookalike", backbone="pixels") as lib:
        with pytest.raises(LibraryError, match="has no embedded images, so there is nothing to evaluate"):
            write_report(lib.store, tmp_path / "out", ReportConfig())
        folder = lib.folder
    result = run("evaluate", "--library", folder, "--no-progress")
    assert result.exit_code == 1 and "nothing to evaluate" in result.output
    assert not (tmp_path / "out").exists()


def test_bad_options_are_refused(tmp_path):
    result = run("evaluate", "--library", tmp_path / "none.lookalike", "--k-range", "2..9", "--no-progress")
    assert result.exit_code == 1 and "--k-range must look like 2-30" in result.output
    result = run("evaluate", "--library", tmp_path / "none.lookalike", "--models", "svm,tree", "--no-progress")
    assert result.exit_code == 1 and "unknown model(s) ['tree']" in result.output
    result = run("evaluate", "--library", tmp_path / "none.lookalike", "--no-progress")
    assert result.exit_code == 1 and "no library here" in result.output


def test_evaluate_retrieval_still_works(labelled_folder, tmp_path):
    target = tmp_path / "retrieval.json"
    result = run("evaluate", "retrieval", "--library", labelled_folder, "-k", "5", "--kinds", "exact",
                 "--file-queries", "0", "--out", target)
    assert result.exit_code == 0, result.output
    assert "precision@5" in result.output and json.loads(target.read_text())["queries"] == 60
    assert "retrieval" in run("evaluate", "--help").output

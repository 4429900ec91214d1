"""The ``holdout`` command (lookalike.cli.holdout), mounted on a throwaway Typer app: exit codes,
tables, the JSON report (equal to the library functions' results) and error messages."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from lookalike import Library
from lookalike.cli.holdout import holdout
from lookalike.evaluate.holdout import heldout_classification, heldout_retrieval
from lookalike.store.manifest import write_manifest
from tests.evaluate.holdout.conftest import HeldoutPair

app = typer.Typer()
app.command("holdout")(holdout)


@app.callback()
def main() -> None:
    """A group, so the command is called by name as it will be under `lookalike evaluate`."""


def run(*args: object):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["holdout", *[str(a) for a in args]], env={"COLUMNS": "200"})


def test_tables_and_json_report_match_the_library_functions(pair: HeldoutPair, tmp_path: Path) -> None:
    target = tmp_path / "reports" / "holdout.json"
    result = run("--library", pair.gallery, "--queries", pair.queries, "-k", 5, "--model", "knn,logreg", "--out", target)
    assert result.exit_code == 0, result.output
    report = json.loads(target.read_text())
    with Library.open(pair.gallery, readonly=True) as g, Library.open(pair.queries, readonly=True) as q:
        expected = heldout_retrieval(g.store, q.store, 5)
        knn = heldout_classification(g.store, q.store, "knn")
    timings = ("build_s", "search_s")
    assert {n: v for n, v in report["retrieval"].items() if n not in timings} == {
        n: v for n, v in expected.items() if n not in timings
    }
    assert set(report["classification"]) == {"knn", "logreg"}
    assert report["classification"]["knn"]["confusion"] == knn["confusion"]
    rows = [line.replace("│", " ").split() for line in result.output.splitlines()]
    assert f"{pair.n_scored} held-out queries ({pair.n_unlabelled} unlabelled and 4 with a label absent" in result.output
    assert ["precision@5", f"{expected['precision_at_5']:.4f}"] in rows
    assert ["knn", f"{knn['accuracy']:.4f}"] in [row[:2] for row in rows]


def test_json_output_without_classifiers(pair: HeldoutPair) -> None:
    result = run("--library", pair.gallery, "--queries", pair.queries, "--model", "none", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["classification"] == {} and report["retrieval"]["k"] == 10


def test_mismatched_backbone_exits_1_with_one_line(pair: HeldoutPair, tmp_path: Path) -> None:
    copy = tmp_path / "other.lookalike"
    shutil.copytree(pair.queries, copy)
    with Library.open(copy, readonly=True) as q:
        manifest = q.manifest
    write_manifest(copy, replace(manifest, embed=replace(manifest.embed, backbone="resnet50")))
    result = run("--library", pair.gallery, "--queries", copy)
    assert result.exit_code == 1
    assert "error:" in result.output and "'resnet50'" in result.output and "'pixels'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("args", "message"), [(("--model", "tree"), "model must be one of"), (("--kind", "flat"), "kind must be")])
def test_bad_options_exit_1(pair: HeldoutPair, args: tuple[str, str], message: str) -> None:
    result = run("--library", pair.gallery, "--queries", pair.queries, *args)
    assert result.exit_code == 1 and message in result.output

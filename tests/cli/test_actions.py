"""``lookalike export | copy | quarantine | undo | label | actions | rename-cluster``: exit codes, output, effects."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lookalike import Library
from lookalike.cli.main import app
from lookalike.config import ClusterConfig
from tests.searchlib import build

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    with build(tmp_path, per_class=4) as library:
        library.cluster(ClusterConfig(n_clusters=3))
        return library.folder


def test_export_a_cluster_writes_its_members(lib: Path, tmp_path: Path) -> None:
    result = run("export-paths", tmp_path / "c.csv", "--library", lib, "--cluster", 0)
    assert result.exit_code == 0, result.output
    with Library.open(lib, readonly=True) as opened:
        members = set(opened.catalog.query("SELECT path FROM files WHERE image_id IN "
                                           "(SELECT image_id FROM cluster_members WHERE cluster = 0)"))  # fmt: skip
    with open(tmp_path / "c.csv", newline="") as handle:
        assert {(r["path"],) for r in csv.DictReader(handle)} == members
    assert f"export: act on {len(members)} files (action 1" in " ".join(result.output.split())


def test_quarantine_dry_run_then_real_then_undo(lib: Path, tmp_path: Path) -> None:
    red = tmp_path / "photos" / "red"
    before = {p.name: p.read_bytes() for p in red.iterdir()}
    dry = run("quarantine", tmp_path / "q", red, "--library", lib, "--dry-run")
    assert dry.exit_code == 0 and "would act on 4 files" in dry.output and "dry run" in dry.output
    assert {p.name for p in red.iterdir()} == set(before)
    assert run("quarantine", tmp_path / "q", red, "--library", lib).exit_code == 0
    assert not any(red.iterdir()) and len(list((tmp_path / "q").rglob("*.png"))) == 4
    assert run("undo", "--library", lib).exit_code == 0
    assert {p.name: p.read_bytes() for p in red.iterdir()} == before
    listing = run("actions", "--library", lib)
    assert listing.exit_code == 0 and "quarantine" in listing.output and "undo" in listing.output


def test_label_and_rename_show_in_catalog_and_clusters(lib: Path, tmp_path: Path) -> None:
    assert run("label", "chosen", tmp_path / "photos" / "blue" / "img-0002.png", "--library", lib).exit_code == 0
    with Library.open(lib, readonly=True) as opened:
        assert opened.catalog.query("SELECT path FROM files WHERE label = 'chosen'") == [
            (str(tmp_path / "photos" / "blue" / "img-0002.png"),)
        ]
    assert run("rename-cluster", 2, "my favourites", "--library", lib).exit_code == 0
    listing = run("clusters", "--library", lib, "--run", 1)
    assert "my favourites" in listing.output


@pytest.mark.parametrize(("args", "message"), [
    (("export-paths", "x.csv"), "give exactly one selection"),
    (("copy", "out", "--cluster", "9"), "no image in cluster 9"),
    (("undo", "42"), "no logged action 42"),
], ids=["no-selection", "unknown-cluster", "unknown-action"])  # fmt: skip
def test_errors_are_one_line_with_exit_code_1(lib: Path, args: tuple[str, ...], message: str) -> None:
    result = run(*args, "--library", lib)
    assert result.exit_code == 1 and message in " ".join(result.output.split()) and "Traceback" not in result.output

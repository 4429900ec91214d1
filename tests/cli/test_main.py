"""The command line: exit codes, messages, help, and that it starts without heavy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lookalike.cli.main import app
from tests.imagegen import write_images

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_index_then_status_reports_counts_and_reasons(tmp_path):
    write_images(tmp_path / "photos", 3)
    (tmp_path / "photos" / "notes.jpg").write_text("not really a photo")
    lib = tmp_path / "lib.lookalike"
    result = run("index", tmp_path / "photos", "--library", lib, "--backbone", "pixels", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "embedded 3 images this run" in result.output
    assert "not an image" in result.output

    again = run("index", "--library", lib, "--no-progress")
    assert again.exit_code == 0, again.output
    assert "embedded 0 images this run" in again.output

    status = run("status", "--library", lib, "--files")
    assert status.exit_code == 0, status.output
    assert "3 images embedded" in status.output
    flat = status.output.replace("\n", "")  # rich wraps long paths at the terminal width
    assert "notes.jpg" in flat and "content looks like text" in flat


def test_errors_are_one_line_without_traceback(tmp_path):
    result = run("status", "--library", tmp_path / "missing.lookalike")
    assert result.exit_code == 1
    assert "error:" in result.output and "no library here" in result.output
    assert "Traceback" not in result.output


def test_backbone_mismatch_exits_1(tmp_path):
    write_images(tmp_path / "p", 1)
    lib = tmp_path / "lib.lookalike"
    assert run("index", tmp_path / "p", "--library", lib, "--backbone", "pixels", "--no-progress").exit_code == 0
    result = run("index", tmp_path / "p", "--library", lib, "--backbone", "mobilenetv2", "--no-progress")
    assert result.exit_code == 1
    assert "built with backbone 'pixels'" in result.output


def test_unknown_backbone_is_a_clear_error(tmp_path):
    write_images(tmp_path / "p", 1)
    result = run("index", tmp_path / "p", "--library", tmp_path / "l", "--backbone", "vgg99", "--no-progress")
    assert result.exit_code == 1
    assert "vgg99" in result.output and "efficientnet-lite0" in result.output


def test_remove_command(tmp_path):
    write_images(tmp_path / "p" / "a", 2)
    write_images(tmp_path / "p" / "b", 2, start=5)
    lib = tmp_path / "lib.lookalike"
    run("index", tmp_path / "p", "--library", lib, "--backbone", "pixels", "--no-progress")
    result = run("remove", tmp_path / "p" / "a", "--library", lib)
    assert result.exit_code == 0 and "removed 2 files" in result.output


def test_backbones_lists_the_registry():
    result = run("backbones")
    assert result.exit_code == 0
    for name in ("efficientnet-lite0", "efficientnet-lite2", "mobilenetv2", "resnet50", "pixels"):
        assert name in result.output


COMMANDS = [["index"], ["status"], ["remove"], ["backbones"], ["dataset"], ["dataset", "export"]]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_has_help(command):
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_import_and_help_do_not_load_heavy_libraries():
    code = (
        "import sys, lookalike, lookalike.cli.main\n"
        "from typer.testing import CliRunner\n"
        "CliRunner().invoke(lookalike.cli.main.app, ['--help'])\n"
        "CliRunner().invoke(lookalike.cli.main.app, ['index', '--help'])\n"
        "heavy = sorted(m for m in ('torch', 'faiss', 'onnxruntime', 'sklearn') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_ingest_settings_are_fixed_per_library(tmp_path):
    write_images(tmp_path / "p", 1)
    lib = tmp_path / "lib.lookalike"
    first = run("index", tmp_path / "p", "--library", lib, "--backbone", "pixels", "--no-progress",
                "--max-pixels", "5000")
    assert first.exit_code == 0, first.output
    same = run("index", "--library", lib, "--no-progress", "--max-pixels", "5000")
    assert same.exit_code == 0, same.output
    other = run("index", "--library", lib, "--no-progress", "--max-pixels", "9000")
    assert other.exit_code == 1 and "created with max_pixels=5000" in other.output


def test_hidden_files_are_reported_not_read(tmp_path):
    write_images(tmp_path / "p", 1)
    write_images(tmp_path / "p" / ".thumbnails", 3, start=10)
    lib = tmp_path / "lib.lookalike"
    result = run("index", tmp_path / "p", "--library", lib, "--backbone", "pixels", "--no-progress")
    assert "embedded 1 images this run" in result.output and "hidden folder" in result.output
    lib2 = tmp_path / "lib2.lookalike"
    result = run("index", tmp_path / "p", "--library", lib2, "--backbone", "pixels", "--no-progress",
                 "--include-hidden")
    assert "embedded 4 images this run" in result.output

"""`lookalike app`: its streamlit command line, errors, and that the CLI never imports streamlit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from lookalike.cli.app import app_command
from lookalike.cli.main import app


def test_app_command_runs_streamlit_on_the_library(tmp_path: Path) -> None:
    line = app_command(tmp_path / "lib", 8765, "127.0.0.1")
    assert line[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert Path(line[4]).name == "main.py" and Path(line[4]).is_file()
    assert line[line.index("--server.port") + 1] == "8765"
    assert line[line.index("--server.address") + 1] == "127.0.0.1"
    assert line[line.index("--server.headless") + 1] == "true"
    assert line[-3:] == ["--", "--library", str((tmp_path / "lib").resolve())]


def test_app_on_a_missing_library_is_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["app", "--library", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "no library here" in result.output


def test_cli_help_does_not_import_streamlit() -> None:
    code = (
        "import sys; from lookalike.cli.main import app; import lookalike; "
        "print(sorted(m for m in ('streamlit', 'plotly', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"

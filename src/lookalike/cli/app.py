"""``lookalike app``: start the Streamlit web app (:mod:`lookalike.app`) on a library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lookalike.cli.common import err, out, reports_errors


def register(app: typer.Typer) -> None:
    """Add ``app`` to the ``lookalike`` command."""
    app.command(name="app")(run_app)


def app_command(library: Path, port: int, host: str) -> list[str]:
    """The ``streamlit run`` command line for ``library`` on ``host:port``."""
    main = Path(__file__).resolve().parents[1] / "app" / "main.py"
    return [
        sys.executable, "-m", "streamlit", "run", str(main),
        "--server.port", str(port), "--server.address", host, "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal", "--", "--library", str(library.expanduser().resolve()),
    ]  # fmt: skip


@reports_errors
def run_app(
    library: Annotated[Path, typer.Option("--library", "-l", help="Library folder (created by `lookalike index`).")],
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
) -> None:
    """Explore a library in the browser: search, clusters, duplicates, classifiers."""
    import importlib.util

    from lookalike.errors import LibraryNotFoundError, MissingDependencyError

    if not (library.expanduser() / "lookalike.toml").is_file():
        raise LibraryNotFoundError(
            f"{library}: no library here (create one with `lookalike index FOLDER --library {library}`)"
        )
    for package in ("streamlit", "plotly"):
        if importlib.util.find_spec(package) is None:
            raise MissingDependencyError(package, "the web app", "pip install streamlit plotly")
    from lookalike.cli.supervise import run_child

    out.print(f"lookalike app: http://{host}:{port}  (Ctrl+C stops it)")
    code = run_child(app_command(library, port, host))  # SIGTERM / Ctrl+C stop streamlit too
    if code:
        err.print(f"streamlit exited with code {code}")
        raise typer.Exit(code)

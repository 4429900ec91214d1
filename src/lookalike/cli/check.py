"""``lookalike check``: verify a library end to end (:mod:`lookalike.check`), ``--repair`` it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lookalike.cli.common import err, out, reports_errors

COLOURS = {"ok": "green", "warning": "yellow", "error": "red"}


def register(app: typer.Typer) -> None:
    """Add ``check`` to the ``lookalike`` command."""
    app.command()(check)


@reports_errors
def check(
    library: Annotated[Path, typer.Option("--library", "-l", help="Library folder.")] = Path("library.lookalike"),
    repair: Annotated[bool, typer.Option("--repair", help="Rebuild what can be rebuilt (needs the writer lock).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Verify LIBRARY end to end: catalog, vectors, PCA, indexes, files. Exit code 1 when broken."""
    from lookalike.check import check_library
    from lookalike.progress import NoProgress, RichProgress

    bar = RichProgress() if repair and not as_json else NoProgress()  # re-embedding and rehashing take a while
    try:
        report = check_library(library, repair=repair, progress=bar)
    finally:
        bar.close()
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        for action in report.repaired:
            err.print(f"repaired: {escape(action)}")
        for finding in report.findings:
            colour = COLOURS.get(finding.level, "white")
            hint = f"  [dim](--repair: {escape(finding.repair)})[/dim]" if finding.repair and finding.level != "ok" and not repair else ""
            out.print(f"[{colour}]{finding.level:7}[/{colour}] {escape(finding.part)}: {escape(finding.message)}{hint}",
                      highlight=False, soft_wrap=True)
        err.print("library ok" if report.ok else "library has errors" + ("" if repair else ": try `lookalike check --repair`"))
    if not report.ok:
        raise typer.Exit(1)

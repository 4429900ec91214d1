"""``lookalike export`` and ``lookalike import-vectors``: a library's vectors as Parquet, and back.

Mounted by :mod:`lookalike.cli.main` through :func:`register`. Exit codes as the main CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lookalike.cli.common import out, reports_errors

LibraryOption = Annotated[Path, typer.Option("--library", "-l", help="Library folder (created by `lookalike index`).")]


@reports_errors
def export(
    library: LibraryOption = Path("library.lookalike"),
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for part-*.parquet (new or empty).")] = Path("export"),
    vectors: Annotated[str, typer.Option(help="'raw' (the backbone's embeddings) or 'reduced' (after L2 + PCA).")] = "raw",
    rows_per_file: Annotated[int, typer.Option(help="Rows per Parquet file (larger libraries are sharded).", min=1)] = 1_000_000,
) -> None:
    """Write LIBRARY's images (id, content hash, paths, label, latest cluster) and vectors as Parquet."""
    from lookalike.library import Library

    with Library.open(library, readonly=vectors == "raw") as lib:
        files = lib.export_parquet(out_dir, vectors=vectors, rows_per_file=rows_per_file)
        out.print(f"wrote {lib.status().embedded:,} {vectors} vectors to {len(files)} file(s) in {out_dir}")


@reports_errors
def import_vectors(
    files: Annotated[list[Path], typer.Argument(help="Parquet files (or folders of them) written by `lookalike export` or a job stating the same metadata.")],
    library: LibraryOption = Path("library.lookalike"),
) -> None:
    """Add vectors computed elsewhere to LIBRARY: same backbone, weights and preprocessing only."""
    from lookalike.library import Library

    with Library.open(library) as lib:
        report = lib.import_vectors(list(files))
    out.print(f"imported {report.imported:,} vectors ({report.filled:,} pending images, {report.added:,} new images)")
    for reason, count in sorted(report.left.items()):
        out.print(f"  not imported: {count:,} ({reason})")


def register(app: typer.Typer) -> None:
    """Add ``export`` and ``import-vectors`` to the main CLI."""
    app.command("export")(export)
    app.command("import-vectors")(import_vectors)

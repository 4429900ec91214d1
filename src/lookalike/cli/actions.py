"""``lookalike export-paths | copy | quarantine | label | undo | actions | rename-cluster``: act on a selection.

A selection is given by one of: paths (files or folders of the library), ``--cluster N``
(``--run R``), ``--duplicates`` (every file of each duplicate group but its first), or
``--from-csv FILE`` (a ``path`` column, as ``export-paths`` writes). ``--dry-run`` prints the plan.
Nothing is ever deleted; every action is logged in the library (``lookalike actions``).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lookalike.cli.common import out, reports_errors
from lookalike.errors import InvalidParameterError

if TYPE_CHECKING:
    from lookalike.actions import ActionResult, Selection
    from lookalike.library import Library

LibraryOption = Annotated[Path, typer.Option("--library", "-l", help="Library folder (created by `lookalike index`).")]
PathsArgument = Annotated[list[Path] | None, typer.Argument(help="Files or folders of the library to act on.")]
ClusterOption = Annotated[int | None, typer.Option("--cluster", help="Act on this cluster's images.")]
RunOption = Annotated[int | None, typer.Option("--run", help="Cluster run of --cluster (default: the latest).")]
DuplicatesOption = Annotated[
    bool,
    typer.Option(
        "--duplicates", help="Act on every duplicate file but the first of each group (exact and near duplicates)."
    ),
]
CsvOption = Annotated[Path | None, typer.Option("--from-csv", help="Act on the files in this CSV's 'path' column.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print what would happen; change nothing.")]
SHOWN = 20
"""Planned steps printed one by one (the rest are counted)."""


def register(app: typer.Typer) -> None:
    """Add the action commands to the ``lookalike`` command."""
    for name, command in (("export-paths", export), ("copy", copy), ("quarantine", quarantine), ("label", label),
                          ("undo", undo), ("actions", actions), ("rename-cluster", rename_cluster)):  # fmt: skip
        app.command(name=name)(command)


def _selection(
    lib: Library, paths: list[Path] | None, cluster: int | None, run: int | None, duplicates: bool, csv: Path | None
) -> Selection:
    from lookalike.actions import selection

    given = [bool(paths), cluster is not None, duplicates, csv is not None]
    if sum(given) != 1:
        raise InvalidParameterError("give exactly one selection: PATHS, --cluster N, --duplicates or --from-csv FILE")
    if paths:
        return selection.from_paths(lib, paths)
    if cluster is not None:
        return selection.from_cluster(lib, cluster, run)
    if duplicates:
        return selection.all_but_one(lib.duplicates(min_similarity=None))
    assert csv is not None
    return selection.from_csv(csv)


def _print(result: ActionResult) -> None:
    for source, target in result.steps[:SHOWN]:
        out.print(f"{escape(source)}\t→ {escape(target)}", highlight=False, soft_wrap=True)
    if len(result.steps) > SHOWN:
        out.print(f"… and {len(result.steps) - SHOWN:,} more")
    for path, reason in result.skipped[:SHOWN]:
        out.print(f"skipped {escape(path)}: {escape(reason)}", highlight=False, soft_wrap=True)
    out.print(result.summary() + ("  (dry run: nothing changed)" if result.dry_run else ""))


@reports_errors
def export(
    csv_file: Annotated[Path, typer.Argument(help="CSV file to write (columns path, label).")],
    paths: PathsArgument = None, library: LibraryOption = Path("library.lookalike"), cluster: ClusterOption = None,
    run: RunOption = None, duplicates: DuplicatesOption = False, from_csv: CsvOption = None, dry_run: DryRunOption = False,
) -> None:  # fmt: skip
    """Write the selected files as a CSV of paths."""
    from lookalike.actions import export_csv
    from lookalike.library import Library

    with Library.open(library) as lib:
        _print(export_csv(lib, _selection(lib, paths, cluster, run, duplicates, from_csv), csv_file, dry_run=dry_run))


@reports_errors
def copy(
    folder: Annotated[Path, typer.Argument(help="Folder to copy (or link) the files into.")],
    paths: PathsArgument = None, library: LibraryOption = Path("library.lookalike"), cluster: ClusterOption = None,
    run: RunOption = None, duplicates: DuplicatesOption = False, from_csv: CsvOption = None, dry_run: DryRunOption = False,
    symlink: Annotated[bool, typer.Option("--symlink", help="Make symbolic links instead of copies.")] = False,
) -> None:  # fmt: skip
    """Copy (or symlink) the selected files into FOLDER, keeping their library folders; never overwrites."""
    from lookalike.actions import copy_files
    from lookalike.library import Library

    with Library.open(library) as lib:
        selection = _selection(lib, paths, cluster, run, duplicates, from_csv)
        _print(copy_files(lib, selection, folder, symlink=symlink, dry_run=dry_run))


@reports_errors
def quarantine(
    folder: Annotated[Path, typer.Argument(help="Quarantine folder the files are moved into.")],
    paths: PathsArgument = None, library: LibraryOption = Path("library.lookalike"), cluster: ClusterOption = None,
    run: RunOption = None, duplicates: DuplicatesOption = False, from_csv: CsvOption = None, dry_run: DryRunOption = False,
) -> None:  # fmt: skip
    """Move the selected files into FOLDER with an undo manifest (`lookalike undo` moves them back)."""
    from lookalike.actions import quarantine as move_aside
    from lookalike.library import Library

    with Library.open(library) as lib:
        _print(move_aside(lib, _selection(lib, paths, cluster, run, duplicates, from_csv), folder, dry_run=dry_run))


@reports_errors
def label(
    name: Annotated[str, typer.Argument(help="Label to give the selected files.")],
    paths: PathsArgument = None, library: LibraryOption = Path("library.lookalike"), cluster: ClusterOption = None,
    run: RunOption = None, duplicates: DuplicatesOption = False, from_csv: CsvOption = None, dry_run: DryRunOption = False,
) -> None:  # fmt: skip
    """Set the label of the selected files (stored like folder labels; `lookalike undo` restores)."""
    from lookalike.actions import set_label
    from lookalike.library import Library

    with Library.open(library) as lib:
        _print(set_label(lib, _selection(lib, paths, cluster, run, duplicates, from_csv), name, dry_run=dry_run))


@reports_errors
def undo(
    action: Annotated[
        int | None, typer.Argument(help="Action id (default: the latest quarantine, label or rename).")
    ] = None,
    library: LibraryOption = Path("library.lookalike"),
    dry_run: DryRunOption = False,
) -> None:
    """Undo a quarantine (files moved back), a label or a cluster rename."""
    from lookalike.actions import undo as undo_action
    from lookalike.library import Library

    with Library.open(library) as lib:
        _print(undo_action(lib, action, dry_run=dry_run))


@reports_errors
def actions(
    library: LibraryOption = Path("library.lookalike"),
    limit: Annotated[int, typer.Option(help="Latest actions shown.")] = 50,
) -> None:
    """List the actions run on LIBRARY, newest first."""
    from lookalike.library import Library
    from lookalike.store.annotations import read_actions

    with Library.open(library, readonly=True) as lib:
        table = Table("id", "when (UTC)", "action", "files", "target", "undone")
        for record in read_actions(lib.catalog, limit):
            when = datetime.datetime.fromtimestamp(record.at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
            undone = "yes" if record.undone_at is not None else ""
            table.add_row(str(record.id), when, record.kind, f"{record.count:,}", escape(record.target), undone)
        out.print(table)


@reports_errors
def rename_cluster(
    cluster: Annotated[int, typer.Argument(help="Cluster number.")],
    name: Annotated[str, typer.Argument(help="New name (shown by `clusters`, the API, the app and the report).")],
    library: LibraryOption = Path("library.lookalike"),
    run: RunOption = None,
) -> None:
    """Name a cluster of a clustering run (default: the latest)."""
    from lookalike.actions import rename_cluster as rename
    from lookalike.library import Library

    with Library.open(library) as lib:
        _print(rename(lib, cluster, name, run))

"""Actions on a selection: export a CSV, copy or symlink, quarantine (with undo), label, rename a cluster.

Every action returns an :class:`ActionResult`: the planned steps (source, target), the files
skipped with the reason, and the id of its entry in the library's action log (None for a dry run,
which only plans). Nothing is ever deleted: a quarantine moves files into a folder and writes an
undo manifest there (``lookalike-undo-<id>.json``) before the first move; :func:`undo` moves them
back (refusing to overwrite a file that took their place), restores labels and cluster names.
Files moved away stay in the catalog until the next ``lookalike index``; moved back unchanged
(same size and mtime), they are not read again.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.errors import InvalidParameterError
from lookalike.store import annotations as notes
from lookalike.store.atomic import write_bytes

if TYPE_CHECKING:
    from lookalike.actions.selection import Selection
    from lookalike.library import Library

UNDOABLE = ("quarantine", "label", "rename")
MANIFEST_PREFIX = "lookalike-undo-"


@dataclass(frozen=True)
class ActionResult:
    """What an action did (or, with ``dry_run``, would do).

    ``steps`` are (source path, target: destination path, label, CSV file or name);
    ``skipped`` (path, reason) were left alone; ``action_id`` is the log entry (None for a dry run).
    """

    kind: str
    steps: list[tuple[str, str]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    dry_run: bool = False
    action_id: int | None = None

    def summary(self) -> str:
        verb = "would " if self.dry_run else ""
        text = f"{self.kind}: {verb}act on {len(self.steps):,} files"
        if self.skipped:
            text += f", {len(self.skipped):,} skipped"
        if self.action_id is not None:
            text += f" (action {self.action_id} in the library's log)"
        return text


def _log(lib: Library, result: ActionResult, target: str, details: dict[str, object]) -> ActionResult:
    if result.dry_run:
        return result
    action_id = notes.log_action(lib.catalog, result.kind, len(result.steps), target, details)
    return ActionResult(result.kind, result.steps, result.skipped, False, action_id)


# -- export --------------------------------------------------------------------------------------
def export_csv(lib: Library, selection: Selection, target: Path, *, dry_run: bool = False) -> ActionResult:
    """Write the selection as a CSV (columns ``path``, ``label``) to ``target``, atomically."""
    target = Path(os.path.abspath(Path(target).expanduser()))
    if target.is_dir():
        raise InvalidParameterError(f"{target} is a folder; give the CSV file to write")
    labels = notes.file_labels(lib.catalog, list(selection.paths))
    result = ActionResult("export", [(p, str(target)) for p in selection.paths], dry_run=dry_run)
    if not dry_run:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["path", "label"])
        writer.writerows([p, labels.get(p) or ""] for p in selection.paths)
        write_bytes(target, buffer.getvalue().encode("utf-8"))
    return _log(lib, result, str(target), {"source": selection.source})


# -- copy, link, move ----------------------------------------------------------------------------
def destination(path: str, roots: list[str], folder: Path) -> Path:
    """Where ``path`` goes inside ``folder``: its path below the library folder holding it, under that
    folder's name (``folder/photos/cats/a.jpg``); files outside every root keep their parent's name."""
    for root in sorted(roots, key=len, reverse=True):
        prefix = root.rstrip(os.sep) + os.sep
        if path.startswith(prefix):
            return folder / Path(root).name / path[len(prefix) :]
    return folder / Path(path).parent.name / Path(path).name


def _plan(lib: Library, selection: Selection, folder: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(source, destination) of each file that can go, and (path, reason) of the others."""
    roots = notes.library_roots(lib.catalog)
    steps, skipped, taken = [], [], set()
    for path in selection.paths:
        target = destination(path, roots, folder)
        if not os.path.lexists(path):
            skipped.append((path, "file not found"))
        elif os.path.lexists(target) or target in taken:
            skipped.append((path, f"{target} already exists"))
        else:
            taken.add(target)
            steps.append((path, str(target)))
    return steps, skipped


def _check_folder(folder: Path, lib: Library) -> Path:
    folder = Path(os.path.abspath(Path(folder).expanduser()))
    if folder.exists() and not folder.is_dir():
        raise InvalidParameterError(f"{folder} is a file; give a folder to put the files into")
    if folder == lib.folder or lib.folder in folder.parents:
        raise InvalidParameterError(f"{folder} is inside the library folder {lib.folder}; choose another folder")
    return folder


def copy_files(
    lib: Library, selection: Selection, folder: Path, *, symlink: bool = False, dry_run: bool = False
) -> ActionResult:
    """Copy (or symlink) the selection into ``folder``; existing files there are never overwritten."""
    folder = _check_folder(folder, lib)
    steps, skipped = _plan(lib, selection, folder)
    kind = "link" if symlink else "copy"
    if not dry_run:
        for source, target in steps:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            if symlink:
                os.symlink(source, target)
            else:
                shutil.copy2(source, target)
    return _log(lib, ActionResult(kind, steps, skipped, dry_run), str(folder), {"source": selection.source})


def quarantine(lib: Library, selection: Selection, folder: Path, *, dry_run: bool = False) -> ActionResult:
    """Move the selection into ``folder``, writing the undo manifest there before the first move."""
    folder = _check_folder(folder, lib)
    steps, skipped = _plan(lib, selection, folder)
    result = ActionResult("quarantine", steps, skipped, dry_run)
    if dry_run or not steps:
        return result
    logged = _log(lib, result, str(folder), {"source": selection.source, "moves": steps})
    manifest = folder / f"{MANIFEST_PREFIX}{logged.action_id}.json"
    document = {"library": str(lib.folder), "action": logged.action_id, "moves": steps}
    write_bytes(manifest, json.dumps(document, indent=1).encode("utf-8"))
    for source, target in steps:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)  # a rename on one file system; copy2 + unlink across them
    return logged


# -- labels and names ------------------------------------------------------------------------------
def set_label(lib: Library, selection: Selection, label: str | None, *, dry_run: bool = False) -> ActionResult:
    """Set the label of every selected file (None clears it), as folder labels are stored."""
    if label is not None and not label.strip():
        raise InvalidParameterError("the label is empty; give a name, or clear labels with no label")
    before = notes.file_labels(lib.catalog, list(selection.paths))
    skipped = [(p, "not a file of the library") for p in selection.paths if p not in before]
    steps = [(p, label or "") for p in selection.paths if p in before]
    result = ActionResult("label", steps, skipped, dry_run)
    if not dry_run:
        notes.set_labels(lib.catalog, {p: label for p, _ in steps})
    return _log(lib, result, label or "(no label)", {"source": selection.source, "before": before, "label": label})


def rename_cluster(lib: Library, cluster: int, name: str, run: int | None = None) -> ActionResult:
    """Name ``cluster`` of cluster run ``run`` (default: the latest); shown by the CLI, API, app, report."""
    if not name.strip():
        raise InvalidParameterError("the cluster name is empty; give a name")
    run_id = run if run is not None else notes.latest_run_id(lib.catalog)
    if run_id is None:
        raise InvalidParameterError(f"{lib.folder} has no clustering runs yet; run `lookalike cluster` first")
    old = notes.rename_cluster(lib.catalog, run_id, cluster, name.strip())
    result = ActionResult("rename", [(f"run {run_id} cluster {cluster}", name.strip())])
    return _log(lib, result, name.strip(), {"run": run_id, "cluster": cluster, "before": old})


# -- undo ----------------------------------------------------------------------------------------
def undo(lib: Library, action_id: int | None = None, *, dry_run: bool = False) -> ActionResult:
    """Undo action ``action_id`` (default: the latest quarantine, label or rename not yet undone)."""
    record = _undoable(lib, action_id)
    if record.kind == "quarantine":
        moves = [(target, source) for source, target in record.details["moves"]]
        steps = [(t, s) for t, s in moves if os.path.lexists(t) and not os.path.lexists(s)]
        skipped = [(t, "gone from the quarantine" if not os.path.lexists(t) else f"{s} exists again")
                   for t, s in moves if (t, s) not in steps]  # fmt: skip
        if not dry_run:
            for target, source in steps:
                Path(source).parent.mkdir(parents=True, exist_ok=True)
                shutil.move(target, source)
    elif record.kind == "label":
        before: dict[str, str | None] = record.details["before"]
        steps, skipped = [(p, label or "") for p, label in before.items()], []
        if not dry_run:
            notes.set_labels(lib.catalog, before)
    else:
        details = record.details
        steps, skipped = [(f"run {details['run']} cluster {details['cluster']}", str(details["before"]))], []
        if not dry_run:
            notes.rename_cluster(lib.catalog, int(details["run"]), int(details["cluster"]), str(details["before"]))
    result = ActionResult("undo", steps, skipped, dry_run)
    if dry_run:
        return result
    notes.mark_undone(lib.catalog, record.id)
    return _log(lib, result, f"action {record.id}", {"undid": record.id, "kind": record.kind})


def _undoable(lib: Library, action_id: int | None) -> notes.ActionRecord:
    if action_id is not None:
        record = notes.find_action(lib.catalog, action_id)
        if record.kind not in UNDOABLE:
            raise InvalidParameterError(f"action {action_id} is a {record.kind}, which leaves nothing to undo")
        if record.undone_at is not None:
            raise InvalidParameterError(f"action {action_id} ({record.kind}) was already undone")
        return record
    for record in notes.read_actions(lib.catalog):
        if record.kind in UNDOABLE and record.undone_at is None:
            return record
    raise InvalidParameterError(f"{lib.folder}: no quarantine, label or rename left to undo")

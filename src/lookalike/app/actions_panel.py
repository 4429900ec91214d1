"""Act on what a grid shows: export a CSV, copy or symlink, quarantine, set a label (dry run first).

The app reads the library read-only; an action opens it for writing just for its own run
(another writer holding the library makes it a clear message, not a wait).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from lookalike.errors import LookalikeError

if TYPE_CHECKING:
    from lookalike.actions import ActionResult, Selection
    from lookalike.library import Library

ACTIONS = {
    "Export a CSV of paths": "CSV file to write",
    "Copy into a folder": "Folder to copy into",
    "Symlink into a folder": "Folder to link into",
    "Move into a quarantine folder (undo on the Actions page)": "Quarantine folder",
    "Set a label": "Label",
}
"""The actions offered, with what their text field asks for."""
STEPS_SHOWN = 200


def render(lib: Library, selection: Selection, key: str) -> None:
    """An "Act on these files" panel for ``selection``."""
    with st.expander(f"Act on these {len(selection):,} files ({selection.source})"):
        if not len(selection):
            st.caption("Nothing selected.")
            return
        action = st.selectbox("Action", list(ACTIONS), key=f"{key}_action")
        target = st.text_input(ACTIONS[action], key=f"{key}_target")
        dry_run = st.toggle("Dry run (show what would happen, change nothing)", value=True, key=f"{key}_dry")
        if st.button("Run", key=f"{key}_run", type="primary", disabled=not target.strip()):
            try:
                result = _run(lib, selection, action, target.strip(), dry_run)
            except LookalikeError as exc:
                st.error(str(exc))
                return
            _show(result)


def _run(lib: Library, selection: Selection, action: str, target: str, dry_run: bool) -> ActionResult:
    from pathlib import Path

    from lookalike import actions
    from lookalike.library import Library

    with Library.open(lib.folder) as writable:
        if action.startswith("Export"):
            return actions.export_csv(writable, selection, Path(target), dry_run=dry_run)
        if action.startswith("Copy") or action.startswith("Symlink"):
            return actions.copy_files(writable, selection, Path(target), symlink=action.startswith("Symlink"),
                                      dry_run=dry_run)  # fmt: skip
        if action.startswith("Move"):
            return actions.quarantine(writable, selection, Path(target), dry_run=dry_run)
        return actions.set_label(writable, selection, target, dry_run=dry_run)


def _show(result: ActionResult) -> None:
    import pandas as pd

    if result.dry_run:
        st.info(result.summary() + " — dry run: nothing changed")
    else:
        st.success(result.summary())
    st.dataframe(
        pd.DataFrame(result.steps[:STEPS_SHOWN], columns=["file", "to"]), hide_index=True, key=None
    )
    if result.skipped:
        st.warning(f"{len(result.skipped):,} files skipped")
        st.dataframe(pd.DataFrame(result.skipped[:STEPS_SHOWN], columns=["file", "reason"]), hide_index=True)

"""Actions page: the library's log of actions, newest first, with Undo for quarantines, labels, renames."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import streamlit as st

from lookalike.errors import LookalikeError

if TYPE_CHECKING:
    from lookalike.library import Library

SHOWN = 100


def render(lib: Library) -> None:
    from lookalike.actions.apply import UNDOABLE
    from lookalike.store.annotations import read_actions

    st.header("Actions")
    done = st.session_state.pop("actions_done", None)
    if done:
        st.success(done)
    records = read_actions(lib.catalog, SHOWN)
    if not records:
        st.info("No actions yet: select images on the Cluster Analysis, Search or Duplicates page and act on them.")
        return
    for record in records:
        when = datetime.datetime.fromtimestamp(record.at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        with st.container(border=True):
            left, right = st.columns([5, 1], vertical_alignment="center")
            undone = " · undone" if record.undone_at is not None else ""
            left.markdown(f"**{record.id}. {record.kind}** · {record.count:,} files → `{record.target}` · {when}{undone}")
            if record.kind in UNDOABLE and record.undone_at is None:
                right.button("Undo", key=f"undo_{record.id}", on_click=_undo, args=(str(lib.folder), record.id))


def _undo(folder: str, action_id: int) -> None:
    from lookalike.actions import undo
    from lookalike.library import Library

    try:
        with Library.open(folder) as writable:
            result = undo(writable, action_id)
        st.session_state["actions_done"] = f"Undid action {action_id}: {len(result.steps):,} files" + (
            f", {len(result.skipped):,} skipped ({result.skipped[0][1]})" if result.skipped else ""
        )
    except LookalikeError as exc:
        st.session_state["actions_done"] = f"Could not undo action {action_id}: {exc}"

"""Sidebar: what the library holds (image count, backbone, skipped files with reasons)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    from lookalike.library import Library

SKIPPED_SHOWN = 200
"""Most skipped files listed one by one."""


def render(lib: Library) -> None:
    from lookalike.store.status import skipped_files

    status = lib.status()
    with st.sidebar:
        st.subheader(lib.folder.name)
        st.metric("Images", f"{status.embedded:,}")
        st.caption(
            f"backbone **{status.backbone}** ({status.dim}-d) · {status.files:,} files · "
            f"{status.labelled_files:,} labelled · {status.pending:,} pending"
        )
        if status.skipped_files:
            with st.expander(f"Skipped files: {status.skipped_files:,}"):
                for reason, count in status.skipped_by_reason:
                    st.write(f"**{count}** × {reason}")
                for item in skipped_files(lib.catalog, limit=SKIPPED_SHOWN):
                    st.caption(f"{item.path}: {item.reason}")
        else:
            st.caption("No skipped files.")

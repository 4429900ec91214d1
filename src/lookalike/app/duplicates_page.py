"""Duplicates page: groups of duplicate files with their reason and score, side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from lookalike.app.common import gallery, short_name

if TYPE_CHECKING:
    from lookalike.library import Library

GROUPS_SHOWN = 50
"""Most groups drawn with their images (the rest are counted)."""


def render(lib: Library) -> None:
    st.header("Duplicates")
    left, mid, right = st.columns(3)
    exact = left.checkbox("Exact (same content)", value=True, key="dup_exact")
    near = mid.slider("Near: max perceptual-hash bits", 0, 16, 8, key="dup_bits")
    semantic = right.slider("Semantic: min similarity", 0.80, 1.0, 0.95, 0.01, key="dup_sim")
    use_near = st.checkbox("Near duplicates (perceptual hash)", value=True, key="dup_use_near")
    use_semantic = st.checkbox("Semantic duplicates (embedding similarity)", value=True, key="dup_use_sem")
    groups = lib.duplicates(
        exact=exact, near_bits=near if use_near else None, min_similarity=semantic if use_semantic else None
    )
    if not groups:
        st.success("No duplicate groups with these settings.")
        return
    st.caption(f"{len(groups)} groups, {sum(len(g.paths) for g in groups)} files")
    for number, group in enumerate(groups[:GROUPS_SHOWN], start=1):
        best = max(group.links, key=lambda link: link.score)
        with st.container(border=True):
            st.markdown(
                f"**Group {number}** · {len(group.paths)} files · {', '.join(group.kinds)} · "
                f"best score {best.score:.3f}"
            )
            for link in group.links[:10]:
                st.caption(
                    f"{short_name(link.a)} ↔ {short_name(link.b)}: {link.kind}, {link.reason}, score {link.score:.3f}"
                    + (f" · {link.edit}" if link.edit else "")
                )
            gallery(lib, [(p, short_name(p)) for p in group.paths[:8]], columns=min(len(group.paths), 8))
    if len(groups) > GROUPS_SHOWN:
        st.caption(
            f"{len(groups) - GROUPS_SHOWN} more groups not shown; `lookalike duplicates --library "
            f"{lib.folder}` lists them all."
        )

"""Duplicates page: each group's files side by side with reason and score; "Keep this one" marks the
others, and the actions panel acts on every file not kept (export, copy, quarantine, label)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from lookalike.app import actions_panel
from lookalike.app.common import short_name, thumbnail
from lookalike.app.grid import grid
from lookalike.config import (
    DUPLICATE_CONFIRM_BITS,
    DUPLICATE_DHASH_BITS,
    DUPLICATE_MIN_SIMILARITY,
    DUPLICATE_NEAR_BITS,
)

if TYPE_CHECKING:
    from lookalike.library import Library

GROUPS_SHOWN = 50
"""Most groups drawn with their images (the rest are counted; the actions cover them all)."""
FILES_SHOWN = 8


def render(lib: Library) -> None:
    st.header("Duplicates")
    left, mid, right = st.columns(3)
    exact = left.checkbox("Exact (same content)", value=True, key="dup_exact")
    near = mid.slider("Near: max perceptual-hash bits", 0, 16, DUPLICATE_NEAR_BITS, key="dup_bits")
    semantic = right.slider("Semantic: min similarity", 0.80, 1.0, DUPLICATE_MIN_SIMILARITY, 0.01, key="dup_sim")
    use_near = st.checkbox("Near duplicates (perceptual hash)", value=True, key="dup_use_near")
    use_semantic = st.checkbox("Semantic duplicates (embedding similarity)", value=True, key="dup_use_sem")
    use_weak = st.checkbox(
        "Weaker links: near+semantic and difference hash (crops, text over a picture)", value=True,
        key="dup_use_weak", help="These links add a file to a group and never merge two. On photos of one kind "
        "(pets, products) they also link some different pictures: turn them off to see only the stronger links.",
    )
    groups = lib.duplicates(
        exact=exact, near_bits=near if use_near else None, min_similarity=semantic if use_semantic else None,
        confirm_bits=DUPLICATE_CONFIRM_BITS if use_weak else None, dhash_bits=DUPLICATE_DHASH_BITS if use_weak else None,
    )
    if not groups:
        st.success("No duplicate groups with these settings.")
        return
    st.caption(f"{len(groups)} groups, {sum(len(g.paths) for g in groups)} files")
    keep = {n: st.session_state.get(f"dup_keep_{n}", g.paths[0]) for n, g in enumerate(groups)}
    keep = {n: path if path in groups[n].paths else groups[n].paths[0] for n, path in keep.items()}
    for number, group in enumerate(groups[:GROUPS_SHOWN]):
        _group(lib, number, group, keep[number])
    if len(groups) > GROUPS_SHOWN:
        st.caption(
            f"{len(groups) - GROUPS_SHOWN} more groups not shown (their first file is kept); `lookalike duplicates "
            f"--library {lib.folder}` lists them all."
        )
    from lookalike.actions.selection import all_but_one

    st.subheader("Files not kept")
    actions_panel.render(lib, all_but_one(groups, keep), "dup_act")
    _group_grid(lib, groups)


def _keep(number: int, path: str) -> None:
    st.session_state[f"dup_keep_{number}"] = path


def _group(lib: Library, number: int, group: Any, kept: str) -> None:
    best = max(group.links, key=lambda link: link.score)
    with st.container(border=True):
        st.markdown(
            f"**Group {number + 1}** · {len(group.paths)} files · {', '.join(group.kinds)} · best score {best.score:.3f}"
        )
        for link in group.links[:10]:
            st.caption(
                f"{short_name(link.a)} ↔ {short_name(link.b)}: {link.kind}, {link.reason}, score {link.score:.3f}"
                + (f" · {link.edit}" if link.edit else "")
            )
        shown = group.paths[:FILES_SHOWN]
        for column, path in zip(st.columns(len(shown)), shown):
            with column:
                data = thumbnail(lib, path)
                if data is None:
                    st.caption(f"(cannot show {short_name(path)})")
                else:
                    st.image(data, caption=short_name(path))
                if path == kept:
                    st.markdown("✅ **kept**")
                else:
                    st.button("Keep this one", key=f"dup_keep_btn_{number}_{path}", on_click=_keep, args=(number, path))


def _group_grid(lib: Library, groups: list[Any]) -> None:
    """Any group in the full grid (sortable, paged, "Similar")."""
    import pandas as pd

    from lookalike.store.annotations import file_labels, image_of_path

    st.subheader("A group in the grid")
    number = st.selectbox("Group", range(len(groups)), format_func=lambda n: f"group {n + 1}", key="dup_grid_pick")
    paths = groups[number].paths
    labels = file_labels(lib.catalog, paths)
    rows = [{"image_id": image_of_path(lib.catalog, p), "path": p, "label": labels.get(p)} for p in paths]
    table = pd.DataFrame([r for r in rows if r["image_id"] is not None])
    grid(lib, table, f"dup_grid_{number}", sort="path")

"""The one thumbnail grid of the app: a selection, a cluster, a search result or a duplicate group.

Paged and sortable; each thumbnail shows path, label, cluster and distance to the cluster centre,
and has a "Similar" button that opens the Search page on that library image. The grid is a Streamlit
fragment: turning a page or sorting reruns the grid alone, not the page around it (on a 60k-image
library, not the map).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from lookalike.app.common import short_name, thumbnail_of

if TYPE_CHECKING:
    import pandas as pd

    from lookalike.library import Library

COLUMNS = 6
PAGE_SIZE = 24
SORT_LABELS = {
    "rank": "rank", "distance": "distance to cluster centre", "similarity": "similarity", "path": "path",
    "label": "label", "cluster": "cluster",
}  # fmt: skip
"""Columns a grid can be sorted by, with their names on screen."""
SIMILAR_SOURCE = "More like a library image"
"""The Search page's query source that "Similar" selects."""
_SIMILAR_ASKED = "similar_asked"


def _ask_similar(image_id: int) -> None:
    """"Similar" was pressed: rerun the whole app, which opens the Search page (see :func:`open_similar`)."""
    st.session_state[_SIMILAR_ASKED] = int(image_id)
    st.rerun(scope="app")


def open_similar() -> None:
    """When "Similar" was pressed, switch to the Search page on that library image. Called before the
    page picker is drawn (a widget's value can only be set before it is drawn in a run)."""
    image_id = st.session_state.pop(_SIMILAR_ASKED, None)
    if image_id is not None:
        st.session_state["page"] = "Search"
        st.session_state["search_source"] = SIMILAR_SOURCE
        st.session_state["search_similar"] = int(image_id)


def _turn(key: str, step: int, pages: int) -> None:
    st.session_state[key] = int(min(max(1, st.session_state.get(key, 1) + step), pages))


def _ordered(table: pd.DataFrame, key: str, sort: str | None, descending: bool) -> pd.DataFrame:
    options = [c for c in SORT_LABELS if c in table.columns]
    left, right = st.columns([3, 1])
    by = left.selectbox(
        "Sort by", options, index=options.index(sort) if sort in options else 0, key=f"{key}_sort",
        format_func=SORT_LABELS.__getitem__,
    )  # fmt: skip
    if f"{key}_desc" not in st.session_state:
        st.session_state[f"{key}_desc"] = descending
    desc = right.toggle("Descending", key=f"{key}_desc")
    return table.sort_values(by, ascending=not desc, kind="stable", na_position="last")


def _page(n: int, key: str) -> tuple[int, int]:
    """The page shown (1-based) and the page count, with the controls to turn pages."""
    pages = max(1, math.ceil(n / PAGE_SIZE))
    state = f"{key}_page"
    if not 1 <= int(st.session_state.get(state, 1)) <= pages:
        st.session_state[state] = min(max(1, int(st.session_state.get(state, 1))), pages)
    left, mid, right = st.columns([1, 2, 1], vertical_alignment="bottom")
    left.button("◀ Previous", key=f"{key}_prev", on_click=_turn, args=(state, -1, pages), disabled=pages == 1)
    page = int(mid.number_input(f"Page (of {pages:,})", 1, pages, step=1, key=state))
    right.button("Next ▶", key=f"{key}_next", on_click=_turn, args=(state, 1, pages), disabled=pages == 1)
    return page, pages


def caption(row: Any) -> str:
    """``folder/file · label · cluster 3 · d 0.412`` (a ``caption`` column, when given, wins)."""
    given = getattr(row, "caption", None)
    if isinstance(given, str) and given:
        return given
    parts = [short_name(str(row.path))]
    label = getattr(row, "label", None)
    if isinstance(label, str) and label:
        parts.append(label)
    cluster = getattr(row, "cluster", None)
    if cluster is not None and not (isinstance(cluster, float) and math.isnan(cluster)) and int(cluster) > -2:
        parts.append("noise" if int(cluster) == -1 else f"cluster {int(cluster)}")
    distance = getattr(row, "distance", None)
    if distance is not None and np.isfinite(distance):
        parts.append(f"d {float(distance):.3f}")
    return " · ".join(parts)


def grid(lib: Library, table: pd.DataFrame, key: str, *, sort: str | None = None, descending: bool = False) -> None:
    """Thumbnails of ``table``'s rows (columns ``image_id``, ``path`` and any of ``label``,
    ``cluster``, ``distance``, ``rank``, ``similarity``, ``caption``), one page at a time."""
    if table.empty:
        st.caption("No images.")
        return
    _paged_grid(str(lib.folder), table, key, sort, descending)


@st.fragment
def _paged_grid(folder: str, table: pd.DataFrame, key: str, sort: str | None, descending: bool) -> None:
    """The grid's widgets and one page of thumbnails; reruns alone when they change. It opens the
    library itself: the page's :class:`Library` is closed when a fragment reruns."""
    from lookalike.library import Library

    with Library.open(folder, readonly=True) as lib:
        ordered = _ordered(table, key, sort, descending)
        page, pages = _page(len(ordered), key)
        start = (page - 1) * PAGE_SIZE
        chunk = ordered.iloc[start : start + PAGE_SIZE]
        st.caption(f"Images {start + 1:,}–{start + len(chunk):,} of {len(ordered):,} · page {page:,} of {pages:,}")
        rows = list(chunk.itertuples(index=False))
        for first in range(0, len(rows), COLUMNS):
            for offset, (column, row) in enumerate(zip(st.columns(COLUMNS), rows[first : first + COLUMNS])):
                with column:
                    _thumbnail(lib, row, f"{key}_similar_{start + first + offset}")


def _thumbnail(lib: Library, row: Any, button_key: str) -> None:
    data = thumbnail_of(lib, int(row.image_id), str(row.path))
    if data is None:
        st.caption(f"(cannot show {short_name(str(row.path))})")
    else:
        st.image(data, caption=caption(row), width="stretch")
    if st.button("Similar", key=button_key, help="Search the library for images like this one"):
        _ask_similar(int(row.image_id))

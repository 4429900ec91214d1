"""The script ``streamlit run`` executes: ``streamlit run main.py -- --library L``.

Opens the library read-only for each run of the script (SQLite connections belong to one
thread, and Streamlit reruns in new threads), shows the sidebar and the chosen page. The page is
in the URL (``?page=clusters``), so a reload or a shared link opens the same page.
"""

from __future__ import annotations

import sys

import streamlit as st

from lookalike.app import actions_page, classify_page, cluster_page, common, duplicates_page, grid, search_page, sidebar
from lookalike.errors import LookalikeError

PAGES = {
    "Search": search_page.render,
    "Cluster Analysis": cluster_page.render,
    "Duplicates": duplicates_page.render,
    "Classification": classify_page.render,
    "Actions": actions_page.render,
}
# each page's name in the URL (a comment: a bare string here would be shown by Streamlit's magic)
SLUGS = {"Search": "search", "Cluster Analysis": "clusters", "Duplicates": "duplicates",
         "Classification": "classification", "Actions": "actions"}  # fmt: skip


def _page_from_url() -> None:
    """Start on the page the URL names (first run of a session only: afterwards the radio rules)."""
    if "page" in st.session_state:
        return
    wanted = st.query_params.get("page")
    for name, slug in SLUGS.items():
        if slug == wanted:
            st.session_state["page"] = name


def main() -> None:
    st.set_page_config(page_title="lookalike", layout="wide")
    path = common.library_path(sys.argv[1:])
    if path is None:
        st.error("No library given: start the app with `lookalike app --library PATH`.")
        return
    from lookalike.library import Library

    try:
        lib = Library.open(path, readonly=True)
    except LookalikeError as exc:
        st.error(str(exc))
        return
    with lib:
        _page_from_url()
        grid.open_similar()
        page = st.sidebar.radio("Page", list(PAGES), key="page")
        st.query_params["page"] = SLUGS[page]
        with common.friendly_errors():
            sidebar.render(lib)
        with common.friendly_errors():
            PAGES[page](lib)


main()

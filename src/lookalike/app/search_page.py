"""Search page: upload an image, pick one of the library's or press "Similar" under any thumbnail;
see its nearest images (filtered by cluster, label, folder) in the grid, and act on them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from lookalike.app import actions_panel
from lookalike.app.common import friendly_errors, short_name, thumbnail_of
from lookalike.app.grid import SIMILAR_SOURCE, grid
from lookalike.errors import ImageError, LookalikeError
from lookalike.search.rerank import RERANK_METHODS
from lookalike.store.images import files_matching

if TYPE_CHECKING:
    from lookalike.library import Library

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "heic", "heif"]
KINDS = ("auto", "exact", "ivf", "hnsw")
SOURCES = ("Upload an image", "Pick from the library", SIMILAR_SOURCE)
PROJECTED = "learned projection"
PICK_LIMIT = 500
"""Most library files offered in the picker at once (narrow them with the filter)."""


def render(lib: Library) -> None:
    st.header("Search")
    query, query_name = _query_input(lib)
    left, mid, rerank_col, right = st.columns(4)
    k = left.slider("Results (k)", min_value=1, max_value=200, value=8, key="search_k")
    kind = mid.selectbox("Index kind", KINDS, key="search_kind")
    rerank = rerank_col.selectbox(
        "Re-ranking", (*RERANK_METHODS, PROJECTED), key="search_rerank",
        help="none: exact nearest neighbours; aqe / dba / kreciprocal re-order the nearest candidates; "
        f"{PROJECTED} orders them in the label projection (`lookalike learn-projection --library {lib.folder}`)",
    )
    in_cluster = right.toggle(
        "Search only inside the query's cluster",
        key="search_in_cluster",
        help="Uses the IVF index probing one cell (the query's own cluster); overrides the index kind",
    )
    filters = _filters(lib)
    if query is None:
        st.info("Upload an image or pick one from the library to search.")
        return
    options: dict[str, Any] = {"kind": "ivf", "nprobe": 1} if in_cluster else {"kind": kind}
    if rerank == PROJECTED:
        options["projected"] = True
    else:
        options["rerank"] = rerank
    try:
        result = lib.search(query, k, filters=filters, **options)
    except ImageError as exc:
        st.error(f"Cannot read {query_name!r} as an image: {exc.reason}")
        return
    except LookalikeError as exc:
        st.error(str(exc))
        return
    _show_result(lib, result, query_name)


def _filters(lib: Library) -> Any:
    """Result filters (cluster of the latest run, label, folder), as ``lookalike search`` has."""
    from lookalike.search.searcher import SearchFilters
    from lookalike.store.annotations import cluster_names, labels_in_use, latest_run_id

    run = latest_run_id(lib.catalog)
    names = {} if run is None else cluster_names(lib.catalog, run)
    labels = labels_in_use(lib.catalog)
    with st.expander("Filter results: cluster, label, folder"):
        left, mid, right = st.columns(3)
        cluster = left.selectbox(
            "Cluster" + ("" if run is None else f" (run {run})"), [None, *names], key="search_f_cluster",
            format_func=lambda c: "any" if c is None else f"{c}: {names[c]}", disabled=run is None,
        )  # fmt: skip
        label = mid.selectbox("Label", [None, *labels], key="search_f_label", format_func=lambda x: x or "any")
        under = right.text_input("Folder (path prefix)", key="search_f_under")
    return SearchFilters(cluster=cluster, label=label, under=under.strip() or None)


def _query_input(lib: Library) -> tuple[bytes | int | None, str]:
    """The query (uploaded bytes, or a library image id) and a name to show for it."""
    source = st.radio("Query", SOURCES, horizontal=True, key="search_source")
    if source == SOURCES[0]:
        upload = st.file_uploader("Image (JPG, PNG, WebP, HEIC)", type=UPLOAD_TYPES, key="search_upload")
        if upload is None:
            return None, ""
        data = upload.getvalue()
        if _decodable(data):
            st.image(data, caption=upload.name, width=160)
        return data, upload.name
    if source == SIMILAR_SOURCE:
        return _similar_query(lib)
    text = st.text_input("Filter file names", key="search_filter")
    rows = files_matching(lib.catalog, text, PICK_LIMIT)
    if not rows:
        st.warning("No library file matches the filter.")
        return None, ""
    paths = {path: image_id for image_id, path in rows}
    picked = st.selectbox("Library image", list(paths), format_func=short_name, key="search_pick")
    return paths[picked], short_name(picked)


def _similar_query(lib: Library) -> tuple[int | None, str]:
    """The library image whose "Similar" button was pressed, shown as the query."""
    from lookalike.store.annotations import image_files

    given = st.session_state.get("search_similar")
    image_id = -1 if given is None else int(given)
    found = image_files(lib.catalog, [image_id]).get(image_id)
    if found is None:
        st.info("Press “Similar” under any thumbnail (a cluster, a selection, a result) to search from it.")
        return None, ""
    name = short_name(found[1])
    data = thumbnail_of(lib, image_id, found[1])
    if data is not None:
        st.image(data, caption=f"more like {name}", width=160)
    return image_id, name


def _decodable(data: bytes) -> bool:
    """Whether the browser preview can show ``data`` (the search itself reports bad files)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format in {"JPEG", "PNG", "WEBP", "GIF"}
    except (UnidentifiedImageError, OSError):
        return False


def _show_result(lib: Library, result: Any, query_name: str) -> None:
    import pandas as pd

    from lookalike.actions.selection import from_image_ids

    total = result.seconds.get("total", 0.0)
    st.caption(f"{len(result.hits)} results for {query_name} · index {result.kind} · search time {total * 1000:.1f} ms")
    if not result.hits:
        st.warning("No results (the index or the filters left nothing).")
        return
    table = pd.DataFrame([{
        "rank": h.rank, "image_id": h.image_id, "path": h.path, "label": h.label,
        "cluster": -2 if h.cluster is None else h.cluster, "similarity": h.similarity, "caption": _caption(h),
    } for h in result.hits])  # fmt: skip
    with friendly_errors():
        grid(lib, table, "search_grid", sort="rank")
    st.dataframe(_table(result.hits), hide_index=True, key="search_table")
    ids = [h.image_id for h in result.hits]
    actions_panel.render(lib, from_image_ids(lib, ids, f"search results for {query_name}"), "search_act")


def _caption(hit: Any) -> str:
    confidence = "–" if hit.confidence is None else f"{hit.confidence:.2f}"
    cluster = "–" if hit.cluster is None else str(hit.cluster)
    return (
        f"#{hit.rank} {short_name(hit.path)} · dist {hit.distance:.3f} · sim {hit.similarity:.3f} · "
        f"conf {confidence} · cluster {cluster}"
    )


def _table(hits: list[Any]) -> Any:
    import pandas as pd

    return pd.DataFrame([{
        "rank": h.rank, "file": short_name(h.path), "distance": h.distance, "similarity": h.similarity,
        "confidence": h.confidence, "cluster": h.cluster, "label": h.label, "path": h.path,
    } for h in hits])  # fmt: skip

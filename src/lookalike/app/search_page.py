"""Search page: upload an image or pick one of the library's, see its nearest images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from lookalike.app.common import friendly_errors, gallery, short_name
from lookalike.errors import ImageError, LookalikeError
from lookalike.store.images import files_matching

if TYPE_CHECKING:
    from lookalike.library import Library

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "heic", "heif"]
KINDS = ("auto", "exact", "ivf", "hnsw")
PICK_LIMIT = 500
"""Most library files offered in the picker at once (narrow them with the filter)."""


def render(lib: Library) -> None:
    st.header("Search")
    query, query_name = _query_input(lib)
    left, mid, right = st.columns(3)
    k = left.slider("Results (k)", min_value=1, max_value=50, value=8, key="search_k")
    kind = mid.selectbox("Index kind", KINDS, key="search_kind")
    in_cluster = right.toggle(
        "Search only inside the query's cluster",
        key="search_in_cluster",
        help="Uses the IVF index probing one cell (the query's own cluster); overrides the index kind",
    )
    if query is None:
        st.info("Upload an image or pick one from the library to search.")
        return
    options: dict[str, Any] = {"kind": "ivf", "nprobe": 1} if in_cluster else {"kind": kind}
    try:
        result = lib.search(query, k, **options)
    except ImageError as exc:
        st.error(f"Cannot read {query_name!r} as an image: {exc.reason}")
        return
    except LookalikeError as exc:
        st.error(str(exc))
        return
    _show_result(lib, result, query_name)


def _query_input(lib: Library) -> tuple[bytes | int | None, str]:
    """The query (uploaded bytes, or a library image id) and a name to show for it."""
    source = st.radio("Query", ("Upload an image", "Pick from the library"), horizontal=True, key="search_source")
    if source == "Upload an image":
        upload = st.file_uploader("Image (JPG, PNG, WebP, HEIC)", type=UPLOAD_TYPES, key="search_upload")
        if upload is None:
            return None, ""
        data = upload.getvalue()
        if _decodable(data):
            st.image(data, caption=upload.name, width=160)
        return data, upload.name
    text = st.text_input("Filter file names", key="search_filter")
    rows = files_matching(lib.catalog, text, PICK_LIMIT)
    if not rows:
        st.warning("No library file matches the filter.")
        return None, ""
    paths = {str(path): int(image_id) for image_id, path in rows}
    picked = st.selectbox("Library image", list(paths), format_func=short_name, key="search_pick")
    return paths[picked], short_name(picked)


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
    total = result.seconds.get("total", 0.0)
    st.caption(f"{len(result.hits)} results for {query_name} · index {result.kind} · search time {total * 1000:.1f} ms")
    if not result.hits:
        st.warning("No results (the index or the cluster filter left nothing).")
        return
    items = [(hit.path, _caption(hit)) for hit in result.hits]
    with friendly_errors():
        gallery(lib, items)
    st.dataframe(_table(result.hits), hide_index=True, key="search_table")


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

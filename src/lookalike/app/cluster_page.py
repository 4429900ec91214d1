"""Cluster Analysis page: a run's scatter (2D/3D PCA, WebGL), galleries, K evidence, metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from lookalike.app import charts
from lookalike.app.common import gallery, missing, short_name
from lookalike.app.projections import projection
from lookalike.store.images import first_files

if TYPE_CHECKING:
    from lookalike.library import Library

SELECTION_SHOWN = 24
"""Most images shown for a selection in the scatter."""


def render(lib: Library) -> None:
    st.header("Cluster Analysis")
    runs = lib.cluster_runs()
    if not runs:
        missing("clustering runs", f"lookalike cluster --library {lib.folder}")
        return
    by_id = {r.id: r for r in runs}
    chosen = st.selectbox(
        "Clustering run", list(reversed(by_id)), format_func=lambda i: _run_title(by_id[i]), key="cluster_run"
    )
    run = lib.cluster_run(chosen)
    for note in run.info.notes:
        st.caption(note)
    _metrics(run)
    _scatter(lib, run)
    _cluster_gallery(lib, run)
    _evidence(lib, run.info)


def _run_title(info: Any) -> str:
    stale = " · stale (PCA refitted)" if info.stale else ""
    return f"run {info.id}: {info.method}, {info.n_clusters} clusters, {info.n_images:,} images{stale}"


def _metrics(run: Any) -> None:
    scalars = {k: v for k, v in run.info.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if not scalars:
        return
    cols = st.columns(min(len(scalars), 5))
    for i, (name, value) in enumerate(scalars.items()):
        cols[i % len(cols)].metric(name.replace("_", " "), f"{value:.3f}" if isinstance(value, float) else value)


def _file_table(lib: Library) -> dict[int, tuple[str, str | None]]:
    """(path, label) of each image's first file, for every image (one query)."""
    return first_files(lib.catalog)


def _scatter(lib: Library, run: Any) -> None:
    reduced = lib.reduced()
    ids = np.asarray(reduced.ids, dtype=np.int64)
    left, right = st.columns(2)
    dims = 3 if left.radio("View", ("2D", "3D"), horizontal=True, key="cluster_dims") == "3D" else 2
    colour = right.radio("Colour by", ("cluster", "label"), horizontal=True, key="cluster_colour")
    coords = projection(lib.folder, ids, np.asarray(reduced.vectors), str(reduced.reducer_fingerprint), dims)
    files = _file_table(lib)
    if colour == "cluster":
        groups = _cluster_titles(run, charts.cluster_of(run.image_ids, run.labels, ids))
    else:
        groups = np.array([files.get(int(i), ("", None))[1] or "(no label)" for i in ids])
        if np.all(groups == "(no label)"):
            st.caption(
                "No labels in this library: index with `--labels folder` or "
                f"`lookalike classify labels --library {lib.folder} FILE.csv`."
            )
    names = np.array([short_name(files.get(int(i), ("?", None))[0]) for i in ids])
    figure = charts.scatter(coords, groups, names, ids)
    event = st.plotly_chart(
        figure,
        on_select="rerun",
        selection_mode=("points", "box", "lasso"),
        key=f"cluster_scatter_{dims}",
        width="stretch",
    )
    picked = charts.selected_ids(event)
    if picked:
        st.subheader(f"Selected: {len(picked)} images")
        gallery(lib, [(files[i][0], short_name(files[i][0])) for i in picked[:SELECTION_SHOWN] if i in files])


def _cluster_titles(run: Any, clusters: np.ndarray) -> np.ndarray:
    """``"3: name"`` (n,) str for each cluster number (n,); -1 is noise, -2 unassigned."""
    names = {c.cluster: c.name for c in run.clusters} | {-1: "noise", -2: "unassigned (added after the run)"}
    table = {int(c): f"{int(c)}: {names.get(int(c), 'cluster')}" for c in np.unique(clusters)}
    return np.array([table[int(c)] for c in clusters])


def _cluster_gallery(lib: Library, run: Any) -> None:
    if not run.clusters:
        return
    st.subheader("Clusters")
    infos = {c.cluster: c for c in run.clusters}
    chosen = st.selectbox(
        "Cluster",
        list(infos),
        key="cluster_pick",
        format_func=lambda c: f"{c}: {infos[c].name} ({infos[c].size} images)",
    )
    info = infos[chosen]
    st.dataframe(_summary(run), hide_index=True, key="cluster_table")
    st.caption(f"Representative images of cluster {chosen} ({info.name}, {info.size} images)")
    gallery(lib, [(p, short_name(p)) for p in info.representative_paths])


def _summary(run: Any) -> Any:
    import pandas as pd

    return pd.DataFrame([
        {"cluster": c.cluster, "name": c.name, "size": c.size, "spread": c.spread,
         "representatives": ", ".join(short_name(p) for p in c.representative_paths)}
        for c in run.clusters
    ])  # fmt: skip


def _evidence(lib: Library, info: Any) -> None:
    choice = info.evidence.get("k_choice")
    st.subheader("Choosing K")
    if not choice:
        st.caption(
            "This run was given its number of clusters, so there is no elbow or silhouette curve; "
            f"sweep K with `lookalike cluster --library {lib.folder} --k auto`."
        )
        return
    left, right = st.columns(2)
    left.plotly_chart(
        charts.curve(choice["k_values"], choice["inertia"], "Elbow: inertia by K", "inertia", choice.get("elbow_k")),
        key="cluster_elbow",
    )
    right.plotly_chart(
        charts.curve(
            choice["k_values"], choice["silhouette"], "Silhouette by K", "silhouette", choice.get("silhouette_k")
        ),
        key="cluster_silhouette",
    )
    st.caption(f"Recommended K = {choice.get('recommended_k')}: {choice.get('reason', '')}")

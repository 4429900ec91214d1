"""Cluster Analysis page: the map (2D/3D PCA, t-SNE, UMAP; WebGL; hover shows the image), the
selection's grid, each cluster's members (nearest the centre first, outliers one click away), names,
K evidence and metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from lookalike.app import actions_panel, charts
from lookalike.app.common import missing, short_name
from lookalike.app.grid import grid
from lookalike.app.projections import available_methods, map_coordinates

if TYPE_CHECKING:
    import pandas as pd

    from lookalike.library import Library


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
    table = image_table(lib, run)
    picked = _scatter(lib, run, table)
    if picked:
        _selection(lib, table, picked)
    _clusters(lib, run, table)
    _evidence(lib, run.info)


def _run_title(info: Any) -> str:
    stale = " · stale (PCA refitted)" if info.stale else ""
    space = " · in the learned label projection" if info.params.get("projection") else ""
    return f"run {info.id}: {info.method}, {info.n_clusters} clusters, {info.n_images:,} images{space}{stale}"


def _metrics(run: Any) -> None:
    scalars = {k: v for k, v in run.info.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if not scalars:
        return
    cols = st.columns(min(len(scalars), 6))
    for i, (name, value) in enumerate(scalars.items()):
        shown = f"{value:.3f}" if isinstance(value, float) else f"{value:,}"
        cols[i % len(cols)].metric(charts.metric_label(name), shown)


def image_table(lib: Library, run: Any) -> pd.DataFrame:
    """One row per embedded image: ``image_id``, ``path`` (first file), ``label``, ``cluster`` in
    ``run`` (-1 noise, -2 unassigned) and ``distance`` to its cluster centre (NaN without one)."""
    import pandas as pd

    from lookalike.store.annotations import file_table

    ids, paths, labels = file_table(lib.catalog)
    table = pd.DataFrame({"image_id": np.asarray(ids, dtype=np.int64), "path": paths, "label": labels})
    table = table[np.isin(table["image_id"].to_numpy(), run.image_ids)].reset_index(drop=True)
    order = np.argsort(run.image_ids)
    pos = order[np.searchsorted(run.image_ids, table["image_id"].to_numpy(), sorter=order)]
    table["cluster"] = run.labels[pos]
    table["distance"] = run.distances[pos]
    return table


def _scatter(lib: Library, run: Any, table: pd.DataFrame) -> list[int]:
    """The map of every image (hover: thumbnail), returning the ids of the points selected on it."""
    from lookalike.app.thumbs import MAP_META, hover_previews

    reduced = lib.reduced()
    ids = np.asarray(reduced.ids, dtype=np.int64)
    left, mid, right = st.columns(3)
    dims = 3 if left.radio("View", ("2D", "3D"), horizontal=True, key="cluster_dims") == "3D" else 2
    method = mid.radio("Projection", available_methods(), horizontal=True, key="cluster_projection")
    colour = right.radio("Colour by", ("cluster", "label"), horizontal=True, key="cluster_colour")
    rows, coords = map_coordinates(lib.folder, ids, np.asarray(reduced.vectors), str(reduced.reducer_fingerprint),
                                   dims, method)  # fmt: skip
    ids = ids[rows]
    if rows.size < reduced.ids.shape[0]:
        st.caption(f"{method} shows a seeded sample of {rows.size:,} of {reduced.ids.shape[0]:,} images (PCA shows all).")
    by_id = table.set_index("image_id")
    known = np.isin(ids, by_id.index.to_numpy())
    ids, coords = ids[known], coords[known]
    if colour == "cluster":
        groups = _cluster_titles(run, charts.cluster_of(run.image_ids, run.labels, ids))
    else:
        labels = by_id.loc[ids, "label"].to_numpy()
        groups = np.array([str(x) if isinstance(x, str) else "(no label)" for x in labels])
        if np.all(groups == "(no label)"):
            st.caption(
                "No labels in this library: index with `--labels folder` or "
                f"`lookalike classify labels --library {lib.folder} FILE.csv`."
            )
    names = np.array([short_name(p) for p in by_id.loc[ids, "path"].to_numpy()])
    figure = charts.scatter(coords, groups, names, ids, meta=MAP_META)
    hover_previews(lib.folder, lib.manifest.ingest.max_pixels)
    st.caption("Hover over a point to see its image; drag a box or lasso (2D) to select images.")
    event = st.plotly_chart(
        figure, on_select="rerun", selection_mode=("points", "box", "lasso"),
        key=f"cluster_scatter_{dims}_{method}", width="stretch",
    )  # fmt: skip
    return charts.selected_ids(event)


def _selection(lib: Library, table: pd.DataFrame, picked: list[int]) -> None:
    from lookalike.actions.selection import from_image_ids

    chosen = table[np.isin(table["image_id"].to_numpy(), np.asarray(picked, dtype=np.int64))]
    st.subheader(f"Selected: {len(chosen):,} images")
    grid(lib, chosen, "selection", sort="cluster")
    actions_panel.render(lib, from_image_ids(lib, chosen["image_id"].tolist(), "images selected on the map"), "selection_act")


def _cluster_titles(run: Any, clusters: np.ndarray) -> np.ndarray:
    """``"3: name"`` (n,) str for each cluster number (n,); -1 is noise, -2 unassigned."""
    names = {c.cluster: c.name for c in run.clusters} | {-1: "noise", -2: "unassigned (added after the run)"}
    table = {int(c): f"{int(c)}: {names.get(int(c), 'cluster')}" for c in np.unique(clusters)}
    return np.array([table[int(c)] for c in clusters])


def _clusters(lib: Library, run: Any, table: pd.DataFrame) -> None:
    if not run.clusters:
        return
    st.subheader("Clusters")
    st.dataframe(_summary(run), hide_index=True, key="cluster_table")
    infos = {c.cluster: c for c in run.clusters}
    if np.any(run.labels == -1):
        infos[-1] = None
    chosen = st.selectbox(
        "Cluster", list(infos), key="cluster_pick",
        format_func=lambda c: "-1: noise" if infos[c] is None else f"{c}: {infos[c].name} ({infos[c].size} images)",
    )  # fmt: skip
    members = table[table["cluster"].to_numpy() == chosen]
    key = f"members_{run.info.id}_{chosen}"
    if chosen >= 0:
        _rename(lib, run.info.id, chosen, infos[chosen].name)
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    left.markdown(f"**Cluster {chosen}: {len(members):,} images**, nearest the centre first")
    right.button("Outliers first", key=f"{key}_outliers", on_click=_outliers, args=(key,),
                 help="Sort by distance to the centre, farthest first")  # fmt: skip
    grid(lib, members, key, sort="distance")
    from lookalike.actions.selection import from_image_ids

    source = f"cluster {chosen} of run {run.info.id}"
    ordered = members.sort_values("distance", kind="stable", na_position="last")
    actions_panel.render(lib, from_image_ids(lib, ordered["image_id"].tolist(), source), f"{key}_act")


def _outliers(key: str) -> None:
    st.session_state[f"{key}_sort"] = "distance"
    st.session_state[f"{key}_desc"] = True
    st.session_state[f"{key}_page"] = 1


def _rename(lib: Library, run_id: int, cluster: int, name: str) -> None:
    done = st.session_state.pop("cluster_renamed", None)
    if done:
        st.success(done)
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    left.text_input("Cluster name", value=name, key=f"rename_{run_id}_{cluster}")
    right.button("Rename", key=f"rename_{run_id}_{cluster}_go", on_click=_do_rename,
                 args=(str(lib.folder), run_id, cluster))  # fmt: skip


def _do_rename(folder: str, run_id: int, cluster: int) -> None:
    from lookalike.actions import rename_cluster
    from lookalike.errors import LookalikeError
    from lookalike.library import Library

    name = str(st.session_state.get(f"rename_{run_id}_{cluster}", ""))
    try:
        with Library.open(folder) as writable:
            rename_cluster(writable, cluster, name, run_id)
        st.session_state["cluster_renamed"] = f"Cluster {cluster} is now named “{name.strip()}”."
    except LookalikeError as exc:
        st.session_state["cluster_renamed"] = f"Could not rename cluster {cluster}: {exc}"


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

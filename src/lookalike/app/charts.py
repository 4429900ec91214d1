"""Plotly figures for the app (WebGL scatter, curves, heatmap) and reading chart selections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MAX_LEGEND_GROUPS = 60
"""Groups beyond this many are drawn as one trace (legend entries stop being useful)."""


def cluster_of(run_ids: np.ndarray, run_labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Cluster (n,) int64 of each of ``ids`` (n,) in a run (``run_ids`` sorted, ``run_labels``);
    ids the run does not hold get -2 (unassigned)."""
    out = np.full(ids.shape[0], -2, dtype=np.int64)
    if run_ids.size == 0:
        return out
    pos = np.minimum(np.searchsorted(run_ids, ids), run_ids.size - 1)
    found = run_ids[pos] == ids
    out[found] = run_labels[pos[found]]
    return out


def _group_order(groups: np.ndarray) -> list[str]:
    """Groups by size, largest first; ``"3: name"`` groups (clusters) in numeric order."""
    values, counts = np.unique(groups, return_counts=True)
    try:
        return [str(v) for v in sorted(values, key=lambda v: int(str(v).split(":", 1)[0]))]
    except ValueError:
        return [str(values[i]) for i in np.argsort(-counts, kind="stable")]


GOLDEN_ANGLE = 137.50776405003785
"""Degrees between successive hues: the hues of any number of clusters never repeat or bunch up."""
NOISE_COLOUR = "#9e9e9e"
UNASSIGNED_COLOUR = "#d0d0d0"


def palette(index: int) -> str:
    """The colour of group ``index`` (>= 0): golden-angle hue, with saturation and lightness varied
    so that neighbouring hues of far-apart indexes still differ. Never the noise grey."""
    hue = (index * GOLDEN_ANGLE) % 360.0
    saturation = (72, 58, 85)[(index // 3) % 3]
    lightness = (48, 38, 60)[index % 3]
    return f"hsl({hue:.2f},{saturation}%,{lightness}%)"


def group_colour(group: str, position: int) -> str:
    """Grey for noise (``-1: ...``) and unassigned (``-2: ...``); cluster ``c`` gets ``palette(c)``;
    other groups (labels) the palette at their ``position`` in the legend."""
    head = group.split(":", 1)[0]
    try:
        number = int(head)
    except ValueError:
        return palette(position)
    if number == -1:
        return NOISE_COLOUR
    if number < -1:
        return UNASSIGNED_COLOUR
    return palette(number)


def scatter(coords: np.ndarray, groups: np.ndarray, names: np.ndarray, ids: np.ndarray, meta: str = "") -> Any:
    """A WebGL scatter of ``coords`` (n, 2) (``Scattergl``) or (n, 3) (``Scatter3d``), one trace per
    group (n,) str; hover shows the file name (n,); ``customdata`` carries the image id (n,);
    ``meta`` tags the figure (the app's hover previews find the map by it)."""
    import plotly.graph_objects as go

    three = coords.shape[1] == 3
    figure = go.Figure()
    order = _group_order(groups)
    colours = {g: group_colour(g, i) for i, g in enumerate(order)}
    for group in order[:MAX_LEGEND_GROUPS]:
        mask = groups == group
        figure.add_trace(_trace(coords[mask], names[mask], ids[mask], group, three, colours[group]))
    if len(order) > MAX_LEGEND_GROUPS:
        rest = ~np.isin(groups, order[:MAX_LEGEND_GROUPS])
        each = np.array([colours[str(g)] for g in groups[rest]])
        figure.add_trace(_trace(coords[rest], names[rest], ids[rest], "other", three, each))
    figure.update_layout(
        height=600, margin={"l": 0, "r": 0, "t": 30, "b": 0}, legend={"itemsizing": "constant"},
        meta=meta, uirevision="map", dragmode="orbit" if three else "select", hovermode="closest",
    )  # fmt: skip
    return figure


def _trace(xyz: np.ndarray, names: np.ndarray, ids: np.ndarray, group: str, three: bool, colour: Any) -> Any:
    import plotly.graph_objects as go

    common = {
        "mode": "markers",
        "name": group,
        "text": names,
        "customdata": ids,
        "hovertemplate": "%{text}<br>" + group + "<extra></extra>",
    }
    if three:
        return go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], marker={"size": 2, "color": colour}, **common)
    return go.Scattergl(x=xyz[:, 0], y=xyz[:, 1], marker={"size": 5, "color": colour}, **common)


METRIC_LABELS = {
    "silhouette": "Silhouette", "davies_bouldin": "Davies–Bouldin", "calinski_harabasz": "Calinski–Harabasz",
    "n_points": "Points", "n_clusters": "Clusters", "n_noise": "Noise points", "noise_fraction": "Noise share",
    "nmi": "NMI", "ari": "ARI", "homogeneity": "Homogeneity", "completeness": "Completeness", "purity": "Purity",
    "inertia": "Inertia", "silhouette_sample_size": "Silhouette sample", "n_scored": "Points scored",
    "n_labelled": "Labelled points", "seconds": "Seconds",
}  # fmt: skip
"""How each stored clustering metric is named on screen."""


def metric_label(name: str) -> str:
    """The on-screen name of metric ``name`` (``davies_bouldin`` → ``Davies–Bouldin``)."""
    return METRIC_LABELS.get(name, name.replace("_", " ").capitalize())


def selected_ids(event: Any) -> list[int]:
    """Image ids of the points selected in a ``st.plotly_chart`` selection event."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    out = []
    for point in points:
        data = point.get("customdata")
        if isinstance(data, list):
            data = data[0] if data else None
        if data is not None:
            out.append(int(data))
    return out


def curve(x: Sequence[float], y: Sequence[float | None], title: str, y_title: str, mark: int | None) -> Any:
    """A line chart of ``y`` over K, with the K ``mark`` (if any) as a vertical line."""
    import plotly.graph_objects as go

    figure = go.Figure(go.Scatter(x=list(x), y=list(y), mode="lines+markers", name=y_title))
    if mark is not None:
        figure.add_vline(x=mark, line_dash="dash", annotation_text=f"K={mark}")
    figure.update_layout(title=title, xaxis_title="K", yaxis_title=y_title, height=320)
    return figure


def heatmap(matrix: np.ndarray, labels: Sequence[str], title: str) -> Any:
    """A confusion matrix heatmap: rows are true classes, columns predicted, cells annotated."""
    import plotly.graph_objects as go

    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=list(labels),
            y=list(labels),
            colorscale="Blues",
            text=matrix,
            texttemplate="%{text}",
            hovertemplate="true %{y}<br>predicted %{x}<br>%{z}<extra></extra>",
        )
    )
    figure.update_layout(
        title=title, xaxis_title="predicted", yaxis_title="true", height=420, yaxis={"autorange": "reversed"}
    )
    return figure

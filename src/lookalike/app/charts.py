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


def scatter(coords: np.ndarray, groups: np.ndarray, names: np.ndarray, ids: np.ndarray) -> Any:
    """A WebGL scatter of ``coords`` (n, 2) (``Scattergl``) or (n, 3) (``Scatter3d``), one trace per
    group (n,) str; hover shows the file name (n,); ``customdata`` carries the image id (n,)."""
    import plotly.graph_objects as go

    three = coords.shape[1] == 3
    figure = go.Figure()
    order = _group_order(groups)
    for group in order[:MAX_LEGEND_GROUPS]:
        mask = groups == group
        figure.add_trace(_trace(coords[mask], names[mask], ids[mask], group, three))
    if len(order) > MAX_LEGEND_GROUPS:
        rest = ~np.isin(groups, order[:MAX_LEGEND_GROUPS])
        figure.add_trace(_trace(coords[rest], names[rest], ids[rest], "other", three))
    figure.update_layout(height=600, margin={"l": 0, "r": 0, "t": 30, "b": 0}, legend={"itemsizing": "constant"})
    return figure


def _trace(xyz: np.ndarray, names: np.ndarray, ids: np.ndarray, group: str, three: bool) -> Any:
    import plotly.graph_objects as go

    common = {
        "mode": "markers",
        "name": group,
        "text": names,
        "customdata": ids,
        "hovertemplate": "%{text}<br>" + group + "<extra></extra>",
    }
    if three:
        return go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], marker={"size": 2}, **common)
    return go.Scattergl(x=xyz[:, 0], y=xyz[:, 1], marker={"size": 5}, **common)


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

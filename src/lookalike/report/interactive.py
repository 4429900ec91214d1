"""Interactive 2D maps (plotly HTML): hover shows each point's file, label and cluster; buttons
switch the colouring between label and K-Means cluster. plotly.js is written once beside the
pages (``plotly.min.js``), so they open offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lookalike.report.collect import MapData
from lookalike.report.figures import colourings, groups, point_names


def _traces(maps: MapData, coords: np.ndarray, text: np.ndarray, what: str) -> list[Any]:
    """One trace per group of ``text`` (m,) (each point's group name), with file, label and cluster on hover."""
    import plotly.graph_objects as go

    names, colours = groups(text)
    labels = point_names(maps.labels)
    hover = [f"{p}<br>label: {lab}<br>cluster: {c}" for p, lab, c in zip(maps.paths, labels, maps.clusters)]
    traces = []
    for name in names:
        keep = np.flatnonzero(text == name)
        traces.append(go.Scattergl(
            x=coords[keep, 0], y=coords[keep, 1], mode="markers", name=f"{name} ({keep.size})",
            legendgroup=what, legendgrouptitle_text=what, marker={"size": 5, "color": colours[name], "opacity": 0.8},
            hovertext=[hover[i] for i in keep], hoverinfo="text",
        ))
    return traces


def map_html(maps: MapData, method: str, title: str, path: Path) -> Path:
    """Write the interactive ``method`` map to ``path`` (HTML) and return it."""
    import plotly.graph_objects as go

    coords = maps.coords[method]
    sets = [(what, _traces(maps, coords, names, what)) for what, names in colourings(maps)]
    fig = go.Figure()
    sizes = []
    for _, traces in sets:
        for trace in traces:
            fig.add_trace(trace)
        sizes.append(len(traces))
    visible = [[j == i for j, n in enumerate(sizes) for _ in range(n)] for i in range(len(sets))]
    buttons = [{"label": f"colour by {what}", "method": "update", "args": [{"visible": shown}]}
               for (what, _), shown in zip(sets, visible)]
    for trace, shown in zip(fig.data, visible[0]):
        trace.visible = shown
    fig.update_layout(
        title=f"{title} map of the reduced vectors ({len(coords):,} points) — hover for the file",
        xaxis_title=f"{title} 1", yaxis_title=f"{title} 2", template="plotly_white", height=750,
        updatemenus=[{"buttons": buttons, "direction": "right", "x": 0.0, "y": 1.08, "xanchor": "left",
                      "type": "buttons"}] if len(buttons) > 1 else [],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs="directory", full_html=True)
    return path

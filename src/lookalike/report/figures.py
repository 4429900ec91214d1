"""The report's PNG figures (matplotlib, Agg backend): K sweep, 2D maps, confusion matrices,
precision@k curve and a one-page summary. Each function takes report data and a path, draws one
figure and returns the path; nothing here computes a metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lookalike.cluster import KChoice
from lookalike.report.collect import MapData

DPI = 110
UNLABELLED = "(unlabelled)"
NOISE = "noise"
GREY = "#b0b0b0"


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def palette(n: int) -> list[str]:
    """``n`` distinct colours as hex: tab10 up to 10, tab20 up to 20, then evenly spaced hues."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    if n <= 20:
        table = colormaps["tab10" if n <= 10 else "tab20"]
        return [to_hex(table(i)) for i in range(n)]
    return [to_hex(colormaps["hsv"](i / n)) for i in range(n)]


def point_names(values: np.ndarray) -> np.ndarray:
    """Each point's group name (m,) str: its label or cluster, ``(unlabelled)`` for None, ``noise`` for -1."""
    return np.array([UNLABELLED if v is None else NOISE if isinstance(v, (int, np.integer)) and v == -1 else str(v)
                     for v in values], dtype=str)


def groups(names: np.ndarray) -> tuple[list[str], dict[str, str]]:
    """The distinct ``names`` (m,) in display order (numbers numerically, grey groups last) and a colour each."""
    present = set(names.tolist())
    regular = sorted(present - {UNLABELLED, NOISE}, key=_natural)
    special = [name for name in (UNLABELLED, NOISE) if name in present]
    colours = {**dict(zip(regular, palette(len(regular)))), **{name: GREY for name in special}}
    return regular + special, colours


def colourings(maps: MapData) -> list[tuple[str, np.ndarray]]:
    """(what, each point's group name (m,)) for each way the map is coloured: label (when any), K-Means
    cluster (when clustered), else one group."""
    found = [("label", point_names(maps.labels))] if any(v is not None for v in maps.labels) else []
    if (maps.clusters >= 0).any():
        found.append(("K-Means cluster", point_names(maps.clusters.astype(object))))
    return found or [("images", np.full(len(maps.rows), "image"))]


def _natural(name: str) -> tuple[int, Any]:
    return (0, int(name)) if name.lstrip("-").isdigit() else (1, name)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    pyplot().close(fig)
    return path


def k_sweep(choice: KChoice, chosen: int | None, reason: str, path: Path) -> Path:
    """Inertia (elbow) and sampled silhouette vs K, with the elbow, the peak and the chosen K marked."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    ks = np.array(choice.k_values)
    left.plot(ks, choice.inertia, "o-", color="#1f77b4", markersize=4)
    left.set(title="Elbow: within-cluster sum of squares", xlabel="K (clusters)", ylabel="inertia")
    sil = np.array([np.nan if s is None else s for s in choice.silhouette], dtype=float)
    right.plot(ks, sil, "o-", color="#2ca02c", markersize=4)
    right.set(title=f"Silhouette (sample of {choice.silhouette_sample_size:,} points)", xlabel="K (clusters)",
              ylabel="mean silhouette")
    if choice.elbow_k is not None:
        left.plot([choice.elbow_k], [choice.inertia[list(ks).index(choice.elbow_k)]], "s", color="#ff7f0e",
                  markersize=9, label=f"elbow: K = {choice.elbow_k}")
    if choice.silhouette_k is not None:
        right.plot([choice.silhouette_k], [sil[list(ks).index(choice.silhouette_k)]], "s", color="#ff7f0e",
                   markersize=9, label=f"peak: K = {choice.silhouette_k}")
    from matplotlib.ticker import MaxNLocator

    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if chosen is not None:
            ax.axvline(chosen, color="#d62728", linestyle="--", label=f"chosen: K = {chosen}")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=9)
    fig.suptitle(f"Choosing K — chosen K = {chosen}: {reason}" if chosen is not None else "Choosing K", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def scatter_map(maps: MapData, method: str, title: str, path: Path) -> Path:
    """The 2D map of ``method`` coloured by K-Means cluster and, when labelled, by label."""
    plt = pyplot()
    panels = colourings(maps)
    fig, axes = plt.subplots(1, len(panels), figsize=(8.2 * len(panels), 6.4), squeeze=False)
    coords = maps.coords[method]
    size = float(np.clip(12_000 / max(len(coords), 1), 3, 30))
    for ax, (what, text) in zip(axes[0], panels):
        names, colours = groups(text)
        for name in names:
            keep = text == name
            ax.scatter(coords[keep, 0], coords[keep, 1], s=size, color=colours[name], label=f"{name} ({keep.sum()})",
                       alpha=0.75, linewidths=0)
        ax.set(title=f"coloured by {what}", xlabel=f"{title} 1", ylabel=f"{title} 2")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, markerscale=7 / np.sqrt(size),
                  ncol=2 if len(names) > 16 else 1, frameon=False, title=what, title_fontsize=9)
        ax.grid(alpha=0.2)
    fig.suptitle(f"{title} map of the reduced vectors ({len(coords):,} points)", fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


def confusion(entry: dict[str, Any], model: str, path: Path) -> Path:
    """Row-normalised confusion matrix of one classifier's validation predictions."""
    plt = pyplot()
    labels = entry["labels"]
    counts = np.asarray(entry["confusion"], dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = max(5.5, 0.55 * len(labels) + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=9)
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    if len(labels) <= 20:
        for (i, j), value in np.ndenumerate(rates):
            if value >= 0.005:
                ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=8,
                        color="white" if value > 0.6 else "black")
    ax.set(xlabel="predicted", ylabel="true")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    n = int(counts.sum())
    ax.set_title(f"{model}: accuracy {entry['accuracy']:.3f}, macro-F1 {entry['macro_f1']:.3f}\n"
                 f"validation split, {n:,} images (cells: % of each true class)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def precision_curve(section: dict[str, Any], path: Path) -> Path:
    """precision@k for k = 1..K, the best possible curve (classes have few images), P@1/5/10 marked."""
    plt = pyplot()
    curve = section["precision_curve"]
    ks, values = curve["k"], curve["precision"]
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    ax.plot(ks, curve["best_possible"], "--", color="#7f7f7f", linewidth=1.2, label="best possible (class sizes)")
    ax.plot(ks, values, "-", color="#1f77b4", linewidth=2, label="precision@k")
    marked = [k for k in (1, 5, 10) if k <= len(values)]
    ax.plot(marked, [values[k - 1] for k in marked], "o", color="#d62728")
    text = "\n".join(f"P@{k} = {values[k - 1]:.3f}" for k in marked)
    ax.text(0.03, 0.05, text, transform=ax.transAxes, fontsize=10, va="bottom",
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#cccccc"})
    ax.set(title=f"Retrieval: precision@k ({section['queries']:,} leave-one-out queries, exact search)",
           xlabel="k (results)", ylabel="precision@k", ylim=(0, 1.02), xlim=(0, len(ks) + 1))
    ax.legend(loc="lower right", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _bars(ax: Any, table: dict[str, dict[str, float | None]], metrics: list[str], title: str) -> None:
    """Grouped bars: one group per row of ``table``, one bar per metric (missing values left out)."""
    if len(table) == 1:  # one group: a bar per metric, named on the axis
        row = {name: value for name, value in next(iter(table.values())).items() if value is not None}
        bars = ax.bar(list(row), list(row.values()), 0.6, color=palette(len(row)))
        ax.bar_label(bars, fmt="%.3f", fontsize=9, padding=2)
        ax.set(title=title, ylim=(0, 1.12))
        ax.grid(axis="y", alpha=0.3)
        return
    rows = list(table)
    width = 0.8 / len(metrics)
    colours = palette(len(metrics))
    for j, metric in enumerate(metrics):
        values = [table[row].get(metric) for row in rows]
        xs = [i + (j - (len(metrics) - 1) / 2) * width for i in range(len(rows))]
        shown = [(x, v) for x, v in zip(xs, values) if v is not None]
        if shown:
            bars = ax.bar([x for x, _ in shown], [v for _, v in shown], width, color=colours[j], label=metric)
            ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(range(len(rows)), rows)
    ax.set(title=title, ylim=(min(0.0, _lowest(table)), 1.22))
    ax.legend(fontsize=8, ncol=len(metrics), loc="upper center", frameon=False)
    ax.grid(axis="y", alpha=0.3)


def _lowest(table: dict[str, dict[str, float | None]]) -> float:
    values = [v for row in table.values() for v in row.values() if v is not None]
    return min(values, default=0.0) - 0.05


def _skipped_panel(ax: Any, title: str, reason: str) -> None:
    import textwrap

    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, "skipped:\n" + textwrap.fill(reason, 50), ha="center", va="center", fontsize=9, color="#555555")


def summary(report: dict[str, Any], path: Path) -> Path:
    """One page: headline retrieval, clustering per method, classification per model, time per stage."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(14, 10))
    panels = summary_tables(report)
    for ax, (title, content) in zip(axes.flat[:3], panels):
        if isinstance(content, str):
            _skipped_panel(ax, title, content)
        else:
            table, metrics = content
            _bars(ax, table, metrics, title)
    recall = [(k, v) for k, v in report["retrieval"].items() if k.startswith("recall_at_") and v is not None]
    if recall:  # tiny when classes are large (it counts the whole class), so stated rather than drawn
        name, value = recall[0]
        axes[0, 0].text(0.5, 0.965, f"recall@{name.rsplit('_', 1)[1]} = {value:.3f} (share of each query's whole class found)",
                        transform=axes[0, 0].transAxes, ha="center", va="center", fontsize=9, color="#444444")
    _timings(axes[1, 1], report["timings"])
    info = report["library"]
    fig.suptitle(f"{info['name']}: {info['images']:,} images, {info['labels']} labels, {info['backbone']} "
                 f"({info['embedding_dim']}-d → PCA {info['reduced_dim']}-d)", fontsize=13)
    fig.tight_layout()
    return _save(fig, path)


def summary_tables(report: dict[str, Any]) -> list[tuple[str, Any]]:
    """(title, (table, metric names) or the reason it was skipped) for the summary's three bar panels."""
    retrieval = report["retrieval"]
    if "skipped" in retrieval:
        panels: list[tuple[str, Any]] = [("Retrieval", retrieval["skipped"])]
    else:
        names = [n for n in ("precision_at_1", "precision_at_5", "precision_at_10", "map_at_10") if n in retrieval]
        row = {n.replace("precision_at_", "precision@").replace("recall_at_", "recall@").replace("map_at_", "mAP@"):
               retrieval[n] for n in names}
        panels = [(f"Retrieval, leave-one-out ({retrieval['queries']:,} queries)", ({"exact": row}, list(row)))]
    clustering = report["clustering"]
    if "skipped" in clustering:
        panels.append(("Clustering", clustering["skipped"]))
    else:
        table = {_method_name(m, e): _cluster_row(e) for m, e in clustering["methods"].items() if "skipped" not in e}
        metrics = ["silhouette", "NMI", "ARI", "purity"] if any(len(r) > 1 for r in table.values()) else ["silhouette"]
        panels.append((f"Clustering (K = {clustering['k']})", (table, metrics)))
    classification = report["classification"]
    if "skipped" in classification:
        panels.append(("Classification", classification["skipped"]))
    else:
        table = {m: {"accuracy": e["accuracy"], "balanced acc.": e["balanced_accuracy"], "macro-F1": e["macro_f1"]}
                 for m, e in classification["models"].items()}
        panels.append((f"Classification ({classification['n_validation']:,} validation images)",
                       (table, ["accuracy", "balanced acc.", "macro-F1"])))
    return panels


def _method_name(method: str, entry: dict[str, Any]) -> str:
    metrics = entry["metrics"]
    noise = f", {100 * metrics['n_noise'] / max(metrics['n_points'], 1):.0f}% noise" if metrics["n_noise"] else ""
    return f"{method}\n({entry['n_clusters']} clusters{noise})"


def _cluster_row(entry: dict[str, Any]) -> dict[str, float | None]:
    metrics = entry["metrics"]
    row: dict[str, float | None] = {"silhouette": metrics["silhouette"]}
    if metrics.get("external"):
        ext = metrics["external"]
        row.update({"NMI": ext["nmi"], "ARI": ext["ari"], "purity": ext["purity"]})
    return row


def _timings(ax: Any, seconds: dict[str, float]) -> None:
    stages = [(name, value) for name, value in seconds.items() if value >= 0.0005]
    names = [name.replace("_", " ") for name, _ in stages][::-1]
    values = [value for _, value in stages][::-1]
    bars = ax.barh(names, values, color="#7f7f7f")
    ax.bar_label(bars, labels=[f"{v:.1f} s" if v >= 0.1 else f"{1000 * v:.0f} ms" for v in values], fontsize=8, padding=2)
    ax.set(title=f"Time per stage (total {sum(seconds.values()):.1f} s)", xlabel="seconds")
    ax.set_xlim(0, max(values, default=1) * 1.18)
    ax.tick_params(axis="y", labelsize=9)
    ax.grid(axis="x", alpha=0.3)

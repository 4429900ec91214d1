"""Writers of a :class:`lookalike.evaluate.compare.run.CompareReport`: rich table, Markdown, JSON and a bar chart.

``OUT/compare.json`` holds every number, the parameters and the package versions;
``OUT/compare.md`` the table in Markdown; ``OUT/compare.png`` the quality metrics per backbone
(grouped bars) beside the embedding speed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lookalike.store.atomic import atomic_path, write_bytes

if TYPE_CHECKING:
    from rich.table import Table

    from lookalike.evaluate.compare.measure import BackboneResult
    from lookalike.evaluate.compare.run import CompareReport

QUALITY = ("precision_at_k", "map_at_k", "nmi", "silhouette", "svm_accuracy")
"""Row attributes plotted as grouped bars (all on a -1..1 scale, mostly 0..1)."""


def headers(k: int) -> list[str]:
    return ["backbone", "dim", f"P@{k}", f"mAP@{k}", "NMI", "silhouette", "SVM acc.", "images/s", "index size"]


def cells(row: BackboneResult) -> list[str]:
    """The table cells of one row (``-`` for a missing number)."""
    if row.error:
        return [short_name(row.backbone), "-", *["-"] * 7]
    dim = f"{row.dim}→{row.reduced_dim}" if row.reduced_dim else str(row.dim or "-")
    metrics = [_fmt(getattr(row, name)) for name in QUALITY]
    speed = "-" if row.images_per_second is None else f"{row.images_per_second:,.0f}"
    return [short_name(row.backbone), dim, *metrics, speed, human_bytes(row.index_bytes)]


def short_name(backbone: str) -> str:
    """``autoencoder:/long/path/encoder.npz`` → ``autoencoder:encoder.npz``."""
    prefix, sep, rest = backbone.partition(":")
    return f"{prefix}:{Path(rest).name}" if sep else backbone


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def settings_line(report: CompareReport) -> str:
    """One line naming the images and the settings every row shares."""
    from lookalike.evaluate.compare.settings import describe_subset

    c = report.config
    pca = f"PCA {c.pca}" if c.pca else "PCA all components"
    svm = "C, gamma by 5-fold grid search" if c.svm_tune else "C=1, gamma=scale"
    crop = "each backbone's centre crop" if c.crop_fraction is None else f"centre crop {c.crop_fraction:g}"
    return (
        f"{describe_subset(c)}: {sum(report.classes.values()):,} images, {len(report.classes)} classes; "
        f"{crop}; L2 + {pca}{' whitened' if c.whiten else ''}; K-Means K={len(report.classes)}; "
        f"SVM RBF ({svm}) on a {1 - c.test_size:.0%}/{c.test_size:.0%} split, seed {c.seed}"
    )


def rich_table(report: CompareReport) -> Table:
    from rich.table import Table

    table = Table(*headers(report.config.k))
    for row in report.rows:
        table.add_row(*cells(row))
    return table


def errors(report: CompareReport) -> list[str]:
    """``backbone: error`` of every failed row."""
    return [f"{row.backbone}: {row.error}" for row in report.rows if row.error]


def markdown(report: CompareReport) -> str:
    """The table as Markdown, with the settings above it and failed rows' errors below."""
    head = headers(report.config.k)
    lines = [f"{settings_line(report)}", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(cells(row)) + " |" for row in report.rows]
    lines += ["", *[f"- error, {line}" for line in errors(report)]] if errors(report) else []
    notes = [f"- {short_name(r.backbone)}: images/s {r.speed_source}" for r in report.rows if not r.error]
    return "\n".join([*lines, "", *notes, ""])


def write_outputs(report: CompareReport, out: Path) -> dict[str, Path]:
    """Write ``compare.json``, ``compare.md`` and ``compare.png`` into ``out``; returns their paths."""
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "compare.json", "markdown": out / "compare.md", "chart": out / "compare.png"}
    write_bytes(paths["json"], (json.dumps(report.to_dict(), indent=1) + "\n").encode("utf-8"))
    write_bytes(paths["markdown"], markdown(report).encode("utf-8"))
    bar_chart(report, paths["chart"])
    return paths


# -- the chart --------------------------------------------------------------------------------------
def bar_chart(report: CompareReport, path: Path) -> None:
    """Grouped bars of the quality metrics per backbone, and images/s, as a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in report.rows if not row.error]
    names = [short_name(row.backbone) for row in rows]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [3, 1]}, constrained_layout=True
    )
    _quality_panel(left, rows, names, report.config.k)
    _speed_panel(right, rows, names)
    fig.suptitle(_wrap(settings_line(report), 150), fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _quality_panel(ax: Any, rows: list[BackboneResult], names: list[str], k: int) -> None:
    import numpy as np

    labels = headers(k)[2:7]
    width = 0.8 / max(len(rows), 1)
    for i, (row, name) in enumerate(zip(rows, names)):
        values = [np.nan if getattr(row, m) is None else getattr(row, m) for m in QUALITY]
        xs = np.arange(len(QUALITY)) + (i - (len(rows) - 1) / 2) * width
        bars = ax.bar(xs, values, width, label=name)
        ax.bar_label(bars, labels=[_fmt(None if np.isnan(v) else v) for v in values], fontsize=7, padding=2,
                     rotation=90)
    ax.set_xticks(np.arange(len(QUALITY)), labels)
    ax.set_ylim(min(0.0, _lowest(rows)) - 0.02, 1.22)  # room above 1 for the value labels and the legend
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_ylabel("score (higher is better)")
    ax.set_title("quality")
    ax.legend(fontsize=8, loc="upper center", ncols=min(len(rows), 4), frameon=False)


def _speed_panel(ax: Any, rows: list[BackboneResult], names: list[str]) -> None:
    speeds = [row.images_per_second or 0.0 for row in rows]
    bars = ax.barh(names, speeds, color=[f"C{i}" for i in range(len(rows))])
    ax.bar_label(bars, labels=[f"{s:,.0f}" if s else "n/a" for s in speeds], fontsize=8, padding=2)
    ax.invert_yaxis()
    ax.set_xlabel("images/s (embedding)")
    ax.set_title("speed")
    known = [s for s in speeds if s > 0]
    if known and max(known) > 20 * min(known):
        ax.set_xscale("log")
        ax.set_xlim(min(known) / 2, max(known) * 4)
    else:
        ax.set_xlim(0, max(speeds + [1.0]) * 1.3)


def _lowest(rows: list[BackboneResult]) -> float:
    values = [getattr(row, m) for row in rows for m in QUALITY if getattr(row, m) is not None]
    return min(values, default=0.0)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))

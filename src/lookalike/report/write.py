"""Write an evaluation report folder: ``report.json``, ``report.md`` and ``figures/``."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lookalike.progress import NoProgress, Progress
from lookalike.report import figures, interactive, markdown
from lookalike.report.collect import Evaluation, collect
from lookalike.report.settings import ReportConfig
from lookalike.store.atomic import write_bytes

if TYPE_CHECKING:
    from lookalike.store.library_store import LibraryStore

MAPS = (("pca", "PCA"), ("tsne", "t-SNE"))


def write_report(store: LibraryStore, out: Path, config: ReportConfig | None = None,
                 progress: Progress | None = None) -> Evaluation:
    """Evaluate ``store`` and write the report folder ``out``; ``.report`` of the result is report.json's content."""
    progress = progress or NoProgress()
    start = time.perf_counter()
    evaluation = collect(store, config, progress)
    with evaluation.stopwatch.stage("figures"):
        evaluation.report["figures"] = draw_figures(evaluation, out / "figures", progress)
    report = evaluation.report = json_ready(evaluation.report)
    report["timings"] = evaluation.stopwatch.seconds
    report["total_seconds"] = round(time.perf_counter() - start, 3)
    figures.summary(report, out / "figures" / "summary.png")
    write_bytes(out / "report.json", (json.dumps(report, indent=2, allow_nan=False) + "\n").encode())
    write_bytes(out / "report.md", markdown.render(report).encode())
    return evaluation


def draw_figures(evaluation: Evaluation, folder: Path, progress: Progress) -> dict[str, str]:
    """Every figure but the summary (drawn last, with the figures' own time): name -> path relative to the report."""
    report, maps = evaluation.report, evaluation.maps
    drawn: dict[str, Path] = {}
    progress.phase("figures", None)
    clustering = report["clustering"]
    if evaluation.sweep is not None:
        drawn["k_sweep"] = figures.k_sweep(evaluation.sweep, clustering["k"], clustering["k_reason"], folder / "k_sweep.png")
    for method, title in MAPS:
        if method in maps.coords:
            drawn[f"map_{method}"] = figures.scatter_map(maps, method, title, folder / f"map_{method}.png")
            drawn[f"map_{method}_html"] = interactive.map_html(maps, method, title, folder / f"map_{method}.html")
    if "precision_curve" in report["retrieval"]:
        drawn["precision_at_k"] = figures.precision_curve(report["retrieval"], folder / "precision_at_k.png")
    for model, entry in report["classification"].get("models", {}).items():
        drawn[f"confusion_{model}"] = figures.confusion(entry, model, folder / f"confusion_{model}.png")
    drawn["summary"] = folder / "summary.png"
    return {name: str(path.relative_to(folder.parent)) for name, path in drawn.items()}


def json_ready(value: Any) -> Any:
    """``value`` with NaN and infinite floats (undefined scores) as None, tuples as lists: strict JSON."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

"""``lookalike evaluate holdout``: a thin layer over :mod:`lookalike.evaluate.holdout`.

Only the command function lives here; the ``evaluate`` group mounts it (``app.command("holdout")``).
Both libraries are opened read-only: nothing is written to them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from lookalike.cli.common import err, out, reports_errors
from lookalike.config import CLASSIFY_MODELS

GalleryOption = Annotated[Path, typer.Option("--library", "-l", help="Gallery library (searched; trains the classifiers).")]
QueriesOption = Annotated[Path, typer.Option("--queries", "-q", help="Query library: held-out labelled images, same backbone.")]
ModelOption = Annotated[str, typer.Option(help=f"Classifiers, comma-separated ({'|'.join(CLASSIFY_MODELS)}), or 'none'.")]
KindOption = Annotated[str, typer.Option(help="Index searched: exact|ivf|hnsw (approximate: also recall vs exact).")]
CvOption = Annotated[int, typer.Option(help="Gallery images (stratified sample) of the hyperparameter search.")]
ProbaOption = Annotated[bool, typer.Option("--probabilities/--no-probabilities", help="SVM: calibrated or plain SVC.")]


@reports_errors
def holdout(
    library: GalleryOption = Path("library.lookalike"),
    queries: QueriesOption = Path("queries.lookalike"),
    k: Annotated[int, typer.Option("-k", "--k", help="Neighbours per query.")] = 10,
    model: ModelOption = "svm",
    kind: KindOption = "exact",
    max_cv_samples: CvOption = 5000,
    probabilities: ProbaOption = True,
    output: Annotated[Path | None, typer.Option("--out", help="Also write the report as JSON here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Score held-out query images against a gallery: retrieval P@k/mAP@k and classifier accuracy."""
    from lookalike.evaluate.holdout import heldout_classification, heldout_retrieval
    from lookalike.library import Library
    from lookalike.store.atomic import write_bytes

    models = [] if model.strip() == "none" else [m.strip() for m in model.split(",") if m.strip()]
    with Library.open(library, readonly=True) as gallery, Library.open(queries, readonly=True) as query_lib:
        report: dict[str, Any] = {"retrieval": heldout_retrieval(gallery.store, query_lib.store, k, kind), "classification": {}}
        for name in models:
            report["classification"][name] = heldout_classification(
                gallery.store, query_lib.store, name, "cv", max_cv_samples=max_cv_samples,
                probabilities=probabilities or name != "svm",
            )
    if output is not None:
        write_bytes(output, (json.dumps(report, indent=2) + "\n").encode())
    if as_json:
        out.print_json(json.dumps(report))
    else:
        _print_tables(report)
    if output is not None:
        err.print(f"report written to {output}")


def _print_tables(report: dict[str, Any]) -> None:
    """A summary line, the retrieval table and (if any classifier ran) the classification table."""
    r = report["retrieval"]
    out.print(
        f"{r['queries_scored']} held-out queries ({r['queries_unlabelled']} unlabelled and "
        f"{r['queries_unknown_label']} with a label absent from the gallery skipped) over {r['gallery_images']} "
        f"gallery images, {r['gallery_labels']} labels, {r['kind']} index"
    )
    out.print(retrieval_table(r))
    if report["classification"]:
        out.print(classification_table(report["classification"]))


def retrieval_table(report: dict[str, Any]) -> Table:
    """One row per retrieval score (precision@j, recall@k, mAP@k, recall vs exact) and the timings."""
    table = Table("retrieval", "value")
    for name, value in report.items():
        if name.startswith(("precision_at_", "recall_at_", "map_at_")) or name == "recall_vs_exact":
            table.add_row(name.replace("_at_", "@"), f"{value:.4f}")
    table.add_row("index build s", f"{report['build_s']:.2f}")
    table.add_row("search s", f"{report['search_s']:.2f}")
    return table


def classification_table(reports: dict[str, dict[str, Any]]) -> Table:
    """One row per classifier: accuracy, balanced accuracy, macro-F1, hyperparameters, timings."""
    table = Table("model", "accuracy", "balanced acc.", "macro-F1", "params", "search s", "fit s", "predict s")
    for name, r in reports.items():
        params = ", ".join(f"{key}={_short(value)}" for key, value in r["params"].items() if value is not None)
        s = r["seconds"]
        table.add_row(name, f"{r['accuracy']:.4f}", f"{r['balanced_accuracy']:.4f}", f"{r['macro_f1']:.4f}",
                      params, f"{s['search']:.1f}", f"{s['fit']:.1f}", f"{s['predict']:.1f}")
    return table


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)

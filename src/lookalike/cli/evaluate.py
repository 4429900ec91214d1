"""``lookalike evaluate``: a full evaluation report of a library (:mod:`lookalike.report`), and
``lookalike evaluate retrieval``: retrieval quality and speed per index kind
(:mod:`lookalike.evaluate.retrieval`). ``evaluate`` is a group (:data:`evaluate_app`) other modules
can add subcommands to; without a subcommand it writes the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from lookalike.cli.common import err, out, reports_errors
from lookalike.config import CLASSIFY_MODELS

if TYPE_CHECKING:
    from lookalike.library import Library

LibraryOption = Annotated[
    Path, typer.Option("--library", "-l", help="Library folder (created by `lookalike index`).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
REPORT_FOLDER = Path("reports") / "evaluation"
"""Where the report goes by default, inside the library folder."""

evaluate_app = typer.Typer(
    help="Measure a library: a full report (no subcommand), retrieval quality and speed (`retrieval`), or held-out queries against it (`holdout`).",
    invoke_without_command=True,
)


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` (with its ``retrieval`` and ``holdout`` subcommands) to the ``lookalike`` app."""
    from lookalike.cli.holdout import holdout

    evaluate_app.command("holdout")(holdout)
    app.add_typer(evaluate_app, name="evaluate")


@evaluate_app.callback(invoke_without_command=True)
@reports_errors
def evaluate(
    ctx: typer.Context,
    library: LibraryOption = Path("library.lookalike"),
    output: Annotated[Path | None, typer.Option("--out", "-o", help="Report folder (default: LIBRARY/reports/evaluation).")] = None,
    k_range: Annotated[str, typer.Option(help="K values swept for the elbow and silhouette: MIN-MAX or MIN-MAX:STEP.")] = "2-30",
    seed: Annotated[int, typer.Option(help="Seed of every sample, split, clustering and t-SNE.")] = 0,
    max_queries: Annotated[int, typer.Option(help="Labelled images used as retrieval queries (a seeded sample).")] = 2000,
    tsne_sample: Annotated[int, typer.Option(help="Points on the 2D maps (PCA and t-SNE; a seeded sample).")] = 3000,
    models: Annotated[str, typer.Option(help="Classifiers to evaluate, comma-separated ('' for none).")] = ",".join(CLASSIFY_MODELS),
    classify_sample: Annotated[int, typer.Option(help="Labelled images the classifiers train and validate on (stratified sample).")] = 5000,
    hdbscan_sample: Annotated[int, typer.Option(help="Images HDBSCAN clusters (a seeded sample).")] = 20_000,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Write an evaluation report of LIBRARY: report.json, report.md and figures/ (PNG and HTML).

    Retrieval (leave-one-out precision@k, mAP), clustering (K-Means, Ward, HDBSCAN: silhouette,
    Davies–Bouldin, Calinski–Harabasz, NMI, ARI, purity), classifiers (accuracy, macro-F1,
    confusion matrices), 2D maps, timings, sizes, versions and seeds. Nothing in the library
    changes, except that a library without a PCA gets its default one fitted.
    """
    if ctx.invoked_subcommand is not None:
        return
    from lookalike.progress import NoProgress, RichProgress
    from lookalike.report import ReportConfig, parse_k_range
    from lookalike.report.write import write_report

    k_min, k_max, k_step = parse_k_range(k_range)
    config = ReportConfig(
        k_min=k_min, k_max=k_max, k_step=k_step, seed=seed, max_queries=max_queries, map_sample=tsne_sample,
        models=tuple(m.strip() for m in models.split(",") if m.strip()), classify_sample=classify_sample,
        hdbscan_sample=hdbscan_sample,
    )
    target = output or library / REPORT_FOLDER
    bar = RichProgress() if progress else NoProgress()
    try:
        with _open_for_report(library) as lib:
            report = write_report(lib.store, target, config, bar).report
    finally:
        bar.close()
    out.print(headline_table(report))
    err.print(f"report written to {target / 'report.md'} (numbers: report.json, figures: figures/) "
              f"in {report['total_seconds']:.1f} s")


def _open_for_report(library: Path) -> Library:
    """The library read-only, or writable when it has no PCA yet (the report fits the default one)."""
    from lookalike.library import Library

    lib = Library.open(library, readonly=True)
    if lib.reducer() is None:
        lib.close()
        lib = Library.open(library)
    return lib


def headline_table(report: dict[str, Any]) -> Table:
    """The report's headline numbers as a two-column table."""
    from lookalike.report.markdown import headline

    table = Table("measure", "value", title=f"evaluation of {report['library']['name']}", title_justify="left")
    for name, value in headline(report):
        table.add_row(name, "-" if value is None else f"{value:.3f}")
    return table


@evaluate_app.command("retrieval")
@reports_errors
def evaluate_retrieval(
    library: LibraryOption = Path("library.lookalike"),
    k: Annotated[int, typer.Option("-k", "--k", help="Neighbours per query.")] = 10,
    kinds: Annotated[str, typer.Option(help="Index kinds to compare (exact is the reference).")] = "exact,ivf,hnsw",
    queries: Annotated[int, typer.Option(help="Labelled images used as queries (a seeded sample).")] = 2000,
    file_queries: Annotated[int, typer.Option(help="Library files timed end to end (0: skip).")] = 10,
    output: Annotated[Path | None, typer.Option("--out", help="Report JSON (default: LIBRARY/reports/retrieval.json).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Leave-one-out precision/recall/mAP@k on a labelled library, recall vs exact, latency."""
    from lookalike.evaluate.retrieval import evaluate_library_retrieval
    from lookalike.library import Library
    from lookalike.store.atomic import write_bytes

    with Library.open(library, readonly=True) as lib:
        report = evaluate_library_retrieval(
            lib.store, k, kinds=tuple(x.strip() for x in kinds.split(",") if x.strip()),
            max_queries=queries, file_queries=file_queries,
        )
    target = output or library / "reports" / "retrieval.json"
    write_bytes(target, (json.dumps(report, indent=2) + "\n").encode())
    if as_json:
        out.print_json(json.dumps(report))
        return
    out.print(f"{report['queries']} leave-one-out queries over {report['images']} images, {report['labels']} labels, k={k}")
    out.print(retrieval_table(report))
    if "query_from_file" in report:
        f = report["query_from_file"]
        stages = ", ".join(f"{name} {ms} ms" for name, ms in f["mean_stage_ms"].items())
        out.print(f"query from a file: p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms ({stages}; {f['files']} files)")
    err.print(f"report written to {target}")


def retrieval_table(report: dict[str, Any]) -> Table:
    k = report["k"]
    table = Table("index", f"precision@{k}", f"recall@{k}", f"mAP@{k}", "recall vs exact", "p50 ms", "p99 ms", "build s")
    for kind, entry in report["kinds"].items():
        lat = entry["latency"]
        table.add_row(
            kind, f"{entry['precision_at_k']:.3f}", f"{entry['recall_at_k']:.3f}", f"{entry['map_at_k']:.3f}",
            f"{entry.get('recall_vs_exact', 1.0):.3f}", f"{lat['p50_ms']:.3f}", f"{lat['p99_ms']:.3f}",
            f"{entry['build_s']:.2f}",
        )
    return table

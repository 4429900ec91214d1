"""``lookalike classify train | predict | labels``: classifiers on a library's reduced vectors.

Mounted by :mod:`lookalike.cli.main` through :func:`register`. Errors are one line and exit code 1
(:func:`lookalike.cli.common.reported`); ``predict`` also exits 1 when an image could not be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lookalike.cli.common import err, out, reports_errors
from lookalike.config import CLASSIFY_MODELS, ClassifyConfig

if TYPE_CHECKING:
    from lookalike.classify.estimator import ClassificationMetrics
    from lookalike.classify.train import LabelledVectors, TrainReport

LibraryOption = Annotated[
    Path, typer.Option("--library", "-l", help="Library folder (created by `lookalike index`).")
]
_C = ClassifyConfig
_SHOWN = 5

app = typer.Typer(help="Classifiers on the library's vectors: train, predict, import labels.", no_args_is_help=True)


def register(main: typer.Typer) -> None:
    """Add the ``classify`` command group to the ``lookalike`` command."""
    main.add_typer(app, name="classify")


# -- train ---------------------------------------------------------------------------------------
@app.command()
@reports_errors
def train(
    library: LibraryOption = Path("library.lookalike"),
    model: Annotated[str, typer.Option(help=f"{', '.join(CLASSIFY_MODELS)} or all.")] = "svm",
    cv: Annotated[int, typer.Option(help="Folds of the k-fold cross-validation and grid searches (0: skip the k-fold CV; searches keep 5).")] = _C.cv,
    test_size: Annotated[float, typer.Option(help="Fraction held out for validation (stratified).")] = _C.test_size,
    seed: Annotated[int, typer.Option(help="Seed of the split, the folds and the forest.")] = _C.seed,
    drop_small_classes: Annotated[bool, typer.Option("--drop-small-classes", help=f"Leave out classes with fewer than {_C.min_class_images} labelled images instead of failing.")] = False,
    n_neighbors: Annotated[int, typer.Option(help="k of the k-NN classifier.")] = _C.n_neighbors,
    n_estimators: Annotated[int, typer.Option(help="Trees of the random forest.")] = _C.n_estimators,
    projection: Annotated[str | None, typer.Option(help="Learn a label projection (lda or head) inside each training split and classify in its space.")] = None,
) -> None:
    """Train classifiers on the labelled images of LIBRARY, print their metrics and store them."""
    from lookalike.classify.train import labelled_vectors, usable
    from lookalike.classify.train import train as train_model
    from lookalike.library import Library

    models = list(CLASSIFY_MODELS) if model == "all" else [model]
    if model != "all" and model not in CLASSIFY_MODELS:
        raise typer.BadParameter(f"expected one of {', '.join(CLASSIFY_MODELS)} or all; got {model!r}", param_hint="--model")
    config = ClassifyConfig(test_size=test_size, cv=cv, seed=seed, drop_small_classes=drop_small_classes,
                            n_neighbors=n_neighbors, n_estimators=n_estimators, projection=projection)
    with Library.open(library) as lib:
        data = usable(labelled_vectors(lib.store), config, lib.folder)
        _print_data(data)
        reports = []
        for name in models:
            err.print(f"training {name} …", highlight=False)
            report = train_model(lib.store, name, config, data)
            reports.append(report)
            _print_report(report, detailed=len(models) == 1)
    if len(reports) > 1:
        _print_comparison(reports)
        best = max(reports, key=lambda r: r.metrics.accuracy)
        out.print(f"\nconfusion matrix of the best model ({best.model}), validation split:")
        _print_confusion(best.metrics)


def _print_data(data: LabelledVectors) -> None:
    classes = len(set(data.labels.tolist()))
    out.print(
        f"{data.labels.size:,} labelled images of {data.n_embedded:,} embedded, {classes} classes "
        f"(left out: {data.n_unlabelled:,} without a label, {data.n_conflicting:,} with conflicting labels)",
        highlight=False,
    )
    if data.dropped_classes:
        listed = ", ".join(f"{c} ({n})" for c, n in data.dropped_classes.items())
        err.print(f"warning: left out {len(data.dropped_classes)} small class(es): {escape(listed)}", highlight=False)


def _print_report(report: TrainReport, *, detailed: bool) -> None:
    from lookalike.classify.estimator import PROBABILITIES

    m = report.metrics
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in report.best_params.items() if v is not None)
    out.print(f"\n[bold]{report.model}[/bold] ({params}); probabilities: {PROBABILITIES[report.model]}", highlight=False)
    out.print(f"  split: {report.n_train:,} train / {report.n_validation:,} validation", highlight=False)
    out.print(
        f"  validation: accuracy {m.accuracy:.3f}, balanced accuracy {m.balanced_accuracy:.3f}, "
        f"macro-F1 {m.macro_f1:.3f}", highlight=False,
    )
    if report.cross_validation is not None:
        s = report.cross_validation.summary()
        scores = ", ".join(f"{n.replace('_', ' ')} {s[n]['mean']:.3f} ± {s[n]['std']:.3f}"
                           for n in ("accuracy", "balanced_accuracy", "macro_f1"))
        out.print(f"  {s['n_folds']}-fold CV: {scores}", highlight=False)
    else:
        out.print("  k-fold CV: not run (--cv 0, or a class too small for 2 folds)", highlight=False)
    if detailed:
        _print_per_class(m)
        out.print("confusion matrix, validation split (rows: true class, columns: predicted):")
        _print_confusion(m)
    out.print(f"  stored: {escape(str(report.path))} (refitted on all {report.data.labels.size:,} labelled images; "
              f"{report.seconds:.1f} s)", highlight=False, soft_wrap=True)


def _print_per_class(m: ClassificationMetrics) -> None:
    table = Table("class", "precision", "recall", "F1", "images")
    for label, p, r, f, s in zip(m.labels, m.precision, m.recall, m.f1, m.support):
        table.add_row(escape(str(label)), f"{p:.3f}", f"{r:.3f}", f"{f:.3f}", str(s))
    out.print(table)


def _print_confusion(m: ClassificationMetrics) -> None:
    table = Table("true \\ predicted", *[str(j) for j in range(len(m.labels))])
    for i, (label, row) in enumerate(zip(m.labels, m.confusion)):
        table.add_row(f"{i} {escape(str(label))}", *[str(v) for v in row])
    out.print(table)


def _print_comparison(reports: list[TrainReport]) -> None:
    table = Table("model", "accuracy", "balanced acc.", "macro-F1", "CV accuracy", "seconds")
    for r in reports:
        cv = r.cross_validation.summary()["accuracy"] if r.cross_validation else None
        table.add_row(r.model, f"{r.metrics.accuracy:.3f}", f"{r.metrics.balanced_accuracy:.3f}",
                      f"{r.metrics.macro_f1:.3f}", f"{cv['mean']:.3f} ± {cv['std']:.3f}" if cv else "–",
                      f"{r.seconds:.1f}")
    out.print("\nvalidation split:")
    out.print(table)


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# -- predict -------------------------------------------------------------------------------------
@app.command()
@reports_errors
def predict(
    images: Annotated[list[Path], typer.Argument(help="Image files to classify (any, in the library or not).")],
    library: LibraryOption = Path("library.lookalike"),
    model: Annotated[str | None, typer.Option(help="Stored model to use (default: best validation accuracy).")] = None,
    k: Annotated[int, typer.Option("-k", "--top", help="Classes shown per image.", min=1)] = 5,
) -> None:
    """Top-k classes, with probabilities, of each image, by a classifier stored in LIBRARY."""
    from lookalike.classify.train import predict_files
    from lookalike.library import Library

    with Library.open(library, readonly=True) as lib:
        predictions = predict_files(lib.store, list(images), model, k)
    out.print(f"model: {predictions[0].model}", highlight=False)
    failed = 0
    for p in predictions:
        if p.error is not None:
            failed += 1
            err.print(f"[red]error:[/red] {escape(str(p.path))}: {escape(p.error)}", highlight=False, soft_wrap=True)
            continue
        out.print(escape(str(p.path)), highlight=False, soft_wrap=True)
        for rank, (label, probability) in enumerate(p.classes, start=1):
            out.print(f"  {rank}. {escape(label)}  {probability:.3f}", highlight=False)
    if failed:
        raise typer.Exit(1)


# -- labels --------------------------------------------------------------------------------------
@app.command()
@reports_errors
def labels(
    csv: Annotated[Path, typer.Argument(help="CSV of path,label rows (header optional; relative paths are relative to the CSV).")],
    library: LibraryOption = Path("library.lookalike"),
) -> None:
    """Set the labels of files in LIBRARY from a CSV; unknown paths and bad rows are reported."""
    from lookalike.classify.train import import_labels
    from lookalike.library import Library

    with Library.open(library) as lib:
        result = import_labels(lib.store, csv)
    out.print(
        f"{result.rows:,} rows: {result.changed + result.unchanged:,} files labelled ({result.changed:,} changed, "
        f"{result.unchanged:,} already so), {len(result.unknown):,} unknown paths, {len(result.bad):,} bad rows",
        highlight=False,
    )
    if result.unknown:
        shown = ", ".join(escape(p) for p in result.unknown[:_SHOWN])
        err.print(f"warning: {len(result.unknown):,} path(s) not in the library, not labelled: {shown}"
                  + (" …" if len(result.unknown) > _SHOWN else ""), highlight=False, soft_wrap=True)
    for line, reason in result.bad[:_SHOWN]:
        err.print(f"warning: {escape(str(csv))} line {line}: {escape(reason)}", highlight=False, soft_wrap=True)
    if len(result.bad) > _SHOWN:
        err.print(f"warning: … and {len(result.bad) - _SHOWN:,} more bad rows", highlight=False)

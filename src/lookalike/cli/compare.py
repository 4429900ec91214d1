"""``lookalike compare``: backbones side by side on one labelled dataset subset.

Mounted by :mod:`lookalike.cli.main` through :func:`register`. Exit codes as the main CLI: 0 done (also
when some backbone rows failed: their errors are printed and written), 1 a lookalike error
before any row (unknown dataset or backbone, too few images), 2 a usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lookalike.cli.common import err, out, reports_errors
from lookalike.evaluate.compare.settings import CompareConfig

_D = CompareConfig(dataset="-")
TABLE_WIDTH = 140
"""Width of the table when stdout is not a terminal (a pipe or a file: nothing to wrap for)."""


@reports_errors
def compare(
    dataset: Annotated[str, typer.Option(help="Dataset name (see `lookalike dataset list`).")],
    backbones: Annotated[str, typer.Option(help="Comma-separated backbones (see `lookalike backbones`); "
                                           "'pixels' (the baseline) is always added; autoencoder:PATH works too.")],
    split: Annotated[str | None, typer.Option(help="train, test or all (default: the dataset's first).")] = None,
    first: Annotated[int | None, typer.Option(help="Only the first N images of the split, in the dataset's order.", min=1)] = None,
    limit: Annotated[int | None, typer.Option(help="At most N images: a seeded, class-balanced subset.", min=1)] = None,
    per_class: Annotated[int | None, typer.Option(help="At most N images per class (seeded).", min=1)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the subset, the split, K-Means and the SVM.", min=0)] = _D.seed,
    work: Annotated[Path | None, typer.Option(help="Folder for the images and one library per backbone, reused by later runs (default: compare-DATASET).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for compare.json, compare.md, compare.png (default: WORK).")] = None,
    k: Annotated[int, typer.Option("--k", help="Neighbours of P@k and mAP@k.", min=1)] = _D.k,
    pca: Annotated[int, typer.Option(help="PCA components (0: keep all).", min=0)] = _D.pca,
    whiten: Annotated[bool, typer.Option("--whiten/--no-whiten", help="PCA whitening.")] = _D.whiten,
    crop_fraction: Annotated[str | None, typer.Option(help="Centre crop of the libraries (default: each backbone's; 1.0 keeps the whole image, best for tiny images; 'auto' chooses from the image sizes).")] = None,
    augment: Annotated[str | None, typer.Option(help="Test-time views of the libraries: none, flip, flip-zoom (default: the library default).")] = None,
    rerank: Annotated[str, typer.Option(help="Comma-separated re-ranking methods measured as extra rows per backbone: aqe, dba, kreciprocal.")] = "",
    projection: Annotated[bool, typer.Option("--projection", help="Also a learned-projection row per backbone (fitted on half the labelled images, scored on the other half).")] = False,
    projection_method: Annotated[str, typer.Option(help="Method of --projection: head (a metric-learning head) or lda.")] = _D.projection_method,
    svm_tune: Annotated[bool, typer.Option("--svm-tune/--no-svm-tune", help="Choose the SVM's C and gamma by 5-fold grid search on the training part (else C=1, gamma=scale).")] = _D.svm_tune,
    test_size: Annotated[float, typer.Option(help="Held-out share of the SVM split.")] = _D.test_size,
    autoencoder: Annotated[bool, typer.Option("--autoencoder", help="Also train an autoencoder on the images (into WORK/autoencoder) and compare it.")] = False,
    autoencoder_epochs: Annotated[int, typer.Option(help="Most training epochs of --autoencoder.", min=1)] = _D.autoencoder_epochs,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Build one library per backbone (plus raw pixels) on the same images and compare them:
    P@k, mAP@k, NMI, silhouette, SVM accuracy, embedding images/s, index size.

    Libraries in WORK are reused: a killed compare resumes, a second run only measures again.
    """
    from rich.console import Console

    from lookalike.embed.crop import parse_crop_fraction
    from lookalike.evaluate.compare.run import run_compare
    from lookalike.evaluate.compare.table import errors, rich_table, settings_line, write_outputs
    from lookalike.progress import NoProgress, RichProgress

    config = CompareConfig(
        dataset=dataset, backbones=tuple(backbones.split(",")), split=split, first=first, limit=limit,
        per_class=per_class, seed=seed, k=k, pca=pca, whiten=whiten, crop_fraction=parse_crop_fraction(crop_fraction), svm_tune=svm_tune,
        augment=augment, rerank=tuple(m.strip() for m in rerank.split(",") if m.strip()), projection=projection,
        projection_method=projection_method, test_size=test_size, autoencoder=autoencoder, autoencoder_epochs=autoencoder_epochs,
    )  # fmt: skip
    work = work or Path(f"compare-{dataset}")
    bar = RichProgress() if progress else NoProgress()
    try:
        report = run_compare(config, work, progress=bar, on_row=_log_row)
    finally:
        bar.close()
    out.print(settings_line(report), highlight=False, soft_wrap=True)
    (out if out.is_terminal else Console(width=TABLE_WIDTH)).print(rich_table(report))
    for line in errors(report):
        err.print(f"[red]error:[/red] {line}", highlight=False, markup=True, soft_wrap=True)
    paths = write_outputs(report, out_dir or work)
    out.print(f"wrote {', '.join(str(p) for p in paths.values())}", highlight=False, soft_wrap=True)


def _log_row(row: Any) -> None:
    from rich.markup import escape

    from lookalike.evaluate.compare.table import short_name

    if row.error:
        err.print(f"{short_name(row.backbone)}: [red]failed[/red]: {escape(row.error)}", soft_wrap=True)
        return
    stages = ", ".join(f"{stage} {s:.1f} s" for stage, s in row.seconds.items())
    err.print(f"{short_name(row.backbone)}: {row.n_images:,} images ({stages})", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``compare`` to the main CLI."""
    app.command("compare")(compare)

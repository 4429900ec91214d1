"""``lookalike``: the command line, a thin layer over :class:`lookalike.Library`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from lookalike.cli.common import err, out, reports_errors
from lookalike.config import EmbedConfig, ExtractConfig, IngestConfig

app = typer.Typer(
    help="Visual search and clustering for image collections.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

LibraryOption = Annotated[
    Path, typer.Option("--library", "-l", help="Library folder (created by `lookalike index`).")
]
@app.command()
@reports_errors
def index(
    folders: Annotated[list[Path] | None, typer.Argument(help="Folders or files to index (default: the library's folders).")] = None,
    library: LibraryOption = Path("library.lookalike"),
    backbone: Annotated[str | None, typer.Option(help="Backbone for a new library (see `lookalike backbones`).")] = None,
    weights: Annotated[Path | None, typer.Option(help="Local weights file (e.g. resnet50 offline).")] = None,
    crop_fraction: Annotated[str | None, typer.Option(help="Centre crop of a new library: share of the shorter side kept (default 'auto': 1.0 when the images are smaller than the model input, else the backbone's crop).")] = None,
    augment: Annotated[str | None, typer.Option(help="Test-time views averaged into each vector of a new library: none, flip (2x embedding time, flip invariant), flip-zoom (4x).")] = None,
    labels: Annotated[str, typer.Option(help="'folder': label = first-level subfolder name; 'none'.")] = "none",
    precision: Annotated[str | None, typer.Option(help="Numeric precision of a new library: fp32, bf16, int8, or auto (the fastest that passed its retrieval gate on this CPU); default fp32. Fixed per library.")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per inference batch.")] = ExtractConfig.batch_size,
    workers: Annotated[int, typer.Option(help="Decoding threads (0: one per core).")] = ExtractConfig.decode_workers,
    threads: Annotated[int, typer.Option(help="Inference threads (0: all cores).")] = ExtractConfig.threads,
    commit_every: Annotated[int, typer.Option(help="Images embedded between commits (work a kill can lose).")] = ExtractConfig.commit_every,
    max_pixels: Annotated[int | None, typer.Option(help=f"Skip images with more pixels (decompression bombs); default {IngestConfig.max_pixels:,}.")] = None,
    include_hidden: Annotated[bool | None, typer.Option("--include-hidden/--no-hidden", help="Also scan files and folders named '.*' (default: no).")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    ray: Annotated[str | None, typer.Option("--ray", metavar="auto|ADDRESS", help="Decode and embed on a Ray cluster: 'auto' joins $RAY_ADDRESS or the cluster started on this machine, else starts one; or HOST:PORT. Needs `pip install 'lookalike[ray]'`.")] = None,
) -> None:
    """Scan folders and embed every image into LIBRARY (created when missing); incremental."""
    from lookalike.embed.crop import parse_crop_fraction
    from lookalike.library import Library
    from lookalike.progress import NoProgress, RichProgress

    if ray is not None:
        from lookalike.embed.distributed import require_ray

        require_ray()  # before creating a library
    crop = parse_crop_fraction(crop_fraction)
    extract = ExtractConfig(
        batch_size=batch_size, decode_workers=workers, threads=threads, commit_every=commit_every
    )
    ingest = _ingest_overrides(max_pixels=max_pixels, include_hidden=include_hidden)
    if (library / "lookalike.toml").exists():
        lib = Library.open(library, backbone=backbone, weights=weights, precision=precision)
        lib.check_ingest(ingest)
        lib.check_crop_fraction(crop)
        lib.check_augment(augment)
    else:
        err.print(f"creating library {library} with backbone {backbone or EmbedConfig.backbone}")
        lib = Library.create(
            library,
            backbone=backbone or EmbedConfig.backbone,
            weights=weights,
            ingest=replace(IngestConfig(), **ingest),
            crop_fraction=crop,
            augment=augment,
            precision=precision or "fp32",
        )
    with lib:
        bar = RichProgress() if progress else NoProgress()
        try:
            report = lib.add(list(folders or []), labels=labels, extract=extract, progress=bar, ray=ray)
        finally:
            bar.close()
        _print_index_summary(report, lib.status())


def _ingest_overrides(**flags: Any) -> dict[str, Any]:
    """The ingest settings given on the command line (None means not given)."""
    return {name: value for name, value in flags.items() if value is not None}


def _print_index_summary(report: Any, status: Any) -> None:
    sync = report.sync
    out.print(
        f"scanned {sync.scanned:,} files ({sync.new_files:,} new, {sync.changed_files:,} changed, "
        f"{sync.unchanged_files:,} unchanged, {sync.removed_files:,} removed)"
    )
    rate = f" at {report.images_per_second:,.1f} images/s" if report.embedded else ""
    out.print(f"embedded {report.embedded:,} images this run{rate}")
    if report.by_worker:
        out.print(f"on {len(report.by_worker)} Ray node(s): {', '.join(f'{n:,}' for n in report.by_worker.values())} images")
    out.print(
        f"library: {status.embedded:,} embedded, {status.duplicate_files:,} duplicate files, "
        f"{status.skipped_files:,} skipped, {status.pending:,} pending"
    )
    _print_reasons(status.skipped_by_reason)


def _print_reasons(groups: list[tuple[str, int]]) -> None:
    if not groups:
        return
    table = Table("skipped because", "files", title="skipped files by reason", title_justify="left")
    for kind, n in groups:
        table.add_row(kind, f"{n:,}")
    out.print(table)


@app.command()
@reports_errors
def status(
    library: LibraryOption = Path("library.lookalike"),
    files: Annotated[bool, typer.Option("--files", help="List every skipped file with its reason.")] = False,
) -> None:
    """Show what LIBRARY holds: counts, backbone, and skipped files with reasons."""
    from lookalike.library import Library
    from lookalike.store.status import skipped_files

    with Library.open(library, readonly=True) as lib:
        s = lib.status()
        out.print(f"library   {s.folder}")
        out.print(f"backbone  {s.backbone} ({s.dim}-d, weights sha256 {s.weights_sha256[:12]}…)")
        out.print(f"folders   {', '.join(s.roots) or '-'}")
        out.print(
            f"files     {s.files:,}: {s.embedded:,} images embedded, {s.duplicate_files:,} duplicate "
            f"files, {s.skipped_files:,} skipped, {s.pending:,} pending, {s.labelled_files:,} labelled"
        )
        out.print(f"updated   {s.updated}")
        _print_reasons(s.skipped_by_reason)
        if files:
            for item in skipped_files(lib.catalog):
                out.print(f"{item.path}\t{item.reason}", highlight=False, markup=False)
        elif s.skipped_files:
            out.print("(--files lists every skipped file with its full reason)")


@app.command()
@reports_errors
def remove(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to forget (nothing is deleted on disk).")],
    library: LibraryOption = Path("library.lookalike"),
) -> None:
    """Forget files or folders from LIBRARY."""
    from lookalike.library import Library

    with Library.open(library) as lib:
        out.print(f"removed {lib.remove(list(paths)):,} files from the library")


@app.command()
def backbones() -> None:
    """List the backbones a library can be built with."""
    from lookalike.embed.registry import list_backbones

    table = Table("name", "dim", "input", "ImageNet head", "weights")
    for spec in list_backbones():
        table.add_row(
            spec.name, str(spec.dim), f"{spec.image_size}px", "yes" if spec.has_classifier else "no",
            spec.weights_source,
        )
    out.print(table)


COMMAND_MODULES = (
    "lookalike.cli.cluster",
    "lookalike.cli.search",
    "lookalike.cli.autoencoder",
    "lookalike.cli.classify",
    "lookalike.cli.app",
    "lookalike.cli.compare",
    "lookalike.cli.evaluate",
    "lookalike.cli.parquet",
    "lookalike.cli.check",
    "lookalike.cli.actions",
)
"""Modules that add commands to ``app`` through their ``register(app)`` function."""


def _mount_commands() -> None:
    import importlib

    from lookalike.cli.dataset import app as dataset_app

    app.add_typer(dataset_app, name="dataset")
    for name in COMMAND_MODULES:  # a missing module is a broken install: fail loudly, never drop commands
        importlib.import_module(name).register(app)


_mount_commands()


def main() -> None:
    """Console entry point."""
    from lookalike._faiss import prefer_fast_blas

    prefer_fast_blas()
    app(prog_name="lookalike")


if __name__ == "__main__":  # pragma: no cover
    main()

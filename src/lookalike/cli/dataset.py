"""``lookalike dataset ...``: list, fetch and export the offline labelled datasets.

A Typer sub-app; the main CLI mounts it with ``app.add_typer(cli_dataset.app, name="dataset")``.
Exit codes, as in the main CLI: 0 success, 1 a lookalike error (one line on stderr, no
traceback), 2 a usage error caught by Typer, 130 interrupted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from lookalike.cli.common import err as _err
from lookalike.cli.common import out as _out
from lookalike.cli.common import reported as _reported

app = typer.Typer(
    help="Offline labelled datasets: list them, fetch them into the cache, export image folders.",
    no_args_is_help=True,
)
_CLASSES_WIDTH = 40

CacheOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Folder holding the datasets [default: $LOOKALIKE_CACHE/datasets, "
        "LOOKALIKE_CACHE defaulting to ~/.cache/lookalike].",
        file_okay=False,
    ),
]


@app.command("list")
def list_command(cache_dir: CacheOption = None) -> None:
    """List the datasets: name, source, size, classes, and whether each is cached."""
    from lookalike.io.datasets import default_cache_dir, is_cached, list_datasets

    table = Table(
        Column("name", no_wrap=True),
        Column("source", overflow="fold"),
        "images",
        "download",
        "classes",
        "cached",
    )
    for info in list_datasets():
        classes = f"{len(info.classes)}: {', '.join(info.classes)}"
        if len(classes) > _CLASSES_WIDTH:
            classes = classes[: _CLASSES_WIDTH - 1] + "…"
        table.add_row(
            info.name,
            info.source,
            f"{info.n_images:,}",
            f"{info.download_mb} MB",
            classes,
            "yes" if is_cached(info.name, cache_dir) else "no",
        )
    _out.print(table)
    _out.print(f"cache: {cache_dir or default_cache_dir()}", highlight=False)


@app.command("fetch")
def fetch_command(
    name: Annotated[str, typer.Argument(help="Dataset name (see `lookalike dataset list`).")],
    cache_dir: CacheOption = None,
) -> None:
    """Download a dataset once with its registry's client (apt-get or npm) into the cache."""
    from lookalike.io.datasets import dataset_info, fetch, is_cached

    with _reported():
        dataset_info(name)
        if is_cached(name, cache_dir):
            _out.print(f"{name}: already cached at {fetch(name, cache_dir=cache_dir)}")
            return
        start = time.perf_counter()
        folder = _fetch_showing_status(name, cache_dir)
        _out.print(f"{name}: fetched in {time.perf_counter() - start:.1f} s into {folder}")


def _fetch_showing_status(name: str, cache_dir: Path | None) -> Path:
    from lookalike.io.datasets import dataset_info, fetch

    info = dataset_info(name)
    with _err.status(f"Fetching {name} from {info.source} ({info.download_mb} MB)..."):
        return fetch(name, cache_dir=cache_dir)


@app.command("export")
def export_command(
    name: Annotated[str, typer.Argument(help="Dataset name (see `lookalike dataset list`).")],
    directory: Annotated[Path, typer.Argument(help="Folder to write DIR/<label>/<name>.png into.")],
    limit: Annotated[
        int | None,
        typer.Option(help="At most N images: a seeded, class-balanced subset (round-robin).", min=1),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="train, test or all [default: train; tuxpaint: all].")
    ] = None,
    per_class: Annotated[
        int | None, typer.Option(help="At most N images per class (seeded random choice).", min=1)
    ] = None,
    first: Annotated[
        int | None,
        typer.Option(help="Only the first N images of the split, in the dataset's order "
                     "(--limit / --per-class then choose among them).", min=1),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the subset choice.")] = 0,
    overwrite: Annotated[
        bool,
        typer.Option(help="Write into a non-empty folder not made by an export (keeps other files)."),
    ] = False,
    cache_dir: CacheOption = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Write a dataset as an image folder (label = subfolder) to index like any user folder."""
    from lookalike.io.datasets import check_export_dir, dataset_info, export, is_cached, resolve_split
    from lookalike.progress import NoProgress, RichProgress

    with _reported():
        info = dataset_info(name)
        resolve_split(info, split)  # refuse bad arguments before a long download
        check_export_dir(directory, overwrite)
        if not is_cached(name, cache_dir):
            _fetch_showing_status(name, cache_dir)
        start = time.perf_counter()
        bar = RichProgress() if progress else NoProgress()
        try:
            counts = export(
                name,
                directory,
                split=split,
                limit=limit,
                per_class=per_class,
                first=first,
                seed=seed,
                overwrite=overwrite,
                cache_dir=cache_dir,
                progress=bar,
            )
        finally:
            bar.close()
        summary = ", ".join(f"{label}: {n}" for label, n in counts.items())
        elapsed = time.perf_counter() - start
        _out.print(f"Wrote {sum(counts.values())} images in {elapsed:.1f} s to {directory} ({summary})")

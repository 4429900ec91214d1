"""``lookalike search``, ``duplicates`` and ``serve``: thin layers over :mod:`lookalike.search.searcher`,
:mod:`lookalike.search.duplicates` and :mod:`lookalike.api.server` (``evaluate`` lives in
:mod:`lookalike.cli.evaluate`)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from lookalike.cli.common import err, out, reports_errors
from lookalike.config import (
    DUPLICATE_CONFIRM_BITS,
    DUPLICATE_CONFIRM_SIMILARITY,
    DUPLICATE_DHASH_BITS,
    DUPLICATE_MIN_SIMILARITY,
    DUPLICATE_NEAR_BITS,
    INDEX_KINDS,
)
from lookalike.errors import MissingDependencyError

LibraryOption = Annotated[
    Path, typer.Option("--library", "-l", help="Library folder (created by `lookalike index`).")
]
KindOption = Annotated[str, typer.Option(help=f"Vector index: {'|'.join(INDEX_KINDS)} (auto: by size).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``lookalike`` app."""
    app.command()(search)
    app.command("learn-projection")(learn_projection)
    app.command()(duplicates)
    app.command()(serve)


@contextmanager
def opened(library: Path) -> Iterator[Any]:
    """The library, writable (so its vector index can be brought up to date) unless another
    process is writing it: then read-only, searching the committed index plus catalog changes."""
    from lookalike.errors import LibraryLockedError
    from lookalike.library import Library

    try:
        lib = Library.open(library)
    except LibraryLockedError:
        err.print("another process is writing this library: searching its committed index read-only")
        lib = Library.open(library, readonly=True)
    with lib:
        yield lib


def parse_query(text: str) -> Path | int:
    """A file path, or ``id:N`` / ``N`` (when no such file exists) for an image of the library."""
    match = re.fullmatch(r"(?:id:)?(\d+)", text)
    if match and (text.startswith("id:") or not os.path.lexists(text)):
        return int(match.group(1))
    return Path(text)


@reports_errors
def search(
    query: Annotated[list[str], typer.Argument(help="Image file(s), or id:N of library images; several = their mean.")],
    library: LibraryOption = Path("library.lookalike"),
    k: Annotated[int, typer.Option("-k", "--k", help="Results to show.")] = 10,
    kind: KindOption = "auto",
    nprobe: Annotated[int | None, typer.Option(help="IVF clusters searched (ivf only).")] = None,
    ef_search: Annotated[int | None, typer.Option(help="HNSW beam width (hnsw only).")] = None,
    cluster: Annotated[int | None, typer.Option(help="Only images in this cluster (latest run, or --run).")] = None,
    run: Annotated[int | None, typer.Option(help="Cluster run for --cluster and the cluster column.")] = None,
    label: Annotated[str | None, typer.Option(help="Only images with this label.")] = None,
    under: Annotated[Path | None, typer.Option(help="Only images with a file under this folder.")] = None,
    include_self: Annotated[bool, typer.Option("--include-self", help="Keep query images of the library in the results.")] = False,
    rerank: Annotated[str, typer.Option(help="Re-rank the nearest candidates at query time: none (exact order), aqe, dba, kreciprocal.")] = "none",
    projected: Annotated[bool, typer.Option("--projected", help="Order the nearest candidates in the learned label projection (`lookalike learn-projection`).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Find the K library images most similar to QUERY (any image, in the library or not)."""
    from lookalike.search.searcher import Searcher, SearchFilters

    filters = SearchFilters(cluster=cluster, run=run, label=label, under=under)
    with opened(library) as lib:
        searcher = Searcher(lib.store, kind)
        items = [parse_query(q) for q in query]
        result = searcher.search(items, k, filters=filters, nprobe=nprobe, ef_search=ef_search, include_self=include_self,
                                 rerank=rerank, projected=projected)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    own = f" (library image {', '.join(map(str, result.query_images))}{'' if include_self else ', left out'})" if result.query_images else ""
    err.print(
        f"{len(result.hits)} results for {escape(', '.join(query))}{own} · {result.kind} index · "
        f"{1000 * result.seconds['total']:.1f} ms"
    )
    out.print(hits_table(result.hits))


@reports_errors
def learn_projection(
    library: LibraryOption = Path("library.lookalike"),
    method: Annotated[str, typer.Option(help="lda: discriminant coordinates beside the reduced vector; head: a small metric-learning head trained with PyTorch (the default, better on the tuning set).")] = "head",
    beta: Annotated[float, typer.Option(help="lda: weight of the discriminant coordinates beside the reduced vector.", min=0.0)] = 1.0,
    shrinkage: Annotated[float, typer.Option(help="lda: covariance shrinkage in [0, 1].", min=0.0, max=1.0)] = 0.05,
    seed: Annotated[int, typer.Option(help="head: seed of the weights, dropout and validation split.", min=0)] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (head).")] = True,
) -> None:
    """Learn a projection from the library's labels (a metric-learning head, or LDA) for
    `search --projected`; learn it again after `reduce --refit`."""
    from lookalike.library import Library
    from lookalike.progress import NoProgress, RichProgress
    from lookalike.reduce.library_projection import learn_projection as learn

    bar = RichProgress() if progress and method == "head" else NoProgress()
    try:
        with Library.open(library) as lib:
            summary = learn(lib.store, method, beta=beta, shrinkage=shrinkage, seed=seed, progress=bar)
    finally:
        bar.close()
    out.print(f"learned a projection ({summary['method']}) from {summary['images']:,} labelled images of "
              f"{summary['classes']} classes ({summary['dim']} dimensions)", highlight=False)


def hits_table(hits: list[Any], width: int | None = None) -> Table:
    """rank, file, distance, similarity, confidence, cluster (and probability, label when known);
    short headers on consoles narrower than 120 columns."""
    probability = any(h.probability is not None for h in hits)
    labelled = any(h.label is not None for h in hits)
    short = (width or out.width) < 120
    names = ["distance", "similarity", "confidence", "cluster", "probability", "label"]
    headers = ["dist", "sim", "conf", "cluster", "prob", "label"] if short else names
    shown = [True, True, True, True, probability, labelled]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    table.add_column("rank", justify="right", no_wrap=True)
    table.add_column("file", overflow="fold", ratio=1)
    for name, header, show in zip(names, headers, shown):
        if show:
            table.add_column(header, no_wrap=True, justify="left" if name in ("cluster", "label") else "right")
    for h in hits:
        cells = [str(h.rank), escape(display(h.path)), f"{h.distance:.3f}", f"{h.similarity:.3f}",
                 _number(h.confidence), escape(_cluster(h))]
        if probability:
            cells.append(_number(h.probability))
        if labelled:
            cells.append(escape(h.label or "-"))
        table.add_row(*cells)
    return table


def display(path: str) -> str:
    """``path`` relative to the working folder when inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cluster(hit: Any) -> str:
    if hit.cluster is None:
        return "-"
    return f"{hit.cluster} {hit.cluster_name}" if hit.cluster_name else str(hit.cluster)


@reports_errors
def duplicates(
    library: LibraryOption = Path("library.lookalike"),
    near_bits: Annotated[int, typer.Option(help="Near duplicates: perceptual hashes differing in at most this many of 64 bits.")] = DUPLICATE_NEAR_BITS,
    min_similarity: Annotated[float, typer.Option(help="Semantic duplicates: cosine similarity at least this.")] = DUPLICATE_MIN_SIMILARITY,
    confirm_bits: Annotated[int, typer.Option(help="Near+semantic duplicates: perceptual hashes differing in at most this many bits...")] = DUPLICATE_CONFIRM_BITS,
    confirm_similarity: Annotated[float, typer.Option(help="...and cosine similarity at least this (text written over a picture, a crop); such a link adds a file to a group, never merges two.")] = DUPLICATE_CONFIRM_SIMILARITY,
    exact: Annotated[bool, typer.Option("--exact/--no-exact", help="Files with identical content.")] = True,
    near: Annotated[bool, typer.Option("--near/--no-near", help="Perceptual-hash near duplicates.")] = True,
    semantic: Annotated[bool, typer.Option("--semantic/--no-semantic", help="Embedding near duplicates.")] = True,
    confirm: Annotated[bool, typer.Option("--confirm/--no-confirm", help="Near+semantic duplicates: both kinds of evidence, each looser (needs --near and --semantic).")] = True,
    dhash_bits: Annotated[int, typer.Option(help="Near duplicates by difference hash: at most this many of 64 bits apart (text over a picture); such a link adds a file to a group, never merges two.")] = DUPLICATE_DHASH_BITS,
    dhash: Annotated[bool, typer.Option("--dhash/--no-dhash", help="Difference-hash links (needs --near).")] = True,
    transforms: Annotated[bool, typer.Option("--transforms/--no-transforms", help="Near duplicates also when flipped or turned by 90°/180°.")] = True,
    mirror: Annotated[bool, typer.Option("--mirror/--no-mirror", help="Semantic duplicates also against each image's mirror image (one more embedding pass).")] = False,
    kind: KindOption = "auto",
    limit: Annotated[int, typer.Option(help="Groups to print (all with --json).")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Find duplicate files: identical content, near-identical pictures, same-looking pictures."""
    from dataclasses import asdict

    with opened(library) as lib:
        groups = lib.duplicates(
            exact=exact, near_bits=near_bits if near else None,
            min_similarity=min_similarity if semantic else None, confirm_bits=confirm_bits if confirm else None,
            confirm_similarity=confirm_similarity, kind=kind, transforms=transforms, mirror=mirror,
            dhash_bits=dhash_bits if dhash else None,
        )
    if as_json:
        out.print_json(json.dumps([{**asdict(g), "kinds": g.kinds} for g in groups]))
        return
    files = sum(len(g.paths) for g in groups)
    err.print(f"{len(groups)} duplicate groups, {files} files")
    for number, group in enumerate(groups[:limit], start=1):
        out.print(f"[bold]group {number}[/bold]: {len(group.paths)} files ({', '.join(group.kinds)})")
        for link in group.links:
            edit = f" ({link.edit})" if link.edit else ""
            line = f"  {escape(display(link.a))}  ~  {escape(display(link.b))}   {link.kind}: {escape(link.reason)}{edit}"
            out.print(line, highlight=False, soft_wrap=True)
    if len(groups) > limit:
        err.print(f"... {len(groups) - limit} more groups (--limit, or --json for all)")


@reports_errors
def serve(
    library: LibraryOption = Path("library.lookalike"),
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    kind: KindOption = "auto",
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted upload, in MB.")] = 20.0,
    workers: Annotated[int, typer.Option(help="Requests searched in parallel (0: one per CPU core).", min=0)] = 0,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) over LIBRARY, read-only.

    SIGTERM or Ctrl-C stops it within a few seconds: open requests get up to 3 s to finish."""
    import importlib.util
    import sys

    from lookalike.cli.supervise import run_child

    for package in ("fastapi", "uvicorn"):
        if importlib.util.find_spec(package) is None:
            raise MissingDependencyError(package, "lookalike serve", "pip install fastapi uvicorn python-multipart")
    with opened(library) as lib:
        if not lib.readonly:
            lib.vector_index(kind)  # bring the stored index up to date before serving it
    err.print(f"serving {library} on http://{host}:{port} (docs: /docs)")
    command = [sys.executable, "-m", "lookalike.api", "--library", str(library), "--host", host,
               "--port", str(port), "--kind", kind, "--max-upload-mb", str(max_upload_mb), "--workers", str(workers)]
    code = run_child(command)  # SIGTERM / Ctrl+C stop the server too, and free the port
    if code:
        raise typer.Exit(code)

"""``lookalike reduce``, ``lookalike cluster`` and ``lookalike clusters``: thin layers over the Library.

Mounted by :mod:`lookalike.cli.main` through :func:`register`. Errors are one line and exit code 1
(:func:`lookalike.cli.common.reported`); warnings raised while working are shown as ``note:`` lines.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lookalike.cli.common import err, out, reports_errors
from lookalike.config import ClusterConfig, ReduceConfig
from lookalike.errors import InvalidParameterError

LibraryOption = Annotated[
    Path, typer.Option("--library", "-l", help="Library folder (created by `lookalike index`).")
]
_C = ClusterConfig
_DENSITY = ("dbscan", "hdbscan")


def register(app: typer.Typer) -> None:
    """Add ``reduce``, ``cluster`` and ``clusters`` to the ``lookalike`` command."""
    app.command("reduce")(reduce)
    app.command("cluster")(cluster)
    app.command("clusters")(clusters)


@contextmanager
def _notes(already: list[str] | None = None) -> Iterator[list[str]]:
    """Collect UserWarnings raised inside; print each as a ``note:`` line unless in ``already``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", UserWarning)
        shown = already if already is not None else []
        yield shown
    for item in caught:
        text = str(item.message)
        if not any(text in note for note in shown):
            err.print(f"note: {escape(text)}", highlight=False)


# -- reduce ------------------------------------------------------------------------------------
@reports_errors
def reduce(
    library: LibraryOption = Path("library.lookalike"),
    components: Annotated[str | None, typer.Option(help="Dimensions kept (e.g. 256) or explained-variance fraction to reach (e.g. 0.95); default 256.")] = None,
    whiten: Annotated[bool | None, typer.Option("--whiten/--no-whiten", help="Scale components to unit variance (default: no).")] = None,
    refit: Annotated[bool, typer.Option("--refit", help="Fit the PCA again on all images (makes cluster runs built on the old one stale).")] = False,
) -> None:
    """Fit (once) the L2 + PCA reducer and bring every image's reduced vector up to date."""
    from lookalike.library import Library

    with Library.open(library) as lib, _notes():
        overrides: dict[str, Any] = {}
        if components is not None:
            overrides["n_components"] = _parse_components(components)
        if whiten is not None:
            overrides["whiten"] = whiten
        stored = lib.reduce_config()
        config = replace(stored or ReduceConfig(), **overrides)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the clamp note is printed from the reducer below
            reducer = lib.reduce(config, refit=refit)
        n = lib.reduced().ids.size
        out.print(
            f"PCA {reducer.n_features_in_} → {reducer.n_components_} dimensions, explained variance "
            f"{reducer.explained_variance_ratio_.sum():.1%}, whiten {'yes' if reducer.whiten else 'no'}; "
            f"fitted on {reducer.n_samples_:,} images (fingerprint {reducer.fingerprint})"
        )
        out.print(f"reduced vectors up to date for {n:,} images")
        for note in reducer.notes_:
            err.print(f"note: {escape(note)}", highlight=False)
        stale = [r.id for r in lib.cluster_runs() if r.stale]
        if stale:
            out.print(f"{len(stale)} clustering run(s) built on another PCA are stale: {', '.join(map(str, stale))}")


def _parse_components(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise InvalidParameterError(
            f"--components must be an integer >= 1 or a fraction in (0, 1), got {text!r}"
        ) from None


# -- cluster -----------------------------------------------------------------------------------
@reports_errors
def cluster(
    library: LibraryOption = Path("library.lookalike"),
    method: Annotated[str, typer.Option(help="kmeans, agglomerative, dbscan or hdbscan.")] = _C.method,
    k: Annotated[str, typer.Option("--k", help="Number of clusters, or 'auto' to sweep K (kmeans, agglomerative).")] = "auto",
    k_min: Annotated[int, typer.Option(help="Smallest K of the --k auto sweep.")] = _C.k_min,
    k_max: Annotated[int, typer.Option(help="Largest K of the --k auto sweep.")] = _C.k_max,
    k_step: Annotated[int, typer.Option(help="Step of the --k auto sweep.")] = _C.k_step,
    linkage: Annotated[str, typer.Option(help="Agglomerative linkage: ward, average or complete.")] = _C.linkage,
    metric: Annotated[str | None, typer.Option(help="euclidean or cosine (default: euclidean; cosine for dbscan and hdbscan).")] = None,
    distance_threshold: Annotated[float | None, typer.Option(help="Agglomerative: cut the tree at this height instead of at K.")] = None,
    eps: Annotated[float | None, typer.Option(help="DBSCAN radius (default: the knee of the k-distance curve).")] = None,
    min_samples: Annotated[int, typer.Option(help="DBSCAN/HDBSCAN: neighbours that make a point core.")] = _C.min_samples,
    min_cluster_size: Annotated[int, typer.Option(help="HDBSCAN: smallest cluster.")] = _C.min_cluster_size,
    n_init: Annotated[int, typer.Option(help="K-Means restarts (best inertia kept).")] = _C.n_init,
    spherical: Annotated[bool, typer.Option("--spherical", help="K-Means with unit-length centres (cosine).")] = False,
    n_micro: Annotated[int, typer.Option(help="Agglomerative: micro-clusters above which points are pre-grouped.")] = _C.n_micro,
    sample_size: Annotated[int, typer.Option(help="Points in the silhouette sample (and the eps sample).")] = _C.sample_size,
    seed: Annotated[int, typer.Option(help="Seed for every random choice.")] = _C.seed,
    space: Annotated[str, typer.Option(help="reduced (the PCA vectors) or projected (the learned label projection: run `lookalike learn-projection` first).")] = _C.space,
    show: Annotated[int, typer.Option(help="Clusters listed, largest first (0: all).")] = 20,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Cluster every image of LIBRARY, store the run and print clusters, evidence and quality."""
    from lookalike.library import Library
    from lookalike.progress import NoProgress, RichProgress

    config = ClusterConfig(
        method=method, n_clusters=_parse_k(k, method), k_min=k_min, k_max=k_max, k_step=k_step, linkage=linkage,
        metric=metric, distance_threshold=distance_threshold, eps=eps, min_samples=min_samples,
        min_cluster_size=min_cluster_size, n_init=n_init, spherical=spherical, n_micro=n_micro,
        sample_size=sample_size, seed=seed, space=space,
    )  # fmt: skip
    with Library.open(library) as lib, _notes() as shown:
        bar = RichProgress() if progress else NoProgress()
        try:
            run = lib.cluster(config, progress=bar)
        finally:
            bar.close()
        shown.extend(run.info.notes)
        print_run(run, show)


def _parse_k(text: str, method: str) -> int | None:
    if text.strip().lower() == "auto":
        return None
    if method in _DENSITY:
        raise InvalidParameterError(
            f"--k does not apply to {method}: it finds the number of clusters itself "
            "(tune --eps, --min-samples, --min-cluster-size)"
        )
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise InvalidParameterError(f"--k must be 'auto' or an integer >= 2, got {text!r}")
    return value


# -- clusters ----------------------------------------------------------------------------------
@reports_errors
def clusters(
    library: LibraryOption = Path("library.lookalike"),
    run: Annotated[int | None, typer.Option("--run", help="Show this run (default: list every run).")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="Show the latest run.")] = False,
    show: Annotated[int, typer.Option(help="Clusters listed, largest first (0: all).")] = 20,
) -> None:
    """List the clustering runs stored in LIBRARY, or show one."""
    from lookalike.library import Library

    with Library.open(library, readonly=True) as lib:
        if run is not None or latest:
            print_run(lib.cluster_run(run), show)
            return
        runs = lib.cluster_runs()
        if not runs:
            out.print(f"no clustering runs in {library} yet; run `lookalike cluster --library {library}`")
            return
        table = Table("run")
        for header in ("created", "method"):
            table.add_column(header, no_wrap=True)
        for header in ("K", "noise", "images", "silhouette", "NMI", "PCA"):
            table.add_column(header)
        for info in runs:
            external = info.metrics.get("external") or {}
            table.add_row(
                str(info.id), time.strftime("%m-%d %H:%M", time.localtime(info.created)), info.method,
                str(info.n_clusters), f"{info.n_noise:,}", f"{info.n_images:,}", _num(info.metrics.get("silhouette")),
                _num(external.get("nmi")), "stale" if info.stale else "current",
            )  # fmt: skip
        out.print(table)
        out.print("(`lookalike clusters --run ID` shows one run)")


# -- printing ----------------------------------------------------------------------------------
def print_run(run: Any, show: int = 20) -> None:
    """A run's header, K evidence, quality, clusters table and notes."""
    info = run.info
    out.print(
        f"run {info.id}: {_describe(info)} on {info.n_images:,} images → {info.n_clusters} clusters, "
        f"{info.n_noise:,} noise ({info.seconds:.1f} s)",
        highlight=False,
    )
    if info.stale:
        out.print("[yellow]stale:[/yellow] the library's PCA was refitted after this run; rerun `lookalike cluster`")
    if info.params.get("projection"):
        out.print(f"space: the learned label projection {info.params['projection']} (its NMI/ARI saw these labels)")
    _print_evidence(info.evidence)
    _print_quality(info.metrics)
    _print_clusters(run.clusters, show)
    if run.n_new or run.n_removed:
        assigned = f"{run.n_predicted:,} assigned to the nearest centroid" if run.n_predicted else "unassigned"
        out.print(f"since this run: {run.n_new:,} new images ({assigned}), {run.n_removed:,} removed")
    for note in info.notes:
        err.print(f"note: {escape(note)}", highlight=False)


def _describe(info: Any) -> str:
    p = info.params
    if info.method == "kmeans":
        return f"kmeans K={p.get('n_clusters')}"
    if info.method == "agglomerative":
        cut = f"cut at {p['distance_threshold']:g}" if p.get("distance_threshold") else f"K={p.get('n_clusters')}"
        return f"agglomerative {p.get('linkage')}/{p.get('metric')} {cut}"
    if info.method == "dbscan":
        return f"dbscan eps={p.get('eps', 0):.4g} min_samples={p.get('min_samples')} {p.get('metric')}"
    return f"hdbscan min_cluster_size={p.get('min_cluster_size')} min_samples={p.get('min_samples')} {p.get('metric')}"


def _print_evidence(evidence: dict[str, Any]) -> None:
    choice = evidence.get("k_choice")
    if choice:
        table = Table("K", "inertia", "silhouette", "", title="K sweep", title_justify="left")
        for k, inertia, sil in zip(choice["k_values"], choice["inertia"], choice["silhouette"]):
            marks = [m for m, at in (("elbow", choice["elbow_k"]), ("silhouette peak", choice["silhouette_k"]),
                                     ("← chosen", choice["recommended_k"])) if at == k]  # fmt: skip
            table.add_row(str(k), f"{inertia:,.4g}", _num(sil), ", ".join(marks))
        out.print(table)
        out.print(
            f"recommended K = {choice['recommended_k']}: {choice['reason']} "
            f"(silhouette on a sample of {choice['silhouette_sample_size']:,} images)",
            highlight=False,
        )
    eps = evidence.get("eps")
    if eps:
        where = f" (sample of {eps['sample_size']:,} images)" if "sample_size" in eps else ""
        out.print(f"eps = {eps['eps']:.4g}: {eps['source']}{where}", highlight=False)


def _print_quality(metrics: dict[str, Any]) -> None:
    sample = metrics.get("silhouette_sample_size", 0)
    out.print(
        f"quality: silhouette {_num(metrics.get('silhouette'))} (sample of {sample:,} images) · "
        f"Davies–Bouldin {_num(metrics.get('davies_bouldin'))} (lower is better) · "
        f"Calinski–Harabasz {_num(metrics.get('calinski_harabasz'), '.1f')}",
        highlight=False,
    )
    if metrics.get("silhouette") is None:
        out.print(f"  ({metrics.get('note')})", highlight=False)
    ext = metrics.get("external")
    if ext:
        out.print(
            f"against labels ({ext['n_labelled']:,} labelled images, {ext['n_scored']:,} scored, noise left out): "
            f"NMI {_num(ext['nmi'])} · ARI {_num(ext['ari'])} · homogeneity {_num(ext['homogeneity'])} · "
            f"completeness {_num(ext['completeness'])} · purity {_num(ext['purity'])}",
            highlight=False,
        )


def _print_clusters(items: tuple[Any, ...], show: int) -> None:
    ordered = sorted(items, key=lambda c: (-c.size, c.cluster))
    shown = ordered if show <= 0 else ordered[:show]
    table = Table("cluster", "size", "name", "spread", "representative files")
    for c in shown:
        files = ", ".join(f"{Path(p).parent.name}/{Path(p).name}" for p in c.representative_paths[:3])
        table.add_row(str(c.cluster), f"{c.size:,}", escape(c.name), _num(c.spread), escape(files))
    out.print(table)
    if len(shown) < len(ordered):
        out.print(f"… {len(ordered) - len(shown)} more clusters (--show 0 lists all)")


def _num(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)

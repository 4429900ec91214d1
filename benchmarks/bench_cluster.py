"""Clustering benchmark, side by side in one run (JSON printed and written to ``--out``).

Data: a seeded Gaussian mixture of ``--groups`` groups with Dirichlet-distributed sizes and a
per-dimension spread that decays like PCA output, rows L2-normalised (as the Reducer emits), or
``--vectors FILE.npy`` (rows L2-normalised here). Full size 100k × 256 with K = 300; ``--quick``
uses 10k × 64 with K = 30.

Sections:

- ``blas_coretype``: each OPENBLAS_CORETYPE value (unset, Haswell, SkylakeX, Zen) in its own
  subprocess (OpenBLAS reads it at load time): numpy float32 GEMM rate, FAISS k-means
  (10 iterations) and FAISS flat search; the detected kernel of each bundled OpenBLAS.
- ``reduce``: Reducer(256) fit and transform on 100k × 1280 float32 rows (quick: 10k × 512), with
  the fit's peak extra memory (tracemalloc) next to the input's size.
- ``kmeans`` (benchmarks/cluster_kmeans.py): lookalike KMeans against scikit-learn's ``KMeans``
  and ``MiniBatchKMeans`` and ``faiss.Kmeans``, all with defaults, plus ``faiss.Kmeans`` with
  settings matched to scikit-learn's inertia on tuning data, on the mixture, on a data set
  of overlapping groups and optionally on real embeddings (``--real``): time and inertia side by
  side, speed-ups (targets >= 20x scikit-learn, >= 2x faiss) and inertia ratio (target <= 1.01);
  the default fit's compute floor ``passes · 2·n·K·d`` FLOPs over the measured numpy float32 GEMM
  rate (``passes`` = its full-data assignment passes).
- ``hierarchical``: Agglomerative(K, ward) on all points in a subprocess: wall time and peak RSS
  (targets < 300 s, < 8 GB); ARI against exact ``AgglomerativeClustering(linkage="ward")`` on a
  10k subset, next to the ARI of exact Ward against itself on the same points plus 1e-3 noise
  (how stable the exact answer is), and the Ward objective (within-cluster SSE) of both.
- ``choose_k``: the K sweep 50..400 in steps of 50 (quick: 10..80 by 10), total and per-K time.
- ``density`` (``--density``): DBSCAN (suggested eps) and HDBSCAN at full size: time, clusters, noise.

    nice python benchmarks/bench_cluster.py [--quick] [--sections kmeans,...] [--vectors FILE.npy]
        [--real FILE.npy --real-k K] [--density]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lookalike._faiss import fast_coretype, prefer_fast_blas

SECTIONS = ("blas", "reduce", "kmeans", "hierarchical", "choose_k")
CORETYPES = ("unset", "Haswell", "SkylakeX", "Zen")
"""Probed in subprocesses; ``unset`` lets each bundled OpenBLAS detect the CPU itself."""


def make_data(args: argparse.Namespace) -> tuple[Any, Any]:
    """(n, d) float32 unit rows and true group labels (None for ``--vectors``)."""
    import numpy as np

    if args.vectors:
        x = np.load(args.vectors).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True), None
    rng = np.random.default_rng(args.seed)
    scale = (1.0 + np.arange(args.d, dtype=np.float32)) ** -0.5
    centres = rng.standard_normal((args.groups, args.d), dtype=np.float32) * scale
    labels = rng.choice(args.groups, size=args.n, p=rng.dirichlet(np.full(args.groups, 2.0)))
    x = centres[labels] + args.spread * scale * rng.standard_normal((args.n, args.d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def gemm_gflops(n: int, d: int, k: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` numpy float32 GEMM rate for the k-means shape (n, d) @ (d, k)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, d), dtype=np.float32), rng.standard_normal((d, k), dtype=np.float32)
    best = min(timed(lambda: a @ b)[1] for _ in range(repeats))
    return 2.0 * n * d * k / best / 1e9


def probe_blas(args: argparse.Namespace) -> dict[str, Any]:
    """Child process: GEMM, FAISS k-means and flat-search speed under this OPENBLAS_CORETYPE."""
    import numpy as np
    from threadpoolctl import threadpool_info

    from lookalike._faiss import import_faiss

    faiss = import_faiss()
    x, _ = make_data(args)
    km = faiss.Kmeans(x.shape[1], args.k, niter=10, nredo=1, seed=1, max_points_per_centroid=10**7)
    kmeans_s = min(timed(lambda: km.train(x))[1] for _ in range(2))
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    queries = x[: min(2000, len(x))]
    search_s = min(timed(lambda: index.search(queries, 10))[1] for _ in range(2))
    kernels = {
        Path(i["filepath"]).name: i.get("architecture") for i in threadpool_info() if "architecture" in i
    }
    return {
        "gemm_gflops": round(gemm_gflops(*x.shape, args.k), 1),
        "faiss_kmeans_10_iter_s": round(kmeans_s, 3),
        "faiss_flat_search_s": round(search_s, 3),
        "openblas_kernels": kernels,
        "checksum": float(np.round(km.obj[-1], 1)),
    }


def child(
    args: argparse.Namespace, mode: str, env_changes: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """Run this script in a subprocess in ``mode`` and return its JSON (last stdout line).

    ``env_changes`` sets (or, with None, removes) environment variables; by default the child
    gets the settings of :func:`prefer_fast_blas`.
    """
    env = dict(os.environ)
    prefer_fast_blas(env)
    for name, value in (env_changes or {}).items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    forwarded = [f"--n={args.n}", f"--d={args.d}", f"--k={args.k}", f"--groups={args.groups}",
                 f"--spread={args.spread}", f"--seed={args.seed}"]  # fmt: skip
    if args.vectors:
        forwarded.append(f"--vectors={args.vectors}")
    command = [sys.executable, __file__, f"--child={mode}", *forwarded]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_coretypes(args: argparse.Namespace) -> dict[str, Any]:
    """Every OPENBLAS_CORETYPE under both OpenMP wait policies (libgomp's default and PASSIVE)."""
    settings: dict[str, dict[str, str | None]] = {
        f"{name}/{policy or 'default-wait'}": {
            "OPENBLAS_CORETYPE": None if name == "unset" else name,
            "OMP_WAIT_POLICY": policy,
        }
        for name in CORETYPES
        for policy in (None, "PASSIVE")
    }
    variants = {name: {**child(args, "blas", env), "loadavg_1min": round(os.getloadavg()[0], 2)}
                for name, env in settings.items()}  # fmt: skip
    return {
        "variants": variants,
        "fastest_kmeans": min(variants, key=lambda v: variants[v]["faiss_kmeans_10_iter_s"]),
        "fastest_search": min(variants, key=lambda v: variants[v]["faiss_flat_search_s"]),
        "fastest_gemm": max(variants, key=lambda v: variants[v]["gemm_gflops"]),
        "chosen_coretype": fast_coretype(),
    }


def bench_reduce(n: int, d: int, seed: int) -> dict[str, Any]:
    """Reducer fit + transform on (n, d) float32 embedding-like rows; extra memory by tracemalloc."""
    import tracemalloc

    import numpy as np

    from lookalike.reduce import Reducer

    rng = np.random.default_rng(seed)
    x = np.abs(rng.standard_normal((n, d), dtype=np.float32)) * (1.0 + np.arange(d, dtype=np.float32)) ** -0.5
    tracemalloc.start()
    reducer, fit_s = timed(lambda: Reducer(256).fit(x))
    _, fit_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    _, transform_s = timed(lambda: reducer.transform(x))
    return {
        "shape": [n, d],
        "fit_seconds": round(fit_s, 2),
        "transform_seconds": round(transform_s, 2),
        "fit_peak_extra_mb": round(fit_peak / 2**20),
        "input_mb": round(x.nbytes / 2**20),
        "float64_copy_would_be_mb": round(2 * x.nbytes / 2**20),
        "explained_variance_256": round(float(reducer.explained_variance_ratio_.sum()), 4),
    }


def probe_hierarchical(args: argparse.Namespace) -> dict[str, Any]:
    """Child process: Agglomerative on all points; wall time and peak RSS.

    Linux: the peak (VmHWM) is reset after the data is made (``/proc/self/clear_refs``), so
    ``peak_rss_during_fit_mb`` covers the fit alone (data included); ``peak_rss_mb`` is the
    whole process's, data generation included.
    """
    from lookalike.cluster import Agglomerative

    x, _ = make_data(args)
    resident = _proc_status_mb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    model, seconds = timed(lambda: Agglomerative(args.k, linkage="ward").fit(x))
    return {
        "seconds": round(seconds, 2),
        "peak_rss_during_fit_mb": _proc_status_mb("VmHWM"),
        "rss_before_fit_mb": resident,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "n_micro": model.n_micro,
        "n_clusters": model.n_clusters_,
    }


def _proc_status_mb(field: str) -> int | None:
    """A ``/proc/self/status`` memory field in MiB (None off Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        return None
    return None


def bench_hierarchical(args: argparse.Namespace, x: Any, subset: int) -> dict[str, Any]:
    import numpy as np
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import adjusted_rand_score

    from lookalike.cluster import Agglomerative
    from lookalike.cluster.choose_k import within_sum_of_squares as ward_sse

    full = child(args, "hierarchical")
    rng = np.random.default_rng(args.seed)
    sub = x[np.sort(rng.choice(len(x), min(subset, len(x)), replace=False))]
    jitter = sub + 1e-3 * rng.standard_normal(sub.shape).astype(np.float32)
    exact, exact_s = timed(lambda: AgglomerativeClustering(args.k, linkage="ward").fit(sub).labels_)
    exact_jittered = AgglomerativeClustering(args.k, linkage="ward").fit(jitter).labels_
    ours, ours_s = timed(lambda: Agglomerative(args.k, linkage="ward").fit(sub).labels_)
    return {
        f"full_{len(x)}": full,
        "targets": {"seconds": "< 300", "peak_rss_during_fit_mb": "< 8192"},
        "subset": {
            "n": len(sub),
            "ari_vs_exact_ward": round(adjusted_rand_score(exact, ours), 4),
            "ari_exact_vs_exact_with_1e-3_noise": round(adjusted_rand_score(exact, exact_jittered), 4),
            "ward_sse_ratio_ours_over_exact": round(ward_sse(sub, ours) / ward_sse(sub, exact), 5),
            "seconds_ours": round(ours_s, 2),
            "seconds_sklearn_exact": round(exact_s, 2),
        },
    }


def bench_choose_k(x: Any, k_values: range) -> dict[str, Any]:
    from lookalike.cluster import choose_k

    choice, seconds = timed(lambda: choose_k(x, k_values))
    return {
        "k_values": list(choice.k_values),
        "seconds_total": round(seconds, 2),
        "seconds_per_k": [round(s, 2) for s in choice.seconds],
        "silhouette_sample_size": choice.silhouette_sample_size,
        "recommended_k": choice.recommended_k,
        "reason": choice.reason,
    }


def bench_density(x: Any) -> dict[str, Any]:
    from lookalike.cluster import DBSCAN, HDBSCAN

    db, db_s = timed(lambda: DBSCAN(min_samples=10).fit(x))
    hdb, hdb_s = timed(lambda: HDBSCAN(min_cluster_size=50, min_samples=10).fit(x))
    return {
        "dbscan": {"seconds": round(db_s, 1), "eps": round(db.eps_, 4), "clusters": db.n_clusters_,
                   "noise": db.n_noise_},
        "hdbscan": {"seconds": round(hdb_s, 1), "clusters": hdb.n_clusters_, "noise": hdb.n_noise_,
                    "graph_components": hdb.n_graph_components_},
    }  # fmt: skip


def describe(args: argparse.Namespace) -> dict[str, Any]:
    if args.vectors:
        data = str(args.vectors)
    else:
        data = f"Gaussian mixture: {args.groups} groups, spread {args.spread} x PCA-like scale, L2-normalised"
    return {"n": args.n, "d": args.d, "k": args.k, "quick": args.quick, "seed": args.seed, "data": data}


def environment() -> dict[str, Any]:
    import faiss
    import numpy as np
    import sklearn

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "sklearn": sklearn.__version__,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg_start": os.getloadavg(),
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k x 64, K=30")
    parser.add_argument("--vectors", type=Path, help="an (n, d) .npy of real embeddings")
    parser.add_argument("--density", action="store_true", help="also time DBSCAN/HDBSCAN at full size")
    parser.add_argument("--out", type=Path, default=Path("bench-results/cluster.json"))
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--k", type=int, default=300)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--spread", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kmeans-seeds", type=int, help="k-means fits per variant (default 1; quick 3)")
    parser.add_argument("--overlap-spread", type=float, default=1.0, help="noise/centre scale of 'overlapping'")
    parser.add_argument("--real", type=Path, help="real embeddings (n, d) .npy: a third k-means data set")
    parser.add_argument("--real-k", type=int, default=100, help="K for --real")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--child", choices=("blas", "hierarchical"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.d, args.k, args.groups = 10_000, 64, 30, 50
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.child:
        probe = probe_blas if args.child == "blas" else probe_hierarchical
        print(json.dumps(probe(args)))
        return
    prefer_fast_blas()
    x, _ = make_data(args)
    args.n, args.d = x.shape
    k_values = range(10, 81, 10) if args.quick else range(50, 401, 50)
    report: dict[str, Any] = {"config": describe(args), "environment": environment()}
    sections = set(args.sections.split(","))
    if "blas" in sections:
        report["blas_coretype"] = bench_coretypes(args)
    if "reduce" in sections:
        report["reduce"] = bench_reduce(*((10_000, 512) if args.quick else (100_000, 1280)), args.seed)
    if "kmeans" in sections:
        from cluster_kmeans import bench as bench_kmeans

        args.kmeans_seeds = args.kmeans_seeds or (3 if args.quick else 1)
        report["kmeans"] = bench_kmeans(args, x, gemm_gflops)
    if "hierarchical" in sections:
        report["hierarchical"] = bench_hierarchical(args, x, subset=2_000 if args.quick else 10_000)
    if "choose_k" in sections:
        report["choose_k"] = bench_choose_k(x, k_values)
    if args.density:
        report["density"] = bench_density(x)
    report["environment"]["loadavg_end"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

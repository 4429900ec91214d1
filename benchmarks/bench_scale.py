"""The ``ondisk`` index at scale: N clustered 256-d vectors on disk, never whole in memory.

Phases, each with its wall time and its own peak RSS (``VmHWM``, reset between phases through
``/proc/self/clear_refs``; the process-wide ``ru_maxrss`` is reported too):

1. ``generate``: N seeded unit vectors (``--clusters`` Gaussian groups with a decaying
   per-dimension spread, like PCA output) written to ``DATA/base.f32`` in chunks of
   ``--chunk``; 1,000 reported queries and ``--tune-queries`` tuning queries drawn from the same
   groups with other seeds (held out of the base set).
2. ``ground_truth``: exact top-10 of every query, the base file read chunk by chunk (BLAS
   matrix products, a running top-10).
3. ``opq_compare`` (``--compare-n`` rows, tuning queries): IVF-PQ against OPQ + IVF-PQ at the
   same bytes per vector: recall@10 of the PQ ranking alone and after re-ranking.
4. ``build``: ``OnDiskIndex.train`` on the first rows (the rows are i.i.d.), ``add`` chunk by
   chunk (shards of ``--chunk`` rows spill to files), ``save`` (merge into the on-disk lists).
5. ``tune``: on the tuning queries only, the cheapest (nprobe, rerank) reaching recall@10 >=
   ``--target-recall`` (batched recall, then single-query p50 among those that reach it).
6. ``search``: the 1,000 reported queries one at a time with the tuned settings. ``cold``: for
   each of ``--cold-queries`` queries the index files are evicted from the page cache
   (``posix_fadvise(DONTNEED)`` after unmapping them) and the index is opened afresh, then that
   one query is timed; ``warm``: every query once untimed, then timed.

Targets (issue 13): peak RSS <= 4 GB during build and search; recall@10 >= 0.90 at p50 <= 10 ms
warm. The routine run is ``--n 1000000`` (``make bench``); the 10M run::

    nice -n 5 python benchmarks/bench_scale.py --n 10000000 --data /work/bench-data/scale-10m \\
        --out bench-results/scale-10m.json
"""

from __future__ import annotations

import os

from lookalike._faiss import prefer_fast_blas  # noqa: E402  (imports no numpy)

prefer_fast_blas()  # numpy's OpenBLAS reads OPENBLAS_CORETYPE when it loads

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

D = 256
K = 10
REPORTED_QUERIES = 1000
NPROBES = [8, 16, 32, 64, 128]
RERANKS = [50, 100, 200, 400]


# ---------------------------------------------------------------- memory
def reset_peak() -> None:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakSampler:
    """The largest ``RssAnon`` and ``RssFile`` seen, sampled every 20 ms on a thread. VmHWM counts
    both: file-backed pages are the memory-mapped index files' page cache (the kernel maps up to
    64 KB of cached pages around each page a read touches), which the kernel can take back;
    anonymous pages are the process's own memory."""

    def __init__(self) -> None:
        self.peaks = {"RssAnon": 0.0, "RssFile": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.sample()

    def sample(self) -> None:
        for field in self.peaks:
            self.peaks[field] = max(self.peaks[field], status_mb(field))

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()


class Phase:
    """Times a phase and records its peak RSS (VmHWM, and its anonymous and file-backed parts)
    into ``report[name]``."""

    def __init__(self, report: dict[str, Any], name: str) -> None:
        self.report, self.name = report, name

    def __enter__(self) -> dict[str, Any]:
        gc.collect()
        reset_peak()
        self.sampler = PeakSampler().__enter__()
        self.started = time.perf_counter()
        self.entry: dict[str, Any] = {}
        return self.entry

    def __exit__(self, *exc: object) -> None:
        self.entry["seconds"] = round(time.perf_counter() - self.started, 2)
        self.sampler.__exit__()
        self.entry["peak_rss_mb"] = round(status_mb("VmHWM"), 1)
        self.entry["peak_anon_mb"] = round(self.sampler.peaks["RssAnon"], 1)
        self.entry["peak_file_mb"] = round(self.sampler.peaks["RssFile"], 1)
        self.report[self.name] = self.entry
        if self.report.get("_out"):
            Path(self.report["_out"]).write_text(json.dumps(self.report, indent=2) + "\n")
        print(f"[{time.strftime('%H:%M:%S')}] {self.name}: {json.dumps(self.entry)}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data
def centers(clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scale = (1.0 + np.arange(D, dtype=np.float32)) ** -0.5
    return rng.standard_normal((clusters, D), dtype=np.float32) * scale, scale


def draw(n: int, cent: np.ndarray, scale: np.ndarray, seed: tuple[int, ...]) -> np.ndarray:
    """n unit rows from the groups, seeded by ``seed`` (chunk-wise reproducible)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(cent), n)
    X = cent[labels] + 0.6 * scale * rng.standard_normal((n, D), dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def generate(path: Path, n: int, chunk: int, cent: np.ndarray, scale: np.ndarray, seed: int) -> None:
    """Write the base file chunk by chunk; an interrupted run resumes at its last whole chunk
    (each chunk has its own seed, so the file is the same either way)."""
    tmp = path.with_name(path.name + ".partial")
    done = tmp.stat().st_size // (chunk * D * 4) if tmp.exists() else 0
    with open(tmp, "r+b" if tmp.exists() else "wb") as fh:
        fh.truncate(done * chunk * D * 4)
        fh.seek(done * chunk * D * 4)
        for i, start in enumerate(range(0, n, chunk)):
            if i >= done:
                fh.write(draw(min(chunk, n - start), cent, scale, (seed, 1, i)).tobytes())
    os.replace(tmp, path)


def read_rows(path: Path, start: int, count: int) -> np.ndarray:
    """Rows [start, start + count) of a float32 (., D) file, read (not mapped) into memory."""
    with open(path, "rb") as fh:
        fh.seek(start * D * 4)
        return np.fromfile(fh, dtype=np.float32, count=count * D).reshape(-1, D)


def chunks(path: Path, n: int, chunk: int) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, n, chunk):
        yield start, read_rows(path, start, min(chunk, n - start))


def ground_truth(path: Path, n: int, Q: np.ndarray, chunk: int) -> np.ndarray:
    """Exact top-K ids (m, K) of queries Q (m, D) over the base file, in chunks (``faiss.knn``:
    BLAS products and a heap per query; numpy's argpartition took 3x the product's time)."""
    import faiss

    best_s = np.full((len(Q), K), -np.inf, np.float32)
    best_i = np.full((len(Q), K), -1, np.int64)
    for start, X in chunks(path, n, chunk):
        part_s, part_i = faiss.knn(Q, X, K, metric=faiss.METRIC_INNER_PRODUCT)
        s = np.concatenate([best_s, part_s], axis=1)
        i = np.concatenate([best_i, part_i + start], axis=1)
        top = np.argsort(-s, axis=1, kind="stable")[:, :K]
        best_s, best_i = np.take_along_axis(s, top, axis=1), np.take_along_axis(i, top, axis=1)
    return best_i


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / K for f, t in zip(found, truth)]))


# ---------------------------------------------------------------- index
def index_files(path: Path) -> list[Path]:
    return [path] + sorted(path.parent.glob(path.name + ".*"))


def disk_sizes(path: Path) -> dict[str, float]:
    sizes = {"total_mb": 0.0}
    for f in index_files(path):
        kind = {".ivfdata": "lists_mb", ".f16": "rows_f16_mb", ".npy": "id_map_mb"}.get(f.suffix, "header_mb")
        mb = f.stat().st_size / 2**20
        sizes[kind] = round(sizes.get(kind, 0.0) + mb, 1)
        sizes["total_mb"] = round(sizes["total_mb"] + mb, 1)
    return sizes


def build(args: argparse.Namespace, base: Path, path: Path, opq: bool) -> dict[str, Any]:
    from lookalike.index import OnDiskIndex

    work = args.data / "work"
    index = OnDiskIndex(nlist=args.nlist, pq_bytes=args.pq_bytes, opq=opq, shard_rows=args.chunk, workdir=work)
    nlist = args.nlist or _auto_nlist(args.n)
    take = min(args.n, 64 * nlist)
    started = time.perf_counter()
    index.train(read_rows(base, 0, take), n_expected=args.n)
    trained = time.perf_counter()
    for start, X in chunks(base, args.n, args.chunk):
        index.add(np.arange(start, start + len(X)), X)
        del X
    added = time.perf_counter()
    index.save(path)
    saved = time.perf_counter()
    shutil.rmtree(work, ignore_errors=True)
    return {"nlist": nlist, "train_rows": take, "train_s": round(trained - started, 1),
            "add_s": round(added - trained, 1), "save_merge_s": round(saved - added, 1),
            "build_s": round(saved - started, 1)}


def _auto_nlist(n: int) -> int:
    from lookalike.index.ondisk import _auto_nlist as auto

    return auto(n)


def single_latencies(index: Any, Q: np.ndarray, **options: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query alone through ``lookalike.index.search`` with ``options`` (nprobe, rerank)
    as the index defaults: ids (m, K), wall ms (m,) and CPU ms of this thread (m,) (a single
    query runs on the calling thread; on a shared machine wall time also counts waiting)."""
    from lookalike.index import search

    index.nprobe, index.rerank = options["nprobe"], options["rerank"]
    ids = np.full((len(Q), K), -1, np.int64)
    ms, cpu = np.empty(len(Q)), np.empty(len(Q))
    for j, q in enumerate(Q):
        t, c = time.perf_counter(), time.thread_time()
        hits = search(index, q, k=K)[0]
        ms[j], cpu[j] = (time.perf_counter() - t) * 1000, (time.thread_time() - c) * 1000
        ids[j, : len(hits.ids)] = hits.ids
    return ids, ms, cpu


def tune(index: Any, Q: np.ndarray, truth: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """Cheapest (nprobe, rerank) reaching ``args.target_recall`` on the tuning queries."""
    target = args.target_recall
    grid = []
    for nprobe in args.nprobes:
        for rerank in args.reranks:
            _, found = index.knn(Q, K, None, nprobe=nprobe, rerank=rerank)
            grid.append({"nprobe": nprobe, "rerank": rerank, "recall": round(recall(found, truth), 4)})
    reaching = [g for g in grid if g["recall"] >= target] or [max(grid, key=lambda g: g["recall"])]
    for g in reaching:
        single_latencies(index, Q[:50], nprobe=g["nprobe"], rerank=g["rerank"])  # warm-up
        _, ms, cpu = single_latencies(index, Q[:200], nprobe=g["nprobe"], rerank=g["rerank"])
        g["p50_ms"] = round(float(np.percentile(ms, 50)), 3)
        g["cpu_p50_ms"] = round(float(np.percentile(cpu, 50)), 3)
    chosen = min(reaching, key=lambda g: g["p50_ms"])
    return {"grid": grid, "chosen": chosen}


def evict(path: Path) -> None:
    for f in index_files(path):
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cold_latencies(path: Path, Q: np.ndarray, options: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    from lookalike.index import load_index, search

    ms, cpu = np.empty(len(Q)), np.empty(len(Q))
    for j, q in enumerate(Q):
        gc.collect()
        evict(path)
        index = load_index(path, mmap=True)
        index.nprobe, index.rerank = options["nprobe"], options["rerank"]
        t, c = time.perf_counter(), time.thread_time()
        search(index, q, k=K)
        ms[j], cpu[j] = (time.perf_counter() - t) * 1000, (time.thread_time() - c) * 1000
        del index
    return ms, cpu


def stats(ms: np.ndarray, cpu: np.ndarray) -> dict[str, float]:
    def pct(a: np.ndarray, q: float) -> float:
        return round(float(np.percentile(a, q)), 3)

    return {"p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99), "mean_ms": round(float(ms.mean()), 3),
            "cpu_p50_ms": pct(cpu, 50), "cpu_p99_ms": pct(cpu, 99), "queries": len(ms)}


# ---------------------------------------------------------------- main
def opq_compare(args: argparse.Namespace, base: Path, Q: np.ndarray) -> dict[str, Any]:
    """PQ vs OPQ+PQ at the same bytes on the first ``--compare-n`` rows (tuning queries)."""
    from lookalike.index import OnDiskIndex

    n = min(args.compare_n, args.n)
    X = read_rows(base, 0, n)
    truth = ground_truth(base, n, Q, args.chunk)
    out: dict[str, Any] = {"n": n, "pq_bytes": args.pq_bytes}
    for name, opq in (("pq", False), ("opq_pq", True)):
        t = time.perf_counter()
        index = OnDiskIndex(pq_bytes=args.pq_bytes, opq=opq, nprobe=64, workdir=args.data / f"cmp-{name}").fit(
            X, np.arange(n))
        built = time.perf_counter() - t
        out[name] = {"build_s": round(built, 1)}
        for rerank in (K, 50, 100):
            _, found = index.knn(Q, K, None, nprobe=64, rerank=rerank)
            out[name][f"recall_rerank_{rerank}"] = round(recall(found, truth), 4)
        shutil.rmtree(args.data / f"cmp-{name}", ignore_errors=True)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from lookalike.index import load_index

    args.data.mkdir(parents=True, exist_ok=True)
    base, path = args.data / "base.f32", args.data / "index" / "ondisk.faiss"
    report: dict[str, Any] = {"_out": str(args.out) if args.out else "", "n": args.n, "d": D, "clusters": args.clusters, "pq_bytes": args.pq_bytes,
                              "opq": args.opq, "chunk": args.chunk, "python": platform.python_version(),
                              "cpus": os.cpu_count(), "targets": {"peak_rss_mb": 4096, "recall_at_10": 0.90,
                                                                  "warm_p50_ms": 10.0}}
    cent, scale = centers(args.clusters, args.seed)
    with Phase(report, "generate"):
        if not (base.exists() and base.stat().st_size == args.n * D * 4):
            generate(base, args.n, args.chunk, cent, scale, args.seed)
        Q = draw(REPORTED_QUERIES, cent, scale, (args.seed, 2))
        T = draw(args.tune_queries, cent, scale, (args.seed, 3))
    with Phase(report, "ground_truth"):
        cached = args.data / f"truth-{args.tune_queries}-{args.seed}.npy"
        if cached.exists():
            truth_all = np.load(cached)
        else:
            truth_all = ground_truth(base, args.n, np.concatenate([Q, T]), args.chunk)
            np.save(cached, truth_all)
        truth, truth_t = truth_all[:REPORTED_QUERIES], truth_all[REPORTED_QUERIES:]
    if args.compare_n:
        with Phase(report, "opq_compare") as entry:
            entry.update(opq_compare(args, base, T))
    with Phase(report, "build") as entry:
        if args.reuse_index and path.exists():
            entry["reused"] = True  # timings of this phase are not a build
        else:
            entry.update(build(args, base, path, args.opq))
    report["disk"] = disk_sizes(path)
    with Phase(report, "tune") as entry:
        index = load_index(path, mmap=True)
        entry.update(tune(index, T, truth_t, args))
        del index
    options = {k: report["tune"]["chosen"][k] for k in ("nprobe", "rerank")}
    with Phase(report, "search") as entry:
        entry["options"] = options
        entry["cold"] = stats(*cold_latencies(path, Q[: args.cold_queries], options))
        index = load_index(path, mmap=True)
        single_latencies(index, Q, **options)
        found, ms, cpu = single_latencies(index, Q, **options)
        entry["warm"] = stats(ms, cpu)
        entry["recall_at_10"] = round(recall(found, truth), 4)
    report["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    report["verdict"] = verdict(report)
    report.pop("_out")
    return report


def verdict(report: dict[str, Any]) -> dict[str, bool]:
    s = report["search"]
    return {"build_rss_ok": report["build"]["peak_rss_mb"] <= 4096,
            "search_rss_ok": s["peak_rss_mb"] <= 4096,
            "tune_rss_ok": report["tune"]["peak_rss_mb"] <= 4096,
            "tune_anon_ok": report["tune"]["peak_anon_mb"] <= 4096,
            "recall_ok": s["recall_at_10"] >= 0.90, "warm_p50_ok": s["warm"]["p50_ms"] <= 10.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="base vectors")
    parser.add_argument("--data", type=Path, default=Path("bench-data/scale"), help="folder for data and index")
    parser.add_argument("--clusters", type=int, default=1000, help="Gaussian groups of the synthetic data")
    parser.add_argument("--chunk", type=int, default=500_000, help="rows generated / added / scanned at a time")
    parser.add_argument("--nlist", type=int, default=0, help="coarse clusters (0 = automatic)")
    parser.add_argument("--pq-bytes", type=int, default=64)
    parser.add_argument("--opq", action="store_true", help="OPQ rotation before PQ")
    parser.add_argument("--tune-queries", type=int, default=500)
    parser.add_argument("--cold-queries", type=int, default=200)
    parser.add_argument("--target-recall", type=float, default=0.92, help="tuning target (margin over 0.90)")
    parser.add_argument("--compare-n", type=int, default=0, help="rows for PQ vs OPQ (0 = skip)")
    parser.add_argument("--keep-data", dest="keep_base", action="store_true", help="keep the data folder after a successful run")
    parser.add_argument("--nprobes", type=int, nargs="+", default=NPROBES, help="tuning grid: lists searched")
    parser.add_argument("--reranks", type=int, nargs="+", default=RERANKS, help="tuning grid: re-rank depths")
    parser.add_argument("--reuse-index", action="store_true", help="search an index a kept run built")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    prefer_fast_blas()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    report = run(args)
    if not args.keep_base:  # kept after a failure: a rerun resumes the data it had written
        shutil.rmtree(args.data, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Part of benchmarks/bench_search.py: lookalike's search against the libraries a user would call
directly, at equal recall: raw FAISS (``IndexFlatIP``, ``IndexHNSWFlat``, ``IndexIVFFlat``) and
hnswlib.

Each approximate variant's knob (HNSW ``efSearch``/hnswlib ``ef``, IVF ``nprobe``) is set to the
smallest value reaching recall@10 >= 0.95 on *tuning* queries; recall, latency and throughput are
then reported on *other* queries. lookalike's HNSW and raw FAISS HNSW use the same build settings
(M, efConstruction), so at equal recall they walk the same kind of graph and the latency gap is
the wrapper's cost (validation, filters, id mapping, scores).

Single-query latency: every query is timed once per variant, the variants in rotating order
(paired samples: load on the shared machine hits all of them alike). Raw FAISS is timed as a user
calls it (``index.search(q, k)``, FAISS's default OpenMP threads) and pinned to one OpenMP thread
(``omp_set_num_threads(1)``, the fastest way to run single queries).

The wrapper ratio divides lookalike's p50 by raw FAISS's on *the same index*
(``faiss_same_index``: lookalike's own FAISS object called directly), so it measures the wrapper
alone; a separately built FAISS index (``faiss``) partitions or links the data differently, and
its ratio (``p50_ratio_vs_fastest_raw``) mixes build differences into the wrapper's cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

K = 10
TARGET_RECALL = 0.95
NPROBES = [1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128]
EFS = [10, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256]
WRAPPER_TARGET = 1.3
PASSES = 9

Searcher = Callable[[np.ndarray], np.ndarray]
"""Queries (m, d) -> ids (m, K), -1 padded."""


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    from lookalike.evaluate.metrics import recall_vs_exact

    return round(recall_vs_exact(found, truth), 4)


def ids_of(results: list) -> np.ndarray:
    out = np.full((len(results), K), -1, dtype=np.int64)
    for row, res in enumerate(results):
        out[row, : len(res)] = res.ids
    return out


def cheapest(make: Callable[[int], Searcher], values: list[int], Q: np.ndarray, truth: np.ndarray) -> tuple[int, list]:
    """The smallest knob value whose recall on (Q, truth) reaches the target, and the sweep."""
    sweep = []
    for value in values:
        sweep.append({"value": value, "recall_at_10": recall(make(value)(Q), truth)})
        if sweep[-1]["recall_at_10"] >= TARGET_RECALL:
            return value, sweep
    return values[-1], sweep


def paired_latencies(
    fns: dict[str, Searcher], Q: np.ndarray, warmup: int = 20, passes: int = PASSES
) -> dict[str, dict[str, float]]:
    """p50/p99 (ms) of one-query calls, every query through every variant in rotating order;
    ``passes`` times over the queries, each statistic the median over the passes (one pass of
    500 queries moves by up to 40 % between runs on this VM: a variant's p50 is tens of µs)."""
    names = list(fns)
    for q in Q[:warmup]:
        for name in names:
            fns[name](q[None])
    stats: dict[str, dict[str, list[float]]] = {name: {"p50_ms": [], "p99_ms": []} for name in names}
    for _ in range(passes):
        times: dict[str, list[float]] = {name: [] for name in names}
        for i in range(len(Q)):
            q = Q[i : i + 1]
            for j in range(len(names)):
                name = names[(i + j) % len(names)]
                started = time.perf_counter()
                fns[name](q)
                times[name].append(time.perf_counter() - started)
        for name, values in times.items():
            ms = np.asarray(values) * 1e3
            stats[name]["p50_ms"].append(float(np.percentile(ms, 50)))
            stats[name]["p99_ms"].append(float(np.percentile(ms, 99)))
    return {name: {key: round(float(np.median(v)), 4) for key, v in s.items()} for name, s in stats.items()}


def batched_qps(fn: Searcher, Q: np.ndarray, repeats: int = 2) -> float:
    best = min(_timed(lambda: fn(Q)) for _ in range(repeats))
    return round(len(Q) / best, 1)


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def one_thread(fn: Searcher) -> Searcher:
    """``fn`` run with FAISS pinned to one OpenMP thread (restored afterwards)."""
    import faiss

    def call(Q: np.ndarray) -> np.ndarray:
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return fn(Q)
        finally:
            faiss.omp_set_num_threads(before)

    return call


def raw_faiss(index: Any, ids: np.ndarray) -> Searcher:
    """Raw FAISS search; row numbers mapped to ids with one take (as a user would)."""

    def call(Q: np.ndarray) -> np.ndarray:
        _, rows = index.search(Q, K)
        return np.where(rows >= 0, ids[np.maximum(rows, 0)], -1)

    return call


def raw_same_index(index: Any) -> Searcher:
    """Raw FAISS search of the FAISS object inside a lookalike index (it stores the ids itself)."""

    def call(Q: np.ndarray) -> np.ndarray:
        return np.asarray(index.search(Q, K)[1])

    return call


def _inner_ef(id_map: Any, ef: int) -> Any:
    """``id_map`` (a FAISS ``IndexIDMap`` around an HNSW graph) with the graph's efSearch set."""
    import faiss

    _with_ef(faiss.downcast_index(id_map.index), ef)
    return id_map


def lookalike(index: Any, **options: int) -> Searcher:
    from lookalike.index import search

    return lambda Q: ids_of(search(index, Q, K, **options))


def family(
    name: str, variants: dict[str, tuple[Callable[[int], Searcher], list[int]]], tune: tuple, report: tuple
) -> dict[str, Any]:
    """Tune every variant of one index family, then measure them side by side on ``report``."""
    chosen: dict[str, Searcher] = {}
    out: dict[str, Any] = {}
    for variant, (make, values) in variants.items():
        value, sweep = cheapest(make, values, *tune)
        chosen[variant] = make(value)
        out[variant] = {"knob": value, "recall_at_10": recall(chosen[variant](report[0]), report[1]),
                        "qps_batched": batched_qps(chosen[variant], report[0]), "tuning_sweep": sweep}  # fmt: skip
    singles = dict(chosen)
    for variant in [v for v in variants if v.startswith("faiss")]:
        singles[variant + "_1thread"] = one_thread(chosen[variant])
    lat = paired_latencies(singles, report[0])
    for variant, stats in lat.items():
        out.setdefault(variant, {"knob": out[variant.removesuffix("_1thread")]["knob"]}).update(stats)
    raw = [v for v in lat if v.startswith("faiss")]
    same = [v for v in raw if v.startswith("faiss_same_index")] or raw
    best_same = min(same, key=lambda v: lat[v]["p50_ms"])
    best_raw = min(raw, key=lambda v: lat[v]["p50_ms"])
    ratio = lat["lookalike"]["p50_ms"] / lat[best_same]["p50_ms"]
    out["wrapper_overhead"] = {
        "vs": best_same,
        "p50_ratio": round(ratio, 3),
        "target": f"<= {WRAPPER_TARGET}",
        "met": ratio <= WRAPPER_TARGET,
        "vs_fastest_raw": best_raw,
        "p50_ratio_vs_fastest_raw": round(lat["lookalike"]["p50_ms"] / lat[best_raw]["p50_ms"], 3),
        "p50_ratio_vs_default_threads": round(lat["lookalike"]["p50_ms"] / lat[raw[0]]["p50_ms"], 3),
    }
    return {"family": name, **out}


def compare(X: np.ndarray, ids: np.ndarray, tune: tuple, report: tuple, built: dict[str, Any], seed: int) -> dict:
    """Exact, HNSW and IVF families; ``built`` holds lookalike's fitted ``hnsw`` and ``ivf``
    indexes over (X, ids); ``tune`` and ``report`` are (queries (m, d), exact top-10 ids (m, 10))."""
    import faiss
    import hnswlib

    from lookalike.index import ExactIndex

    n, d = X.shape
    out: dict[str, Any] = {"hnswlib": hnswlib.__version__ if hasattr(hnswlib, "__version__") else "0.8.0"}
    flat = faiss.IndexFlatIP(d)
    flat.add(X)
    exact = ExactIndex().fit(X, ids)
    out["exact"] = family("exact", {"lookalike": (lambda _: lookalike(exact), [0]),
                                    "faiss": (lambda _: raw_faiss(flat, ids), [0])}, tune, report)  # fmt: skip
    hnsw = built["hnsw"]
    graph, build_s = _build_faiss_hnsw(X, hnsw.m, hnsw.ef_construction)
    lib, lib_s = _build_hnswlib(X, ids, hnsw.m, hnsw.ef_construction, seed)
    out["hnsw"] = family("hnsw", {
        "lookalike": (lambda ef: lookalike(hnsw, ef_search=ef), EFS),
        "faiss": (lambda ef: raw_faiss(_with_ef(graph, ef), ids), EFS),
        "faiss_same_index": (lambda ef: raw_same_index(_inner_ef(hnsw.index_, ef)), EFS),
        "hnswlib": (lambda ef: _hnswlib_search(lib, ef), EFS),
    }, tune, report)  # fmt: skip
    out["hnsw"]["build_s"] = {"faiss": round(build_s, 2), "hnswlib": round(lib_s, 2)}
    out["hnsw"]["build_settings"] = {"M": hnsw.m, "ef_construction": hnsw.ef_construction}
    ivf = built["ivf"]
    raw_ivf, ivf_s = _build_faiss_ivf(X, ivf.centroids_.shape[0], seed)
    out["ivf"] = family("ivf", {
        "lookalike": (lambda p: lookalike(ivf, nprobe=p), NPROBES),
        "faiss": (lambda p: raw_faiss(_with_nprobe(raw_ivf, p), ids), NPROBES),
        "faiss_same_index": (lambda p: raw_same_index(_with_nprobe(ivf.index_, p)), NPROBES),
    }, tune, report)  # fmt: skip
    out["ivf"]["build_s"] = {"faiss": round(ivf_s, 2)}
    out["ivf"]["nlist"] = int(ivf.centroids_.shape[0])
    out["wrapper_p50_ratios"] = {f: out[f]["wrapper_overhead"]["p50_ratio"] for f in ("exact", "hnsw", "ivf")}
    return out


def _build_faiss_hnsw(X: np.ndarray, m: int, ef_construction: int) -> tuple[Any, float]:
    import faiss

    started = time.perf_counter()
    graph = faiss.IndexHNSWFlat(X.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = ef_construction
    graph.add(X)
    return graph, time.perf_counter() - started


def _with_ef(graph: Any, ef: int) -> Any:
    graph.hnsw.efSearch = ef
    return graph


def _build_hnswlib(X: np.ndarray, ids: np.ndarray, m: int, ef_construction: int, seed: int) -> tuple[Any, float]:
    import hnswlib

    started = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=X.shape[1])
    index.init_index(max_elements=len(X), M=m, ef_construction=ef_construction, random_seed=seed)
    index.add_items(X, ids)
    return index, time.perf_counter() - started


def _hnswlib_search(index: Any, ef: int) -> Searcher:
    index.set_ef(max(ef, K))

    def call(Q: np.ndarray) -> np.ndarray:
        labels, _ = index.knn_query(Q, k=K)  # one query runs in the calling thread
        return labels.astype(np.int64)

    return call


def _build_faiss_ivf(X: np.ndarray, nlist: int, seed: int) -> tuple[Any, float]:
    import faiss

    started = time.perf_counter()
    quantizer = faiss.IndexFlatL2(X.shape[1])
    index = faiss.IndexIVFFlat(quantizer, X.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.train(X)
    index.add(X)
    return index, time.perf_counter() - started


def _with_nprobe(index: Any, nprobe: int) -> Any:
    index.nprobe = nprobe
    return index

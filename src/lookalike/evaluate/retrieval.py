"""Retrieval quality and speed of a labelled library (``lookalike evaluate retrieval``).

Leave-one-out: each sampled labelled image queries the whole library (itself excluded); a hit
is relevant when it carries the query's label (metrics in :mod:`lookalike.evaluate.metrics`). Every
index kind is built in memory from the library's reduced vectors with the library's index
settings; approximate kinds are also scored by recall@k of the exact top k. Latency is measured
per single query through :func:`lookalike.index.search` (stored vectors as queries), and from an
image file (decode + embed + reduce + search) on a few library files.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.errors import InvalidParameterError
from lookalike.evaluate.metrics import (
    latency_percentiles,
    leave_one_out_hits,
    map_at_k,
    precision_at_k,
    recall_at_k,
    recall_vs_exact,
)
from lookalike.index import VectorIndex, create_index, member_neighbors, search
from lookalike.reduce.stored import reduced_vectors
from lookalike.search.library_index import index_config
from lookalike.store.images import embedded_files
from lookalike.store.labels import image_labels

if TYPE_CHECKING:
    from lookalike.store.library_store import LibraryStore

KINDS = ("exact", "ivf", "hnsw")


def evaluate_library_retrieval(
    store: LibraryStore,
    k: int = 10,
    *,
    kinds: tuple[str, ...] = KINDS,
    max_queries: int = 2000,
    latency_queries: int = 200,
    file_queries: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """The report (JSON-ready dict): quality per kind, recall vs exact, latency percentiles."""
    if k < 1 or max_queries < 1 or latency_queries < 1 or file_queries < 0:
        raise InvalidParameterError("k, max_queries and latency_queries must be >= 1, file_queries >= 0")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or "exact" not in kinds:
        raise InvalidParameterError(f"kinds must include 'exact' and be among {KINDS}, got {list(kinds)}")
    reduced = reduced_vectors(store)
    ids, vectors = np.asarray(reduced.ids, dtype=np.int64), np.asarray(reduced.vectors)
    labels = {i: lab for i, lab in image_labels(store.catalog).labels.items() if i in set(ids.tolist())}
    if len(set(labels.values())) < 2:
        raise InvalidParameterError(
            f"{store.folder}: retrieval evaluation needs images with at least 2 labels, found "
            f"{len(set(labels.values()))} (index with `--labels folder`)"
        )
    rng = np.random.default_rng(seed)
    queries = np.array(sorted(labels), dtype=np.int64)
    if len(queries) > max_queries:
        queries = np.sort(rng.choice(queries, max_queries, replace=False))
    report: dict[str, Any] = {
        "library": str(store.folder), "k": k, "images": len(ids), "labelled_images": len(labels),
        "labels": len(set(labels.values())), "queries": len(queries), "kinds": {},
    }
    exact_ids = None
    for kind in ("exact", *[kind for kind in kinds if kind != "exact"]):
        index, build_s = _built(store, kind, ids, vectors)
        nbr_ids, _ = member_neighbors(index, queries, k)
        entry: dict[str, Any] = {"build_s": round(build_s, 3), **quality(queries, nbr_ids, labels, k)}
        if exact_ids is None:
            exact_ids = nbr_ids
        else:
            entry["recall_vs_exact"] = round(recall_vs_exact(nbr_ids, exact_ids), 4)
        entry["latency"] = _latency(index, rng.choice(ids, min(latency_queries, len(ids)), replace=False), k)
        report["kinds"][kind] = entry
    if file_queries:
        report["query_from_file"] = _file_latency(store, rng, file_queries, k)
    return report


def quality(queries: np.ndarray, neighbor_ids: np.ndarray, labels: dict[int, Any], k: int) -> dict[str, float]:
    """precision/recall/mAP@k of neighbour ids (m, k) for query ids (m,), all labels known."""
    hits, n_relevant = leave_one_out_hits(queries, neighbor_ids, labels)
    return {
        "precision_at_k": round(precision_at_k(hits, k), 4),
        "recall_at_k": round(recall_at_k(hits, n_relevant, k), 4),
        "map_at_k": round(map_at_k(hits, n_relevant, k), 4),
    }


def _built(store: LibraryStore, kind: str, ids: np.ndarray, vectors: np.ndarray) -> tuple[VectorIndex, float]:
    started = time.perf_counter()
    config = replace(index_config(store), kind=kind)
    index = create_index(config, n_vectors=len(ids)).fit(vectors, ids)
    return index, time.perf_counter() - started


def _latency(index: VectorIndex, query_ids: np.ndarray, k: int) -> dict[str, float]:
    """Single-query latency percentiles (ms) of stored vectors searched with self excluded."""
    vectors = index.reconstruct(query_ids)
    seconds = []
    for own, vector in zip(query_ids.tolist(), vectors):
        started = time.perf_counter()
        search(index, vector, k, exclude_ids=[own])
        seconds.append(time.perf_counter() - started)
    return {name: round(value, 4) for name, value in latency_percentiles(seconds).items()}


def _file_latency(store: LibraryStore, rng: np.random.Generator, count: int, k: int) -> dict[str, Any]:
    """Decode + embed + reduce + search latency from library files (the first run loads the
    backbone and is left out)."""
    from lookalike.search.searcher import Searcher

    searcher = Searcher(store)
    _, _, path_of = embedded_files(store.catalog)
    rows = list(path_of.values())
    paths = [rows[i] for i in rng.choice(len(rows), min(count + 1, len(rows)), replace=False)]
    searcher.embed(paths[0])  # warm-up: loads the backbone
    seconds: list[float] = []
    stages: Counter[str] = Counter()
    for path in paths[1:] or paths:
        started = time.perf_counter()
        vector, parts = searcher.embed(path)
        searcher.live.search(vector[None], k)
        seconds.append(time.perf_counter() - started)
        stages.update(parts)
    n = len(seconds)
    return {
        **{name: round(value, 2) for name, value in latency_percentiles(seconds).items()},
        "mean_stage_ms": {name: round(1000 * value / n, 2) for name, value in stages.items()},
        "files": n,
    }

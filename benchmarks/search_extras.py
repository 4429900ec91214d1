"""Parts of benchmarks/bench_search.py: search from a JPEG file end to end, and the IVF variants
tried for the 50x target (compressed codes + exact re-ranking, fewer and larger lists).

``python benchmarks/search_extras.py`` runs the end-to-end part alone and prints JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

K = 10
PHOTO_SIZES = {"1024x768": (1024, 768), "4032x3024": (4032, 3024)}


def synthetic_photo(seed: int, size: tuple[int, int]) -> Any:
    """A photo-like RGB image: smooth colour regions plus sensor-like noise (JPEG-realistic)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    base = np.asarray(small.resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
    noise = rng.normal(0, 6, (size[1], size[0], 1)).astype(np.int16)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def end_to_end(seed: int = 0, library_images: int = 48, queries: int = 20, backbone: str = "efficientnet-lite0") -> dict:
    """p50/p95 of ``Searcher.search(path)`` on JPEG files not in the library: decode (EXIF,
    draft scaling), embed, reduce, search; stage means; the first query (backbone load) excluded."""
    from lookalike import Library
    from lookalike.config import ReduceConfig
    from lookalike.evaluate.metrics import latency_percentiles
    from lookalike.search.searcher import Searcher

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "photos").mkdir()
        for i in range(library_images):
            synthetic_photo(seed + i, (1024, 768)).save(folder / "photos" / f"p{i:03d}.jpg", quality=90)
        started = time.perf_counter()
        with Library.create(folder / "lib.lookalike", backbone=backbone) as lib:
            lib.add([folder / "photos"])
            lib.reduce(ReduceConfig(n_components=min(256, library_images)))
            searcher = Searcher(lib.store)
            build_s = time.perf_counter() - started
            out: dict[str, Any] = {"backbone": backbone, "library_images": library_images,
                                   "library_build_s": round(build_s, 2), "queries_per_size": queries}
            for name, size in PHOTO_SIZES.items():
                paths = []
                for i in range(queries + 1):
                    path = folder / f"q-{name}-{i}.jpg"
                    synthetic_photo(seed + 10_000 + i, size).save(path, quality=90)
                    paths.append(path)
                searcher.search(paths[0], K)  # warm-up: loads the backbone
                totals, stages = [], {"decode": 0.0, "embed": 0.0, "search": 0.0}
                for path in paths[1:]:
                    result = searcher.search(path, K)
                    totals.append(result.seconds["total"])
                    for stage in stages:
                        stages[stage] += result.seconds[stage]
                lat = latency_percentiles(totals)
                out[name] = {"p50_ms": round(lat["p50_ms"], 2), "p95_ms": round(lat["p95_ms"], 2),
                             "mean_stage_ms": {s: round(1000 * v / queries, 2) for s, v in stages.items()}}
    return out


def quantized_ivf(X: np.ndarray, ids: np.ndarray, Q: np.ndarray, truth: np.ndarray, baseline_qps: float) -> dict:
    """Raw FAISS batched queries/s and recall@10 of IVF variants (no lookalike wrapper):
    Flat at several nlist; SQ8, 4-bit PQ fast-scan (64 and 128 sub-quantizers) and IVF over the
    first 128 dimensions, each with exact re-ranking (IndexRefineFlat).
    ``truth`` (m, 10) holds the ids (n,) of the rows of X."""
    import faiss

    from lookalike.evaluate.metrics import recall_vs_exact

    d, n = X.shape[1], len(X)
    rows = []

    def measure(name: str, index: Any, **settings: Any) -> None:
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            _, positions = index.search(Q, K)
            best = min(best, time.perf_counter() - started)
        found = np.where(positions >= 0, ids[np.maximum(positions, 0)], -1)
        qps = len(Q) / best
        rows.append({"variant": name, **settings, "recall_at_10": round(recall_vs_exact(found, truth), 4),
                     "qps_batched": round(qps, 1), "speedup_vs_baseline": round(qps / baseline_qps, 1)})

    for nlist in (max(1, n // 400), max(1, n // 80)):
        for code, metric in (("Flat", faiss.METRIC_INNER_PRODUCT), ("SQ8", faiss.METRIC_INNER_PRODUCT),
                             ("PQ64x4fsr", faiss.METRIC_L2), ("PQ128x4fsr", faiss.METRIC_L2),
                             ("prefix128", faiss.METRIC_INNER_PRODUCT)):
            if code == "prefix128":  # IVF on the first 128 (PCA) dimensions, re-ranked on all
                base = faiss.IndexPreTransform(_first_dims(d, 128), faiss.index_factory(128, f"IVF{nlist},Flat", metric))
            else:
                base = faiss.index_factory(d, f"IVF{nlist},{code}", metric)
            ivf = faiss.extract_index_ivf(base)
            ivf.cp.max_points_per_centroid = 64
            base.train(X)
            index = base if code == "Flat" else faiss.IndexRefineFlat(base)
            index.add(X)
            for nprobe in (2, 4, 8, 16):
                ivf.nprobe = min(nprobe, nlist)
                for k_factor in ((1,) if code == "Flat" else (4, 16, 32)):
                    if code != "Flat":
                        index.k_factor = k_factor
                    measure(f"IVF{nlist},{code}" + ("" if code == "Flat" else "+refine"), index,
                            nprobe=nprobe, k_factor=k_factor)
    good = [r for r in rows if r["recall_at_10"] >= 0.95]
    best = max(good, key=lambda r: r["qps_batched"], default=None)
    return {"baseline_qps_single": round(baseline_qps, 1), "variants": rows, "best_at_recall95": best}


def _first_dims(d: int, keep: int) -> Any:
    """A FAISS transform keeping the first ``keep`` of ``d`` dimensions."""
    import faiss

    select = np.zeros((keep, d), dtype=np.float32)
    select[np.arange(keep), np.arange(keep)] = 1.0
    transform = faiss.LinearTransform(d, keep, False)
    faiss.copy_array_to_vector(select.ravel(), transform.A)
    transform.is_trained = True
    return transform


if __name__ == "__main__":
    print(json.dumps({"end_to_end": end_to_end()}, indent=2))
    sys.exit(0)

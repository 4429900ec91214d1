"""Measure the precision gate: P@10 and K-Means NMI of each reduced precision against fp32.

For each backbone and data set (Fashion-MNIST 3k, dogs vs cats 2k, Tux Paint), the images are
decoded once exactly as a library decodes them (``load_rgb`` + ``to_model_input`` with the
library defaults; crop 1.0 for the tiny Fashion-MNIST and CIFAR images, as ``compare`` uses),
embedded at fp32 (ONNX Runtime, today's path) and at each reduced precision, then scored the
way ``lookalike compare`` scores a library: L2 + PCA 256 + L2 (the library default), exact
cosine P@10 over every image as a query, and NMI of K-Means with K = the number of classes.
NMI is paired: for each of 100 seeds, k-means++ picks K seed *images* on the fp32 vectors, and
Lloyd's iterations (lookalike's ``refine``) start from those same images in every precision, so
the comparison sees the vectors, not the seeding (with independent seeds, one seed's NMI moves by
up to 0.06 on Fashion-MNIST and even the mean of 20 by about ±0.01, the tolerance itself; the
unpaired mean of lookalike's own estimator over 20 seeds is kept beside it as ``nmi_unpaired``). int8 is calibrated on the first 64 images of each data set, as a library
calibrates on its own first images. A precision passes for a backbone when no score is more
than ``--tolerance`` below fp32's on any data set (a higher score is no loss: K-Means NMI moves
by ±0.02 between equally good vectors, as a different seed does). bf16 is measured only on a CPU with native
bf16 (elsewhere OpenVINO runs it at f32, which would say nothing about bf16).

Also measures model-only speed (images/s, batch 32, two single-thread streams as ``index``
runs) per precision, recorded with the CPU class, so ``--precision auto`` can pick the fastest.

    python benchmarks/precision_gate.py --out src/lookalike/embed/precision_gate.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

DATASETS = {"tuxpaint": None, "fashion-mnist": 3000, "dogs-vs-cats": 2000}
CROP = {"fashion-mnist": 1.0, "dogs-vs-cats": 1.0, "tuxpaint": None}
BATCH = 32
NMI_SEEDS = 100
"""K-Means seeds averaged for NMI: one seed's NMI moves by up to 0.06 (Fashion-MNIST, K = 10) and, with
K = 2 (dogs vs cats), between partitions 0.3 apart; with 20 seeds the same bf16 vectors scored
0.035 below fp32 paired and 0.010 unpaired, so 20 were too few for a 0.01 tolerance."""


def model_inputs(dataset: str, limit: int | None, size: int, crop: float) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 model inputs (n, size, size, 3), int labels (n,)) decoded as a library would."""
    from PIL import Image

    from lookalike.io.datasets import load_arrays, load_files, select_subset
    from lookalike.io.decode import load_rgb, to_model_input

    if dataset == "tuxpaint":
        files = load_files(dataset)
        names = sorted({label for _, label in files})
        pixels = [to_model_input(np.asarray(load_rgb(p, max_pixels=10**8, min_side=round(size / crop))), size, crop)
                  for p, _ in files]  # fmt: skip
        return np.stack(pixels), np.array([names.index(label) for _, label in files])
    images, labels, _ = load_arrays(dataset, split="all" if dataset == "dogs-vs-cats" else None)
    keep = select_subset(labels, limit=limit, seed=0)
    rgb = [np.asarray(Image.fromarray(images[i]).convert("RGB")) for i in keep]
    return np.stack([to_model_input(a, size, crop) for a in rgb]), labels[keep]


def embed_all(backbone: object, pixels: np.ndarray) -> np.ndarray:
    chunks = [pixels[i : i + BATCH] for i in range(0, len(pixels), BATCH)]
    with ThreadPoolExecutor(2) as pool:
        return np.concatenate(list(pool.map(backbone.embed, chunks)))  # type: ignore[attr-defined]


def seed_images(vectors: np.ndarray, classes: int) -> list[np.ndarray]:
    """For each of ``NMI_SEEDS`` seeds, the row indices k-means++ picks as K-Means seeds on the
    reduced fp32 ``vectors``; every precision starts Lloyd's iterations from these same images."""
    from sklearn.cluster import kmeans_plusplus

    return [kmeans_plusplus(vectors, classes, random_state=seed)[1] for seed in range(NMI_SEEDS)]


def scores(vectors: np.ndarray, labels: np.ndarray, seeds: list[np.ndarray] | None = None,
           k: int = 10) -> tuple[dict[str, float], list[np.ndarray]]:  # fmt: skip
    """P@k (exact cosine search on L2 + PCA 256 + L2, the library default) and K-Means NMI as
    ``compare`` measures; NMI paired through ``seeds`` (:func:`seed_images` of these vectors when
    None, as for fp32), and the unpaired mean of lookalike's estimator over 20 seeds.
    Returns the scores and the seeds used."""
    from sklearn.metrics import normalized_mutual_info_score as nmi

    from lookalike.cluster.kmeans import KMeans, refine
    from lookalike.config import ReduceConfig
    from lookalike.evaluate.metrics import precision_at_k
    from lookalike.reduce import Reducer

    config = ReduceConfig()  # the library default: L2, PCA 256, L2 again
    reducer = Reducer(min(config.n_components, len(vectors) - 1), whiten=config.whiten)
    unit = np.ascontiguousarray(reducer.fit(vectors).transform(vectors), dtype=np.float32)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argpartition(-similarity, k, axis=1)[:, :k]
    hits = labels[neighbours] == labels[:, None]
    classes = len(set(labels.tolist()))
    seeds = seed_images(unit, classes) if seeds is None else seeds
    paired = [nmi(labels, refine(unit, unit[rows].copy(), 300, 0.0, False)[1]) for rows in seeds]
    unpaired = [nmi(labels, KMeans(n_clusters=classes, seed=seed).fit(unit).labels_) for seed in range(20)]
    result = {"p_at_10": precision_at_k(hits, k), "nmi": float(np.mean(paired)), "nmi_sd": float(np.std(paired)),
              "nmi_unpaired": float(np.mean(unpaired)), "nmi_seed_range": max(unpaired) - min(unpaired)}  # fmt: skip
    return result, seeds


def speed(backbone: object, pixels: np.ndarray, rounds: int = 2) -> float:
    """Model-only images/s on batches of 32, two single-thread streams (best of ``rounds``)."""
    sample = pixels[: BATCH * 8]
    embed_all(backbone, sample[:BATCH])
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        embed_all(backbone, sample)
        best = max(best, len(sample) / (time.perf_counter() - start))
    return best


def measure_backbone(name: str, precisions: list[str], tolerance: float, stop_on_fail: bool = True) -> dict[str, dict]:
    """Gate rows of backbone ``name``: fp32 and each reduced precision, scored on every data set
    (with ``stop_on_fail``, a precision that already failed on one data set is not measured on
    the next: one failure fails the gate)."""
    from lookalike.embed.precision import cpu_class, cpu_flags, runs_natively
    from lookalike.embed.reduced_precision import load_reduced, openvino_available
    from lookalike.embed.registry import get_spec, load_backbone, resolve_weights, weights_sha256
    from lookalike.embed.runtime import cached_model_path

    spec = get_spec(name)
    fp32 = load_backbone(name, threads=1)
    onnx_path = cached_model_path(spec, weights_sha256(resolve_weights(name)))
    here = cpu_class(cpu_flags())
    rows: dict[str, dict] = {"fp32": {"passed": True, "runtime": "onnxruntime", "cpu_class": here, "scores": {}}}
    runtimes = ["openvino", "onnxruntime"] if openvino_available() else ["onnxruntime"]
    reduced = [p for p in precisions if p == "int8" or (p == "bf16" and runs_natively("bf16", cpu_flags()))]
    for dataset, limit in DATASETS.items():
        failed = [p for p in reduced if p in rows and _worst(rows[p], rows["fp32"]) > tolerance]
        if stop_on_fail and reduced and failed == reduced:
            break  # every reduced precision already failed: the gate's verdict is in
        pixels, labels = model_inputs(dataset, limit, spec.image_size, CROP[dataset] or spec.crop_fraction)
        print(f"{name} {dataset}: {len(pixels)} images", file=sys.stderr, flush=True)
        rows["fp32"]["scores"][dataset], seeds = scores(embed_all(fp32, pixels), labels)
        if "images_per_second" not in rows["fp32"]:
            rows["fp32"]["images_per_second"] = speed(fp32, pixels)
        for precision in reduced:
            if precision in failed:
                continue
            # scores from the first runtime, which the row then names (int8 differs by runtime: an
            # OpenVINO-quantized model there, QDQ ONNX in ONNX Runtime); speed from each, for reference
            options = runtimes if precision == "int8" else ["openvino"]
            models = {r: load_reduced(spec, onnx_path, fp32.weights_sha256, precision, threads=1,
                                      calibration=pixels[:64], runtime=r) for r in options[:1]}  # fmt: skip
            row = rows.setdefault(precision, {"cpu_class": here, "scores": {}})
            row["scores"][dataset] = scores(embed_all(models[options[0]], pixels), labels, seeds)[0]
            if "speeds" not in row:
                for runtime in options[1:]:
                    models[runtime] = load_reduced(spec, onnx_path, fp32.weights_sha256, precision, threads=1,
                                                   calibration=pixels[:64], runtime=runtime)  # fmt: skip
                row["speeds"] = {r: round(speed(m, pixels), 1) for r, m in models.items()}
                row["runtime"] = options[0]
                row["images_per_second"] = row["speeds"][options[0]]
            print(f"  {precision}: {row['scores'][dataset]} vs fp32 {rows['fp32']['scores'][dataset]}",
                  file=sys.stderr, flush=True)  # fmt: skip
    return _judge(rows, tolerance)


def _worst(row: dict, reference: dict) -> float:
    """Largest loss (fp32 score - score, 0 when none) over the data sets ``row`` was measured on."""
    ref = reference["scores"]
    return max(max(0.0, ref[d][m] - row["scores"][d][m]) for d in row["scores"] for m in ("p_at_10", "nmi"))


def _judge(rows: dict[str, dict], tolerance: float) -> dict[str, dict]:
    """Each row with ``passed`` (no score more than ``tolerance`` below fp32's on any data set)
    and ``worst_delta``."""
    judged: dict[str, dict] = {"fp32": {**rows["fp32"], "worst_delta": 0.0}}
    for precision, row in rows.items():
        if precision != "fp32":
            worst = _worst(row, rows["fp32"])
            complete = set(row["scores"]) == set(DATASETS)
            judged[precision] = {**row, "worst_delta": round(worst, 4), "passed": complete and worst <= tolerance}
    return judged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["efficientnet-lite0", "efficientnet-lite2", "mobilenetv2"])
    parser.add_argument("--precisions", nargs="+", default=["int8", "bf16"])
    parser.add_argument("--fashion", type=int, default=3000, help="Fashion-MNIST images")
    parser.add_argument("--dogs", type=int, default=2000, help="dogs vs cats images")
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=Path("bench-results/precision_gate.json"))
    args = parser.parse_args()
    from lookalike.embed.precision import cpu_class, cpu_flags

    DATASETS.update({"fashion-mnist": args.fashion, "dogs-vs-cats": args.dogs})
    table = {
        "tolerance": args.tolerance,
        "measure": "P@10 (exact, L2 + PCA 256 + L2, every image a query) and K-Means NMI (K = classes, "
        "mean of 100 seeds, each starting every precision from the same seed images)",
        "datasets": {k: v or "all" for k, v in DATASETS.items()},
        "machine": {"cpu_class": cpu_class(cpu_flags()), "cpus": __import__("os").cpu_count(),
                    "python": platform.python_version()},  # fmt: skip
        "backbones": {},
    }
    for name in args.backbones:
        table["backbones"][name] = measure_backbone(name, args.precisions, args.tolerance)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(table, indent=2) + "\n")  # after each backbone: partial results kept
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()

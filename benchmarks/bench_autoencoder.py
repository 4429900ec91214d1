"""Autoencoder training speed on this CPU, and (``--compare``) how its embeddings fare.

Speed: trains the default architecture (``--width``, ``--latent-dim``) on the first ``--subset``
Fashion-MNIST training images, made RGB and resized to ``--image-size`` the way the library's
decoder does, for ``--epochs`` epochs. Reports training images/s (median and fastest of the
epochs after the first, which warms up) and the time of one 60,000-image epoch EXTRAPOLATED
from the median (not measured).

``--compare``: on the first 3,000 Fashion-MNIST test images, P@10 (cosine kNN, self excluded), NMI
of k-means (k = 10) and 5-fold RBF-SVM accuracy, for raw pixels, efficientnet-lite0 and the
autoencoder trained (without labels) on ``--subset`` training images.

    python benchmarks/bench_autoencoder.py --out bench-results/autoencoder.json [--full] [--compare]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict
from typing import Any

import numpy as np

FULL_EPOCH = 60_000


def fashion_rgb(split: str, limit: int, size: int, crop_fraction: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """First ``limit`` Fashion-MNIST images as uint8 RGB ``(N, size, size, 3)`` and their labels."""
    from PIL import Image

    from lookalike.io.datasets import load_arrays
    from lookalike.io.decode import to_model_input

    grey, labels, _ = load_arrays("fashion-mnist", split=split, limit=limit)
    rgb = [to_model_input(Image.fromarray(image).convert("RGB"), size, crop_fraction) for image in grey]
    return np.stack(rgb), labels


def measure_training(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """Train; return the speed record and the fitted trainer."""
    from lookalike.config import AutoencoderConfig
    from lookalike.embed.autoencoder.train import AutoencoderTrainer

    images, _ = fashion_rgb("train", args.subset, args.image_size)
    config = AutoencoderConfig(
        image_size=args.image_size, latent_dim=args.latent_dim, width=args.width, epochs=args.epochs,
        batch_size=args.batch_size, patience=0, threads=args.threads, val_fraction=0.05,
    )  # fmt: skip
    trainer = AutoencoderTrainer(config).fit(images)
    n_train = len(images) - len(trainer.val_indices_)
    warm = sorted(n_train / r.seconds for r in trainer.history_[1:])  # epoch time includes validation
    per_second = float(np.median(warm))
    record = {
        "config": asdict(config),
        "images": len(images),
        "train_images": n_train,
        "epochs": [asdict(r) for r in trainer.history_],
        "train_images_per_second_median_warm_epoch": round(per_second, 1),
        "train_images_per_second_fastest_warm_epoch": round(warm[-1], 1),
        "epoch_seconds_60000_extrapolated": round(FULL_EPOCH / per_second, 1),
        "note": f"60,000-image epoch time extrapolated from {n_train:,}-image epochs (median of epochs 2+), "
        "not measured; other processes sharing the CPU make epoch times vary",
    }
    return record, trainer


def retrieval_metrics(vectors: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """P@10 (cosine, self excluded), k-means NMI (k = #classes) and 5-fold RBF-SVM accuracy."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    top = np.argpartition(-similarity, 10, axis=1)[:, :10]
    p_at_10 = float(np.mean(labels[top] == labels[:, None]))
    k = len(np.unique(labels))
    clusters = KMeans(k, n_init=4, random_state=seed).fit_predict(unit)
    svm = make_pipeline(StandardScaler(), SVC(kernel="rbf"))
    accuracy = cross_val_score(svm, unit, labels, cv=5).mean()
    return {
        "p_at_10": round(p_at_10, 4),
        "nmi": round(float(normalized_mutual_info_score(labels, clusters)), 4),
        "svm_accuracy": round(float(accuracy), 4),
    }


def compare(trainer: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Metrics of pixels, efficientnet-lite0 and the autoencoder on the first 3,000 test images."""
    from lookalike.embed.registry import get_spec, load_backbone

    rows: dict[str, Any] = {}
    small, labels = fashion_rgb("test", 3000, args.image_size)
    rows["autoencoder"] = retrieval_metrics(trainer.transform(small), labels)
    pixels, _ = fashion_rgb("test", 3000, 32)
    rows["pixels"] = retrieval_metrics(load_backbone("pixels").embed(pixels), labels)
    spec = get_spec("efficientnet-lite0")
    big, _ = fashion_rgb("test", 3000, spec.image_size, spec.crop_fraction)
    backbone = load_backbone("efficientnet-lite0", threads=args.threads)
    start = time.perf_counter()
    embedded = np.concatenate([backbone.embed(big[i : i + 64]) for i in range(0, len(big), 64)])
    rows["efficientnet-lite0"] = retrieval_metrics(embedded, labels)
    rows["efficientnet-lite0"]["embed_seconds"] = round(time.perf_counter() - start, 1)
    return {
        "data": "Fashion-MNIST test split, first 3,000 images (grey made RGB)",
        "autoencoder_trained_on": f"first {args.subset:,} training images, no labels",
        "results": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="write the JSON here too")
    parser.add_argument("--full", action="store_true", help="10,000 images, 3 epochs (default: quick, 2,000 and 2)")
    parser.add_argument("--subset", type=int, help="training images (overrides --full's choice)")
    parser.add_argument("--epochs", type=int, help="epochs (>= 2 so the last one is warm)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--latent-dim", type=int, default=128)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="PyTorch threads (0: default)")
    parser.add_argument("--compare", action="store_true", help="also P@10 / NMI / SVM vs pixels and efficientnet")
    args = parser.parse_args(argv)
    args.subset = args.subset or (10_000 if args.full else 2_000)
    args.epochs = args.epochs or (3 if args.full else 2)
    import torch

    speed, trainer = measure_training(args)
    result: dict[str, Any] = {
        "benchmark": "autoencoder",
        "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__},
        "threads": torch.get_num_threads() if not args.threads else args.threads,
        "training": speed,
    }
    if args.compare:
        result["comparison"] = compare(trainer, args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        from pathlib import Path

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

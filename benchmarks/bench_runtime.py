"""ONNX Runtime against OpenVINO on the same exported backbone, side by side (optional).

OpenVINO is not a dependency: install it into the environment to run this
(``.venv/bin/pip install openvino``). It measures images/s at batch 32 with 2 threads, alternating
the runtimes, and the agreement of each OpenVINO precision with ONNX Runtime on real photos.

    python benchmarks/bench_runtime.py --out bench-results/runtime.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

BATCH = 32


def photos(size: int) -> np.ndarray:
    """scikit-image's sample photos as a uint8 batch (n, size, size, 3)."""
    from PIL import Image
    from skimage import data

    names = ("chelsea", "astronaut", "coffee", "rocket", "camera", "coins", "hubble_deep_field")
    images = []
    for name in names:
        pixels = getattr(data, name)()
        image = Image.fromarray(pixels).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        images.append(np.asarray(image))
    return np.stack(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--out", type=Path, default=Path("bench-results/runtime.json"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import openvino as ov

    from lookalike.embed.registry import get_spec, load_backbone, resolve_weights, weights_sha256
    from lookalike.embed.runtime import cached_model_path

    spec = get_spec(args.backbone)
    ort_backbone = load_backbone(args.backbone, threads=2)
    onnx_path = cached_model_path(spec, weights_sha256(resolve_weights(args.backbone)))
    batch = np.resize(photos(spec.image_size), (BATCH, spec.image_size, spec.image_size, 3))
    reference = ort_backbone.embed(batch)
    runners = {"onnxruntime": ort_backbone.embed}
    agreement = {}
    for precision in ("f32", "bf16"):
        compiled = ov.Core().compile_model(
            str(onnx_path), "CPU",
            {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": 2, "INFERENCE_PRECISION_HINT": precision},
        )
        request, output = compiled.create_infer_request(), compiled.output("embedding")
        runners[f"openvino-{precision}"] = lambda x, r=request, o=output: r.infer({0: x})[o]
        got = runners[f"openvino-{precision}"](batch)
        cosine = (got * reference).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(reference, axis=1)
        agreement[precision] = float(cosine.min())
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run(batch)
            rates[name].append(BATCH / (time.perf_counter() - start))
    report = {
        "benchmark": "runtime",
        "backbone": args.backbone,
        "images_per_second_median": {k: float(np.median(v)) for k, v in rates.items()},
        "min_cosine_vs_onnxruntime_on_photos": agreement,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

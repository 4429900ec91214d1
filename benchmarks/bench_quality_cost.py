"""Indexing cost of the quality options, side by side in one run on the same real images.

Variants (each indexes the same images into a fresh library, in its own process):

- ``plain``: efficientnet-lite0 (today's default);
- ``flip``: efficientnet-lite0 with ``augment="flip"`` (image + mirror averaged);
- ``fused``: ``efficientnet-lite0+efficientnet-lite2``;
- ``lite2``: efficientnet-lite2 alone.

Reported per variant: wall seconds, CPU milliseconds per image (all threads; steadier than wall
time when other work shares the cores) and both as ratios to ``plain``. Target (issue: quality
options): the default's indexing time <= 2x plain. Images: dogs-vs-cats photos as 224x224 JPEGs
(see ``bench_embed.make_images``). Writes JSON (``--out``) and prints it.

    python benchmarks/bench_quality_cost.py --out bench-results/quality_cost.json [--images 300]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from json_out import emit

VARIANTS = {
    "plain": {"backbone": "efficientnet-lite0"},
    "flip": {"backbone": "efficientnet-lite0", "augment": "flip"},
    "fused": {"backbone": "efficientnet-lite0+efficientnet-lite2"},
    "lite2": {"backbone": "efficientnet-lite2"},
}


def run_variant(name: str, images: Path, work: Path) -> dict[str, float]:
    """Index ``images`` with variant ``name`` in this process; seconds and CPU ms per image."""
    from lookalike import Library

    settings = VARIANTS[name]
    with Library.create(work / f"{name}.lookalike", **settings) as lib:
        lib.backbone()  # load (and export once) before timing
        cpu0, wall0 = time.process_time(), time.perf_counter()
        report = lib.add([images])
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"images": report.embedded, "seconds": round(wall, 2), "cpu_ms_per_image": round(1000 * cpu / max(report.embedded, 1), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.folder, args.work)))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_embed import make_images

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        make_images(folder, args.images)
        results = {}
        for name in VARIANTS:
            done = subprocess.run(
                [sys.executable, __file__, "--variant", name, "--folder", str(folder), "--work", tmp],
                capture_output=True, text=True,
            )
            if done.returncode != 0:
                raise SystemExit(f"variant {name} failed:\n{done.stderr[-2000:]}")
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    base = results["plain"]
    for entry in results.values():
        entry["seconds_vs_plain"] = round(entry["seconds"] / base["seconds"], 2)
        entry["cpu_vs_plain"] = round(entry["cpu_ms_per_image"] / base["cpu_ms_per_image"], 2)
    report = {"images": args.images, "variants": results,
              "target": "default indexing time <= 2x plain", "max_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024}
    emit(report, args.out, indent=1)


if __name__ == "__main__":
    main()

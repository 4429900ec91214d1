"""How responsive the web app is on a large library, measured in Debian's Chromium (headless).

Starts ``lookalike app`` on ``--library`` (a clustered library; without it, a ``pixels`` library of
the first ``--images`` Fashion-MNIST training images is built in a temporary folder and clustered
with K = 10) and times, from the browser:

- ``map_cold_s`` / ``map_warm_s``: opening the Cluster Analysis page until the map is drawn (cold:
  the first visit, which computes and caches the PCA projection; warm: a reload);
- ``hover_s``: from moving onto a point to its thumbnail loaded;
- ``selection_s``: from releasing a box over the left quarter of the map to the selection's grid
  heading and its first page of thumbnails loaded;
- ``grid_page_s``: from "Next" to the next page of thumbnails loaded;
- ``export_s``: from "Run" in the selection's action panel (export a CSV of its paths, dry run
  off) to its success message; ``exported`` rows in that CSV;
- ``similar_s``: from "Similar" under the selection's first thumbnail to the Search page's results.

    python benchmarks/bench_app.py --out bench-results/app.json [--library L] [--images 3000]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from json_out import emit

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
TIMEOUT_MS = 600_000
IMAGES_LOADED = """(n) => { const imgs = [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')];
  return imgs.length >= n && imgs.slice(0, n).every(i => i.complete && i.naturalWidth > 0); }"""
MAP_DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')].some(g => g.layout && g.layout.meta === 'lookalike-map'
  && g._fullData && g._fullData.length && g.querySelector('canvas'))"""
POINTS = """() => { const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g.layout.meta === 'lookalike-map');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, b = gd.getBoundingClientRect(); const xs = [], ys = [];
  gd._fullData.forEach(t => { for (let i = 0; i < t.x.length; i++) { xs.push(b.left + xa._offset + xa.l2p(t.x[i]));
    ys.push(b.top + ya._offset + ya.l2p(t.y[i])); } }); return [xs, ys]; }"""


def build_library(folder: Path, images: int) -> Path:
    cli = [sys.executable, "-m", "lookalike.cli.main"]
    photos, library = folder / "photos", folder / "lib.lookalike"
    subprocess.run([*cli, "dataset", "export", "fashion-mnist", str(photos), "--split", "train", "--first", str(images)],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run([*cli, "index", str(photos), "--library", str(library), "--backbone", "pixels", "--labels",
                    "folder", "--no-progress"], check=True, capture_output=True)  # fmt: skip
    subprocess.run([*cli, "cluster", "--library", str(library), "--k", "10", "--no-progress"], check=True,
                   capture_output=True)  # fmt: skip
    return library


def start_app(library: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "lookalike.cli.main", "app", "--library", str(library), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.3)
    os.killpg(process.pid, signal.SIGTERM)
    raise SystemExit(f"the app did not start within 120 s on {url}")


def measure(url: str, scratch: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(TIMEOUT_MS)
        for name in ("map_cold_s", "map_warm_s"):
            started = time.perf_counter()
            page.goto(f"{url}/?page=clusters", wait_until="domcontentloaded")
            page.wait_for_function(MAP_DRAWN, timeout=TIMEOUT_MS)
            out[name] = time.perf_counter() - started
        xs, ys = page.evaluate(POINTS)
        out["points"] = len(xs)
        order = sorted(range(len(xs)), key=xs.__getitem__)
        x, y = xs[order[len(order) // 2]], ys[order[len(order) // 2]]
        started = time.perf_counter()
        page.mouse.move(x, y)
        page.wait_for_function("() => { const i = document.querySelector('#lookalike-hover img');"
                               " return i && i.complete && i.naturalWidth > 0; }", timeout=TIMEOUT_MS)  # fmt: skip
        out["hover_s"] = time.perf_counter() - started
        cut = sorted(xs)[len(xs) // 4] + 0.5
        top, bottom, left = min(ys) - 5, max(ys) + 5, min(xs) - 5
        page.mouse.move(left, top)
        page.mouse.down()
        page.mouse.move(cut, bottom, steps=5)
        started = time.perf_counter()
        page.mouse.up()
        page.get_by_role("heading", name="Selected:").wait_for()
        out["selected"] = int(page.get_by_role("heading", name="Selected:").inner_text().split()[1].replace(",", ""))
        page.wait_for_function(IMAGES_LOADED, arg=min(24, out["selected"]), timeout=TIMEOUT_MS)
        out["selection_s"] = time.perf_counter() - started
        if out["selected"] <= 24:
            browser.close()
            return out
        first = page.locator("[data-testid=stMain] [data-testid=stImageCaption]").first.inner_text()
        started = time.perf_counter()
        page.get_by_role("button", name="Next ▶").first.click()
        page.wait_for_function(
            "(first) => { const c = document.querySelector('[data-testid=stMain] [data-testid=stImageCaption]');"
            " return c && c.innerText !== first; }", arg=first, timeout=TIMEOUT_MS,
        )  # fmt: skip
        page.wait_for_function(IMAGES_LOADED, arg=24, timeout=TIMEOUT_MS)
        out["grid_page_s"] = time.perf_counter() - started
        out.update(export_selection(page, scratch / "selection.csv"))
        started = time.perf_counter()
        page.get_by_role("button", name="Similar").first.click()
        page.get_by_text(" results for ").first.wait_for()
        page.wait_for_function(IMAGES_LOADED, arg=1, timeout=TIMEOUT_MS)
        out["similar_s"] = time.perf_counter() - started
        browser.close()
    return out


def export_selection(page: Any, csv_path: Path) -> dict[str, Any]:
    """Export the map selection's paths to ``csv_path`` from its action panel; time the run."""
    box = page.locator("[data-testid=stExpander]").filter(has_text="images selected on the map")
    box.locator("summary").evaluate("e => e.click()")
    box.get_by_role("button", name="Run").wait_for()
    field = box.locator("[data-testid=stTextInputField]")
    field.fill(str(csv_path))
    field.press("Enter")
    page.wait_for_timeout(1500)  # the rerun the text field starts
    box.get_by_text("Dry run (show what would happen").click()
    page.wait_for_timeout(1500)
    started = time.perf_counter()
    box.get_by_role("button", name="Run").click()
    box.locator("[data-testid=stAlertContentSuccess]").wait_for()
    elapsed = time.perf_counter() - started
    with open(csv_path) as handle:
        rows = sum(1 for _ in handle) - 1
    return {"export_s": elapsed, "exported": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--library", type=Path, default=None, help="A clustered library (default: build one).")
    parser.add_argument("--images", type=int, default=3000, help="Images of the library built without --library.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        library = args.library or build_library(Path(tmp), args.images)
        process, url = start_app(library)
        try:
            result = {"library": str(library), "python": platform.python_version(), "cpus": os.cpu_count(),
                      "load_before": os.getloadavg()[0], **measure(url, Path(tmp))}  # fmt: skip
            result["load_after"] = os.getloadavg()[0]
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    emit(result, args.out)


if __name__ == "__main__":
    main()

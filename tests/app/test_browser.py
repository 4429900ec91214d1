"""End to end in a real headless browser: `lookalike app` on a loopback port, driven by Playwright
with Debian's chromium (no browser downloads). Screenshots go to the test's tmp_path."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from lookalike.classify.train import train
from lookalike.config import ClusterConfig
from tests.app.app_runs import settle, watch
from tests.searchlib import build, class_image

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 90.0
UI_TIMEOUT_MS = 60_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason="needs Debian's chromium at /usr/bin/chromium "
        "(apt-get install chromium); Playwright's own browsers are never downloaded",
    ),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll Streamlit's health endpoint until it answers, the process dies, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited with code {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)  # polling interval of a bounded wait, not synchronisation
    raise AssertionError(f"the app did not answer on {url} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    """(URL, query image, file name of its expected nearest library image) of a running app."""
    tmp = tmp_path_factory.mktemp("browser")
    query = tmp / "query.png"
    class_image(1, 4242).save(query)  # a new green image, not in the library
    with build(tmp, per_class=8) as lib:
        lib.cluster(ClusterConfig(k_min=2, k_max=4))
        train(lib.store, "knn")
        nearest = Path(lib.search(query, 1).hits[0].path)
        expected = f"{nearest.parent.name}/{nearest.name}"
        folder = lib.folder
    with running_app(folder, tmp / "app.log") as url:
        yield url, query, expected


@contextmanager
def running_app(folder: Path, log_path: Path) -> Iterator[str]:
    """``lookalike app`` on ``folder`` in its own process group; yields its URL once healthy, and
    stops the whole group afterwards (SIGTERM, then SIGKILL after 20 s)."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "from lookalike.cli.main import main; main()", "app", "--library", str(folder),
             "--port", str(port), "--host", "127.0.0.1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process, START_TIMEOUT)
            yield url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)


@pytest.fixture
def page(served: tuple[str, Path, str]) -> Iterator[object]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1100})
            tab.set_default_timeout(UI_TIMEOUT_MS)
            watch(tab)
            tab.goto(served[0], wait_until="domcontentloaded")
            yield tab
        finally:
            browser.close()


def test_upload_shows_expected_nearest_image(served: tuple[str, Path, str], page: object, tmp_path: Path) -> None:
    _, query, expected = served
    page.get_by_text("Upload an image or pick one from the library").wait_for()
    page.locator("input[type=file]").first.set_input_files(str(query))
    first = page.get_by_text(f"#1 {expected}")
    first.wait_for()
    page.get_by_text("search time").wait_for()
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)
    assert page.locator("img").count() >= 2  # query preview plus the result grid
    assert expected.startswith("green/")  # the query is green: sanity of the expectation itself


FIRST_POINT_JS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, trace = gd._fullData[0];
  const box = gd.getBoundingClientRect();
  return [box.left + xa._offset + xa.l2p(trace.x[0]), box.top + ya._offset + ya.l2p(trace.y[0]), trace.text[0]];
}"""
"""Page coordinates of the scatter's first point and its hover text (the file name)."""


def open_page(page: object, name: str) -> None:
    page.get_by_text("Upload an image or pick one from the library").wait_for()
    settle(page, UI_TIMEOUT_MS / 1000)
    page.locator("[data-testid=stSidebar]").get_by_text(name, exact=True).click()
    page.get_by_role("heading", name=name).wait_for()
    settle(page, UI_TIMEOUT_MS / 1000)


def test_cluster_analysis_scatter_renders(page: object, tmp_path: Path) -> None:
    open_page(page, "Cluster Analysis")
    plot = page.locator(".js-plotly-plot").first
    plot.wait_for()
    page.locator(".js-plotly-plot .legend .traces").first.wait_for()
    page.screenshot(path=str(tmp_path / "clusters.png"), full_page=True)
    assert page.locator(".js-plotly-plot").first.locator("canvas").count() >= 1  # WebGL scatter
    assert page.locator(".js-plotly-plot").first.locator(".legend .traces").count() >= 2
    x, y, name = page.evaluate(FIRST_POINT_JS)
    page.mouse.move(x, y)
    page.locator(".js-plotly-plot .hoverlayer").get_by_text(name).wait_for()
    page.screenshot(path=str(tmp_path / "clusters-hover.png"))
    page.get_by_text("Recommended K").scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "clusters-evidence.png"))


@pytest.mark.parametrize(("name", "needle"), [
    ("Duplicates", "groups"),
    ("Classification", "Confusion matrix"),
], ids=["duplicates", "classification"])  # fmt: skip
def test_other_pages_render_without_errors(page: object, tmp_path: Path, name: str, needle: str) -> None:
    open_page(page, name)
    page.get_by_text(needle).first.wait_for()
    if name == "Duplicates":  # two groups of four, side by side: wait for their thumbnails to load
        page.locator("[data-testid=stMain] [data-testid=stImage] img").nth(7).wait_for()
    page.screenshot(path=str(tmp_path / f"{name.lower()}.png"))
    assert page.locator("[data-testid=stException]").count() == 0

"""The exploration flows end to end in Debian's Chromium: hover a point, select a region, page through a
cluster, "Similar", export, quarantine and undo, label. Every test also fails on a Streamlit exception
box or a browser console error; screenshots of every page go to the test's tmp_path."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Locator, Page, sync_playwright

from lookalike import Library
from lookalike.app.actions_panel import ACTIONS as ACTION_FIELDS
from lookalike.config import ClusterConfig
from tests.app.app_runs import rerun_scopes, settle, watch
from tests.app.test_browser import CHROMIUM, CHROMIUM_ARGS, running_app
from tests.searchlib import build

UI_TIMEOUT_MS = 120_000  # generous: the browser tests share a loaded machine
PER_CLASS = 30  # 90 images, clusters of ~30: more than one grid page (24)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL, library folder) of a running app on a clustered library of 90 images."""
    tmp = tmp_path_factory.mktemp("explore")
    with build(tmp, per_class=PER_CLASS) as lib:
        lib.cluster(ClusterConfig(n_clusters=3))
        folder = lib.folder
    with running_app(folder, tmp / "app.log") as url:
        yield url, folder


@pytest.fixture
def page(served: tuple[str, Path], request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Page]:
    """A browser tab; after the test, no console error and no Streamlit exception box may be left.
    When the test fails, what the page showed goes to the log (its text) and to tmp_path (a screenshot)."""
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1100})
            tab.set_default_timeout(UI_TIMEOUT_MS)
            watch(tab)
            tab.on(
                "console", lambda m: errors.append(f"{m.text} ({m.location.get('url')})") if m.type == "error" else None
            )
            tab.on("pageerror", lambda e: errors.append(str(e)))
            yield tab
            call = getattr(request.node, "report_call", None)
            if call is not None and call.failed:
                tab.screenshot(path=str(tmp_path / "failed.png"))
                print(f"--- the page at failure ({tab.url}) ---\n{tab.locator('body').inner_text()[:4000]}")
            assert tab.locator("[data-testid=stException]").count() == 0, "a Streamlit exception box is shown"
            assert [e for e in errors if not superseded_media(e)] == [], errors
        finally:
            browser.close()


def superseded_media(error: str) -> bool:
    """A 404 for one of Streamlit's media files: a rerun replaced the image while the tab was still
    fetching the old one (Streamlit drops a run's media when the next run replaces them)."""
    return "status of 404" in error and "/media/" in error


def open_url(page: Page, served: tuple[str, Path], slug: str, heading: str) -> None:
    """Open a page by its URL and wait until it has finished loading (as a user would, before clicking)."""
    page.goto(f"{served[0]}/?page={slug}", wait_until="domcontentloaded")
    page.get_by_role("heading", name=heading).wait_for()
    settled(page)


def settled(page: Page) -> None:
    settle(page, UI_TIMEOUT_MS / 1000)


def choose(page: Page, combobox: Locator, option: Locator) -> None:
    """Pick ``option`` in a select box. Scrolled into view first: the dropdown closes on any scroll,
    including the one a click makes to reach a box below the fold."""
    combobox.scroll_into_view_if_needed()
    settled(page)
    combobox.click()
    option.click()
    settled(page)


def shoot(page: Page, path: Path) -> None:
    """A screenshot of the whole page (Streamlit scrolls inside its main block: grow the viewport)."""
    height = int(page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight"))
    page.set_viewport_size({"width": 1400, "height": min(max(height + 50, 1100), 12000)})
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 1100})


POINTS_JS = """() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g.layout && g.layout.meta === 'lookalike-map');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  const out = [];
  gd._fullData.forEach(t => { for (let i = 0; i < t.x.length; i++) out.push(
    [box.left + xa._offset + xa.l2p(t.x[i]), box.top + ya._offset + ya.l2p(t.y[i]), Number(t.customdata[i])]); });
  return out;
}"""
"""Page coordinates (x, y) and image id of every point on the map."""


def map_points(page: Page) -> np.ndarray:
    page.locator(".js-plotly-plot").first.wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(g => g._fullData)")
    return np.array(page.evaluate(POINTS_JS), dtype=np.float64)


def first_files(folder: Path) -> dict[int, str]:
    with Library.open(folder, readonly=True) as lib:
        rows = lib.catalog.query("SELECT image_id, path FROM files WHERE image_id IS NOT NULL ORDER BY id DESC")
    return {int(i): str(p) for i, p in rows}


def short(path: str) -> str:
    return f"{Path(path).parent.name}/{Path(path).name}"


def members(folder: Path, cluster: int) -> list[tuple[int, float]]:
    """(image id, distance to the centre) of a cluster's members, nearest first."""
    with Library.open(folder, readonly=True) as lib:
        run = lib.cluster_run()
    mask = run.labels == cluster
    pairs = sorted(zip(run.image_ids[mask].tolist(), run.distances[mask].tolist()), key=lambda p: (p[1], p[0]))
    return pairs


def captions(page: Page) -> list[str]:
    return page.locator("[data-testid=stMain] [data-testid=stImageCaption]").all_inner_texts()


CAPTIONS_JS = """(names) => {
  const shown = [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImageCaption]')]
    .map(c => c.innerText.split(' · ')[0]);
  return shown.length === names.length && shown.every((n, i) => n === names[i]);
}"""


def wait_for_grid(page: Page, names: list[str]) -> None:
    """Wait until the grid shows exactly ``names`` (file names, in order)."""
    page.wait_for_function(CAPTIONS_JS, arg=names, timeout=UI_TIMEOUT_MS)


def act(page: Page, panel: str, action: str, target: str) -> None:
    """In the "Act on these files" panel whose title contains ``panel``: pick ``action``, type
    ``target``, turn the dry run off and run; wait for the result."""
    box = page.locator("[data-testid=stExpander]").filter(has_text=panel)
    settled(page)
    box.locator("summary").evaluate("e => e.click()")  # a DOM click: no overlay can intercept it
    box.get_by_role("button", name="Run").wait_for()
    if action != "Export a CSV of paths":
        choose(page, box.get_by_role("combobox"), page.get_by_role("option", name=action))
        box.get_by_text(ACTION_FIELDS[action]).wait_for()
    field = box.locator("[data-testid=stTextInputField]")
    field.fill(target)
    field.press("Enter")
    settled(page)
    box.get_by_text("Dry run (show what would happen").click()
    settled(page)
    box.get_by_role("button", name="Run").click()
    box.locator("[data-testid=stAlertContentSuccess]").wait_for()


# -- map ---------------------------------------------------------------------------------------
def test_hover_shows_the_points_thumbnail(served: tuple[str, Path], page: Page, tmp_path: Path) -> None:
    open_url(page, served, "clusters", "Cluster Analysis")
    points = map_points(page)
    gaps = np.linalg.norm(points[:, None, :2] - points[None, :, :2], axis=-1) + np.eye(len(points)) * 1e9
    x, y, image_id = points[int(np.argmax(gaps.min(axis=1)))]  # the most isolated point: no ambiguity
    page.mouse.move(x, y)
    preview = page.locator("#lookalike-hover img")
    preview.wait_for(state="visible")
    page.wait_for_function("() => { const i = document.querySelector('#lookalike-hover img');"
                           " return i && i.complete && i.naturalWidth > 0; }")  # fmt: skip
    assert preview.get_attribute("data-image-id") == str(int(image_id))
    assert preview.get_attribute("src").endswith(f"/t/{int(image_id)}.jpg")
    where = page.locator("#lookalike-hover").bounding_box()
    assert where is not None and abs(where["x"] - x) < 250 and abs(where["y"] - y) < 250  # beside the pointer
    page.screenshot(path=str(tmp_path / "map-hover.png"))
    page.mouse.move(5, 5)
    page.locator("#lookalike-hover").wait_for(state="hidden")


def test_box_selection_is_exactly_the_points_inside_and_exports(
    served: tuple[str, Path], page: Page, tmp_path: Path
) -> None:
    open_url(page, served, "clusters", "Cluster Analysis")
    points = map_points(page)
    xs = np.sort(points[:, 0])
    cut = (xs[len(xs) // 2] + xs[len(xs) // 2 + 1]) / 2  # between two points: no point on the edge
    top, bottom = points[:, 1].min() - 8, points[:, 1].max() + 8
    left = xs[0] - 8
    inside = (points[:, 0] > left) & (points[:, 0] < cut) & (points[:, 1] > top) & (points[:, 1] < bottom)
    expected = sorted(int(i) for i in points[inside, 2])
    page.mouse.move(left, top)
    page.mouse.down()
    page.mouse.move((left + cut) / 2, (top + bottom) / 2, steps=5)
    page.mouse.move(cut, bottom, steps=5)
    page.mouse.up()
    page.get_by_role("heading", name=f"Selected: {len(expected)} images").wait_for()
    files = first_files(served[1])
    shown = captions(page)[: min(24, len(expected))]
    assert {c.split(" · ")[0] for c in shown} <= {short(files[i]) for i in expected}
    shoot(page, tmp_path / "map-selection.png")
    out = tmp_path / "selection.csv"
    act(page, f"Act on these {len(expected)} files", "Export a CSV of paths", str(out))
    with open(out, newline="") as handle:
        exported = sorted(r["path"] for r in csv.DictReader(handle))
    assert exported == sorted(files[i] for i in expected)


# -- grids -------------------------------------------------------------------------------------
def test_cluster_pages_through_all_members_and_outliers(served: tuple[str, Path], page: Page, tmp_path: Path) -> None:
    open_url(page, served, "clusters", "Cluster Analysis")
    expected = members(served[1], 0)
    files = first_files(served[1])
    page.get_by_text(f"Cluster 0: {len(expected)} images").wait_for()
    names = [short(files[i]) for i, _ in expected]  # every member once, nearest the centre first
    pages = -(-len(expected) // 24)
    assert pages >= 2
    for number in range(1, pages + 1):
        page.get_by_text(f"page {number} of {pages}").wait_for()
        wait_for_grid(page, names[(number - 1) * 24 : number * 24])
        shoot(page, tmp_path / f"cluster-page-{number}.png")
        if number < pages:
            page.get_by_role("button", name="Next ▶").last.click()
            settled(page)
            assert rerun_scopes(page)[-1] != "", "turning a page reran the whole page (the map too)"
    page.get_by_role("button", name="Outliers first").click()
    settled(page)
    page.get_by_text(f"page 1 of {pages}").wait_for()
    wait_for_grid(page, names[::-1][:24])  # the farthest member first
    shoot(page, tmp_path / "cluster-outliers.png")


def test_similar_from_a_grid_runs_that_search(served: tuple[str, Path], page: Page, tmp_path: Path) -> None:
    open_url(page, served, "clusters", "Cluster Analysis")
    first = members(served[1], 0)[0][0]
    files = first_files(served[1])
    page.get_by_text(f"{short(files[first])} · ").first.wait_for()
    page.get_by_role("button", name="Similar").first.click()
    page.get_by_role("heading", name="Search", exact=True).wait_for()
    settled(page)
    page.get_by_text(f"8 results for {short(files[first])}").wait_for()
    with Library.open(served[1], readonly=True) as lib:
        hits = lib.search(first, 8).hits
    page.get_by_text(f"#1 {short(hits[0].path)} · dist ").wait_for()
    assert "page=search" in page.url
    shoot(page, tmp_path / "search-similar.png")


# -- actions -----------------------------------------------------------------------------------
def test_quarantine_a_cluster_then_undo_restores_the_bytes(
    served: tuple[str, Path], page: Page, tmp_path: Path
) -> None:
    folder = served[1]
    files = first_files(folder)
    cluster = members(folder, 2)
    before = {files[i]: Path(files[i]).read_bytes() for i, _ in cluster}
    open_url(page, served, "clusters", "Cluster Analysis")
    choose(
        page,
        page.get_by_role("combobox", name="Cluster", exact=True),
        page.get_by_role("option").filter(has_text="2: "),
    )
    page.get_by_text(f"Cluster 2: {len(cluster)} images").wait_for()
    jail = tmp_path / "quarantine"
    act(page, f"Act on these {len(cluster)} files (cluster 2", "Move into a quarantine folder (undo on the Actions page)",
        str(jail))  # fmt: skip
    assert not any(Path(p).exists() for p in before)
    assert sorted(p.name for p in jail.rglob("*.png")) == sorted(Path(p).name for p in before)
    shoot(page, tmp_path / "quarantined.png")
    page.locator("[data-testid=stSidebar]").get_by_text("Actions", exact=True).click()
    page.get_by_role("heading", name="Actions", exact=True).wait_for()
    settled(page)
    assert "page=actions" in page.url
    page.get_by_role("button", name="Undo").first.click()
    page.get_by_text("Undid action").wait_for()
    assert {p: Path(p).read_bytes() for p in before} == before
    shoot(page, tmp_path / "actions-undone.png")


def test_label_a_cluster_shows_in_the_catalog(served: tuple[str, Path], page: Page, tmp_path: Path) -> None:
    folder = served[1]
    files = first_files(folder)
    cluster = members(folder, 0)
    open_url(page, served, "clusters", "Cluster Analysis")
    page.get_by_text(f"Cluster 0: {len(cluster)} images").wait_for()
    act(page, f"Act on these {len(cluster)} files (cluster 0", "Set a label", "checked")
    with Library.open(folder, readonly=True) as lib:
        labelled = {str(p) for (p,) in lib.catalog.query("SELECT path FROM files WHERE label = 'checked'")}
    assert labelled == {files[i] for i, _ in cluster}
    shoot(page, tmp_path / "labelled.png")


# -- every page --------------------------------------------------------------------------------
@pytest.mark.parametrize(("slug", "heading"), [
    ("search", "Search"), ("clusters", "Cluster Analysis"), ("duplicates", "Duplicates"),
    ("classification", "Classification"), ("actions", "Actions"),
], ids=["search", "clusters", "duplicates", "classification", "actions"])  # fmt: skip
def test_every_page_reloads_from_its_url(
    served: tuple[str, Path], page: Page, tmp_path: Path, slug: str, heading: str
) -> None:
    open_url(page, served, slug, heading)
    page.reload(wait_until="domcontentloaded")
    page.get_by_role("heading", name=heading).wait_for()
    assert f"page={slug}" in page.url
    assert page.get_by_role("button", name="Deploy").count() == 0
    page.wait_for_timeout(1500)  # let late elements (images, charts) render before the screenshot
    shoot(page, tmp_path / f"page-{slug}.png")

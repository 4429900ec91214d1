"""Every page of the web app under Streamlit's AppTest, on small libraries made in the test."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lookalike import Library
from lookalike.config import DUPLICATE_NEAR_BITS, ClusterConfig, ReduceConfig
from tests.searchlib import build, class_image, write_labelled

MAIN = Path(__file__).resolve().parents[2] / "src" / "lookalike" / "app" / "main.py"
TIMEOUT = 60


@pytest.fixture(scope="module")
def full_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labelled, clustered (K swept) and with a trained kNN classifier."""
    from lookalike.classify.train import train

    tmp = tmp_path_factory.mktemp("full")
    with build(tmp, per_class=10) as lib:
        lib.cluster(ClusterConfig(k_min=2, k_max=5))
        train(lib.store, "knn")
        with lib.catalog.transaction() as db:  # a label the classifier will disagree with
            db.execute("UPDATE files SET label = 'blue' WHERE path LIKE ?", ("%/red/img-0003.png",))
        return lib.folder


@pytest.fixture
def bare_library(tmp_path: Path) -> Path:
    """Embedded and reduced, but unlabelled, never clustered, no classifier; one file is skipped."""
    write_labelled(tmp_path / "photos", per_class=4)
    (tmp_path / "photos" / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    with Library.create(tmp_path / "lib.lookalike", backbone="pixels") as lib:
        lib.add([tmp_path / "photos"])
        lib.reduce(ReduceConfig(n_components=8))
        return lib.folder


def run_page(library: Path, page: str, **state: object) -> AppTest:
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.session_state["library"] = str(library)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if at.sidebar.radio(key="page").value != page:
        at.sidebar.radio(key="page").set_value(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def n_points(trace: dict) -> int:
    """Points in a serialised Plotly trace (numpy arrays are sent as typed binary: dtype, bdata, shape)."""
    xs = trace["x"]
    if isinstance(xs, dict):
        return (
            int(np.prod([int(s) for s in str(xs["shape"]).split(",")]))
            if "shape" in xs
            else len(base64.b64decode(xs["bdata"])) // np.dtype(xs["dtype"]).itemsize
        )
    return len(xs)


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    parts += [w.value for w in at.warning] + [i.value for i in at.info] + [c.value for c in at.code]
    parts += [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


def test_sidebar_shows_count_and_backbone(full_library: Path) -> None:
    at = run_page(full_library, "Search")
    assert [m.value for m in at.sidebar.metric] == ["30"]
    assert "pixels" in "\n".join(c.value for c in at.sidebar.caption)
    assert "No skipped files." in "\n".join(c.value for c in at.sidebar.caption)


def test_search_by_library_image_matches_library_search(full_library: Path) -> None:
    at = run_page(full_library, "Search", search_source="Pick from the library", search_k=5)
    picked = at.selectbox(key="search_pick").value
    table = at.dataframe[0].value
    with Library.open(full_library, readonly=True) as lib:
        (image_id,) = [i for i, p in lib.catalog.query("SELECT image_id, path FROM files") if p == picked]
        expected = lib.search(image_id, 5)
    assert table["path"].tolist() == [h.path for h in expected.hits]
    assert np.allclose(table["similarity"], [h.similarity for h in expected.hits])
    assert "search time" in texts(at)


def assert_search_page_matches(library: Path, choice: str, **options: object) -> None:
    """The Search page with Re-ranking ``choice`` lists what ``Library.search(..., **options)`` finds."""
    at = run_page(library, "Search", search_source="Pick from the library", search_k=5, search_rerank=choice)
    picked = at.selectbox(key="search_pick").value
    table = at.dataframe[0].value
    with Library.open(library, readonly=True) as lib:
        (image_id,) = [i for i, p in lib.catalog.query("SELECT image_id, path FROM files") if p == picked]
        expected = lib.search(image_id, 5, **options)
    assert table["path"].tolist() == [h.path for h in expected.hits]


@pytest.mark.parametrize("method", ["dba", "kreciprocal"])
def test_search_page_reranks_like_the_library(full_library: Path, method: str) -> None:
    assert_search_page_matches(full_library, method, rerank=method)


def png_bytes(label: int, seed: int) -> bytes:
    buffer = io.BytesIO()
    class_image(label, seed).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(at: AppTest, key: str, name: str, data: bytes) -> AppTest:
    at.file_uploader(key=key).upload(name, data, "image/png").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_search_by_upload_matches_library_search(full_library: Path) -> None:
    data = png_bytes(2, 777)  # a new blue image
    at = upload(run_page(full_library, "Search", search_k=4), "search_upload", "query.png", data)
    with Library.open(full_library, readonly=True) as lib:
        expected = lib.search(data, 4)
    assert at.dataframe[0].value["path"].tolist() == [h.path for h in expected.hits]
    assert all(h.label == "blue" for h in expected.hits[:2])
    grid = [c for image in at.get("image") for c in image.captions if c.startswith("#")]
    top = Path(expected.hits[0].path)
    assert len(grid) == 4 and grid[0].startswith(f"#1 {top.parent.name}/{top.name} · dist ")


def test_unreadable_upload_is_a_clear_message(full_library: Path) -> None:
    at = upload(run_page(full_library, "Search"), "search_upload", "broken.png", b"\x89PNG\r\n\x1a\nnot really")
    assert "Cannot read 'broken.png' as an image: " in at.error[0].value
    assert not at.dataframe


def test_classification_predicts_an_upload(full_library: Path) -> None:
    at = upload(run_page(full_library, "Classification"), "classify_upload", "new.png", png_bytes(0, 555))
    top = at.dataframe[-1].value
    assert top["class"].iloc[0] == "red"
    assert "new.png: **red**" in at.success[0].value


def test_search_inside_cluster_uses_ivf(full_library: Path) -> None:
    at = run_page(full_library, "Search", search_source="Pick from the library", search_in_cluster=True)
    assert "index ivf" in texts(at)
    assert len(at.dataframe[0].value) >= 1


def test_cluster_page_scatter_gallery_and_evidence(full_library: Path) -> None:
    at = run_page(full_library, "Cluster Analysis")
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # scatter, elbow, silhouette
    import json

    scatter = json.loads(charts[0].proto.spec)
    assert {t["type"] for t in scatter["data"]} == {"scattergl"}
    assert sum(n_points(t) for t in scatter["data"]) == 30
    with Library.open(full_library, readonly=True) as lib:
        run = lib.cluster_run()
    assert [t["name"] for t in scatter["data"]] == [f"{c.cluster}: {c.name}" for c in run.clusters]
    assert [n_points(t) for t in scatter["data"]] == [c.size for c in run.clusters]
    summary = at.dataframe[0].value
    assert summary["size"].sum() == 30
    assert "Recommended K" in texts(at)
    projections = list((full_library / "projections").glob("pca-2d-*.npz"))
    assert len(projections) == 1


def test_cluster_page_3d_by_label(full_library: Path) -> None:
    at = run_page(full_library, "Cluster Analysis", cluster_dims="3D", cluster_colour="label")
    import json

    scatter = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {t["type"] for t in scatter["data"]} == {"scatter3d"}
    assert sorted(t["name"] for t in scatter["data"]) == ["blue", "green", "red"]


def test_duplicates_page_lists_groups_with_reasons(full_library: Path) -> None:
    at = run_page(full_library, "Duplicates", dup_sim=0.80)
    with Library.open(full_library, readonly=True) as lib:
        groups = lib.duplicates(near_bits=DUPLICATE_NEAR_BITS, min_similarity=0.80)
    assert groups, "the seeded library should have near duplicates at these settings"
    assert f"{len(groups)} groups" in texts(at)
    assert groups[0].links[0].reason in texts(at)


def test_duplicates_page_can_leave_out_the_weaker_links(full_library: Path) -> None:
    shown = {}
    for use_weak in (True, False):
        at = run_page(full_library, "Duplicates", dup_sim=0.95, dup_use_weak=use_weak)
        shown[use_weak] = next(c.value for c in at.caption if c.value.endswith(" files"))
    with Library.open(full_library, readonly=True) as lib:
        every = lib.duplicates(near_bits=DUPLICATE_NEAR_BITS, min_similarity=0.95)
        strong = lib.duplicates(near_bits=DUPLICATE_NEAR_BITS, min_similarity=0.95, confirm_bits=None, dhash_bits=None)
    assert shown[True] != shown[False], "the seeded library needs weaker links that add files"
    for use_weak, groups in ((True, every), (False, strong)):
        assert shown[use_weak] == f"{len(groups)} groups, {sum(len(g.paths) for g in groups)} files"


def test_classification_page_metrics_and_confusion(full_library: Path) -> None:
    at = run_page(full_library, "Classification")
    from lookalike.classify.train import model_info

    with Library.open(full_library, readonly=True) as lib:
        validation = model_info(lib.store, "knn")["report"]["validation"]
    assert at.metric[0].value == f"{validation['accuracy']:.3f}"
    assert len(at.get("plotly_chart")) == 1
    assert "1 of 30 labelled images get another class" in texts(at)
    captions = [c for image in at.get("image") for c in image.captions]
    assert "red/img-0003.png: label blue, predicted red" in captions


@pytest.mark.parametrize(("page", "needle"), [
    ("Cluster Analysis", "lookalike cluster --library"),
    ("Classification", "lookalike classify train --library"),
], ids=["no-clusters", "no-classifier"])  # fmt: skip
def test_missing_stage_names_the_command(bare_library: Path, page: str, needle: str) -> None:
    at = run_page(bare_library, page)
    assert needle in texts(at)
    assert not at.exception


def test_sidebar_lists_skipped_files_with_reasons(bare_library: Path) -> None:
    at = run_page(bare_library, "Search")
    with Library.open(bare_library, readonly=True) as lib:
        status = lib.status()
    assert status.skipped_files == 1
    assert at.sidebar.expander[0].label == "Skipped files: 1"
    shown = "\n".join(c.value for c in at.sidebar.caption) + "\n".join(m.value for m in at.sidebar.markdown)
    assert "broken.png: " in shown
    assert status.skipped_by_reason[0][0] in shown


def test_missing_library_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.session_state["library"] = str(tmp_path / "nowhere")
    at.run()
    assert not at.exception
    assert "no library here" in at.error[0].value


def test_app_writes_only_projections_and_thumbnails_until_an_action(full_library: Path) -> None:
    def snapshot() -> dict[str, int]:
        return {
            str(p.relative_to(full_library)): p.stat().st_mtime_ns
            for p in full_library.rglob("*")
            if p.is_file() and not {"projections", "thumbnails"} & set(p.parts) and not p.name.endswith(("-wal", "-shm"))
        }

    before = snapshot()
    for page in ("Search", "Cluster Analysis", "Duplicates", "Classification", "Actions"):
        run_page(full_library, page)
    assert snapshot() == before
    assert list((full_library / "thumbnails").rglob("*.jpg"))  # cached on disk, by content hash


def test_selected_ids_reads_plotly_selection_events() -> None:
    from lookalike.app.charts import selected_ids

    event = {"selection": {"points": [{"customdata": 7}, {"customdata": [3]}, {"x": 1.0}]}}
    assert selected_ids(event) == [7, 3]
    assert selected_ids({"selection": {"points": []}}) == []
    assert selected_ids(None) == []


# -- exploration: names, URL, grids, "Similar", filters, rename -------------------------------------
def test_metrics_have_human_names(full_library: Path) -> None:
    at = run_page(full_library, "Cluster Analysis")
    labels = [m.label for m in at.metric]
    assert "Davies–Bouldin" in labels and "Points" in labels and "Calinski–Harabasz" in labels
    assert not [label for label in labels if "_" in label]


def test_page_is_in_the_url_and_read_back(full_library: Path) -> None:
    at = run_page(full_library, "Cluster Analysis")
    assert at.query_params["page"] in ("clusters", ["clusters"])
    fresh = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    fresh.session_state["library"] = str(full_library)
    fresh.query_params["page"] = "duplicates"
    fresh.run()
    assert fresh.sidebar.radio(key="page").value == "Duplicates" and fresh.header[0].value == "Duplicates"


def test_cluster_grid_lists_members_nearest_first_and_similar_searches(full_library: Path) -> None:
    at = run_page(full_library, "Cluster Analysis")
    with Library.open(full_library, readonly=True) as lib:
        run = lib.cluster_run()
        files = {i: p for i, p, *_ in lib.catalog.query("SELECT image_id, path FROM files ORDER BY id DESC")}
    mask = run.labels == run.clusters[0].cluster
    order = sorted(zip(run.distances[mask], run.image_ids[mask]))
    expected = [f"{Path(files[i]).parent.name}/{Path(files[i]).name}" for _, i in order]
    shown = [c.split(" · ")[0] for image in at.get("image") for c in image.captions]
    assert shown[: len(expected)] == expected
    similar = [b for b in at.button if b.label == "Similar"][0]
    similar.click().run()
    assert at.sidebar.radio(key="page").value == "Search"
    first = order[0][1]
    with Library.open(full_library, readonly=True) as lib:
        hits = lib.search(int(first), 8).hits
    assert at.dataframe[0].value["path"].tolist() == [h.path for h in hits]


def test_search_filters_by_label(full_library: Path) -> None:
    at = run_page(full_library, "Search", search_source="Pick from the library", search_f_label="green", search_k=20)
    table = at.dataframe[0].value
    assert len(table) >= 1 and set(table["label"]) == {"green"}


def test_rename_in_the_app_is_stored_and_logged(tmp_path: Path) -> None:
    with build(tmp_path, per_class=4) as lib:
        lib.cluster(ClusterConfig(n_clusters=3))
        folder = lib.folder
    at = run_page(folder, "Cluster Analysis")
    at.text_input(key="rename_1_0").set_value("my picks")
    at.button(key="rename_1_0_go").click().run()
    assert not at.exception
    with Library.open(folder, readonly=True) as lib:
        assert lib.cluster_run().clusters[0].name == "my picks"
        from lookalike.store.annotations import read_actions

        assert [a.kind for a in read_actions(lib.catalog)] == ["rename"]
    assert "my picks" in texts(at)


def test_palette_never_repeats_and_noise_is_grey() -> None:
    from lookalike.app.charts import NOISE_COLOUR, group_colour, palette

    colours = [palette(i) for i in range(2000)]
    assert len(set(colours)) == 2000 and NOISE_COLOUR not in colours
    assert group_colour("-1: noise", 0) == NOISE_COLOUR
    assert group_colour("10: shoes", 0) == palette(10) != group_colour("0: shirts", 10)


def test_duplicates_keep_this_one_marks_the_others_for_actions(full_library: Path) -> None:
    at = run_page(full_library, "Duplicates", dup_sim=0.80)
    with Library.open(full_library, readonly=True) as lib:
        groups = lib.duplicates(near_bits=DUPLICATE_NEAR_BITS, min_similarity=0.80)
    total = sum(len(g.paths) for g in groups)
    assert [e.label for e in at.expander if e.label.startswith("Act on")] == [
        f"Act on these {total - len(groups):,} files (all but one file of {len(groups)} duplicate groups)"
    ]
    second = groups[0].paths[1]
    at.button(key=f"dup_keep_btn_0_{second}").click().run()
    assert at.session_state["dup_keep_0"] == second
    assert "✅ **kept**" in [m.value for m in at.markdown]
    from lookalike.actions.selection import all_but_one

    kept = all_but_one(groups, {0: second})
    assert groups[0].paths[0] in kept.paths and second not in kept.paths


def test_search_page_orders_by_the_learned_projection_like_the_library(full_library: Path, tmp_path: Path) -> None:
    import shutil

    library = tmp_path / "projected.lookalike"
    shutil.copytree(full_library, library, ignore=shutil.ignore_patterns(".lock"))
    with Library.open(library) as lib:
        lib.learn_projection("lda")
    assert_search_page_matches(library, "learned projection", projected=True)

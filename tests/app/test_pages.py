"""Every page of the web app under Streamlit's AppTest, on small libraries made in the test."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
from streamlit.testing.v1 import AppTest  # noqa: E402

from lookalike import Library  # noqa: E402
from lookalike.config import ClusterConfig  # noqa: E402
from tests.searchlib import build, class_image  # noqa: E402

MAIN = Path(__file__).resolve().parents[2] / "src" / "lookalike" / "app" / "main.py"
TIMEOUT = 60


@pytest.fixture(scope="module")
def full_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labelled, clustered (K swept) and with a trained kNN classifier."""
    from lookalike.classifying import train

    tmp = tmp_path_factory.mktemp("full")
    with build(tmp, per_class=10) as lib:
        lib.cluster(ClusterConfig(k_min=2, k_max=5))
        train(lib, "knn")
        return lib.folder


@pytest.fixture
def bare_library(tmp_path: Path) -> Path:
    """Embedded and reduced, but unlabelled, never clustered, no classifier."""
    with build(tmp_path, per_class=4, labels="none", dims=8) as lib:
        return lib.folder


class FakeUpload:
    """What AppTest's file uploader needs; newer Streamlit versions take bytes directly."""


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
        return int(np.prod([int(s) for s in str(xs["shape"]).split(",")])) if "shape" in xs else len(
            base64.b64decode(xs["bdata"])) // np.dtype(xs["dtype"]).itemsize
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
        groups = lib.duplicates(near_bits=8, min_similarity=0.80)
    assert groups, "the seeded library should have near duplicates at these settings"
    assert f"{len(groups)} groups" in texts(at)
    assert groups[0].links[0].reason in texts(at)


def test_classification_page_metrics_and_confusion(full_library: Path) -> None:
    at = run_page(full_library, "Classification")
    from lookalike.classifying import model_info

    with Library.open(full_library, readonly=True) as lib:
        validation = model_info(lib, "knn")["report"]["validation"]
    assert at.metric[0].value == f"{validation['accuracy']:.3f}"
    assert len(at.get("plotly_chart")) == 1


@pytest.mark.parametrize(("page", "needle"), [
    ("Cluster Analysis", "lookalike cluster --library"),
    ("Classification", "lookalike classify train --library"),
], ids=["no-clusters", "no-classifier"])  # fmt: skip
def test_missing_stage_names_the_command(bare_library: Path, page: str, needle: str) -> None:
    at = run_page(bare_library, page)
    assert needle in texts(at)
    assert not at.exception


def test_missing_library_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.session_state["library"] = str(tmp_path / "nowhere")
    at.run()
    assert not at.exception
    assert "no library here" in at.error[0].value


def test_app_does_not_write_to_the_library_except_projections(full_library: Path) -> None:
    def snapshot() -> dict[str, int]:
        return {str(p.relative_to(full_library)): p.stat().st_mtime_ns for p in full_library.rglob("*")
                if p.is_file() and "projections" not in p.parts and not p.name.endswith(("-wal", "-shm"))}

    before = snapshot()
    for page in ("Search", "Cluster Analysis", "Duplicates", "Classification"):
        run_page(full_library, page)
    assert snapshot() == before

"""``lookalike reduce``, ``cluster`` and ``clusters``: output, exit codes and one-line errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lookalike.cli.main import app
from lookalike.config import ReduceConfig
from tests.cluster.colour_library import build_library, copy_library, write_colour_classes

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-colours")
    write_colour_classes(root / "photos", 10)
    with build_library(root / "base.lookalike", root / "photos") as lib:
        lib.reduce(ReduceConfig(n_components=12))
    return root / "base.lookalike"


@pytest.fixture
def lib(base, tmp_path):
    copy_library(base, tmp_path / "lib.lookalike").close()
    return tmp_path / "lib.lookalike"


@pytest.mark.parametrize("command", ["reduce", "cluster", "clusters"])
def test_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "--library" in result.output and "Traceback" not in result.output


def test_cluster_auto_prints_evidence_quality_and_named_clusters(lib):
    result = run("cluster", "--library", lib, "--k-max", "6", "--no-progress")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "run 1: kmeans K=3 on 30 images → 3 clusters, 0 noise" in text
    assert "recommended K = 3: elbow at 3; silhouette peak at 3" in text
    assert "silhouette on a sample of 30 images" in text
    assert "Davies–Bouldin" in text and "Calinski–Harabasz" in text
    assert "NMI 1.000 · ARI 1.000 · homogeneity 1.000 · completeness 1.000 · purity 1.000" in text
    for name in ("red (100%)", "green (100%)", "blue (100%)"):
        assert name in text
    assert "red/red-" in text  # representative files


def test_clusters_lists_runs_shows_one_and_flags_stale_after_refit(lib):
    assert run("cluster", "-l", lib, "--k", "3", "--no-progress").exit_code == 0
    assert run("cluster", "-l", lib, "--method", "agglomerative", "--k", "3", "--no-progress").exit_code == 0
    listing = run("clusters", "-l", lib)
    assert listing.exit_code == 0, listing.output
    assert "kmeans" in listing.output and "agglomerative" in listing.output and "stale" not in listing.output
    refused = run("reduce", "-l", lib, "--components", "4")
    assert refused.exit_code == 1 and "--refit" in refused.output
    refit = run("reduce", "-l", lib, "--components", "4", "--refit")
    assert refit.exit_code == 0, refit.output
    assert "→ 4 dimensions" in refit.output and "run(s) built on another PCA are stale: 1, 2" in refit.output
    shown = run("clusters", "-l", lib, "--run", "1")
    assert shown.exit_code == 0 and "stale:" in shown.output and "run 1: kmeans K=3" in shown.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cluster", "--k", "1"], "--k must be 'auto' or an integer >= 2, got '1'"),
        (["cluster", "--k", "lots"], "--k must be 'auto' or an integer >= 2"),
        (["cluster", "--k", "31"], "K=31 is larger than the number of images"),
        (["cluster", "--k-min", "40", "--k-max", "50"], "K can be at most 29"),
        (["cluster", "--method", "spectral"], "method must be one of"),
        (["cluster", "--method", "dbscan", "--k", "3"], "--k does not apply to dbscan"),
        (["cluster", "--method", "agglomerative", "--linkage", "single"], "unknown linkage"),
        (["clusters", "--run", "7"], "no clustering runs yet"),
        (["reduce", "--components", "lots"], "--components must be an integer"),
        (["reduce", "--components", "1.5"], "n_components must be an int >= 1 or a float in (0, 1)"),
    ],
    ids=["k-1", "k-word", "k-above-n", "auto-range", "method", "k-with-dbscan", "linkage", "no-runs",
         "components-word", "components-fraction"],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_1(lib, args, message):
    extra = ["--no-progress"] if args[0] == "cluster" else []
    result = run(*args, "--library", lib, *extra)
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output and result.output.count("error:") == 1


def test_missing_and_empty_libraries(tmp_path):
    missing = run("cluster", "--library", tmp_path / "nope.lookalike", "--no-progress")
    assert missing.exit_code == 1 and "no library here" in missing.output
    (tmp_path / "p").mkdir()
    assert run("index", tmp_path / "p", "--library", tmp_path / "e.lookalike", "--backbone", "pixels",
               "--no-progress").exit_code == 0  # fmt: skip
    empty = run("cluster", "--library", tmp_path / "e.lookalike", "--no-progress")
    assert empty.exit_code == 1 and "has no embedded images" in empty.output
    assert "no clustering runs" in run("clusters", "--library", tmp_path / "e.lookalike").output


def test_cluster_in_the_learned_projection_says_so_and_needs_one(lib):
    missing = run("cluster", "--library", lib, "--k", "3", "--space", "projected", "--no-progress")
    assert missing.exit_code == 1 and "learn-projection" in missing.output
    learned = run("learn-projection", "--library", lib, "--method", "lda")
    assert learned.exit_code == 0, learned.output
    result = run("cluster", "--library", lib, "--k", "3", "--space", "projected", "--no-progress")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "space: the learned label projection" in text and "NMI 1.000" in text

"""``lookalike search``, ``duplicates``, ``evaluate retrieval`` and ``serve``: exit codes, tables,
messages, and the retrieval report checked against brute-force numpy."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pytest
from typer.testing import CliRunner

from lookalike.cli.main import app
from lookalike.cli.search import parse_query
from lookalike.store.labels import image_labels
from tests.searchlib import build, class_image, image_id_of

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture
def library(tmp_path):
    with build(tmp_path) as lib:
        folder = lib.folder
    return folder


def test_search_prints_a_ranked_table(library, tmp_path):
    query = sorted((tmp_path / "photos" / "blue").iterdir())[0]
    result = run("search", query, "--library", library, "-k", "3")
    assert result.exit_code == 0, result.output
    header = next(line.split() for line in result.output.splitlines() if line.split()[:1] == ["rank"])
    assert header == ["rank", "file", "distance", "similarity", "confidence", "cluster", "probability", "label"]
    rows = [line.split() for line in result.output.splitlines() if len(line.split()) == 8 and line.split()[0].isdigit()]
    assert [r[0] for r in rows] == ["1", "2", "3"] and all(r[-1] == "blue" for r in rows)
    assert not any(r[1].endswith(f"blue/{query.name}") for r in rows)  # the query itself is left out
    assert "3 results for" in result.output and "left out" in result.output


def test_search_by_id_with_filters_and_json(library, tmp_path):
    with_self = run("search", "id:1", "--library", library, "-k", "2", "--include-self", "--json")
    assert with_self.exit_code == 0, with_self.output
    body = json.loads(with_self.output)
    assert body["hits"][0]["image_id"] == 1 and body["query_images"] == [1]
    filtered = json.loads(run("search", "1", "--library", library, "-k", "50", "--label", "red", "--json").output)
    assert len(filtered["hits"]) == 12 and {h["label"] for h in filtered["hits"]} == {"red"}
    new = tmp_path / "new.png"
    class_image(0, 4242).save(new)
    outside = json.loads(run("search", new, "--library", library, "-k", "3", "--kind", "hnsw", "--json").output)
    assert outside["kind"] == "hnsw" and {h["label"] for h in outside["hits"]} == {"red"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.png"], "file not found"),
        (["id:424242"], "is not an embedded image"),
        (["id:1", "--label", "purple"], "labels: blue, green, red"),
        (["id:1", "--nprobe", "3", "--kind", "exact"], "nprobe"),
        (["id:1", "--kind", "magic"], "index kind must be one of"),
    ],
    ids=["missing-file", "unknown-id", "unknown-label", "nprobe-on-exact", "unknown-kind"],
)
def test_search_errors_are_one_line_exit_1(library, args, message):
    result = run("search", *args, "--library", library)
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_parse_query_tells_ids_from_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "12").write_bytes(b"")
    assert parse_query("id:12") == 12 and parse_query("7") == 7
    assert str(parse_query("12")) == "12" and str(parse_query("a.jpg")) == "a.jpg"


def test_duplicates_lists_groups_with_reasons(library, tmp_path):
    original = sorted((tmp_path / "photos" / "green").iterdir())[0]
    shutil.copy(original, tmp_path / "photos" / "green" / "again.png")
    assert run("index", "--library", library, "--no-progress").exit_code == 0
    result = run("duplicates", "--library", library, "--no-semantic")
    assert result.exit_code == 0, result.output
    assert "group 1" in result.output and "again.png" in result.output and "exact: identical content" in result.output
    groups = json.loads(run("duplicates", "--library", library, "--min-similarity", "0.9", "--json").output)
    assert any("again.png" in " ".join(g["paths"]) for g in groups)
    assert {link["kind"] for g in groups for link in g["links"]} <= {"exact", "near", "semantic", "near+semantic"}


def test_evaluate_retrieval_matches_brute_force(library):
    result = run("evaluate", "retrieval", "--library", library, "-k", "5", "--file-queries", "2")
    assert result.exit_code == 0, result.output
    assert "precision@5" in result.output and "query from a file" in result.output
    report = json.loads((library / "reports" / "retrieval.json").read_text())
    from lookalike import Library

    with Library.open(library, readonly=True) as lib:
        reduced, labels = lib.reduced(), image_labels(lib.catalog).labels
    ids, X = np.asarray(reduced.ids), np.asarray(reduced.vectors, dtype=np.float64)
    sims = X @ X.T
    np.fill_diagonal(sims, -np.inf)
    top = ids[np.argsort(-sims, axis=1, kind="stable")[:, :5]]
    counts = Counter(labels.values())
    hits = np.array([[labels[int(j)] == labels[int(i)] for j in row] for i, row in zip(ids, top)])
    relevant = np.array([counts[labels[int(i)]] - 1 for i in ids])
    precision_at_j = np.cumsum(hits, axis=1) / np.arange(1, 6)
    expected = {
        "precision_at_k": hits.mean(),
        "recall_at_k": (hits.sum(axis=1) / relevant).mean(),
        "map_at_k": ((precision_at_j * hits).sum(axis=1) / np.minimum(5, relevant)).mean(),
    }
    for kind in ("exact", "ivf", "hnsw"):
        entry = report["kinds"][kind]
        for name, value in expected.items():
            assert entry[name] == pytest.approx(value, abs=1e-4), (kind, name)
        assert entry["latency"]["p50_ms"] > 0
    assert report["kinds"]["hnsw"]["recall_vs_exact"] == pytest.approx(1.0)
    assert report["query_from_file"]["files"] == 2


def test_evaluate_needs_labels_and_is_a_group(tmp_path):
    with build(tmp_path, labels="none") as lib:
        folder = lib.folder
    result = run("evaluate", "retrieval", "--library", folder)
    assert result.exit_code == 1 and "needs images with at least 2 labels" in result.output
    assert "retrieval" in run("evaluate", "--help").output


def test_serve_refuses_a_missing_library(tmp_path):
    result = run("serve", "--library", tmp_path / "none.lookalike", "--port", "1")
    assert result.exit_code == 1 and "no library here" in result.output


def test_search_reads_a_library_another_process_is_writing(library, tmp_path):
    from lookalike import Library

    query = sorted((tmp_path / "photos" / "red").iterdir())[2]
    with Library.open(library) as writer:  # holds the writer lock
        expected = [h.image_id for h in writer.search(query, k=4).hits]
        result = run("search", query, "--library", library, "-k", "4", "--json")
        assert image_id_of(writer, query) not in expected
    assert result.exit_code == 0, result.output
    assert [h["image_id"] for h in json.loads(result.output.split("\n", 1)[1])["hits"]] == expected


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--near-bits", "64", "[0, 64)"), ("--near-bits", "-1", "[0, 64)"),
     ("--min-similarity", "1.5", "[-1, 1]"), ("--min-similarity", "-1.01", "[-1, 1]"),
     ("--min-similarity", "nan", "[-1, 1]"), ("--confirm-bits", "64", "[0, 64)"),
     ("--confirm-similarity", "1.5", "[-1, 1]"), ("--confirm-similarity", "nan", "[-1, 1]"),
     ("--dhash-bits", "64", "[0, 64)")],
)
def test_duplicate_thresholds_out_of_range_are_one_line_errors(library, option, value, message):
    result = run("duplicates", "--library", library, option, value)
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_duplicate_thresholds_at_their_limits_are_accepted(library):
    from lookalike import Library

    with Library.open(library) as lib:
        all_images = {p for g in lib.duplicates(near_bits=63, exact=False, min_similarity=None) for p in g.paths}
        assert len(all_images) == 36  # 63 of 64 bits: every picture near every other
        strict = {"near_bits": 0, "min_similarity": 1.0, "exact": False, "dhash_bits": None}
        assert lib.duplicates(**strict, confirm_bits=None) == []  # no two alike
        assert lib.duplicates(**strict, confirm_bits=0, confirm_similarity=1.0) == []
        assert len({p for g in lib.duplicates(near_bits=None, min_similarity=-1.0, exact=False) for p in g.paths}) == 36

"""The layout's rules that a linter does not check: SQL only in store/, one file -> vector path,
one ClusterRun, one leave-one-out scorer, and a CLI that fails loudly without a command module."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from lookalike.evaluate.metrics import evaluate_retrieval, leave_one_out_hits
from lookalike.index.flat import ExactIndex
from lookalike.report.retrieval import retrieval_scores
from tests.searchlib import CLASSES, build, class_image

SRC = Path(__file__).resolve().parents[1] / "src" / "lookalike"
SQL = re.compile(r"""["'](SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|WITH)\s""")


def test_sql_lives_only_in_the_store_package():
    offenders = [
        f"{path.relative_to(SRC)}:{n}"
        for path in SRC.rglob("*.py") if "store" not in path.relative_to(SRC).parts[:1]
        for n, line in enumerate(path.read_text().splitlines(), 1) if SQL.search(line)
    ]  # fmt: skip
    assert offenders == []


def test_a_missing_command_module_fails_loudly(monkeypatch):
    from lookalike.cli import main

    monkeypatch.setattr(main, "COMMAND_MODULES", (*main.COMMAND_MODULES, "lookalike.cli.no_such_module"))
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        main._mount_commands()


@pytest.fixture()
def lib(tmp_path):
    with build(tmp_path) as library:
        yield library


def test_a_library_file_becomes_exactly_its_stored_vector_by_every_path(lib, tmp_path):
    from lookalike.embed.query import embed_files, embed_source
    from lookalike.search.searcher import Searcher

    ids, raw = lib.embeddings()
    path = Path(lib.search(int(ids[0]), k=1).hits[0].path)
    from_file, _ = embed_source(lib.store, path)
    batch, good, failed = embed_files(lib.store, [path, tmp_path / "missing.png"])
    row = int(np.flatnonzero(ids == lib.search(int(ids[0]), k=1).hits[0].image_id)[0])
    np.testing.assert_allclose(from_file, raw[row], rtol=0, atol=1e-6)
    np.testing.assert_allclose(batch[0], raw[row], rtol=0, atol=1e-6)
    assert good == [0] and list(failed) == [1]
    reduced, _ = Searcher(lib.store).embed(path)
    np.testing.assert_allclose(reduced, lib.reducer().transform(raw[row][None])[0], atol=1e-6)


def test_search_reports_the_clusters_of_the_one_cluster_run(lib, tmp_path):
    from lookalike.config import ClusterConfig

    lib.cluster(ClusterConfig(method="kmeans", n_clusters=3))
    late = tmp_path / "photos" / CLASSES[0] / "late.png"
    class_image(0, 9999).save(late)
    lib.add()
    run = lib.cluster_run()
    assert run.n_predicted == 1
    result = lib.search(late, k=len(run.image_ids), include_self=True)
    assert {h.image_id: h.cluster for h in result.hits} == {int(i): int(c) for i, c in zip(run.image_ids, run.labels)}


def test_every_leave_one_out_score_is_the_one_rule():
    rng = np.random.default_rng(3)
    ids = np.arange(40, dtype=np.int64) * 7
    labels = rng.integers(0, 4, 40)
    vectors = rng.normal(size=(40, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = ExactIndex().fit(vectors, ids)
    label_of = dict(zip(ids.tolist(), labels.tolist()))
    d = ((vectors[:, None] - vectors[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    brute = ids[np.argsort(d, axis=1, kind="stable")[:, :5]]
    hits, relevant = leave_one_out_hits(ids, brute, label_of)
    assert (hits == (labels[np.searchsorted(ids, brute)] == labels[:, None])).all()
    assert relevant.tolist() == [int((labels == lab).sum()) - 1 for lab in labels]
    by_metrics = evaluate_retrieval(index, ids, labels.tolist(), 5)
    by_report = retrieval_scores(ids, brute, label_of)
    assert by_metrics.precision == pytest.approx(by_report["precision_at_5"])
    assert by_metrics.precision == pytest.approx(hits.mean())

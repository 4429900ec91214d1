"""Search with re-ranking through the library, the CLI and the stored DBA vector set."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from lookalike.cli.main import app
from lookalike.search.dba import library_dba
from lookalike.search.rerank import RerankConfig, dba_vectors, rerank_pool
from tests.searchlib import build, write_labelled


@pytest.fixture
def lib(tmp_path):
    library = build(tmp_path, per_class=40)
    yield library
    library.close()


@pytest.mark.parametrize("method", ["aqe", "dba", "kreciprocal"])
def test_reranked_search_equals_rerank_pool_on_the_exact_candidates(lib, method):
    reduced = lib.reduced()
    ids, vectors = np.asarray(reduced.ids), np.asarray(reduced.vectors)
    query_id = int(ids[3])
    result = lib.search(query_id, 10, kind="exact", rerank=method)
    sims = vectors @ vectors[3]
    sims[3] = -np.inf
    pool = np.argsort(-sims, kind="stable")[: RerankConfig().pool]
    augmented = dba_vectors(vectors, RerankConfig().dba_n, RerankConfig().dba_alpha)[pool] if method == "dba" else None
    order, scores = rerank_pool(method, vectors[3], vectors[pool], RerankConfig(), augmented)
    assert [h.image_id for h in result.hits] == ids[pool[order[:10]]].tolist()
    np.testing.assert_allclose([h.rerank_score for h in result.hits], scores[:10], atol=1e-5)
    assert [h.rank for h in result.hits] == list(range(1, 11))
    assert query_id not in [h.image_id for h in result.hits]


def test_exact_results_stay_the_default(lib):
    plain = lib.search(5, 8, kind="exact")
    assert all(h.rerank_score is None for h in plain.hits)
    assert [h.image_id for h in plain.hits] == [h.image_id for h in lib.search(5, 8, kind="exact", rerank="none").hits]


def test_dba_set_is_stored_and_updated_incrementally_when_images_are_added(lib, tmp_path):
    ids, augmented = library_dba(lib.store)
    reduced = lib.reduced()
    np.testing.assert_allclose(augmented, dba_vectors(np.asarray(reduced.vectors), RerankConfig().dba_n, RerankConfig().dba_alpha), atol=1e-6)
    assert len(list((lib.folder / "vectors").glob("dba-*"))) == 1
    write_labelled(tmp_path / "more", 5, start=500)
    lib.add([tmp_path / "more"], labels="folder")
    ids, augmented = library_dba(lib.store)
    reduced = lib.reduced()
    assert np.array_equal(ids, reduced.ids)
    np.testing.assert_allclose(augmented, dba_vectors(np.asarray(reduced.vectors), RerankConfig().dba_n, RerankConfig().dba_alpha), atol=1e-6)
    assert len(list((lib.folder / "vectors").glob("dba-*"))) == 1


def test_cli_search_rerank_option(lib):
    folder = lib.folder
    lib.close()
    runner = CliRunner()
    done = runner.invoke(app, ["search", "id:3", "--library", str(folder), "--rerank", "dba", "--json"])
    assert done.exit_code == 0, done.output
    assert '"rerank_score"' in done.output
    bad = runner.invoke(app, ["search", "id:3", "--library", str(folder), "--rerank", "diffusion"])
    assert bad.exit_code != 0 and "rerank must be one of" in bad.output

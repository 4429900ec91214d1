"""The learned label projection: LDA part against scikit-learn, stored, stale-checked, searched."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from typer.testing import CliRunner

from lookalike.cli.main import app
from lookalike.config import ReduceConfig
from lookalike.errors import StaleModelError
from lookalike.evaluate.projection import heldout_projection_scores
from lookalike.reduce.project import LabelProjector
from tests.searchlib import build


def data(seed=0, n=90, d=12):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.array(["a", "b", "c"]), n // 3)
    x = rng.standard_normal((n, d)) + 1.5 * (y[:, None] == np.array(["a", "b", "c"])[None]).astype(float) @ rng.standard_normal((3, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def test_discriminant_part_matches_scikit_learn():
    x, y = data()
    projector = LabelProjector(beta=1.0, shrinkage=0.1).fit(x, y)
    ref = LinearDiscriminantAnalysis(solver="eigen", shrinkage=0.1).fit(x.astype(np.float64), y).transform(x)
    z = (x - projector.mean_) @ projector.scalings_
    np.testing.assert_allclose(z - z[0], ref - ref[0], atol=1e-4)  # sklearn's eigen transform does not centre
    out = projector.transform(x)
    expected = np.hstack([x, z])
    np.testing.assert_allclose(out, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)
    again = LabelProjector.from_arrays(projector.to_arrays())
    np.testing.assert_allclose(again.transform(x), out, atol=1e-6)


@pytest.mark.parametrize("method", ["head", "lda"], ids=["head", "lda"])
def test_heldout_scores_fit_on_train_only(method):
    x, y = data(1, n=150)
    scores = heldout_projection_scores(x, y, k=5, test_size=0.5, method=method)
    assert scores["n_train"] + scores["n_test"] == 150 and scores["method"] == method
    # these blobs are near separated already (0.99); the head's gain is tested on real digits
    slack = 0.01 if method == "head" else 0.0
    assert scores["projected"]["precision_at_k"] >= scores["reduced"]["precision_at_k"] - slack


@pytest.mark.parametrize("method", ["head", "lda"], ids=["head", "lda"])
def test_learn_projection_cli_then_projected_search_and_stale_check(tmp_path, method):
    lib = build(tmp_path, per_class=15)
    folder = lib.folder
    lib.close()
    runner = CliRunner()
    done = runner.invoke(app, ["learn-projection", "--library", str(folder), "--method", method, "--no-progress"])
    assert done.exit_code == 0 and f"({method}) from 45 labelled images of 3 classes" in done.output, done.output
    found = runner.invoke(app, ["search", "id:1", "--library", str(folder), "--projected", "--json"])
    assert found.exit_code == 0, found.output
    from lookalike import Library

    with Library.open(folder) as lib:
        result = lib.search(1, 5, projected=True)
        assert [h.rank for h in result.hits] == [1, 2, 3, 4, 5]
        lib.reduce(ReduceConfig(n_components=8), refit=True)
        with pytest.raises(StaleModelError, match="learn it again: `lookalike learn-projection"):
            lib.search(1, 5, projected=True)


def test_learn_projection_cli_refuses_an_unknown_method(tmp_path):
    lib = build(tmp_path, per_class=5)
    folder = lib.folder
    lib.close()
    done = CliRunner().invoke(app, ["learn-projection", "--library", str(folder), "--method", "pca"])
    assert done.exit_code != 0 and "projection method must be one of lda, head; got 'pca'" in done.output, done.output

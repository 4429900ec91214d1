"""The evaluation report of a labelled library: every number against scikit-learn or brute-force
numpy, every figure a valid file, report.md carrying the headline numbers, the library untouched."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics
from sklearn.metrics.cluster import contingency_matrix
from sklearn.neighbors import KNeighborsClassifier

from lookalike import Library
from lookalike.classify.estimator import stratified_split
from lookalike.classify.train import labelled_vectors, stored_models
from lookalike.store.labels import image_labels
from tests.report.conftest import CLASSES, PER_CLASS

pytestmark = pytest.mark.slow  # the session's report takes ~10 s to build

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def vectors(labelled_folder):
    """ids (n,), unit vectors (n, d) float64 and labels (n,) str of the labelled library."""
    with Library.open(labelled_folder, readonly=True) as lib:
        reduced, labels = lib.reduced(), image_labels(lib.catalog).labels
    ids = np.asarray(reduced.ids)
    x = np.asarray(reduced.vectors, dtype=np.float64)
    return ids, x / np.linalg.norm(x, axis=1, keepdims=True), np.array([labels[int(i)] for i in ids])


def test_retrieval_matches_brute_force(labelled_report, vectors):
    section = labelled_report[0].report["retrieval"]
    ids, x, labels = vectors
    curve = section["precision_curve"]
    k = len(curve["k"])
    assert k == 50 and section["queries"] == len(ids) and not section["sampled"]
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    hits = labels[order] == labels[:, None]
    relevant = np.array([Counter(labels)[label] - 1 for label in labels])
    expected = [hits[:, :j].sum(axis=1).mean() / j for j in range(1, k + 1)]
    np.testing.assert_allclose(curve["precision"], expected, atol=1e-9)
    for j in (1, 5, 10):
        assert section[f"precision_at_{j}"] == pytest.approx(expected[j - 1])
    assert section["recall_at_10"] == pytest.approx((hits[:, :10].sum(axis=1) / relevant).mean())
    ap = (np.cumsum(hits[:, :10], axis=1) / np.arange(1, 11) * hits[:, :10]).sum(axis=1) / np.minimum(10, relevant)
    assert section["map_at_10"] == pytest.approx(ap.mean())
    best = [np.mean(np.minimum(j, relevant) / j) for j in range(1, k + 1)]
    np.testing.assert_allclose(curve["best_possible"], best)
    assert 0.2 < section["precision_at_10"] < 1.0  # overlapping classes: a score with room both ways


@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "hdbscan"])
def test_cluster_scores_match_sklearn(labelled_report, vectors, method):
    evaluation = labelled_report[0]
    entry = evaluation.report["clustering"]["methods"][method]
    rows, pred = evaluation.assignments[method]
    _, x, labels = vectors
    x, truth = x[rows], labels[rows]
    keep = pred != -1
    assert entry["metrics"]["n_noise"] == int((~keep).sum()) and entry["n_clusters"] == len(set(pred[keep]))
    if method != "hdbscan":
        assert entry["n_clusters"] == len(CLASSES)  # K = the number of labels
    got = entry["metrics"]
    x, truth, pred = x[keep], truth[keep], pred[keep]
    assert got["silhouette"] == pytest.approx(metrics.silhouette_score(x, pred), abs=1e-5)
    assert got["davies_bouldin"] == pytest.approx(metrics.davies_bouldin_score(x, pred), rel=1e-4)
    assert got["calinski_harabasz"] == pytest.approx(metrics.calinski_harabasz_score(x, pred), rel=1e-4)
    external = got["external"]
    assert external["nmi"] == pytest.approx(metrics.normalized_mutual_info_score(truth, pred))
    assert external["ari"] == pytest.approx(metrics.adjusted_rand_score(truth, pred))
    table = contingency_matrix(truth, pred)
    assert external["purity"] == pytest.approx(table.max(axis=0).sum() / table.sum())


def test_k_sweep_is_reported_with_the_chosen_k(labelled_report):
    evaluation = labelled_report[0]
    section = evaluation.report["clustering"]
    assert section["k"] == len(CLASSES) and "number of labels" in section["k_reason"]
    assert section["sweep"]["k_values"] == list(range(2, 9))
    assert section["sweep"]["k_values"] == list(evaluation.sweep.k_values)
    assert len(section["sweep"]["silhouette"]) == 7


def test_classification_matches_sklearn(labelled_report, labelled_folder):
    section = labelled_report[0].report["classification"]
    with Library.open(labelled_folder, readonly=True) as lib:
        data = labelled_vectors(lib.store)
    x, y = data.vectors, data.labels
    train, val = stratified_split(y, 0.2, 0)
    assert (section["n_train"], section["n_validation"], section["sampled"]) == (train.size, val.size, False)
    reference = KNeighborsClassifier(n_neighbors=10, metric="cosine", weights="distance", algorithm="brute")
    pred = reference.fit(x[train], y[train]).predict(x[val])
    knn = section["models"]["knn"]
    classes = sorted(CLASSES)
    assert knn["labels"] == classes
    np.testing.assert_array_equal(knn["confusion"], metrics.confusion_matrix(y[val], pred, labels=classes))
    assert knn["accuracy"] == pytest.approx(metrics.accuracy_score(y[val], pred))
    assert knn["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy_score(y[val], pred))
    assert knn["macro_f1"] == pytest.approx(metrics.f1_score(y[val], pred, average="macro"))
    for model, entry in section["models"].items():  # every model: scores agree with its confusion matrix
        confusion = np.array(entry["confusion"])
        np.testing.assert_array_equal(confusion.sum(axis=1), [np.sum(y[val] == c) for c in classes])
        assert entry["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum()), model
        recalls = [entry["per_class"][c]["recall"] for c in classes]
        np.testing.assert_allclose(recalls, np.diag(confusion) / confusion.sum(axis=1))


def test_every_figure_is_a_valid_file(labelled_report, vectors):
    report, out = labelled_report[0].report, labelled_report[1]
    models = ("svm", "rf", "knn", "logreg")
    expected = {"k_sweep", "map_pca", "map_pca_html", "map_tsne", "map_tsne_html", "precision_at_k", "summary",
                *(f"confusion_{m}" for m in models)}
    assert set(report["figures"]) == expected
    for name, relative in report["figures"].items():
        path = out / relative
        if relative.endswith(".png"):
            assert path.read_bytes()[:8] == PNG_MAGIC, name
            with Image.open(path) as image:
                image.verify()
                assert image.size[0] >= 500 and image.size[1] >= 400, name
        else:
            html = path.read_text(encoding="utf-8")
            assert html.lower().startswith("<!doctype html>") and html.rstrip().endswith("</html>"), name
            assert 'src="plotly.min.js"' in html and '"type":"scattergl"' in html, name
            assert '"label":"colour by label"' in html and '"label":"colour by K-Means cluster"' in html, name
            assert "/photos/coat/0" in html.replace("\\u002f", "/")  # hover text names the image files (JSON-escaped)
    assert (out / "figures" / "plotly.min.js").stat().st_size > 1_000_000


def test_report_json_holds_sizes_versions_seeds_and_timings(labelled_report, labelled_folder):
    evaluation, out = labelled_report
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(evaluation.report))
    with Library.open(labelled_folder, readonly=True) as lib:
        embed = lib.manifest.embed
    assert on_disk["library"]["weights_sha256"] == embed.weights_sha256 and on_disk["library"]["backbone"] == "pixels"
    assert on_disk["library"]["class_counts"] == {c: PER_CLASS for c in CLASSES}
    assert on_disk["sizes"]["images"] == len(CLASSES) * PER_CLASS and on_disk["sizes"]["reduced_dim"] == 12
    assert on_disk["sizes"]["bytes_on_disk"]["vectors"] > 0
    assert on_disk["versions"]["numpy"] == np.__version__
    assert set(on_disk["seeds"].values()) == {0} and on_disk["parameters"]["map_sample"] == 40
    assert "reduce" not in on_disk["timings"]  # the PCA was already fitted
    stages = {"load", "retrieval", "k_sweep", "cluster_kmeans", "cluster_agglomerative", "cluster_hdbscan",
              "classify_svm", "classify_rf", "classify_knn", "classify_logreg", "pca_2d", "tsne", "figures"}
    assert stages <= set(on_disk["timings"]) and all(v >= 0 for v in on_disk["timings"].values())
    assert on_disk["maps"]["points"] == 40 and on_disk["maps"]["sampled"]
    assert len(evaluation.maps.rows) == 40 and evaluation.maps.coords["tsne"].shape == (40, 2)


def test_report_md_reads_on_its_own(labelled_report):
    report, out = labelled_report[0].report, labelled_report[1]
    text = (out / "report.md").read_text()
    kmeans = report["clustering"]["methods"]["kmeans"]["metrics"]
    best = max(m["accuracy"] for m in report["classification"]["models"].values())
    for value in (report["retrieval"]["precision_at_1"], report["retrieval"]["map_at_10"],
                  kmeans["external"]["nmi"], kmeans["external"]["ari"], best):
        assert f"{value:.3f}" in text
    assert text.startswith("# Evaluation of `lib.lookalike`") and "## Notes" in text
    linked = [part.split(")")[0] for part in text.split("](")[1:]]
    assert linked and all((out / link).is_file() for link in linked)
    assert "2D maps: 40 points (seeded sample)" in text


def test_the_library_is_left_untouched(labelled_report, labelled_folder):
    with Library.open(labelled_folder, readonly=True) as lib:
        assert lib.cluster_runs() == [] and stored_models(lib.store) == []
    assert not (labelled_folder / "reports").exists()

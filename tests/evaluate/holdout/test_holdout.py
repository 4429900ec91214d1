"""Held-out retrieval and classification (lookalike.evaluate.holdout) against brute-force numpy and scikit-learn."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

from lookalike import Library
from lookalike.classify.estimator import VectorClassifier
from lookalike.errors import BackboneMismatchError, InvalidParameterError
from lookalike.evaluate.holdout import heldout_classification, heldout_queries, heldout_retrieval
from lookalike.store.labels import image_labels
from lookalike.store.manifest import write_manifest
from tests.evaluate.holdout.conftest import HeldoutPair, write_classes
from tests.imagegen import write_images


@contextmanager
def opened(gallery: Path, queries: Path) -> Iterator[tuple[Library, Library]]:
    with Library.open(gallery, readonly=True) as g, Library.open(queries, readonly=True) as q:
        yield g, q


def reference_data(gallery: Library, queries: Library) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(gallery vectors (n, d), gallery labels (n,), query vectors (m, d), query labels (m,)) by hand:
    labelled queries with a gallery label, reduced by the gallery's stored reducer."""
    reduced = gallery.reduced()
    g_label_of = image_labels(gallery.catalog).labels
    g_labels = np.array([g_label_of[int(i)] for i in reduced.ids])
    ids, raw = queries.embeddings()
    q_label_of = image_labels(queries.catalog).labels
    rows = [r for r, i in enumerate(ids) if q_label_of.get(int(i)) in set(g_labels)]
    q_labels = np.array([q_label_of[int(ids[r])] for r in rows])
    return np.asarray(reduced.vectors), g_labels, gallery.reducer().transform(raw[rows]), q_labels


def brute_force_scores(G: np.ndarray, g_labels: np.ndarray, Q: np.ndarray, q_labels: np.ndarray, k: int) -> dict:
    sims = Q.astype(np.float64) @ G.astype(np.float64).T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    hits = g_labels[order] == q_labels[:, None]
    counts = Counter(g_labels.tolist())
    relevant = np.array([counts[label] for label in q_labels])
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    ap = (precision_at * hits).sum(axis=1) / np.minimum(k, relevant)
    out = {f"precision_at_{j}": hits[:, :j].sum(axis=1).mean() / j for j in {1, 5, 10, k} if j <= k}
    return {**out, f"recall_at_{k}": (hits.sum(axis=1) / relevant).mean(), f"map_at_{k}": ap.mean()}


@pytest.mark.parametrize("k", [10, 7, 3], ids=["k10", "k7", "k3"])
def test_retrieval_matches_brute_force(pair: HeldoutPair, k: int) -> None:
    with opened(pair.gallery, pair.queries) as (g, q):
        report = heldout_retrieval(g.store, q.store, k)
        expected = brute_force_scores(*reference_data(g, q), k)
    scores = {name: v for name, v in report.items() if name.startswith(("precision_at_", "recall_at_", "map_at_"))}
    assert scores.keys() == expected.keys()
    for name, value in expected.items():
        assert scores[name] == pytest.approx(value, abs=1e-9), name
    assert 0.3 < report["precision_at_1"] < 1.0  # overlapping classes: a score that can move


def test_counts_unlabelled_and_unknown_label_queries(pair: HeldoutPair) -> None:
    with opened(pair.gallery, pair.queries) as (g, q):
        report = heldout_retrieval(g.store, q.store)
    assert report["queries_scored"] == pair.n_scored
    assert report["queries_unlabelled"] == pair.n_unlabelled
    assert report["unknown_labels"] == pair.unknown
    assert report["queries_unknown_label"] == sum(pair.unknown.values())
    assert report["query_images"] == pair.n_scored + pair.n_unlabelled + sum(pair.unknown.values())
    assert report["gallery_labels"] == 3 and report["gallery_images"] == report["gallery_labelled"] == 36


def test_queries_use_the_gallery_reducer_and_nothing_is_written(pair: HeldoutPair) -> None:
    def snapshot(folder: Path) -> dict[str, tuple[int, int]]:  # SQLite's -wal/-shm change on every read
        files = [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm"))]
        return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in files}

    before = snapshot(pair.gallery), snapshot(pair.queries)
    with opened(pair.gallery, pair.queries) as (g, q):
        held = heldout_queries(g.store, q.store, {"red", "green", "blue"})
        _, raw = q.embeddings()
        own = q.reduced()
        heldout_retrieval(g.store, q.store)
        heldout_classification(g.store, q.store, "knn")
        fingerprint = g.reducer().fingerprint
        expected = g.reducer().transform(raw[np.isin(own.ids, held.ids)])
    assert held.vectors.shape == (pair.n_scored, 16) and own.vectors.shape[1] == 8
    np.testing.assert_allclose(held.vectors, expected, atol=1e-6)
    assert held.reducer_fingerprint == fingerprint
    assert (snapshot(pair.gallery), snapshot(pair.queries)) == before


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_kinds_report_recall_vs_exact(pair: HeldoutPair, kind: str) -> None:
    with opened(pair.gallery, pair.queries) as (g, q):
        exact = heldout_retrieval(g.store, q.store, 5)
        options = {"nprobe": 10_000} if kind == "ivf" else {"ef_search": 200}
        approx = heldout_retrieval(g.store, q.store, 5, kind, **options)
    # a tiny gallery searched exhaustively: the approximate index returns the exact neighbours
    assert approx["recall_vs_exact"] == pytest.approx(1.0)
    assert approx["map_at_5"] == pytest.approx(exact["map_at_5"]) and "recall_vs_exact" not in exact


@pytest.mark.parametrize("field", ["backbone", "weights_sha256"])
def test_mismatched_backbone_is_refused_quoting_both(pair: HeldoutPair, tmp_path: Path, field: str) -> None:
    copy = tmp_path / "other.lookalike"
    shutil.copytree(pair.queries, copy)
    with Library.open(copy, readonly=True) as q:
        manifest = q.manifest
    other = {"backbone": "efficientnet-lite0", "weights_sha256": "ab" * 32}[field]
    write_manifest(copy, replace(manifest, embed=replace(manifest.embed, **{field: other})))
    with opened(pair.gallery, copy) as (g, q):
        theirs, ours = str(getattr(q.manifest.embed, field))[:12], str(getattr(g.manifest.embed, field))[:12]
        with pytest.raises(BackboneMismatchError, match=f"{theirs}.*{ours}"):
            heldout_retrieval(g.store, q.store)
        with pytest.raises(BackboneMismatchError, match="must come from the gallery's backbone"):
            heldout_classification(g.store, q.store, "knn")


def test_no_scorable_query_is_an_error(pair: HeldoutPair, tmp_path: Path) -> None:
    write_classes(tmp_path / "odd", {"purple": 3}, 3, start=0)
    write_images(tmp_path / "loose", 2)
    with Library.create(tmp_path / "odd.lookalike", backbone="pixels") as lib:
        lib.add([tmp_path / "odd"], labels="folder")
        lib.add([tmp_path / "loose"], labels="none")
    with opened(pair.gallery, tmp_path / "odd.lookalike") as (g, q):
        with pytest.raises(InvalidParameterError, match=r"no query to score: 5 embedded images, 2 unlabelled, 3 .*purple"):
            heldout_retrieval(g.store, q.store)


def assert_metrics(report: dict, truth: np.ndarray, predicted: np.ndarray) -> None:
    order = sorted(set(truth))
    assert report["accuracy"] == pytest.approx(metrics.accuracy_score(truth, predicted))
    assert report["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy_score(truth, predicted))
    assert report["macro_f1"] == pytest.approx(metrics.f1_score(truth, predicted, average="macro"))
    assert report["confusion"] == metrics.confusion_matrix(truth, predicted, labels=order).tolist()


def test_knn_classification_matches_sklearn(pair: HeldoutPair) -> None:
    with opened(pair.gallery, pair.queries) as (g, q):
        report = heldout_classification(g.store, q.store, "knn")
        G, g_labels, Q, q_labels = reference_data(g, q)
    knn = KNeighborsClassifier(n_neighbors=10, metric="cosine", weights="distance", algorithm="brute")
    assert_metrics(report, q_labels, knn.fit(G, g_labels).predict(Q))
    assert report["n_train"] == 36 and report["queries_unlabelled"] == pair.n_unlabelled
    assert report["unknown_labels"] == pair.unknown and report["search"] is None


def test_plain_svm_matches_sklearn_svc_with_the_chosen_params(pair: HeldoutPair) -> None:
    with opened(pair.gallery, pair.queries) as (g, q):
        report = heldout_classification(g.store, q.store, "svm", max_cv_samples=18, probabilities=False)
        G, g_labels, Q, q_labels = reference_data(g, q)
    search, params = report["search"], report["params"]
    assert search["n_samples"] == 18 and params["C"] == search["C"] and params["gamma_factor"] == search["gamma_factor"]
    gamma = params["gamma_factor"] / (G.shape[1] * G.var())
    assert params["gamma"] == pytest.approx(gamma, rel=1e-5)
    svc = SVC(kernel="rbf", C=params["C"], gamma=gamma).fit(G, g_labels)
    assert_metrics(report, q_labels, svc.predict(Q))
    assert report["probabilities"].startswith("none")


def test_calibrated_svm_is_trained_on_the_whole_gallery(pair: HeldoutPair) -> None:
    with opened(pair.gallery, pair.queries) as (g, q):
        report = heldout_classification(g.store, q.store, "svm")
        G, g_labels, Q, q_labels = reference_data(g, q)
    assert report["search"]["n_samples"] == 36  # the gallery is smaller than max_cv_samples
    C, factor = report["search"]["C"], report["search"]["gamma_factor"]
    reference = VectorClassifier("svm", svm_C=(C,), svm_gamma=(factor,)).fit(G, g_labels)
    assert_metrics(report, q_labels, reference.predict(Q))
    assert report["params"]["C"] == C and "calibrated" in report["probabilities"]


def test_fixed_params_skip_the_search(pair: HeldoutPair) -> None:
    with opened(pair.gallery, pair.queries) as (g, q):
        report = heldout_classification(g.store, q.store, "logreg", {"logreg_C": 0.5})
        G, g_labels, Q, q_labels = reference_data(g, q)
    assert report["search"] is None and report["params"]["C"] == 0.5
    reference = VectorClassifier("logreg", logreg_C=(0.5,)).fit(G, g_labels)
    assert_metrics(report, q_labels, reference.predict(Q))


@pytest.mark.parametrize(
    ("model", "params", "options", "message"),
    [
        ("svm", {"svm_cost": 1}, {}, r"unknown classifier settings \['svm_cost'\]"),
        ("logreg", "cv", {"probabilities": False}, "applies to the svm only"),
        ("svm", "grid", {}, "params must be 'cv'"),
        ("svm", "cv", {"max_cv_samples": 1}, "max_cv_samples must be an integer >= 2"),
        ("svm", None, {"probabilities": False}, "needs one svm_C and one svm_gamma"),
        ("tree", "cv", {}, "model must be one of"),
    ],
    ids=["unknown-setting", "proba-logreg", "bad-params", "bad-cv-size", "plain-svm-grid", "bad-model"],
)
def test_classification_refuses_bad_arguments(pair: HeldoutPair, model, params, options, message) -> None:
    with opened(pair.gallery, pair.queries) as (g, q):
        with pytest.raises(InvalidParameterError, match=message):
            heldout_classification(g.store, q.store, model, params, **options)


@pytest.mark.parametrize(("k", "kind"), [(0, "exact"), (True, "exact"), (5, "flat")], ids=["k0", "kbool", "kind"])
def test_retrieval_refuses_bad_arguments(pair: HeldoutPair, k, kind) -> None:
    with opened(pair.gallery, pair.queries) as (g, q):
        with pytest.raises(InvalidParameterError, match="k must be|kind must be"):
            heldout_retrieval(g.store, q.store, k, kind)

"""``lookalike compare``: numbers checked against independent references, resume, bad inputs, outputs.

Fast tests run the ``pixels`` backbone on a fake Fashion-MNIST cache (tests/evaluate/compare/fakedata.py);
the slow one runs the real Fashion-MNIST subset with efficientnet-lite0.
"""

from __future__ import annotations

import json
from dataclasses import replace
from hashlib import sha256

import numpy as np
import pytest
from typer.testing import CliRunner

from lookalike import Library
from lookalike.cli.main import app
from lookalike.errors import InvalidParameterError, UnknownBackboneError
from lookalike.evaluate.compare.run import CompareConfig, library_folder, run_compare
from lookalike.evaluate.compare.table import markdown, write_outputs
from tests.evaluate.compare.fakedata import write_fake_fashion

PER_CLASS, N_CLASSES = 8, 5


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return write_fake_fashion(tmp_path_factory.mktemp("cache"), PER_CLASS, N_CLASSES)


@pytest.fixture(scope="module")
def config(cache):
    return CompareConfig(dataset="fashion-mnist", backbones=("pixels",), k=5, pca=16, cache_dir=cache)


@pytest.fixture(scope="module")
def first_run(config, tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    return run_compare(config, work), work


# -- independent references --------------------------------------------------------------------------
def brute_force_retrieval(vectors: np.ndarray, labels: np.ndarray, k: int) -> tuple[float, float]:
    """Leave-one-out P@k and mAP@k by a full distance matrix (numpy only)."""
    distances = ((vectors[:, None, :] - vectors[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    hits = labels[order] == labels[:, None]
    relevant = np.array([(labels == lab).sum() - 1 for lab in labels])
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    ap = (precision_at * hits).sum(1) / np.minimum(k, relevant)
    return float(hits.mean()), float(ap.mean())


def library_truth(folder):
    """(reduced vectors (n, d), folder labels (n,), latest run's cluster labels (n,))."""
    with Library.open(folder, readonly=True) as lib:
        reduced = lib.reduced()
        rows = lib.catalog.query("SELECT image_id, label FROM files WHERE image_id IS NOT NULL")
        by_id = {int(i): lab for i, lab in rows}
        run = lib.cluster_run()
        clusters = dict(zip(run.image_ids.tolist(), run.labels.tolist()))
        ids = np.asarray(reduced.ids)
        return (np.asarray(reduced.vectors), np.array([by_id[int(i)] for i in ids]),
                np.array([clusters[int(i)] for i in ids]))  # fmt: skip


def check_against_references(row, folder, config) -> None:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.metrics import normalized_mutual_info_score, silhouette_score
    from sklearn.model_selection import StratifiedKFold, train_test_split
    from sklearn.svm import SVC

    vectors, labels, clusters = library_truth(folder)
    precision, mean_ap = brute_force_retrieval(vectors.astype(np.float64), labels, config.k)
    assert row.precision_at_k == pytest.approx(precision, abs=6e-5)
    assert row.map_at_k == pytest.approx(mean_ap, abs=6e-5)
    assert row.nmi == pytest.approx(normalized_mutual_info_score(labels, clusters), abs=6e-5)
    assert row.silhouette == pytest.approx(silhouette_score(vectors, clusters), abs=6e-5)
    assert len(np.unique(clusters)) == len(np.unique(labels))  # K = number of classes

    svm = row.details["svm"]
    train, test = train_test_split(np.arange(len(labels)), test_size=config.test_size,
                                   random_state=config.seed, stratify=labels)  # fmt: skip
    train, test = np.sort(train), np.sort(test)
    assert svm["test_indices_digest"] == sha256(test.astype(np.int64).tobytes()).hexdigest()[:12]
    gamma = svm["gamma_factor"] / (vectors.shape[1] * vectors[train].var())
    svc = SVC(C=svm["C"], gamma=gamma)
    assert svm["svc_accuracy"] == pytest.approx(svc.fit(vectors[train], labels[train]).score(vectors[test], labels[test]),
                                                abs=6e-5)
    # lookalike predicts the arg-max of probabilities calibrated on 3 stratified folds (sigmoid below 1000 images)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=config.seed)
    method = "isotonic" if len(train) >= 1000 else "sigmoid"
    calibrated = CalibratedClassifierCV(SVC(C=svm["C"], gamma=gamma), method=method, cv=folds, ensemble=False)
    calibrated.fit(vectors[train], labels[train])
    assert row.svm_accuracy == pytest.approx(calibrated.score(vectors[test], labels[test]), abs=6e-5)


# -- the numbers --------------------------------------------------------------------------------------
def test_pixels_row_matches_independent_references(first_run, config):
    report, work = first_run
    (row,) = report.rows
    assert row.error is None and row.backbone == "pixels"
    assert report.classes == {name: PER_CLASS for name in ("T-shirt_top", "Trouser", "Pullover", "Dress", "Coat")}
    assert row.n_images == PER_CLASS * N_CLASSES and (row.dim, row.reduced_dim) == (3072, 16)
    check_against_references(row, library_folder(work, "pixels"), config)
    assert 0.5 < row.precision_at_k < 1.0  # the fake classes are separable but not trivially
    assert row.images_per_second > 0 and row.speed_source == "this run"
    index_files = list((library_folder(work, "pixels") / "index").glob("exact-*.faiss"))
    assert [f.stat().st_size for f in index_files] == [row.index_bytes]
    assert row.index_bytes >= row.n_images * 16 * 4
    assert row.details["raw_vector_bytes"] == row.n_images * 3072 * 4


def test_second_run_reuses_images_libraries_runs_and_speed(first_run, config):
    report, work = first_run
    png = next((work / "images").glob("*/*.png"))
    before = png.stat().st_mtime_ns
    runs_before = cluster_run_count(work)
    again = run_compare(config, work)
    (row,), (old,) = again.rows, report.rows
    assert png.stat().st_mtime_ns == before  # not exported again
    assert row.speed_source.startswith("recorded when the library was built")
    assert row.images_per_second == old.images_per_second
    assert row.details["kmeans"]["reused"] and row.details["svm"]["reused"]
    assert not row.details["pca"]["refitted"]
    for name in ("precision_at_k", "map_at_k", "nmi", "silhouette", "svm_accuracy", "index_bytes"):
        assert getattr(row, name) == getattr(old, name), name
    assert cluster_run_count(work) == runs_before


def cluster_run_count(work) -> int:
    with Library.open(library_folder(work, "pixels"), readonly=True) as lib:
        return len(lib.cluster_runs())


def test_another_seed_keeps_a_first_n_export(first_run, config):
    _, work = first_run
    png = next((work / "images").glob("*/*.png"))
    before = png.stat().st_mtime_ns
    (row,) = run_compare(replace(config, seed=3), work).rows
    assert png.stat().st_mtime_ns == before  # without --limit/--per-class the seed chooses no images
    assert not row.details["kmeans"]["reused"] and not row.details["svm"]["reused"]
    check_against_references(row, library_folder(work, "pixels"), replace(config, seed=3))


@pytest.mark.parametrize(
    "changes, components",
    [({"whiten": True}, 16), ({"pca": 0}, PER_CLASS * N_CLASSES - 1)],  # 0: every direction with variance
    ids=["whiten", "all-components"],
)
def test_other_settings_refit_pca_and_rerun_kmeans(first_run, config, changes, components):
    _, work = first_run
    changed = replace(config, **changes)
    (row,) = run_compare(changed, work).rows
    expected = {"refitted": True, "whiten": changed.whiten, "n_components": components}
    assert row.details["pca"] == {**row.details["pca"], **expected} and row.reduced_dim == components
    assert not row.details["kmeans"]["reused"] and not row.details["svm"]["reused"]
    assert row.notes == []
    check_against_references(row, library_folder(work, "pixels"), changed)


def test_untuned_svm_uses_sklearn_defaults(first_run, config):
    _, work = first_run
    (row,) = run_compare(replace(config, svm_tune=False), work).rows
    svm = row.details["svm"]
    assert (svm["C"], svm["gamma_factor"], svm["cv_accuracy"], svm["tuned"]) == (1.0, 1.0, None, False)
    check_against_references(row, library_folder(work, "pixels"), config)


def test_first_n_takes_the_dataset_order(cache, tmp_path):
    config = CompareConfig(dataset="fashion-mnist", backbones=("pixels",), first=20, k=3, pca=8, cache_dir=cache)
    report = run_compare(config, tmp_path / "work")
    assert sum(report.classes.values()) == 20 and set(report.classes.values()) == {4}  # labels interleave
    names = sorted(p.name for p in (tmp_path / "work" / "images").glob("*/*.png"))
    assert names == [f"train-{i:05d}.png" for i in range(20)]


# -- bad inputs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, error, match",
    [
        ({"dataset": "mnist"}, InvalidParameterError, r"unknown dataset 'mnist'; expected one of \['dogs-vs-cats'"),
        ({"backbones": ("pixels", "vgg16")}, UnknownBackboneError, "unknown backbone 'vgg16'; known backbones: "
         "efficientnet-lite0, efficientnet-lite0-gem, efficientnet-lite2, efficientnet-lite2-gem, mobilenetv2, pixels, "
         "resnet50, autoencoder:..."),
        ({"first": 3}, InvalidParameterError, r"at least 2 classes of at least 4 images.*holds 3 image\(s\)"),
        ({"first": 20, "k": 20}, InvalidParameterError, "retrieval at k=20 needs more than 20 images"),
        ({"per_class": 2}, InvalidParameterError, r"at least 2 classes of at least 4 images.*'Trouser': 2"),
        ({"split": "val"}, InvalidParameterError, r"no split 'val'; expected one of \['train', 'test', 'all'\]"),
    ],
    ids=["dataset", "backbone", "too-few", "k", "per-class", "split"],
)
def test_bad_inputs_are_refused_before_any_library(config, tmp_path, changes, error, match):
    with pytest.raises(error, match=match):
        run_compare(replace(config, **changes), tmp_path / "work")
    assert not list(tmp_path.glob("work/*.lookalike"))


def test_a_single_class_subset_is_refused(tmp_path):
    cache = write_fake_fashion(tmp_path / "cache", per_class=6, n_classes=1)
    config = CompareConfig(dataset="fashion-mnist", backbones=("pixels",), cache_dir=cache)
    with pytest.raises(InvalidParameterError, match=r"at least 2 classes; .* 6 image\(s\), all of class \['T-shirt_top'\]"):
        run_compare(config, tmp_path / "work")


@pytest.mark.parametrize(
    "value, match", [({"k": 0}, "k must be >= 1"), ({"pca": -1}, "pca must be >= 0"),
                     ({"test_size": 1.0}, r"test_size must be in \(0, 1\)"), ({"backbones": ()}, "at least one backbone"),
                     ({"projection_method": "pca"}, "projection_method must be lda or head; got 'pca'")],
    ids=["k", "pca", "test-size", "no-backbone", "projection-method"],
)  # fmt: skip
def test_config_validates_itself(value, match):
    with pytest.raises(InvalidParameterError, match=match):
        CompareConfig(dataset="fashion-mnist", **value)


def test_missing_weights_fail_their_row_only(config, tmp_path):
    missing = tmp_path / "nowhere" / "encoder.npz"
    report = run_compare(replace(config, backbones=(f"autoencoder:{missing}",)), tmp_path / "work")
    failed, baseline = report.rows
    assert failed.backbone == f"autoencoder:{missing}" and "encoder file not found" in failed.error
    assert failed.precision_at_k is None and baseline.error is None and baseline.precision_at_k is not None
    assert f"error, autoencoder:{missing}: WeightsUnavailableError" in markdown(report)


# -- outputs and the CLI -----------------------------------------------------------------------------
def test_outputs_hold_every_number(first_run, tmp_path):
    report, _ = first_run
    paths = write_outputs(report, tmp_path / "out")
    saved = json.loads(paths["json"].read_text())
    (row,) = saved["rows"]
    assert row["precision_at_k"] == report.rows[0].precision_at_k and saved["n_images"] == 40
    assert saved["config"]["pca"] == 16 and saved["versions"]["numpy"] == np.__version__
    table = paths["markdown"].read_text().splitlines()
    assert "| backbone | dim | P@5 | mAP@5 | NMI | silhouette | SVM acc. | images/s | index size |" in table
    assert any(line.startswith(f"| pixels | 3072→16 | {report.rows[0].precision_at_k:.3f} |") for line in table)
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_writes_the_table_and_files(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_CACHE", str(cache.parent))
    (cache.parent / "datasets").symlink_to(cache)
    work = tmp_path / "work"
    args = ["compare", "--dataset", "fashion-mnist", "--backbones", "pixels", "--first", "20", "--k", "3",
            "--pca", "8", "--work", str(work), "--out", str(tmp_path / "out"), "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "fashion-mnist (train, first 20): 20 images, 5 classes; each backbone's centre crop; L2 + PCA 8" in result.output
    assert "│ pixels " in result.output and "3072→8" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["compare.json", "compare.md", "compare.png"]
    bad = CliRunner().invoke(app, [*args[:3], "--backbones", "pixels,vgg16", *args[5:]])
    assert bad.exit_code == 1 and "unknown backbone 'vgg16'" in bad.output


# -- real data, real model ----------------------------------------------------------------------------
@pytest.mark.slow
def test_real_fashion_mnist_subset_with_efficientnet(tmp_path):
    from lookalike.config import cache_root

    cache = cache_root() / "datasets"
    if not (cache / "fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST is not cached (lookalike dataset fetch fashion-mnist)")
    config = CompareConfig(dataset="fashion-mnist", backbones=("efficientnet-lite0",), first=200, cache_dir=cache)
    report = run_compare(config, tmp_path / "work")
    learned, pixels = report.rows
    assert (learned.backbone, pixels.backbone) == ("efficientnet-lite0", "pixels")
    for row in report.rows:
        assert row.error is None and row.n_images == 200
        check_against_references(row, library_folder(tmp_path / "work", row.backbone), config)
    assert learned.svm_accuracy > pixels.svm_accuracy  # the learned features classify better


@pytest.mark.slow
def test_autoencoder_trains_on_the_images_and_joins_the_table(config, tmp_path):
    changed = replace(config, autoencoder=True, autoencoder_epochs=1)
    report = run_compare(changed, tmp_path / "work")
    pixels, autoencoder = report.rows
    encoder = (tmp_path / "work" / "autoencoder" / "encoder.npz").resolve()
    assert autoencoder.backbone == f"autoencoder:{encoder}" and encoder.is_file()
    assert autoencoder.error is None and autoencoder.n_images == pixels.n_images
    assert autoencoder.seconds["train_autoencoder"] > 0
    check_against_references(autoencoder, library_folder(tmp_path / "work", autoencoder.backbone), changed)
    again = run_compare(changed, tmp_path / "work").rows[1]  # the encoder and its library are reused
    assert "train_autoencoder" not in again.seconds and again.speed_source.startswith("recorded")


def test_crop_fraction_reaches_every_library_and_the_settings_line(config, tmp_path):
    from lookalike.evaluate.compare.table import settings_line
    from lookalike.store.manifest import read_manifest

    report = run_compare(replace(config, crop_fraction=0.5), tmp_path / "work")
    (row,) = report.rows
    assert row.error is None
    assert read_manifest(library_folder(tmp_path / "work", "pixels")).embed.crop_fraction == 0.5
    assert "centre crop 0.5" in settings_line(report)
    with pytest.raises(InvalidParameterError, match=r"crop_fraction must be in \(0, 1\]"):
        CompareConfig(dataset="fashion-mnist", crop_fraction=0.0)

"""Clustering runs of a library: stored, read back, scored like scikit-learn, named, kept honest.

Libraries use the ``pixels`` backbone over generated images whose colours form three known
classes (tests/cluster/colour_library.py), labelled by their subfolder.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from lookalike import Library
from lookalike.cluster.run import NOISE, UNASSIGNED
from lookalike.config import ClusterConfig, ReduceConfig
from lookalike.errors import InvalidParameterError
from tests.cluster.colour_library import COLOURS, build_library, colour_image, copy_library, write_colour_classes

PER_CLASS = 12


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A closed labelled library (3 colour classes × 12 images) with its PCA fitted."""
    root = tmp_path_factory.mktemp("colours")
    write_colour_classes(root / "photos", PER_CLASS)
    with build_library(root / "base.lookalike", root / "photos") as lib:
        lib.reduce(ReduceConfig(n_components=16))
    return root


@pytest.fixture
def lib(base, tmp_path):
    library = copy_library(base / "base.lookalike", tmp_path / "lib.lookalike")
    yield library
    library.close()


def folder_labels(lib, image_ids):
    rows = dict(lib.catalog.query("SELECT image_id, label FROM files WHERE image_id IS NOT NULL"))
    return np.array([rows[int(i)] for i in image_ids])


def test_kmeans_run_is_stored_and_read_back(lib):
    run = lib.cluster(ClusterConfig(n_clusters=3))
    again = lib.cluster_run(run.info.id)
    assert [r.id for r in lib.cluster_runs()] == [run.info.id]
    np.testing.assert_array_equal(again.labels, run.labels)
    np.testing.assert_array_equal(run.image_ids, lib.reduced().ids)
    assert run.info.reducer_fingerprint == lib.reducer().fingerprint and not run.info.stale
    assert run.info.params["n_clusters"] == 3 and run.info.params["method"] == "kmeans"
    assert run.arrays["centers"].shape == (3, 16)
    assert (run.n_new, run.n_predicted, run.n_removed) == (0, 0, 0)
    assert skm.adjusted_rand_score(folder_labels(lib, run.image_ids), run.labels) == 1.0
    # every image's distance is to its own cluster's stored centre
    vectors = lib.reduced().vectors
    expected = np.linalg.norm(vectors - run.arrays["centers"][run.labels], axis=1)
    np.testing.assert_allclose(run.distances, expected, atol=1e-5)


def test_stored_metrics_match_sklearn(lib):
    run = lib.cluster(ClusterConfig(n_clusters=4, sample_size=20))  # K=4 splits a class: scores < 1
    x, labels = np.asarray(lib.reduced().vectors), run.labels
    m = run.info.metrics
    assert m["silhouette_sample_size"] == 20
    rows = np.sort(np.random.default_rng(0).choice(x.shape[0], 20, replace=False))
    assert m["silhouette"] == pytest.approx(skm.silhouette_score(x[rows], labels[rows]), abs=1e-6)
    assert m["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(x, labels), rel=1e-5)
    assert m["calinski_harabasz"] == pytest.approx(skm.calinski_harabasz_score(x, labels), rel=1e-5)
    truth = folder_labels(lib, run.image_ids)
    ext = m["external"]
    assert ext["nmi"] == pytest.approx(skm.normalized_mutual_info_score(truth, labels))
    assert ext["ari"] == pytest.approx(skm.adjusted_rand_score(truth, labels))
    assert ext["homogeneity"] == pytest.approx(skm.homogeneity_score(truth, labels))
    assert ext["completeness"] == pytest.approx(skm.completeness_score(truth, labels))
    majority = sum(np.unique(truth[labels == c], return_counts=True)[1].max() for c in np.unique(labels))
    assert ext["purity"] == pytest.approx(majority / labels.size)
    assert ext["n_labelled"] == 3 * PER_CLASS and ext["completeness"] < 1.0


def test_auto_k_recommends_the_true_classes_and_stores_the_curves(lib):
    run = lib.cluster(ClusterConfig(k_max=6))
    choice = run.info.evidence["k_choice"]
    assert choice["recommended_k"] == 3 == run.info.params["n_clusters"] == run.info.n_clusters
    assert choice["k_values"] == [2, 3, 4, 5, 6]
    assert len(choice["inertia"]) == len(choice["silhouette"]) == 5
    assert choice["silhouette_sample_size"] == 3 * PER_CLASS
    assert "silhouette peak at 3" in choice["reason"]


def test_clusters_are_named_by_majority_label(lib, base):
    odd = base / "photos" / "green" / "reddish.png"  # a red image filed under "green"
    colour_image(COLOURS["red"], seed=777).save(odd)
    try:
        lib.add()
        run = lib.cluster(ClusterConfig(n_clusters=3))
    finally:
        odd.unlink()
    names = sorted(c.name for c in run.clusters)
    assert names == ["blue (100%)", "green (100%)", f"red ({PER_CLASS / (PER_CLASS + 1):.0%})"]
    for c in run.clusters:
        assert c.size == len(run.members(c.cluster)) and c.representatives[0] == c.medoid
        assert all(c.name.split()[0] in path for path in c.representative_paths if "reddish" not in path)


def test_without_labels_names_come_from_imagenet_classes_else_the_index(base, tmp_path):
    with build_library(tmp_path / "plain.lookalike", base / "photos", labels="none") as lib:
        lib.reduce(ReduceConfig(n_components=16))
        run = lib.cluster(ClusterConfig(n_clusters=3))
        assert sorted(c.name for c in run.clusters) == ["cluster 0", "cluster 1", "cluster 2"]
        assert run.info.metrics["external"] is None
        # a backbone with a classifier head stores each image's top classes: red images "tabby"
        red = lib.catalog.query("SELECT image_id FROM files WHERE path LIKE '%/red/%'")
        with lib.catalog.transaction() as db:
            db.executemany("INSERT INTO image_classes VALUES (?, 0, 281, 0.9)", red)
        named = lib.cluster(ClusterConfig(n_clusters=3))
    assert "tabby (100%)" in [c.name for c in named.clusters]


def test_refit_makes_earlier_runs_stale(lib, base):
    run = lib.cluster(ClusterConfig(n_clusters=3))
    lib.reduce(ReduceConfig(n_components=8), refit=True)
    (info,) = lib.cluster_runs()
    assert info.id == run.info.id and info.stale
    write_colour_classes(base / "new", 1, start=50)
    lib.add([base / "new"], labels="folder")
    stale = lib.cluster_run()
    assert stale.info.stale and stale.n_new == 3 and stale.n_predicted == 0
    assert (stale.labels == UNASSIGNED).sum() == 3
    assert not lib.cluster(ClusterConfig(n_clusters=3)).info.stale


def test_kmeans_predicts_new_images_other_methods_leave_them_unassigned(lib, base):
    kmeans = lib.cluster(ClusterConfig(n_clusters=3))
    tree = lib.cluster(ClusterConfig(method="agglomerative", n_clusters=3))
    write_colour_classes(base / "later", 2, start=90)
    lib.add([base / "later"], labels="folder")
    now = lib.cluster_run(kmeans.info.id)
    assert (now.n_new, now.n_predicted) == (6, 6)
    truth = folder_labels(lib, now.image_ids)
    assert skm.adjusted_rand_score(truth, now.labels) == 1.0  # new images joined their colour's cluster
    assert not np.isnan(now.distances).any()
    later = lib.cluster_run(tree.info.id)
    assert later.n_new == 6 and later.n_predicted == 0 and (later.labels == UNASSIGNED).sum() == 6


def test_removed_images_drop_out_of_a_run(lib, base):
    run = lib.cluster(ClusterConfig(n_clusters=3))
    lib.remove([base / "photos" / "blue"])
    now = lib.cluster_run(run.info.id)
    assert now.n_removed == PER_CLASS and now.image_ids.size == 2 * PER_CLASS
    assert {c.size for c in now.clusters} == {PER_CLASS}  # summaries stay as of the run


@pytest.mark.parametrize(
    "config",
    [
        ClusterConfig(method="agglomerative", n_clusters=3),
        ClusterConfig(method="agglomerative", linkage="average", metric="cosine", k_max=6),
        ClusterConfig(method="dbscan", eps=0.2),
        ClusterConfig(method="hdbscan", min_cluster_size=5),
    ],
    ids=["ward-k3", "average-cosine-auto", "dbscan", "hdbscan"],
)
def test_every_method_finds_the_classes_and_stores_its_artefacts(lib, config):
    run = lib.cluster(config)
    truth = folder_labels(lib, run.image_ids)
    assert skm.adjusted_rand_score(truth, run.labels) == 1.0
    assert run.info.n_clusters == 3 and run.info.n_noise == 0 and run.arrays["centers"].shape == (3, 16)
    if config.method == "agglomerative":
        assert run.arrays["linkage"].shape == (3 * PER_CLASS - 1, 4)
    assert lib.cluster_run(run.info.id).info.method == config.method


def test_dbscan_reports_outliers_as_noise_with_a_suggested_eps(lib, base):
    odd = {"yellow": (220, 220, 30), "magenta": (200, 30, 200), "cyan": (30, 200, 200)}  # one image each
    write_colour_classes(base / "odd", 1, classes=odd)
    lib.add([base / "odd"], labels="folder")
    run = lib.cluster(ClusterConfig(method="dbscan", min_samples=4))
    truth = folder_labels(lib, run.image_ids)
    assert sorted(truth[run.labels == NOISE]) == sorted(odd) and run.info.n_noise == 3
    kept = run.labels != NOISE
    assert skm.adjusted_rand_score(truth[kept], run.labels[kept]) == 1.0
    eps = run.info.evidence["eps"]
    assert eps["source"] == "knee of the k-distance curve" and eps["sample_size"] == 3 * PER_CLASS + 3
    assert run.arrays["k_distances"].shape == (3 * PER_CLASS + 3,)
    assert run.info.metrics["n_noise"] == 3 and run.info.metrics["external"]["n_scored"] == 3 * PER_CLASS


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (ClusterConfig(n_clusters=99), "K=99 is larger than the number of images"),
        (ClusterConfig(k_min=40, k_max=50), "K can be at most 35"),
        (ClusterConfig(method="agglomerative", n_clusters=3, distance_threshold=1.0), "not both"),
    ],
    ids=["k-above-n", "auto-range-above-n", "k-and-threshold"],
)
def test_bad_settings_are_refused(lib, config, match):
    with pytest.raises(InvalidParameterError, match=match):
        lib.cluster(config)
    assert lib.cluster_runs() == []


def test_k_below_two_is_refused():
    with pytest.raises(InvalidParameterError, match="n_clusters must be >= 2, got 1"):
        ClusterConfig(n_clusters=1)


def test_empty_library_and_missing_runs_are_clear_errors(tmp_path):
    with Library.create(tmp_path / "empty.lookalike", backbone="pixels") as lib:
        with pytest.raises(InvalidParameterError, match="has no embedded images"):
            lib.cluster()
        with pytest.raises(InvalidParameterError, match="no clustering runs yet"):
            lib.cluster_run()


def test_identical_images_are_refused(tmp_path):
    image = colour_image(COLOURS["red"], seed=1)
    (tmp_path / "same").mkdir()
    for fmt in ("png", "bmp", "tiff"):  # same pixels, different files: three images, one point
        image.save(tmp_path / "same" / f"copy.{fmt}")
    with build_library(tmp_path / "same.lookalike", tmp_path / "same", labels="none") as lib:
        assert lib.status().embedded == 3
        with pytest.raises(InvalidParameterError, match="identical"):
            lib.cluster(ClusterConfig(n_clusters=2))


def test_unknown_run_and_read_only_library(lib):
    run = lib.cluster(ClusterConfig(n_clusters=3))
    with pytest.raises(InvalidParameterError, match=f"no clustering run 42; its runs are {run.info.id}"):
        lib.cluster_run(42)
    lib.close()
    with Library.open(lib.folder, readonly=True) as reader:
        assert reader.cluster_run().info.id == run.info.id
        with pytest.raises(InvalidParameterError, match="read-only"):
            reader.cluster(ClusterConfig(n_clusters=3))


def test_a_run_in_the_learned_projection_clusters_projected_vectors_and_projects_new_images(lib, base):
    from lookalike.cluster.kmeans import KMeans
    from lookalike.reduce.library_projection import library_projection

    with pytest.raises(InvalidParameterError, match="no learned projection; run `lookalike learn-projection"):
        lib.cluster(ClusterConfig(n_clusters=3, space="projected"))
    lib.learn_projection("lda")
    projector = library_projection(lib.store)
    run = lib.cluster(ClusterConfig(n_clusters=3, space="projected"))
    projected = projector.transform(lib.reduced().vectors)
    reference = KMeans(n_clusters=3, seed=0, n_init=3).fit(projected)  # the same estimator on the same vectors
    assert run.info.params["space"] == "projected" and run.info.params["projection"] == projector.fingerprint
    assert run.arrays["centers"].shape == (3, projected.shape[1]) and projected.shape[1] != 16
    assert skm.adjusted_rand_score(reference.labels_, run.labels) == 1.0
    np.testing.assert_allclose(run.distances, np.linalg.norm(projected - run.arrays["centers"][run.labels], axis=1),
                               atol=1e-5)  # fmt: skip
    write_colour_classes(base / "projected-later", 1, start=70)
    lib.add([base / "projected-later"], labels="folder")
    now = lib.cluster_run(run.info.id)
    assert (now.n_new, now.n_predicted) == (3, 3)
    assert skm.adjusted_rand_score(folder_labels(lib, now.image_ids), now.labels) == 1.0
    lib.learn_projection("lda")  # learned again (now with the new labelled images): another map
    later = lib.cluster_run(run.info.id)
    assert later.n_predicted == 0 and (later.labels == UNASSIGNED).sum() == 3


def test_an_unknown_space_is_refused():
    with pytest.raises(InvalidParameterError, match="space must be one of"):
        ClusterConfig(space="raw")

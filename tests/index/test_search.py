"""Routed search: filters, exclusion, query by ids, scores (confidence, calibrated probability)."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError, VectorIndexError
from lookalike.index import (
    EXACT_FILTER_MAX,
    ClusterRadii,
    ExactIndex,
    HNSWIndex,
    IVFIndex,
    MatchCalibrator,
    cluster_max_distances,
    fit_calibrator,
    member_neighbors,
    search,
    search_like,
)

FILTER_SIZES = {"small": 40, "large": EXACT_FILTER_MAX + 500}


@pytest.fixture(scope="module")
def indexes(data):
    return {
        "exact": ExactIndex().fit(data.X, data.ids),
        "ivf": IVFIndex(nlist=16, nprobe=16).fit(data.X, data.ids),
        "hnsw": HNSWIndex(ef_search=200).fit(data.X, data.ids),
    }


@pytest.mark.parametrize("size", FILTER_SIZES, ids=list(FILTER_SIZES))
@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_allowed_ids_give_k_allowed_results_like_brute_force_on_the_subset(kind, size, indexes, data, reference):
    rng = np.random.default_rng(1)
    subset = rng.choice(len(data.X), FILTER_SIZES[size], replace=False)
    allowed = data.ids[subset]
    expected, _ = reference(data.X[subset], allowed, data.Q, 10)
    results = search(indexes[kind], data.Q, 10, allowed_ids=np.concatenate([allowed, [10**12]]))
    for res in results:
        assert len(res) == 10  # filtered inside the search, not a shortened list
        assert np.isin(res.ids, allowed).all()
    found = np.mean([len(set(r.ids.tolist()) & set(e.tolist())) / 10 for r, e in zip(results, expected)])
    assert found >= (1.0 if kind != "hnsw" or size == "small" else 0.95)


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_exclude_ids_removes_them_and_keeps_k(kind, indexes, data, reference):
    top, _ = reference(data.X, data.ids, data.Q, 3)
    excluded = np.unique(top)
    for res in search(indexes[kind], data.Q, 10, exclude_ids=excluded):
        assert len(res) == 10 and not np.isin(res.ids, excluded).any()


def test_allowed_and_excluded_combine(indexes, data):
    allowed = data.ids[: EXACT_FILTER_MAX + 100]
    excluded = allowed[:1000]
    for kind in ("exact", "hnsw"):
        for res in search(indexes[kind], data.Q, 10, allowed_ids=allowed, exclude_ids=excluded):
            assert np.isin(res.ids, allowed).all() and not np.isin(res.ids, excluded).any()


def test_search_like_excludes_itself_and_averages_several_items(indexes, data):
    index = indexes["exact"]
    one = search_like(index, data.ids[:1], 5)
    assert data.ids[0] not in one.ids
    plain = search(index, data.X[0], 6)[0]
    np.testing.assert_array_equal(one.ids, plain.ids[plain.ids != data.ids[0]][:5])
    mean = data.X[:3].mean(axis=0)
    several = search_like(index, data.ids[:3], 5, exclude_self=False)
    np.testing.assert_array_equal(several.ids, search(index, mean / np.linalg.norm(mean), 5)[0].ids)


def test_member_neighbors_are_leave_one_out_brute_force(indexes, data, reference):
    ids = data.ids[:200]
    nbr_ids, nbr_sims = member_neighbors(indexes["exact"], ids, 5, batch_size=64)
    expected, sims = reference(data.X, data.ids, data.X[:200], 6)
    np.testing.assert_array_equal(nbr_ids, expected[:, 1:])
    np.testing.assert_allclose(nbr_sims, sims[:, 1:], atol=1e-5)


def test_member_neighbors_pad_when_the_collection_is_small(data):
    index = ExactIndex().fit(data.X[:3], data.ids[:3])
    nbr_ids, nbr_sims = member_neighbors(index, data.ids[:3], 5)
    assert (nbr_ids[:, 2:] == -1).all() and np.isnan(nbr_sims[:, 2:]).all()
    assert (nbr_ids[:, :2] >= 0).all()


def test_confidence_matches_a_hand_computation():
    # cluster 0 = {a=(1,0), b=(0,1)}, centroid (0.5,0.5): both at squared distance 0.5 -> max_d 0.5
    # cluster 1 = {(-1,0), (-0.6,-0.8)}, centroid (-0.8,-0.4): both at 0.04 + 0.16 = 0.2
    X = np.array([[1, 0], [0, 1], [-1, 0], [-0.6, -0.8]], np.float32)
    centroids = np.array([[0.5, 0.5], [-0.8, -0.4]], np.float32)
    radii = ClusterRadii.from_data(X, centroids)
    np.testing.assert_allclose(radii.max_distances, [0.5, 0.2], atol=1e-6)
    index = ExactIndex().fit(X, [10, 11, 12, 13])
    # query (0.8, 0.6) is in cluster 0; a: cos 0.8 -> d = 2 - 1.6 = 0.4 -> 1 - 0.4/0.5 = 0.2
    # b: cos 0.6 -> d = 0.8 -> 1 - 1.6 < 0 -> clipped to 0
    (res,) = search(index, [0.8, 0.6], 2, clusters=radii)
    assert res.ids.tolist() == [10, 11]
    np.testing.assert_allclose(res.confidences, [0.2, 0.0], atol=1e-6)
    # query (-0.6,-0.8) is in cluster 1: itself d = 0 -> 1; (-1,0): cos 0.6, d 0.8 -> 1 - 4 -> 0
    (res,) = search(index, [-0.6, -0.8], 2, clusters=radii)
    np.testing.assert_allclose(res.confidences, [1.0, 0.0], atol=1e-6)
    ivf = IVFIndex(centroids=centroids, nprobe=2).fit(X, [10, 11, 12, 13])
    np.testing.assert_allclose(ivf.cluster_radii().max_distances, [0.5, 0.2], atol=1e-6)
    np.testing.assert_allclose(search(ivf, [0.8, 0.6], 2)[0].confidences, [0.2, 0.0], atol=1e-6)


@pytest.mark.parametrize("nprobe", [1, 3, 16])
def test_ivf_search_scores_confidence_in_the_cluster_its_coarse_search_found(nprobe, data):
    index = IVFIndex(nlist=16, nprobe=nprobe).fit(data.X, data.ids)
    radii = index.cluster_radii()
    for batch in (data.Q, data.Q[:1]):
        routed = search(index, batch, 10)
        given = search(index, batch, 10, clusters=radii)  # the plain search, radii assigning the queries
        sims, labels = index.knn(batch, 10)
        for res, ref, row_ids in zip(routed, given, labels):
            np.testing.assert_array_equal(res.ids, row_ids)
            np.testing.assert_array_equal(res.ids, ref.ids)
            np.testing.assert_allclose(res.confidences, ref.confidences, atol=1e-6)


def test_cluster_max_distances_match_a_loop(data):
    rng = np.random.default_rng(2)
    centroids = rng.standard_normal((7, data.X.shape[1])).astype(np.float32)
    nearest = np.argmin(((data.X[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    labels = rng.integers(0, 7, len(data.X))
    for given, assigned in ((None, nearest), (labels, labels)):
        expected = [max([((x - centroids[c]) ** 2).sum() for x in data.X[assigned == c]], default=0) for c in range(7)]
        np.testing.assert_allclose(cluster_max_distances(data.X, centroids, given), expected, rtol=1e-5)
    with pytest.raises(InvalidParameterError, match=r"cluster numbers in \[0, 7\)"):
        cluster_max_distances(data.X, centroids, labels + 1)


def test_no_clusters_and_no_calibrator_give_no_scores(indexes, data):
    res = search(indexes["hnsw"], data.Q[0], 3)[0]
    assert res.confidences is None and res.probabilities is None
    records = res.to_records()
    assert records[0]["confidence"] is None and set(records[0]) == {
        "id", "similarity", "distance", "confidence", "probability"
    }


@pytest.mark.parametrize("method", ["isotonic", "logistic"])
def test_match_calibrator_recovers_a_known_probability(method):
    rng = np.random.default_rng(3)
    sims = rng.uniform(-1, 1, 20000)
    truth = lambda s: 1 / (1 + np.exp(-8 * (s - 0.3)))
    same = rng.random(len(sims)) < truth(sims)
    calibrator = MatchCalibrator(method).fit(sims, same)
    grid = np.linspace(-0.9, 0.9, 19)
    proba = calibrator.predict_proba(grid)
    assert np.abs(proba - truth(grid)).max() < 0.08
    assert (np.diff(proba) >= 0).all() and proba.dtype == np.float32
    assert calibrator.predict_proba(np.array([[2.0]])).shape == (1, 1)


def test_match_calibrator_refuses_what_it_cannot_learn():
    with pytest.raises(InvalidParameterError, match="both same-label and different-label"):
        MatchCalibrator().fit([0.1, 0.9], [True, True])
    with pytest.raises(InvalidParameterError, match="method must be one of"):
        MatchCalibrator("magic").fit([0.1, 0.9], [True, False])
    with pytest.raises(VectorIndexError, match="not fitted"):
        MatchCalibrator().predict_proba([0.5])


def test_fit_calibrator_gives_calibrated_probabilities_only_with_labels(make):
    data = make(n=3000, clusters=20, spread=1.6, seed=4)  # overlapping clusters: mixed neighbours
    index = ExactIndex().fit(data.X, data.ids)
    calibrator = fit_calibrator(index, data.ids[:2000], data.labels[:2000], k=10)
    held_out = slice(2000, 2300)
    label_of = dict(zip(data.ids.tolist(), data.labels.tolist()))
    proba, same = [], []
    for own, x, label in zip(data.ids[held_out], data.X[held_out], data.labels[held_out]):
        res = search(index, x, 10, exclude_ids=[own], calibrator=calibrator)[0]
        proba.append(res.probabilities)
        same.append([label_of[i] == label for i in res.ids.tolist()])
    proba, same = np.concatenate(proba), np.concatenate(same)
    assert 0.2 < same.mean() < 0.9 and ((proba >= 0) & (proba <= 1)).all()
    assert abs(proba.mean() - same.mean()) < 0.05  # calibrated on average
    assert proba[same].mean() > proba[~same].mean() + 0.1
    assert fit_calibrator(index, data.ids, [None] * len(data.ids)) is None
    assert fit_calibrator(index, data.ids, np.zeros(len(data.ids), dtype=int)) is None
    with pytest.raises(InvalidParameterError, match="one per id"):
        fit_calibrator(index, data.ids, [1, 2])


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_single_queries_match_batched_rows_and_restore_the_thread_count(kind, indexes, data, monkeypatch):
    import faiss

    before = faiss.omp_get_max_threads()
    used = []
    searched_by = ["_routed_many", "_routed_one"] if kind == "ivf" else ["_knn"]  # ivf also finds the own cluster

    def spying(real):
        def knn(self, *args, **kwargs):
            used.append(faiss.omp_get_max_threads())
            return real(self, *args, **kwargs)

        return knn

    for name in searched_by:
        monkeypatch.setattr(type(indexes[kind]), name, spying(getattr(type(indexes[kind]), name)))
    calibrator = MatchCalibrator("logistic").fit(np.linspace(-1, 1, 40), np.linspace(-1, 1, 40) > 0.2)
    clusters = None if kind == "ivf" else ClusterRadii.from_data(data.X, data.X[:: len(data.X) // 8])
    near = data.X[:5] + 0.05 * np.random.default_rng(3).standard_normal(data.X[:5].shape).astype(np.float32)
    queries = near / np.linalg.norm(near, axis=1, keepdims=True)  # near members: confidences in (0, 1)
    batched = search(indexes[kind], queries, 10, clusters=clusters, calibrator=calibrator)
    singles = [search(indexes[kind], q, 10, clusters=clusters, calibrator=calibrator)[0] for q in queries]
    assert used == [before] + [1] * 5 and faiss.omp_get_max_threads() == before
    for a, b in zip(batched, singles):  # a single query takes a shorter scoring path: same numbers
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_allclose(a.similarities, b.similarities, atol=1e-6)  # FAISS batches sum differently
        np.testing.assert_array_equal(b.distances, np.float32(2.0) - np.float32(2.0) * b.similarities)
        np.testing.assert_allclose(a.confidences, b.confidences, atol=1e-6)
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-7)
        assert b.confidences.dtype == b.probabilities.dtype == np.float32
    confidences = np.concatenate([b.confidences for b in singles])
    assert ((confidences > 0) & (confidences < 1)).any()


def test_a_unit_query_is_searched_as_given_and_any_other_is_normalised(indexes, data):
    from lookalike.index._checks import UNIT_QUERY_TOLERANCE, as_queries

    query = data.Q[:1] / np.linalg.norm(data.Q[:1])
    assert abs(float(np.dot(query[0], query[0])) - 1.0) <= UNIT_QUERY_TOLERANCE
    assert as_queries(query, query.shape[1]) is query  # no copy, no division
    scaled = as_queries(query * np.float32(1.001), query.shape[1])
    np.testing.assert_allclose(scaled, query, atol=1e-6)
    for kind, index in indexes.items():
        given, normalised = search(index, query, 10)[0], search(index, query * np.float32(1.001), 10)[0]
        np.testing.assert_array_equal(given.ids, normalised.ids, err_msg=kind)
        np.testing.assert_allclose(given.similarities, normalised.similarities, atol=1e-6, err_msg=kind)

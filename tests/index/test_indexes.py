"""Every index kind against brute-force numpy; add/remove; save/load (incl. mmap); errors."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.config import IndexConfig
from lookalike.errors import InvalidParameterError, VectorIndexError
from lookalike.index import (
    ExactIndex,
    HNSWIndex,
    IVFIndex,
    choose_kind,
    create_index,
    index_class,
    index_kinds,
    load_index,
    search,
)

KINDS = ["exact", "ivf", "hnsw"]
WIDE = {"exact": {}, "ivf": {"nlist": 16, "nprobe": 8}, "hnsw": {"ef_search": 128}}


def build(kind, data, **settings):
    return index_class(kind)(**{**WIDE[kind], **settings}).fit(data.X, data.ids)


def result_ids(index, Q, k, **kwargs):
    return [r.ids for r in search(index, Q, k, **kwargs)]


def recall(got, expected):
    return np.mean([len(set(g.tolist()) & set(e.tolist())) / len(e) for g, e in zip(got, expected)])


def test_registry_lists_the_kinds():
    assert index_kinds() == ["exact", "hnsw", "ivf", "ondisk"]
    with pytest.raises(InvalidParameterError, match="unknown index kind 'annoy'"):
        index_class("annoy")


def test_exact_matches_brute_force_up_to_ties(data, reference):
    index = build("exact", data)
    expected_ids, expected_sims = reference(data.X, data.ids, data.Q, 10)
    for res, e_ids, e_sims in zip(search(index, data.Q, 10), expected_ids, expected_sims):
        np.testing.assert_allclose(res.similarities, e_sims, atol=1e-5)
        tied = np.abs(np.diff(e_sims, prepend=np.inf)) < 1e-6
        tied |= np.abs(np.diff(e_sims, append=-np.inf)) < 1e-6
        np.testing.assert_array_equal(res.ids[~tied], e_ids[~tied])
        np.testing.assert_allclose(res.distances, 2 - 2 * e_sims, atol=2e-5)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"], ids=["ivf-nprobe8", "hnsw-ef128"])
def test_approximate_recall_at_10_is_high_with_a_wide_search(kind, data, reference):
    expected, _ = reference(data.X, data.ids, data.Q, 10)
    assert recall(result_ids(build(kind, data), data.Q, 10), expected) >= 0.95


def test_ivf_searching_every_cluster_is_exact(data, reference):
    expected, _ = reference(data.X, data.ids, data.Q, 10)
    got = result_ids(build("ivf", data), data.Q, 10, nprobe=16)
    assert recall(got, expected) == 1.0


def test_ivf_nprobe_1_returns_only_members_of_the_query_cluster(data):
    index = build("ivf", data, nprobe=1)
    centroids = index.centroids_
    # independent cluster assignment: nearest centroid by squared L2, in numpy
    nearest = lambda V: np.argmin(((V[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    data_cluster = nearest(data.X)
    for q, res in zip(data.Q, search(index, data.Q, 10)):
        members = data_cluster == nearest(q[None])[0]
        assert set(res.ids.tolist()) <= set(data.ids[members].tolist())
        sims = data.X[members] @ q  # exact ranking inside the cluster
        best = data.ids[members][np.argsort(-sims, kind="stable")[: len(res)]]
        assert set(res.ids.tolist()) == set(best.tolist())


def test_ivf_uses_given_centroids_and_assignments_like_the_clustering_run(data):
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=12, n_init=1, random_state=0).fit(data.X)
    index = IVFIndex(centroids=km.cluster_centers_, nprobe=1).fit(data.X, data.ids, assignments=km.labels_)
    np.testing.assert_allclose(index.centroids_, km.cluster_centers_, atol=1e-6)
    label_of = dict(zip(data.ids.tolist(), km.labels_.tolist()))
    for q, res in zip(data.Q, search(index, data.Q, 10)):
        cluster = km.predict(q[None])[0]
        assert {label_of[i] for i in res.ids.tolist()} == {cluster}
    for c in range(12):
        assert set(index.list_ids(c).tolist()) == set(data.ids[km.labels_ == c].tolist())


def test_ivf_assignments_override_the_nearest_centroid(data):
    centroids = data.X[:4]
    index = IVFIndex(centroids=centroids).fit(data.X, data.ids, assignments=np.zeros(len(data.X), dtype=int))
    assert len(index.list_ids(0)) == len(data.X)
    with pytest.raises(InvalidParameterError, match=r"assignments must be cluster numbers in \[0, 4\)"):
        index.add([10**9], data.X[:1], assignments=[7])


@pytest.mark.parametrize("kind", KINDS)
def test_incremental_add_equals_building_at_once(kind, data):
    half = len(data.X) // 2
    grown = index_class(kind)(**WIDE[kind]).fit(data.X[:half], data.ids[:half])
    grown.add(data.ids[half:], data.X[half:])
    np.testing.assert_array_equal(grown.ids(), np.sort(data.ids))
    np.testing.assert_allclose(grown.reconstruct(data.ids[-5:]), data.X[-5:])
    if kind == "exact":
        assert [r.ids.tolist() for r in search(grown, data.Q, 5)] == [
            r.ids.tolist() for r in search(build(kind, data), data.Q, 5)
        ]


@pytest.mark.parametrize("kind", KINDS)
def test_removed_ids_are_never_returned_and_can_come_back(kind, data, reference):
    index = build(kind, data)
    nearest, _ = reference(data.X, data.ids, data.Q, 5)
    gone = np.unique(nearest)
    assert index.remove(np.concatenate([gone, gone[:3], [10**12]])) == len(gone)
    assert len(index) == len(data.X) - len(gone)
    assert not index.contains(gone).any()
    for res in search(index, data.Q, 20):
        assert len(res) == 20 and not set(res.ids.tolist()) & set(gone.tolist())
    kept = ~np.isin(data.ids, gone)
    expected, _ = reference(data.X[kept], data.ids[kept], data.Q, 10)
    assert recall(result_ids(index, data.Q, 10), expected) >= 0.95
    back = gone[:1]
    index.add(back, data.X[np.isin(data.ids, back)])
    assert back[0] in search(index, data.X[np.isin(data.ids, back)], 1)[0].ids


def test_adding_an_existing_id_is_refused(data):
    index = build("exact", data)
    with pytest.raises(InvalidParameterError, match=f"id {data.ids[3]} is already in the index"):
        index.add(data.ids[3:4], data.X[3:4])


def test_hnsw_tombstones_signal_rebuild_and_rebuild_drops_them(data):
    index = HNSWIndex(max_tombstone_fraction=0.2).fit(data.X, data.ids)
    index.remove(data.ids[:500])
    assert index.n_tombstones == 500 and not index.needs_rebuild
    index.remove(data.ids[500:700])
    assert index.needs_rebuild
    index.rebuild()
    assert index.n_tombstones == 0 and not index.needs_rebuild
    np.testing.assert_array_equal(index.ids(), np.sort(data.ids[700:]))
    for res in search(index, data.Q, 10):
        assert not np.isin(res.ids, data.ids[:700]).any()


@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "read"])
@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(kind, mmap, data, tmp_path):
    index = build(kind, data)
    index.remove(data.ids[:10])
    path = tmp_path / "vectors.index"
    index.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.index"]  # no temporary left behind
    loaded = load_index(path, mmap=mmap)
    assert type(loaded) is type(index) and loaded.read_only_ is mmap
    np.testing.assert_array_equal(loaded.ids(), index.ids())
    for a, b in zip(search(loaded, data.Q, 10), search(index, data.Q, 10)):
        np.testing.assert_array_equal(a.ids, b.ids)
    if kind == "hnsw":
        assert loaded.n_tombstones == 10 and loaded.ef_search == 128
    if kind == "ivf":
        assert loaded.nprobe == 8 and loaded.nlist == 16
    if mmap:
        with pytest.raises(VectorIndexError, match="read-only"):
            loaded.add([10**9], data.X[:1])
        with pytest.raises(VectorIndexError, match="read-only"):
            loaded.remove(data.ids[10:11])
    else:
        loaded.remove(data.ids[10:11])
        assert len(loaded) == len(index) - 1


def test_save_replaces_an_index_that_is_memory_mapped(data, tmp_path):
    path = tmp_path / "vectors.index"
    build("exact", data).save(path)
    mapped = ExactIndex.load(path, mmap=True)
    smaller = ExactIndex().fit(data.X[:100], data.ids[:100])
    smaller.save(path)
    assert len(mapped) == len(data.X) and len(ExactIndex.load(path)) == 100
    assert search(mapped, data.Q[:1], 3)[0].ids.shape == (3,)


def test_load_refuses_missing_garbage_and_foreign_files(data, tmp_path):
    import faiss

    with pytest.raises(VectorIndexError, match="no index file"):
        load_index(tmp_path / "absent.index")
    (tmp_path / "junk.index").write_bytes(b"not an index at all")
    with pytest.raises(VectorIndexError, match="not a readable FAISS index"):
        load_index(tmp_path / "junk.index")
    faiss.write_index(faiss.IndexFlatL2(4), str(tmp_path / "l2.index"))
    with pytest.raises(VectorIndexError, match="IndexFlatL2 is not a lookalike index"):
        load_index(tmp_path / "l2.index")
    build("hnsw", data).save(tmp_path / "h.index")
    with pytest.raises(VectorIndexError, match="holds a 'hnsw' index, expected 'exact'"):
        ExactIndex.load(tmp_path / "h.index")


def test_k_above_the_collection_size_returns_everything_sorted(data):
    index = ExactIndex().fit(data.X[:5], data.ids[:5])
    (res,) = search(index, data.Q[0], 50)
    assert sorted(res.ids.tolist()) == sorted(data.ids[:5].tolist())
    assert (np.diff(res.similarities) <= 0).all()


@pytest.mark.parametrize(
    ("queries", "k", "error", "match"),
    [
        (np.ones((1, 32), np.float32), 0, InvalidParameterError, "k must be an integer >= 1"),
        (np.ones((1, 31), np.float32), 3, InvalidParameterError, "dimension 31, the index expects 32"),
        (np.full((1, 32), np.nan, np.float32), 3, InvalidParameterError, "NaN or infinity"),
        (np.zeros((1, 32), np.float32), 3, InvalidParameterError, "zero vector"),
        (np.ones((1, 32), np.int64), 3, InvalidParameterError, "floating dtype"),
    ],
    ids=["k0", "wrong-dim", "nan", "zero", "int-dtype"],
)
def test_bad_queries_are_refused(data, queries, k, error, match):
    with pytest.raises(error, match=match):
        search(build("exact", data), queries, k)


def test_bad_vectors_ids_and_states_are_refused(data):
    with pytest.raises(InvalidParameterError, match="must be L2-normalised"):
        ExactIndex().fit(data.X * 2, data.ids)
    with pytest.raises(InvalidParameterError, match="repeat: id"):
        ExactIndex().fit(data.X[:3], [1, 2, 1])
    with pytest.raises(InvalidParameterError, match="expected 3 ids"):
        ExactIndex().fit(data.X[:3], [1, 2])
    with pytest.raises(InvalidParameterError, match="must be >= 0"):
        ExactIndex().fit(data.X[:2], [-1, 2])
    with pytest.raises(VectorIndexError, match="not built yet"):
        search(HNSWIndex(), data.Q, 3)
    with pytest.raises(VectorIndexError, match="index is empty"):
        search(ExactIndex().fit(np.zeros((0, 32), np.float32), []), data.Q, 3)
    with pytest.raises(InvalidParameterError, match=r"\['nprobe'\] do not apply to the 'exact' index"):
        search(build("exact", data), data.Q, 3, nprobe=4)
    ivf = build("ivf", data)
    for bad in (0, -2, True, 2.0, "4"):
        with pytest.raises(InvalidParameterError, match=f"nprobe must be an integer >= 1, got {bad!r}"):
            search(ivf, data.Q, 3, nprobe=bad)
    with pytest.raises(InvalidParameterError, match=r"\['ef_search'\] do not apply to the 'ivf' index"):
        search(ivf, data.Q, 3, nprobe=2, ef_search=8)
    assert ivf.check_options(nprobe=np.int64(3), ef_search=None) == {"nprobe": 3}
    with pytest.raises(InvalidParameterError, match="needs at least 500 training vectors, got 100"):
        IVFIndex(nlist=500).fit(data.X[:100], data.ids[:100])


def test_auto_picks_exact_then_hnsw_then_ivf_as_collections_grow():
    config = IndexConfig(exact_max=1000, hnsw_max=5000)
    assert choose_kind(1000, config) == "exact"
    assert choose_kind(1001, config) == "hnsw"
    assert choose_kind(5001, config) == "ivf"
    assert [choose_kind(n) for n in (20_000, 250_000, 250_001)] == ["exact", "hnsw", "ivf"]
    assert choose_kind(10, IndexConfig(kind="ivf")) == "ivf"
    assert isinstance(create_index(config, n_vectors=5000), HNSWIndex)
    ivf = create_index(IndexConfig(kind="ivf", nprobe=3), centroids=np.eye(4, dtype=np.float32))
    assert isinstance(ivf, IVFIndex) and ivf.nprobe == 3 and ivf.centroids.shape == (4, 4)


def test_search_options_reach_faiss(reference):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 32)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q = rng.standard_normal((100, 32)).astype(np.float32)
    ids = np.arange(3000)
    expected, _ = reference(X, ids, Q / np.linalg.norm(Q, axis=1, keepdims=True), 10)
    sparse_graph = HNSWIndex(m=4, ef_construction=16).fit(X, ids)  # hard data, weak graph
    assert recall(result_ids(sparse_graph, Q, 10, ef_search=10), expected) < 0.5
    assert recall(result_ids(sparse_graph, Q, 10, ef_search=500), expected) > 0.9
    ivf = IVFIndex(nlist=32, nprobe=1).fit(X, ids)
    assert recall(result_ids(ivf, Q, 10), expected) < 0.5
    assert recall(result_ids(ivf, Q, 10, nprobe=32), expected) == 1.0

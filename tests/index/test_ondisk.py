"""The ``ondisk`` kind (IVF-PQ, memory-mapped lists, float16 re-ranking) against brute force."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike._faiss import import_faiss
from lookalike.config import IndexConfig
from lookalike.errors import InvalidParameterError, VectorIndexError
from lookalike.index import OnDiskIndex, choose_kind, create_index, load_index, search
from lookalike.index._rows import RowStore

SMALL = {"nlist": 16, "pq_bytes": 8, "nprobe": 8, "rerank": 50}


@pytest.fixture(scope="module")
def big(make):
    return make(n=4000, d=32, clusters=20, m=50, seed=1)


def build(data, tmp_path: Path, **settings) -> OnDiskIndex:
    return OnDiskIndex(**{**SMALL, "workdir": tmp_path / "work", **settings}).fit(data.X, data.ids)


def found_ids(index, Q, k=10):
    return [r.ids for r in search(index, Q, k)]


def recall(got, expected):
    return np.mean([len(set(g.tolist()) & set(e.tolist())) / len(e) for g, e in zip(got, expected)])


def test_recall_at_10_against_brute_force(big, reference, tmp_path):
    expected, _ = reference(big.X, big.ids, big.Q, 10)
    assert recall(found_ids(build(big, tmp_path), big.Q), expected) >= 0.95


def test_full_probe_and_rerank_is_exact_up_to_float16(big, reference, tmp_path):
    index = build(big, tmp_path, nprobe=16, rerank=len(big.X))
    expected_ids, expected_sims = reference(big.X, big.ids, big.Q, 5)
    for res, e_ids, e_sims in zip(search(index, big.Q, 5), expected_ids, expected_sims):
        np.testing.assert_allclose(res.similarities, e_sims, atol=2e-3)
        assert recall([res.ids], [e_ids]) >= 0.8  # float16 may swap near-ties only
    assert recall(found_ids(index, big.Q, 5), expected_ids) >= 0.97


def test_pq_alone_ranks_worse_than_with_reranking(big, reference, tmp_path):
    index = build(big, tmp_path)
    expected, _ = reference(big.X, big.ids, big.Q, 10)
    _, pq_only = index.knn(big.Q, 10, None, rerank=10)
    _, reranked = index.knn(big.Q, 10, None, rerank=100)
    assert recall(pq_only, expected) < recall(reranked, expected)


def test_ids_follow_adds_and_removes_before_and_after_saving(big, tmp_path):
    n = len(big.X)
    index = build(big.__class__(big.X[: n // 2], big.ids[: n // 2], big.labels, big.Q), tmp_path, shard_rows=500)
    path = tmp_path / "index" / "ondisk.faiss"
    index.save(path)
    index.add(big.ids[n // 2 :], big.X[n // 2 :])  # into shards and the in-memory shard
    gone = np.concatenate([big.ids[:100], big.ids[-100:]])  # saved ones (tombstones), new ones
    assert index.remove(gone) == 200
    live = np.setdiff1d(big.ids, gone)
    np.testing.assert_array_equal(index.ids(), live)
    assert not np.isin(np.concatenate(found_ids(index, big.X[:300])), gone).any()
    index.save(path)
    reloaded = load_index(path, mmap=True)
    np.testing.assert_array_equal(reloaded.ids(), live)
    assert not np.isin(np.concatenate(found_ids(reloaded, big.X[:300])), gone).any()
    assert import_faiss().extract_index_ivf(reloaded.index_).ntotal == len(live)  # deleted, not hidden


def test_readding_a_removed_id_finds_its_new_vector(big, tmp_path):
    index = build(big, tmp_path)
    path = tmp_path / "ondisk.faiss"
    index.save(path)
    writable = load_index(path, mmap=False)
    target = int(big.ids[0])
    writable.remove([target])
    writable.add([target], big.X[1:2])  # the same id, another vector
    assert int(search(writable, big.X[1], 2)[0].ids[0]) in (target, int(big.ids[1]))
    writable.save(path)
    reloaded = load_index(path)
    assert len(reloaded) == len(big.X)
    np.testing.assert_allclose(reloaded.reconstruct([target])[0], big.X[1], atol=2e-3)
    assert target not in search(reloaded, big.X[0], 3)[0].ids[:1] or np.allclose(big.X[0], big.X[1])


def test_reload_from_disk_answers_as_before(big, tmp_path):
    index = build(big, tmp_path)
    before = index.knn(big.Q, 10)
    path = tmp_path / "lib" / "index" / "ondisk-abc.faiss"
    index.save(path)
    for mmap in (True, False):
        again = load_index(path, mmap=mmap)
        assert isinstance(again, OnDiskIndex) and again.read_only_ is mmap
        after = again.knn(big.Q, 10)
        np.testing.assert_array_equal(after[1], before[1])
        np.testing.assert_allclose(after[0], before[0], atol=1e-6)
        assert (again.nprobe, again.rerank, again.pq_bytes) == (8, 50, 8)
    np.testing.assert_allclose(again.reconstruct(big.ids[:5]), big.X[:5], atol=2e-3)


def test_a_moved_library_folder_still_loads(big, tmp_path):
    build(big, tmp_path).save(tmp_path / "a" / "ondisk.faiss")
    (tmp_path / "a").rename(tmp_path / "b")
    assert len(load_index(tmp_path / "b" / "ondisk.faiss")) == len(big.X)


def test_lists_and_rows_are_memory_mapped_not_read(big, tmp_path):
    path = tmp_path / "ondisk.faiss"
    build(big, tmp_path).save(path)
    index = load_index(path, mmap=True)
    index.knn(big.Q[:1], 10)  # the row file is mapped on first use
    lists, rows = sorted(index.on_disk_files, key=lambda p: p.suffix)
    assert lists.suffix == ".f16" or rows.suffix == ".f16"
    maps = Path("/proc/self/maps").read_text()
    for f in index.on_disk_files:
        lines = [line for line in maps.splitlines() if line.endswith(str(f))]
        assert f.parent == path.parent and lines, f"{f} is not memory-mapped"
        assert all(line.split()[1].startswith("r-") for line in lines), f"{f} is mapped writable"
    lists_obj = import_faiss().downcast_InvertedLists(import_faiss().extract_index_ivf(index.index_).invlists)
    assert isinstance(lists_obj, import_faiss().OnDiskInvertedLists)
    with pytest.raises(VectorIndexError, match="read-only"):
        index.add([10**9], big.X[:1])


def test_a_failed_save_leaves_the_previous_index(big, tmp_path, monkeypatch):
    path = tmp_path / "ondisk.faiss"
    index = build(big, tmp_path)
    index.save(path)
    before = load_index(path).knn(big.Q, 10)
    writable = load_index(path, mmap=False)
    writable.remove(big.ids[:500])
    faiss = import_faiss()

    def crash(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(faiss, "write_index", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        writable.save(path)
    monkeypatch.undo()
    after = load_index(path).knn(big.Q, 10)
    np.testing.assert_array_equal(after[1], before[1])


def test_shards_merge_into_one_lists_file_and_scratch_is_cleared(big, tmp_path):
    index = OnDiskIndex(**SMALL, shard_rows=700).fit(big.X, big.ids)
    assert len(index._shards) >= 4
    scratch = index._store.path.parent
    path = tmp_path / "ondisk.faiss"
    index.save(path)
    suffixes = sorted(p.name.split(".", 3)[-1].split(".", 1)[-1] for p in tmp_path.glob("ondisk.faiss.*"))
    assert suffixes == ["f16", "ivfdata", "json", "map.npy"]
    assert not scratch.exists()


def test_shards_hold_no_precomputed_table_and_answer_as_the_saved_index(big, tmp_path):
    """One IVF-PQ table per shard made a 10M build's memory grow with n; the answers must not change."""
    index = OnDiskIndex(**SMALL, shard_rows=700).fit(big.X, big.ids)
    faiss = import_faiss()
    tables = [faiss.downcast_index(faiss.extract_index_ivf(raw)).precomputed_table.size() for _, raw in index._shards]
    assert len(tables) >= 4 and tables == [0] * len(tables)
    unsaved = index.knn(big.Q, 10)
    index.save(tmp_path / "ondisk.faiss")
    saved = load_index(tmp_path / "ondisk.faiss").knn(big.Q, 10)
    np.testing.assert_array_equal(unsaved[1], saved[1])


def test_rerank_zero_grows_with_the_collection(big, tmp_path, monkeypatch):
    import lookalike.index.ondisk as ondisk_module

    index = build(big, tmp_path, rerank=0)
    depths: list[int] = []
    real = index._candidates
    monkeypatch.setattr(index, "_candidates", lambda q, depth, *rest: depths.append(depth) or real(q, depth, *rest))
    index.knn(big.Q[:1], 10)
    monkeypatch.setattr(ondisk_module, "DENSE_ROWS", len(big.X))  # this collection counts as dense now
    index.knn(big.Q[:1], 10)
    index.knn(big.Q[:1], 10, None, rerank=123)  # an explicit depth wins
    assert depths == [400, 800, 123]


def test_row_store_appends_after_a_partial_row(tmp_path):
    store = RowStore(tmp_path / "rows.f16", 4)
    store.append(np.eye(4, dtype=np.float32)[:2])
    with open(store.path, "ab") as fh:
        fh.write(b"\x00\x01\x02")  # a killed writer's partial row
    rows = store.append(np.eye(4, dtype=np.float32)[2:])
    np.testing.assert_array_equal(rows, [3, 4])
    np.testing.assert_array_equal(store.read(np.array([0, 3, 4])), np.eye(4, dtype=np.float32)[[0, 2, 3]])


def test_code_bytes_divide_the_dimension(big):
    assert OnDiskIndex(nlist=4, pq_bytes=5).fit(big.X, big.ids).code_bytes_ == 4
    assert OnDiskIndex(nlist=4, pq_bytes=64).fit(big.X, big.ids).code_bytes_ == 32


def test_bad_settings_are_refused(big):
    with pytest.raises(InvalidParameterError, match="needs at least 256 training vectors"):
        OnDiskIndex(nlist=4, pq_bytes=8).fit(big.X[:100], big.ids[:100])
    with pytest.raises(InvalidParameterError, match="do not apply to the 'ondisk' index"):
        OnDiskIndex(**SMALL).fit(big.X, big.ids).knn(big.Q, 10, None, ef_search=4)


def test_auto_picks_ondisk_above_its_threshold(big):
    config = IndexConfig(exact_max=100, hnsw_max=1000, ondisk_min=3000, pq_bytes=8, nlist=16)
    assert [choose_kind(n, config) for n in (100, 1000, 3000, 3001)] == ["exact", "hnsw", "ivf", "ondisk"]
    assert choose_kind(2_000_001) == "ondisk" and choose_kind(2_000_000) == "ivf"
    index = create_index(config, n_vectors=len(big.X))
    assert isinstance(index, OnDiskIndex) and index.pq_bytes == 8
    assert len(index.fit(big.X, big.ids)) == len(big.X)
    with pytest.raises(InvalidParameterError, match="ondisk_min must be >= hnsw_max"):
        IndexConfig(exact_max=100, hnsw_max=1000, ondisk_min=10)


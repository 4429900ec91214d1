"""A library past the (lowered) ``ondisk_min`` threshold builds and updates an ``ondisk`` index."""

from __future__ import annotations

from lookalike.config import IndexConfig
from lookalike.index import OnDiskIndex, load_index
from lookalike.search import library_index
from tests.searchlib import brute_force, build, vector_of, write_labelled


def test_a_library_above_the_threshold_gets_an_ondisk_index_kept_current(tmp_path, monkeypatch):
    low = IndexConfig(exact_max=10, hnsw_max=100, ondisk_min=200, nlist=8, pq_bytes=8, rerank=400)
    monkeypatch.setattr(library_index, "index_config", lambda store, kind=None: low)
    lib = build(tmp_path, per_class=100)
    try:
        record = library_index.update_index(lib.store, "auto")
        assert record.kind == "ondisk" and record.count == 300
        stored = load_index(library_index.index_path(lib.folder, "ondisk", record.reducer))
        assert isinstance(stored, OnDiskIndex)
        write_labelled(tmp_path / "more", 5, start=500)
        lib.add([tmp_path / "more"])
        assert library_index.update_index(lib.store, "auto").count == 315
        own = int(lib.reduced().ids[7])
        expected, _ = brute_force(lib, vector_of(lib, own), 5, exclude=(own,))
        got = [h.image_id for h in lib.search(own, k=5).hits]
        assert len(set(got) & set(expected)) >= 4
    finally:
        lib.close()

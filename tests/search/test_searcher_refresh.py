"""A read-only Searcher never misses a writer's commit that lands while it is reloading."""

from __future__ import annotations

import lookalike.search.searcher as searcher_module
from lookalike import Library
from lookalike.search.searcher import Searcher
from tests.searchlib import build, write_labelled


def test_a_commit_during_a_reload_is_picked_up_by_the_next_refresh(tmp_path, monkeypatch):
    with build(tmp_path) as writer:
        writer.vector_index()
        real_open = searcher_module.open_index

        def open_while_the_writer_commits(*args, **kwargs):
            live = real_open(*args, **kwargs)  # the reader has read the catalog and the index ...
            write_labelled(tmp_path / "photos", 1, start=90)
            writer.add()  # ... and only then does the writer commit 3 more images
            return live

        monkeypatch.setattr(searcher_module, "open_index", open_while_the_writer_commits)
        with Library.open(writer.folder, readonly=True) as reader:
            searcher = Searcher(reader.store, update=False)
            assert len(searcher.live) == 36
            monkeypatch.setattr(searcher_module, "open_index", real_open)
            assert searcher.refresh() and len(searcher.live) == 39
            assert not searcher.refresh()

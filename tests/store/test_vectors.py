"""Raw vector file: append/commit protocol, truncation of uncommitted rows, compaction."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import LibraryFormatError
from lookalike.store.vectors import RawVectors


@pytest.fixture
def store(tmp_path):
    return RawVectors(tmp_path / "vectors", dim=4)


def test_append_then_read_round_trips(store):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(2, 4))
    rows = store.append(0, 0, a)
    rows = store.append(0, rows, b)
    assert rows == 5
    np.testing.assert_array_equal(store.read(0, rows), np.vstack([a, b]).astype(np.float32))


def test_uncommitted_rows_are_overwritten_by_the_next_append(store):
    store.append(0, 0, np.ones((2, 4)))
    store.append(0, 2, np.full((3, 4), 9.0))  # a writer killed before committing row count 5
    rows = store.append(0, 2, np.full((1, 4), 7.0))  # next run starts from the committed 2
    assert rows == 3
    got = store.read(0, 3)
    np.testing.assert_array_equal(got[2], np.full(4, 7.0, dtype=np.float32))
    assert store.path(0).stat().st_size == 3 * 4 * 4


def test_truncate_drops_trailing_garbage(store):
    store.append(0, 0, np.ones((4, 4)))
    store.truncate(0, 1)
    assert store.path(0).stat().st_size == 16


def test_read_more_rows_than_the_file_holds_is_a_format_error(store):
    store.append(0, 0, np.ones((1, 4)))
    with pytest.raises(LibraryFormatError, match="holds 1 rows, the catalog committed 3"):
        store.read(0, 3)


def test_wrong_dimension_is_refused(store):
    with pytest.raises(ValueError, match="dim 4"):
        store.append(0, 0, np.ones((2, 3)))


def test_compact_keeps_live_rows_in_order_in_a_new_generation(store):
    data = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)
    store.append(0, 0, data)
    live = np.array([5, 1, 3])
    generation = store.compact(0, live, chunk=2)
    assert generation == 1
    np.testing.assert_array_equal(store.read(1, 3), data[live])
    store.remove_other_generations(keep=1)
    assert not store.path(0).exists()

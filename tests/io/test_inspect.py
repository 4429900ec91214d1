"""inspect_file: the same outcome whether a file is read whole or streamed."""

from __future__ import annotations

import pytest

import lookalike.io.inspect as inspect_module
from lookalike.io.inspect import inspect_file
from lookalike.io.scan import walk

LIMIT = 100_000_000


def test_streamed_files_get_the_same_hash_header_and_reason(shared_bad_folder, monkeypatch: pytest.MonkeyPatch) -> None:
    found = list(walk([shared_bad_folder.root]))
    whole = [inspect_file(f, max_pixels=LIMIT) for f in found]
    monkeypatch.setattr(inspect_module, "read_whole", lambda path: None)  # as if every file were large
    streamed = [inspect_file(f, max_pixels=LIMIT) for f in found]
    assert streamed == whole
    assert sum(i.digest is not None for i in whole) > 10 and sum(i.problem is not None for i in whole) > 3

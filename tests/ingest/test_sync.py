"""Indexing a folder of good and bad files: every file is accounted for, with the right outcome."""

from __future__ import annotations

import os

import pytest

from lookalike import Library
from lookalike.io.scan import walk
from lookalike.store.catalog import encode_path

REASON_START = {
    "not_image": ("not an image", "not a supported image format", "empty file"),
    "corrupt": ("truncated or corrupt",),
    "too_large": ("image too large",),
    "unreadable": ("permission denied", "broken symbolic link", "symbolic link loop", "folder already scanned"),
}


@pytest.fixture
def indexed(tmp_path, bad_folder):
    lib = Library.create(tmp_path / "lib.lookalike", backbone="pixels")
    report = lib.add([bad_folder.root])
    yield lib, report, bad_folder
    lib.close()


def row_for(lib, path):
    rows = lib.catalog.query(
        "SELECT status, reason FROM catalog WHERE path_bytes = ?", (encode_path(path),)
    )
    assert len(rows) == 1, f"{path}: {len(rows)} catalog rows"
    return rows[0]


def test_every_bad_file_is_reported_with_its_reason(indexed):
    lib, _, bad_folder = indexed
    for name, (path, kind) in bad_folder.items():
        status, reason = row_for(lib, path)
        if kind == "ok":
            assert status == "embedded", f"{name}: {status} ({reason})"
        else:
            assert status == "skipped", f"{name}: expected skipped ({kind}), got {status}"
            assert reason.startswith(REASON_START[kind]), f"{name}: {reason!r}"


def test_nothing_is_dropped_silently(indexed):
    lib, report, bad_folder = indexed
    found = list(walk([bad_folder.root]))
    status = lib.status()
    assert status.files == len(found) == report.sync.scanned
    assert status.embedded + status.duplicate_files + status.skipped_files == status.files
    assert status.pending == 0
    assert sum(n for _, n in status.skipped_by_reason) == status.skipped_files


def test_non_utf8_and_non_ascii_names_are_embedded(indexed):
    lib, _, bad_folder = indexed
    odd = [p for p, _ in bad_folder.values() if not os.fsencode(p).isascii()]
    assert len(odd) >= 2
    for path in odd:
        assert row_for(lib, path)[0] == "embedded"


def test_pixel_limit_is_configurable(tmp_path, bad_folder):
    from lookalike.config import IngestConfig

    with Library.create(tmp_path / "small.lookalike", backbone="pixels",
                        ingest=IngestConfig(max_pixels=1000)) as lib:
        lib.add([bad_folder.root])
        kinds = dict(lib.status().skipped_by_reason)
        assert kinds["image too large"] > sum(1 for _, k in bad_folder.values() if k == "too_large")
    with Library.open(tmp_path / "small.lookalike", readonly=True) as lib:
        assert lib.manifest.ingest.max_pixels == 1000

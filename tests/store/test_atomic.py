"""Atomic replacement never leaves a half-written target."""

from __future__ import annotations

import pytest

from lookalike.store.atomic import atomic_path, remove_stale_temporaries, write_bytes


def test_write_bytes_replaces_content(tmp_path):
    target = tmp_path / "a" / "file.bin"
    write_bytes(target, b"one")
    write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.faiss.tmp-123").write_bytes(b"x")
    (tmp_path / "keep.txt").write_bytes(b"y")
    assert remove_stale_temporaries(tmp_path) == 1
    assert (tmp_path / "keep.txt").exists()

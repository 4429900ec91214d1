"""Atomic file replacement: write a temporary file beside the target, fsync, rename into place.

A reader sees either the old file or the new one, never a half-written one, and a killed writer
leaves at most a stray ``*.tmp-*`` file, which :func:`remove_stale_temporaries` clears.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".tmp-"


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target`` atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}{TMP_MARK}{os.getpid()}")
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporaries left by killed writers under ``folder``; returns how many."""
    removed = 0
    for path in folder.rglob(f"*{TMP_MARK}*"):
        if path.is_file():
            path.unlink()
            removed += 1
    return removed

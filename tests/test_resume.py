"""kill -9 at any moment leaves a readable library, and the next run embeds nothing twice."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest

from lookalike import Library
from tests.imagegen import write_images

TOTAL = 1500


def index_command(photos, library):
    return [
        sys.executable, "-m", "lookalike.cli.main", "index", str(photos), "--library", str(library),
        "--backbone", "pixels", "--no-progress", "--batch-size", "4", "--commit-every", "20",
    ]


def progress_counts(library):
    """(files in catalog, committed vector rows), read like any concurrent reader would."""
    db = sqlite3.connect(f"file:{library / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        files = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        rows = db.execute("SELECT value FROM meta WHERE key = 'raw_rows'").fetchone()
        return files, int(rows[0]) if rows else 0
    finally:
        db.close()


def kill_when(proc, library, reached, timeout=120.0):
    """SIGKILL ``proc`` as soon as ``reached(files, rows)``; False if it finished first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if reached(*progress_counts(library)):
                proc.kill()
                proc.wait()
                return True
        except sqlite3.Error:
            pass  # catalog not created yet
        time.sleep(0.005)
    proc.wait()
    return False


def check_consistent(library):
    """Invariants that must hold after any kill."""
    with Library.open(library, readonly=True) as lib:
        status = lib.status()
        rows = int(lib.catalog.get_meta("raw_rows", "0"))
        ids, vectors = lib.embeddings()
        assert rows == status.embedded == len(ids) == vectors.shape[0]
        assert status.files <= TOTAL
        return status


STAGES = {
    "mid-scan": lambda files, rows: files >= 300,
    "early-embedding": lambda files, rows: rows >= 100,
    "mid-embedding": lambda files, rows: rows >= 600,
    "late-embedding": lambda files, rows: rows >= 1200,
}


@pytest.mark.slow
def test_sigkill_at_each_stage_then_resume(tmp_path):
    photos = tmp_path / "photos"
    write_images(photos, TOTAL)
    library = tmp_path / "lib.lookalike"
    for stage, reached in STAGES.items():
        proc = subprocess.Popen(index_command(photos, library), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        assert kill_when(proc, library, reached), f"the run finished before the {stage} kill"
        before_last_run = check_consistent(library).embedded
    done = subprocess.run(index_command(photos, library), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    status = check_consistent(library)
    assert (status.files, status.embedded, status.pending) == (TOTAL, TOTAL, 0)
    # the last run embedded exactly what the kills left pending: nothing twice
    assert f"embedded {TOTAL - before_last_run:,} images this run" in done.stdout

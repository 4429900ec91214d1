"""Faults a long-running library meets, through the real CLI processes: a full disk during `index`,
a truncated or corrupted index file, a deleted vectors/ folder, a catalog from a newer version.
Each ends in a clear one-line error or an automatic rebuild (never a traceback, never a lost
committed image), and `lookalike check [--repair]` finds and fixes what can be fixed."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from lookalike import Library
from lookalike.api.application import create_app
from tests.searchlib import brute_force, build, class_image, vector_of, write_labelled


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "lookalike.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


def embedded_ids(folder: Path) -> set[int]:
    with Library.open(folder, readonly=True) as lib:
        return set(int(i) for i in lib.catalog.embedded_rows()[0])


def check_json(folder: Path, *extra: str) -> dict:
    done = run("check", "--library", str(folder), "--json", *extra)
    return json.loads(done.stdout)


def levels(report: dict) -> dict[str, str]:
    return {f["part"]: f["level"] for f in report["findings"]}


@pytest.fixture
def library(tmp_path):
    with build(tmp_path) as lib:
        lib.vector_index()
    return tmp_path / "lib.lookalike"


def index_file(folder: Path) -> Path:
    (path,) = (folder / "index").glob("exact-*.faiss")
    return path


def assert_search_matches_brute_force(folder: Path) -> None:
    done = run("search", "id:1", "--library", str(folder), "-k", "5", "--json")
    assert done.returncode == 0, done.stderr
    hits = [h["image_id"] for h in json.loads(done.stdout)["hits"]]
    with Library.open(folder, readonly=True) as lib:
        assert hits == brute_force(lib, vector_of(lib, 1), 5, exclude=(1,))[0]


def test_a_healthy_library_checks_ok(library):
    report = check_json(library)
    assert report["ok"] and set(levels(report).values()) == {"ok"}
    assert {"catalog", "vectors", "reduced", "index exact", "files"} <= set(levels(report))


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_a_damaged_index_file_is_found_rebuilt_and_never_answers_wrong(library, damage):
    path = index_file(library)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:  # flip bytes inside the stored vectors (the end of an IndexFlat's data)
        for offset in range(len(data) - 2000, len(data) - 1000, 7):
            data[offset] ^= 0x5A
        path.write_bytes(bytes(data))
    report = check_json(library)
    assert not report["ok"] and levels(report)["index exact"] == "error"
    from fastapi.testclient import TestClient

    with TestClient(create_app(library)) as client:  # a reader: never a 5xx, never a crash
        answer = client.post("/search", data={"image_id": [1], "k": 5})
        assert answer.status_code == 200 and len(answer.json()["hits"]) == 5
    repaired = check_json(library, "--repair")
    assert repaired["ok"] and "rebuilt the exact index" in repaired["repaired"]
    assert_search_matches_brute_force(library)


def test_a_truncated_index_is_rebuilt_by_the_next_writer(library):
    path = index_file(library)
    path.write_bytes(path.read_bytes()[:100])
    assert_search_matches_brute_force(library)  # `search` on a writable library rebuilds it
    assert check_json(library)["ok"]


def test_a_deleted_vectors_folder_is_a_clear_error_and_repair_embeds_again(library, tmp_path):
    before = embedded_ids(library)
    shutil.rmtree(library / "vectors")
    for command in (["search", "id:1"], ["index"], ["status"]):
        done = run(*command, "--library", str(library))
        if done.returncode:
            assert "check --repair" in done.stderr or "lookalike check" in done.stderr, done.stderr
    assert embedded_ids(library) <= before  # nothing half-written over the lost vectors
    report = check_json(library)
    assert not report["ok"] and levels(report)["vectors"] == "error"
    repaired = check_json(library, "--repair")
    assert repaired["ok"], repaired
    assert embedded_ids(library) == before  # every committed image is back
    assert_search_matches_brute_force(library)


def test_a_catalog_from_a_newer_version_is_refused_clearly(library):
    with sqlite3.connect(library / "catalog.sqlite") as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    for command in (["search", "id:1"], ["index"], ["status"], ["check"], ["serve", "--port", "9"]):
        done = run(*command, "--library", str(library))
        assert done.returncode == 1 and "upgrade lookalike" in done.stderr + done.stdout, (command, done.stderr)


@pytest.fixture
def small_disk(tmp_path):
    """A 8 MB tmpfs mounted for the test (root only), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True, timeout=30)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def test_a_full_disk_during_index_loses_nothing_committed(tmp_path, small_disk):
    photos = tmp_path / "photos"
    write_labelled(photos, 12)
    library = small_disk / "lib.lookalike"
    assert run("index", str(photos), "--library", str(library), "--backbone", "pixels", "--labels", "folder").returncode == 0
    assert run("search", "id:1", "--library", str(library)).returncode == 0  # reduced + index stored
    committed = embedded_ids(library)
    assert len(committed) == 36
    filler = small_disk / f"filler-{uuid.uuid4().hex}"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * max(0, free - 600_000))  # ~50 vectors of 12 KB left
    write_labelled(photos, 100, start=50)
    done = run("index", "--library", str(library))
    assert done.returncode == 1 and "no space left" in done.stderr, done.stderr
    assert "run the same command again" in done.stderr
    assert committed <= embedded_ids(library)  # nothing committed was lost
    filler.unlink()
    assert run("index", "--library", str(library)).returncode == 0  # resumes once there is space
    assert len(embedded_ids(library)) == 36 + 3 * 100
    report = check_json(library)
    assert report["ok"], report
    query = tmp_path / "q.png"
    class_image(2, 4444).save(query)
    done = run("search", str(query), "--library", str(library), "-k", "3", "--json")
    assert [h["label"] for h in json.loads(done.stdout)["hits"]] == ["blue"] * 3


def test_check_on_a_missing_library_is_one_line(tmp_path):
    done = run("check", "--library", str(tmp_path / "none"))
    assert done.returncode == 1
    assert np.sum([line.startswith("error") for line in done.stdout.splitlines()]) == 1


def stored_dhashes(folder: Path) -> dict[int, int]:
    with sqlite3.connect(folder / "catalog.sqlite") as db:
        rows = db.execute("SELECT id, dhash FROM images WHERE status = 'embedded'")
        return {int(i): None if h is None else int(h) for i, h in rows}


@pytest.mark.parametrize("old", ["column dropped", "hashes missing"])
def test_images_without_a_dhash_are_found_and_repair_computes_them_from_unchanged_files(library, old):
    before = stored_dhashes(library)
    assert len(before) > 2 and None not in before.values()
    with sqlite3.connect(library / "catalog.sqlite") as db:
        if old == "column dropped":  # a catalog from before dHashes were stored
            db.execute("ALTER TABLE images DROP COLUMN dhash")
        else:
            db.execute("UPDATE images SET dhash = NULL")
        changed_id, changed_path = db.execute("SELECT image_id, path FROM files ORDER BY id LIMIT 1").fetchone()
    stat = os.stat(changed_path)
    os.utime(changed_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched since the scan
    report = check_json(library)
    assert report["ok"] and levels(report)["hashes"] == "warning"  # a read-only check changes nothing
    assert f"{len(before)} embedded images have no difference hash" in json.dumps(report)
    repaired = check_json(library, "--repair")
    assert f"computed {len(before) - 1} difference hashes from the image files (1 images have" in " ".join(repaired["repaired"])
    after = stored_dhashes(library)
    assert after[changed_id] is None  # a changed file may hold another picture: not used
    assert {i: h for i, h in after.items() if i != changed_id} == {i: h for i, h in before.items() if i != changed_id}
    os.utime(changed_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    check_json(library, "--repair")
    assert stored_dhashes(library) == before and levels(check_json(library))["hashes"] == "ok"

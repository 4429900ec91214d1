"""Embedding on a real two-node Ray cluster (``ray.cluster_utils.Cluster``, one CPU per node).

The cluster is started once for the module. Every test that talks to it has a pytest timeout,
and the driver's own stall timeout is short, so a Ray job that cannot be scheduled fails instead
of hanging. The node-loss test removes the second node: it runs last.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lookalike import Library
from lookalike.embed.distributed import RayConfig
from lookalike.errors import MissingDependencyError
from tests.imagegen import write_images

pytestmark = pytest.mark.slow
STORE_BYTES = 150 * 1024 * 1024
STALL = RayConfig(address="auto", stall_seconds=90)
"""Joins the test's cluster; a job that returns nothing for 90 s fails (before pytest's timeout)."""


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second node, one CPU each; the test process is connected as a driver."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": STORE_BYTES})
    second = nodes.add_node(num_cpus=1, object_store_memory=STORE_BYTES)
    ray.init(address=nodes.address, log_to_driver=False)
    nodes.wait_for_nodes(timeout=60)
    nodes.second = second
    yield nodes
    ray.shutdown()
    nodes.shutdown()


def add_bad_files(folder: Path) -> None:
    """A text file (refused by the scan) and a truncated PNG (refused by the decoder, on a worker)."""
    (folder / "notes.jpg").write_text("not really a photo")
    (folder / "cut.png").write_bytes((folder / "img-00000.png").read_bytes()[:90])


def by_hash(lib: Library) -> dict[str, np.ndarray]:
    ids, vectors = lib.embeddings()
    hashes = dict(lib.catalog.query("SELECT id, hash FROM images"))
    return {hashes[int(i)]: np.asarray(v) for i, v in zip(ids, vectors)}


def skips(lib: Library) -> dict[str, str]:
    return {Path(p).name: r for p, r in lib.catalog.query("SELECT path, reason FROM catalog WHERE status = 'skipped'")}


def classes(lib: Library) -> dict[str, list[int]]:
    rows = lib.catalog.query(
        "SELECT i.hash, c.class_index FROM image_classes c JOIN images i ON i.id = c.image_id ORDER BY i.hash, c.rank"
    )
    out: dict[str, list[int]] = {}
    for digest, index in rows:
        out.setdefault(digest, []).append(index)
    return out


def index_both(tmp_path: Path, backbone: str, count: int) -> tuple[Library, Library]:
    photos = tmp_path / "photos"
    write_images(photos, count)
    add_bad_files(photos)
    local = Library.create(tmp_path / "local.lookalike", backbone=backbone)
    local.add([photos])
    remote = Library.create(tmp_path / "ray.lookalike", backbone=backbone)
    report = remote.add([photos], ray=STALL)
    return local, remote, report


@pytest.mark.timeout(180)
def test_ray_run_equals_local_run_on_both_nodes(cluster, tmp_path):
    local, remote, report = index_both(tmp_path, "pixels", 120)
    with local, remote:
        assert report.embedded == 120 and sum(report.by_worker.values()) == 120
        assert len(report.by_worker) == 2, report.by_worker  # both nodes embedded images
        expected, found = by_hash(local), by_hash(remote)
        assert sorted(found) == sorted(expected)
        for digest, vector in expected.items():
            np.testing.assert_allclose(found[digest], vector, rtol=0, atol=1e-6)
        assert skips(remote) == skips(local)
        assert skips(remote)["cut.png"].startswith("truncated or corrupt PNG")
        assert report.skipped_while_embedding == {skips(local)["cut.png"]: 1}
        status = remote.status()
        assert (status.embedded, status.pending) == (120, 0)
        assert int(remote.catalog.get_meta("raw_rows")) == 120  # one row per image, none twice


@pytest.mark.timeout(240)
def test_real_onnx_backbone_equals_local_run(cluster, tmp_path):
    local, remote, report = index_both(tmp_path, "efficientnet-lite0", 24)
    with local, remote:
        assert report.embedded == 24
        expected, found = by_hash(local), by_hash(remote)
        assert sorted(found) == sorted(expected)
        for digest, vector in expected.items():
            np.testing.assert_allclose(found[digest], vector, rtol=1e-4, atol=1e-4)
        assert classes(remote) == classes(local)
        assert skips(remote) == skips(local)


@pytest.mark.timeout(180)
def test_file_gone_after_the_scan_is_a_skip_with_the_same_reason_as_locally(cluster, tmp_path):
    """Workers read files by path: one that vanished after the scan is skipped, not a crash."""
    from lookalike.config import ExtractConfig
    from lookalike.embed.distributed import extract_on_ray
    from lookalike.embed.extract import extract
    from lookalike.embed.query import pending_decoder
    from lookalike.ingest.sync import sync_roots
    from lookalike.progress import NoProgress

    photos = tmp_path / "photos"
    write_images(photos, 12)
    reports = []
    for name in ("local", "ray"):
        with Library.create(tmp_path / f"{name}.lookalike", backbone="pixels") as lib:
            sync_roots(lib.catalog, [(photos, "none")], lib.manifest.ingest)
            (photos / "img-00003.png").rename(tmp_path / "moved.png")
            backbone, config = lib.backbone(), ExtractConfig()
            if name == "local":
                decode = pending_decoder(lib.manifest)
                reports.append(extract(lib.catalog, lib.vectors, decode, backbone.embed_with_classes, config, NoProgress()))
            else:
                reports.append(extract_on_ray(lib.catalog, lib.vectors, backbone, lib.manifest, config, STALL, NoProgress()))
            (tmp_path / "moved.png").rename(photos / "img-00003.png")
            assert lib.status().embedded == 11
    local, remote = reports
    assert remote.embedded == local.embedded == 11
    assert remote.skipped == local.skipped and len(local.skipped) == 1, (local.skipped, remote.skipped)


@pytest.mark.timeout(120)
def test_actors_that_cannot_be_placed_fail_instead_of_hanging(cluster, tmp_path):
    from lookalike.errors import ClusterError

    write_images(tmp_path / "p", 4)
    too_big = RayConfig(address="auto", actor_cpus=2.0, stall_seconds=15)  # no node has 2 CPUs
    with Library.create(tmp_path / "lib.lookalike", backbone="pixels") as lib:
        with pytest.raises(ClusterError, match="no embeddings came back from the Ray cluster for 15 s"):
            lib.add([tmp_path / "p"], ray=too_big)
        assert lib.status().pending == 4  # nothing lost: the next run embeds them


@pytest.mark.timeout(120)
def test_ray_data_reads_the_parquet_export(cluster, tmp_path):
    import ray.data

    write_images(tmp_path / "p", 30)
    with Library.create(tmp_path / "lib.lookalike", backbone="pixels") as lib:
        lib.add([tmp_path / "p"])
        lib.export_parquet(tmp_path / "out", rows_per_file=16)
        ids, vectors = lib.embeddings()
    rows = ray.data.read_parquet(str(tmp_path / "out")).take_all()
    assert sorted(r["image_id"] for r in rows) == sorted(ids.tolist())
    expected = dict(zip(ids.tolist(), vectors))
    for row in rows:
        np.testing.assert_array_equal(np.asarray(row["vector"], dtype=np.float32), expected[row["image_id"]])


def committed_rows(library: Path) -> int:
    db = sqlite3.connect(f"file:{library / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'raw_rows'").fetchone()
        return int(row[0]) if row else 0
    except sqlite3.Error:
        return 0  # the catalog is not created yet
    finally:
        db.close()


def wait_for_rows(library: Path, rows: int, alive, timeout: float = 120.0) -> bool:
    """Wait until ``rows`` vectors are committed; False if ``alive()`` turns False first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        if (library / "catalog.sqlite").exists() and committed_rows(library) >= rows:
            return True
        time.sleep(0.01)
    return False


@pytest.mark.timeout(240)
def test_driver_killed_mid_run_resumes_without_embedding_twice(cluster, tmp_path):
    total = 1000
    photos, library = tmp_path / "photos", tmp_path / "lib.lookalike"
    write_images(photos, total)
    command = [
        sys.executable, "-m", "lookalike.cli.main", "index", str(photos), "--library", str(library),
        "--backbone", "pixels", "--no-progress", "--batch-size", "4", "--commit-every", "20",
        "--ray", cluster.address,
    ]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        reached = wait_for_rows(library, 40, lambda: driver.poll() is None)
        driver.kill()  # SIGKILL: no cleanup runs
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert reached, "the driver finished (or failed) before it could be killed mid-run"
    with Library.open(library) as lib:
        before = lib.status().embedded
        assert 40 <= before < total
        report = lib.add(ray=STALL)
        status = lib.status()
        assert report.embedded == total - before  # only what the kill left pending
        assert (status.embedded, status.pending) == (total, 0)
        assert int(lib.catalog.get_meta("raw_rows")) == total


@pytest.mark.timeout(300)
def test_lost_node_mid_run_every_image_embedded_once(cluster, tmp_path):
    total = 1000
    photos, library = tmp_path / "photos", tmp_path / "lib.lookalike"
    write_images(photos, total)
    outcome: dict[str, object] = {}

    def run() -> None:
        from lookalike.config import ExtractConfig

        try:
            with Library.create(library, backbone="pixels") as lib:
                outcome["report"] = lib.add([photos], ray=STALL, extract=ExtractConfig(batch_size=4, commit_every=20))
                outcome["status"] = lib.status()
                outcome["rows"] = int(lib.catalog.get_meta("raw_rows"))
        except BaseException as exc:  # re-raised by the test thread
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    reached = wait_for_rows(library, 40, worker.is_alive)
    if reached:
        cluster.remove_node(cluster.second, allow_graceful=False)
    worker.join(timeout=240)
    assert not worker.is_alive(), "the run did not finish after the node was lost"
    assert "error" not in outcome, outcome.get("error")
    assert reached, "the run finished before the node could be removed"
    report, status = outcome["report"], outcome["status"]
    assert (status.embedded, status.pending) == (total, 0)
    assert outcome["rows"] == total  # every image committed once: no row twice
    assert sum(report.by_worker.values()) == total and len(report.by_worker) == 2


def test_without_ray_the_flag_names_the_install_command(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from lookalike.cli.main import app

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    write_images(tmp_path / "p", 2)
    with pytest.raises(MissingDependencyError, match=r"pip install 'lookalike\[ray\]'"):
        with Library.create(tmp_path / "api.lookalike", backbone="pixels") as lib:
            lib.add([tmp_path / "p"], ray="auto")
    result = CliRunner().invoke(
        app, ["index", str(tmp_path / "p"), "--library", str(tmp_path / "cli.lookalike"), "--backbone", "pixels", "--ray", "auto"]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: --ray (embedding on a Ray cluster) needs the package 'ray': run `pip install 'lookalike[ray]'`"
    ]
    assert not (tmp_path / "cli.lookalike").exists()

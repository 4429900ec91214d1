"""Soak: `lookalike serve` under continuous search traffic while real `lookalike index` processes
add and remove thousands of tiny images. No 5xx; every answer consistent with a committed catalog
state; new images found without a restart; removed ones gone; the server's memory stays bounded."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from PIL import Image

from lookalike import Library
from tests.api.test_shutdown import free_port, lookalike, stop_and_check, wait_until

ROUNDS = 4
ADD = 600
REMOVE = 450


def tiny(seed: int) -> Image.Image:
    """A distinct 16 x 16 picture: one of three colour layouts plus per-image noise."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(seed % 3).integers(0, 256, (4, 4, 3)).astype(float)
    small = np.clip(base + rng.normal(0, 30, (4, 4, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(small).resize((16, 16), Image.Resampling.BILINEAR)


def write_batch(folder: Path, start: int, count: int) -> None:
    folder.mkdir(parents=True)
    for seed in range(start, start + count):
        tiny(seed).save(folder / f"{seed:06d}.png")


def catalog_state(library: Path) -> dict[str, int]:
    """file name -> image id of every embedded image (the committed state after a writer)."""
    with Library.open(library, readonly=True) as lib:
        rows = lib.catalog.query("SELECT f.path, f.image_id FROM files f JOIN images i ON i.id = f.image_id "
                                 "WHERE i.status = 'embedded'")
    return {Path(p).name: int(i) for p, i in rows}


def png_bytes(path: Path) -> bytes:
    return path.read_bytes()


class Traffic:
    """Threads searching back to back; every answer is recorded with its start time."""

    def __init__(self, base: str, queries: list[bytes], threads: int = 3) -> None:
        self.base, self.queries = base, queries
        self.answers: list[tuple[float, int, dict]] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.loop, args=(n,), daemon=True) for n in range(threads)]

    def loop(self, n: int) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as http:
            count = 0
            while not self.stop.is_set():
                data = self.queries[(n + count) % len(self.queries)]
                count += 1
                started = time.monotonic()
                try:
                    answer = http.post("/search", files={"file": ("q.png", data, "image/png")}, data={"k": 10})
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                body = answer.json()
                self.answers.append((started, answer.status_code, body))

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_serving_while_index_adds_and_removes_thousands_of_images(tmp_path):
    photos, library = tmp_path / "photos", tmp_path / "lib.lookalike"
    write_batch(photos / "batch-0", 0, ADD)
    first = lookalike("index", str(photos), "--library", str(library), "--backbone", "pixels")
    assert first.wait(timeout=120) == 0, first.stderr.read().decode()
    warm = lookalike("search", str(photos / "batch-0" / "000000.png"), "--library", str(library))  # PCA + index
    assert warm.wait(timeout=120) == 0, warm.stderr.read().decode()
    port = free_port()
    server = lookalike("serve", "--library", str(library), "--port", str(port), "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{base}/health", timeout=2).status_code == 200, 60, "serve", server)
    states = [catalog_state(library)]
    ever = {i: name for name, i in states[0].items()}
    removed_at: dict[int, float] = {}  # image id -> when the writer that removed it had finished
    queries = [png_bytes(photos / "batch-0" / f"{s:06d}.png") for s in range(0, 30)]  # kept all along
    rss: list[int] = []
    http = httpx.Client(base_url=base, timeout=30)
    try:
        with Traffic(base, queries + [_png(tiny(10**6 + s)) for s in range(10)]) as traffic:
            for round_ in range(1, ROUNDS + 1):
                write_batch(photos / f"batch-{round_}", round_ * ADD, ADD)
                old = sorted((photos / f"batch-{round_ - 1}").glob("*.png"))
                for path in old[30 if round_ == 1 else 0 : (30 if round_ == 1 else 0) + REMOVE]:
                    path.unlink()
                writer = lookalike("index", "--library", str(library))
                assert writer.wait(timeout=180) == 0, writer.stderr.read().decode()
                finished = time.monotonic()
                state = catalog_state(library)
                for image_id in set(states[-1].values()) - set(state.values()):
                    removed_at[image_id] = finished
                ever.update({i: name for name, i in state.items()})
                states.append(state)
                _check_picked_up(http, photos / f"batch-{round_}", state, set(states[-2].values()) - set(state.values()))
                rss.append(psutil.Process(server.pid).memory_info().rss)
            time.sleep(1.0)
    finally:
        http.close()
    try:
        assert not traffic.errors, traffic.errors[:5]
        statuses = [status for _, status, _ in traffic.answers]
        assert len(statuses) > 50 and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
        for started, _, body in traffic.answers:
            hits = [h["image_id"] for h in body["hits"]]
            assert len(hits) == 10 and len(set(hits)) == 10
            assert all(i in ever for i in hits), "a hit that was never a committed image"
            assert not [i for i in hits if removed_at.get(i, np.inf) < started], "a hit removed before the request"
            distances = [h["distance"] for h in body["hits"]]
            assert distances == sorted(distances)
        assert max(rss) - rss[0] < 150 * 2**20, [r // 2**20 for r in rss]  # MB: bounded, not growing per round
        stop_and_check(server, __import__("signal").SIGTERM, port)
    finally:
        if server.poll() is None:
            server.kill()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _check_picked_up(http: httpx.Client, batch: Path, state: dict[str, int], gone: set[int]) -> None:
    """After a writer: the server sees its catalog state without a restart."""
    health = http.get("/health").json()
    assert health["images"] == len(state) and health["index"]["vectors"] == len(state)
    newest = sorted(batch.glob("*.png"))[-1]
    answer = http.post("/search", files={"file": ("n.png", newest.read_bytes(), "image/png")},
                       data={"k": 1, "include_self": "true"}).json()
    assert answer["hits"][0]["image_id"] == state[newest.name] and answer["hits"][0]["distance"] < 1e-4
    if gone:
        assert http.post("/search", data={"image_id": [min(gone)]}).status_code == 404

"""`lookalike serve` and `lookalike app` as real processes: they answer, and SIGTERM / SIGINT stop
every process they started within 5 s and free the port (also with a client connection open)."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from PIL import Image

from tests.searchlib import build, class_image

STOP_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(check, timeout: float, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what}: the process exited early: {process.stderr.read().decode()[-3000:]}")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"{what}: not ready within {timeout} s")


def lookalike(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "lookalike.cli.main", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_and_check(process: subprocess.Popen, sig: int, port: int) -> None:
    """Signal the launcher; it and every descendant must be gone, and the port free, in 5 s."""
    family = [process.pid] + [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
    started = time.monotonic()
    process.send_signal(sig)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"still running {STOP_SECONDS} s after {signal.Signals(sig).name}")
    gone, alive = psutil.wait_procs([p for p in map(_proc, family) if p is not None],
                                    timeout=max(0.1, STOP_SECONDS - (time.monotonic() - started)))
    for orphan in alive:
        orphan.kill()
    assert not alive, f"left running: {[p.pid for p in alive]}"
    assert port_is_free(port)
    assert time.monotonic() - started < STOP_SECONDS + 0.5


def _proc(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


@pytest.fixture
def library_folder(tmp_path: Path) -> Path:
    with build(tmp_path) as lib:
        lib.vector_index()
    return tmp_path / "lib.lookalike"


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_answers_then_stops_on_a_signal_and_frees_the_port(library_folder, sig):
    port = free_port()
    process = lookalike("serve", "--library", str(library_folder), "--port", str(port), "--workers", "2")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{base}/health", timeout=2).status_code == 200, 60, "serve", process)
        with httpx.Client(base_url=base, timeout=10) as http:  # keeps its connection open
            health = http.get("/health").json()
            assert health["status"] == "ok" and health["images"] == 36
            files = {"file": ("q.png", png(class_image(1, 4242)), "image/png")}
            hits = http.post("/search", files=files, data={"k": 5}).json()["hits"]
            assert [h["label"] for h in hits] == ["green"] * 5
            stop_and_check(process, sig, port)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_app_stops_streamlit_on_a_signal_and_frees_the_port(library_folder, sig):
    pytest.importorskip("streamlit")
    port = free_port()
    process = lookalike("app", "--library", str(library_folder), "--port", str(port))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{base}/_stcore/health", timeout=2).status_code == 200, 90, "app", process)
        children = psutil.Process(process.pid).children(recursive=True)
        assert any("streamlit" in " ".join(c.cmdline()) for c in children)
        stop_and_check(process, sig, port)
    finally:
        if process.poll() is None:
            process.kill()

"""Fuzzing the HTTP API on a real uvicorn server on loopback: schemathesis generates requests from
the OpenAPI schema (bounded examples), hypothesis builds hostile uploads for /search (truncated,
polyglot, huge dimensions, zero-size, animated, CMYK, 16-bit). No 5xx, no hang, every error is
JSON with its code."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib

import httpx
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from PIL import Image

from lookalike.api.application import create_app
from lookalike.api.server import ApiSettings
from tests.api.test_shutdown import free_port
from tests.searchlib import build

MAX_UPLOAD = 300_000
REQUEST_TIMEOUT = 30.0
FUZZ_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))
"""Bounded: fixed examples, no shrinking (a failure is reported as found, with its request)."""


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The API over a small library, on a real uvicorn server in a thread: its base URL."""
    import uvicorn

    tmp = tmp_path_factory.mktemp("fuzz")
    with build(tmp) as lib:
        lib.vector_index()
    port = free_port()
    app = create_app(tmp / "lib.lookalike", ApiSettings(max_upload_bytes=MAX_UPLOAD))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical",
                                           timeout_graceful_shutdown=3))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)
    assert not thread.is_alive()


def assert_clean(response: httpx.Response | object) -> None:
    """No 5xx; errors are JSON with ``detail`` and ``code``."""
    status = response.status_code  # type: ignore[attr-defined]
    assert status < 500, response.content[:500]  # type: ignore[attr-defined]
    if status >= 400:
        body = response.json()  # type: ignore[attr-defined]
        assert isinstance(body, dict) and body.get("code") and body.get("detail"), body


@pytest.mark.slow
def test_openapi_schema_against_the_live_server(live_server):
    """Every operation of /openapi.json, with schemathesis-generated valid and invalid data
    (its pytest plugin is bypassed: it does not load under this pytest; the strategies are the same)."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_url(f"{live_server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/search", "/images/{image_id}", "/thumbnails/{image_id}",
                                               "/clusters", "/health"}
    seen: dict[str, set[int]] = {}
    for operation, mode in [(op, mode) for op in operations for mode in GenerationMode]:

        @given(case=operation.as_strategy(mode))
        @FUZZ_SETTINGS
        def check(case) -> None:
            response = case.call(base_url=live_server, timeout=REQUEST_TIMEOUT)
            case.validate_response(response, checks=[not_a_server_error])
            assert_clean(response)
            seen.setdefault(f"{case.operation.method.upper()} {case.operation.path}", set()).add(response.status_code)

        try:
            check()
        except Unsatisfiable:  # no parameter to break: /health has no negative cases
            assert mode == GenerationMode.NEGATIVE and operation.path == "/health"
    assert 200 in seen["GET /health"] and 422 in seen["POST /search"]


# -- hostile uploads ---------------------------------------------------------------------------
def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height over a few bytes of data (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@st.composite
def pictures(draw) -> Image.Image:
    w, h = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    seed = draw(st.integers(0, 2**16))
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


@st.composite
def hostile_uploads(draw) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["truncated", "polyglot", "huge", "zero", "animated", "cmyk", "16bit", "noise",
                                 "valid"]))
    picture = draw(pictures())
    fmt = draw(st.sampled_from(["PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP"]))
    if kind == "truncated":
        data = encoded(picture, fmt)
        return kind, data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == "polyglot":  # an image with a zip / html / another image glued on, or the reverse
        other = draw(st.sampled_from([b"PK\x03\x04" + bytes(40), b"<html><script>alert(1)</script></html>",
                                      encoded(picture, "PNG")]))
        data = encoded(picture, fmt)
        return kind, data + other if draw(st.booleans()) else other + data
    if kind == "huge":
        return kind, png_header(draw(st.integers(20_000, 2**31 - 1)), draw(st.integers(20_000, 2**31 - 1)))
    if kind == "zero":
        return kind, encoded(picture, "PNG")[:0]
    if kind == "animated":
        frames = [picture, picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT), picture.rotate(180)]
        gif_or_png = draw(st.sampled_from(["GIF", "PNG", "WEBP"]))
        return kind, encoded(frames[0], gif_or_png, save_all=True, append_images=frames[1:], duration=50, loop=0)
    if kind == "cmyk":
        return kind, encoded(picture.convert("CMYK"), draw(st.sampled_from(["JPEG", "TIFF"])))
    if kind == "16bit":
        deep = Image.fromarray(np.asarray(picture.convert("L"), dtype=np.uint16) * 257)
        return kind, encoded(deep, draw(st.sampled_from(["PNG", "TIFF"])))
    if kind == "noise":
        return kind, draw(st.binary(min_size=1, max_size=2048))
    return kind, encoded(picture, fmt)


@given(upload=hostile_uploads(), k=st.integers(1, 20))
@settings(max_examples=60, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_hostile_uploads_get_an_answer_or_a_clear_error(live_server, upload, k):
    kind, data = upload
    with httpx.Client(base_url=live_server, timeout=REQUEST_TIMEOUT) as http:
        response = http.post("/search", files={"file": ("upload.bin", data, "application/octet-stream")},
                             data={"k": k})
    assert_clean(response)
    if response.status_code == 200:
        assert len(response.json()["hits"]) == k
    else:
        assert response.status_code in (413, 415, 422), (kind, response.status_code, response.text)
    if kind in ("zero", "huge"):
        assert response.status_code in (413, 422), (kind, response.text)
    if kind in ("animated", "cmyk", "16bit", "valid"):
        assert response.status_code == 200, (kind, response.text)

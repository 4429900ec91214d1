"""Locust user for benchmarks/bench_api.py: POST /search with a JPEG upload, k=10, back to back.

Environment (set by bench_api.py):

- ``LOOKALIKE_BENCH_BODIES``: a folder of ready multipart bodies (``*.body``) and their boundary
  (``boundary.txt``);
- ``LOOKALIKE_BENCH_MODE``: ``repeat`` (every request sends the first body: the server's
  query-vector cache answers after the first) or ``fresh`` (each request the next unused body:
  decode + CNN every time; ``reused`` counts wrap-arounds, which bench_api.py reports).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser

FOLDER = Path(os.environ.get("LOOKALIKE_BENCH_BODIES", "."))
MODE = os.environ.get("LOOKALIKE_BENCH_MODE", "fresh")
BODIES = [p.read_bytes() for p in sorted(FOLDER.glob("*.body"))]
BOUNDARY = (FOLDER / "boundary.txt").read_text().strip() if (FOLDER / "boundary.txt").exists() else ""
NEXT_FILE = FOLDER / "next.txt"
"""Where a run ends: the next run goes on from there, so that an upload comes back only after
every other body was sent (more than the server's query cache holds)."""
START = int(NEXT_FILE.read_text() or 0) if MODE == "fresh" and NEXT_FILE.exists() else 0
COUNTER = itertools.count(START)  # gevent: one OS thread, so a plain counter is safe
SENT = [START]
WRAPPED = [0]


class SearchUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def search(self) -> None:
        n = 0 if MODE == "repeat" else next(COUNTER)
        SENT[0] = n + 1
        if n - START >= len(BODIES):  # this run itself came back to a body it sent
            WRAPPED[0] += 1
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        with self.client.post("/search", data=BODIES[n % len(BODIES)], headers=headers,
                              name="/search", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")


@events.quitting.add_listener
def report_reuse(environment, **_: object) -> None:
    (FOLDER / f"reused-{os.getpid()}.txt").write_text(str(WRAPPED[0]))
    if MODE == "fresh":
        NEXT_FILE.write_text(str(SENT[0] % max(1, len(BODIES))))

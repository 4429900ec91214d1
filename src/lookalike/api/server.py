"""The HTTP API's library side: settings, errors as HTTP answers, and the worker that runs
library calls (the FastAPI app itself is :mod:`lookalike.api.application`).

Endpoints (OpenAPI schema at ``/openapi.json``, docs at ``/docs``):

- ``POST /search``: multipart form with an image ``file`` (or ``image_id`` fields of library
  images, averaged), ``k``, filters ``cluster`` / ``run`` / ``label``, ``include_self``,
  ``nprobe`` / ``ef_search`` -> JSON hits (rank, image id, path, scores, cluster, label, URLs);
- ``GET /images/{id}``: the image's original file; ``GET /thumbnails/{id}?size=256``: a JPEG;
- ``GET /clusters[?run=N]``: the latest (or given) cluster run and its clusters;
- ``GET /health``: status, image count, index kind.

Safety: the request body is limited (``max_upload_bytes`` plus form overhead; checked from
``Content-Length`` before reading, and while reading); an upload is accepted only if it decodes
as an image under the pixel limit (the client's content type is not trusted); clients name
images by id only, never by path. Errors are JSON ``{"detail": message, "code": code}``: 404
unknown id, 413 too large, 415 not an image, 422 corrupt image or bad parameter, 503 no index.

The library is opened read-only, so the API serves while ``lookalike index`` writes: every
request first checks whether the catalog or the committed index file changed and reloads them
(see :mod:`lookalike.index.live`), so answers match the last committed catalog state and never
a half-written index.

Concurrency: library work runs on a pool of threads, one per core by default (``workers``), each
with its own read-only SQLite connection and searcher; they share one ONNX Runtime session
(thread-safe ``run``, one intra-op thread per request so that concurrent requests use one core
each) and FAISS and ONNX Runtime release the GIL while they compute. The event loop keeps
accepting requests meanwhile. The API never writes the library.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lookalike.config import usable_cores
from lookalike.errors import (
    BackboneError,
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    InvalidParameterError,
    LibraryError,
    LookalikeError,
    NotAnImageError,
    VectorIndexError,
)

T = TypeVar("T")
FORM_OVERHEAD = 64 * 1024
"""Bytes allowed on top of ``max_upload_bytes`` for the multipart framing and form fields."""
MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "BMP": "image/bmp",
               "TIFF": "image/tiff", "WEBP": "image/webp", "HEIF": "image/heif"}


@dataclass(frozen=True)
class ApiSettings:
    """Limits and defaults of one API server."""

    kind: str = "auto"
    max_upload_bytes: int = 20_000_000
    max_pixels: int | None = None
    """Pixel limit for uploads (None: the library's ingest limit; never above it)."""
    max_k: int = 200
    thumbnail_cache: int = 256
    query_cache: int = 256
    """Reduced vectors of recent uploads kept, by content hash (repeated queries skip the CNN)."""
    workers: int = 0
    """Threads searching in parallel (0: one per usable core)."""
    intra_op_threads: int = 1
    """ONNX Runtime threads per embedding: 1 lets concurrent requests use one core each."""


class ApiError(Exception):
    """An error answered as JSON ``{"detail": message, "code": code}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_status(exc: Exception) -> ApiError:
    """The HTTP answer for a lookalike error."""
    if isinstance(exc, ApiError):
        return exc
    table: list[tuple[type[Exception], int, str]] = [
        (NotAnImageError, 415, "not_an_image"), (ImageTooLargeError, 413, "image_too_large"),
        (CorruptImageError, 422, "corrupt_image"), (ImageError, 422, "unreadable_image"),
        (InvalidParameterError, 422, "invalid_parameter"), (VectorIndexError, 503, "index_unavailable"),
        (LibraryError, 503, "library_unavailable"), (BackboneError, 503, "backbone_unavailable"),
        (LookalikeError, 500, "internal_error"),
    ]
    for cls, status, code in table:
        if isinstance(exc, cls):
            return ApiError(status, code, str(exc))
    raise exc  # not a lookalike error: a bug, answered 500 by the framework


class LibraryWorker:
    """Runs library work on a pool of threads, each with its own read-only Library (SQLite
    connections belong to a thread) and Searcher; the backbone (one ONNX Runtime session, whose
    ``run`` is thread-safe) and the query-vector and thumbnail caches are shared."""

    def __init__(self, path: Path, settings: ApiSettings) -> None:
        from lookalike.api.pool import SharedState

        self.path = path
        self.settings = settings
        self.workers = settings.workers or usable_cores()
        self.shared = SharedState(settings.query_cache, settings.thumbnail_cache)
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="lookalike-library")

    async def run(self, job: Callable[[LibraryWorker], T]) -> T:
        return await asyncio.wrap_future(self._pool.submit(job, self))

    def close(self, timeout: float = 10.0) -> None:
        """Close every thread's library on its own thread (SQLite connections belong to their
        thread): one job per thread, held at a barrier so that each thread takes exactly one."""
        barrier = threading.Barrier(self.workers, timeout=timeout)

        def shut(worker: LibraryWorker) -> None:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
            lib = getattr(worker._local, "lib", None)
            if lib is not None:
                lib.close()
                worker._local.lib = worker._local.searcher = None

        jobs = [self._pool.submit(shut, self) for _ in range(self.workers)]
        for job in jobs:
            job.result(timeout=2 * timeout)
        self._pool.shutdown(wait=True)

    # -- on a worker thread ------------------------------------------------------------------
    @property
    def lib(self) -> Any:
        """This thread's read-only library."""
        lib = getattr(self._local, "lib", None)
        if lib is None:
            from lookalike.library import Library

            lib = Library.open(self.path, readonly=True)
            self._local.lib = lib
        return lib

    def searcher(self) -> Any:
        """This thread's searcher, created on first use and reloaded when the library changed."""
        from lookalike.search.searcher import Searcher

        searcher = getattr(self._local, "searcher", None)
        if searcher is None:
            searcher = Searcher(self.lib.store, self.settings.kind, update=False)
            limit = self.lib.manifest.ingest.max_pixels
            searcher.max_pixels = min(limit, self.settings.max_pixels or limit)
            searcher.backbone = self.shared.backbone(self.lib, self.settings.intra_op_threads or 1)
            searcher.vector_cache = self.shared.vectors
            self._local.searcher = searcher
        else:
            searcher.refresh()
        return searcher

    def image_file(self, image_id: int) -> tuple[Path, str]:
        """The first existing file of an embedded image, and its media type (404 otherwise)."""
        from lookalike.store.images import image_files

        for path, fmt in image_files(self.lib.catalog, image_id):
            if path.is_file():
                return path, MEDIA_TYPES.get(str(fmt), "application/octet-stream")
        raise ApiError(404, "unknown_image", f"no image {image_id} in the library (or its files are gone)")

    def thumbnail(self, image_id: int, size: int) -> bytes:
        key = (image_id, size)
        cached = self.shared.thumbnails.get(key)
        if cached is None:
            from lookalike.io.decode import load_rgb

            path, _ = self.image_file(image_id)
            image = load_rgb(path, max_pixels=self.lib.manifest.ingest.max_pixels, min_side=size)
            image.thumbnail((size, size))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=85)
            cached = buffer.getvalue()
            self.shared.thumbnails.put(key, cached)
        return cached



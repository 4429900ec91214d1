"""The FastAPI application: ``create_app(library_path)``; ``lookalike serve`` runs it with uvicorn
(see :mod:`lookalike.api.server` for the contract and the safety rules)."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from lookalike.api.routes import add_routes
from lookalike.api.server import FORM_OVERHEAD, ApiError, ApiSettings, LibraryWorker
from lookalike.errors import MissingDependencyError


def require_server() -> ModuleType:
    """The uvicorn module, or MissingDependencyError naming the install command."""
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingDependencyError("uvicorn", "lookalike serve", "pip install fastapi uvicorn python-multipart") from exc
    return uvicorn



class BodyLimit:
    """ASGI middleware: answer 413 (JSON) to request bodies over ``max_bytes``, judged from
    ``Content-Length`` before reading and by counting while reading (chunked uploads)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._too_large(send)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._too_large(send)
                return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Callable[..., Any]) -> None:
        content = json.dumps({"detail": f"request body over {self.max_bytes} bytes", "code": "too_large"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def create_app(library_path: str | Path, settings: ApiSettings | None = None) -> Any:
    """A FastAPI app serving the library at ``library_path`` read-only (see the module notes)."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse
    except ImportError as exc:
        raise MissingDependencyError("fastapi", "the HTTP API", "pip install fastapi uvicorn python-multipart") from exc
    from lookalike._version import __version__
    from lookalike.library import Library

    settings = settings or ApiSettings()
    path = Path(library_path).expanduser()
    Library.open(path, readonly=True).close()  # fail now, with a clear error, if it is not a library
    worker = LibraryWorker(path, settings)

    @asynccontextmanager
    async def lifespan(_: Any) -> Any:
        yield
        worker.close()

    app = FastAPI(title="lookalike", version=__version__, lifespan=lifespan,
                  description="Visual search over one lookalike library (read-only).")

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=exc.status)

    add_routes(app, worker)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes + FORM_OVERHEAD)
    app.state.worker = worker
    return app

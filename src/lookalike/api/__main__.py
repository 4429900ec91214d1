"""``python -m lookalike.api --library L``: run the HTTP API with uvicorn (``lookalike serve``
starts this as its child process, so the CLI never imports the API)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lookalike.api.application import create_app, require_server
from lookalike.api.server import ApiSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lookalike.api", description=__doc__)
    parser.add_argument("--library", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--kind", default="auto")
    parser.add_argument("--max-upload-mb", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=0, help="requests searched in parallel (0: one per core)")
    args = parser.parse_args(argv)
    uvicorn = require_server()
    settings = ApiSettings(kind=args.kind, max_upload_bytes=int(args.max_upload_mb * 1_000_000),
                           workers=max(0, args.workers))
    # open requests get 3 s after SIGTERM / SIGINT; idle keep-alive connections close after 5 s
    uvicorn.run(create_app(args.library, settings), host=args.host, port=args.port, log_level="warning",
                timeout_graceful_shutdown=3, timeout_keep_alive=5)


if __name__ == "__main__":
    main()

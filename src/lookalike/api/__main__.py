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
    args = parser.parse_args(argv)
    uvicorn = require_server()
    settings = ApiSettings(kind=args.kind, max_upload_bytes=int(args.max_upload_mb * 1_000_000))
    uvicorn.run(create_app(args.library, settings), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

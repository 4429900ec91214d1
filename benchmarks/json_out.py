"""How every benchmark reports: the result as JSON on stdout and, with ``--out``, in that file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit(result: dict[str, Any], out: Path | str | None, *, indent: int = 2) -> None:
    """Print ``result`` as JSON and write it to ``out`` (folders created) when given."""
    text = json.dumps(result, indent=indent, default=str)
    print(text)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")

"""What every CLI module shares: consoles and the one way errors reach the user.

Exit codes: 0 success, 1 a lookalike error (one line on stderr, no traceback), 2 a usage error
caught by Typer, 130 interrupted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from lookalike.errors import LookalikeError

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def reported() -> Iterator[None]:
    """Turn lookalike errors into one line on stderr and exit code 1, never a traceback."""
    try:
        yield
    except LookalikeError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted: committed work is kept; run the same command again to resume")
        raise typer.Exit(130) from None


def reports_errors(command: F) -> F:
    """Decorator form of :func:`reported` for whole commands."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with reported():
            return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

"""What every CLI module shares: consoles and the one way errors reach the user.

Exit codes: 0 success, 1 a lookalike error (one line on stderr, no traceback), 2 a usage error
caught by Typer, 130 interrupted.
"""

from __future__ import annotations

import errno
import sqlite3
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
    except (OSError, sqlite3.OperationalError) as exc:
        message = storage_error(exc)
        if message is None:
            raise
        err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted: committed work is kept; run the same command again to resume")
        raise typer.Exit(130) from None


STORAGE_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                  errno.EROFS: "read-only file system", errno.EIO: "input/output error"}


def storage_error(exc: BaseException) -> str | None:
    """A one-line message for a full, read-only or failing disk (None: not a storage error)."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        if "disk is full" not in text and "disk I/O error" not in text:
            return None
        reason, where = text, "the catalog"
    elif isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        reason, where = STORAGE_ERRNOS[exc.errno], exc.filename or "a library file"
    else:
        return None
    return (f"{reason} while writing {where}: committed work is kept; free space (or fix the disk) and "
            "run the same command again to resume")


def reports_errors(command: F) -> F:
    """Decorator form of :func:`reported` for whole commands."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with reported():
            return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

"""lookalike: visual search and clustering for image collections.

The public API is :class:`Library` (create/open a library folder, add images, read embeddings)
and the exception tree in :mod:`lookalike.errors`. Heavy parts load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lookalike.errors import (
    BackboneMismatchError,
    ImageError,
    InvalidParameterError,
    LibraryError,
    LibraryNotFoundError,
    LookalikeError,
)

if TYPE_CHECKING:
    from lookalike.library import Library

from lookalike._version import __version__  # noqa: E402

__all__ = [
    "BackboneMismatchError",
    "ImageError",
    "InvalidParameterError",
    "Library",
    "LibraryError",
    "LibraryNotFoundError",
    "LookalikeError",
    "__version__",
    "open_library",
]


def open_library(path: Any, **kwargs: Any) -> Library:
    """Shorthand for :meth:`Library.open`."""
    from lookalike.library import Library

    return Library.open(path, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "Library":
        from lookalike.library import Library

        return Library
    raise AttributeError(f"module 'lookalike' has no attribute {name!r}")

"""What every page shares: the library path, thumbnails (cached on disk in the library), messages."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from lookalike.errors import LookalikeError

if TYPE_CHECKING:
    from lookalike.library import Library

THUMB_SIDE = 160
"""Longest side of gallery thumbnails, in pixels."""


def library_path(argv: list[str]) -> Path | None:
    """The ``--library`` given after ``--`` on the ``streamlit run`` line, else the session's."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--library", type=Path, default=None)
    known, _ = parser.parse_known_args(argv)
    if known.library is not None:
        return Path(known.library)
    given = st.session_state.get("library")
    return None if given is None else Path(given)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Show a lookalike error (which names the command that fixes it) instead of a traceback."""
    try:
        yield
    except LookalikeError as exc:
        st.error(str(exc))


def short_name(path: str) -> str:
    """``folder/file.jpg``: the file name with its folder (names often repeat across folders).
    String operations, not ``Path``: the map names every point (0.13 s instead of 0.6 s at 60k)."""
    head, name = os.path.split(path)
    folder = os.path.basename(head)
    return f"{folder}/{name}" if folder else name


def missing(what: str, command: str) -> None:
    """Say which stage the library lacks and the command that creates it."""
    st.warning(f"This library has no {what} yet.")
    st.code(command, language="bash")


def thumbnail_of(lib: Library, image_id: int, path: str, side: int = THUMB_SIDE) -> bytes | None:
    """JPEG bytes of library image ``image_id`` (file ``path``) from the library's on-disk thumbnail
    cache (made on first use), or None when the file is gone or unreadable."""
    from lookalike.app.thumbs import cached_thumbnail
    from lookalike.store.annotations import image_files

    found = image_files(lib.catalog, [image_id]).get(image_id)
    if found is None:
        return None
    return cached_thumbnail(lib.folder, found[0], Path(path), side, lib.manifest.ingest.max_pixels)


def thumbnail(lib: Library, path: str, side: int = THUMB_SIDE) -> bytes | None:
    """JPEG bytes of the library file at ``path`` (cached on disk by content), or None when the file
    is not in the library, gone or unreadable."""
    from lookalike.store.annotations import image_of_path

    image_id = image_of_path(lib.catalog, path)
    return None if image_id is None else thumbnail_of(lib, image_id, path, side)


def show_image(lib: Library, path: str, caption: str) -> None:
    """One thumbnail with its caption, or a note when the file cannot be shown."""
    image = thumbnail(lib, path)
    if image is None:
        st.caption(f"(cannot show {Path(path).name})")
    else:
        st.image(image, caption=caption)


def gallery(lib: Library, items: list[tuple[str, str]], columns: int = 4) -> None:
    """Thumbnails of ``items`` (path, caption) in a grid of ``columns``."""
    for start in range(0, len(items), columns):
        cols = st.columns(columns)
        for col, (path, caption) in zip(cols, items[start : start + columns]):
            with col:
                show_image(lib, path, caption)

"""What every page shares: the library path, thumbnails, and messages for missing stages."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from lookalike.errors import LookalikeError

if TYPE_CHECKING:
    from PIL import Image

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
    """``folder/file.jpg``: the file name with its folder (names often repeat across folders)."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def missing(what: str, command: str) -> None:
    """Say which stage the library lacks and the command that creates it."""
    st.warning(f"This library has no {what} yet.")
    st.code(command, language="bash")


@st.cache_data(max_entries=4096, show_spinner=False)
def _thumbnail(path: str, stamp: tuple[int, int], side: int, max_pixels: int) -> Image.Image | None:
    from lookalike.errors import ImageError
    from lookalike.io.decode import load_rgb

    try:
        image = load_rgb(Path(path), max_pixels=max_pixels, min_side=side)
    except ImageError:
        return None
    image.thumbnail((side, side))
    return image


def thumbnail(lib: Library, path: str, side: int = THUMB_SIDE) -> Image.Image | None:
    """A small RGB copy of the image file at ``path`` (cached by path, size and mtime), or None
    when the file is gone or unreadable."""
    try:
        st_ = Path(path).stat()
    except OSError:
        return None
    return _thumbnail(path, (st_.st_size, st_.st_mtime_ns), side, lib.manifest.ingest.max_pixels)


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

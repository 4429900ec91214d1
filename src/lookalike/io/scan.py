"""Find files under folders, hash their content, and describe paths and file-system errors.

Scanning never opens image data: it lists every regular file (in a sorted, repeatable order)
and reports, instead of skipping, anything it cannot use: broken links, link loops, folders it
may not list, special files. Which files are images is decided later, by content
(:mod:`lookalike.io.decode`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lookalike.errors import InvalidParameterError, UnreadableFileError

_DirKey = tuple[int, int]
"""A real directory, as ``(st_dev, st_ino)``."""

_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "named pipe"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


@dataclass(frozen=True)
class FoundFile:
    """One regular file found by :func:`walk`, or one thing that could not be scanned.

    Attributes
    ----------
    path : the path as found under ``root``; may hold undecodable bytes (surrogate escapes).
    root : the root it was found under, as given to :func:`walk`.
    size : size in bytes (0 when ``problem`` is set).
    mtime_ns : modification time in nanoseconds (0 when ``problem`` is set).
    problem : why the file (or folder) cannot be read at all, or None when it can.
    """

    path: Path
    root: Path
    size: int
    mtime_ns: int
    problem: str | None = None


def display_path(path: Path | str | bytes) -> str:
    """Printable text for any path: undecodable bytes as ``\\xe9``, control characters escaped."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def describe_os_error(error: OSError, path: Path | str | None = None, *, opened: bool = False) -> str:
    """A short human reason for an :class:`OSError` met while opening or reading ``path``.

    ``opened`` says the file had already been opened (a missing file then means it vanished).
    """
    if isinstance(error, PermissionError):
        return "permission denied"
    if error.errno == errno.ELOOP:
        return "symbolic link loop"
    if error.errno in (errno.ENOENT, errno.ESTALE):
        if opened:
            return "file vanished while reading"
        if path is not None and os.path.islink(path):
            target = display_path(os.readlink(path))
            return f"broken symbolic link (target '{target}' does not exist)"
        return "file not found (moved or deleted?)"
    if isinstance(error, IsADirectoryError):
        return "is a folder, not a file"
    return f"cannot read file: {error.strerror or error}"


WHOLE_READ_LIMIT = 32 << 20
"""Files up to this many bytes are read with one call, so their content hash and image header
come from the same bytes (and the decoder parses memory, not a buffered file); larger files
are streamed."""


def read_whole(path: Path, *, limit: int = WHOLE_READ_LIMIT) -> bytes | None:
    """The file's bytes when it holds at most ``limit`` of them, else None (stream it instead).

    Raises
    ------
    UnreadableFileError : the file cannot be opened or read (reason says why).
    """
    opened = False
    try:
        with open(path, "rb", buffering=0) as stream:
            opened = True
            if os.fstat(stream.fileno()).st_size > limit:
                return None
            return stream.readall()
    except OSError as error:
        raise UnreadableFileError(display_path(path), describe_os_error(error, path, opened=opened)) from error


def content_digest(data: bytes) -> str:
    """BLAKE2b-256 of ``data``, as 64 hex digits (what :func:`content_hash` gives for a file)."""
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def content_hash(path: Path, *, chunk_size: int = 1 << 20) -> str:
    """BLAKE2b-256 of the file's bytes, as 64 hex digits.

    Raises
    ------
    UnreadableFileError : the file cannot be opened or read (reason says why).
    """
    if chunk_size < 1:
        raise InvalidParameterError(f"chunk_size must be >= 1, got {chunk_size}")
    digest = hashlib.blake2b(digest_size=32)
    opened = False
    try:
        with open(path, "rb") as stream:
            opened = True
            buffer = memoryview(bytearray(min(chunk_size, os.fstat(stream.fileno()).st_size + 1)))
            while count := stream.readinto(buffer):
                digest.update(buffer[:count])
    except OSError as error:
        raise UnreadableFileError(display_path(path), describe_os_error(error, path, opened=opened)) from error
    return digest.hexdigest()


def walk(
    roots: Sequence[Path | str], *, follow_symlinks: bool = True, include_hidden: bool = True
) -> Iterator[FoundFile]:
    """Every regular file under each root, depth first, entries sorted by their bytes.

    With ``include_hidden=False``, entries below the roots whose name starts with ``.`` are not
    entered or read, but still reported once each as a problem ("hidden folder, not scanned"),
    so nothing disappears silently.

    A root that is a file yields that file. Each real directory is entered once (keyed by
    ``(st_dev, st_ino)``): a link back to an ancestor is reported as a loop, a second way into a
    folder already scanned is reported as such. With ``follow_symlinks=False`` links below the
    roots are reported, not followed (roots themselves are always followed).

    Raises
    ------
    InvalidParameterError : a root does not exist or cannot be looked at (checked before yielding).
    """
    if isinstance(roots, str | Path):
        raise InvalidParameterError(f"roots must be a sequence of paths, got the single path '{roots}'")
    checked = [_check_root(Path(root)) for root in roots]
    return _walk_roots(checked, follow_symlinks, include_hidden)


def _check_root(root: Path) -> tuple[Path, os.stat_result]:
    try:
        return root, os.stat(root)
    except OSError as error:
        missing = isinstance(error, FileNotFoundError) and not os.path.islink(root)
        reason = "no such file or folder" if missing else describe_os_error(error, root)
        raise InvalidParameterError(f"cannot scan '{display_path(root)}': {reason}") from error


def _walk_roots(
    roots: list[tuple[Path, os.stat_result]], follow: bool, hidden: bool
) -> Iterator[FoundFile]:
    visited: dict[_DirKey, Path] = {}
    for root, info in roots:
        if stat.S_ISDIR(info.st_mode):
            yield from _walk_tree(root, info, follow, hidden, visited)
        else:
            yield _file_or_problem(root, root, info)


def _walk_tree(
    root: Path, info: os.stat_result, follow: bool, hidden: bool, visited: dict[_DirKey, Path]
) -> Iterator[FoundFile]:
    """Depth-first walk with an explicit stack (no recursion limit on deep trees)."""
    key = (info.st_dev, info.st_ino)
    if key in visited:
        yield _problem(root, root, f"folder already scanned as '{display_path(visited[key])}'")
        return
    visited[key] = root
    entries, problem = _list_dir(root)
    if problem is not None:
        yield _problem(root, root, problem)
        return
    stack = [(key, iter(entries))]
    ancestors = {key: root}
    while stack:
        dir_key, pending = stack[-1]
        entry = next(pending, None)
        if entry is None:
            stack.pop()
            del ancestors[dir_key]
            continue
        path = Path(entry.path)
        if not hidden and entry.name.startswith("."):
            yield _problem(path, root, _hidden_reason(entry))
            continue
        info_or_problem = _entry_stat(entry, follow)
        if isinstance(info_or_problem, str):
            yield _problem(path, root, info_or_problem)
        elif not stat.S_ISDIR(info_or_problem.st_mode):
            yield _file_or_problem(path, root, info_or_problem)
        else:
            sub_key = (info_or_problem.st_dev, info_or_problem.st_ino)
            if sub_key in ancestors:
                where = display_path(ancestors[sub_key])
                yield _problem(path, root, f"symbolic link loop (leads back to the folder '{where}')")
            elif sub_key in visited:
                yield _problem(path, root, f"folder already scanned as '{display_path(visited[sub_key])}'")
            else:
                visited[sub_key] = path
                entries, problem = _list_dir(path)
                if problem is not None:
                    yield _problem(path, root, problem)
                else:
                    stack.append((sub_key, iter(entries)))
                    ancestors[sub_key] = path


def _hidden_reason(entry: os.DirEntry[str]) -> str:
    try:
        kind = "folder" if entry.is_dir() else "file"
    except OSError:
        kind = "file"
    return f"hidden {kind}, not scanned (use --include-hidden)"


def _list_dir(folder: Path) -> tuple[list[os.DirEntry[str]], str | None]:
    """The folder's entries sorted by name bytes, or a reason it cannot be listed."""
    try:
        with os.scandir(folder) as listing:
            return sorted(listing, key=lambda entry: os.fsencode(entry.name)), None
    except OSError as error:
        return [], f"cannot list folder: {describe_os_error(error, folder)}"


def _entry_stat(entry: os.DirEntry[str], follow: bool) -> os.stat_result | str:
    """The entry's stat (links followed), or the reason it cannot be used."""
    try:
        is_link = entry.is_symlink()
        if is_link and not follow:
            return "symbolic link not followed (following links is off)"
        return entry.stat(follow_symlinks=True)
    except FileNotFoundError as error:
        if os.path.islink(entry.path):
            return describe_os_error(error, entry.path)
        return "file vanished while scanning"
    except OSError as error:
        return describe_os_error(error, entry.path)


def _file_or_problem(path: Path, root: Path, info: os.stat_result) -> FoundFile:
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _SPECIAL_KINDS if test(info.st_mode)), "special file")
        return _problem(path, root, f"not a regular file ({kind})")
    if not os.access(path, os.R_OK):
        return _problem(path, root, "permission denied")
    return FoundFile(path=path, root=root, size=info.st_size, mtime_ns=info.st_mtime_ns)


def _problem(path: Path, root: Path, reason: str) -> FoundFile:
    return FoundFile(path=path, root=root, size=0, mtime_ns=0, problem=reason)

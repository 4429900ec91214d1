"""Scanning: every file once, in a fixed order, with problems reported instead of followed or skipped."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import sys
from pathlib import Path

import pytest

from lookalike.errors import InvalidParameterError, UnreadableFileError
from lookalike.io.scan import FoundFile, content_digest, content_hash, display_path, read_whole, walk

LINK_PROBLEMS = {
    "broken_link": r"broken symbolic link \(target '.*does-not-exist\.jpg' does not exist\)",
    "loop_a": "symbolic link loop",
    "loop_b": "symbolic link loop",
    "dir_loop": r"symbolic link loop \(leads back to the folder '.*/bad'\)",
}


def component_order(found: list[FoundFile], root: Path) -> list[Path]:
    """Reference order: paths sorted by the bytes of their components (pre-order of a sorted tree)."""
    return sorted((f.path for f in found), key=lambda p: [os.fsencode(part) for part in p.relative_to(root).parts])


def test_every_file_appears_exactly_once(shared_bad_folder) -> None:
    found = list(walk([shared_bad_folder.root]))
    paths = [f.path for f in found]
    assert len(paths) == len(set(paths)) == len(shared_bad_folder)
    assert set(paths) == {path for path, _ in shared_bad_folder.values()}


def test_problems_are_exactly_the_links_that_lead_nowhere(shared_bad_folder) -> None:
    by_path = {f.path: f for f in walk([shared_bad_folder.root])}
    unreadable = {"no_permission": "permission denied"} if shared_bad_folder["no_permission"].kind != "ok" else {}
    expected = LINK_PROBLEMS | unreadable
    for name, (path, _) in shared_bad_folder.items():
        found = by_path[path]
        if name in expected:
            assert found.problem is not None and found.size == 0
            assert re.fullmatch(expected[name], found.problem), (name, found.problem)
        else:
            assert found.problem is None, (name, found.problem)
            info = path.stat()
            assert (found.size, found.mtime_ns, found.root) == (info.st_size, info.st_mtime_ns, shared_bad_folder.root)


def test_order_is_sorted_and_repeatable(shared_bad_folder) -> None:
    first = list(walk([shared_bad_folder.root]))
    second = list(walk([str(shared_bad_folder.root)]))
    assert [f.path for f in first] == [f.path for f in second] == component_order(first, shared_bad_folder.root)


def test_links_are_reported_not_followed_when_following_is_off(shared_bad_folder) -> None:
    found = {f.path: f for f in walk([shared_bad_folder.root], follow_symlinks=False)}
    for name in LINK_PROBLEMS:
        assert found[shared_bad_folder[name].path].problem == "symbolic link not followed (following links is off)"
    assert found[shared_bad_folder["inside_loop"].path].problem is None


def test_a_folder_reached_again_is_reported_not_rescanned(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.png").write_bytes(b"x")
    (tmp_path / "shortcut").symlink_to("real", target_is_directory=True)
    found = list(walk([tmp_path, tmp_path / "real"]))
    assert [(f.path.relative_to(tmp_path).as_posix(), f.problem) for f in found] == [
        ("real/a.png", None),
        ("shortcut", f"folder already scanned as '{display_path(tmp_path / 'real')}'"),
        ("real", f"folder already scanned as '{display_path(tmp_path / 'real')}'"),
    ]


def test_a_root_that_is_a_file_yields_that_file(tmp_path: Path) -> None:
    path = tmp_path / "one.jpg"
    path.write_bytes(b"abc")
    assert list(walk([path])) == [FoundFile(path, path, 3, path.stat().st_mtime_ns, None)]


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: None, "no-such': no such file or folder"),
    (lambda p: p.symlink_to(p.parent / "gone"), r"no-such': broken symbolic link"),
], ids=["missing", "broken-link"])  # fmt: skip
def test_a_root_that_does_not_exist_is_refused_before_scanning(tmp_path: Path, make, message: str) -> None:
    root = tmp_path / "no-such"
    make(root)
    with pytest.raises(InvalidParameterError, match=message):
        walk([tmp_path, root])  # refused at the call, not halfway through the scan


def test_a_single_path_is_not_mistaken_for_a_list(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="sequence of paths"):
        walk(str(tmp_path))  # type: ignore[arg-type]


def test_a_folder_that_cannot_be_listed_is_one_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "locked", "z"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f.png").write_bytes(b"x")
    real_scandir = os.scandir

    def refusing_scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refusing_scandir)
    found = [(f.path.relative_to(tmp_path).as_posix(), f.problem) for f in walk([tmp_path])]
    assert found == [("a/f.png", None), ("locked", "cannot list folder: permission denied"), ("z/f.png", None)]


def test_an_unreadable_file_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "locked.png").write_bytes(b"x")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path).name != "locked.png" and real_access(path, mode))
    assert [f.problem for f in walk([tmp_path])] == ["permission denied"]


def test_special_files_are_reported_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    assert [f.problem for f in walk([tmp_path])] == ["not a regular file (named pipe)"]


def test_very_deep_trees_do_not_hit_the_recursion_limit(tmp_path: Path) -> None:
    levels = [tmp_path]
    for _ in range(sys.getrecursionlimit() + 100):  # one at a time: mkdir(parents=True) recurses too
        levels.append(levels[-1] / "d")
        levels[-1].mkdir()
    bottom = levels[-1] / "bottom.png"
    bottom.write_bytes(b"x")
    try:
        assert [f.path for f in walk([tmp_path])] == [bottom]
    finally:  # pytest's own clean-up (shutil.rmtree) recurses: flatten the tree first
        bottom.unlink()
        for level in reversed(levels[1:]):
            level.rmdir()


@pytest.mark.parametrize("chunk_size", [1, 7, 1 << 20])
def test_content_hash_is_blake2b_256(tmp_path: Path, chunk_size: int) -> None:
    data = os.urandom(10_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert content_hash(path, chunk_size=chunk_size) == hashlib.blake2b(data, digest_size=32).hexdigest()


def test_content_hash_of_a_missing_file_says_why(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="file not found"):
        content_hash(tmp_path / "gone.jpg")
    with pytest.raises(InvalidParameterError, match="chunk_size must be >= 1, got 0"):
        content_hash(tmp_path, chunk_size=0)


@pytest.mark.parametrize("size", [0, 1, 5000])
def test_read_whole_gives_the_bytes_up_to_the_limit(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert read_whole(path) == data
    assert content_digest(data) == content_hash(path)
    assert read_whole(path, limit=size) == data
    if size:
        assert read_whole(path, limit=size - 1) is None  # over the limit: the caller streams it


def test_read_whole_of_a_missing_file_says_why(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="file not found"):
        read_whole(tmp_path / "gone.jpg")


@pytest.mark.parametrize(("path", "shown"), [
    (Path("plain/photo.jpg"), "plain/photo.jpg"),
    (Path("日本/写真.jpg"), "日本/写真.jpg"),
    (Path(os.fsdecode(b"caf\xe9.png")), r"caf\xe9.png"),
    (b"caf\xe9.png", r"caf\xe9.png"),
    ("line\nbreak.jpg", r"line\nbreak.jpg"),
], ids=["ascii", "non-ascii", "non-utf8", "bytes", "newline"])  # fmt: skip
def test_display_path_is_always_printable(path: Path | str | bytes, shown: str) -> None:
    assert display_path(path) == shown
    assert display_path(path).isprintable()

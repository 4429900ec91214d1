"""Fixtures shared by every test folder."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest


def _load_badfiles():  # tests/ is not a package (importlib import mode): load the helper by path
    name = "lookalike_tests_badfiles"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "io" / "badfiles.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def badfiles_module():
    """The tests/io/badfiles.py helper module (make_bad_folder, outcome kinds)."""
    return _load_badfiles()


@pytest.fixture
def bad_folder(tmp_path: Path, badfiles_module):
    """A fresh folder of good and bad image files: name -> (path, kind) (see tests/io/badfiles.py).

    kind is "ok", "not_image", "corrupt", "too_large" or "unreadable" (under the default
    max_pixels); ``.root`` is the folder, ``.expected[name]`` the (RGB array, atol) of each good image.
    """
    return badfiles_module.make_bad_folder(tmp_path / "bad")


def pytest_configure(config):
    """faiss loads OpenBLAS once per process: choose its settings before any test imports it."""
    from lookalike._faiss import prefer_fast_blas

    prefer_fast_blas()
    # rich pins a console's width when COLUMNS is set at its creation (pytest-xdist workers have
    # it); without it the CLI consoles follow the COLUMNS each CliRunner test sets
    os.environ.pop("COLUMNS", None)

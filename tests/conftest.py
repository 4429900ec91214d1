"""Fixtures shared by every test folder."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
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


_PRIVATE_CACHE: list[Path] = []


def private_cache(user_cache: Path) -> Path:
    """A temporary $LOOKALIKE_CACHE for this test process: what the user's cache already holds
    (ONNX exports, fetched datasets) is linked in read-only use, everything written lands in it.

    Tests never write to ~/.cache: a model exported or a dataset fetched by a test stays here.
    """
    root = Path(tempfile.mkdtemp(prefix="lookalike-test-cache-"))
    for name in ("onnx", "datasets"):
        (root / name).mkdir()
        source = user_cache / name
        if not source.is_dir():
            continue
        for entry in source.iterdir():
            if entry.suffix != ".lock" and not entry.name.startswith("."):
                (root / name / entry.name).symlink_to(entry)
    return root


def pytest_configure(config):
    """faiss loads OpenBLAS once per process: choose its settings before any test imports it.
    Caches point to a temporary folder (see :func:`private_cache`)."""
    from lookalike._faiss import prefer_fast_blas
    from lookalike.config import cache_root

    prefer_fast_blas()
    if not _PRIVATE_CACHE:
        _PRIVATE_CACHE.append(private_cache(cache_root()))
        os.environ["LOOKALIKE_CACHE"] = str(_PRIVATE_CACHE[0])
        os.environ.setdefault("MPLCONFIGDIR", str(_PRIVATE_CACHE[0] / "matplotlib"))
    # rich pins a console's width when COLUMNS is set at its creation (pytest-xdist workers have
    # it); without it the CLI consoles follow the COLUMNS each CliRunner test sets
    os.environ.pop("COLUMNS", None)


def pytest_unconfigure(config):
    for root in _PRIVATE_CACHE:
        shutil.rmtree(root, ignore_errors=True)  # symlinks are removed, never followed
    _PRIVATE_CACHE.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (``item.report_call.failed``: fixtures can see
    whether their test failed, e.g. to save what a browser showed)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)

"""Fixtures for the io tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def shared_bad_folder(tmp_path_factory, badfiles_module):
    """One bad folder per test module, for tests that only read it (see tests/io/badfiles.py)."""
    return badfiles_module.make_bad_folder(tmp_path_factory.mktemp("io") / "bad")

"""The README's Python example runs as written (paths pointed at a temporary folder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.imagegen import write_images

README = Path(__file__).parents[1] / "README.md"


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    photos = tmp_path / "Pictures"
    paths = write_images(photos, 24)
    write_images(photos / "old", 3, start=100)
    code = (
        code.replace('"~/Pictures/old"', repr(str(photos / "old")))
        .replace('"~/Pictures"', repr(str(photos)))
        .replace('"query.jpg"', repr(str(paths[0])))
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["vectors"].shape == (27, 1280)
    assert len(namespace["result"].hits) == 10
    assert (tmp_path / "pictures.lookalike" / "lookalike.toml").exists()

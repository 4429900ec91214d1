"""``first``: the first N items of a split, in the dataset's order (select_subset, export, CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from lookalike.cli.dataset import app as dataset_app
from lookalike.errors import DatasetError, InvalidParameterError
from lookalike.io.datasets import export, load_arrays, select_subset
from lookalike.io.datasets.export_folder import MARKER, export_record
from tests.evaluate.compare.fakedata import write_fake_fashion


def test_first_keeps_a_prefix_then_limits_choose_within_it():
    labels = np.random.default_rng(0).integers(0, 3, 50)
    np.testing.assert_array_equal(select_subset(labels, first=7), np.arange(7))
    assert len(select_subset(labels, first=500)) == 50
    balanced = select_subset(labels, first=20, limit=6, seed=2)
    assert balanced.max() < 20 and np.bincount(labels[balanced], minlength=3).tolist() == [2, 2, 2]
    capped = select_subset(labels, first=20, per_class=1, seed=2)
    assert sorted(labels[capped].tolist()) == [0, 1, 2] and capped.max() < 20
    with pytest.raises(InvalidParameterError, match="first must be >= 1, got 0"):
        select_subset(labels, first=0)


def test_export_first_writes_the_first_images_and_records_it(tmp_path):
    cache = write_fake_fashion(tmp_path / "cache", per_class=4, n_classes=3)
    images, labels, classes = load_arrays("fashion-mnist", cache_dir=cache)
    counts = export("fashion-mnist", tmp_path / "out", first=5, cache_dir=cache)
    written = sorted(p.name for p in (tmp_path / "out").glob("*/*.png"))
    assert written == [f"train-{i:05d}.png" for i in range(5)]
    assert counts == {classes[c].replace("/", "_"): int(n) for c, n in enumerate(np.bincount(labels[:5])) if n}
    record = export_record(tmp_path / "out")
    assert record["first"] == 5 and record["complete"] and record["split"] == "train"
    assert export_record(tmp_path / "elsewhere") is None


def test_export_record_refuses_a_corrupt_marker(tmp_path):
    (tmp_path / MARKER).write_text(json.dumps({"files": "not a list"}))
    with pytest.raises(DatasetError, match=r"unreadable export record .*'files' list.*delete it"):
        export_record(tmp_path)


def test_cli_export_first(tmp_path):
    cache = write_fake_fashion(tmp_path / "cache", per_class=4, n_classes=3)
    main = typer.Typer()
    main.add_typer(dataset_app, name="dataset")
    args = ["dataset", "export", "fashion-mnist", str(tmp_path / "out"), "--first", "6", "--cache-dir", str(cache)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Wrote 6 images" in text and "(T-shirt_top: 2, Trouser: 2, Pullover: 2)" in text
    bad = CliRunner().invoke(main, [*args[:4], "--first", "0"])
    assert bad.exit_code == 2 and "first" in bad.output

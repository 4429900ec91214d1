"""Duplicates of a library that survive everyday edits, each link naming the edit it found."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from lookalike.index.duplicates import DuplicatePair
from lookalike.library import Library
from lookalike.search.duplicates import infer_edit


def photo_folder(root: Path) -> dict[str, str]:
    """Five real photos and edited copies of the first four: name -> the edit made."""
    data = pytest.importorskip("skimage.data")
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.hubble_deep_field()]
    root.mkdir()
    images = [Image.fromarray(a).resize((192, 144)) for a in photos]
    for k, image in enumerate(images):
        image.save(root / f"photo{k}.png")
    buffer = io.BytesIO()
    images[2].save(buffer, "JPEG", quality=30)
    edits = {
        "flipped0.png": ("flip", images[0].transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        "turned1.png": ("rotation", images[1].transpose(Image.Transpose.ROTATE_90)),
        "recoded2.jpg": ("re-encode", None),
        "small3.png": ("resize", images[3].resize((96, 72), Image.Resampling.BILINEAR)),
    }
    for name, (_, image) in edits.items():
        if image is None:
            (root / name).write_bytes(buffer.getvalue())
        else:
            image.save(root / name)
    return {name: edit for name, (edit, _) in edits.items()}


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("dups")
    edits = photo_folder(root / "photos")
    with Library.create(root / "lib.lookalike", backbone="pixels") as lib:
        lib.add([root / "photos"])
    return root / "lib.lookalike", edits


def links_by_file(groups) -> dict[frozenset, list]:
    found: dict[frozenset, list] = {}
    for group in groups:
        for link in group.links:
            found.setdefault(frozenset((Path(link.a).name, Path(link.b).name)), []).append(link)
    return found


def test_near_tier_finds_flips_turns_reencodes_resizes_and_names_them(library) -> None:
    path, edits = library
    with Library.open(path) as lib:
        groups = lib.duplicates(near_bits=10, min_similarity=None)
        plain = lib.duplicates(near_bits=10, min_similarity=None, transforms=False)
    found = links_by_file(groups)
    for name, edit in edits.items():
        original = f"photo{name[-5]}.png"
        links = found[frozenset((name, original))]
        assert [link.edit for link in links] == [edit], (name, links)
    assert len(found) == len(edits)  # no unrelated photos linked
    plain_pairs = links_by_file(plain)
    assert frozenset(("flipped0.png", "photo0.png")) not in plain_pairs
    assert frozenset(("turned1.png", "photo1.png")) not in plain_pairs


def test_mirrored_vectors_find_a_flip_the_plain_vectors_miss(library) -> None:
    path, _ = library
    pair = frozenset(("flipped0.png", "photo0.png"))
    with Library.open(path) as lib:
        vectors = lib.reduced()
        plain = links_by_file(lib.duplicates(near_bits=None, min_similarity=0.9))
        mirrored = links_by_file(lib.duplicates(near_bits=None, min_similarity=0.9, mirror=True))
    assert len(vectors.ids) == 9
    assert pair not in plain
    assert [link.edit for link in mirrored[pair]] == ["flip"]
    assert "after a flip" in mirrored[pair][0].reason
    assert set(plain) <= set(mirrored)  # the plain pairs stay


@pytest.mark.parametrize(("source", "a", "b", "edit"), [
    ("near", (200, 100), (200, 100), "re-encode"),
    ("near", (200, 100), (100, 50), "resize"),
    ("near", (200, 100), (150, 100), "crop"),
    ("semantic", (200, 100), (100, 200), "rotation"),
    ("semantic", (200, 100), (160, 100), "crop"),
    ("semantic", (200, 100), (100, 50), "crop"),  # a plain resize would have been a near pair
    ("semantic", (200, 100), (200, 100), None),  # colour, text, or another photo of the same thing
    ("near", (100, 100), (100, 100), "re-encode"),  # a square is not "swapped"
])
def test_edit_is_inferred_from_sizes_when_no_transform_matched(source, a, b, edit) -> None:
    assert infer_edit(DuplicatePair(1, 2, "", 0.9), source, a, b) == edit
    assert infer_edit(DuplicatePair(1, 2, "", 0.9, "flip"), source, a, b) == "flip"


def test_cli_prints_the_edit(library) -> None:
    from lookalike.cli.main import app

    path, _ = library
    result = CliRunner().invoke(app, ["duplicates", "--library", str(path), "--no-semantic", "--near-bits", "10"])
    assert result.exit_code == 0, result.output
    flat = result.output.replace("\n", " ")
    assert "after flip horizontal (flip)" in flat and "(rotation)" in flat and "(re-encode)" in flat

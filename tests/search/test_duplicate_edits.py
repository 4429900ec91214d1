"""Duplicates of a library that survive everyday edits, each link naming the edit it found."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lookalike.config import (
    DUPLICATE_CONFIRM_BITS,
    DUPLICATE_CONFIRM_SIMILARITY,
    DUPLICATE_DHASH_BITS,
    DUPLICATE_FOUND_SIMILARITY,
    DUPLICATE_MIN_SIMILARITY,
    DUPLICATE_NEAR_BITS,
)
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
    ("near+semantic", (200, 100), (100, 50), "crop"),  # hashes too far apart for a plain resize
    ("near+semantic", (200, 100), (200, 100), None),  # text written over it, a strong colour change
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


def written_over(image: Image.Image, text: str, where: tuple[float, float], size: int, stroke: int, alpha: int) -> Image.Image:
    """``image`` with ``text`` at ``where`` (fractions of width and height), letters ``size``
    pixels high, white with a ``stroke``-pixel black outline, at opacity ``alpha``."""
    from PIL import ImageDraw, ImageFont

    out = image.copy()
    ImageDraw.Draw(out, "RGBA").text((out.width * where[0], out.height * where[1]), text, fill=(255, 255, 255, alpha),
                                     font=ImageFont.load_default(size=size), stroke_width=stroke,
                                     stroke_fill=(0, 0, 0, alpha))
    return out


def watermarked(image: Image.Image) -> Image.Image:
    """``image`` with "SAMPLE" written across its middle, half transparent (a stock-photo watermark)."""
    return written_over(image, "SAMPLE", (0.05, 0.4), max(10, image.height // 6), 2, 170)


def text_folder(root: Path, names: tuple[str, ...], marked: str, side: int = 320) -> None:
    """Real photos (longer side ``side``) and a watermarked copy of ``marked`` as marked_text.png."""
    data = pytest.importorskip("skimage.data")
    root.mkdir()
    for name in names:
        image = Image.fromarray(getattr(data, name)()).convert("RGB")
        scale = side / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
        image.save(root / f"{name}.png")
        if name == marked:
            watermarked(image).save(root / f"{name}_text.png")


def test_near_semantic_links_a_watermarked_copy_neither_tier_links_alone(tmp_path) -> None:
    text_folder(tmp_path / "photos", ("astronaut", "camera", "coffee", "coins", "rocket", "brick"), "coins")
    loose = {"confirm_bits": 20, "confirm_similarity": 0.45}
    with Library.create(tmp_path / "lib.lookalike", backbone="pixels") as lib:
        lib.add([tmp_path / "photos"])
        strict = {"near_bits": 0, "min_similarity": 0.999, "kind": "exact", "dhash_bits": None}
        alone = links_by_file(lib.duplicates(**strict, confirm_bits=None))
        both = links_by_file(lib.duplicates(**strict, **loose))
        no_near = links_by_file(lib.duplicates(near_bits=None, min_similarity=0.999, **loose))
        hash_only = links_by_file(lib.duplicates(near_bits=20, min_similarity=None, dhash_bits=None))
        cosine_only = links_by_file(lib.duplicates(near_bits=None, min_similarity=0.45))
    pair = frozenset(("coins.png", "coins_text.png"))
    assert pair not in alone and pair not in no_near  # the rule needs both kinds of evidence
    assert set(both) == {pair}  # and links no two different photos
    [link] = both[pair]
    assert link.kind == "near+semantic" and link.edit is None
    assert link.reason.startswith("perceptual hash distance ") and " and cosine " in link.reason
    # what each piece of evidence alone would have linked at those thresholds: different photos
    assert set(hash_only) - {pair} and set(cosine_only) - {pair}


def test_dhash_links_a_watermarked_copy_the_phash_misses(tmp_path) -> None:
    text_folder(tmp_path / "photos", ("astronaut", "camera", "coffee", "coins", "rocket", "brick"), "coins")
    with Library.create(tmp_path / "lib.lookalike", backbone="pixels") as lib:
        lib.add([tmp_path / "photos"])
        from lookalike.embed.phash import dhash, phash
        from lookalike.store import images

        ids, stored = images.dhashes(lib.store.catalog)
        name_of = {int(i): Path(p).name for i, p in lib.store.catalog.query("SELECT image_id, path FROM files")}
        for image_id, value in zip(ids.tolist(), stored.tolist()):  # the catalog holds each file's dHash
            assert value == dhash(Image.open(tmp_path / "photos" / name_of[image_id]))
        original, copy = (Image.open(tmp_path / "photos" / f) for f in ("coins.png", "coins_text.png"))
        d_bits = bin(dhash(original) ^ dhash(copy)).count("1")
        p_bits = bin(phash(original) ^ phash(copy)).count("1")
        assert d_bits < p_bits  # the text moves the dHash less
        only = {"min_similarity": None, "kind": "exact", "exact": False}
        found = links_by_file(lib.duplicates(near_bits=d_bits, dhash_bits=d_bits, transforms=False, **only))
        without = links_by_file(lib.duplicates(near_bits=d_bits, dhash_bits=None, transforms=False, **only))
    pair = frozenset(("coins.png", "coins_text.png"))
    assert pair in found and pair not in without
    [link] = found[pair]
    assert link.kind == "near" and link.edit is None
    assert link.reason.startswith(f"difference hash distance {d_bits}/64 and cosine ")  # weak: scored by cosine


def test_plain_pictures_share_a_dhash_but_are_not_linked_by_it(tmp_path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    for name, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200)), ("grey", (128, 128, 128))):
        Image.new("RGB", (64, 48), colour).save(folder / f"{name}.png")
    with Library.create(tmp_path / "lib.lookalike", backbone="pixels") as lib:
        lib.add([folder])
        from lookalike.store import images

        _, stored = images.dhashes(lib.store.catalog)
        assert len(set(stored.tolist())) == 1  # no brighter neighbour anywhere: one dHash for all
        groups = lib.duplicates(near_bits=0, min_similarity=None, dhash_bits=63, exact=False)
    assert not [link for g in groups for link in g.links if link.reason.startswith("difference hash")]


def brute_force_links(lib: Library, near_bits: int, min_similarity: float, both: tuple[int, float],
                      attach: bool = True, dhash_bits: int | None = None) -> set:
    """Image-name pairs the rules link, from every pair's distances and cosine (n x n); a
    near+semantic pair only where it adds an image to a group, not where it would merge two, and
    between two images in no group only at DUPLICATE_FOUND_SIMILARITY."""
    from lookalike.index.dihedral import TRANSFORMS, transform_hashes
    from lookalike.store import images

    reduced = lib.reduced()
    name_of = {int(i): Path(p).name for i, p in lib.store.catalog.query("SELECT image_id, path FROM files")}
    cosine = reduced.vectors @ reduced.vectors.T
    ids, hashes = images.phashes(lib.store.catalog)
    assert (ids == reduced.ids).all()
    distance = np.full(cosine.shape, 64)
    for transform in TRANSFORMS:
        moved = transform_hashes(hashes, transform)
        d = np.bitwise_count(moved[:, None] ^ hashes[None, :]).astype(int)
        distance = np.minimum(distance, np.minimum(d, d.T))
    strong = (distance <= near_bits) | (cosine >= min_similarity - 1e-6)
    weak = ~strong & (distance <= both[0]) & (cosine >= both[1] - 1e-6)
    if dhash_bits is not None:  # weak links too, at any cosine, between informative dHashes
        from lookalike.search.duplicates import DHASH_INFORMATIVE

        dh_ids, dh = images.dhashes(lib.store.catalog)
        assert (dh_ids == reduced.ids).all()
        low, high = DHASH_INFORMATIVE
        informative = (np.bitwise_count(dh) >= low) & (np.bitwise_count(dh) <= high)
        close = np.bitwise_count(dh[:, None] ^ dh[None, :]).astype(int) <= dhash_bits
        weak |= ~strong & close & informative[:, None] & informative[None, :]
    i, j = np.nonzero(np.triu(strong, k=1))
    linked = {frozenset((name_of[int(ids[a])], name_of[int(ids[b])])) for a, b in zip(i, j)}
    i, j = np.nonzero(np.triu(weak, k=1))
    for k in np.argsort(-cosine[i, j], kind="stable"):  # best first, each only onto an image still alone
        a, b = name_of[int(ids[i[k]])], name_of[int(ids[j[k]])]
        group_a, group_b = linked_to(a, linked), linked_to(b, linked)
        starts = len(group_a) == len(group_b) == 1 and cosine[i[k], j[k]] < DUPLICATE_FOUND_SIMILARITY
        if not attach or b in group_a or (min(len(group_a), len(group_b)) == 1 and not starts):
            linked.add(frozenset((a, b)))
    return linked


def linked_to(name: str, links: set) -> set:
    """Every name joined to ``name`` by a chain of ``links`` (itself included)."""
    seen, todo = {name}, [name]
    while todo:
        here = todo.pop()
        for link in links:
            if here in link and not link <= seen:
                seen |= link
                todo.extend(link)
    return seen


@pytest.mark.parametrize(("near_bits", "min_similarity", "both", "dhash_bits"), [
    (DUPLICATE_NEAR_BITS, DUPLICATE_MIN_SIMILARITY, (DUPLICATE_CONFIRM_BITS, DUPLICATE_CONFIRM_SIMILARITY),
     DUPLICATE_DHASH_BITS),
    (10, 0.9, (24, 0.2), None),
    (2, 0.95, (24, 0.3), None),
    (8, 0.999, (40, 0.0), None),
], ids=["defaults", "loose", "mostly-near+semantic", "near+semantic-would-merge-groups"])
def test_library_links_are_the_brute_force_union_of_the_rules(tmp_path, near_bits, min_similarity, both,
                                                              dhash_bits) -> None:
    names = ("astronaut", "camera", "coffee", "coins", "rocket", "brick", "grass", "moon")
    text_folder(tmp_path / "photos", names, "coins")
    for name in ("brick", "astronaut"):  # more edits: a watermark, a flip
        watermarked(Image.open(tmp_path / "photos" / f"{name}.png")).save(tmp_path / "photos" / f"{name}_text.png")
    Image.open(tmp_path / "photos" / "camera.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
        tmp_path / "photos" / "camera_flip.png")
    with Library.create(tmp_path / "lib.lookalike", backbone="pixels") as lib:
        lib.add([tmp_path / "photos"])
        groups = lib.duplicates(near_bits=near_bits, min_similarity=min_similarity, confirm_bits=both[0],
                                confirm_similarity=both[1], kind="exact", exact=False, dhash_bits=dhash_bits)
        expected = brute_force_links(lib, near_bits, min_similarity, both, dhash_bits=dhash_bits)
        if near_bits == 8:  # here the rule drops near+semantic pairs that would merge two groups
            assert len(brute_force_links(lib, near_bits, min_similarity, both, attach=False)) > len(expected)
    found = links_by_file(groups)
    assert set(found) == expected
    kinds = [sorted(link.kind for link in links) for links in found.values()]
    assert all(k == ["near+semantic"] or "near+semantic" not in k for k in kinds)  # only where neither tier links
    assert ["near+semantic"] in kinds  # every setting here has such a pair


def captioned(image: Image.Image) -> Image.Image:
    """``image`` with a small caption in its lower left corner."""
    return written_over(image, "© holiday 2024", (0.05, 0.85), max(8, image.height // 14), 1, 230)


@pytest.mark.slow
def test_default_backbone_and_thresholds_group_captioned_photos_and_nothing_unrelated(tmp_path) -> None:
    """The shipped defaults with the default backbone: every real photo with a caption written over
    it is grouped with its original, and no group holds two different photos."""
    names = ("astronaut", "camera", "chelsea", "coffee", "coins", "rocket", "brick", "grass", "gravel", "page",
             "clock", "moon", "retina", "immunohistochemistry", "hubble_deep_field", "text")
    text_folder(tmp_path / "photos", names, "coins")
    for name in names:
        captioned(Image.open(tmp_path / "photos" / f"{name}.png")).save(tmp_path / "photos" / f"{name}_caption.png")
    with Library.create(tmp_path / "lib.lookalike") as lib:
        lib.add([tmp_path / "photos"])
        groups = lib.duplicates()
    photo_of = [{Path(p).stem.split("_")[0] for p in group.paths} for group in groups]
    assert all(len(photos) == 1 for photos in photo_of), photo_of  # nothing unrelated
    grouped = {frozenset(Path(p).name for p in group.paths) for group in groups}
    missed = [n for n in names if not any({f"{n}.png", f"{n}_caption.png"} <= g for g in grouped)]
    assert not missed

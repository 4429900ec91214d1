"""pHashes of flipped and turned pictures predicted from the stored hash, and near-duplicate search
that uses them: checked against the pHash of the actually transformed picture and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.embed.phash import hamming_distance, phash
from lookalike.errors import InvalidParameterError
from lookalike.index.dihedral import QUERY_TRANSFORMS, TRANSFORMS, apply_to_image, transform_hashes
from lookalike.index.duplicates import phash_pairs


def photos() -> list[np.ndarray]:
    """Real photos from scikit-image, at a few sizes and aspect ratios."""
    data = pytest.importorskip("skimage.data")
    arrays = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.hubble_deep_field()]
    return [np.asarray(Image.fromarray(a).resize((160 + 24 * k, 128))) for k, a in enumerate(arrays)]


def test_transpose_is_exact_and_every_transform_is_close_to_the_real_hash() -> None:
    images = photos()
    hashes = np.array([phash(a) for a in images], dtype=np.uint64)
    for transform in TRANSFORMS:
        real = np.array([phash(apply_to_image(a, transform)) for a in images], dtype=np.uint64)
        errors = hamming_distance(transform_hashes(hashes, transform), real)
        if transform in ("identity", "transpose"):
            assert errors.tolist() == [0] * len(images)
        else:  # a prediction, not the hash itself: a few bits off, far closer than unrelated photos (~32)
            assert errors.max() <= 10 and errors.mean() <= 6, (transform, errors)


def test_transforms_compose_like_the_pictures_do() -> None:
    hashes = np.random.default_rng(0).integers(0, 2**63, size=50, dtype=np.uint64) * np.uint64(2)
    twice = lambda h, t: transform_hashes(transform_hashes(h, t), t)  # noqa: E731
    for involution in ("flip-horizontal", "flip-vertical", "rotate-180", "transpose", "transverse"):
        np.testing.assert_array_equal(twice(hashes, involution), hashes)
    np.testing.assert_array_equal(twice(hashes, "rotate-90"), transform_hashes(hashes, "rotate-180"))
    np.testing.assert_array_equal(transform_hashes(transform_hashes(hashes, "rotate-90"), "rotate-270"), hashes)
    both = transform_hashes(transform_hashes(hashes, "flip-horizontal"), "flip-vertical")
    np.testing.assert_array_equal(both, transform_hashes(hashes, "rotate-180"))


def test_unknown_transform_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="transform must be one of"):
        transform_hashes(np.zeros(1, np.uint64), "rotate-45")


def brute_force(hashes: np.ndarray, threshold: int) -> dict[tuple[int, int], int]:
    """Smallest distance over all 8 transforms, either way round, of every pair within threshold."""
    best = np.full((len(hashes), len(hashes)), 64)
    for t in TRANSFORMS:
        d = hamming_distance(transform_hashes(hashes, t)[:, None], hashes[None, :])
        best = np.minimum(best, np.minimum(d, d.T))
    return {(i, j): int(best[i, j]) for i in range(len(hashes)) for j in range(i + 1, len(hashes)) if best[i, j] <= threshold}


def test_transformed_search_equals_brute_force_and_names_the_edit() -> None:
    images = photos()
    edited = [apply_to_image(images[0], "flip-horizontal"), apply_to_image(images[1], "rotate-90"),
              apply_to_image(images[2], "rotate-270"), apply_to_image(images[3], "rotate-180")]
    hashes = np.array([phash(a) for a in images + edited], dtype=np.uint64)
    ids = np.arange(len(hashes)) * 10
    pairs = phash_pairs(ids, hashes, 8, transforms=QUERY_TRANSFORMS)
    expected = brute_force(hashes, 8)
    assert {(p.a // 10, p.b // 10): round((1 - p.score) * 64) for p in pairs} == expected
    edits = {(p.a // 10, p.b // 10): p.edit for p in pairs}
    assert edits[(0, 5)] == "flip" and edits[(1, 6)] == "rotation" and edits[(2, 7)] == "rotation"
    assert edits[(3, 8)] == "rotation"
    reason = next(p.reason for p in pairs if (p.a // 10, p.b // 10) == (1, 6))
    assert reason.endswith("after rotate 90")
    plain = phash_pairs(ids, hashes, 8)  # without transforms: none of the flipped or turned copies
    assert not {(p.a // 10, p.b // 10) for p in plain} & {(0, 5), (1, 6), (2, 7), (3, 8)}

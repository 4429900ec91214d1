"""pHash: stable under resize and JPEG re-encoding, different across photos, EXIF-aware."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from lookalike.embed.phash import (
    PHASH_METHODS,
    dhash,
    hamming_distance,
    hashes_to_bytes,
    image_hashes,
    phash,
    phash_many,
)
from lookalike.errors import InvalidParameterError

skdata = pytest.importorskip("skimage.data")
PHOTOS = ["astronaut", "camera", "coffee", "chelsea", "coins", "moon", "rocket", "hubble_deep_field", "brick"]


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {name: getattr(skdata, name)() for name in PHOTOS}


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


@pytest.mark.parametrize("method", PHASH_METHODS)
@pytest.mark.parametrize("name", PHOTOS)
def test_resize_and_jpeg_reencoding_move_few_bits(name, method, photos):
    original = Image.fromarray(photos[name])
    h = phash(original, method)
    w, ht = original.size
    variants = [
        original.resize((w // 2, ht // 2), Image.Resampling.BILINEAR),
        original.resize((w * 3 // 2, ht * 3 // 2), Image.Resampling.BICUBIC),
        jpeg(original, 40),
        jpeg(original.resize((w // 3, ht // 3)), 60),
    ]
    assert [int(hamming_distance(h, phash(v, method))) for v in variants] == pytest.approx([0] * 4, abs=6)


@pytest.mark.parametrize("method", PHASH_METHODS)
def test_different_photos_are_far_apart(photos, method):
    hashes = {name: phash(array, method) for name, array in photos.items()}
    distances = [int(hamming_distance(hashes[a], hashes[b])) for a, b in itertools.combinations(PHOTOS, 2)]
    assert min(distances) > 12 and 24 <= np.median(distances) <= 40


@pytest.mark.parametrize("method", PHASH_METHODS)
def test_exif_orientation_is_applied_before_hashing(photos, method):
    upright = Image.fromarray(photos["chelsea"])
    stored = upright.transpose(Image.Transpose.ROTATE_270)  # sensor rows as a camera writes them ...
    exif = Image.Exif()
    exif[0x0112] = 8  # ... with tag 8: "turn 90 degrees counter-clockwise to view"
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    buffer.seek(0)
    tagged = Image.open(buffer)
    assert hamming_distance(phash(tagged, method), phash(upright, method)) <= 4
    assert hamming_distance(phash(np.asarray(tagged), method), phash(upright, method)) > 12  # arrays are as given


@pytest.mark.parametrize("method", PHASH_METHODS)
def test_arrays_and_pil_images_agree(photos, method):
    gray, rgba = photos["camera"], np.dstack([photos["coffee"], np.full(photos["coffee"].shape[:2], 255, np.uint8)])
    assert phash(gray, method) == phash(Image.fromarray(gray), method) == phash(gray[:, :, None], method)
    assert phash(rgba, method) == phash(photos["coffee"], method) == phash(Image.fromarray(rgba), method)


def test_opencv_area_hash_matches_a_scipy_reference(photos):
    """The default method, rebuilt from its definition with SciPy's DCT and NumPy's median."""
    import cv2
    from scipy.fft import dctn

    for image in photos.values():
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float64)
        low = dctn(small, type=2, norm="ortho")[:8, :8]
        bits = (low > np.median(low)).ravel()
        assert phash(image, "opencv-area") == int("".join("1" if b else "0" for b in bits), 2)


def test_the_two_methods_hash_alike_but_not_identically(photos):
    distances = [int(hamming_distance(phash(a, "opencv-area"), phash(a, "pillow-lanczos"))) for a in photos.values()]
    assert max(distances) <= 8 and sum(distances) > 0


def test_unknown_method_is_refused(photos):
    with pytest.raises(InvalidParameterError, match="method must be one of"):
        phash(photos["camera"], "nearest")


def test_hashes_pack_to_bytes(photos):
    gray, rgba = photos["camera"], photos["coffee"]
    hashes = phash_many([gray, rgba])
    assert hashes.dtype == np.uint64 and hashes.shape == (2,)
    codes = hashes_to_bytes(hashes)
    assert codes.shape == (2, 8) and int.from_bytes(codes[0].tobytes(), "big") == int(hashes[0])
    assert int(np.unpackbits(codes[0] ^ codes[1]).sum()) == int(hamming_distance(hashes[0], hashes[1]))


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((8, 8), np.float32), "must be uint8"),
        (np.zeros((8, 8, 2), np.uint8), r"\(H, W\), \(H, W, 3\) or \(H, W, 4\)"),
        (np.zeros((0, 8), np.uint8), "image is empty"),
    ],
    ids=["float", "two-channels", "empty"],
)
def test_bad_arrays_are_refused(image, match):
    with pytest.raises(InvalidParameterError, match=match):
        phash(image)


def area_weights(source: int, target: int) -> np.ndarray:
    """(target, source) weights of pixel-area averaging: the share of each source pixel in each
    target pixel's interval."""
    edges = np.arange(target + 1) * source / target
    starts, stops = edges[:-1, None], edges[1:, None]
    pixels = np.arange(source)[None, :]
    return np.clip(np.minimum(stops, pixels + 1) - np.maximum(starts, pixels), 0, None) / (source / target)


def test_dhash_matches_an_area_average_reference(photos):
    grey = photos["camera"][:480, :448]  # 32 x 32 blocks of 14 x 15 pixels, then 32 -> 9 x 8
    small = np.rint(grey.reshape(32, 15, 32, 14).astype(np.float64).mean(axis=(1, 3)))
    tiny = area_weights(32, 8) @ small @ area_weights(32, 9).T
    step = tiny[:, 1:] - tiny[:, :-1]
    found = np.unpackbits(np.frombuffer(dhash(grey).to_bytes(8, "big"), np.uint8)).reshape(8, 8).astype(bool)
    clear = np.abs(step) > 1  # where rounding to whole grey levels cannot decide the bit
    assert clear.sum() > 48 and (found[clear] == (step[clear] > 0)).all()
    ramp = np.tile(np.arange(0, 255, 255 // 90, dtype=np.uint8)[:90], (80, 1))  # brighter to the right
    assert dhash(ramp) == 2**64 - 1 and dhash(np.full((80, 90), 7, np.uint8)) == 0


def test_dhash_moves_less_than_phash_under_written_text(photos):
    from PIL import ImageDraw

    original = Image.fromarray(photos["coffee"])
    written = original.copy()
    ImageDraw.Draw(written).text((30, 330), "holiday 2024 (c) someone", fill=(255, 255, 255), font_size=40)
    assert hamming_distance(dhash(original), dhash(written)) < hamming_distance(phash(original), phash(written))


def test_dhash_applies_exif_orientation_like_phash(photos):
    upright = Image.fromarray(photos["chelsea"])
    exif = Image.Exif()
    exif[0x0112] = 8
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_270).save(buffer, format="PNG", exif=exif.tobytes())
    buffer.seek(0)
    assert dhash(Image.open(buffer)) == dhash(upright)


@pytest.mark.parametrize("method", PHASH_METHODS)
def test_image_hashes_are_the_two_hashes(photos, method):
    for image in (photos["coffee"], Image.fromarray(photos["coffee"]), photos["camera"]):
        assert image_hashes(image, method) == (phash(image, method), dhash(image))

"""Decoding: every good file to the right pixels, every bad one to the right reason."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from lookalike.errors import (
    CorruptImageError,
    ImageTooLargeError,
    InvalidParameterError,
    NotAnImageError,
    UnreadableFileError,
)
from lookalike.io.decode import (
    RESIZE_METHODS,
    ImageInfo,
    load_model_input,
    load_rgb,
    probe_image,
    sniff_format,
    to_model_input,
)

LIMIT = 100_000_000
GOOD = [
    "jpeg_orient6", "png", "webp", "bmp", "no_extension", "png_as_jpg", "gif_animated", "tiff_multipage",
    "heic", "cmyk", "p", "p_transparent", "pa", "la", "gray", "rgba", "bilevel", "i16", "rgb16",
    "inside_loop", "non_utf8", "non_ascii",
]  # fmt: skip
ERRORS = {
    "not_image": NotAnImageError,
    "corrupt": CorruptImageError,
    "too_large": ImageTooLargeError,
    "unreadable": UnreadableFileError,
}
REASONS = {
    "empty": r"empty file \(0 bytes\)",
    "truncated_jpeg": r"truncated or corrupt JPEG: .+",
    "truncated_png": r"truncated or corrupt PNG: .+",
    "text": r"not an image \(content looks like text\)",
    "pdf": r"not a supported image format \(looks like a PDF document; content starts with b'%PDF-1.4'\)",
    "bomb": r"image too large: 12000×12000 = 144,000,000 pixels, over the limit of 100,000,000 "
    r"\(raise it with --max-pixels\)",
    "bomb_header": r"image too large: 100000×100000 = 10,000,000,000 pixels, over the limit of 100,000,000 .*",
    "no_permission": r"permission denied",
    "broken_link": r"broken symbolic link \(target '.*does-not-exist\.jpg' does not exist\)",
    "loop_a": r"symbolic link loop",
    "loop_b": r"symbolic link loop",
    "dir_loop": r"is a folder, not a file",
}


def decoded(path: Path, **kwargs: object) -> np.ndarray:
    return np.asarray(load_rgb(path, max_pixels=LIMIT, **kwargs))  # type: ignore[arg-type]


def test_every_good_file_is_listed(shared_bad_folder) -> None:
    assert set(GOOD) | {"no_permission"} >= set(shared_bad_folder.expected) >= set(GOOD)


@pytest.mark.parametrize("name", GOOD)
def test_good_file_decodes_to_expected_pixels(shared_bad_folder, name: str) -> None:
    expected, atol = shared_bad_folder.expected[name]
    got = decoded(shared_bad_folder[name].path)
    assert got.dtype == np.uint8 and got.shape == expected.shape
    assert np.abs(got.astype(int) - expected).max() <= atol


@pytest.mark.parametrize("name", GOOD)
def test_probe_reports_format_and_displayed_size(shared_bad_folder, name: str) -> None:
    expected, _ = shared_bad_folder.expected[name]
    info = probe_image(shared_bad_folder[name].path, max_pixels=LIMIT)
    assert (info.format, info.height, info.width) == (shared_bad_folder.formats[name], *expected.shape[:2])


def test_exif_orientation_6_turns_red_left_half_to_the_top(shared_bad_folder) -> None:
    got = decoded(shared_bad_folder["jpeg_orient6"].path)
    assert got.shape == (128, 32, 3)  # stored 128 wide × 32 high, shown 32 wide × 128 high
    quarters = got.reshape(4, 32, 32, 3).mean(axis=(1, 2))  # from top to bottom
    redness = quarters[:, 0] - quarters[:, 1:].max(axis=1)
    assert redness[0] > 150 and (redness[1:] <= 0).all()  # only the top quarter is red


def test_modes_are_reported_as_stored(shared_bad_folder) -> None:
    names = ("pa", "cmyk", "i16", "bilevel")
    modes = {name: probe_image(shared_bad_folder[name].path, max_pixels=LIMIT).mode for name in names}
    assert modes == {"pa": "PA", "cmyk": "CMYK", "i16": "I;16", "bilevel": "1"}


def test_sixteen_bit_values_are_scaled_not_clipped(shared_bad_folder) -> None:
    assert list(decoded(shared_bad_folder["i16"].path)[0, :3, 0]) == [4, 128, 233]  # 1000, 32768, 60000
    assert abs(int(decoded(shared_bad_folder["rgb16"].path)[0, 0, 0]) - 4) <= 1  # 1000 / 257 ≈ 3.9


def test_transparent_pixel_becomes_white(shared_bad_folder) -> None:
    assert list(decoded(shared_bad_folder["rgba"].path)[0, 0]) == [255, 255, 255]


@pytest.mark.parametrize("name", sorted(REASONS))
def test_bad_file_raises_its_kind_with_a_reason(shared_bad_folder, name: str) -> None:
    path, kind = shared_bad_folder[name]
    if kind == "ok":
        pytest.skip("running as root: chmod 000 does not stop root from reading")
    with pytest.raises(ERRORS[kind]) as caught:
        load_rgb(path, max_pixels=LIMIT)
    assert re.fullmatch(REASONS[name], caught.value.reason)
    assert caught.value.path == path and str(caught.value).startswith(str(path))


def test_kinds_of_the_folder_match_what_decoding_does(bad_folder) -> None:
    for name, (path, kind) in bad_folder.items():
        try:
            load_rgb(path, max_pixels=LIMIT)
            outcome = "ok"
        except tuple(ERRORS.values()) as error:
            outcome = next(k for k, cls in ERRORS.items() if type(error) is cls)
        assert outcome == kind, name


def test_permission_denied_simulated(shared_bad_folder, monkeypatch: pytest.MonkeyPatch) -> None:
    target, real_open = shared_bad_folder["png"].path, os.open

    def refusing_open(path, flags, *args, **kwargs):
        if Path(path) == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(UnreadableFileError, match="permission denied"):
        load_rgb(target, max_pixels=LIMIT)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied_for_real(tmp_path: Path) -> None:
    path = tmp_path / "locked.png"
    Image.new("RGB", (4, 4)).save(path)
    path.chmod(0)
    with pytest.raises(UnreadableFileError, match="permission denied"):
        probe_image(path, max_pixels=LIMIT)


class VanishingStream(io.BytesIO):
    """Serves the first ``good`` bytes, then fails like a file deleted on a network share."""

    def __init__(self, data: bytes, good: int) -> None:
        super().__init__(data)
        self.good = good

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() + (size if size and size > 0 else 1) > self.good:
            raise OSError(errno.ESTALE, "Stale file handle")
        return super().read(size)


def test_file_vanishing_while_reading_is_unreadable_not_corrupt(shared_bad_folder) -> None:
    data = shared_bad_folder["png"].path.read_bytes()
    with pytest.raises(UnreadableFileError, match="file vanished while reading"):
        load_rgb(VanishingStream(data, good=len(data) // 2), max_pixels=LIMIT)


def test_every_kind_of_source_gives_the_same_pixels(shared_bad_folder) -> None:
    path = shared_bad_folder["webp"].path
    data = path.read_bytes()

    class OneWay(io.RawIOBase):  # a pipe-like stream that cannot seek
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            return self.inner.readinto(buffer)

    sources = [path, str(path), data, io.BytesIO(data), io.BufferedReader(OneWay())]
    arrays = [np.asarray(load_rgb(source, max_pixels=LIMIT)) for source in sources]
    assert all(np.array_equal(arrays[0], other) for other in arrays[1:])


def test_non_utf8_path_errors_are_printable(tmp_path: Path) -> None:
    missing = tmp_path / os.fsdecode(b"gon\xe9.jpg")
    with pytest.raises(UnreadableFileError, match=r"gon\\xe9\.jpg: file not found") as caught:
        load_rgb(missing, max_pixels=LIMIT)
    assert caught.value.path == missing
    str(caught.value).encode("utf-8")  # no lone surrogates: safe to print or log


def test_pixel_limit_is_checked_before_any_pixel_is_decoded(shared_bad_folder) -> None:
    # The 100,000 × 100,000 header sits on 8 × 8 pixels of data: decoding first would fail otherwise.
    with pytest.raises(ImageTooLargeError, match=r"100000×100000"):
        probe_image(shared_bad_folder["bomb_header"].path, max_pixels=LIMIT)
    with pytest.raises(ImageTooLargeError, match=r"over the limit of 1,000 "):
        load_rgb(shared_bad_folder["png"].path, max_pixels=1000)


def test_raising_the_limit_lets_a_huge_image_through_without_pillow_warnings(shared_bad_folder) -> None:
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < 12000**2  # Pillow would warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        info = probe_image(shared_bad_folder["bomb"].path, max_pixels=200_000_000)
    assert info == ImageInfo("PNG", 12000, 12000, "1")


@pytest.mark.parametrize("name", ["png", "jpeg_orient6", "webp", "bmp", "gif_animated", "tiff_multipage", "heic"])
def test_pillow_bomb_limit_does_not_leak(shared_bad_folder, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    path = shared_bad_folder[name].path
    expected = decoded(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", expected.shape[0] * expected.shape[1] - 1)  # Pillow warns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(decoded(path), expected)


def test_gif_frame_outgrowing_its_screen_does_not_leak_pillow_warnings(shared_bad_folder, monkeypatch) -> None:
    data = bytearray(shared_bad_folder["gif_animated"].path.read_bytes())
    data[6:10] = (8).to_bytes(2, "little") * 2  # screen 8 × 8: Pillow grows it to the 40 × 24 frame, and checks
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 24 - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_rgb(bytes(data), max_pixels=LIMIT).size == (40, 24)


def test_pillow_hard_limit_becomes_image_too_large(shared_bad_folder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # TIFF pages are checked again by Pillow while decoding
    with pytest.raises(ImageTooLargeError, match="Pillow's TIFF decoder"):
        load_rgb(shared_bad_folder["tiff_multipage"].path, max_pixels=LIMIT)


def test_pillow_global_settings_are_left_alone(shared_bad_folder) -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    for path, _ in shared_bad_folder.values():
        with contextlib.suppress(*ERRORS.values()):
            load_rgb(path, max_pixels=LIMIT)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before == (Image.MAX_IMAGE_PIXELS, False)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"])
def test_sniff_format_agrees_with_pillow_writers(fmt: str) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 99, 199)).save(buffer, fmt)
    assert sniff_format(buffer.getvalue()[:32]) == fmt


@pytest.mark.parametrize(
    "head",
    [b"", b"BMW is a car, not a bitmap....", b"%PDF-1.7\n", b"PK\x03\x04zip", b"\x00\x00\x00\x18ftypisom", b"GIF90a"],
    ids=["empty", "bm-text", "pdf", "zip", "mp4", "bad-gif"],
)
def test_sniff_format_refuses_other_content(head: bytes) -> None:
    assert sniff_format(head) is None


@pytest.mark.parametrize(("mode", "values", "expected"), [
    ("I", [0, 1000, 65535], [0, 4, 255]),  # inside 16 bits: read as 16-bit data
    ("I", [-100, 0, 100], [0, 128, 255]),  # outside: stretched from min to max
    ("F", [0.0, 0.5, 1.0], [0, 128, 255]),  # inside [0, 1]
    ("F", [-2.0, 0.0, 2.0], [0, 128, 255]),
    ("F", [np.nan, 0.0, 1.0], [0, 0, 255]),  # not-a-number becomes black
], ids=["I-16bit", "I-signed", "F-unit", "F-range", "F-nan"])  # fmt: skip
def test_wide_modes_are_rescaled(tmp_path: Path, mode: str, values: list[float], expected: list[int]) -> None:
    dtype = np.int32 if mode == "I" else np.float32
    array = np.array([values], dtype=dtype).repeat(2, axis=0)
    path = tmp_path / "wide.tif"
    Image.frombytes(mode, (3, 2), array.tobytes()).save(path)
    got = decoded(path)
    assert got[..., 0].tolist() == [expected, expected] and np.array_equal(got[..., 0], got[..., 2])


@pytest.fixture(scope="module")
def chelsea_jpeg(tmp_path_factory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("photo") / "chelsea.jpg"
    Image.fromarray(data.chelsea()).save(path, quality=95)
    return path


def test_real_photo_matches_pillow_and_the_original(chelsea_jpeg: Path) -> None:
    from skimage import data

    got = decoded(chelsea_jpeg)
    with Image.open(chelsea_jpeg) as reference:
        assert np.array_equal(got, np.asarray(reference.convert("RGB")))
    assert np.abs(got.astype(int) - data.chelsea()).mean() < 2.0
    assert probe_image(chelsea_jpeg, max_pixels=LIMIT) == ImageInfo("JPEG", 451, 300, "RGB")


def test_draft_decodes_the_smallest_scale_still_big_enough(chelsea_jpeg: Path) -> None:
    for min_side in (40, 75, 100, 150, 299, 300, 1000):
        short = min(load_rgb(chelsea_jpeg, max_pixels=LIMIT, min_side=min_side).size)
        scale = 300 / short  # JPEG reduces by 1, 2, 4 or 8
        assert short >= min(min_side, 300) and (scale == 8 or short / 2 < min_side), min_side


def test_draft_and_full_decoding_give_nearly_the_same_model_input(chelsea_jpeg: Path) -> None:
    fast = load_model_input(chelsea_jpeg, size=64, crop_fraction=0.875, max_pixels=LIMIT)
    full = to_model_input(load_rgb(chelsea_jpeg, max_pixels=LIMIT), 64, 0.875)
    # the draft decode is already 4x smaller (DCT scaling), so the two filter differently
    assert fast.shape == full.shape == (64, 64, 3) and np.abs(fast.astype(int) - full).mean() < 5


def reference_model_input(image: Image.Image, size: int, crop_fraction: float, resize: str) -> np.ndarray:
    """torchvision's Resize(round(size / crop)) + CenterCrop(size), written plainly: the whole
    image resized (Pillow bilinear, or OpenCV area/bilinear), then the centre cut out."""
    import cv2

    width, height = image.size
    short = round(size / crop_fraction)
    new = (short, round(height * short / width)) if width <= height else (round(width * short / height), short)
    if resize == "pillow-bilinear":
        array = np.asarray(image.resize(new, Image.Resampling.BILINEAR))
    else:
        method = cv2.INTER_AREA if new[0] < width else cv2.INTER_LINEAR
        array = cv2.resize(np.asarray(image), new, interpolation=method)
    top, left = round((new[1] - size) / 2), round((new[0] - size) / 2)
    return array[top : top + size, left : left + size]


@pytest.mark.parametrize("resize", RESIZE_METHODS)
@pytest.mark.parametrize("scale", [1, 4], ids=["plain", "big-uses-reducing-gap"])
def test_model_input_matches_resize_then_center_crop(scale: int, resize: str) -> None:
    from skimage import data

    photo = Image.fromarray(data.chelsea())
    photo = photo.resize((photo.width * scale, photo.height * scale), Image.Resampling.BICUBIC)
    got = to_model_input(photo, 96, 0.875, resize=resize)
    expected = reference_model_input(photo, 96, 0.875, resize)
    assert got.shape == (96, 96, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected).mean() < 1.5


def test_shrinking_averages_pixels_instead_of_aliasing() -> None:
    stripes = np.zeros((256, 256, 3), dtype=np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: a decimating resize returns all black or all white
    got = to_model_input(Image.fromarray(stripes), 64, crop_fraction=1.0)
    assert np.abs(got.astype(int) - 127.5).max() <= 1


def test_unknown_resize_method_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="resize must be one of"):
        to_model_input(Image.new("RGB", (10, 10)), 8, resize="nearest")


@pytest.mark.parametrize("shape", [(80, 40), (30, 90)], ids=["tall", "wide"])
def test_crop_fraction_one_keeps_the_whole_shorter_side(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    side = min(shape)
    top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
    got = to_model_input(Image.fromarray(array), side, crop_fraction=1.0)
    assert np.array_equal(got, array[top : top + side, left : left + side])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"size": 0}, "size must be an integer >= 1, got 0"),
    ({"crop_fraction": 0.0}, r"crop_fraction must be in \(0, 1\], got 0.0"),
    ({"crop_fraction": 1.5}, r"crop_fraction must be in \(0, 1\], got 1.5"),
    ({"max_pixels": 0}, "max_pixels must be an integer >= 1, got 0"),
], ids=["size", "crop-zero", "crop-big", "max-pixels"])  # fmt: skip
def test_invalid_parameters_are_refused(shared_bad_folder, kwargs: dict, message: str) -> None:
    arguments = {"size": 32, "crop_fraction": 0.875, "max_pixels": LIMIT} | kwargs
    with pytest.raises(InvalidParameterError, match=message):
        load_model_input(shared_bad_folder["png"].path, **arguments)


@pytest.mark.parametrize("resize", RESIZE_METHODS)
def test_model_input_from_the_array_equals_from_the_image(resize: str) -> None:
    from skimage import data

    photo = Image.fromarray(data.chelsea())
    for crop in (0.875, 1.0):
        expected = to_model_input(photo, 96, crop, resize=resize)
        assert np.array_equal(to_model_input(np.asarray(photo), 96, crop, resize=resize), expected)


@pytest.mark.parametrize("array", [np.zeros((9, 9), np.uint8), np.zeros((9, 9, 4), np.uint8),
                                   np.zeros((9, 9, 3), np.float32)], ids=["grey", "rgba", "float"])
def test_model_input_refuses_arrays_that_are_not_rgb_uint8(array: np.ndarray) -> None:
    with pytest.raises(InvalidParameterError, match=r"expects an RGB image or a \(H, W, 3\) uint8 array"):
        to_model_input(array, 8)


def test_files_over_the_whole_read_limit_are_streamed_alike(shared_bad_folder, monkeypatch) -> None:
    import lookalike.io.decode as decode

    paths = [shared_bad_folder[name].path for name in GOOD]
    whole = [np.asarray(load_rgb(path, max_pixels=LIMIT)) for path in paths]
    monkeypatch.setattr(decode, "WHOLE_READ_LIMIT", 0)
    assert all(np.array_equal(np.asarray(load_rgb(path, max_pixels=LIMIT)), w) for path, w in zip(paths, whole))
    with pytest.raises(CorruptImageError):
        load_rgb(shared_bad_folder["truncated_jpeg"].path, max_pixels=LIMIT)


def test_model_input_needs_rgb() -> None:
    with pytest.raises(InvalidParameterError, match="expects an 'RGB' image, got mode 'L'"):
        to_model_input(Image.new("L", (10, 10)), 8)


def test_decoding_in_threads_matches_decoding_in_order(shared_bad_folder) -> None:
    paths = [shared_bad_folder[name].path for name in GOOD] * 3

    def run(path: Path) -> np.ndarray:
        return load_model_input(path, size=24, crop_fraction=0.875, max_pixels=LIMIT)

    in_order = [run(path) for path in paths]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(run, paths))
    assert all(np.array_equal(a, b) for a, b in zip(in_order, threaded, strict=True))


def test_importing_decode_pulls_in_no_heavy_package() -> None:
    heavy = ("torch", "faiss", "onnxruntime", "sklearn", "pillow_heif")
    code = f"import sys, lookalike.io.decode, lookalike.io.scan; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

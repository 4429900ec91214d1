"""Safe image decoding: format by content, pixel limit first, EXIF orientation, any mode to RGB.

Every failure raises a subclass of :class:`lookalike.errors.ImageError` whose ``reason`` is a
short sentence for a report. The pixel limit is checked from the header, before any pixel is
decoded. Files are opened with the plugin of the format sniffed from their first bytes (never
by extension) rather than ``Image.open``, so Pillow's own decompression-bomb check (a
process-wide limit) does not run at open; the few plugins that run it again while decoding
(GIF frames, TIFF tiles) do so with its warning silenced, and its hard error becomes an
ImageTooLargeError. ``max_pixels`` is the limit that counts. Pillow's global settings are
never changed, except that pillow-heif's opener is registered once, on first use.
Everything here is safe to call from several threads.
"""

from __future__ import annotations

import io
import operator
import os
import stat
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from lookalike.errors import (
    CorruptImageError,
    ImageTooLargeError,
    InvalidParameterError,
    LookalikeError,
    MissingDependencyError,
    NotAnImageError,
    UnreadableFileError,
)
from lookalike.io._failures import fail as _fail
from lookalike.io._failures import too_large_reason
from lookalike.io.custom import CUSTOM_FORMATS, custom_load, custom_probe
from lookalike.io.formats import (
    PILLOW_PLUGINS,
    looks_like_text,
    looks_like_tga,
    not_an_image_reason,
    pillow_opener,
    sniff_more,
    tiff_is_raw,
)
from lookalike.io.scan import WHOLE_READ_LIMIT, describe_os_error

ImageSource = Path | str | bytes | BinaryIO
"""A file path, the encoded content of an image file (bytes are never a path), or an open binary file."""

_Opener = Callable[[BinaryIO], Image.Image]

_OPENERS: dict[str, _Opener] = {
    "JPEG": JpegImagePlugin.jpeg_factory,  # a multi-picture JPEG opens as MPO (frame 0 is used)
    "PNG": PngImagePlugin.PngImageFile,
    "GIF": GifImagePlugin.GifImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
}
RESIZE_METHODS = ("opencv-area-linear", "pillow-bilinear")
"""Ways to resize to the model input: OpenCV pixel-area averaging when shrinking and bilinear
when enlarging (the default: ~8x faster), or Pillow's bilinear filter (libraries written before
the manifest recorded ``resize``). They agree to cosine 0.97-0.999 per embedding, so a library
keeps the one it was built with."""
DEFAULT_RESIZE = RESIZE_METHODS[0]
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1")
_BMP_HEADER_SIZES = (12, 40, 52, 56, 64, 108, 124)
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = ("LA", "PA", "RGBA", "RGBa")
_HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_PIL_CHECKS_LATE = ("TIFF",)  # plugins that run Pillow's own bomb check again while decoding

_heif_lock = threading.Lock()
_warnings_lock = threading.Lock()


@dataclass(frozen=True)
class ImageInfo:
    """What an image header says, with width and height as displayed (after EXIF orientation)."""

    format: str
    width: int
    height: int
    mode: str


def sniff_format(head: bytes) -> str | None:
    """The supported format whose signature starts ``head`` (the first 32 bytes), else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "BMP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return sniff_more(head)  # the formats of lookalike.io.formats


def probe_image(source: ImageSource, *, max_pixels: int) -> ImageInfo:
    """Format, displayed size and mode from the header alone (no pixel is decoded).

    Raises
    ------
    ImageError : not an image, corrupt header, over ``max_pixels``, or unreadable file.
    """
    _check_positive("max_pixels", max_pixels)
    with _opened(source) as (stream, where):
        fmt = _sniffed(stream, where)
        if fmt in CUSTOM_FORMATS:
            with _decoding(fmt, where):
                return ImageInfo(fmt, *custom_probe(fmt, stream, where, max_pixels))
        image, fmt = _open_checked(stream, where, max_pixels, fmt)
        # Image.getexif of the base class: PNG's override decodes all pixels to look for an
        # eXIf chunk after them; a probe accepts missing that rare case.
        turns = _orientation(lambda: Image.Image.getexif(image)) in (5, 6, 7, 8)
        width, height = image.size
        return ImageInfo(fmt, height if turns else width, width if turns else height, image.mode)


def load_rgb(source: ImageSource, *, max_pixels: int, min_side: int | None = None) -> Image.Image:
    """Decode to an 8-bit RGB image, EXIF-transposed; transparency is composited on white.

    With ``min_side``, JPEG (and HEIF with thumbnails) are decoded at the smallest reduced
    scale whose shorter side is still >= ``min_side``; other formats at full size.

    Raises
    ------
    ImageError : not an image, corrupt or truncated, over ``max_pixels``, or unreadable file.
    """
    _check_positive("max_pixels", max_pixels)
    if min_side is not None:
        _check_positive("min_side", min_side)
    with _opened(source) as (stream, where):
        fmt = _sniffed(stream, where)
        if fmt in CUSTOM_FORMATS:
            with _decoding(fmt, where):
                return _to_rgb(custom_load(fmt, stream, where, max_pixels, min_side, load_rgb), where)
        image, fmt = _open_checked(stream, where, max_pixels, fmt)
        with _decoding(fmt, where, quiet=_pil_would_complain(fmt, image.size)):
            if min_side is not None:
                image.draft(None, (min_side, min_side))  # shorter side stays >= min_side
            image.load()
            orientation = _orientation(image.getexif)
            rgb = _to_rgb(image, where)
    if orientation in _TRANSPOSE:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
    return rgb


def to_model_input(
    image: Image.Image | np.ndarray, size: int, crop_fraction: float = 0.875, *, resize: str = DEFAULT_RESIZE
) -> np.ndarray:
    """Resize the shorter side to ``round(size / crop_fraction)`` and cut the centre square.

    Parameters
    ----------
    image : an RGB image, e.g. from :func:`load_rgb`, or its (H, W, 3) uint8 array (cheaper when
        the caller needs the array anyway).
    size : side of the square output, in pixels.
    crop_fraction : share of the resized shorter side kept; 1.0 keeps all of it.
    resize : one of ``RESIZE_METHODS`` (a library records its own in the manifest).

    Returns
    -------
    np.ndarray of uint8, shape (size, size, 3).
    """
    _check_model_input(size, crop_fraction)
    if resize not in RESIZE_METHODS:
        raise InvalidParameterError(f"resize must be one of {RESIZE_METHODS}, got {resize!r}")
    pixels = _rgb_array(image)
    height, width = pixels.shape[:2]
    short = round(size / crop_fraction)
    scale = short / min(width, height)
    new_w = short if width <= height else max(short, round(width * scale))
    new_h = short if height < width else max(short, round(height * scale))
    left, top = round((new_w - size) / 2), round((new_h - size) / 2)
    # Resizing only the source region the crop keeps is the same as resize-then-crop, cheaper.
    sx, sy = width / new_w, height / new_h
    if resize == "pillow-bilinear":
        box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
        source = image if isinstance(image, Image.Image) else Image.fromarray(pixels)
        return np.array(source.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0))
    x0, y0 = round(left * sx), round(top * sy)  # OpenCV takes whole pixels: the box is rounded
    x1, y1 = max(x0 + 1, round((left + size) * sx)), max(y0 + 1, round((top + size) * sy))
    return resize_rgb(pixels[y0:y1, x0:x1], size)


def _rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """An 'RGB' image or a (H, W, 3) uint8 array as an array; anything else is refused."""
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            raise InvalidParameterError(f"to_model_input expects an 'RGB' image, got mode '{image.mode}'")
        return np.asarray(image)
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        what = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InvalidParameterError(f"to_model_input expects an RGB image or a (H, W, 3) uint8 array, got {what}")
    return image


def resize_rgb(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize an (H, W, 3) uint8 array to (size, size, 3) with OpenCV: pixel-area averaging
    when shrinking (anti-aliased), bilinear when enlarging. About 8x faster than Pillow's
    resize here, which matters because decoding shares the cores with the model."""
    cv2 = _opencv()
    shrinking = pixels.shape[0] * pixels.shape[1] > size * size
    method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(pixels, (size, size), interpolation=method), dtype=np.uint8)


def _opencv() -> Any:
    """cv2, single-threaded: decoding already runs one image per worker thread."""
    import cv2

    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)
    return cv2


def load_model_input(
    source: ImageSource, *, size: int, crop_fraction: float, max_pixels: int, resize: str = DEFAULT_RESIZE
) -> np.ndarray:
    """:func:`load_rgb` at the smallest useful scale, then :func:`to_model_input`.

    Returns
    -------
    np.ndarray of uint8, shape (size, size, 3).
    """
    _check_model_input(size, crop_fraction)
    image = load_rgb(source, max_pixels=max_pixels, min_side=round(size / crop_fraction))
    return to_model_input(image, size, crop_fraction, resize=resize)


def _check_positive(name: str, value: int) -> None:
    try:
        number = operator.index(value)
    except TypeError:
        number = 0
    if isinstance(value, bool) or number < 1:
        raise InvalidParameterError(f"{name} must be an integer >= 1, got {value!r}")


def _check_model_input(size: int, crop_fraction: float) -> None:
    _check_positive("size", size)
    if not 0.0 < crop_fraction <= 1.0:
        raise InvalidParameterError(f"crop_fraction must be in (0, 1], got {crop_fraction!r}")


@contextmanager
def _opened(source: ImageSource) -> Iterator[tuple[BinaryIO, Path | str | None]]:
    """A seekable binary stream for ``source`` and the path to name in errors."""
    if isinstance(source, bytes | bytearray | memoryview):
        yield io.BytesIO(source), None
        return
    if isinstance(source, str | os.PathLike):
        where: Path | str | None = Path(source)
        stream: BinaryIO = _open_file(Path(source))
    else:
        name = getattr(source, "name", None)
        where = name if isinstance(name, str) else None
        stream = source if _seekable(source) else io.BytesIO(_read_all(source, where))
    try:
        yield stream, where
    finally:
        if stream is not source:
            stream.close()


def _open_file(path: Path) -> BinaryIO:
    """Open a regular file for reading; never blocks on a named pipe."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise _fail(UnreadableFileError, path, describe_os_error(error, path)) from error
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        reason = "is a folder, not a file" if stat.S_ISDIR(info.st_mode) else "not a regular file (pipe, socket or device)"
        raise _fail(UnreadableFileError, path, reason)
    if info.st_size > WHOLE_READ_LIMIT:
        return os.fdopen(fd, "rb")
    with os.fdopen(fd, "rb", buffering=0) as raw:  # one read; the decoder then parses memory
        try:
            return io.BytesIO(raw.readall())
        except OSError as error:
            raise _fail(UnreadableFileError, path, describe_os_error(error, opened=True)) from error


def _seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def _read_all(stream: BinaryIO, where: str | None) -> bytes:
    try:
        return stream.read()
    except OSError as error:
        raise _fail(UnreadableFileError, where, describe_os_error(error, opened=True)) from error


def _sniffed(stream: BinaryIO, where: Path | str | None) -> str:
    """The format of the stream's content (position kept); NotAnImageError when none fits."""
    try:
        start = stream.tell()
        head = stream.read(32)
        text_head = head + stream.read(4064) if looks_like_text(head) else b""
        stream.seek(start)
        fmt = sniff_format(head)
        if fmt == "TIFF" and tiff_is_raw(stream):
            return "RAW"
        if fmt is None and text_head:
            from lookalike.io.svg import looks_like_svg

            fmt = "SVG" if looks_like_svg(text_head) else None
        if fmt is None and not text_head and looks_like_tga(head, stream):
            fmt = "TGA"
    except OSError as error:
        raise _fail(UnreadableFileError, where, describe_os_error(error, opened=True)) from error
    if fmt is None:
        raise _fail(NotAnImageError, where, not_an_image_reason(head))
    return fmt


def _open_checked(stream: BinaryIO, where: Path | str | None, max_pixels: int, fmt: str) -> tuple[Image.Image, str]:
    """Open with the plugin of the sniffed format and enforce ``max_pixels`` (header only)."""
    if fmt == "HEIF":
        opener = _heif_opener()
    else:
        opener = pillow_opener(fmt) if fmt in PILLOW_PLUGINS else _OPENERS[fmt]
    with _decoding(fmt, where, quiet=fmt == "GIF"):  # GIF: Pillow checks frames outgrowing the screen
        image = opener(stream)
    fmt = image.format or fmt  # a JPEG with a multi-picture index is an MPO
    width, height = image.size
    if width < 1 or height < 1:
        raise _fail(CorruptImageError, where, f"truncated or corrupt {fmt}: size {width}×{height} in header")
    if width * height > max_pixels:
        raise _fail(ImageTooLargeError, where, too_large_reason(width, height, max_pixels))
    return image, fmt


def _heif_opener() -> _Opener:
    """Register pillow-heif's opener once (thread-safe) and return it."""
    with _heif_lock:
        if "HEIF" not in Image.OPEN:
            try:
                import pillow_heif
            except ImportError as error:
                raise MissingDependencyError("pillow-heif", "Decoding HEIC/HEIF images") from error
            pillow_heif.register_heif_opener()
        return Image.OPEN["HEIF"][0]  # type: ignore[return-value]


def _pil_would_complain(fmt: str, size: tuple[int, int]) -> bool:
    """Whether Pillow's own bomb check (process-wide limit) fires while decoding this image."""
    limit = Image.MAX_IMAGE_PIXELS
    return fmt in _PIL_CHECKS_LATE and limit is not None and size[0] * size[1] > limit


@contextmanager
def _decoding(fmt: str, where: Path | str | None, *, quiet: bool = False) -> Iterator[None]:
    """Turn whatever a decoder raises on bad data into an ImageError with a reason.

    ``quiet`` silences Pillow's own DecompressionBombWarning (see :func:`_pil_would_complain`).
    """
    try:
        with _bomb_warnings_ignored() if quiet else nullcontext():
            yield
    except LookalikeError:
        raise
    except Image.DecompressionBombError as error:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        reason = f"image too large for Pillow's {fmt} decoder (its own limit is {limit:,} pixels)"
        raise _fail(ImageTooLargeError, where, reason) from error
    except MemoryError as error:
        raise _fail(ImageTooLargeError, where, "not enough memory to decode this image") from error
    except OSError as error:
        if error.errno is not None:  # the file system failed, not the data
            raise _fail(UnreadableFileError, where, describe_os_error(error, opened=True)) from error
        raise _fail(CorruptImageError, where, f"truncated or corrupt {fmt}: {_message(error)}") from error
    except Exception as error:  # untrusted data can make a decoder raise anything
        raise _fail(CorruptImageError, where, f"truncated or corrupt {fmt}: {_message(error)}") from error


@contextmanager
def _bomb_warnings_ignored() -> Iterator[None]:
    """Ignore DecompressionBombWarning; serialised, as ``warnings.catch_warnings`` is not thread-safe."""
    with _warnings_lock, warnings.catch_warnings(action="ignore", category=Image.DecompressionBombWarning):
        yield


def _message(error: BaseException) -> str:
    """The decoder's own words; the exception type too when it is not a plain decoding error."""
    text = str(error).strip()
    if isinstance(error, OSError | SyntaxError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _orientation(read_exif: Callable[[], Image.Exif]) -> int:
    """EXIF orientation 1..8 (1 when absent or unreadable: a bad EXIF block does not spoil pixels)."""
    try:
        value = read_exif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # malformed EXIF from untrusted files
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb(image: Image.Image, where: Path | str | None) -> Image.Image:
    """8-bit RGB from any mode: alpha and transparency over white, high depths rescaled."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in _HIGH_DEPTH_MODES:
        return Image.fromarray(_scale_to_uint8(np.asarray(image), mode)).convert("RGB")
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGB", image.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    try:
        return image.convert("RGB")
    except ValueError as error:
        raise _fail(CorruptImageError, where, f"unsupported colour mode '{mode}'") from error


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Rescale one channel of 16-bit, 32-bit integer or float values to uint8, shape kept.

    I;16 uses the full 16-bit range. I is read as 16-bit data when inside [0, 65535], F as
    [0, 1] data when inside it; anything else is stretched from its minimum to its maximum.
    """
    if mode.startswith("I;16"):
        return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    data = values.astype(np.float32)
    finite = np.isfinite(data)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    low, high = float(data[finite].min()), float(data[finite].max())
    if mode == "I" and low >= 0 and high <= 65535:
        low, high = 0.0, 65535.0
    elif mode == "F" and low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    span = high - low or 1.0
    scaled = np.where(finite, (data - low) * (255.0 / span), 0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)

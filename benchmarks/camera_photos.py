"""Camera-size test photos made from real photos: 4032×3024 JPEGs with sensor-like noise.

Sources: scikit-image's colour sample photos and Tux Paint stamps (composited on a photo
background). Each photo is a seeded random crop of a source, mirrored or not, with a mild
exposure shift, upscaled to 12.2 MP, given sensor-like noise (shot noise growing with
brightness) and saved as quality-90 JPEG (~1.5-2 MB). Each render is written as four files
whose EXIF orientation differs (1, 6, 3, 8: upright, on either side, upside down), so decoders
must turn three in four of them. Files are written once into a cache folder and reused.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 4032, 3024
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "motorcycle_left",
          "retina", "hubble_deep_field", "camera", "coins", "moon", "brick", "gravel", "colorwheel")  # fmt: skip
"""scikit-image samples shipped inside the package (no download)."""
_ORIENTATION = 0x0112


def _source(index: int) -> np.ndarray:
    """Source picture ``index``: a scikit-image photo, or a Tux Paint stamp over one."""
    from PIL import Image
    from skimage import data

    def photo(name: str) -> np.ndarray:
        if name == "motorcycle_left":
            return data.stereo_motorcycle()[0]
        pixels = getattr(data, name)()
        return np.asarray(Image.fromarray(pixels).convert("RGB"))

    base = photo(PHOTOS[index % len(PHOTOS)])
    if index % 3 == 2:  # a Tux Paint stamp composited on the photo
        from lookalike.io.datasets import load_files

        stamps = load_files("tuxpaint")
        stamp = Image.open(stamps[(index * 7919) % len(stamps)][0]).convert("RGBA")
        canvas = Image.fromarray(base).convert("RGBA")
        side = min(canvas.size) * 3 // 4
        stamp.thumbnail((side, side))
        canvas.alpha_composite(stamp, ((canvas.width - stamp.width) // 2, (canvas.height - stamp.height) // 2))
        base = np.asarray(canvas.convert("RGB"))
    return base


def make_photo(index: int) -> bytes:
    """The JPEG bytes (no EXIF) of camera photo ``index`` (deterministic)."""
    import io

    import cv2
    from PIL import Image

    rng = np.random.default_rng(index)
    source = _source(index)
    h, w = source.shape[:2]
    crop_h = int(h * rng.uniform(0.7, 1.0))
    crop_w = min(w, int(crop_h * WIDTH / HEIGHT))
    top, left = rng.integers(0, h - crop_h + 1), rng.integers(0, w - crop_w + 1)
    picture = source[top : top + crop_h, left : left + crop_w]
    if rng.random() < 0.5:
        picture = picture[:, ::-1]
    big = cv2.resize(np.ascontiguousarray(picture), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    exposure = float(rng.uniform(0.85, 1.15))
    big = cv2.multiply(big, np.full_like(big, 128), scale=exposure / 128)
    out = io.BytesIO()
    Image.fromarray(_add_sensor_noise(big, rng)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def with_exif(jpeg: bytes, orientation: int, note: str) -> bytes:
    """``jpeg`` with an EXIF block (orientation, camera make/model, a note) after its SOI marker;
    the compressed pixels are untouched."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x010E] = "lookalike-bench", "synthetic 12MP", note
    exif[_ORIENTATION] = orientation
    payload = exif.tobytes()
    if not payload.startswith(b"Exif\x00\x00"):
        payload = b"Exif\x00\x00" + payload
    return jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def make_group(index: int, paths: list[Path]) -> None:
    """Render photo ``index`` once and write it to ``paths`` under different EXIF orientations
    (1, 6, 3, 8 in turn): distinct files and distinct pictures as displayed, one render."""
    jpeg = make_photo(index)
    for turn, path in enumerate(paths):
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(with_exif(jpeg, (1, 6, 3, 8)[turn % 4], f"{path.name}"))
        tmp.replace(path)


_NOISE: dict[str, np.ndarray] = {}
_MARGIN = 256


def _add_sensor_noise(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shot noise (its spread grows with the square root of brightness) and read noise, from
    one seeded noise field per process seen through a random offset per photo (saturating
    uint8 arithmetic in OpenCV: cheap enough to make hundreds of 12 MP photos)."""
    import cv2

    if "plus" not in _NOISE:
        field = np.random.default_rng(12345).standard_normal((HEIGHT + _MARGIN, WIDTH + _MARGIN, 3), dtype=np.float32)
        field *= 5.0  # sigma at full brightness
        _NOISE["plus"] = np.clip(field, 0, 255).astype(np.uint8)
        _NOISE["minus"] = np.clip(-field, 0, 255).astype(np.uint8)
        _NOISE["gain"] = (np.sqrt(np.arange(256) / 255) * 200 + 55).astype(np.uint8).reshape(256, 1)
    dy, dx = (int(v) for v in rng.integers(0, _MARGIN, 2))
    window = (slice(dy, dy + HEIGHT), slice(dx, dx + WIDTH))
    gain = cv2.LUT(pixels, _NOISE["gain"])  # ~ sqrt(brightness), 55..255
    plus = cv2.multiply(np.ascontiguousarray(_NOISE["plus"][window]), gain, scale=1 / 255)
    minus = cv2.multiply(np.ascontiguousarray(_NOISE["minus"][window]), gain, scale=1 / 255)
    return cv2.subtract(cv2.add(pixels, plus), minus)


def camera_set(folder: Path, count: int, workers: int = 2, per_render: int = 4) -> list[Path]:
    """``count`` camera photos in ``folder`` (made once, reused); returns their paths.

    Each render is written ``per_render`` times with different EXIF orientations (1, 6, 3, 8):
    the files differ and decode the same way a distinct photo does, for a quarter of the work.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"camera-{i:04d}.jpg" for i in range(count)]
    groups = [paths[i : i + per_render] for i in range(0, count, per_render)]
    missing = [(i, g) for i, g in enumerate(groups) if not all(p.exists() for p in g)]
    if missing:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(make_group, [i for i, _ in missing], [g for _, g in missing]))
    return paths

"""Camera-size test photos made from real photos: 4032×3024 JPEGs with sensor-like noise.

Sources: scikit-image's colour sample photos and Tux Paint stamps (composited on a photo
background). Each photo is a seeded random crop of a source, mirrored or not, with a mild
exposure and white-balance shift, upscaled to 12.2 MP, given sensor-like noise (shot noise
growing with brightness, read noise, a little per-row banding) and saved as quality-90 JPEG.
Every fourth photo is stored on its side with the EXIF orientation a camera writes (6 or 8),
so decoders must turn it upright. Files are written once into a cache folder and reused.
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


def make_photo(index: int, path: Path) -> None:
    """Write camera photo ``index`` to ``path`` (deterministic)."""
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
    gain = rng.uniform(0.85, 1.15) * rng.uniform(0.93, 1.07, size=3)  # exposure, white balance
    big = cv2.convertScaleAbs(big * gain.astype(np.float32)[None, None, :]) if index % 2 else big
    pixels = _add_sensor_noise(big, rng)
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "lookalike-bench", "synthetic 12MP"  # make, model
    if index % 4 == 3:  # stored on its side with the tag that turns it back (6: 90° clockwise)
        orientation = 6 if index % 8 == 3 else 8
        image = image.transpose(Image.Transpose.ROTATE_90 if orientation == 6 else Image.Transpose.ROTATE_270)
        exif[_ORIENTATION] = orientation
    tmp = path.with_suffix(".tmp")
    image.save(tmp, format="JPEG", quality=90, exif=exif.tobytes())
    tmp.replace(path)


_NOISE: dict[str, np.ndarray] = {}


def _add_sensor_noise(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shot noise (its spread grows with the square root of brightness), read noise and row
    banding, from one seeded noise field per process shifted by a random offset per photo."""
    import cv2

    if "field" not in _NOISE:
        field = np.random.default_rng(12345).standard_normal((HEIGHT, WIDTH, 3), dtype=np.float32)
        _NOISE["field"] = np.clip(field * 16, -127, 127).astype(np.int16)
        _NOISE["sqrt"] = np.sqrt(np.arange(256, dtype=np.float32).clip(1)).astype(np.float32)
    dy, dx = rng.integers(0, HEIGHT), rng.integers(0, WIDTH)
    field = np.roll(_NOISE["field"], (dy, dx), axis=(0, 1))
    spread = cv2.LUT(pixels, _NOISE["sqrt"].reshape(256, 1)) * np.float32(rng.uniform(0.015, 0.025)) + 0.1
    noisy = pixels.astype(np.float32) + field * spread  # field is N(0, 16^2): sigma ~ 0.25-0.4 x sqrt(I)
    noisy += rng.standard_normal((HEIGHT, 1, 1), dtype=np.float32) * 0.8  # row banding
    return cv2.convertScaleAbs(noisy)


def camera_set(folder: Path, count: int, workers: int = 2) -> list[Path]:
    """``count`` camera photos in ``folder`` (made once, reused); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"camera-{i:04d}.jpg" for i in range(count)]
    missing = [(i, p) for i, p in enumerate(paths) if not p.exists()]
    if missing:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(make_photo, [i for i, _ in missing], [p for _, p in missing]))
    return paths

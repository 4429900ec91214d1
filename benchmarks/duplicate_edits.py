"""Edited copies of real photos for bench_duplicates.py: the edits people ask duplicate finders to
catch, each at two strengths, and the photo pools they are made from (Tux Paint stamps, the
scikit-image sample photos, dogs-vs-cats upscaled)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

LONG_SIDE = 320
"""Every original is scaled so that its longer side has this many pixels."""
SKIMAGE_PHOTOS = (  # not data.cat(): the same photo as chelsea
    "astronaut", "camera", "chelsea", "coffee", "coins", "hubble_deep_field", "immunohistochemistry",
    "moon", "rocket", "motorcycle_left", "retina", "brick", "grass", "gravel", "page", "text", "clock",
)


def _flip(image: Image.Image, strength: int) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT if strength == 1 else Image.Transpose.FLIP_TOP_BOTTOM)


def _rotate(image: Image.Image, strength: int) -> Image.Image:
    return image.transpose(Image.Transpose.ROTATE_90 if strength == 1 else Image.Transpose.ROTATE_180)


def _crop(image: Image.Image, strength: int) -> Image.Image:
    keep = 0.85 if strength == 1 else 0.65  # of each side, off centre
    w, h = image.size
    cw, ch = round(w * keep), round(h * keep)
    left, top = round((w - cw) * 0.3), round((h - ch) * 0.6)
    return image.crop((left, top, left + cw, top + ch))


def _reencode(image: Image.Image, strength: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=50 if strength == 1 else 12)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _resize(image: Image.Image, strength: int) -> Image.Image:
    scale = 0.5 if strength == 1 else 0.25
    w, h = image.size
    return image.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BILINEAR)


def _colour(image: Image.Image, strength: int) -> Image.Image:
    brightness, contrast, saturation = (1.12, 1.1, 1.25) if strength == 1 else (1.3, 0.7, 1.7)
    out = ImageEnhance.Brightness(image).enhance(brightness)
    out = ImageEnhance.Contrast(out).enhance(contrast)
    out = ImageEnhance.Color(out).enhance(saturation)
    if strength == 2:  # and a warm cast
        r, g, b = out.split()
        out = Image.merge("RGB", (r.point(lambda v: min(255, v + 25)), g, b.point(lambda v: max(0, v - 25))))
    return out


def _text(image: Image.Image, strength: int) -> Image.Image:
    out = image.copy()
    w, h = out.size
    draw = ImageDraw.Draw(out, "RGBA")
    if strength == 1:  # a caption in a corner
        font = ImageFont.load_default(size=max(8, h // 14))
        draw.text((w * 0.05, h * 0.85), "© holiday 2024", fill=(255, 255, 255, 230), font=font,
                  stroke_width=1, stroke_fill=(0, 0, 0, 230))
    else:  # a big watermark across the middle
        font = ImageFont.load_default(size=max(10, h // 6))
        draw.text((w * 0.05, h * 0.4), "SAMPLE", fill=(255, 255, 255, 170), font=font,
                  stroke_width=2, stroke_fill=(0, 0, 0, 170))
    return out


EDITS: dict[str, Callable[[Image.Image, int], Image.Image]] = {
    "flip": _flip,  # 1: left-right, 2: top-bottom
    "rotation": _rotate,  # 1: 90°, 2: 180°
    "crop": _crop,  # 1: 85 % of each side, 2: 65 %
    "re-encode": _reencode,  # JPEG quality 1: 50, 2: 12
    "resize": _resize,  # 1: 50 %, 2: 25 %
    "colour": _colour,  # 1: mild, 2: strong with a cast
    "text": _text,  # 1: corner caption, 2: centre watermark
}


def normalised(image: Image.Image) -> Image.Image:
    """RGB (transparency on white), longer side LONG_SIDE (bicubic when enlarging)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        image = white
    image = image.convert("RGB")
    w, h = image.size
    scale = LONG_SIDE / max(w, h)
    return image.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BICUBIC)


def export(dataset: str, folder: Path, limit: int | None = None) -> list[Path]:
    """Files of a cached dataset, written by `lookalike dataset export` (sorted)."""
    if not folder.exists():
        command = [sys.executable, "-m", "lookalike.cli.main", "dataset", "export", dataset, str(folder)]
        subprocess.run(command + (["--limit", str(limit)] if limit else []), check=True, capture_output=True)
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))  # not the export's record


def tux_pool(files: list[Path]) -> list[Path]:
    """One stamp per name (Tux Paint ships variants such as frog.png and frog-1.png)."""
    seen: dict[str, Path] = {}
    for path in files:
        seen.setdefault(re.sub(r"-\d+$", "", path.stem), path)
    return list(seen.values())


def skimage_photos() -> list[Image.Image]:
    """The scikit-image sample photos shipped with the package (those that need a download are skipped)."""
    from skimage import data

    photos = []
    for name in SKIMAGE_PHOTOS:
        try:
            array = getattr(data, name)()
        except Exception:  # a sample that is fetched from the network: not available here
            continue
        photos.append(Image.fromarray(np.asarray(array)))
    return photos

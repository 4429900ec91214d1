"""``crop_fraction="auto"``: choose a library's centre crop from its images' sizes.

Backbones are trained with a centre crop (e.g. 0.875 of the shorter side for 224 px inputs) that
drops a margin around a photo's subject. Tiny images (Fashion-MNIST 28 px, CIFAR 32 px) are
cut tight around their object: the crop removes part of the object itself. The rule, applied once
when the library is first filled (the sizes come from the scan, so no extra pass): if the median
shorter side of the scanned images is below the model input side ``S``, the images are upscaled
anyway and the object fills the frame: keep the whole image (1.0); otherwise keep the backbone's
crop. The choice and the median are recorded in the manifest's ``[crop]`` section.
"""

from __future__ import annotations

import numpy as np

from lookalike.errors import InvalidParameterError

AUTO = "auto"
DEFAULT_CROP = AUTO
"""The crop of a new library when none is given: never worse than the backbone's own crop on
Fashion-MNIST, dogs vs cats and Tux Paint (P@10 0.781 / 0.824 / 0.693 vs 0.781 / 0.824 / 0.682)."""


def check_crop_fraction(value: float | str | None) -> None:
    """Accept None, ``"auto"`` or a number in (0, 1]; anything else is an error naming the value."""
    if value is None or value == AUTO:
        return
    if isinstance(value, str) or isinstance(value, bool) or not 0.0 < float(value) <= 1.0:
        raise InvalidParameterError(f"crop_fraction must be in (0, 1] or 'auto', got {value!r}")


def parse_crop_fraction(text: str | None) -> float | str | None:
    """A command-line value: None, ``auto`` or a float (refused when it is neither)."""
    if text is None or text == AUTO:
        return text
    try:
        value = float(text)
    except ValueError:
        raise InvalidParameterError(f"--crop-fraction must be a number in (0, 1] or 'auto', got {text!r}") from None
    check_crop_fraction(value)
    return value


def auto_crop(short_sides: np.ndarray, image_size: int, backbone_crop: float) -> tuple[float, dict[str, float]]:
    """The crop for images whose shorter sides are ``short_sides`` (n,), and why (JSON-ready).

    1.0 when the median shorter side is below ``image_size``, else ``backbone_crop``; with no
    size known (n = 0) the backbone's crop.
    """
    sides = np.asarray(short_sides, dtype=np.float64)
    sides = sides[np.isfinite(sides) & (sides > 0)]
    if sides.size == 0:
        return backbone_crop, {"images": 0}
    median = float(np.median(sides))
    chosen = 1.0 if median < image_size else backbone_crop
    return chosen, {"images": int(sides.size), "median_short_side": median, "model_input": image_size}

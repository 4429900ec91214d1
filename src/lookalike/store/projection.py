"""``models/projection.npz``: the learned label projection and the reducer it was fitted on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lookalike.store.arrays import load_npz, save_npz

PROJECTION_FILE = Path("models") / "projection.npz"


def save_projection(folder: Path, arrays: dict[str, np.ndarray], reducer_fingerprint: str, n_images: int) -> None:
    """Store the projection's arrays with the reducer fingerprint and image count (atomically)."""
    save_npz(folder / PROJECTION_FILE, {**arrays, "reducer": np.array(reducer_fingerprint),
                                        "n_images": np.array(n_images)})  # fmt: skip


def load_projection(folder: Path) -> dict[str, Any] | None:
    """The stored arrays (``reducer`` and ``n_images`` included), or None when there is none."""
    path = folder / PROJECTION_FILE
    return dict(load_npz(path)) if path.exists() else None

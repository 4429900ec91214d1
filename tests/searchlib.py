"""Small labelled libraries for search tests: seeded images whose classes differ in colour layout.

Built with the deterministic ``pixels`` backbone, so a library of a few dozen images takes well
under a second and brute-force numpy over ``lib.reduced()`` is the trusted reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lookalike import Library
from lookalike.config import ReduceConfig
from lookalike.store.arrays import save_npz
from lookalike.store.runs import ClusterRow, Members, insert_run, run_file

CLASSES = ("red", "green", "blue")


def class_image(label: int, seed: int, size: tuple[int, int] = (48, 40), noise: float = 40.0) -> Image.Image:
    """A smooth image: the class's 4 x 4 colour layout plus per-image noise."""
    base = np.random.default_rng(1000 + label).integers(0, 256, size=(4, 4, 3)).astype(np.float64)
    jitter = np.random.default_rng(seed).normal(0.0, noise, size=(4, 4, 3))
    small = np.clip(base + jitter, 0, 255).astype(np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BILINEAR)


def write_labelled(root: Path, per_class: int = 12, *, start: int = 0) -> list[Path]:
    """``root/<class>/img-<seed>.png`` for every class; returns the paths written."""
    paths = []
    for label, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for seed in range(start, start + per_class):
            path = folder / f"img-{seed:04d}.png"
            class_image(label, 100 * label + seed).save(path)
            paths.append(path)
    return paths


def build(tmp: Path, per_class: int = 12, *, labels: str = "folder", dims: int = 16) -> Library:
    """A writable library over ``tmp/photos`` (labelled by folder), PCA fitted to ``dims``."""
    write_labelled(tmp / "photos", per_class)
    lib = Library.create(tmp / "lib.lookalike", backbone="pixels")
    lib.add([tmp / "photos"], labels=labels)
    lib.reduce(ReduceConfig(n_components=dims))
    return lib


def brute_force(lib: Library, query: np.ndarray, k: int, exclude: tuple[int, ...] = ()) -> tuple[list[int], np.ndarray]:
    """Reference: ids and cosine similarities of the k nearest reduced vectors to ``query`` (d,)."""
    reduced = lib.reduced()
    q = query / np.linalg.norm(query)
    sims = np.asarray(reduced.vectors, dtype=np.float64) @ q
    keep = ~np.isin(reduced.ids, exclude)
    ids, sims = np.asarray(reduced.ids)[keep], sims[keep]
    order = np.argsort(-sims, kind="stable")[:k]
    return ids[order].tolist(), sims[order]


def vector_of(lib: Library, image_id: int) -> np.ndarray:
    reduced = lib.reduced()
    return np.asarray(reduced.vectors)[list(reduced.ids).index(image_id)]


def image_id_of(lib: Library, path: Path) -> int:
    rows = lib.catalog.file_rows([path.resolve()])
    assert rows and rows[0].image_id is not None
    return int(rows[0].image_id)


def add_cluster_run(lib: Library, clusters: dict[int, int], names: dict[int, str], fingerprint: str) -> int:
    """Store a cluster run (image id -> cluster) through the store, as a method without centroids
    (images it does not list stay unassigned); returns its id."""
    ids = np.array(sorted(clusters), dtype=np.int64)
    members = Members(ids, np.array([clusters[i] for i in ids], dtype=np.int64), np.full(ids.size, np.nan))
    rows = [ClusterRow(c, sum(1 for v in clusters.values() if v == c), n, None, None, ()) for c, n in names.items()]
    info = {"method": "agglomerative", "params": {}, "reducer_fingerprint": fingerprint, "metrics": {},
            "evidence": {}, "seconds": 0.0}

    def write_arrays(run_id: int) -> Path:
        path = run_file(lib.folder, run_id)
        save_npz(path, {"centers": np.zeros((len(names), 1), dtype=np.float32)})
        return path

    return insert_run(lib.catalog, info, members, rows, write_arrays)

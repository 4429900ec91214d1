"""What a report reads from a library: reduced vectors, labels, file paths, sizes, versions.

The only module of :mod:`lookalike.report` that talks to the library (the others take arrays).
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.errors import InvalidParameterError, LibraryError
from lookalike.reduce.stored import reduced_vectors, refresh_reduced, stored_reducer
from lookalike.store.images import embedded_count, first_files
from lookalike.store.labels import image_labels

if TYPE_CHECKING:
    from lookalike.store.library_store import LibraryStore

PACKAGES = ("numpy", "scikit-learn", "scipy", "faiss-cpu", "onnxruntime", "torch", "matplotlib", "plotly", "lookalike")
SKIPPED_FOLDERS = ("reports",)
"""Top-level library folders left out of the size count (the report itself may be written there)."""


@dataclass(frozen=True)
class LibraryData:
    """Every embedded image: ``ids`` (n,) int64, ``vectors`` (n, d) float32 reduced,
    ``labels`` (n,) object (a label, or None when unlabelled or conflicting), ``paths`` (n,)."""

    ids: np.ndarray
    vectors: np.ndarray
    labels: np.ndarray
    paths: list[str]
    reducer_fingerprint: str

    @property
    def labelled(self) -> np.ndarray:
        """(n,) bool: which images have a label."""
        return np.array([label is not None for label in self.labels], dtype=bool)

    @property
    def classes(self) -> list[str]:
        """Sorted distinct labels."""
        return sorted({str(label) for label in self.labels if label is not None})


def check_not_empty(store: LibraryStore) -> int:
    """How many images ``store`` has embedded; an error naming the fix when none."""
    n = embedded_count(store.catalog)
    if n == 0:
        raise LibraryError(
            f"{store.folder} has no embedded images, so there is nothing to evaluate; add some first: "
            f"`lookalike index FOLDER --library {store.folder}`"
        )
    return n


def ensure_reducer(store: LibraryStore) -> None:
    """Fit the default PCA when ``store`` has none yet; the library must then be writable."""
    if stored_reducer(store) is not None:
        return
    if store.readonly:
        raise InvalidParameterError(f"{store.folder}: no PCA yet; run `lookalike reduce --library {store.folder}` first")
    refresh_reduced(store)


def load_data(store: LibraryStore) -> LibraryData:
    """Reduced vectors, labels (agreeing files only) and one file path per embedded image."""
    check_not_empty(store)
    reduced = reduced_vectors(store)
    ids = np.asarray(reduced.ids, dtype=np.int64)
    known = image_labels(store.catalog).labels
    labels = np.array([known.get(int(i)) for i in ids], dtype=object)
    path_of = {image: path for image, (path, _) in first_files(store.catalog).items()}
    paths = [path_of.get(int(i), "") for i in ids]
    return LibraryData(ids, np.ascontiguousarray(reduced.vectors, dtype=np.float32), labels, paths,
                       reduced.reducer_fingerprint)


def library_info(store: LibraryStore, data: LibraryData) -> dict[str, Any]:
    """Folder, backbone and its weights hash, dimensions and label counts (JSON-ready)."""
    embed = store.manifest.embed
    counts = dict(sorted(Counter(str(label) for label in data.labels if label is not None).items()))
    return {
        "folder": str(store.folder), "name": store.folder.name, "backbone": embed.backbone,
        "weights_sha256": embed.weights_sha256, "weights_source": embed.weights_source,
        "embedding_dim": int(embed.dim), "reduced_dim": int(data.vectors.shape[1]),
        "reducer_fingerprint": data.reducer_fingerprint, "reduce": store.manifest.sections.get("reduce", {}),
        "images": int(data.ids.size), "labelled_images": sum(counts.values()), "labels": len(counts), "class_counts": counts,
    }


def folder_sizes(folder: Path) -> dict[str, int]:
    """Bytes on disk of each top-level entry of a library folder (``reports/`` left out), and the total."""
    sizes: dict[str, int] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name in SKIPPED_FOLDERS:
            continue
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        sizes[entry.name] = sum(p.stat().st_size for p in files)
    sizes["total"] = sum(sizes.values())
    return sizes


def versions() -> dict[str, str]:
    """Installed versions of the packages the numbers depend on, and Python's."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found

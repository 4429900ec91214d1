"""Labels: the one rule for a file's folder label and the one rule for an image's label.

A file's label (``--labels folder``) is the name of its first-level subfolder under the
scanned root; files directly in the root have none. An image (one distinct content) may be
held by several files: its label is the one its labelled files agree on. Files without a
label, or with an empty one, do not vote; an image whose files carry two different labels is
*conflicting* and counts as unlabelled everywhere (clustering scores, retrieval scores,
classifier training, the search calibrator), so every metric sees the same labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lookalike.errors import InvalidParameterError
from lookalike.store.catalog import Catalog, encode_path, printable_path


def folder_label(root: Path, path: Path) -> str | None:
    """The label of ``path`` inside the folder ``root``: its first-level subfolder name
    (printable), None for files directly in ``root``."""
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError as exc:
        raise InvalidParameterError(f"{path} is not inside the folder {root}") from exc
    return printable_path(parts[0]) if len(parts) > 1 else None


@dataclass(frozen=True)
class ImageLabels:
    """Every image's label under the one rule, and the images whose files disagree."""

    labels: dict[int, str]
    conflicting: frozenset[int]


def image_labels(catalog: Catalog) -> ImageLabels:
    """The label of every image whose labelled files agree on one (see the module notes)."""
    votes: dict[int, set[str]] = {}
    for image_id, label in catalog.query(
        "SELECT image_id, label FROM files WHERE image_id IS NOT NULL AND label IS NOT NULL AND label != ''"
    ):
        votes.setdefault(int(image_id), set()).add(str(label))
    labels = {image: next(iter(found)) for image, found in votes.items() if len(found) == 1}
    return ImageLabels(labels, frozenset(image for image, found in votes.items() if len(found) > 1))


def set_file_labels(catalog: Catalog, wanted: dict[str, str]) -> tuple[int, int, list[str]]:
    """Set the label of each file path in ``wanted`` (one transaction).

    Returns (files changed, files that already had that label, paths the catalog does not hold).
    """
    changed = unchanged = 0
    unknown = []
    with catalog.transaction() as db:
        for path, label in wanted.items():
            row = db.execute("SELECT label FROM files WHERE path_bytes = ?", (encode_path(path),)).fetchone()
            if row is None:
                unknown.append(path)
            elif row[0] == label:
                unchanged += 1
            else:
                db.execute("UPDATE files SET label = ? WHERE path_bytes = ?", (label, encode_path(path)))
                changed += 1
    return changed, unchanged, unknown

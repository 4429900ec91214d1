"""Every error lookalike raises, in one tree.

::

    LookalikeError
    ├── InvalidParameterError (also ValueError)   a setting or argument out of range
    ├── MissingDependencyError (also ImportError) an optional package is not installed
    ├── LibraryError                              the library folder on disk
    │   ├── LibraryNotFoundError
    │   ├── LibraryExistsError
    │   ├── LibraryFormatError                    manifest or catalog unreadable or too new
    │   ├── LibraryLockedError                    another writer holds the library
    │   ├── BackboneMismatchError                 library built with another backbone
    │   └── StaleModelError                       a stored model was built on another PCA/backbone
    ├── ImageError                                one image file could not be used
    │   ├── NotAnImageError                       content is not a known image format
    │   ├── CorruptImageError                     truncated or undecodable data
    │   ├── ImageTooLargeError                    over the pixel limit (decompression bomb)
    │   └── UnreadableFileError                   permissions, broken link, vanished file
    ├── BackboneError
    │   ├── UnknownBackboneError
    │   ├── WeightsUnavailableError               weights neither local nor downloadable
    │   ├── ExportMismatchError                   exported model disagrees with PyTorch
    │   └── PrecisionError                        a precision refused by its gate or another library's
    ├── VectorIndexError                          a vector index is empty, unbuilt or unreadable
    ├── TrainingError                             too few images, incompatible checkpoint
    ├── ClusterError                              a Ray cluster unreachable, or a job that stalls
    ├── VectorImportError                         Parquet vectors that do not fit the library
    └── DatasetError                              a dataset could not be fetched or read

Messages say what was expected, what was found, and where (file or setting).
"""

from __future__ import annotations

from pathlib import Path


class LookalikeError(Exception):
    """Base class of every error raised by lookalike."""


class InvalidParameterError(LookalikeError, ValueError):
    """A setting or argument is outside what lookalike accepts."""


class MissingDependencyError(LookalikeError, ImportError):
    """An optional dependency is missing; the message names the install command."""

    def __init__(self, package: str, feature: str, install: str | None = None) -> None:
        command = install or f"pip install {package}"
        super().__init__(f"{feature} needs the package '{package}': run `{command}`")
        self.package = package


class LibraryError(LookalikeError):
    """Something is wrong with a library folder."""


class LibraryNotFoundError(LibraryError):
    """No library at the given path."""


class LibraryExistsError(LibraryError):
    """A library (or another folder) is already at the path to create."""


class LibraryFormatError(LibraryError):
    """The manifest or catalog cannot be read, or was written by a newer lookalike."""


class LibraryLockedError(LibraryError):
    """Another process is writing to the library."""


class BackboneMismatchError(LibraryError):
    """The library was built with a different backbone or weights."""


class StaleModelError(LibraryError):
    """A stored model was trained on another reducer (PCA refitted since) or backbone."""


class ImageError(LookalikeError):
    """One image file could not be used; ``reason`` is the human-readable cause."""

    def __init__(self, path: Path | str | None, reason: str) -> None:
        where = f"{path}: " if path is not None else ""
        super().__init__(f"{where}{reason}")
        self.path = path
        self.reason = reason


class NotAnImageError(ImageError):
    """The file's content is not a supported image format."""


class CorruptImageError(ImageError):
    """The image data is truncated or cannot be decoded."""


class ImageTooLargeError(ImageError):
    """The image has more pixels than the configured limit."""


class UnreadableFileError(ImageError):
    """The file cannot be opened: permissions, a broken link, a loop, or it vanished."""


class BackboneError(LookalikeError):
    """A backbone cannot be built, loaded or run."""


class UnknownBackboneError(BackboneError, InvalidParameterError):
    """No backbone of that name is registered."""


class WeightsUnavailableError(BackboneError):
    """Pretrained weights are neither on disk nor downloadable."""


class ExportMismatchError(BackboneError):
    """The exported runtime model disagrees with the PyTorch model."""


class PrecisionError(BackboneError, InvalidParameterError):
    """A reduced precision failed its retrieval gate, or differs from the library's own."""


class DatasetError(LookalikeError):
    """A dataset cannot be fetched, found or parsed."""


class VectorIndexError(LookalikeError):
    """A vector index cannot serve the request: empty, not fitted, read-only, or unreadable file."""


class TrainingError(LookalikeError):
    """A model cannot be trained or resumed: too few images, or an incompatible checkpoint."""


class ClusterError(LookalikeError):
    """A Ray cluster cannot be reached, or a distributed job stopped making progress."""


class VectorImportError(LookalikeError):
    """Vectors from a Parquet file do not fit the library: other backbone, weights, preprocessing,
    dimension, or an unreadable file."""

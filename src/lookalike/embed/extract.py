"""Pipelined extraction: decode (threads) → batch → infer → append rows → commit.

Reader, mapper and writer are separate pieces (see STYLE.md, rule 2):

- :func:`decoded` decodes pending images in a thread pool, in order, keeping a bounded number
  in flight so decoding runs ahead while the model works (the runtime releases the GIL);
- :func:`batches` groups decoded arrays into model batches and embeds them;
- :class:`RowWriter` appends vectors to the raw row file and commits rows, skips and the new row
  count in one catalog transaction every ``commit_every`` images.

A run killed at any point loses at most the uncommitted images, which stay ``pending`` and are
embedded by the next run; committed work is never redone.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from lookalike.config import ExtractConfig
from lookalike.errors import ImageError
from lookalike.progress import Progress
from lookalike.store.catalog import Catalog, EmbeddedBatch, PendingImage, to_signed64
from lookalike.store.vectors import RawVectors

Decoder = Callable[[PendingImage], tuple[np.ndarray, int | None, int | None]]
"""One pending image -> (model input (S, S, 3) uint8, 64-bit pHash or None, 64-bit dHash or None)."""
Embedded = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]
"""(embeddings (n, dim), top class indices (n, k) or None, their probabilities (n, k) or None)"""
Embedder = Callable[[np.ndarray], Embedded]


@dataclass
class ExtractReport:
    """What one extraction run did."""

    embedded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    by_worker: Counter[str] = field(default_factory=Counter)
    """Images embedded per worker (Ray node id); empty for a local run."""

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Decoded:
    """One pending image after decoding: pixels, or the reason it cannot be used."""

    image: PendingImage
    pixels: np.ndarray | None
    reason: str | None
    phash: int | None = None
    dhash: int | None = None


def decode_one(image: PendingImage, decode: Decoder) -> Decoded:
    """Decode one image; a file that is not a usable image or cannot be read becomes its skip reason."""
    try:
        pixels, phash, dhash = decode(image)
        return Decoded(image, pixels, None, phash, dhash)
    except ImageError as exc:
        return Decoded(image, None, exc.reason)
    except OSError as exc:
        return Decoded(image, None, f"cannot read file ({exc.strerror or exc})")


def decoded(images: Iterable[PendingImage], decode: Decoder, workers: int, ahead: int) -> Iterator[Decoded]:
    """Decode ``images`` in a thread pool, yielding results in input order."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        queue: deque[Future[Decoded]] = deque()
        for image in images:
            queue.append(pool.submit(decode_one, image, decode))
            if len(queue) >= ahead:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


def groups(items: Iterator[Decoded], size: int) -> Iterator[list[Decoded]]:
    """Consecutive items holding ``size`` decodable images each (skips ride along, in order)."""
    group: list[Decoded] = []
    ready = 0
    for item in items:
        group.append(item)
        ready += item.pixels is not None
        if ready == size:
            yield group
            group, ready = [], 0
    if group:
        yield group


def batches(
    items: Iterator[Decoded], embed: Embedder, size: int, streams: int = 1
) -> Iterator[tuple[list[Decoded], Embedded]]:
    """Embed the items in batches of ``size``, ``streams`` batches at a time, in input order.

    Yields (items, embedded) where embedded has one row per item that has pixels; items without
    pixels (skips) ride along in the list so the writer records them in order. Several streams
    of single-threaded inference share the cores with the decoder threads better than one
    multi-threaded stream, whose threads wait for each other when a decoder takes a core.
    """
    if streams == 1:
        for group in groups(items, size):
            yield group, embed_group(group, embed)
        return
    with ThreadPoolExecutor(max_workers=streams, thread_name_prefix="infer") as pool:
        queue: deque[tuple[list[Decoded], Future[Embedded]]] = deque()
        for group in groups(items, size):
            queue.append((group, pool.submit(embed_group, group, embed)))
            if len(queue) > streams:
                done, future = queue.popleft()
                yield done, future.result()
        while queue:
            done, future = queue.popleft()
            yield done, future.result()


def embed_group(group: list[Decoded], embed: Embedder) -> Embedded:
    """Embed the items that have pixels (one row each, in order); (0, 0) vectors when none has."""
    pixels = [item.pixels for item in group if item.pixels is not None]
    if not pixels:
        return np.zeros((0, 0), dtype=np.float32), None, None
    return embed(np.stack(pixels))


class RowWriter:
    """Appends embeddings and commits them with their catalog rows."""

    def __init__(self, catalog: Catalog, vectors: RawVectors, commit_every: int) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.commit_every = commit_every
        self.generation = int(catalog.get_meta("raw_generation", "0") or 0)
        self.rows = int(catalog.get_meta("raw_rows", "0") or 0)
        self._ids: list[int] = []
        self._blocks: list[np.ndarray] = []
        self._skips: list[tuple[int, str]] = []
        self._classes: list[tuple[int, int, int, float]] = []
        self._hashes: list[tuple[int, int | None, int]] = []

    def write(self, group: list[Decoded], embedded: Embedded) -> None:
        vectors, classes, probabilities = embedded
        done = [item.image.image_id for item in group if item.pixels is not None]
        self._skips.extend(
            (item.image.image_id, item.reason or "could not be decoded") for item in group if item.pixels is None
        )
        self._ids.extend(done)
        self._hashes.extend(
            (to_signed64(item.phash), None if item.dhash is None else to_signed64(item.dhash), item.image.image_id)
            for item in group
            if item.phash is not None
        )
        if vectors.size:
            self._blocks.append(vectors)
        if classes is not None and probabilities is not None:
            self._classes.extend(
                (image_id, rank, int(c), float(p))
                for image_id, row_c, row_p in zip(done, classes, probabilities)
                for rank, (c, p) in enumerate(zip(row_c, row_p))
            )
        if len(self._ids) + len(self._skips) >= self.commit_every:
            self.commit()

    def commit(self) -> None:
        """Make everything written so far durable and visible, atomically."""
        if not self._ids and not self._skips:
            return
        first = self.rows
        if self._blocks:
            new_rows = self.vectors.append(self.generation, self.rows, np.concatenate(self._blocks))
        else:
            new_rows = self.rows
        now = time.time()
        batch = EmbeddedBatch(first, self._ids, self._skips, self._classes, self._hashes, new_rows)
        with self.catalog.transaction() as db:
            self.catalog.commit_embedded(db, batch, now)
        self.rows = new_rows
        self._ids, self._blocks, self._skips, self._classes, self._hashes = [], [], [], [], []


def start_run(
    catalog: Catalog, vectors: RawVectors, config: ExtractConfig, progress: Progress
) -> tuple[list[PendingImage], ExtractReport, RowWriter]:
    """The pending images, an empty report and the writer of a run, local or on Ray. Rows a killed
    run wrote past the last commit are cut off first, so a resumed run appends after committed rows."""
    pending = catalog.pending_images()
    writer = RowWriter(catalog, vectors, config.commit_every)
    vectors.truncate(writer.generation, writer.rows)
    progress.phase("embedding", len(pending))
    return pending, ExtractReport(), writer


def extract(
    catalog: Catalog,
    vectors: RawVectors,
    decode: Decoder,
    embed: Embedder,
    config: ExtractConfig,
    progress: Progress,
) -> ExtractReport:
    """Embed every pending image of ``catalog``; see the module docstring for the pipeline."""
    pending, report, writer = start_run(catalog, vectors, config, progress)
    started = time.perf_counter()
    stream = decoded(pending, decode, config.decode_threads(), ahead=config.batch_size * (config.streams + 2))
    for group, embedded in batches(stream, embed, config.batch_size, config.streams):
        writer.write(group, embedded)
        report.embedded += embedded[0].shape[0]
        report.skipped.update(item.reason or "" for item in group if item.pixels is None)
        progress.advance(len(group))
    writer.commit()
    report.seconds = time.perf_counter() - started
    return report

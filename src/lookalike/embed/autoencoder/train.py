"""Train the convolutional autoencoder of :mod:`lookalike.embed.autoencoder.model` on a library's images.

Reader → trainer → writer: :func:`collect_images` decodes the library's images into one uint8
array, :class:`AutoencoderTrainer` fits on arrays (no I/O but its checkpoint file), and
:func:`train_library` wires them and writes the encoder file and a reconstructions PNG.

Images of mixed sizes are expected: each is resized (shorter side to ``image_size``) and
centre-cropped to a square by :func:`lookalike.io.decode.load_model_input` with
``crop_fraction=1.0`` — the preprocessing the ``autoencoder:PATH`` backbone applies later.

Checkpoints: after every epoch the model, the optimiser, the epoch, the early-stopping state and
the random generator are saved with ``torch.save`` to a temporary file renamed into place. A run
started again with the same settings and images resumes after the last finished epoch and ends
with the same weights as an uninterrupted run. A checkpoint of another architecture, of other
training settings or of other images is refused with :class:`~lookalike.errors.TrainingError`.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.config import AutoencoderConfig
from lookalike.embed.autoencoder.model import (
    FAMILY,
    Architecture,
    as_unit_float,
    augment_batch,
    build_autoencoder,
    data_fingerprint,
    split_indices,
    write_encoder,
)
from lookalike.errors import ImageError, InvalidParameterError, TrainingError
from lookalike.progress import NoProgress, Progress
from lookalike.store.images import first_paths

MIN_IMAGES = 8
"""Fewest decodable images a training accepts (at least one goes to the validation split)."""
CHECKPOINT_FORMAT = "lookalike-autoencoder-checkpoint/1"
RESUME_SETTINGS = ("seed", "val_fraction", "batch_size", "learning_rate", "augment")
"""Settings a resumed run must share with its checkpoint (epochs and patience may change)."""
RECONSTRUCTIONS_NAME = "autoencoder-reconstructions.png"


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch: mean training and validation losses (MSE on [0, 1] pixels)."""

    epoch: int
    train_loss: float
    val_loss: float
    seconds: float


class AutoencoderTrainer:
    """Fit the autoencoder on uint8 images ``(N, S, S, 3)``; scikit-learn style.

    Parameters
    ----------
    config : training settings (``S = config.image_size``).
    checkpoint : file saved after every epoch and resumed from when it exists (None: no checkpoints).

    Fitted attributes: ``model_`` (best weights, eval mode), ``history_`` (list of
    :class:`EpochRecord`, resumed epochs included), ``best_epoch_``, ``best_val_loss_``,
    ``stopped_early_``, ``resumed_from_epoch_`` (0 for a fresh start), ``val_indices_``,
    ``images_trained_`` and ``seconds_`` (of this call only).
    """

    def __init__(self, config: AutoencoderConfig | None = None, checkpoint: Path | None = None) -> None:
        self.config = config or AutoencoderConfig()
        self.checkpoint = checkpoint

    @property
    def architecture(self) -> Architecture:
        return Architecture(self.config.image_size, self.config.latent_dim, self.config.width)

    def fit(
        self,
        images: np.ndarray,
        progress: Progress | None = None,
        on_epoch: Callable[[EpochRecord], None] | None = None,
    ) -> AutoencoderTrainer:
        """Train on ``images`` uint8 ``(N, S, S, 3)``, N >= :data:`MIN_IMAGES`; returns self."""
        import torch

        self._check_images(images)
        if len(images) < MIN_IMAGES:
            raise TrainingError(f"training an autoencoder needs at least {MIN_IMAGES} images, got {len(images)}")
        progress = progress or NoProgress()
        cfg = self.config
        train_idx, val_idx = split_indices(len(images), cfg.val_fraction, cfg.seed)
        data = torch.from_numpy(np.ascontiguousarray(images))
        run = _Run.start(self, data_fingerprint(images))
        self.resumed_from_epoch_ = run.epoch
        start, seen = time.perf_counter(), 0
        with _threads(cfg.threads):
            while run.epoch < cfg.epochs and not run.stopped:
                began = time.perf_counter()
                progress.phase(f"epoch {run.epoch + 1}/{cfg.epochs}{run.last_losses()}", len(train_idx))
                train_loss = _train_epoch(run, data, train_idx, progress)
                val_loss = _mean_loss(run.model, data, val_idx, cfg.batch_size)
                record = EpochRecord(run.epoch + 1, train_loss, val_loss, time.perf_counter() - began)
                run.finish_epoch(record, cfg.patience)
                seen += len(train_idx)
                if self.checkpoint is not None:
                    save_checkpoint(self.checkpoint, run.payload(self))
                if on_epoch is not None:
                    on_epoch(record)
        run.model.load_state_dict(run.best_state)
        self.model_ = run.model.eval()
        self.history_ = list(run.history)
        self.best_epoch_, self.best_val_loss_, self.stopped_early_ = run.best_epoch, run.best_val, run.stopped
        self.val_indices_ = val_idx
        self.images_trained_, self.seconds_ = seen, time.perf_counter() - start
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(N, S, S, 3)`` -> latent vectors float32 ``(N, latent_dim)``."""
        return self._predict(images, encode_only=True)

    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(N, S, S, 3)`` -> reconstructions uint8 ``(N, S, S, 3)``."""
        return self._predict(images, encode_only=False)

    def _predict(self, images: np.ndarray, *, encode_only: bool) -> np.ndarray:
        import torch

        if not hasattr(self, "model_"):
            raise TrainingError("this AutoencoderTrainer is not fitted yet: call fit(images) first")
        self._check_images(images)
        if len(images) == 0:
            return np.zeros((0, self.config.latent_dim), np.float32) if encode_only else images.copy()
        net = self.model_.encoder if encode_only else self.model_
        outputs = []
        with torch.no_grad():
            for start in range(0, len(images), self.config.batch_size):
                outputs.append(net(as_unit_float(torch.from_numpy(images[start : start + self.config.batch_size]))))
        result = torch.cat(outputs).numpy()
        if encode_only:
            return result.astype(np.float32)
        return np.asarray(np.clip(np.rint(result.transpose(0, 2, 3, 1) * 255), 0, 255).astype(np.uint8))

    def _check_images(self, images: np.ndarray) -> None:
        size = self.config.image_size
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
            found = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
            raise InvalidParameterError(f"images must be a uint8 numpy array, got {found}")
        if images.ndim != 4 or images.shape[1:] != (size, size, 3):
            raise InvalidParameterError(f"images must have shape (N, {size}, {size}, 3), got {images.shape}")


class _Run:
    """The mutable state of one training: model, optimiser, generator and early stopping."""

    def __init__(self, trainer: AutoencoderTrainer) -> None:
        import torch

        cfg = trainer.config
        with torch.random.fork_rng(devices=[]):  # seeded weights, the caller's global RNG untouched
            torch.manual_seed(cfg.seed)
            self.model = build_autoencoder(trainer.architecture)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.learning_rate)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.augment, self.batch_size = cfg.augment, cfg.batch_size
        self.epoch, self.bad_epochs, self.stopped = 0, 0, False
        self.best_epoch, self.best_val = 0, float("inf")
        self.best_state = copy.deepcopy(self.model.state_dict())
        self.history: list[EpochRecord] = []
        self.fingerprint = ""

    @classmethod
    def start(cls, trainer: AutoencoderTrainer, fingerprint: str) -> _Run:
        """A fresh run, or the one saved in ``trainer.checkpoint`` when that file exists."""
        run = cls(trainer)
        run.fingerprint = fingerprint
        if trainer.checkpoint is not None and trainer.checkpoint.exists():
            run.restore(load_checkpoint(trainer.checkpoint, trainer, fingerprint))
            patience = trainer.config.patience  # may differ from the checkpoint's: judge again
            run.stopped = patience > 0 and run.bad_epochs >= patience
        return run

    def finish_epoch(self, record: EpochRecord, patience: int) -> None:
        self.epoch = record.epoch
        self.history.append(record)
        if record.val_loss < self.best_val:
            self.best_val, self.best_epoch, self.bad_epochs = record.val_loss, record.epoch, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            self.bad_epochs += 1
            self.stopped = patience > 0 and self.bad_epochs >= patience

    def last_losses(self) -> str:
        if not self.history:
            return ""
        return f" · loss {self.history[-1].train_loss:.4f} · val {self.history[-1].val_loss:.4f}"

    def payload(self, trainer: AutoencoderTrainer) -> dict[str, Any]:
        """What a checkpoint holds (tensors, numbers, strings: loadable with ``weights_only``)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "architecture": asdict(trainer.architecture),
            "settings": {name: getattr(trainer.config, name) for name in RESUME_SETTINGS},
            "data_sha256": self.fingerprint,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
            "best_epoch": self.best_epoch,
            "best_val": self.best_val,
            "best_state": self.best_state,
            "history": [asdict(record) for record in self.history],
        }

    def restore(self, payload: dict[str, Any]) -> None:
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.generator.set_state(payload["generator"])
        self.epoch, self.bad_epochs, self.stopped = payload["epoch"], payload["bad_epochs"], payload["stopped"]
        self.best_epoch, self.best_val, self.best_state = (
            payload["best_epoch"],
            payload["best_val"],
            payload["best_state"],
        )
        self.history = [EpochRecord(**record) for record in payload["history"]]


# -- compute helpers (arrays in, arrays out) -------------------------------------------------------
def _train_epoch(run: _Run, data: Any, train_idx: np.ndarray, progress: Progress) -> float:
    """One pass over ``train_idx`` in a seeded order; returns the mean training loss."""
    import torch
    import torch.nn.functional as F

    run.model.train()
    order = torch.from_numpy(train_idx)[torch.randperm(len(train_idx), generator=run.generator)]
    total, count = 0.0, 0
    for start in range(0, len(order), run.batch_size):
        index = order[start : start + run.batch_size]
        x = as_unit_float(data[index])
        if run.augment:
            x = augment_batch(x, run.generator)
        loss = F.mse_loss(run.model(x), x)
        run.optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        run.optimizer.step()
        total, count = total + loss.item() * len(index), count + len(index)
        progress.advance(len(index))
    return total / max(count, 1)


def _mean_loss(model: Any, data: Any, indices: np.ndarray, batch_size: int) -> float:
    """Mean reconstruction MSE of the images at ``indices``, no augmentation, eval mode."""
    import torch
    import torch.nn.functional as F

    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            x = as_unit_float(data[torch.from_numpy(indices[start : start + batch_size])])
            total += float(F.mse_loss(model(x), x, reduction="sum")) / x[0].numel()
    return total / max(len(indices), 1)


def reconstruction_grid(originals: np.ndarray, reconstructions: np.ndarray, min_side: int = 96) -> np.ndarray:
    """Originals on the top row, reconstructions below: uint8 ``(2 s + 3 g, n (s + g) + g, 3)``.

    Images ``(n, S, S, 3)`` are enlarged by an integer factor (nearest) to at least ``min_side``.
    """
    scale = max(1, -(-min_side // originals.shape[1]))
    gap = 4
    rows = []
    for row in (originals, reconstructions):
        big = row.repeat(scale, axis=1).repeat(scale, axis=2)
        side = big.shape[1]
        strip = np.full((side, len(big) * (side + gap) + gap, 3), 255, np.uint8)
        for i, image in enumerate(big):
            strip[:, gap + i * (side + gap) : gap + i * (side + gap) + side] = image
        rows.append(strip)
    blank = np.full((gap, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([blank, rows[0], blank, rows[1], blank])


# -- I/O: checkpoints, library images, outputs -----------------------------------------------------
def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, renamed over ``path``."""
    import torch

    from lookalike.store.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, trainer: AutoencoderTrainer, fingerprint: str) -> dict[str, Any]:
    """The checkpoint at ``path``, checked against ``trainer``'s architecture, settings and data."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise TrainingError(
            f"{path}: cannot be read as an autoencoder checkpoint ({type(exc).__name__}); delete it or pass --fresh"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"{path}: not a {CHECKPOINT_FORMAT} file; delete it or pass --fresh")
    expected = asdict(trainer.architecture)
    if payload.get("architecture") != expected:
        raise TrainingError(
            f"{path} was saved by an autoencoder of another architecture: checkpoint {payload.get('architecture')}, "
            f"requested {expected}; use the same --image-size/--latent-dim/--width, or --fresh to start over"
        )
    settings = {name: getattr(trainer.config, name) for name in RESUME_SETTINGS}
    if payload.get("settings") != settings:
        raise TrainingError(
            f"{path}: checkpoint settings {payload.get('settings')} differ from {settings}; pass --fresh to start over"
        )
    if payload.get("data_sha256") != fingerprint:
        raise TrainingError(
            f"{path}: checkpoint was trained on other images (the library changed); pass --fresh to start over"
        )
    return payload


def collect_images(
    folder: Path, config: AutoencoderConfig, progress: Progress | None = None
) -> tuple[np.ndarray, dict[str, int], int]:
    """Decode the library's images (embedded or pending) to uint8 ``(N, S, S, 3)``.

    Returns the images, the count of undecodable files by reason, and how many the catalog lists.
    At most ``config.max_images`` are decoded: a seeded random subset.
    """
    from lookalike.io.decode import load_model_input
    from lookalike.store.library_store import LibraryStore

    with LibraryStore.open(folder, readonly=True) as library:
        paths = first_paths(library.catalog, ("embedded", "pending"))
        max_pixels = library.manifest.ingest.max_pixels
    listed = len(paths)
    if listed > config.max_images:
        keep = np.sort(np.random.default_rng(config.seed).choice(listed, config.max_images, replace=False))
        paths = [paths[i] for i in keep]
    size = config.image_size
    images = np.empty((len(paths), size, size, 3), np.uint8)
    skipped: Counter[str] = Counter()
    progress = progress or NoProgress()
    progress.phase("decoding", len(paths))
    count = 0
    for path in paths:
        try:
            images[count] = load_model_input(path, size=size, crop_fraction=1.0, max_pixels=max_pixels)
            count += 1
        except ImageError as exc:
            skipped[exc.reason] += 1
        progress.advance()
    return images[:count], dict(skipped), listed


@dataclass(frozen=True)
class TrainingReport:
    """What :func:`train_library` did and wrote."""

    encoder_path: Path
    backbone: str
    weights_sha256: str
    reconstructions_path: Path
    n_images: int
    n_train: int
    n_val: int
    skipped: dict[str, int]
    history: list[EpochRecord]
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    resumed_from_epoch: int
    seconds: float
    images_per_second: float


def train_library(
    library: Path | str,
    config: AutoencoderConfig | None = None,
    *,
    out: Path | None = None,
    fresh: bool = False,
    progress: Progress | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainingReport:
    """Train on ``library``'s images; write the encoder (default ``models/autoencoder/encoder.npz``)
    and ``reports/autoencoder-reconstructions.png``. Resumes ``models/autoencoder/checkpoint.pt``
    unless ``fresh``.
    """
    from PIL import Image

    from lookalike.store.atomic import atomic_path

    folder, config = Path(library).expanduser(), config or AutoencoderConfig()
    model_dir = folder / "models" / "autoencoder"
    checkpoint = model_dir / "checkpoint.pt"
    images, skipped, listed = collect_images(folder, config, progress)
    if len(images) < MIN_IMAGES:
        raise TrainingError(
            f"{folder}: training an autoencoder needs at least {MIN_IMAGES} decodable images, found {len(images)} "
            f"({listed} in the catalog, {sum(skipped.values())} undecodable); add images with `lookalike index`"
        )
    if fresh:
        checkpoint.unlink(missing_ok=True)
    trainer = AutoencoderTrainer(config, checkpoint).fit(images, progress, on_epoch)
    encoder_path = Path(out).expanduser().resolve() if out else (model_dir / "encoder.npz").resolve()
    info = {
        "library": str(folder.resolve()),
        "images": len(images),
        "best_epoch": trainer.best_epoch_,
        "best_val_loss": trainer.best_val_loss_,
    }
    sha = write_encoder(encoder_path, trainer.model_.encoder.state_dict(), trainer.architecture, info)
    shown = images[trainer.val_indices_[:8]]
    png = folder / "reports" / RECONSTRUCTIONS_NAME
    with atomic_path(png) as tmp:
        Image.fromarray(reconstruction_grid(shown, trainer.reconstruct(shown))).save(tmp, format="PNG")
    return TrainingReport(
        encoder_path=encoder_path,
        backbone=f"{FAMILY}:{encoder_path}",
        weights_sha256=sha,
        reconstructions_path=png,
        n_images=len(images),
        n_train=len(images) - len(trainer.val_indices_),
        n_val=len(trainer.val_indices_),
        skipped=skipped,
        history=trainer.history_,
        best_epoch=trainer.best_epoch_,
        best_val_loss=trainer.best_val_loss_,
        stopped_early=trainer.stopped_early_,
        resumed_from_epoch=trainer.resumed_from_epoch_,
        seconds=trainer.seconds_,
        images_per_second=trainer.images_trained_ / trainer.seconds_ if trainer.seconds_ > 0 else 0.0,
    )


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """PyTorch intra-op threads set to ``n`` (0 = unchanged) inside the block, restored after."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)

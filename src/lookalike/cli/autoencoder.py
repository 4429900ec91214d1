"""``lookalike train-autoencoder``: train a convolutional autoencoder on a library's images.

Mounted by :mod:`lookalike.cli.main` through :func:`register`. Imports no torch until the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lookalike.cli.common import err, out, reports_errors
from lookalike.config import AutoencoderConfig

_D = AutoencoderConfig()


@reports_errors
def train_autoencoder(
    library: Annotated[Path, typer.Option("--library", "-l", help="Library whose images to train on.")] = Path("library.lookalike"),
    epochs: Annotated[int, typer.Option(help="Most passes over the training images.")] = _D.epochs,
    latent_dim: Annotated[int, typer.Option(help="Embedding length of the trained encoder.")] = _D.latent_dim,
    image_size: Annotated[int, typer.Option(help="Side of the square training images (multiple of 16); every image is resized and centre-cropped to it.")] = _D.image_size,
    width: Annotated[int, typer.Option(help="Channels of the first convolution (doubled 3 times).")] = _D.width,
    batch_size: Annotated[int, typer.Option(help="Images per optimiser step.")] = _D.batch_size,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate.")] = _D.learning_rate,
    val_fraction: Annotated[float, typer.Option(help="Share of images held out for the validation loss.")] = _D.val_fraction,
    patience: Annotated[int, typer.Option(help="Stop after this many epochs without a better validation loss (0: never).")] = _D.patience,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Flip, shift and brightness augmentations.")] = _D.augment,
    max_images: Annotated[int, typer.Option(help="Train on at most this many images (a seeded random subset).")] = _D.max_images,
    seed: Annotated[int, typer.Option(help="Seed of weights, split, order and augmentations.")] = _D.seed,
    threads: Annotated[int, typer.Option(help="PyTorch threads (0: its default).")] = _D.threads,
    out_path: Annotated[Path | None, typer.Option("--out", help="Encoder file [default: LIBRARY/models/autoencoder/encoder.npz].")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Ignore (and delete) the checkpoint instead of resuming it.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train an autoencoder on LIBRARY's images; its encoder becomes backbone autoencoder:PATH.

    Resumes an interrupted training from its checkpoint (same settings). Writes the encoder file and
    LIBRARY/reports/autoencoder-reconstructions.png (originals above, reconstructions below).
    """
    from lookalike.embed.autoencoder.train import EpochRecord, train_library
    from lookalike.progress import NoProgress, RichProgress

    config = AutoencoderConfig(
        image_size=image_size, latent_dim=latent_dim, width=width, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, val_fraction=val_fraction, patience=patience, augment=augment,
        max_images=max_images, seed=seed, threads=threads,
    )  # fmt: skip

    def log(record: EpochRecord) -> None:
        err.print(
            f"epoch {record.epoch}: loss {record.train_loss:.5f}, val {record.val_loss:.5f} ({record.seconds:.1f} s)",
            highlight=False,
        )

    bar = RichProgress() if progress else NoProgress()
    try:
        report = train_library(library, config, out=out_path, fresh=fresh, progress=bar, on_epoch=log)
    finally:
        bar.close()
    _print_summary(report)


def _print_summary(report: Any) -> None:
    if report.skipped:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(report.skipped.items()))
        out.print(f"skipped {sum(report.skipped.values())} undecodable images: {reasons}", highlight=False)
    if report.resumed_from_epoch:
        out.print(f"resumed from the checkpoint after epoch {report.resumed_from_epoch}", highlight=False)
    stop = "stopped early" if report.stopped_early else "finished"
    out.print(
        f"trained on {report.n_train:,} images, validated on {report.n_val:,}: {stop} after epoch "
        f"{len(report.history)}, best validation loss {report.best_val_loss:.5f} at epoch {report.best_epoch} "
        f"({report.images_per_second:,.0f} images/s)",
        highlight=False,
        soft_wrap=True,
    )
    out.print(f"encoder: {report.encoder_path} (sha256 {report.weights_sha256[:12]}…)", highlight=False, soft_wrap=True)
    out.print(f"reconstructions: {report.reconstructions_path}", highlight=False, soft_wrap=True)
    out.print(
        f"build a library with it: lookalike index FOLDER --library NEW --backbone '{report.backbone}'",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``train-autoencoder`` to the main CLI."""
    app.command("train-autoencoder")(train_autoencoder)

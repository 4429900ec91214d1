"""Export a PyTorch backbone to ONNX once, cache it, check it, and run it with ONNX Runtime.

The exported graph takes uint8 RGB ``(N, S, S, 3)`` under the input name ``images`` and does the
cast, normalisation and NHWC -> NCHW transpose itself. Its outputs are ``embedding`` ``(N, dim)``
and, for backbones with an ImageNet head, ``logits`` ``(N, 1000)``; the batch axis is dynamic.

Cache: ``<cache_dir>/onnx/<name>-<weights sha>-<key>.onnx`` where the key hashes the weights'
SHA-256, the spec and the export format; beside it a ``.json`` sidecar records the model file's
own SHA-256, so a truncated or altered file is detected and exported again. Files are written to
a temporary name and renamed into place, under an exclusive lock, so concurrent processes never
see or produce a half-written model. Every export is checked against PyTorch on photo-like images
(:func:`parity_images`) before it is kept: :class:`ExportMismatchError` if any per-image cosine
similarity is below :data:`PARITY_MIN_COSINE`.

torch and onnxruntime are imported inside the functions; a cached model loads without torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.embed.base import Backbone, BackboneSpec, weights_sha256
from lookalike.errors import BackboneError, ExportMismatchError

EXPORT_FORMAT = 1
"""Bump when the exported graph changes, so old cache files are not reused."""
OPSET = 17
INPUT_NAME = "images"
PARITY_MIN_COSINE = 0.999
PARITY_BATCH = 5
"""Parity batch size; differs from the export's dummy batch of 2 to exercise the dynamic axis."""

Builder = Callable[[BackboneSpec, Path], Any]


def default_cache_dir() -> Path:
    """``$LOOKALIKE_CACHE`` if set, else ``~/.cache/lookalike``."""
    from lookalike.config import cache_root

    return cache_root()


def cached_model_path(spec: BackboneSpec, weights_sha: str, cache_dir: Path | None = None) -> Path:
    """Where the ONNX export of ``spec`` with weights ``weights_sha`` is cached."""
    record = {"format": EXPORT_FORMAT, "opset": OPSET, "spec": asdict(spec), "weights_sha256": weights_sha}
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode("utf-8")).hexdigest()
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", spec.name)[:48]
    return Path(cache_dir or default_cache_dir()) / "onnx" / f"{safe_name}-{weights_sha[:12]}-{key[:12]}.onnx"


def load_exported(
    spec: BackboneSpec, build: Builder, weights_path: Path, *, threads: int = 0, cache_dir: Path | None = None
) -> OnnxBackbone:
    """The backbone built by ``build(spec, weights_path)``, exported (once) and run by ONNX Runtime."""
    weights_sha = weights_sha256(weights_path)
    onnx_path = ensure_exported(spec, build, weights_path, weights_sha, cache_dir)
    return OnnxBackbone(spec, weights_sha, make_session(onnx_path, threads))


def ensure_exported(
    spec: BackboneSpec, build: Builder, weights_path: Path, weights_sha: str, cache_dir: Path | None = None
) -> Path:
    """Path of a valid cached export, exporting first if it is missing or corrupted."""
    target = cached_model_path(spec, weights_sha, cache_dir)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackboneError(
            f"cannot create the model cache {target.parent} ({exc}); set $LOOKALIKE_CACHE"
        ) from exc
    with _exclusive(target.with_suffix(".lock")):
        if not is_valid_export(target, weights_sha):
            export_onnx(spec, build, weights_path, weights_sha, target)
    return target


def is_valid_export(path: Path, weights_sha: str) -> bool:
    """Whether ``path`` and its sidecar exist, agree on the weights and the file's SHA-256."""
    try:
        record = json.loads(path.with_suffix(".json").read_text("utf-8"))
        return (
            isinstance(record, dict)
            and record.get("weights_sha256") == weights_sha
            and record.get("onnx_sha256") == weights_sha256(path)
        )
    except (OSError, ValueError):
        return False


def export_onnx(
    spec: BackboneSpec, build: Builder, weights_path: Path, weights_sha: str, target: Path
) -> float:
    """Export, check parity with PyTorch, then atomically place ``target`` and its sidecar.

    Returns the smallest per-image cosine similarity seen in the parity check.
    """
    from lookalike.embed.pretrained import EmbeddingNet

    trunk, head = build(spec, weights_path)
    net = EmbeddingNet(trunk, head, spec.mean, spec.std).eval()
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".onnx.tmp")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        _torch_export(net, spec, tmp, with_logits=head is not None)
        cosine = check_parity(net, tmp, spec)
        record = _export_record(spec, weights_sha, tmp, cosine)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_atomic(target.with_suffix(".json"), json.dumps(record, indent=2))
    return cosine


def _torch_export(net: Any, spec: BackboneSpec, path: Path, *, with_logits: bool) -> None:
    """Legacy (TorchScript) exporter, dynamic batch axis, uint8 NHWC input."""
    import torch

    outputs = ["embedding", "logits"] if with_logits else ["embedding"]
    dummy = torch.from_numpy(parity_images(spec.image_size, count=2))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
            torch.onnx.export(
                net,
                (dummy,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=outputs,
                dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *outputs]},
                opset_version=OPSET,
                dynamo=False,
                do_constant_folding=True,
            )
    except Exception as exc:  # torch raises many types from tracing and export
        raise BackboneError(f"exporting {spec.name} to ONNX failed: {type(exc).__name__}: {exc}") from exc


def _export_record(spec: BackboneSpec, weights_sha: str, onnx_path: Path, cosine: float) -> dict[str, Any]:
    """The sidecar JSON saved beside a cached export."""
    import torch

    return {
        "backbone": spec.name,
        "weights_sha256": weights_sha,
        "onnx_sha256": weights_sha256(onnx_path),
        "spec": asdict(spec),
        "format": EXPORT_FORMAT,
        "opset": OPSET,
        "torch": torch.__version__,
        "min_parity_cosine": cosine,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def check_parity(net: Any, onnx_path: Path, spec: BackboneSpec) -> float:
    """Smallest per-image cosine between PyTorch ``net`` and the ONNX model on photo-like images.

    Raises :class:`ExportMismatchError` when it is below :data:`PARITY_MIN_COSINE`.
    """
    import torch

    images = parity_images(spec.image_size, count=PARITY_BATCH)
    with torch.no_grad():
        expected = [t.numpy() for t in net(torch.from_numpy(images))]
    session = make_session(onnx_path, threads=0)
    actual = session.run(None, {INPUT_NAME: images})
    worst = 1.0
    for name, ref, got in zip([o.name for o in session.get_outputs()], expected, actual):
        cosines = _row_cosines(ref, got)
        index = int(np.argmin(cosines))
        if cosines[index] < PARITY_MIN_COSINE:
            raise ExportMismatchError(
                f"ONNX export of {spec.name} disagrees with PyTorch on output {name!r}: cosine "
                f"{cosines[index]:.5f} < {PARITY_MIN_COSINE} on parity image {index} of {PARITY_BATCH}"
            )
        worst = min(worst, float(cosines.min()))
    return worst


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    return np.asarray(np.sum(a64 * b64, axis=1) / np.maximum(norms, 1e-30))


def parity_images(size: int, count: int = 4, seed: int = 0) -> np.ndarray:
    """Deterministic photo-like uint8 RGB images ``(count, size, size, 3)``.

    Smooth colour fields, hard-edged regions, a bright disc and mild texture: random noise alone
    can hide export bugs that structured real photos reveal.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    images = []
    for index in range(count):
        grid = int(rng.integers(3, 8))
        coarse = (rng.random((grid, grid, 3)) * 255).astype(np.uint8)
        field = np.asarray(
            Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64
        )
        gradient = np.stack([xx, yy, 1 - xx], axis=-1) * 255
        image = 0.6 * field + 0.4 * np.roll(gradient, index, axis=-1)
        cy, cx, radius = rng.random(3) * [1, 1, 0.3] + [0, 0, 0.1]
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < radius**2] = rng.random(3) * 255
        image[: size // (index + 2), :, :] *= 0.5  # a hard horizontal edge, like a horizon
        image += 12 * np.sin(xx * size * (index + 1) / 3)[..., None] + rng.normal(0, 4, image.shape)
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    return np.stack(images)


def make_session(path: Path, threads: int = 0) -> Any:
    """ONNX Runtime CPU session with all graph optimisations; ``threads`` intra-op (0 = default)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        from lookalike.errors import MissingDependencyError

        raise MissingDependencyError("onnxruntime", "running backbones") from exc
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BackboneError(f"{path}: ONNX Runtime cannot load the model ({exc})") from exc


class OnnxBackbone(Backbone):
    """A backbone run by an ONNX Runtime session built by :func:`make_session`."""

    def __init__(self, spec: BackboneSpec, weights_sha: str, session: Any) -> None:
        self.spec = spec
        self.weights_sha256 = weights_sha
        self.session = session

    def _run(self, output: str, batch: np.ndarray) -> np.ndarray:
        result: np.ndarray = self.session.run([output], {INPUT_NAME: batch})[0]
        return result.astype(np.float32, copy=False)

    def _embed(self, batch: np.ndarray) -> np.ndarray:
        return self._run("embedding", batch)

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        if not self.spec.has_classifier:
            return super()._logits(batch)
        return self._run("logits", batch)

    def _embed_and_logits(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        embedding, logits = self.session.run(["embedding", "logits"], {INPUT_NAME: batch})
        return embedding.astype(np.float32, copy=False), logits.astype(np.float32, copy=False)


def benchmark(backbone: Backbone, *, batch_size: int = 32, batches: int = 5, seed: int = 0) -> float:
    """Model-only throughput in images/s on pre-made uint8 batches (one warm-up batch first)."""
    size = backbone.spec.image_size
    batch = np.random.default_rng(seed).integers(0, 256, (batch_size, size, size, 3), dtype=np.uint8)
    backbone.embed(batch)
    start = time.perf_counter()
    for _ in range(batches):
        backbone.embed(batch)
    return batch_size * batches / (time.perf_counter() - start)


def _write_atomic(path: Path, text: str) -> None:
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (no-op where fcntl is unavailable)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: atomic renames still prevent torn files
        yield
        return
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

"""Run an exported backbone at a reduced precision: int8 (post-training quantization) or bf16.

int8: NNCF's post-training quantization of the fp32 export, calibrated on a batch of uint8 images
``(n, S, S, 3)`` (e.g. the first images of the library being indexed), in the form the runtime
runs fastest: an OpenVINO model (IR, ``.xml`` + ``.bin``) quantized by NNCF's OpenVINO backend
for OpenVINO, a QDQ ONNX model for ONNX Runtime. On an AMX CPU OpenVINO ran the QDQ model barely
faster than fp32 (Lite0 237 against 215 images/s) and its own quantized model at 577. The
preprocessing at the graph's start, the pooled embedding and the classifier stay in float, so
vectors keep their resolution. Quantized models are cached beside the fp32 export as
``<export stem>-int8-<calibration sha[:12]>.onnx`` (or ``-int8ov-….xml``), keyed by the weights
(through the export's name) and the calibration fingerprint, with a sidecar recording the
model's SHA-256 (of every file it has), written atomically under a lock like the exports.

bf16: OpenVINO compiles the fp32 export with the inference precision hint ``bf16``.

Which runtime runs a precision is data (the gate table's ``runtime``): OpenVINO when it is
installed and the table measured it, else ONNX Runtime (int8 only). OpenVINO and the
quantization tools are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.config import usable_cores
from lookalike.embed.base import Backbone, BackboneSpec, weights_sha256
from lookalike.errors import BackboneError, MissingDependencyError

QUANT_FORMAT = 4
"""Bump when the quantization recipe changes, so old cached int8 models are not reused."""


def calibration_fingerprint(images: np.ndarray, recipe: int = QUANT_FORMAT) -> str:
    """Hex SHA-256 of a calibration batch's shape and pixels (and the quantization recipe's
    version: a library records it, so a recipe change is detected, not mixed into its vectors)."""
    digest = hashlib.sha256(f"q{recipe}:{images.shape}".encode())
    digest.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def quantized_path(onnx_path: Path, fingerprint: str, runtime: str = "onnxruntime") -> Path:
    """Where the int8 model of ``onnx_path`` calibrated on ``fingerprint`` is cached for ``runtime``."""
    if runtime == "openvino":
        return onnx_path.with_name(f"{onnx_path.stem}-int8ov-{fingerprint[:12]}.xml")
    return onnx_path.with_name(f"{onnx_path.stem}-int8-{fingerprint[:12]}.onnx")


def ensure_quantized(onnx_path: Path, calibration: np.ndarray, runtime: str = "onnxruntime") -> Path:
    """Path of a valid cached int8 model of ``onnx_path`` for ``runtime``, quantizing first when needed."""
    import shutil

    from lookalike.embed.runtime import _exclusive, _write_atomic

    fingerprint = calibration_fingerprint(calibration)
    target = quantized_path(onnx_path, fingerprint, runtime)
    sidecar = target.with_suffix(".json")
    with _exclusive(target.with_suffix(".lock")):
        if _valid(target, sidecar, fingerprint):
            return target
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.stem}."))
        try:
            built = work / target.name
            (quantize_openvino if runtime == "openvino" else quantize_int8)(onnx_path, built, calibration)
            record = {"calibration_sha256": fingerprint, "format": QUANT_FORMAT, "source": onnx_path.name,
                      "images": int(len(calibration)), "model_sha256": model_sha256(built)}  # fmt: skip
            for part in sorted(model_files(built), key=lambda f: f.suffix == ".xml"):  # the .xml last
                os.replace(part, target.parent / part.name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _write_atomic(sidecar, json.dumps(record, indent=2))
    return target


def model_files(model: Path) -> list[Path]:
    """The files of a model: an ONNX file, or an OpenVINO ``.xml`` and its ``.bin``."""
    return [model, model.with_suffix(".bin")] if model.suffix == ".xml" else [model]


def model_sha256(model: Path) -> str:
    """Hex SHA-256 over every file of ``model`` (see :func:`model_files`)."""
    return hashlib.sha256("".join(weights_sha256(f) for f in model_files(model)).encode()).hexdigest()


def _valid(target: Path, sidecar: Path, fingerprint: str) -> bool:
    try:
        record = json.loads(sidecar.read_text("utf-8"))
        return bool(record.get("calibration_sha256") == fingerprint and record.get("model_sha256") == model_sha256(target))
    except (OSError, ValueError, AttributeError):
        return False


@contextmanager
def _quantizing(onnx_path: Path, calibration: np.ndarray) -> Iterator[tuple[Any, list[np.ndarray]]]:
    """NNCF and the calibration as single-image batches; the quantizer's own errors become one
    :class:`BackboneError` naming the model."""
    try:
        import nncf
    except ImportError as exc:
        raise MissingDependencyError("nncf", "int8 quantization", "pip install 'lookalike[openvino]'") from exc
    if len(calibration) == 0:
        raise BackboneError(f"{onnx_path.name}: int8 quantization needs at least one calibration image")
    try:
        yield nncf, [calibration[i : i + 1] for i in range(len(calibration))]
    except Exception as exc:  # the quantizer raises many types on graphs it cannot handle
        raise BackboneError(f"int8 quantization of {onnx_path.name} failed: {type(exc).__name__}: {exc}") from exc


def quantize_int8(onnx_path: Path, target: Path, calibration: np.ndarray) -> None:
    """Quantize ``onnx_path`` into a QDQ int8 ONNX model ``target`` with NNCF (post-training,
    ``MIXED`` preset: symmetric int8 weights, asymmetric activations, bias correction),
    calibrated on ``calibration`` ``(n, S, S, 3)`` uint8 images.

    Measured on Tux Paint (785 photos, EfficientNet-Lite0, ``benchmarks/precision_gate.py``):
    ONNX Runtime's own static quantization (min-max, per-channel, reduced range) gave vectors at
    median cosine 0.82 to fp32 and P@10 0.655 against 0.681; NNCF gives cosine 0.975 and 0.676.
    """
    with _quantizing(onnx_path, calibration) as (nncf, images):
        import onnx

        model = onnx.load(str(onnx_path))
        quantized = nncf.quantize(
            model, nncf.Dataset(images, lambda batch: {"images": batch}), subset_size=len(images),
            preset=nncf.QuantizationPreset.MIXED,
            ignored_scope=nncf.IgnoredScope(names=float_nodes(model), validate=False),
        )  # fmt: skip
        onnx.save(quantized, str(target))


def quantize_openvino(onnx_path: Path, target: Path, calibration: np.ndarray) -> None:
    """Quantize ``onnx_path`` into an int8 OpenVINO model ``target`` (``.xml`` + ``.bin``) with NNCF's
    OpenVINO backend (``MIXED`` preset, fast bias correction), calibrated on ``calibration``
    ``(n, S, S, 3)`` uint8 images. The first and last convolutions, every depthwise convolution
    and the classifier's ``MatMul`` stay float (run at bf16 where the CPU has it, see
    :class:`OpenVinoBackbone`); the pointwise convolutions, most of the work, run in int8.

    Chosen on Fashion-MNIST images 3000–5999 (not a gate set), EfficientNet-Lite2, by closeness
    to fp32 (cosine of the raw embeddings, mean / 5th percentile): every layer in int8 gave
    0.978 / 0.945, and the gate refused it (dogs vs cats NMI −0.038); the stem and head float
    0.989 / 0.976; with the depthwise convolutions float too 0.992 / 0.983, as close as bf16
    (0.992 / 0.981), at 261 images/s against bf16's 290 there. That recipe passed the gate (worst
    loss 0.009, Fashion-MNIST NMI; dogs vs cats NMI −0.002). 300 calibration images, full bias
    correction, quantile ranges or the ``PERFORMANCE`` preset were no better than this preset.
    """
    with _quantizing(onnx_path, calibration) as (nncf, images):
        import openvino as ov

        model = ov.convert_model(str(onnx_path))
        convolutions = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
        kept_float = nncf.IgnoredScope(
            names=[convolutions[0], convolutions[-1]] if convolutions else [],
            types=["MatMul", "GroupConvolution"],
            validate=False,
        )
        quantized = nncf.quantize(
            model, nncf.Dataset(images), subset_size=len(images), preset=nncf.QuantizationPreset.MIXED,
            ignored_scope=kept_float,
        )  # fmt: skip
        ov.save_model(quantized, str(target))


def float_nodes(model: Any) -> list[str]:
    """Names of the nodes that stay float: the one making ``embedding`` and everything after it."""
    producers = {output: node for node in model.graph.node for output in node.output}
    keep: set[str] = set()
    frontier = {"embedding"}
    while frontier:
        name = frontier.pop()
        for node in model.graph.node:
            if (name in node.output or name in node.input) and node.name not in keep:
                if name in node.input or producers.get(name) is node:
                    keep.add(node.name)
                    frontier.update(o for o in node.output if name in node.input)
    return sorted(keep)


def openvino_available() -> bool:
    """Whether the ``openvino`` package can be imported."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def float_precision(precision: str) -> str:
    """OpenVINO's precision for the float operations of a model run at ``precision``: bf16 for
    bf16, and for int8 where the CPU multiplies bf16 natively (the layers int8 keeps float, see
    :func:`quantize_openvino`); f32 otherwise."""
    from lookalike.config import cpu_flags
    from lookalike.embed.precision import runs_natively

    native = precision == "int8" and runs_natively("bf16", cpu_flags())
    return "bf16" if precision == "bf16" or native else "f32"


class OpenVinoBackbone(Backbone):
    """A backbone compiled by OpenVINO for the CPU, at the given inference precision.

    One infer request per calling thread, so several inference streams may call :meth:`embed`
    at once. With ``threads`` > 0 the model is compiled with one OpenVINO stream per
    ``threads``-thread caller that fits on the cores: with a single stream OpenVINO runs
    concurrent requests one after another (two 1-thread callers used one core: Lite0 bf16 263
    images/s, against 455 with two streams).
    """

    def __init__(self, spec: BackboneSpec, weights_sha: str, model_path: Path, precision: str, threads: int) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise MissingDependencyError("openvino", f"running {spec.name} at {precision}",
                                         "pip install 'lookalike[openvino]'") from exc  # fmt: skip
        self.spec = spec
        self.weights_sha256 = weights_sha
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": float_precision(precision)}
        if threads:  # callers of `threads` threads each, as many as fit on the cores, run at once
            streams = max(1, usable_cores() // threads)
            config.update({"NUM_STREAMS": streams, "INFERENCE_NUM_THREADS": streams * threads})
        else:
            config["PERFORMANCE_HINT"] = "LATENCY"
        try:
            self._compiled = ov.Core().compile_model(str(model_path), "CPU", config)
        except Exception as exc:  # openvino raises RuntimeError subclasses of its own
            raise BackboneError(f"{model_path}: OpenVINO cannot compile the model ({exc})") from exc
        self._outputs = {o.get_any_name(): o for o in self._compiled.outputs}
        self._local = threading.local()

    def _request(self) -> Any:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        return request

    def _run(self, names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        result = self._request().infer({"images": batch})
        return [np.array(result[self._outputs[name]], dtype=np.float32) for name in names]

    def _embed(self, batch: np.ndarray) -> np.ndarray:
        return self._run(["embedding"], batch)[0]

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        if not self.spec.has_classifier:
            return super()._logits(batch)
        return self._run(["logits"], batch)[0]

    def _embed_and_logits(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        embedding, logits = self._run(["embedding", "logits"], batch)
        return embedding, logits


def load_reduced(
    spec: BackboneSpec, onnx_path: Path, weights_sha: str, precision: str, *, threads: int,
    calibration: np.ndarray | None, runtime: str | None = None,
) -> Backbone:  # fmt: skip
    """The exported backbone at ``precision`` (``bf16`` or ``int8``) run by ``runtime`` (default:
    the gate table's choice for this backbone and precision)."""
    from lookalike.embed.precision import PRECISIONS, gate_results
    from lookalike.embed.runtime import OnnxBackbone, make_session

    if precision not in PRECISIONS:
        raise BackboneError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if runtime is None:
        row = gate_results(spec.name).get(precision)
        runtime = row.runtime if row else "openvino"

    model_path = onnx_path
    use_openvino = runtime == "openvino" and openvino_available()
    if precision == "int8":
        if calibration is None:
            raise BackboneError(f"{spec.name} at int8 needs a calibration batch of images")
        model_path = ensure_quantized(onnx_path, calibration, "openvino" if use_openvino else "onnxruntime")
    if precision == "bf16" or use_openvino:
        return OpenVinoBackbone(spec, weights_sha, model_path, precision, threads)
    return OnnxBackbone(spec, weights_sha, make_session(model_path, threads))

"""Numeric precision of a library's backbone: fp32, bf16 or int8, and the gate that admits them.

A reduced precision is judged by retrieval results, not by cosine parity: for each backbone,
``benchmarks/precision_gate.py`` indexes Fashion-MNIST, dogs vs cats and Tux Paint at fp32 and
at each reduced precision and records P@10 and K-Means NMI in the shipped table
``precision_gate.json``. A precision passes for a backbone when no score is more than
``tolerance`` (0.01) below fp32's; a failed or unmeasured precision is refused with a message
naming the scores.

``auto`` picks the fastest precision that passed, preferring what the table measured on a CPU
of the same class as this one (same flags among :data:`FEATURE_FLAGS`), where it must beat
fp32's speed; next, a precision this CPU runs natively though measured elsewhere: int8 needs
VNNI or AMX (``avx512_vnni``, ``avx_vnni``, ``amx_int8``), bf16 native bf16 (``avx512_bf16``,
``amx_bf16``). Otherwise (e.g. a CPU without VNNI or AMX) ``auto`` falls back to fp32.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lookalike.config import cpu_flags
from lookalike.errors import InvalidParameterError, PrecisionError

PRECISIONS = ("fp32", "bf16", "int8")
CHOICES = (*PRECISIONS, "auto")
DEFAULT_PRECISION = "fp32"
GATE_TABLE = "precision_gate.json"
FEATURE_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16", "amx_bf16")
"""The /proc/cpuinfo flags that decide which reduced precisions a CPU runs natively."""
NATIVE = {"int8": ("avx512_vnni", "avx_vnni", "amx_int8"), "bf16": ("avx512_bf16", "amx_bf16")}


@dataclass(frozen=True)
class GateResult:
    """One backbone × precision row of the gate table.

    Attributes
    ----------
    passed : no score more than the tolerance below fp32's.
    runtime : the runtime that runs it (``onnxruntime`` or ``openvino``).
    images_per_second : model-only speed measured with the table, on ``cpu_class``.
    cpu_class : sorted :data:`FEATURE_FLAGS` present on the measuring CPU, joined by ``+``
        (``"avx2"`` when none).
    worst_delta : the largest |score - fp32 score| over the data sets and measures.
    """

    backbone: str
    precision: str
    passed: bool
    runtime: str
    images_per_second: float
    cpu_class: str
    worst_delta: float


def cpu_class(flags: frozenset[str]) -> str:
    """The part of ``flags`` that matters to precisions, e.g. ``"amx_int8+avx512_vnni"`` or ``"avx2"``."""
    present = sorted(f for f in FEATURE_FLAGS if f in flags)
    return "+".join(present) or "avx2"


def runs_natively(precision: str, flags: frozenset[str]) -> bool:
    """Whether this CPU has instructions for ``precision`` (fp32: always)."""
    return precision == "fp32" or any(flag in flags for flag in NATIVE[precision])


@cache
def _table_text(path: str | None) -> str:
    if path is not None:
        return Path(path).read_text(encoding="utf-8")
    return resources.files("lookalike.embed").joinpath(GATE_TABLE).read_text(encoding="utf-8")


def gate_table(path: Path | None = None) -> dict[str, Any]:
    """The shipped gate table (or the one at ``path``) as a dict."""
    return dict(json.loads(_table_text(str(path) if path else None)))


def gate_results(backbone: str, table: dict[str, Any] | None = None) -> dict[str, GateResult]:
    """Gate rows of ``backbone`` by precision (empty when it was never measured)."""
    table = gate_table() if table is None else table
    rows = table.get("backbones", {}).get(backbone, {})
    return {
        precision: GateResult(
            backbone=backbone,
            precision=precision,
            passed=bool(row.get("passed", precision == "fp32")),
            runtime=str(row.get("runtime", "onnxruntime")),
            images_per_second=float(row.get("images_per_second", 0.0)),
            cpu_class=str(row.get("cpu_class", "")),
            worst_delta=float(row.get("worst_delta", 0.0)),
        )
        for precision, row in rows.items()
    }


def check_precision(backbone: str, precision: str, table: dict[str, Any] | None = None) -> None:
    """Refuse a reduced ``precision`` that did not pass its gate for ``backbone``.

    Raises
    ------
    InvalidParameterError : ``precision`` is not one of :data:`CHOICES`.
    PrecisionError : the gate table marks it failed, or has no result for it.
    """
    if precision not in CHOICES:
        raise InvalidParameterError(f"precision must be one of {', '.join(CHOICES)}, got {precision!r}")
    if precision in ("fp32", "auto"):
        return
    table = gate_table() if table is None else table
    result = gate_results(backbone, table).get(precision)
    tolerance = table.get("tolerance", 0.01)
    if result is None:
        raise PrecisionError(
            f"precision {precision} has no gate result for backbone {backbone!r} (measured: "
            f"{', '.join(sorted(table.get('backbones', {}))) or 'none'}); use --precision fp32, or measure it "
            "with `python benchmarks/precision_gate.py`"
        )
    if not result.passed:
        raise PrecisionError(
            f"precision {precision} is refused for backbone {backbone!r}: its retrieval scores (P@10, "
            f"K-Means NMI) fell by up to {result.worst_delta:.3f} below fp32's, over the tolerance of "
            f"{tolerance}; use --precision fp32 (or auto)"
        )


def resolve_precision(
    backbone: str, requested: str, flags: frozenset[str] | None = None, table: dict[str, Any] | None = None
) -> str:
    """The concrete precision a new library gets: ``requested``, checked, or what ``auto`` picks."""
    check_precision(backbone, requested, table)
    if requested != "auto":
        return requested
    flags = cpu_flags() if flags is None else flags
    here = cpu_class(flags)
    results = gate_results(backbone, table)
    fp32 = results.get("fp32")
    fp32_here = fp32.images_per_second if fp32 and fp32.cpu_class == here else 0.0
    best, best_rank = DEFAULT_PRECISION, (0, 0.0)
    for precision, result in results.items():
        if precision == "fp32" or not result.passed:
            continue
        if result.cpu_class == here and result.images_per_second > 0:
            # measured on this CPU class: chosen only when faster than fp32 there
            rank = (2, result.images_per_second) if result.images_per_second > fp32_here else (0, 0.0)
        elif runs_natively(precision, flags):
            rank = (1, result.images_per_second)  # native here, measured elsewhere
        else:
            continue
        if rank > best_rank:
            best, best_rank = precision, rank
    return best

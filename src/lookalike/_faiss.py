"""Lazy FAISS import, with the OpenBLAS kernel choice that makes it fast on this kind of CPU.

faiss-cpu bundles its own OpenBLAS, which may detect an unknown CPU and fall back to slow generic
kernels. OpenBLAS reads ``OPENBLAS_CORETYPE`` once, when the library loads, so it must be set
before the first ``import faiss`` in the process. The interfaces (CLI, benchmarks) call
:func:`prefer_fast_blas` at start-up; library code never writes the environment itself.
"""

from __future__ import annotations

import os
from types import ModuleType

from lookalike.errors import MissingDependencyError

FAST_CORETYPE = "Haswell"
"""AVX2 kernels: measured on this machine's AMD EPYC (see benchmarks/bench_cluster.py)."""


def prefer_fast_blas(environ: dict[str, str] | None = None) -> None:
    """Set ``OPENBLAS_CORETYPE`` and ``OMP_WAIT_POLICY`` unless the user chose them.

    Call before faiss (and scikit-learn) load. ``OMP_WAIT_POLICY=PASSIVE`` makes idle OpenMP
    threads sleep instead of spinning: when other processes share the cores, spinning threads
    made FAISS k-means and batch search 2.5-3x slower here (benchmarks/bench_cluster.py).
    """
    env = os.environ if environ is None else environ
    env.setdefault("OPENBLAS_CORETYPE", FAST_CORETYPE)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def import_faiss() -> ModuleType:
    """Return the faiss module, or raise MissingDependencyError naming the install command."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss is a hard dependency
        raise MissingDependencyError("faiss-cpu", "vector search and k-means") from exc
    return faiss

"""Lazy FAISS import, with the OpenBLAS kernel choice that makes it fast on this kind of CPU.

faiss-cpu bundles its own OpenBLAS, which may detect an unknown CPU and fall back to slow generic
kernels. OpenBLAS reads ``OPENBLAS_CORETYPE`` once, when the library loads, so it must be set
before the first ``import faiss`` in the process. The interfaces (CLI, benchmarks) call
:func:`prefer_fast_blas` at start-up; library code never writes the environment itself.
"""

from __future__ import annotations

import os
from types import ModuleType

from lookalike.config import cpu_flags
from lookalike.errors import MissingDependencyError

SKYLAKEX_FLAGS = frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl"})
"""The AVX-512 subsets OpenBLAS's ``SkylakeX`` kernels use."""
HASWELL_FLAGS = frozenset({"avx2", "fma"})


def fast_coretype(flags: frozenset[str] | None = None) -> str | None:
    """The OpenBLAS kernels to ask for on this CPU (None: leave the choice to OpenBLAS).

    ``SkylakeX`` (AVX-512) where the CPU has it, else ``Haswell`` (AVX2 + FMA), else None (a
    forced kernel the CPU lacks would stop the process on an illegal instruction). Measured with
    ``benchmarks/bench_cluster.py --sections blas``: on a 2-core AMD EPYC without AVX-512,
    Haswell's kernels were the fastest; on a 2-core Xeon with AVX-512 and AMX they were the slow
    ones: a float32 GEMM 100k × 256 by 256 × 300 took 80 ms against 61 ms with SkylakeX's,
    FAISS's exact nearest-centre search 99 against 81 ms, and k-means++'s skinny products 1.5x
    as long (``SapphireRapids`` made FAISS's bundled OpenBLAS 2.5x slower still).
    """
    flags = cpu_flags() if flags is None else flags
    if SKYLAKEX_FLAGS <= flags:
        return "SkylakeX"
    if HASWELL_FLAGS <= flags:
        return "Haswell"
    return None


def prefer_fast_blas(environ: dict[str, str] | None = None, flags: frozenset[str] | None = None) -> None:
    """Set ``OPENBLAS_CORETYPE`` (:func:`fast_coretype`) and ``OMP_WAIT_POLICY`` unless the user
    chose them.

    Call before faiss (and scikit-learn) load. ``OMP_WAIT_POLICY=PASSIVE`` makes idle OpenMP
    threads sleep instead of spinning: when other processes share the cores, spinning threads
    made FAISS k-means and batch search 2.5-3x slower here (benchmarks/bench_cluster.py).
    """
    env = os.environ if environ is None else environ
    coretype = fast_coretype(flags)
    if coretype is not None:
        env.setdefault("OPENBLAS_CORETYPE", coretype)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def import_faiss() -> ModuleType:
    """Return the faiss module, or raise MissingDependencyError naming the install command."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss is a hard dependency
        raise MissingDependencyError("faiss-cpu", "vector search and k-means") from exc
    return faiss

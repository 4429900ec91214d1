"""OpenBLAS kernels chosen from the CPU's flags, and the choice reaching the loaded libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lookalike._faiss import SKYLAKEX_FLAGS, fast_coretype, prefer_fast_blas
from lookalike.config import cpu_flags

AVX2 = frozenset({"sse4_2", "avx", "avx2", "fma"})


def test_kernels_follow_the_cpu_flags():
    assert fast_coretype(AVX2 | SKYLAKEX_FLAGS | {"amx_bf16"}) == "SkylakeX"
    assert fast_coretype(AVX2 | {"avx512f"}) == "Haswell"  # AVX-512 without BW/DQ/VL: not SkylakeX's
    assert fast_coretype(AVX2) == "Haswell"
    assert fast_coretype(frozenset({"sse4_2", "avx"})) is None  # forcing Haswell there would crash


def test_the_user_choice_is_kept_and_nothing_is_forced_on_an_old_cpu():
    env = {"OPENBLAS_CORETYPE": "Zen"}
    prefer_fast_blas(env, flags=AVX2 | SKYLAKEX_FLAGS)
    assert env == {"OPENBLAS_CORETYPE": "Zen", "OMP_WAIT_POLICY": "PASSIVE"}
    env = {}
    prefer_fast_blas(env, flags=frozenset({"sse4_2"}))
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}


PROBE = """
import json
from lookalike._faiss import prefer_fast_blas
prefer_fast_blas()
import faiss, numpy
from threadpoolctl import threadpool_info
print(json.dumps([i.get("architecture") for i in threadpool_info() if i.get("internal_api") == "openblas"]))
"""


@pytest.mark.skipif(fast_coretype() is None, reason="this CPU has neither AVX2 nor AVX-512")
def test_every_openblas_in_the_process_loads_the_chosen_kernels():
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENBLAS_CORETYPE"}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    kernels = json.loads(done.stdout.strip().splitlines()[-1])
    assert kernels and set(kernels) == {fast_coretype(cpu_flags())}

"""Strict JAX for the tests: silent broadcasting and dtype-promotion bugs become errors.

Rank promotion raises everywhere; float32 matmuls are full precision on every backend. Strict dtype promotion is on for wdjax's own
penalties and prox operators (the `strict_dtypes` fixture); it cannot be global because
optax itself is not strict-clean (`optax.adam`'s bias correction computes float ** int32).
"""

import gc
import os

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
# On GPUs XLA's default float32 matmul is TF32 (10-bit mantissa): tests that compare two
# programs (a sweep against a Python loop) at rtol 1e-5 need full float32 products there.
# No effect on CPU, where the default already is full precision.
jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture
def x64():
  """Runs a test with 64-bit floats (sklearn comparisons at 1e-5 and tighter)."""
  with jax.enable_x64(True):
    yield


@pytest.fixture
def strict_dtypes():
  """Runs a test under jax_numpy_dtype_promotion='strict'."""
  with jax.numpy_dtype_promotion("strict"):
    yield


# Every XLA:CPU executable maps its compiled kernels into memory one mapping at a time, and
# the suite compiles thousands of programs in one process: tests/test_path.py alone leaves
# ~35,000 mappings, and past Linux's default vm.max_map_count (65,530) LLVM's next
# allocation fails and the compiler segfaults (the CI run of 2026-11-29, twice, inside
# XLA's compile of whatever test came next). jax.clear_caches() and a collection release
# them (35,131 -> 1,883); done after a module that leaves many, so that modules below the
# mark keep sharing compiled programs.
_MAPS_MARK = 20_000


def _mappings():
  try:
    with open(f"/proc/{os.getpid()}/maps") as f:
      return sum(1 for _ in f)
  except OSError:   # (no /proc: not Linux, where the limit does not apply)
    return 0


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
  yield
  if _mappings() > _MAPS_MARK:
    jax.clear_caches()
    gc.collect()

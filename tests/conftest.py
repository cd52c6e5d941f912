"""Strict JAX for the tests: silent broadcasting and dtype-promotion bugs become errors.

Rank promotion raises everywhere; float32 matmuls are full precision on every backend. Strict dtype promotion is on for wdjax's own
penalties and prox operators (the `strict_dtypes` fixture); it cannot be global because
optax itself is not strict-clean (`optax.adam`'s bias correction computes float ** int32).
"""

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

"""Shared helpers of `wdjax.dynamics`: accumulation dtype, neuron axes, safe division."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp



def _acc(x: Any) -> jax.Array:
  # At least float32, so a bf16 leaf's norms and angles are not rounded to 3 digits.
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating) or jnp.finfo(x.dtype).bits < 32:
    return x.astype(jnp.float32)
  return x


def _axes(x: jax.Array, neuron_axis: int | None) -> tuple[int, ...]:
  """The axes reduced to get one value per neuron (all axes when `neuron_axis` is None)."""
  if neuron_axis is None:
    return tuple(range(x.ndim))
  if x.ndim == 0:
    raise ValueError("neuron_axis needs a leaf with at least one axis; got a scalar. Pass "
                     "neuron_axis=None for one value per leaf.")
  if not -x.ndim <= neuron_axis < x.ndim:
    raise ValueError(f"neuron_axis={neuron_axis} is out of range for a leaf of shape "
                     f"{x.shape}; Flax kernels (in, out) use -1, PyTorch's (out, in) 0.")
  k = neuron_axis % x.ndim
  return tuple(i for i in range(x.ndim) if i != k)


def _sq(x: jax.Array, axes: tuple[int, ...], keepdims: bool = False) -> jax.Array:
  return jnp.sum(jnp.square(x), axis=axes, keepdims=keepdims)


def _div(a: jax.Array, b: jax.Array) -> jax.Array:
  """a / b, with 0/0 = 0 and a/0 = inf for a > 0 (a zero leaf that moved moved infinitely
  far relative to its size; one that did not, did not)."""
  safe = jnp.where(b > 0, b, 1)
  return jnp.where(b > 0, a / safe, jnp.where(a > 0, jnp.inf, 0))


def _delta(before: Any, after: Any, update: Any) -> jax.Array:
  if update is not None:
    return _acc(update)
  if after is None:
    raise ValueError("pass the weights after the step (`after`) or the step (`update=`).")
  return _acc(after) - _acc(before)


# ---- norms and rotations ------------------------------------------------------------------

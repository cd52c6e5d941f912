"""Spectra and bounds of weight matrices: singular values, stable and effective rank, the
implicit ℓ∞ bound, distance to initialization, exact zeros."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from wdjax import _validate
from wdjax.dynamics._common import _acc, _div
from wdjax.dynamics.measures import relative_update, update_norm


def singular_values(w: Any) -> jax.Array:
  """The singular values σ₁ ≥ σ₂ ≥ ... of a matrix leaf (leading axes flattened).

  A Flax kernel (kh, kw, in, out) is read as the (kh·kw·in, out) matrix whose columns are
  the neurons, as `wdjax.penalties.nuclear` does.

  Args:
    w: a leaf with at least 2 axes.

  Returns:
    The singular values, descending (float32 for float32/bf16 leaves).

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.singular_values(jnp.array([[0.0, 2.0], [3.0, 0.0]]))
    Array([3., 2.], dtype=float32)
  """
  x = _acc(w)
  if x.ndim < 2:
    raise ValueError(f"spectra are defined on matrices; got a leaf of shape {x.shape}. "
                     "Select kernels only, e.g. with wdjax.masks.by_ndim(2).")
  return jnp.linalg.svd(x.reshape(-1, x.shape[-1]), compute_uv=False)


def spectral_norm(w: Any) -> jax.Array:
  """The spectral norm ‖W‖₂ = σ_max(W), the largest singular value.

  Args:
    w: a leaf with at least 2 axes (see `singular_values`).

  Returns:
    σ_max, a scalar.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.spectral_norm(jnp.array([[0.0, 2.0], [3.0, 0.0]]))
    Array(3., dtype=float32)
  """
  return singular_values(w)[0]


def stable_rank(w: Any) -> jax.Array:
  """The stable rank ‖W‖_F² / ‖W‖₂² = Σσᵢ²/σ₁², in [1, rank W] (0 for W = 0).

  A continuous proxy of the rank, insensitive to tiny singular values.

  Args:
    w: a leaf with at least 2 axes (see `singular_values`).

  Returns:
    The stable rank, a scalar.

  References:
    Rudelson & Vershynin, Sampling from large matrices: an approach through geometric
    functional analysis, 2007. https://arxiv.org/abs/math/0503442

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.stable_rank(jnp.diag(jnp.array([2.0, 1.0, 1.0])))   # (4 + 1 + 1)/4
    Array(1.5, dtype=float32)
  """
  s = singular_values(w)
  return _div(jnp.sum(jnp.square(s)), jnp.square(s[0]))


def effective_rank(w: Any) -> jax.Array:
  """The effective rank exp(H(p)), H(p) = −Σ pᵢ log pᵢ, pᵢ = σᵢ / Σⱼσⱼ (0 for W = 0).

  The exponential of the entropy of the normalized singular values: k for k equal
  non-zero singular values, between 1 and rank W in general (Roy & Vetterli 2007).

  Args:
    w: a leaf with at least 2 axes (see `singular_values`).

  Returns:
    The effective rank, a scalar.

  References:
    Roy & Vetterli, The effective rank: a measure of effective dimensionality, 2007
    (EUSIPCO). https://infoscience.epfl.ch/record/110188

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.effective_rank(jnp.diag(jnp.array([5.0, 5.0, 0.0])))
    Array(2., dtype=float32)
  """
  s = singular_values(w)
  total = jnp.sum(s)
  p = s / jnp.where(total > 0, total, 1)
  h = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1)), 0))
  return jnp.where(total > 0, jnp.exp(h), 0)


def linf_bound(w: Any, weight_decay: Any) -> jax.Array:
  """λ‖w‖∞, which AdamW's and Lion's implicit bias drives to at most 1.

  With decoupled decay of strength λ at learning rate η (w ← (1 − ηλ)w − η·u, the
  optax/PyTorch convention): Lion's step has |uᵢ| = 1, so |wᵢ'| ≤ (1 − ηλ)|wᵢ| + η and the
  box ‖w‖∞ ≤ 1/λ attracts and, once entered, is never left; Lion minimizes the loss subject
  to it (Chen et al. 2023). AdamW's step is not bounded by 1 coordinate-wise, but Xie & Li
  prove that if AdamW's iterates converge (with Σηₜ = ∞), the limit is a KKT point of
  min L(w) s.t. ‖w‖∞ ≤ 1/λ. A value above 1 late in training means the limit is not
  reached yet (or the decay is coupled: Adam + L2 has no such bound). For decay with
  c_t = 1 (`scale_by="constant"`) the bound is ‖w‖∞ ≤ η/λ: pass weight_decay=λ/η.

  Args:
    w: a leaf.
    weight_decay: λ (may be traced).

  Returns:
    λ‖w‖∞, a scalar.

  References:
    Xie & Li, Implicit Bias of AdamW: ℓ∞ Norm Constrained Optimization, 2024.
    https://arxiv.org/abs/2404.04454
    Chen et al, Lion Secretly Solves Constrained Optimization: As Lyapunov Predicts, 2023.
    https://arxiv.org/abs/2310.05898

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.linf_bound(jnp.array([0.5, -20.0, 3.0]), 0.05)
    Array(1., dtype=float32)
  """
  _validate.check_strength("weight_decay", weight_decay)
  x = _acc(w)
  return jnp.asarray(weight_decay, x.dtype) * jnp.max(jnp.abs(x))


def distance_to_init(init: Any, w: Any, *, neuron_axis: int | None = None,
                     relative: bool = False) -> jax.Array:
  """The distance from initialization ‖w − w₀‖, or ‖w − w₀‖/‖w₀‖ with `relative`.

  Args:
    init: the weights w₀ at initialization.
    w: the current weights.
    neuron_axis: None or the neurons' axis (-1 for Flax kernels).
    relative: divide by ‖w₀‖ (0/0 = 0, x/0 = inf).

  Returns:
    The distance: a scalar, or one value per neuron.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> w0 = jnp.array([3.0, 4.0])
    >>> dynamics.distance_to_init(w0, jnp.zeros(2))
    Array(5., dtype=float32)
    >>> dynamics.distance_to_init(w0, w0 / 2, relative=True)
    Array(0.5, dtype=float32)
  """
  if relative:
    return relative_update(init, w, neuron_axis=neuron_axis)
  return update_norm(init, w, neuron_axis=neuron_axis)


def zero_fraction(w: Any) -> jax.Array:
  """The fraction of exactly zero entries (what proximal L1 produces and decay does not).

  XLA flushes subnormal numbers to zero on CPU and GPU, so entries below the smallest
  normal number (1.2e-38 in float32) count as zeros, unlike in NumPy.

  Args:
    w: a leaf.

  Returns:
    #{i: wᵢ = 0} / size, a float32 scalar (0 for an empty leaf).

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.zero_fraction(jnp.array([0.0, 1e-30, -0.0, 2.0]))
    Array(0.5, dtype=float32)
  """
  x = jnp.asarray(w)
  if x.size == 0:
    return jnp.zeros((), jnp.float32)
  return jnp.mean((x == 0).astype(jnp.float32))


# ---- pytrees ------------------------------------------------------------------------------

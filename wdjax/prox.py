"""Proximal operators prox_{tR}(z) = argmin_w ½‖w − z‖² + t·R(w), pure functions.

Every operator has the signature `prox(z, strength, scaling=1.0, **options) -> z⁺` where `z`
is a pytree, `strength` is λ (scalar or per-leaf pytree, as in `wdjax.penalties`) and
`scaling` is t: a scalar, or — for the separable operators — a pytree of per-coordinate
arrays shaped like `z` (the step η/D of a diagonally preconditioned method). The closed
forms (DESIGN.md):

| prox        | prox_{tR}(z)                                         |
|-------------|------------------------------------------------------|
| l2          | z / (1 + tλ)                                         |
| l1          | sign(z)·max(|z| − tλ, 0)                             |
| elastic_net | soft(z, tλα) / (1 + tλ(1 − α))                       |
| group_lasso | max(0, 1 − tλ/‖z_g‖₂)·z_g per group                  |
| nuclear     | U·diag(max(σ − tλ, 0))·Vᵀ                            |
| frobenius   | z / (1 + tλ) on matrix leaves                        |

`op.separable` says whether an operator acts coordinate-wise, which a per-coordinate
`scaling` (e.g. `wdjax.proximal_adam`) needs.

Complex leaves: every operator acts on the modulus and keeps the phase, because each R
depends on w only through |w| (DESIGN.md's R with |w|² = Re(w̄w)): the complex
soft-threshold is z·max(0, 1 − tλ/|z|), the group norm is √Σ|z|², the nuclear prox
thresholds the (real) singular values of the complex matrix. The threshold tλ is real, in
the leaf's real dtype.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from wdjax import _validate
from wdjax.penalties import (INJECT_HINT, _check_ratio, _is_scalar, abs_sq, as_matrix,
                             group_axes, real_dtype)

Prox = Callable[..., Any]


def _map(z: Any, strength: Any, scaling: Any, fn: Callable, *, name: str, separable: bool) -> Any:
  if strength is None:
    raise TypeError(f"prox.{name} called without a strength. If this happened in "
                    f"optax.inject_hyperparams: {INJECT_HINT}.")
  leaves, treedef = jax.tree.flatten(z)
  strengths = _per_leaf(strength, z, "strength")
  scalings = _per_leaf(scaling, z, "scaling", allow_arrays=True)
  out = []
  for x, lam, t in zip(leaves, strengths, scalings):
    if not separable and not _is_scalar(t):
      raise ValueError(
          f"prox.{name} is not separable, so it needs one scalar `scaling` per leaf; got an "
          f"array of shape {jnp.shape(t)}. Under a diagonal preconditioner (proximal_adam) "
          "use a separable prox (l1, l2, elastic_net), or apply this prox after "
          "optax.sgd with wdjax.proximal.")
    rdt = real_dtype(x.dtype)  # tλ is real, in the leaf's (real) precision
    thr = jnp.asarray(t, rdt) * jnp.asarray(lam, rdt)
    out.append(fn(x, thr))
  return jax.tree.unflatten(treedef, out)


def _per_leaf(value: Any, z: Any, name: str, allow_arrays: bool = False) -> list[Any]:
  n = len(jax.tree.leaves(z))
  if _is_scalar(value):
    _validate.check_strength(name, value)
    return [value] * n
  if jax.tree.structure(value) != jax.tree.structure(z):
    raise ValueError(f"`{name}` must be a scalar or a pytree with the structure of z "
                     f"({n} leaves); got {len(jax.tree.leaves(value))} leaves.")
  vals = jax.tree.leaves(value)
  for v, x in zip(vals, jax.tree.leaves(z)):
    _validate.check_strength(name, v)
    if not allow_arrays and not _is_scalar(v):
      raise ValueError(f"`{name}` leaves must be scalars, got shape {jnp.shape(v)}.")
    if allow_arrays and not _is_scalar(v) and jnp.shape(v) != jnp.shape(x):
      raise ValueError(f"per-coordinate `{name}` has shape {jnp.shape(v)}, its leaf "
                       f"{jnp.shape(x)}; they must match.")
  return vals


def _times(x: jax.Array, s: jax.Array) -> jax.Array:
  """x·s for a real factor s, in x's dtype (complex x: the phase is kept)."""
  return x * s.astype(x.dtype)


def _div(x: jax.Array, d: jax.Array) -> jax.Array:
  """x/d for a real divisor d, in x's dtype."""
  return x / d.astype(x.dtype)


def _soft(x: jax.Array, thr: jax.Array) -> jax.Array:
  if jnp.iscomplexobj(x):
    # complex soft-threshold on the modulus: z·max(0, 1 − thr/|z|) (0 at z = 0)
    r = jnp.abs(x)
    return _times(x, jnp.maximum(0, 1 - thr / jnp.where(r > 0, r, 1)))
  # x − clip(x, −thr, thr) is sign(x)·max(|x| − thr, 0) with the same rounding (exact
  # zeros inside [−thr, thr], x ∓ thr outside) in 3 elementwise ops instead of 5; the
  # soft-threshold is compute-bound on CPU, where this makes proximal SGD ~20% faster
  # (benchmarks/bench_core.py). Only the sign of a zero differs: always +0.0.
  return x - jnp.clip(x, -thr, thr)


def _separable(fn: Prox) -> Prox:
  fn.separable = True
  return fn


def _grouped(fn: Prox) -> Prox:
  fn.separable = False
  return fn


@_separable
def l2(z: Any, strength: Any = None, scaling: Any = 1.0) -> Any:
  """Prox of (λ/2)‖w‖²: z / (1 + tλ).

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import prox
    >>> prox.l2(jnp.array([2.0, -4.0]), 1.0, 0.5)
    Array([ 1.3333334, -2.6666667], dtype=float32)
  """
  return _map(z, strength, scaling, lambda x, thr: _div(x, 1 + thr), name="l2", separable=True)


@_separable
def l1(z: Any, strength: Any = None, scaling: Any = 1.0) -> Any:
  """Prox of λ‖w‖₁ (soft-thresholding): sign(z)·max(|z| − tλ, 0); exact zeros below tλ.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import prox
    >>> prox.l1(jnp.array([0.3, -2.0, 1.0]), 1.0, 0.5)
    Array([ 0. , -1.5,  0.5], dtype=float32)
  """
  return _map(z, strength, scaling, _soft, name="l1", separable=True)


@_separable
def elastic_net(z: Any, strength: Any = None, scaling: Any = 1.0, l1_ratio: float = 0.5) -> Any:
  """Prox of λ(α‖w‖₁ + (1−α)/2‖w‖²): soft(z, tλα) / (1 + tλ(1 − α)), α = `l1_ratio`.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import prox
    >>> prox.elastic_net(jnp.array([2.0, 0.2]), 1.0, 1.0, l1_ratio=0.5)
    Array([1., 0.], dtype=float32)
  """
  _check_ratio(l1_ratio)
  a = l1_ratio
  return _map(z, strength, scaling,
              lambda x, thr: _div(_soft(x, thr * a), 1 + thr * (1 - a)),
              name="elastic_net", separable=True)


@_grouped
def group_lasso(z: Any, strength: Any = None, scaling: Any = 1.0, group_axis: int = -1) -> Any:
  """Prox of λΣ_g‖w_g‖₂ (block soft-thresholding): max(0, 1 − tλ/‖z_g‖₂)·z_g.

  Groups are the slices along `group_axis` (see `wdjax.penalties.group_lasso`).

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import prox
    >>> prox.group_lasso(jnp.array([[3.0, 0.3], [4.0, 0.4]]), 1.0, 1.0)  # norms 5, 0.5
    Array([[2.4, 0. ],
           [3.2, 0. ]], dtype=float32)
  """
  def fn(x, thr):
    axes = group_axes(x, group_axis)
    n = jnp.sqrt(jnp.sum(abs_sq(x), axis=axes, keepdims=True))
    return _times(x, jnp.maximum(0, 1 - thr / jnp.where(n > 0, n, 1)))
  return _map(z, strength, scaling, fn, name="group_lasso", separable=False)


@_grouped
def nuclear(z: Any, strength: Any = None, scaling: Any = 1.0) -> Any:
  """Prox of λ‖W‖_*: singular values soft-thresholded, U·diag(max(σ − tλ, 0))·Vᵀ.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import prox
    >>> prox.nuclear(jnp.diag(jnp.array([3.0, 0.5])), 1.0, 1.0)
    Array([[2., 0.],
           [0., 0.]], dtype=float32)
  """
  def fn(x, thr):
    m = as_matrix(x, "prox.nuclear")
    if jnp.finfo(m.dtype).bits < 32:  # no low-precision SVD; compute in float32
      m, thr = m.astype(jnp.float32), thr.astype(jnp.float32)
    u, s, vt = jnp.linalg.svd(m, full_matrices=False)
    return (_times(u, jnp.maximum(s - thr, 0)[None, :]) @ vt).reshape(x.shape).astype(x.dtype)
  return _map(z, strength, scaling, fn, name="nuclear", separable=False)


@_separable
def frobenius(z: Any, strength: Any = None, scaling: Any = 1.0) -> Any:
  """Prox of (λ/2)‖W‖_F² on matrix leaves: z / (1 + tλ) (identical to `l2`)."""
  def fn(x, thr):
    as_matrix(x, "prox.frobenius")
    return _div(x, 1 + thr)
  return _map(z, strength, scaling, fn, name="frobenius", separable=True)


#: The operators by name (the names configs and `wdjax.optimizers` use).
BY_NAME: dict[str, Prox] = {"l2": l2, "l1": l1, "elastic_net": elastic_net,
                            "group_lasso": group_lasso, "nuclear": nuclear,
                            "frobenius": frobenius}


def by_name(name: str | Prox) -> Prox:
  """The operator called `name` (a callable is returned as is).

  Example:
    >>> from wdjax import prox
    >>> prox.by_name("l1") is prox.l1
    True
  """
  return _validate.by_name(name, BY_NAME, "prox",
                           "an operator (z, strength, scaling) -> z⁺")

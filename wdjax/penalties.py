"""Penalty values R(w): pure functions of a params pytree and a strength.

Every function here has the signature `penalty(params, strength, **options) -> scalar`.
`strength` is λ, a scalar (Python number or traced array, so `jax.vmap`/`jax.grad` over λ
work) or a pytree of scalars with the structure of `params` (one λ per leaf). `params` is
any pytree of floating-point arrays; to penalize only some leaves, pass
`wdjax.masks.select(mask, params)`. Conventions are those of DESIGN.md:

| penalty     | R(w)                                      |
|-------------|-------------------------------------------|
| l2          | (λ/2) ‖w‖²                                |
| l1          | λ ‖w‖₁                                    |
| elastic_net | λ (α ‖w‖₁ + (1 − α)/2 ‖w‖²)  (sklearn)    |
| group_lasso | λ Σ_g ‖w_g‖₂, groups along `group_axis`   |
| nuclear     | λ ‖W‖_* (sum of singular values)          |
| frobenius   | (λ/2) ‖W‖_F² (L2 on matrices)             |

The gradients are the ones `wdjax.coupled` adds: for l1 the subgradient sign(w) (0 at 0),
for group lasso 0 on an all-zero group.

Complex leaves (optax supports complex parameters): every R(w) is real, computed with the
modulus, |w|² = Re(w̄·w) and |w| = √|w|². The gradient `wdjax.coupled` adds is the one of
the real inner product ⟨a, b⟩ = Re Σ āb, i.e. conj(jax.grad(R)) (JAX returns the
conjugate of that direction for a complex input; optax's complex convention, too, feeds
conj(jax.grad(loss)) as the update): for l2 it is λw, for l1 λ·w/|w|.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from wdjax import _validate

Penalty = Callable[..., jax.Array]


INJECT_HINT = (
    "optax.inject_hyperparams takes every function argument for a schedule and calls it "
    "with the step count: pass penalties, prox operators and masks by name "
    "(penalty='l2', prox='l1', mask='weights_only'), as a pytree of bools (masks), or list "
    "them in static_args=(...)")


def _leaves_and_strengths(params: Any, strength: Any) -> list[tuple[jax.Array, Any]]:
  if strength is None:
    raise TypeError(f"penalty called without a strength. If this happened in "
                    f"optax.inject_hyperparams: {INJECT_HINT}.")
  leaves = jax.tree.leaves(params)
  if _is_scalar(strength):
    _validate.check_strength("strength", strength)
    return [(x, strength) for x in leaves]
  s_leaves = jax.tree.leaves(strength)
  if jax.tree.structure(strength) != jax.tree.structure(params):
    raise ValueError(
        f"strength must be a scalar or a pytree with the structure of params; got a pytree "
        f"with {len(s_leaves)} leaves for params with {len(leaves)}. Pass one λ, or build a "
        "per-leaf strength with jax.tree.map(lambda _: lam, params)."
    )
  for s in s_leaves:
    _validate.check_strength("strength", s)
  return list(zip(leaves, s_leaves))


def _is_scalar(x: Any) -> bool:
  return isinstance(x, (int, float)) or (hasattr(x, "shape") and x.shape == ())


def abs_sq(x: jax.Array) -> jax.Array:
  """|x|², real for complex `x` (Re(x̄x) = Re(x)² + Im(x)²), x² otherwise."""
  if jnp.iscomplexobj(x):
    return jnp.square(jnp.real(x)) + jnp.square(jnp.imag(x))
  return jnp.square(x)


def real_dtype(dtype: Any) -> Any:
  """The real dtype of `dtype`'s precision (float32 for complex64; floats unchanged)."""
  return jnp.finfo(dtype).dtype


def _acc(x: jax.Array) -> jax.Array:
  # Sum in at least float32 so a bf16 model's penalty is not rounded away.
  return x if jnp.finfo(x.dtype).bits >= 32 else x.astype(jnp.float32)


def _total(terms: list[tuple[jax.Array, Any]], fn: Callable[[jax.Array], jax.Array]) -> jax.Array:
  out = []
  for x, s in terms:
    v = fn(_acc(x))
    out.append(jnp.asarray(s, v.dtype) * v)
  if not out:
    return jnp.zeros((), jnp.float32)
  return sum(out[1:], out[0])


@jax.custom_jvp
def _abs(x: jax.Array) -> jax.Array:
  return jnp.abs(x)


@_abs.defjvp
def _abs_jvp(primals, tangents):
  # jax.grad(jnp.abs)(0.) is 1; the minimum-norm subgradient at 0 is 0. For complex x
  # the tangent of |x| is Re(conj(sign x)·t) (sign x = x/|x|, 0 at 0).
  (x,), (t,) = primals, tangents
  if jnp.iscomplexobj(x):
    return jnp.abs(x), jnp.real(jnp.conj(jnp.sign(x)) * t)
  return jnp.abs(x), jnp.sign(x) * t


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _norm(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
  return jnp.sqrt(jnp.sum(abs_sq(x), axis=axes))


@_norm.defjvp
def _norm_jvp(axes, primals, tangents):
  # ‖·‖₂ is not differentiable at 0; use the minimum-norm subgradient 0 there, not NaN.
  (x,), (t,) = primals, tangents
  n = _norm(x, axes)
  safe = jnp.where(n > 0, n, 1.0)
  inner = jnp.real(jnp.conj(x) * t) if jnp.iscomplexobj(x) else x * t  # Re⟨x, t⟩
  return n, jnp.where(n > 0, jnp.sum(inner, axis=axes) / safe, 0.0)


def l2(params: Any, strength: Any = None) -> jax.Array:
  """Ridge penalty R(w) = (λ/2) ‖w‖².

  Its gradient is λw, so coupled into plain SGD it shrinks w by (1 − ηλ) each step.

  Args:
    params: pytree of floating-point arrays.
    strength: λ >= 0, a scalar or a per-leaf pytree.

  Returns:
    The scalar penalty.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import penalties
    >>> float(penalties.l2({"w": jnp.array([3.0, 4.0])}, 0.1))
    1.25
  """
  return _total(_leaves_and_strengths(params, strength), lambda x: 0.5 * jnp.sum(abs_sq(x)))


def l1(params: Any, strength: Any = None) -> jax.Array:
  """Lasso penalty R(w) = λ ‖w‖₁.

  Its gradient (used by `wdjax.coupled`) is the subgradient λ·sign(w), with 0 at w = 0.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import penalties
    >>> round(float(penalties.l1({"w": jnp.array([3.0, -4.0])}, 0.1)), 6)
    0.7
  """
  return _total(_leaves_and_strengths(params, strength), lambda x: jnp.sum(_abs(x)))


def elastic_net(params: Any, strength: Any = None, l1_ratio: float = 0.5) -> jax.Array:
  """Elastic net R(w) = λ (α ‖w‖₁ + (1 − α)/2 ‖w‖²), α = `l1_ratio` (sklearn/glmnet).

  α = 1 is `l1`, α = 0 is `l2`.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import penalties
    >>> round(float(penalties.elastic_net({"w": jnp.array([3.0, -4.0])}, 0.1, l1_ratio=0.5)), 6)
    0.975
  """
  _check_ratio(l1_ratio)
  a = l1_ratio
  return _total(_leaves_and_strengths(params, strength),
                lambda x: a * jnp.sum(_abs(x)) + (1 - a) * 0.5 * jnp.sum(abs_sq(x)))


def _check_ratio(l1_ratio: Any) -> None:
  if _validate.is_concrete(l1_ratio) and not 0.0 <= float(l1_ratio) <= 1.0:
    raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio}.")


def group_axes(x: jax.Array, group_axis: int) -> tuple[int, ...]:
  """The axes a group norm reduces over: all but `group_axis` (one group per index on it)."""
  if x.ndim == 0:
    return ()
  ax = group_axis % x.ndim
  return tuple(i for i in range(x.ndim) if i != ax)


def group_lasso(params: Any, strength: Any = None, group_axis: int = -1) -> jax.Array:
  """Group lasso R(w) = λ Σ_g ‖w_g‖₂, one group per index along `group_axis` of each leaf.

  For a Dense kernel of shape (in, out), `group_axis=-1` makes one group per output unit
  (a column); driving a group to zero removes that unit. A 1-D leaf has one group per
  element (the lasso). No √(group size) weighting is applied.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import penalties
    >>> w = jnp.array([[3.0, 0.0], [4.0, 1.0]])  # column norms 5 and 1
    >>> float(penalties.group_lasso({"kernel": w}, 0.5))
    3.0
  """
  return _total(_leaves_and_strengths(params, strength),
                lambda x: jnp.sum(_norm(x, group_axes(x, group_axis))))


def as_matrix(x: jax.Array, what: str) -> jax.Array:
  """`x` as a matrix (leading axes flattened); error on 0-D and 1-D leaves."""
  if x.ndim < 2:
    raise ValueError(f"{what} is defined on matrices; got a leaf of shape {x.shape}. "
                     "Exclude vectors with a mask such as wdjax.masks.by_ndim(2).")
  return x.reshape(-1, x.shape[-1])


def nuclear(params: Any, strength: Any = None) -> jax.Array:
  """Nuclear norm R(W) = λ ‖W‖_* = λ Σ σ_i(W), summed over matrix leaves.

  Leaves with more than two axes are flattened to (prod(leading), last).

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import penalties
    >>> float(penalties.nuclear({"kernel": jnp.diag(jnp.array([3.0, 1.0]))}, 0.5))
    2.0
  """
  return _total(_leaves_and_strengths(params, strength),
                lambda x: jnp.sum(jnp.linalg.svd(as_matrix(x, "nuclear"), compute_uv=False)))


def frobenius(params: Any, strength: Any = None) -> jax.Array:
  """Squared Frobenius penalty R(W) = (λ/2) ‖W‖_F² over matrix leaves: L2 on a kernel.

  ‖W‖_F² = Σ_ij W_ij² = ‖vec W‖², so this is `l2` restricted to matrices (D2L's exercise).

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import penalties
    >>> float(penalties.frobenius({"kernel": jnp.ones((2, 2))}, 1.0))
    2.0
  """
  return _total(_leaves_and_strengths(params, strength),
                lambda x: 0.5 * jnp.sum(abs_sq(as_matrix(x, "frobenius"))))


#: The penalties by name (the names configs and `wdjax.optimizers` use).
BY_NAME: dict[str, Penalty] = {"l2": l2, "l1": l1, "elastic_net": elastic_net,
                               "group_lasso": group_lasso, "nuclear": nuclear,
                               "frobenius": frobenius}


def by_name(name: str | Penalty) -> Penalty:
  """The penalty called `name` (a callable is returned as is).

  Example:
    >>> from wdjax import penalties
    >>> penalties.by_name("l2") is penalties.l2
    True
  """
  return _validate.by_name(name, BY_NAME, "penalty", "a function (params, strength) -> R")

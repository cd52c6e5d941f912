"""Optax gradient transformations that put a penalty into an update.

Optax applies `params ← params + u`. With g the gradient, η_t the learning rate at step t
and s_t = η_t/η_peak the schedule multiplier, a penalty R enters in one of three places:

- `coupled`: before the optimizer, g ← g + ∇R(w) (torch `SGD/Adam(weight_decay=λ)` for l2).
- `decoupled`: after the whole optimizer, u ← u − c_t·λ·w with c_t named by `scale_by`:
  "lr" (c_t = η_t; torch/optax AdamW), "schedule" (c_t = s_t; Loshchilov & Hutter's
  AdamW/SGDW) or "constant" (c_t = 1).
- `proximal`: after the whole optimizer, w⁺ = prox_{η_t·R}(w + u), u ← w⁺ − w (exact zeros
  for l1). `wdjax.proximal_adam` is the preconditioned form for Adam.

Every numeric argument may be a float, an array (traced, so `jax.vmap` over λ compiles
once), a schedule `count -> value`, or one value per leaf: a pytree with the params'
structure or `wdjax.per_group(...)` (`wdjax.leafwise`). Every transform takes a `mask`
(default "weights_only", i.e. `wdjax.masks.weights_only`; None for every leaf); leaves
outside it pass through untouched. Complex leaves use the real inner product
(`wdjax.penalties`, `wdjax.prox`).

Inside optax's wrappers: every transform is an `optax.GradientTransformationExtraArgs`
(`update(..., **extra)` is accepted and ignored). Under `optax.inject_hyperparams`, which
takes every function argument for a schedule, the defaults are names ("weights_only",
"l1"), so `optax.inject_hyperparams(wdjax.adamw)(learning_rate=η, weight_decay=λ)` needs no
`static_args`; a custom mask is passed as a pytree of bools, or a function listed in
`static_args=("mask",)` (optax's own rule for callables that are not schedules).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wdjax import _validate, masks
from wdjax import penalties as _penalties
from wdjax import prox as _prox
from wdjax._validate import ScalarOrSchedule
from wdjax.leafwise import (PerLeaf, _real, check_values, has_schedule, is_single,
                             leaf_values)

SCALE_BY = ("lr", "schedule", "constant")
#: Masks by name: the form `optax.inject_hyperparams` passes through as a static option.
MASK_NAMES: dict[str, Any] = {"weights_only": masks.weights_only, "everything": None}
DEFAULT_MASK = "weights_only"


class CountState(NamedTuple):
  """Number of updates applied so far, the argument of scheduled hyperparameters."""
  count: jax.Array


def as_mask(mask: Any) -> masks.Mask | None:
  """A mask option as `wdjax.masks` takes it: a name is looked up in `MASK_NAMES`."""
  if isinstance(mask, str):
    if mask not in MASK_NAMES:
      raise ValueError(f"unknown mask name {mask!r}; use one of {sorted(MASK_NAMES)}, a "
                       "pytree of bools or a function params -> pytree of bools.")
    return MASK_NAMES[mask]
  return mask


def resolve_mask(mask: Any, params: Any, *, allow_empty: bool = False) -> list[bool]:
  """`masks.resolve` for a mask option (a name, None, a pytree of bools or a function)."""
  mask = as_mask(mask)
  if isinstance(mask, (bool, np.bool_, jax.Array)) and len(jax.tree.leaves(params)) != 1:
    raise ValueError(f"mask is the single value {mask!r} for params with "
                     f"{len(jax.tree.leaves(params))} leaves (use mask=None for every leaf). "
                     f"If the mask was a function: {_penalties.INJECT_HINT}.")
  return masks.resolve(mask, params, allow_empty=allow_empty)


def check_init(mask: Any, params: Any, strength: Any = None) -> None:
  """At init, not at the first step: the mask fits the params, selects something unless
  the transform's `strength` is concretely 0 (`is_off`), and the leaves it decays are
  floating point (an integer leaf would be decayed in integer arithmetic, silently). The
  mask is resolved on the params as given, so that NNX's variable types (batch statistics,
  RNG state) are still there to be refused; a `per_group` strength is resolved too (a
  rule that selects nothing is named now, not at a step)."""
  bools = resolve_mask(mask, params, allow_empty=is_off(strength))
  _validate.check_float_leaves(masks.unwrap(params), which=bools)
  if isinstance(strength, PerLeaf):
    strength.resolve(params)


def is_off(strength: Any) -> bool:
  """True when λ is concretely 0 everywhere (a Python or NumPy zero, not a schedule or a
  traced value): a mask that selects nothing is then no mistake (a preset's default λ on
  bias-only fine-tuning, a bias partition of `optax.multi_transform`)."""
  return (isinstance(strength, (int, float, np.ndarray, np.generic, jax.Array))
          and not isinstance(strength, (bool, jax.core.Tracer))
          and bool(np.all(np.asarray(strength) == 0)))


def _init_count(mask: Any, strength: Any = None) -> Callable[[Any], CountState]:
  def init_fn(params):
    check_init(mask, params, strength)
    return CountState(count=jnp.zeros([], jnp.int32))
  return init_fn


def _need_params(name: str, params: Any) -> Any:
  if params is None:
    raise ValueError(
        f"wdjax.{name} needs the current params: call tx.update(grads, state, params).")
  return masks.unwrap(params)


def _map_masked(fn: Callable[..., list], updates: Any, params: Any, mask: Any,
                *per_leaf: list) -> Any:
  """Applies `fn(update_leaves, param_leaves, *per_leaf) -> new_update_leaves` to the masked
  leaves; each of `per_leaf` is a list with one entry per param leaf, filtered alike. (A
  mask that selects nothing is refused at init, where λ is known, not here, where it may
  be traced.)"""
  bools = resolve_mask(mask, params, allow_empty=True)
  u_leaves, treedef = jax.tree.flatten(updates)
  p_leaves = jax.tree.leaves(params)
  if len(u_leaves) != len(p_leaves):
    raise ValueError(f"updates have {len(u_leaves)} leaves but params {len(p_leaves)}; "
                     "pass the params the updates belong to.")
  idx = [i for i, b in enumerate(bools) if b]
  new = fn([u_leaves[i] for i in idx], [p_leaves[i] for i in idx],
           *([extra[i] for i in idx] for extra in per_leaf))
  out = list(u_leaves)
  for i, v in zip(idx, new):
    out[i] = v.astype(u_leaves[i].dtype)
  return jax.tree.unflatten(treedef, out)


def mark_decay(tx: optax.GradientTransformationExtraArgs,
               name: str) -> optax.GradientTransformationExtraArgs:
  """Tags `tx` as a wdjax decay (on its update function; a transform is a NamedTuple), so
  that `wdjax.chain` can name it when a base optimizer also decays."""
  tx.update.wdjax_decay = name
  return tx


def _collapse(values: list[Any]) -> Any:
  """One value when every leaf has the same (the common case: a penalty or prox written
  for a scalar λ keeps working), else the list, one per leaf."""
  return values[0] if values and all(v is values[0] for v in values) else values


def _conj_if_complex(g: jax.Array) -> jax.Array:
  # jax.grad of a real R at a complex w is conj(∇R) in the real inner product (JAX's
  # convention); the update direction optax adds is ∇R itself (for ½|w|²: w).
  return jnp.conj(g) if jnp.iscomplexobj(g) else g


def coupled(penalty: _penalties.Penalty | str, strength: ScalarOrSchedule, *,
            mask: Any = DEFAULT_MASK) -> optax.GradientTransformationExtraArgs:
  """Adds the penalty's gradient to the gradient: g ← g + ∇R(w). Place before the optimizer.

  With `penalty=wdjax.penalties.l2` this is L2 regularization as in
  `torch.optim.SGD(weight_decay=λ)` and `torch.optim.Adam(weight_decay=λ)`: the term λw
  then goes through the optimizer (and Adam's preconditioner, which is why Adam+L2 is not
  AdamW). With plain SGD it equals `decoupled(η·λ, scale_by="constant")` after the step.

  For `penalties.l1` the subgradient λ·sign(w) is added. It never yields exact zeros: a
  weight near 0 is pushed by ±ηλ and overshoots, oscillating around 0 with amplitude ~ηλ,
  and it lands on 0.0 exactly only by floating-point accident. Use `proximal` for sparsity.

  On a complex leaf ∇R is the gradient in the real inner product Re⟨a, b⟩: λw for l2,
  λ·w/|w| for l1 (conj of what `jax.grad` returns, optax's convention for updates).

  Args:
    penalty: a function `(params, strength) -> R`, e.g. `wdjax.penalties.l2`, or its name.
    strength: λ >= 0: a float, an array, a schedule, or one per leaf (`wdjax.per_group`).
    mask: which leaves to penalize (default "weights_only": not biases or norms).

  Returns:
    An `optax.GradientTransformationExtraArgs`.

  Example:
    >>> import jax.numpy as jnp, optax, wdjax
    >>> tx = optax.chain(wdjax.coupled("l2", 0.1, mask=None), optax.sgd(1.0))
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": jnp.zeros(2)}, state, params)
    >>> updates["w"]
    Array([-0.1,  0.2], dtype=float32)
  """
  penalty = _penalties.by_name(penalty)
  check_values("strength", strength)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    params = _need_params("coupled", params)
    lams = leaf_values(strength, params, state.count, "strength")

    def add_grad(u, w, lam):
      lam = _collapse(lam)
      g = jax.grad(lambda ws: penalty(ws, lam))(w)
      return [ui + _conj_if_complex(gi).astype(ui.dtype) for ui, gi in zip(u, g)]

    updates = _map_masked(add_grad, updates, params, mask, lams)
    return updates, CountState(count=optax.safe_increment(state.count))

  return mark_decay(optax.GradientTransformationExtraArgs(_init_count(mask, strength), update_fn),
                    f"wdjax.coupled({getattr(penalty, '__name__', 'penalty')})")


def check_decay_scale(scale_by: str, learning_rate: Any, peak_learning_rate: Any) -> None:
  """Checks the arguments that name c_t, shared by `decoupled` and the decay variants."""
  if scale_by not in SCALE_BY:
    raise ValueError(f"scale_by must be one of {SCALE_BY}, got {scale_by!r}: 'lr' for "
                     "PyTorch/optax AdamW, 'schedule' for Loshchilov & Hutter, 'constant' "
                     "for a fixed per-step shrink.")
  if scale_by != "constant":
    if learning_rate is None:
      raise ValueError(f"scale_by={scale_by!r} needs learning_rate= (the optimizer's η or "
                       "schedule); use scale_by='constant' to decay without it.")
    check_values("learning_rate", learning_rate, positive=True)
  if scale_by == "schedule" and peak_learning_rate is None and has_schedule(learning_rate):
    raise ValueError("scale_by='schedule' with a learning-rate schedule needs "
                     "peak_learning_rate= (η_peak, so that c_t = η_t/η_peak).")
  if peak_learning_rate is not None:
    check_values("peak_learning_rate", peak_learning_rate, positive=True)


def decoupled(strength: ScalarOrSchedule, *, learning_rate: ScalarOrSchedule | None = None,
              scale_by: str = "lr", peak_learning_rate: float | None = None,
              mask: Any = DEFAULT_MASK) -> optax.GradientTransformationExtraArgs:
  """Decoupled weight decay after the whole optimizer: u ← u − c_t·λ·w.

  The coefficient c_t is named by `scale_by`:

  - "lr": c_t = η_t. `chain(optax.adam(η), decoupled(λ, learning_rate=η))` is
    `optax.adamw(η, weight_decay=λ)` and `torch.optim.AdamW(lr=η, weight_decay=λ)`.
  - "schedule": c_t = η_t/η_peak, the schedule multiplier of Loshchilov & Hutter's AdamW
    and SGDW: λ is then a per-step decay rate independent of the base learning rate.
  - "constant": c_t = 1; λ is the per-step shrink factor (w ← (1 − λ)w + u).

  λ, η_t and η_peak may each be one value per leaf (a pytree or `wdjax.per_group`), e.g.
  two learning rates for the two branches of Muon. Complex leaves decay as w (the
  gradient of ½|w|² in the real inner product).

  Args:
    strength: λ >= 0: a float, an array, a schedule, or one per leaf.
    learning_rate: η_t (float, array, schedule or one per leaf); for "lr" and "schedule".
    scale_by: "lr", "schedule" or "constant".
    peak_learning_rate: η_peak for "schedule" when `learning_rate` is a schedule.
    mask: which leaves to decay (default "weights_only": not biases or norms).

  Returns:
    An `optax.GradientTransformationExtraArgs`.

  References:
    Loshchilov & Hutter, Decoupled Weight Decay Regularization, 2019.
    https://arxiv.org/abs/1711.05101

  Example:
    >>> import jax.numpy as jnp, optax, wdjax
    >>> tx = optax.chain(optax.sgd(0.5), wdjax.decoupled(0.1, learning_rate=0.5, mask=None))
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> updates, _ = tx.update({"w": jnp.zeros(2)}, tx.init(params), params)
    >>> updates["w"]
    Array([-0.05,  0.1 ], dtype=float32)
  """
  return decay_transform("decoupled", strength, learning_rate, scale_by, peak_learning_rate,
                         mask, lambda u, w, k: u - k * w)


def decay_coefficients(learning_rate: Any, scale_by: str, peak_learning_rate: Any,
                       params: Any, count: jax.Array) -> list[Any]:
  """c_t per leaf of `params`: η_t ("lr"), η_t/η_peak ("schedule") or 1 ("constant")."""
  n = len(jax.tree.leaves(params))
  if scale_by == "constant":
    return [1.0] * n
  lrs = leaf_values(learning_rate, params, count, "learning_rate")
  if scale_by == "lr":
    return lrs
  # "schedule": s_t = η_t/η_peak (check_decay_scale requires η_peak with a schedule); a
  # constant learning rate without η_peak has multiplier s_t = 1
  if peak_learning_rate is None:
    return [1.0] * n
  peaks = leaf_values(peak_learning_rate, params, count, "peak_learning_rate")
  return [lr / peak for lr, peak in zip(lrs, peaks)]


def decay_transform(name: str, strength: ScalarOrSchedule,
                    learning_rate: ScalarOrSchedule | None, scale_by: str,
                    peak_learning_rate: float | None, mask: Any,
                    rule: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
                    ) -> optax.GradientTransformationExtraArgs:
  """The factory behind `decoupled` and the decay variants: u ← rule(u, w, c_t·λ) per leaf.

  c_t is named by `scale_by` as in `decoupled`; `rule(u, w, k)` gets one masked leaf's
  update, its weight and the coefficient k = c_t·λ in the leaf's dtype.
  """
  check_values("strength", strength)
  check_decay_scale(scale_by, learning_rate, peak_learning_rate)
  if scale_by == "constant" and _validate.is_concrete(strength) and is_single(strength) and (
      np.any(np.asarray(_real(strength), np.float64) > 1)):
    raise ValueError(f"scale_by='constant' shrinks by (1 − λ) each step, so λ = {strength} > 1 "
                     "would flip the weights' sign every step; λ is the per-step fraction "
                     "here, in [0, 1] (1e-4 is typical).")

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    params = _need_params(name, params)
    cs = decay_coefficients(learning_rate, scale_by, peak_learning_rate, params, state.count)
    lams = leaf_values(strength, params, state.count, "strength")

    def decay(u, w, c, lam):
      return [rule(ui, wi, _validate.cast_like(ci * li, wi))
              for ui, wi, ci, li in zip(u, w, c, lam)]

    updates = _map_masked(decay, updates, params, mask, cs, lams)
    return updates, CountState(count=optax.safe_increment(state.count))

  return mark_decay(optax.GradientTransformationExtraArgs(_init_count(mask, strength), update_fn),
                    f"wdjax.{name}")


def proximal(prox: Callable[..., Any] | str, strength: ScalarOrSchedule, *,
             learning_rate: ScalarOrSchedule,
             mask: Any = DEFAULT_MASK) -> optax.GradientTransformationExtraArgs:
  """A proximal step after the whole optimizer: w⁺ = prox_{η_t·R}(w + u), u ← w⁺ − w.

  After `optax.sgd(η)` this is proximal gradient descent (ISTA): its fixed points are the
  minimizers of loss + R, and `prox.l1` sets weights to exactly 0. After an adaptive
  optimizer (Adam) the fixed point is *not* the minimizer of loss + R, because the step
  was preconditioned but the threshold η_t·λ was not; use `wdjax.proximal_adam` there.
  On complex leaves the prox acts on the modulus (`wdjax.prox`).

  Args:
    prox: an operator `(z, strength, scaling) -> z⁺` from `wdjax.prox`, or its name.
    strength: λ >= 0: a float, an array, a schedule, or one per leaf.
    learning_rate: η_t of the preceding optimizer (float, array, schedule or per leaf).
    mask: which leaves to regularize (default "weights_only": not biases or norms).

  Returns:
    An `optax.GradientTransformationExtraArgs`.

  Example:
    >>> import jax.numpy as jnp, optax, wdjax
    >>> tx = optax.chain(optax.sgd(0.5),
    ...                  wdjax.proximal("l1", 1.0, learning_rate=0.5, mask=None))
    >>> params = {"w": jnp.array([0.3, -2.0])}
    >>> updates, _ = tx.update({"w": jnp.zeros(2)}, tx.init(params), params)
    >>> optax.apply_updates(params, updates)["w"]
    Array([ 0. , -1.5], dtype=float32)
  """
  prox = _prox.by_name(prox)
  check_values("strength", strength)
  check_values("learning_rate", learning_rate, positive=True)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    params = _need_params("proximal", params)
    lams = leaf_values(strength, params, state.count, "strength")
    lrs = leaf_values(learning_rate, params, state.count, "learning_rate")

    def step(u, w, lam, lr):
      z = [wi + ui for wi, ui in zip(w, u)]
      return [zp - wi for zp, wi in zip(prox(z, _collapse(lam), _collapse(lr)), w)]

    updates = _map_masked(step, updates, params, mask, lams, lrs)
    return updates, CountState(count=optax.safe_increment(state.count))

  return mark_decay(optax.GradientTransformationExtraArgs(_init_count(mask, strength), update_fn),
                    "wdjax.proximal")


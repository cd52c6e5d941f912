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
once) or a schedule `count -> value`. Every transform takes a `mask` (default
`wdjax.masks.weights_only`; None for every leaf); leaves outside it pass through untouched.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from wdjax import _validate, masks
from wdjax import penalties as _penalties
from wdjax._validate import ScalarOrSchedule

SCALE_BY = ("lr", "schedule", "constant")


class CountState(NamedTuple):
  """Number of updates applied so far, the argument of scheduled hyperparameters."""
  count: jax.Array


def check_init(mask: masks.Mask | None, params: Any) -> None:
  """At init, not at the first step: the mask fits the params and the leaves it decays are
  floating point (an integer leaf would be decayed in integer arithmetic, silently)."""
  params = masks.unwrap(params)
  _validate.check_float_leaves(params, which=masks.resolve(mask, params))


def _init_count(mask: masks.Mask | None) -> Callable[[Any], CountState]:
  def init_fn(params):
    check_init(mask, params)
    return CountState(count=jnp.zeros([], jnp.int32))
  return init_fn


def _need_params(name: str, params: Any) -> Any:
  if params is None:
    raise ValueError(
        f"wdjax.{name} needs the current params: call tx.update(grads, state, params).")
  return masks.unwrap(params)


def _map_masked(fn: Callable[..., list], updates: Any, params: Any, mask: masks.Mask | None,
                *per_leaf: list) -> Any:
  """Applies `fn(update_leaves, param_leaves, *per_leaf) -> new_update_leaves` to the masked
  leaves; each of `per_leaf` is a list with one entry per param leaf, filtered alike."""
  bools = masks.resolve(mask, params)
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


def coupled(penalty: _penalties.Penalty, strength: ScalarOrSchedule, *,
            mask: masks.Mask | None = masks.weights_only) -> optax.GradientTransformation:
  """Adds the penalty's gradient to the gradient: g ← g + ∇R(w). Place before the optimizer.

  With `penalty=wdjax.penalties.l2` this is L2 regularization as in
  `torch.optim.SGD(weight_decay=λ)` and `torch.optim.Adam(weight_decay=λ)`: the term λw
  then goes through the optimizer (and Adam's preconditioner, which is why Adam+L2 is not
  AdamW). With plain SGD it equals `decoupled(η·λ, scale_by="constant")` after the step.

  For `penalties.l1` the subgradient λ·sign(w) is added. It never yields exact zeros: a
  weight near 0 is pushed by ±ηλ and overshoots, oscillating around 0 with amplitude ~ηλ,
  and it lands on 0.0 exactly only by floating-point accident. Use `proximal` for sparsity.

  Args:
    penalty: a function `(params, strength) -> R`, e.g. `wdjax.penalties.l2`.
    strength: λ >= 0, a float, an array or a schedule.
    mask: which leaves to penalize (default: weights, not biases or norms).

  Returns:
    An `optax.GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, optax, wdjax
    >>> tx = optax.chain(wdjax.coupled(wdjax.penalties.l2, 0.1, mask=None), optax.sgd(1.0))
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": jnp.zeros(2)}, state, params)
    >>> updates["w"]
    Array([-0.1,  0.2], dtype=float32)
  """
  _validate.check_strength("strength", strength)

  def update_fn(updates, state, params=None):
    params = _need_params("coupled", params)
    lam = _validate.evaluate(strength, state.count)

    def add_grad(u, w):
      g = jax.grad(lambda ws: penalty(ws, lam))(w)
      return [ui + gi.astype(ui.dtype) for ui, gi in zip(u, g)]

    updates = _map_masked(add_grad, updates, params, mask)
    return updates, CountState(count=optax.safe_increment(state.count))

  return optax.GradientTransformation(_init_count(mask), update_fn)


def _decay_coefficient(learning_rate: ScalarOrSchedule | None, scale_by: str,
                       peak_learning_rate: float | None, count: jax.Array) -> Any:
  if scale_by == "constant":
    return 1.0
  lr = _validate.evaluate(learning_rate, count)
  if scale_by == "lr":
    return lr
  # "schedule": s_t = η_t/η_peak (check_decay_scale requires η_peak with a schedule); a
  # constant learning rate without η_peak has multiplier s_t = 1
  return lr / peak_learning_rate if peak_learning_rate is not None else 1.0


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
    _validate.check_positive("learning_rate", learning_rate)
  if scale_by == "schedule" and callable(learning_rate) and peak_learning_rate is None:
    raise ValueError("scale_by='schedule' with a learning-rate schedule needs "
                     "peak_learning_rate= (η_peak, so that c_t = η_t/η_peak).")
  if peak_learning_rate is not None:
    _validate.check_positive("peak_learning_rate", peak_learning_rate)


def decoupled(strength: ScalarOrSchedule, *, learning_rate: ScalarOrSchedule | None = None,
              scale_by: str = "lr", peak_learning_rate: float | None = None,
              mask: masks.Mask | None = masks.weights_only) -> optax.GradientTransformation:
  """Decoupled weight decay after the whole optimizer: u ← u − c_t·λ·w.

  The coefficient c_t is named by `scale_by`:

  - "lr": c_t = η_t. `chain(optax.adam(η), decoupled(λ, learning_rate=η))` is
    `optax.adamw(η, weight_decay=λ)` and `torch.optim.AdamW(lr=η, weight_decay=λ)`.
  - "schedule": c_t = η_t/η_peak, the schedule multiplier of Loshchilov & Hutter's AdamW
    and SGDW: λ is then a per-step decay rate independent of the base learning rate.
  - "constant": c_t = 1; λ is the per-step shrink factor (w ← (1 − λ)w + u).

  Args:
    strength: λ >= 0, a float, an array or a schedule.
    learning_rate: η_t (float, array or schedule); needed for "lr" and "schedule".
    scale_by: "lr", "schedule" or "constant".
    peak_learning_rate: η_peak for "schedule" when `learning_rate` is a schedule.
    mask: which leaves to decay (default: weights, not biases or norms).

  Returns:
    An `optax.GradientTransformation`.

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


def decay_transform(name: str, strength: ScalarOrSchedule,
                    learning_rate: ScalarOrSchedule | None, scale_by: str,
                    peak_learning_rate: float | None, mask: masks.Mask | None,
                    rule: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
                    ) -> optax.GradientTransformation:
  """The factory behind `decoupled` and the decay variants: u ← rule(u, w, c_t·λ) per leaf.

  c_t is named by `scale_by` as in `decoupled`; `rule(u, w, k)` gets one masked leaf's
  update, its weight and the coefficient k = c_t·λ in the leaf's dtype.
  """
  _validate.check_strength("strength", strength)
  check_decay_scale(scale_by, learning_rate, peak_learning_rate)

  def update_fn(updates, state, params=None):
    params = _need_params(name, params)
    c = _decay_coefficient(learning_rate, scale_by, peak_learning_rate, state.count)
    lam = _validate.evaluate(strength, state.count)

    def decay(u, w):
      return [rule(ui, wi, _validate.cast_like(c * lam, wi)) for ui, wi in zip(u, w)]

    updates = _map_masked(decay, updates, params, mask)
    return updates, CountState(count=optax.safe_increment(state.count))

  return optax.GradientTransformation(_init_count(mask), update_fn)


def proximal(prox: Callable[..., Any], strength: ScalarOrSchedule, *,
             learning_rate: ScalarOrSchedule,
             mask: masks.Mask | None = masks.weights_only) -> optax.GradientTransformation:
  """A proximal step after the whole optimizer: w⁺ = prox_{η_t·R}(w + u), u ← w⁺ − w.

  After `optax.sgd(η)` this is proximal gradient descent (ISTA): its fixed points are the
  minimizers of loss + R, and `prox.l1` sets weights to exactly 0. After an adaptive
  optimizer (Adam) the fixed point is *not* the minimizer of loss + R, because the step
  was preconditioned but the threshold η_t·λ was not; use `wdjax.proximal_adam` there.

  Args:
    prox: an operator `(z, strength, scaling) -> z⁺` from `wdjax.prox`.
    strength: λ >= 0, a float, an array or a schedule.
    learning_rate: η_t of the preceding optimizer (float, array or schedule).
    mask: which leaves to regularize (default: weights, not biases or norms).

  Returns:
    An `optax.GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, optax, wdjax
    >>> tx = optax.chain(optax.sgd(0.5),
    ...                  wdjax.proximal(wdjax.prox.l1, 1.0, learning_rate=0.5, mask=None))
    >>> params = {"w": jnp.array([0.3, -2.0])}
    >>> updates, _ = tx.update({"w": jnp.zeros(2)}, tx.init(params), params)
    >>> optax.apply_updates(params, updates)["w"]
    Array([ 0. , -1.5], dtype=float32)
  """
  _validate.check_strength("strength", strength)
  _validate.check_positive("learning_rate", learning_rate)

  def update_fn(updates, state, params=None):
    params = _need_params("proximal", params)
    lam = _validate.evaluate(strength, state.count)
    lr = _validate.evaluate(learning_rate, state.count)

    def step(u, w):
      z = [wi + ui for wi, ui in zip(w, u)]
      return [zp - wi for zp, wi in zip(prox(z, lam, lr), w)]

    updates = _map_masked(step, updates, params, mask)
    return updates, CountState(count=optax.safe_increment(state.count))

  return optax.GradientTransformation(_init_count(mask), update_fn)

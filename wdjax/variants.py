"""Recent weight-decay variants, as Optax transformations placed after any optimizer.

Optax convention: the optimizer emits the update u (params ← params + u; for SGD u = −η_t·g).
Like `wdjax.decoupled`, each variant below edits u on the leaves its `mask` selects
(default `wdjax.masks.weights_only`):

| variant               | update on a decayed leaf                                  | paper           |
|-----------------------|-----------------------------------------------------------|-----------------|
| `cautious`            | u ← u − c_t·λ·1[u ⊙ w ≤ 0] ⊙ w                            | Chen et al 2025 |
| `corrected`, `adamc`  | u ← u − (η_t²/η_peak)·λ·w on normalized leaves, else η_t·λ·w | Defazio 2025  |
| `adams` (preset)      | u = −η_t m̂/(√v̂+ε) − η_t·λ·w/(√mean(v̂) + ε)               | Xie et al 2023  |

and the λ calculators `weight_decay_from_timescale`, `timescale` (Wang & Aitchison 2024)
and `normalized_weight_decay` (Loshchilov & Hutter 2019).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import optax

from wdjax import _validate, aliases, masks
from wdjax._validate import ScalarOrSchedule
from wdjax.leafwise import _real, check_values, leaf_values
from wdjax.transforms import (DEFAULT_MASK, CountState, _init_count, _map_masked, _need_params,
                              decay_transform, mark_decay, resolve_mask)

_DEFAULT = DEFAULT_MASK


def cautious(strength: ScalarOrSchedule, *, learning_rate: ScalarOrSchedule | None = None,
             scale_by: str = "lr", peak_learning_rate: float | None = None,
             mask: masks.Mask | None = _DEFAULT) -> optax.GradientTransformation:
  """Cautious weight decay: decay only where the update already moves w toward 0.

  The paper writes x_{t+1} = x_t − η_t(d_t + λ·1[d_t ⊙ x_t ≥ 0] ⊙ x_t) with d_t the
  optimizer's direction (subtracted). In Optax the update u = −η_t·d_t is added, so with
  η_t > 0 the same rule reads, per coordinate,

    u ← u − c_t·λ·1[u ⊙ w ≤ 0] ⊙ w,

  i.e. w is decayed where the update and the weight have opposite signs in Optax's sign
  (same sign of d and w in the paper's), and where u = 0 or w = 0 (the paper's ≥). c_t is
  `wdjax.decoupled`'s: "lr" (c_t = η_t, the paper's AdamW+CWD), "schedule" or "constant".
  On a complex leaf u ⊙ w is the real inner product per coordinate, Re(conj(u)·w).

  Args:
    strength: λ >= 0, a float, an array or a schedule.
    learning_rate: η_t (float, array or schedule); needed for "lr" and "schedule".
    scale_by: "lr", "schedule" or "constant" (see `wdjax.decoupled`).
    peak_learning_rate: η_peak for "schedule" when `learning_rate` is a schedule.
    mask: which leaves to decay (default: weights, not biases or norms).

  Returns:
    An `optax.GradientTransformation`; place it after the optimizer.

  References:
    Chen et al, Cautious Weight Decay, 2025. https://arxiv.org/abs/2510.12402

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from wdjax import variants
    >>> tx = optax.chain(optax.sgd(1.0), variants.cautious(0.5, learning_rate=1.0, mask=None))
    >>> params = {"w": jnp.array([1.0, 1.0])}
    >>> # gradient +1 moves w[0] toward 0 (decayed), gradient -1 moves w[1] away (not decayed)
    >>> updates, _ = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
    >>> updates["w"]
    Array([-1.5,  1. ], dtype=float32)
  """
  def rule(u, w, k):
    prod = u * w.astype(u.dtype)
    if jnp.iscomplexobj(prod):
      prod = jnp.real(jnp.conj(u) * w.astype(u.dtype))  # Re(ū·w), not a complex compare
    agree = (prod <= 0).astype(w.dtype)  # 1[u ⊙ w ≤ 0]
    return u - (k * agree * w).astype(u.dtype)

  return decay_transform("cautious", strength, learning_rate, scale_by, peak_learning_rate,
                         mask, rule)


def corrected(strength: ScalarOrSchedule, *, learning_rate: ScalarOrSchedule,
              peak_learning_rate: float | None = None, normalized: masks.Mask | None = None,
              mask: masks.Mask | None = _DEFAULT) -> optax.GradientTransformation:
  """AdamC's corrected decay: coefficient η_t²/η_peak on leaves followed by a normalization.

  On a decayed leaf,

    u ← u − c_t·λ·w,   c_t = η_t²/η_peak if the leaf is normalized, else c_t = η_t,

  so `chain(optax.adam(schedule), corrected(λ, learning_rate=schedule, peak_learning_rate=η_peak))`
  is AdamC, and on leaves that are not normalized it is `optax.adamw`. For a weight
  followed by a normalization layer the steady-state ratio ‖g‖/‖w‖ is ∝ √(λ/η_t) under
  AdamW's c_t = η_t, so it grows as the schedule decays η_t (the late-training gradient
  norm blow-up); with c_t ∝ η_t² the ratio does not depend on η_t.

  Args:
    strength: λ >= 0, a float, an array or a schedule.
    learning_rate: η_t, a float, an array or a schedule (the optimizer's).
    peak_learning_rate: η_peak, the schedule's peak. Needed when `learning_rate` is a
      schedule; for a constant η it defaults to η (then c_t = η, plain AdamW).
    normalized: a mask (pytree of bools or function of params) of the leaves whose output
      is normalized (e.g. the kernels of layers followed by LayerNorm/BatchNorm). Default
      None: every decayed leaf, as when AdamC is applied to a transformer's matrices.
    mask: which leaves to decay at all (default: weights, not biases or norms).

  Returns:
    An `optax.GradientTransformation`; place it after the optimizer.

  References:
    Defazio, Why Gradients Rapidly Increase Near the End of Training, 2025.
    https://arxiv.org/abs/2506.02285

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from wdjax import variants
    >>> sched = optax.linear_schedule(1.0, 0.5, 10)  # η_0 = 1 = η_peak
    >>> tx = variants.corrected(0.1, learning_rate=sched, peak_learning_rate=1.0, mask=None)
    >>> params = {"w": jnp.array([2.0])}
    >>> updates, _ = tx.update({"w": jnp.zeros(1)}, tx.init(params), params)
    >>> updates["w"]  # -(1²/1)·0.1·2
    Array([-0.2], dtype=float32)
  """
  check_values("strength", strength)
  check_values("learning_rate", learning_rate, positive=True)
  if callable(learning_rate) and peak_learning_rate is None:
    raise ValueError("corrected() with a learning-rate schedule needs peak_learning_rate= "
                     "(η_peak, the schedule's peak, so that c_t = η_t²/η_peak).")
  if peak_learning_rate is not None:
    check_values("peak_learning_rate", peak_learning_rate, positive=True)

  def init_fn(params):
    resolve_mask(normalized, masks.unwrap(params), allow_empty=True)  # fail at init
    return _init_count(mask, strength)(params)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    params = _need_params("corrected", params)
    lr = _real(_validate.evaluate(learning_rate, state.count, "learning_rate"))
    lr_max = _real(peak_learning_rate) if peak_learning_rate is not None else lr
    lams = leaf_values(strength, params, state.count, "strength")

    def decay(u, w, is_norm, lam):
      out = []
      for ui, wi, nrm, li in zip(u, w, is_norm, lam):
        c = lr * lr / lr_max if nrm else lr
        out.append(ui - _validate.cast_like(c * li, wi) * wi)
      return out

    updates = _map_masked(decay, updates, params, mask,
                          resolve_mask(normalized, params, allow_empty=True), lams)
    return updates, CountState(count=optax.safe_increment(state.count))

  return mark_decay(optax.GradientTransformationExtraArgs(init_fn, update_fn),
                    "wdjax.corrected")


def adamc(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Any = None,
          weight_decay: ScalarOrSchedule = 1e-4, mask: masks.Mask | None = _DEFAULT, *,
          nesterov: bool = False, peak_learning_rate: float | None = None,
          normalized: masks.Mask | None = None) -> optax.GradientTransformation:
  """AdamC: `chain(optax.adam(η_t), corrected(λ, learning_rate=η_t, ...))` (see `corrected`).

  u = −η_t·m̂/(√v̂ + ε) − c_t·λ·w, c_t = η_t²/η_peak on `normalized` leaves, η_t elsewhere.
  Positional arguments as `optax.adamw`; `peak_learning_rate` and `normalized` are
  keyword-only.

  References:
    Defazio, Why Gradients Rapidly Increase Near the End of Training, 2025.
    https://arxiv.org/abs/2506.02285

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from wdjax import variants
    >>> sched = optax.linear_schedule(1.0, 0.5, 10)   # η_1 = 0.95 after one step
    >>> tx = variants.adamc(sched, weight_decay=0.1, peak_learning_rate=1.0, mask=None)
    >>> params, zero = {"w": jnp.array([2.0])}, {"w": jnp.zeros(1)}
    >>> _, state = tx.update(zero, tx.init(params), params)
    >>> updates, _ = tx.update(zero, state, params)
    >>> updates["w"].round(4)  # -(0.95²/1)·0.1·2 (AdamW would give -0.95·0.1·2 = -0.19)
    Array([-0.1805], dtype=float32)
  """
  _validate.check_optax_order(adamc, nesterov=nesterov, mu_dtype=mu_dtype, b1=b1, b2=b2)
  return optax.chain(optax.adam(learning_rate, b1, b2, eps, eps_root, mu_dtype,
                                nesterov=nesterov),
                     corrected(weight_decay, learning_rate=learning_rate,
                               peak_learning_rate=peak_learning_rate, normalized=normalized,
                               mask=mask))


def adams(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Any = None,
          weight_decay: ScalarOrSchedule = 1e-4, mask: masks.Mask | None = _DEFAULT, *,
          nesterov: bool = False) -> optax.GradientTransformation:
  """Adam with stable weight decay (AdamS): the decay is divided by √(mean v̂).

  With m̂_t, v̂_t Adam's bias-corrected moments and v̄_t the mean of v̂_t over every
  coordinate of every leaf (all parameters, decayed or not, as in the paper):

    u = −η_t·m̂_t/(√v̂_t + ε) − η_t·λ·w/(√v̄_t + ε)   (decay on the masked leaves only).

  AdamW's decay η_t·λ·w is not rescaled while the gradient step is divided by √v̂, so the
  effective strength of the decay relative to the step drifts with the gradient norm;
  AdamS rescales it by the same (global) scale. ε in the decay's denominator keeps it
  finite at v̂ = 0 (the reference implementation's choice).

  Args:
    learning_rate: η_t, a float, an array or a schedule.
    weight_decay: λ >= 0, a float, an array or a schedule.
    b1, b2, eps, eps_root, mu_dtype, nesterov: Adam's (positions as in `optax.adamw`).
    mask: which leaves to decay (default: weights, not biases or norms).

  Returns:
    An `optax.GradientTransformation` (a complete optimizer, like `optax.adamw`).

  References:
    Xie et al, On the Overlooked Pitfalls of Weight Decay and How to Mitigate Them: A
    Gradient-Norm Perspective, 2023 (NeurIPS). https://arxiv.org/abs/2011.11152

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from wdjax import variants
    >>> tx = variants.adams(0.1, weight_decay=0.5, mask=None)
    >>> params = {"w": jnp.array([1.0, -1.0])}
    >>> updates, _ = tx.update({"w": jnp.array([2.0, 2.0])}, tx.init(params), params)
    >>> updates["w"].round(4)  # step -0.1·sign(g), decay -0.1·0.5·w/√4
    Array([-0.125, -0.075], dtype=float32)
  """
  _validate.check_optax_order(adams, nesterov=nesterov, mu_dtype=mu_dtype, b1=b1, b2=b2)
  check_values("weight_decay", weight_decay)
  check_values("learning_rate", learning_rate, positive=True)

  def finish(steps, params, nu_hat, lr, lams):
    # v̄ over every coordinate of every leaf (decayed or not), as in the paper.
    total = sum(jnp.sum(v) for v in nu_hat)
    v_bar = total / sum(int(np.size(v)) for v in nu_hat)
    scale = lr / (jnp.sqrt(v_bar) + _real(eps))

    def decay(u, w, lam):
      return [ui - _validate.cast_like(scale * li, wi) * wi for ui, wi, li in zip(u, w, lam)]

    return _map_masked(decay, steps, params, mask, lams)

  return aliases.adam_then("adams", learning_rate, weight_decay, finish, b1=b1, b2=b2,
                           eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov,
                           mask=mask)


def cautious_adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
                   eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Any = None,
                   weight_decay: ScalarOrSchedule = 1e-4, mask: masks.Mask | None = _DEFAULT,
                   *, nesterov: bool = False, scale_by: str = "lr",
                   peak_learning_rate: float | None = None) -> optax.GradientTransformation:
  """AdamW with cautious weight decay: `chain(optax.adam(η), cautious(λ, learning_rate=η))`.

  u = −η_t·m̂/(√v̂ + ε) − c_t·λ·1[u ⊙ w ≤ 0] ⊙ w (see `cautious`); positional arguments as
  `optax.adamw`.

  References:
    Chen et al, Cautious Weight Decay, 2025. https://arxiv.org/abs/2510.12402

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import variants
    >>> tx = variants.cautious_adamw(0.1, weight_decay=0.5, mask=None)
    >>> params = {"w": jnp.array([1.0, 1.0])}
    >>> updates, _ = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
    >>> [round(float(x), 4) for x in updates["w"]]  # decayed only where u moves w toward 0
    [-0.15, 0.1]
  """
  _validate.check_optax_order(cautious_adamw, nesterov=nesterov, mu_dtype=mu_dtype, b1=b1,
                              b2=b2)
  return optax.chain(optax.adam(learning_rate, b1, b2, eps, eps_root, mu_dtype,
                                nesterov=nesterov),
                     cautious(weight_decay, learning_rate=learning_rate, scale_by=scale_by,
                              peak_learning_rate=peak_learning_rate, mask=mask))


def weight_decay_from_timescale(*, learning_rate: Any, tau_epoch: Any = None,
                                tau_iter: Any = None, batch_size: Any = None,
                                dataset_size: Any = None, scale_by: str = "lr") -> Any:
  """λ from the EMA timescale of AdamW's weights (Wang & Aitchison's parameterization).

  AdamW with c_t = η is an exponential moving average of the updates, w ← (1 − ηλ)w + ...,
  whose timescale in iterations is τ_iter = 1/(ηλ); in epochs, with M = N/B iterations
  per epoch (N the dataset size, B the batch size), τ_epoch = τ_iter/M. Given τ:

    λ = 1/(η·τ_iter) = B/(η·τ_epoch·N)      (scale_by="lr", c_t = η: optax/torch AdamW)
    λ = 1/τ_iter                             (scale_by="constant", c_t = 1)

  The paper's finding: the optimal τ_epoch stays roughly constant as model and dataset
  size change, so λ should scale ∝ B/(η·N).

  Args:
    learning_rate: η > 0 (its peak, for a schedule).
    tau_epoch: τ_epoch > 0, the timescale in epochs (needs batch_size and dataset_size).
    tau_iter: τ_iter > 0, the timescale in iterations (give exactly one of the two).
    batch_size: B > 0.
    dataset_size: N > 0.
    scale_by: "lr" or "constant": the c_t of the `wdjax.decoupled` that uses this λ.

  Returns:
    λ, of the type of the inputs (float, NumPy or JAX array; vmappable).

  References:
    Wang & Aitchison, How to set AdamW's weight decay as you scale model and dataset
    size, 2024. https://arxiv.org/abs/2405.13698

  Example:
    >>> from wdjax import variants
    >>> variants.weight_decay_from_timescale(learning_rate=1e-3, tau_epoch=10.0,
    ...                                      batch_size=100, dataset_size=50_000)
    0.2
  """
  if (tau_epoch is None) == (tau_iter is None):
    raise ValueError("give exactly one of tau_epoch= (timescale in epochs) or tau_iter= "
                     "(in iterations).")
  if scale_by not in ("lr", "constant"):
    raise ValueError(f"scale_by must be 'lr' or 'constant', got {scale_by!r}.")
  _validate.check_positive("learning_rate", learning_rate)
  if tau_epoch is not None:
    _validate.check_positive("tau_epoch", tau_epoch)
    if batch_size is None or dataset_size is None:
      raise ValueError("tau_epoch needs batch_size= and dataset_size= (τ_iter = "
                       "τ_epoch·dataset_size/batch_size).")
    _validate.check_positive("batch_size", batch_size)
    _validate.check_positive("dataset_size", dataset_size)
    tau_iter = tau_epoch * dataset_size / batch_size
  else:
    _validate.check_positive("tau_iter", tau_iter)
  return 1.0 / (learning_rate * tau_iter) if scale_by == "lr" else 1.0 / tau_iter


def timescale(*, weight_decay: Any, learning_rate: Any, batch_size: Any = None,
              dataset_size: Any = None, scale_by: str = "lr") -> tuple[Any, Any]:
  """The inverse of `weight_decay_from_timescale`: (τ_iter, τ_epoch) of a given λ.

  τ_iter = 1/(ηλ) (scale_by="lr") or 1/λ ("constant"); τ_epoch = τ_iter·B/N (None
  without batch_size and dataset_size).

  Example:
    >>> from wdjax import variants
    >>> variants.timescale(weight_decay=0.2, learning_rate=1e-3, batch_size=100,
    ...                    dataset_size=50_000)
    (5000.0, 10.0)
  """
  if scale_by not in ("lr", "constant"):
    raise ValueError(f"scale_by must be 'lr' or 'constant', got {scale_by!r}.")
  _validate.check_positive("weight_decay", weight_decay)
  _validate.check_positive("learning_rate", learning_rate)
  tau_iter = 1.0 / (learning_rate * weight_decay) if scale_by == "lr" else 1.0 / weight_decay
  if batch_size is None or dataset_size is None:
    return tau_iter, None
  _validate.check_positive("batch_size", batch_size)
  _validate.check_positive("dataset_size", dataset_size)
  return tau_iter, tau_iter * batch_size / dataset_size


def normalized_weight_decay(lambda_norm: Any, *, batch_size: Any, dataset_size: Any,
                            epochs: Any) -> Any:
  """Loshchilov & Hutter's normalized weight decay: λ = λ_norm·√(b/(B·T)).

  b is the batch size, B the number of training points and T the number of epochs, so
  b/(B·T) is 1/(total number of weight updates): a λ_norm tuned for one budget transfers
  to another.

  Args:
    lambda_norm: λ_norm >= 0.
    batch_size: b > 0.
    dataset_size: B > 0.
    epochs: T > 0.

  Returns:
    λ (to use as the `strength` of a decay with c_t = s_t, the paper's convention).

  References:
    Loshchilov & Hutter, Decoupled Weight Decay Regularization, 2019 (Appendix B.1).
    https://arxiv.org/abs/1711.05101

  Example:
    >>> from wdjax import variants
    >>> lam = variants.normalized_weight_decay(0.05, batch_size=128, dataset_size=50_000,
    ...                                        epochs=200)
    >>> round(lam, 8)  # 0.05·√(128/(50000·200))
    0.00017889
  """
  _validate.check_strength("lambda_norm", lambda_norm)
  _validate.check_positive("batch_size", batch_size)
  _validate.check_positive("dataset_size", dataset_size)
  _validate.check_positive("epochs", epochs)
  return lambda_norm * (batch_size / (dataset_size * epochs)) ** 0.5

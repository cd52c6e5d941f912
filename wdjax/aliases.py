"""Ready optimizers with the coupling in the name.

| preset         | update                                   | equivalent                                   |
|----------------|------------------------------------------|----------------------------------------------|
| sgd_l2         | SGD on g + λw (coupled)                  | torch.optim.SGD(lr, momentum, weight_decay=λ)|
| adam_l2        | Adam on g + λw (coupled)                 | torch.optim.Adam(lr, weight_decay=λ)         |
| adamw "lr"     | Adam step − η_t·λ·w                      | optax.adamw, torch.optim.AdamW               |
| adamw "schedule" | Adam step − s_t·λ·w, s_t = η_t/η_peak  | Loshchilov & Hutter's AdamW                  |
| sgdw "schedule"| SGD step − s_t·λ·w                       | Loshchilov & Hutter's SGDW                   |
| proximal_sgd   | w⁺ = prox_{η_t R}(w − η_t g)             | ISTA (proximal gradient)                     |
| proximal_adam  | w⁺ = prox_{η_t R / D}(w − η_t m̂/D), D = √v̂+ε | ProxGen (Yun et al. 2021)                  |
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from wdjax import _validate, masks
from wdjax import penalties as _penalties
from wdjax._validate import ScalarOrSchedule
from wdjax.transforms import _map_masked, _need_params, check_init, coupled, decoupled, proximal

_DEFAULT = masks.weights_only


def sgd_l2(learning_rate: ScalarOrSchedule, weight_decay: ScalarOrSchedule = 0.0, *,
           momentum: float | None = None, nesterov: bool = False,
           mask: masks.Mask | None = _DEFAULT) -> optax.GradientTransformation:
  """SGD with coupled L2: `torch.optim.SGD(lr, momentum, weight_decay=λ)` (dampening 0).

  buf ← μ·buf + (g + λw);  w ← w − η·buf  (Nesterov: w ← w − η·(g + λw + μ·buf)).
  With momentum=None this is w ← (1 − ηλ)w − ηg, i.e. decay coupled to the learning rate.

  Example:
    >>> import jax.numpy as jnp, wdjax
    >>> tx = wdjax.sgd_l2(0.1, weight_decay=1e-2, momentum=0.9)
    >>> state = tx.init({"kernel": jnp.ones((2, 2))})
  """
  return optax.chain(coupled(_penalties.l2, weight_decay, mask=mask),
                     optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov))


def adam_l2(learning_rate: ScalarOrSchedule, weight_decay: ScalarOrSchedule = 0.0, *,
            b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
            mask: masks.Mask | None = _DEFAULT) -> optax.GradientTransformation:
  """Adam with coupled L2: `torch.optim.Adam(lr, weight_decay=λ)`.

  Adam is applied to g + λw, so the decay is divided by √v̂ + ε: weights with large
  gradients are decayed less. This is what AdamW fixes.
  """
  return optax.chain(coupled(_penalties.l2, weight_decay, mask=mask),
                     optax.adam(learning_rate, b1=b1, b2=b2, eps=eps))


def adamw(learning_rate: ScalarOrSchedule, weight_decay: ScalarOrSchedule = 1e-4, *,
          scale_by: str = "lr", peak_learning_rate: float | None = None,
          b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          mask: masks.Mask | None = _DEFAULT) -> optax.GradientTransformation:
  """Adam with decoupled weight decay: u = −η_t·m̂/(√v̂ + ε) − c_t·λ·w.

  scale_by="lr" (c_t = η_t) is `optax.adamw` and `torch.optim.AdamW`; scale_by="schedule"
  (c_t = η_t/η_peak) is Loshchilov & Hutter's AdamW, whose λ does not move with η.

  References:
    Loshchilov & Hutter, Decoupled Weight Decay Regularization, 2019.
    https://arxiv.org/abs/1711.05101
  """
  return optax.chain(optax.adam(learning_rate, b1=b1, b2=b2, eps=eps),
                     decoupled(weight_decay, learning_rate=learning_rate, scale_by=scale_by,
                               peak_learning_rate=peak_learning_rate, mask=mask))


def sgdw(learning_rate: ScalarOrSchedule, weight_decay: ScalarOrSchedule = 1e-4, *,
         momentum: float | None = None, nesterov: bool = False, scale_by: str = "schedule",
         peak_learning_rate: float | None = None,
         mask: masks.Mask | None = _DEFAULT) -> optax.GradientTransformation:
  """SGD with decoupled weight decay (SGDW): u = −η_t·buf − c_t·λ·w.

  Default scale_by="schedule" is Loshchilov & Hutter's SGDW (c_t = η_t/η_peak);
  "lr" gives c_t = η_t, which without momentum is the same as `sgd_l2`.
  """
  return optax.chain(optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov),
                     decoupled(weight_decay, learning_rate=learning_rate, scale_by=scale_by,
                               peak_learning_rate=peak_learning_rate, mask=mask))


def proximal_sgd(learning_rate: ScalarOrSchedule, prox: Callable[..., Any],
                 strength: ScalarOrSchedule, *, momentum: float | None = None,
                 mask: masks.Mask | None = _DEFAULT) -> optax.GradientTransformation:
  """Proximal SGD: w⁺ = prox_{η_t·R}(w − η_t·g) (ISTA; exact zeros with `prox.l1`).

  With heavy-ball momentum β the step is w⁺ = prox_{τ_t·R}(w − η_t·buf), buf ← β·buf + g,
  and the prox uses τ_t = η_t/(1 − β): at a fixed point buf = g/(1 − β), so the gradient
  step is η_t/(1 − β)·g and the prox must match it for the fixed point to minimize L + R
  (with τ_t = η_t it would minimize L + (1 − β)·R).

  Example:
    >>> import jax.numpy as jnp, wdjax
    >>> tx = wdjax.proximal_sgd(0.1, wdjax.prox.l1, 1e-3)
  """
  prox_lr = learning_rate
  if momentum is not None:
    if _validate.is_concrete(momentum) and not 0.0 <= float(momentum) < 1.0:
      raise ValueError(f"momentum must be in [0, 1), got {momentum}.")
    if callable(learning_rate):
      prox_lr = lambda count: learning_rate(count) / (1 - momentum)
    else:
      prox_lr = learning_rate / (1 - momentum)
  return optax.chain(optax.sgd(learning_rate, momentum=momentum),
                     proximal(prox, strength, learning_rate=prox_lr, mask=mask))


class AdamStepState(NamedTuple):
  """Adam's moments and the step count of the scheduled hyperparameters."""
  count: jax.Array
  adam: optax.ScaleByAdamState


def adam_then(name: str, learning_rate: ScalarOrSchedule, strength: ScalarOrSchedule,
              finish: Callable[..., Any], *, b1: float, b2: float, eps: float,
              mask: masks.Mask | None) -> optax.GradientTransformation:
  """Adam's step, then `finish(steps, params, nu_hat, lr, lam) -> updates`.

  The skeleton of the optimizers that need Adam's second moment after its step
  (`proximal_adam`, `wdjax.variants.adams`): `steps` is −η_t·m̂/(√v̂ + ε) per leaf,
  `nu_hat` the list of bias-corrected v̂ leaves (in at least float32), `lr` and `lam`
  the values of η_t and λ at this step.
  """
  adam = optax.scale_by_adam(b1=b1, b2=b2, eps=eps)

  def init_fn(params):
    check_init(mask, params)
    return AdamStepState(count=jnp.zeros([], jnp.int32), adam=adam.init(params))

  def update_fn(updates, state, params=None):
    params = _need_params(name, params)
    direction, adam_state = adam.update(updates, state.adam, params)
    lr = _validate.evaluate(learning_rate, state.count)
    lam = _validate.evaluate(strength, state.count)
    nu_hat = []
    for v in jax.tree.leaves(masks.unwrap(adam_state.nu)):
      acc = jnp.result_type(jnp.float32, v.dtype)  # bf16 moments: correct in float32
      nu_hat.append(v.astype(acc) / (1 - jnp.asarray(b2, acc) ** adam_state.count.astype(acc)))
    steps = jax.tree.map(lambda d: -_validate.cast_like(lr, d) * d, direction)
    updates = finish(steps, params, nu_hat, lr, lam)
    return updates, AdamStepState(count=optax.safe_increment(state.count), adam=adam_state)

  return optax.GradientTransformation(init_fn, update_fn)


def proximal_adam(learning_rate: ScalarOrSchedule, prox: Callable[..., Any],
                  strength: ScalarOrSchedule, *, b1: float = 0.9, b2: float = 0.999,
                  eps: float = 1e-8,
                  mask: masks.Mask | None = _DEFAULT) -> optax.GradientTransformation:
  """Preconditioned proximal Adam: the prox threshold is divided by Adam's preconditioner.

  With D = √v̂_t + ε (per coordinate) the step is

    w⁺ = prox_{(η_t/D)·R}(w − η_t·m̂_t/D),

  i.e. for l1 the threshold is η_t·λ/D per coordinate. This is the proximal step in the
  metric of D, so a fixed point satisfies 0 ∈ ∇L(w) + ∂R(w): the minimizer of loss + R.
  An unpreconditioned prox after `optax.adam` (threshold η_t·λ) instead stops where the
  preconditioned gradient balances λ, which is not that minimizer. Needs a separable
  prox (l1, l2, elastic_net). Use a decaying learning rate to converge: Adam's momentum
  and noise keep a constant-step iterate in a neighbourhood of the solution.

  References:
    Yun et al., Adaptive Proximal Gradient Methods for Structured Neural Networks
    (ProxGen), 2021. https://arxiv.org/abs/2105.09221 (NeurIPS 2021)

  Example:
    >>> import jax.numpy as jnp, optax, wdjax
    >>> tx = wdjax.proximal_adam(1e-2, wdjax.prox.l1, 1e-3, mask=None)
    >>> params = {"w": jnp.array([1e-4, 1.0])}
    >>> updates, _ = tx.update({"w": jnp.array([1.0, 1.0])}, tx.init(params), params)
  """
  if not getattr(prox, "separable", False):
    raise ValueError(f"proximal_adam needs a separable prox (wdjax.prox.l1, l2, "
                     f"elastic_net); {getattr(prox, '__name__', prox)} is not. Use "
                     "optax.chain(optax.sgd(η), wdjax.proximal(...)) for it.")
  _validate.check_strength("strength", strength)
  _validate.check_positive("learning_rate", learning_rate)

  def finish(steps, params, nu_hat, lr, lam):
    def step(u, w, v):
      z = [wi + ui for wi, ui in zip(w, u)]
      # per-coordinate threshold scale t = η_t / D with D = √v̂ + ε
      t = [(_validate.cast_like(lr, vi) / (jnp.sqrt(vi) + eps)).astype(wi.dtype)
           for vi, wi in zip(v, w)]
      return [zp - wi for zp, wi in zip(prox(z, lam, t), w)]

    return _map_masked(step, steps, params, mask, nu_hat)

  return adam_then("proximal_adam", learning_rate, strength, finish, b1=b1, b2=b2, eps=eps,
                   mask=mask)

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

Where a preset mirrors an optax alias (`adamw` ↔ `optax.adamw`; `sgd_l2`, `sgdw` ↔
`optax.sgd`; `adam_l2` ↔ `optax.adam`) it takes that alias's arguments in the same
positional order with the same defaults, then λ; wdjax's own options are keyword-only. The
one deliberate difference is the default `mask` ("weights_only", not every leaf): a name,
so that `optax.inject_hyperparams(wdjax.adamw)(learning_rate=η, weight_decay=λ)` works
without `static_args` (see `wdjax.transforms`). The torch equivalences of the table hold
with `mask=None` (torch decays every parameter), and torch's AdamW defaults λ to 1e-2
(optax and wdjax: 1e-4). A torch-style positional call (`sgd_l2(0.1, 0.9, 0.5)` for
dampening 0.5) is a TypeError naming optax's order. λ may be one value per leaf
(`wdjax.per_group`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wdjax import _validate, masks
from wdjax import penalties as _penalties
from wdjax import prox as _prox
from wdjax._validate import ScalarOrSchedule
from wdjax.leafwise import _real, check_values, leaf_values
from wdjax.penalties import real_dtype
from wdjax.transforms import (DEFAULT_MASK, _collapse, _map_masked, _need_params, check_init,
                              coupled, decoupled, proximal)

_DEFAULT = DEFAULT_MASK


def sgd_l2(learning_rate: ScalarOrSchedule, momentum: float | None = None,
           nesterov: bool = False, accumulator_dtype: Any = None,
           weight_decay: ScalarOrSchedule = 0.0, *,
           mask: masks.Mask | None = _DEFAULT) -> optax.GradientTransformation:
  """SGD with coupled L2: `torch.optim.SGD(lr, momentum, weight_decay=λ)` (dampening 0).

  buf ← μ·buf + (g + λw);  w ← w − η·buf  (Nesterov: w ← w − η·(g + λw + μ·buf)).
  With momentum=None this is w ← (1 − ηλ)w − ηg, i.e. decay coupled to the learning rate.

  The positional arguments are `optax.sgd`'s (learning_rate, momentum, nesterov,
  accumulator_dtype), then λ: `optax.sgd(0.1, 0.9)` and `wdjax.sgd_l2(0.1, 0.9)` both mean
  momentum 0.9. Differences from `optax.sgd`: `weight_decay` and `mask` (default
  `weights_only`: biases and normalization parameters are not decayed; torch's SGD decays
  every parameter, `mask=None`).

  Example:
    >>> import jax.numpy as jnp, wdjax
    >>> tx = wdjax.sgd_l2(0.1, weight_decay=0.5)
    >>> params = {"kernel": jnp.array([2.0])}
    >>> updates, _ = tx.update({"kernel": jnp.array([1.0])}, tx.init(params), params)
    >>> updates["kernel"]  # -0.1·(1 + 0.5·2)
    Array([-0.2], dtype=float32)
  """
  _validate.check_optax_order(sgd_l2, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
  _validate.check_positive("learning_rate", learning_rate)
  return optax.chain(coupled(_penalties.l2, weight_decay, mask=mask),
                     optax.sgd(learning_rate, momentum, nesterov, accumulator_dtype))


def adam_l2(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
            eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Any = None,
            weight_decay: ScalarOrSchedule = 0.0, *, nesterov: bool = False,
            mask: masks.Mask | None = _DEFAULT) -> optax.GradientTransformation:
  """Adam with coupled L2: `torch.optim.Adam(lr, weight_decay=λ)`.

  Adam is applied to g + λw, so the decay is divided by √v̂ + ε: weights with large
  gradients are decayed less. This is what AdamW fixes. The positional arguments are
  `optax.adam`'s, then λ (where `optax.adamw` has it); `mask` is keyword-only, default
  `weights_only` (torch's Adam decays every parameter: `mask=None`).

  Example:
    >>> import jax.numpy as jnp, wdjax
    >>> tx = wdjax.adam_l2(0.1, weight_decay=1.0, mask=None)
    >>> params = {"w": jnp.array([3.0])}
    >>> updates, _ = tx.update({"w": jnp.array([-1.0])}, tx.init(params), params)
    >>> round(float(updates["w"][0]), 4)  # Adam's first step on g + λw = 2 is -η·sign(2)
    -0.1
  """
  _validate.check_optax_order(adam_l2, nesterov=nesterov, mu_dtype=mu_dtype, b1=b1, b2=b2)
  _validate.check_positive("learning_rate", learning_rate)
  return optax.chain(coupled(_penalties.l2, weight_decay, mask=mask),
                     optax.adam(learning_rate, b1, b2, eps, eps_root, mu_dtype,
                                nesterov=nesterov))


def adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Any = None,
          weight_decay: ScalarOrSchedule = 1e-4, mask: masks.Mask | None = _DEFAULT, *,
          nesterov: bool = False, scale_by: str = "lr",
          peak_learning_rate: float | None = None) -> optax.GradientTransformation:
  """Adam with decoupled weight decay: u = −η_t·m̂/(√v̂ + ε) − c_t·λ·w.

  scale_by="lr" (c_t = η_t) is `optax.adamw` and `torch.optim.AdamW`; scale_by="schedule"
  (c_t = η_t/η_peak) is Loshchilov & Hutter's AdamW, whose λ does not move with η.

  Same arguments, positions and defaults as `optax.adamw` (a drop-in), except the default
  `mask`: `wdjax.masks.weights_only` (optax: None, every leaf decayed). Pass `mask=None`
  for optax's behaviour. wdjax's own options (`scale_by`, `peak_learning_rate`) are
  keyword-only. Against `torch.optim.AdamW`: torch defaults λ to 1e-2 (here optax's 1e-4)
  and the learning rate to 1e-3 (required here), and decays every parameter.

  References:
    Loshchilov & Hutter, Decoupled Weight Decay Regularization, 2019.
    https://arxiv.org/abs/1711.05101

  Example:
    >>> import jax.numpy as jnp, wdjax
    >>> tx = wdjax.adamw(0.1, weight_decay=0.5, mask=None)
    >>> params = {"w": jnp.array([2.0])}
    >>> updates, _ = tx.update({"w": jnp.array([1.0])}, tx.init(params), params)
    >>> round(float(updates["w"][0]), 4)  # -0.1·sign(g) - 0.1·0.5·2
    -0.2
  """
  _validate.check_optax_order(adamw, nesterov=nesterov, mu_dtype=mu_dtype, b1=b1, b2=b2)
  return optax.chain(optax.adam(learning_rate, b1, b2, eps, eps_root, mu_dtype,
                                nesterov=nesterov),
                     decoupled(weight_decay, learning_rate=learning_rate, scale_by=scale_by,
                               peak_learning_rate=peak_learning_rate, mask=mask))


def sgdw(learning_rate: ScalarOrSchedule, momentum: float | None = None,
         nesterov: bool = False, accumulator_dtype: Any = None,
         weight_decay: ScalarOrSchedule = 1e-4, *, scale_by: str = "schedule",
         peak_learning_rate: float | None = None,
         mask: masks.Mask | None = _DEFAULT) -> optax.GradientTransformation:
  """SGD with decoupled weight decay (SGDW): u = −η_t·buf − c_t·λ·w.

  Default scale_by="schedule" is Loshchilov & Hutter's SGDW (c_t = η_t/η_peak; with a
  constant η, c_t = 1: λ is the per-step shrink); "lr" gives c_t = η_t, which without
  momentum is the same as `sgd_l2`. Positional arguments as `optax.sgd`, then λ.

  Example:
    >>> import jax.numpy as jnp, wdjax
    >>> tx = wdjax.sgdw(0.1, weight_decay=0.01, mask=None)
    >>> params = {"w": jnp.array([2.0])}
    >>> updates, _ = tx.update({"w": jnp.array([1.0])}, tx.init(params), params)
    >>> updates["w"]  # -0.1·1 - 1·0.01·2 (c_t = s_t = 1)
    Array([-0.12], dtype=float32)
  """
  _validate.check_optax_order(sgdw, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
  return optax.chain(optax.sgd(learning_rate, momentum, nesterov, accumulator_dtype),
                     decoupled(weight_decay, learning_rate=learning_rate, scale_by=scale_by,
                               peak_learning_rate=peak_learning_rate, mask=mask))


def _prox_op(prox: Any, l1_ratio: Any) -> Callable[..., Any]:
  """The operator `prox` names (or is), with `l1_ratio` bound for the elastic net."""
  op = _prox.by_name(prox)
  if l1_ratio is None:
    return op
  if op is not _prox.elastic_net:
    raise ValueError(f"l1_ratio applies to prox='elastic_net', not "
                     f"{getattr(op, '__name__', op)}.")
  if isinstance(l1_ratio, (str, bytes, bool)) or (
      _validate.is_concrete(l1_ratio) and not 0.0 <= float(np.asarray(l1_ratio)) <= 1.0):
    raise ValueError(f"l1_ratio must be a number in [0, 1] (α of the elastic net: 1 is the "
                     f"lasso, 0 ridge), got {l1_ratio!r}.")
  bound = functools.partial(op, l1_ratio=l1_ratio)
  bound.separable = True
  return bound


def proximal_sgd(learning_rate: ScalarOrSchedule, prox: str | Callable[..., Any] = "l1",
                 weight_decay: ScalarOrSchedule = 0.0, *, momentum: float | None = None,
                 nesterov: bool = False, accumulator_dtype: Any = None, l1_ratio: Any = None,
                 mask: masks.Mask | None = _DEFAULT) -> optax.GradientTransformation:
  """Proximal SGD: w⁺ = prox_{η_t·R}(w − η_t·g) (ISTA; exact zeros with `prox.l1`).

  With heavy-ball momentum β the step is w⁺ = prox_{τ_t·R}(w − η_t·buf), buf ← β·buf + g,
  and the prox uses τ_t = η_t/(1 − β): at a fixed point buf = g/(1 − β), so the gradient
  step is η_t/(1 − β)·g and the prox must match it for the fixed point to minimize L + R
  (with τ_t = η_t it would minimize L + (1 − β)·R). Nesterov's step g + β·buf has the same
  fixed point, g/(1 − β), and the same τ_t.

  Args:
    learning_rate: η_t, a float, an array or a schedule.
    prox: an operator of `wdjax.prox` or its name ("l1", "elastic_net", ...).
    weight_decay: λ >= 0, the strength of the penalty R whose prox is taken.
    momentum: heavy-ball β in [0, 1), or None.
    nesterov, accumulator_dtype: `optax.sgd`'s, for the momentum buffer.
    l1_ratio: α of `prox="elastic_net"` (default 0.5).
    mask: which leaves to regularize (default: weights, not biases or norms).

  Example:
    >>> import jax.numpy as jnp, wdjax
    >>> tx = wdjax.proximal_sgd(0.5, "l1", 1.0, mask=None)
    >>> params = {"w": jnp.array([0.3, -2.0])}
    >>> updates, _ = tx.update({"w": jnp.zeros(2)}, tx.init(params), params)
    >>> params["w"] + updates["w"]   # soft-threshold by ηλ = 0.5: an exact zero
    Array([ 0. , -1.5], dtype=float32)
  """
  _validate.check_optax_order(proximal_sgd, nesterov=nesterov,
                              accumulator_dtype=accumulator_dtype)
  op = _prox_op(prox, l1_ratio)
  prox_lr = learning_rate
  if momentum is not None:
    if _validate.is_concrete(momentum) and not 0.0 <= float(_real(momentum)) < 1.0:
      raise ValueError(f"momentum must be in [0, 1), got {momentum}.")
    if callable(learning_rate):
      prox_lr = lambda count: learning_rate(count) / (1 - momentum)
    else:
      prox_lr = learning_rate / (1 - momentum)
  return optax.chain(optax.sgd(learning_rate, momentum, nesterov, accumulator_dtype),
                     proximal(op, weight_decay, learning_rate=prox_lr, mask=mask))


class AdamStepState(NamedTuple):
  """Adam's moments and the step count of the scheduled hyperparameters."""
  count: jax.Array
  adam: optax.ScaleByAdamState


def adam_then(name: str, learning_rate: ScalarOrSchedule, strength: ScalarOrSchedule,
              finish: Callable[..., Any], *, b1: float, b2: float, eps: float,
              eps_root: float = 0.0, mu_dtype: Any = None, nesterov: bool = False,
              mask: masks.Mask | None) -> optax.GradientTransformation:
  """Adam's step, then `finish(steps, params, nu_hat, lr, lams) -> updates`.

  The skeleton of the optimizers that need Adam's second moment after its step
  (`proximal_adam`, `wdjax.variants.adams`): `steps` is −η_t·m̂/(√v̂ + ε) per leaf,
  `nu_hat` the list of bias-corrected v̂ leaves (real, in at least float32), `lr` the
  value of η_t and `lams` the list of λ per leaf at this step.
  """
  adam = optax.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                             nesterov=nesterov)

  def init_fn(params):
    check_init(mask, params, strength)
    return AdamStepState(count=jnp.zeros([], jnp.int32), adam=adam.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args  # accepted like optax's own transforms (GradientTransformationExtraArgs)
    params = _need_params(name, params)
    direction, adam_state = adam.update(updates, state.adam, params)
    lr = _real(_validate.evaluate(learning_rate, state.count, "learning_rate"))
    lams = leaf_values(strength, params, state.count, "weight_decay")
    nu_hat = []
    for v in jax.tree.leaves(masks.unwrap(adam_state.nu)):
      # optax keeps |g|² of a complex leaf in a complex array; bf16 moments: float32
      v = jnp.real(v) if jnp.iscomplexobj(v) else v
      acc = jnp.result_type(jnp.float32, v.dtype)
      b2_ = jnp.asarray(_real(b2), acc)
      nu_hat.append(v.astype(acc) / (1 - b2_ ** adam_state.count.astype(acc)))
    steps = jax.tree.map(lambda d: -_validate.cast_like(lr, d) * d, direction)
    updates = finish(steps, params, nu_hat, lr, lams)
    return updates, AdamStepState(count=optax.safe_increment(state.count), adam=adam_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def proximal_adam(learning_rate: ScalarOrSchedule, prox: str | Callable[..., Any] = "l1",
                  weight_decay: ScalarOrSchedule = 0.0, *, b1: float = 0.9,
                  b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                  mu_dtype: Any = None, nesterov: bool = False, l1_ratio: Any = None,
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

  Args:
    learning_rate: η_t, a float, an array or a schedule.
    prox: a separable operator of `wdjax.prox` or its name ("l1", "l2", "elastic_net").
    weight_decay: λ >= 0, the strength of the penalty R (a value, or one per leaf).
    b1, b2, eps, eps_root, mu_dtype, nesterov: `optax.adam`'s.
    l1_ratio: α of `prox="elastic_net"` (default 0.5).
    mask: which leaves to regularize (default: weights, not biases or norms).

  References:
    Yun et al., Adaptive Proximal Gradient Methods for Structured Neural Networks
    (ProxGen), 2021. https://arxiv.org/abs/2105.09221 (NeurIPS 2021)

  Example:
    >>> import jax.numpy as jnp, optax, wdjax
    >>> tx = wdjax.proximal_adam(0.1, "l1", 0.5, mask=None)
    >>> params = {"w": jnp.array([0.05, 1.0])}
    >>> updates, _ = tx.update({"w": jnp.array([2.0, 2.0])}, tx.init(params), params)
    >>> # Adam's first step is -η·sign(g) = -0.1; D = |g| = 2, threshold ηλ/D = 0.025
    >>> (params["w"] + updates["w"]).round(4)
    Array([-0.025,  0.875], dtype=float32)
  """
  _validate.check_optax_order(proximal_adam, nesterov=nesterov, mu_dtype=mu_dtype, b1=b1, b2=b2)
  prox = _prox_op(prox, l1_ratio)
  if not getattr(prox, "separable", False):
    raise ValueError(f"proximal_adam needs a separable prox (wdjax.prox.l1, l2, "
                     f"elastic_net); {getattr(prox, '__name__', prox)} is not. Use "
                     "optax.chain(optax.sgd(η), wdjax.proximal(...)) for it.")
  check_values("weight_decay", weight_decay)
  check_values("learning_rate", learning_rate, positive=True)

  def finish(steps, params, nu_hat, lr, lams):
    def step(u, w, v, lam):
      z = [wi + ui for wi, ui in zip(w, u)]
      # per-coordinate threshold scale t = η_t / D with D = √v̂ + ε (real, also for a
      # complex leaf: the prox thresholds its modulus)
      t = [(_validate.cast_like(lr, vi) / (jnp.sqrt(vi) + _real(eps))).astype(
          real_dtype(wi.dtype)) for vi, wi in zip(v, w)]
      return [zp - wi for zp, wi in zip(prox(z, _collapse(lam), t), w)]

    return _map_masked(step, steps, params, mask, nu_hat, lams)

  return adam_then("proximal_adam", learning_rate, weight_decay, finish, b1=b1, b2=b2,
                   eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov,
                   mask=mask)

"""Modern optax optimizers with wdjax's decay, composed so that the weights decay once.

Several optax optimizers decay the weights themselves (`optax.lion` by default, with
λ = 1e-3; `optax.adamw`; `optax.contrib.muon` with `weight_decay=`): chaining a wdjax decay
after them decays twice. The presets below turn the built-in decay off and put wdjax's in
the right place:

| preset               | update (Optax sign: params ← params + u)                      | native, equal at mask=None, scale_by="lr" |
|----------------------|---------------------------------------------------------------|-------------------------------------------|
| `lion`               | u = −η_t·sign(β₁m + (1−β₁)g) − c_t·λ·w                        | `optax.lion(η, weight_decay=λ)`           |
| `muon`               | matrices: u = −η_t·NS(m) − c_t·λ·w, c_t from η_t;             | `optax.contrib.muon(η, weight_decay=λ,`   |
|                      | other leaves: AdamW with η_a,t and λ_a, c_t from η_a,t        | `adam_weight_decay=λ_a, adam_learning_rate=η_a)` |
| `schedule_free_adamw`| decay inside the wrapper: z ← z − η_t(r̂ + λ·y), at y          | `optax.contrib.schedule_free_adamw`       |

For schedule-free methods the decay must go *inside* the wrapper, on the base step at the
gradient point y (the native rule); after the wrapper it would shrink the interpolated
iterate instead. The recipe for another base: `optax.contrib.schedule_free(
optax.chain(base, wdjax.decoupled(λ, learning_rate=η)), learning_rate=η)`.

`chain` is `optax.chain` that warns (once, naming both) when one of its transforms decays
the weights with optax's `add_decayed_weights` and another is a wdjax decay. The check
lives here, in the chain, because it is the one place that sees both: a wdjax transform's
`init` sees only the params, and an optax optimizer's decay is visible only inside its
closures (`find_builtin_decays`).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import jax
import numpy as np
import optax

from wdjax import _validate
from wdjax._validate import ScalarOrSchedule
from wdjax.leafwise import check_values, per_group
from wdjax.transforms import DEFAULT_MASK, decoupled


class DoubleDecayWarning(UserWarning):
  """A chain decays the weights twice: an optimizer's built-in decay and a wdjax decay."""


def _walk(obj: Any, seen: set[int], depth: int = 0):
  """Yields every function reachable from `obj` through closures, partials and containers
  (how optax builds chains, masks, partitions and wrappers)."""
  if depth > 24 or id(obj) in seen:
    return
  seen.add(id(obj))
  if isinstance(obj, (tuple, list)):
    for x in obj:
      yield from _walk(x, seen, depth + 1)
  elif isinstance(obj, dict):
    for x in obj.values():
      yield from _walk(x, seen, depth + 1)
  elif hasattr(obj, "func") and hasattr(obj, "keywords"):  # functools.partial
    yield from _walk((obj.func, obj.args, dict(obj.keywords)), seen, depth + 1)
  elif callable(obj) and hasattr(obj, "__code__"):
    yield obj
    for cell in obj.__closure__ or ():
      try:
        yield from _walk(cell.cell_contents, seen, depth + 1)
      except ValueError:  # an empty cell
        pass


def _is_zero(x: Any) -> bool:
  return (not callable(x) and _validate.is_concrete(x)
          and bool(np.all(np.asarray(x, dtype=np.float64) == 0)))


def find_builtin_decays(tx: Any) -> list[str]:
  """Descriptions of the non-zero `optax.add_decayed_weights` inside `tx` (e.g. the decay
  of `optax.lion`, `optax.adamw`), found through its closures. A traced or scheduled λ
  counts as non-zero."""
  found = []
  for fn in _walk(tx, set()):
    code = fn.__code__
    if fn.__qualname__.startswith("add_decayed_weights.") and "weight_decay" in code.co_freevars:
      lam = fn.__closure__[code.co_freevars.index("weight_decay")].cell_contents
      if not _is_zero(lam):
        found.append(f"optax.add_decayed_weights(weight_decay={lam!r})")
  return sorted(set(found))


def find_wdjax_decays(tx: Any) -> list[str]:
  """The names of the wdjax decays (`wdjax.decoupled`, `wdjax.coupled(l2)`, ...) in `tx`."""
  return sorted({fn.wdjax_decay for fn in _walk(tx, set()) if hasattr(fn, "wdjax_decay")})


def check_double_decay(tx: Any) -> None:
  """Warns (`DoubleDecayWarning`) when `tx` holds both an optax built-in decay and a wdjax
  decay."""
  builtin, ours = find_builtin_decays(tx), find_wdjax_decays(tx)
  if builtin and ours:
    warnings.warn(
        f"the weights are decayed twice: by {', '.join(builtin)} inside an optax optimizer "
        f"(optax.lion decays by default, λ = 1e-3) and by {', '.join(ours)}. Turn the "
        "optimizer's own decay off (weight_decay=0.0) or use the wdjax preset "
        "(wdjax.lion, wdjax.muon, wdjax.schedule_free_adamw).",
        DoubleDecayWarning, stacklevel=3)


def chain(*transforms: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
  """`optax.chain` that warns once when the weights would be decayed twice.

  Example:
    >>> import optax, warnings, wdjax
    >>> with warnings.catch_warnings(record=True) as w:
    ...   warnings.simplefilter("always")
    ...   tx = wdjax.chain(optax.lion(1e-4), wdjax.decoupled(0.1, learning_rate=1e-4))
    >>> print(w[0].message)  # doctest: +ELLIPSIS
    the weights are decayed twice: by optax.add_decayed_weights(weight_decay=0.001) ... and by wdjax.decoupled...
  """
  check_double_decay(transforms)
  return optax.chain(*transforms)


def lion(learning_rate: ScalarOrSchedule, b1: Any = 0.9, b2: Any = 0.99, mu_dtype: Any = None,
         weight_decay: Any = 1e-3, mask: Any = DEFAULT_MASK, *, scale_by: str = "lr",
         peak_learning_rate: Any = None) -> optax.GradientTransformationExtraArgs:
  """Lion with wdjax's decay: `optax.lion` with its own decay off, then `wdjax.decoupled`.

  u = −η_t·sign(β₁m + (1 − β₁)g) − c_t·λ·w, c_t by `scale_by`: "lr" (η_t: `optax.lion`'s
  rule, to which it is equal at mask=None), "schedule" (η_t/η_peak) or "constant" (1).
  Arguments, positions and defaults as `optax.lion`, except `mask` ("weights_only").

  References:
    Chen et al, Symbolic Discovery of Optimization Algorithms, 2023.
    https://arxiv.org/abs/2302.06675

  Example:
    >>> import jax.numpy as jnp, wdjax
    >>> tx = wdjax.lion(0.1, weight_decay=0.5, mask=None)
    >>> params = {"w": jnp.array([2.0])}
    >>> updates, _ = tx.update({"w": jnp.array([-3.0])}, tx.init(params), params)
    >>> updates["w"]  # 0.1·sign(3) − 0.1·0.5·2
    Array([0.], dtype=float32)
  """
  _validate.check_optax_order(lion, mu_dtype=mu_dtype, b1=b1, b2=b2)
  return optax.chain(optax.lion(learning_rate, b1, b2, mu_dtype, weight_decay=0.0),
                     decoupled(weight_decay, learning_rate=learning_rate, scale_by=scale_by,
                               peak_learning_rate=peak_learning_rate, mask=mask))


def muon_leaves(weight_dimension_numbers: Any = None) -> Callable[[Any], Any]:
  """The mask of the leaves `optax.contrib.muon` orthogonalizes: matrices (ndim 2), or the
  leaves whose `weight_dimension_numbers` entry is not None."""
  if weight_dimension_numbers is None:
    def matrices(params):
      return jax.tree.map(lambda x: np.ndim(x) == 2, params)
    matrices.shape_only = True  # valid inside optax.flatten, as optax's own rule
    return matrices

  def mask(params):
    dims = (weight_dimension_numbers(params) if callable(weight_dimension_numbers)
            else weight_dimension_numbers)
    is_dim = lambda x: x is None or isinstance(x, optax.contrib.MuonDimensionNumbers)
    return jax.tree.map(lambda d, sub: jax.tree.map(lambda _: d is not None, sub),
                        dims, params, is_leaf=is_dim)
  return mask


def muon(learning_rate: ScalarOrSchedule, ns_coeffs: Any = (3.4445, -4.7750, 2.0315),
         ns_steps: Any = 5, beta: Any = 0.95, eps: Any = 1e-8, weight_decay: Any = 0.0,
         mask: Any = DEFAULT_MASK, mu_dtype: Any = None, *, nesterov: bool = True,
         adaptive: bool = False, adam_b1: Any = 0.9, adam_b2: Any = 0.999,
         adam_eps_root: Any = 0.0, adam_weight_decay: Any = 0.0,
         adam_learning_rate: ScalarOrSchedule | None = None,
         muon_weight_dimension_numbers: Any = None, consistent_rms: Any = None,
         scale_by: str = "lr", peak_learning_rate: Any = None,
         adam_peak_learning_rate: Any = None) -> optax.GradientTransformationExtraArgs:
  """Muon with wdjax's decay, each branch with its own learning rate in c_t.

  `optax.contrib.muon` orthogonalizes the momentum of matrix leaves (learning rate η_t)
  and sends the other leaves to AdamW (learning rate η_a,t = `adam_learning_rate`). Here
  its decays are off and one `wdjax.decoupled` follows, with per-leaf values:

    matrices:     u ← u − c_t·λ·w,      c_t from η_t   (`weight_decay`)
    other leaves: u ← u − c_a,t·λ_a·w,  c_a,t from η_a,t (`adam_weight_decay`)

  With mask=None and scale_by="lr" it equals `optax.contrib.muon(η, weight_decay=λ,
  adam_weight_decay=λ_a, adam_learning_rate=η_a)`. A single `learning_rate=` in a chained
  `wdjax.decoupled` could not express c_t for both branches. Positions as
  `optax.contrib.muon`, with two differences a port must know:
  - `mask` (which leaves decay, in both branches; default "weights_only") sits where optax
    has `weight_decay_mask` (the Muon branch only, default every matrix). With the
    default, `adam_weight_decay` spares biases and normalization parameters, which
    optax's decays; pass mask=None for optax's behaviour.
  - no `preconditioning` (optax 0.2.8's keyword, default "frobenius", the only form
    here): passing it is a TypeError.

  References:
    Jordan et al, Muon: An optimizer for hidden layers in neural networks, 2024.
    https://kellerjordan.github.io/posts/muon/

  Example:
    >>> import jax.numpy as jnp, wdjax
    >>> tx = wdjax.muon(0.1, weight_decay=0.5, adam_learning_rate=0.01, adam_weight_decay=1.0,
    ...                 mask=None)
    >>> params = {"kernel": jnp.eye(2), "vec": jnp.ones(2)}
    >>> zero = {"kernel": jnp.zeros((2, 2)), "vec": jnp.zeros(2)}
    >>> updates, _ = tx.update(zero, tx.init(params), params)  # decay alone
    >>> updates["kernel"][0, 0], updates["vec"][0]   # −0.1·0.5·1 and −0.01·1.0·1
    (Array(-0.05, dtype=float32), Array(-0.01, dtype=float32))
  """
  _validate.check_optax_order(muon, nesterov=nesterov, mu_dtype=mu_dtype)
  # Each branch's own values, checked under their own names (they are combined below).
  check_values("learning_rate", learning_rate, positive=True)
  check_values("weight_decay", weight_decay)
  check_values("adam_weight_decay", adam_weight_decay)
  if adam_learning_rate is not None:
    check_values("adam_learning_rate", adam_learning_rate, positive=True)
  options = {"consistent_rms": consistent_rms} if consistent_rms is not None else {}
  if muon_weight_dimension_numbers is not None:
    options["muon_weight_dimension_numbers"] = muon_weight_dimension_numbers
  base = optax.contrib.muon(learning_rate, ns_coeffs, ns_steps, beta, eps, 0.0, None, mu_dtype,
                            nesterov=nesterov, adaptive=adaptive, adam_b1=adam_b1,
                            adam_b2=adam_b2, adam_eps_root=adam_eps_root,
                            adam_weight_decay=0.0, adam_learning_rate=adam_learning_rate,
                            **options)
  matrices = muon_leaves(muon_weight_dimension_numbers)
  adam_lr = learning_rate if adam_learning_rate is None else adam_learning_rate
  peak = None
  if peak_learning_rate is not None or adam_peak_learning_rate is not None:
    adam_peak = adam_peak_learning_rate if adam_peak_learning_rate is not None else peak_learning_rate
    muon_peak = peak_learning_rate if peak_learning_rate is not None else adam_peak
    peak = per_group([(matrices, muon_peak)], default=adam_peak, require_match=False)
  decay = decoupled(per_group([(matrices, weight_decay)], default=adam_weight_decay,
                              require_match=False),
                    learning_rate=per_group([(matrices, learning_rate)], default=adam_lr,
                                            require_match=False),
                    scale_by=scale_by, peak_learning_rate=peak, mask=mask)
  return optax.chain(base, decay)


def schedule_free_adamw(learning_rate: Any, warmup_steps: int | None = None,
                        b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8,
                        weight_decay: Any = 0.0, weight_lr_power: Any = 2.0,
                        state_dtype: Any = None, *, mask: Any = DEFAULT_MASK,
                        scale_by: str = "lr", peak_learning_rate: Any = None
                        ) -> optax.GradientTransformationExtraArgs:
  """Schedule-free AdamW with wdjax's decay inside the wrapper (the native rule).

  The base step at the gradient point y is z ← z − η_t·r̂ − c_t·λ·y (r̂ Adam's step without
  momentum), wrapped by `optax.contrib.schedule_free`. With mask=None and scale_by="lr" it
  equals `optax.contrib.schedule_free_adamw(η, weight_decay=λ)`. Arguments as
  `optax.contrib.schedule_free_adamw`, except that `learning_rate` has no default (optax's
  is 0.0025; here η also sets the decay's c_t, and every wdjax optimizer asks for it);
  `mask`, `scale_by`, `peak_learning_rate` are keyword-only, and the default mask is
  "weights_only" (optax decays every leaf: pass mask=None for its behaviour). Evaluate at
  `optax.contrib.schedule_free_eval_params(state, params)`.

  References:
    Defazio et al, The Road Less Scheduled, 2024. https://arxiv.org/abs/2405.15682

  Example:
    >>> import jax.numpy as jnp, wdjax
    >>> tx = wdjax.schedule_free_adamw(1.0, weight_decay=0.1)
    >>> params = {"kernel": jnp.ones((2, 2))}
    >>> updates, state = tx.update({"kernel": jnp.zeros((2, 2))}, tx.init(params), params)
    >>> round(float(updates["kernel"][0, 0]), 4)  # first step: x = z, y moves by −η·λ·y
    -0.1
  """
  _validate.check_optax_order(schedule_free_adamw, b1=b1, b2=b2)
  peak = peak_learning_rate
  if warmup_steps is not None:
    peak = learning_rate if peak is None else peak
    learning_rate = optax.warmup_constant_schedule(0.0, learning_rate, warmup_steps)
  base = optax.chain(
      optax.scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
      optax.scale_by_learning_rate(learning_rate),
      decoupled(weight_decay, learning_rate=learning_rate, scale_by=scale_by,
                peak_learning_rate=peak, mask=mask))
  return optax.contrib.schedule_free(base, learning_rate=learning_rate, b1=b1,
                                     weight_lr_power=weight_lr_power, state_dtype=state_dtype)

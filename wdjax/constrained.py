"""Constrained parameter regularization (CPR): a bound per matrix instead of a penalty.

CPR replaces weight decay's one coefficient λ for every leaf by a constraint per leaf
(each weight matrix, embedding, ...):

  R(W) = mean(W²) ≤ κ_W,

enforced by an augmented-Lagrangian multiplier λ_W ≥ 0 per leaf, updated every step. A
leaf is decayed only while its multiplier is positive, i.e. after it went over its bound
and until the excess it accumulated is paid back; leaves under their bound are left alone.
The bound κ_W comes from the leaf itself (`kappa_init_method`): a value, a multiple of
R(W₀) at initialization, R after a warm start of s steps, or R at the first inflection
point of R over training (the paper's hyperparameter-free "Kappa-IP").

`cpr` is the transformation (placed after any optimizer), `adamcpr` the Adam preset.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from wdjax import _validate, masks
from wdjax.leafwise import _real
from wdjax.transforms import (DEFAULT_MASK, _map_masked, _need_params, check_init,
                              mark_decay, resolve_mask)

KAPPA_INIT_METHODS = ("uniform", "dependent", "warm_start", "inflection_point")
_DEFAULT_PARAM = {"uniform": None, "dependent": 1.0, "warm_start": None,
                  "inflection_point": 1}


class CPRState(NamedTuple):
  """Step count; per decayed leaf (`optax.MaskedNode()` elsewhere) the bound κ (+inf while
  unset), the multiplier λ, and the last sample of R and of its increase (for κ-IP)."""
  count: jax.Array
  kappa: Any
  lagmul: Any
  prev_reg: Any
  prev_delta: Any


def regularizer(w: jax.Array) -> jax.Array:
  """R(W) = mean(|W|²) over every entry of the leaf, in at least float32."""
  acc = jnp.result_type(jnp.float32, jnp.real(w).dtype)
  return jnp.mean(jnp.real(jnp.conj(w) * w).astype(acc))


def _check(method: str, param: Any, lagmul_rate: Any) -> Any:
  if method not in KAPPA_INIT_METHODS:
    raise ValueError(f"kappa_init_method must be one of {KAPPA_INIT_METHODS}, got "
                     f"{method!r}.")
  param = _DEFAULT_PARAM[method] if param is None else param
  if param is None:
    raise ValueError(f"kappa_init_method={method!r} needs kappa_init_param= ("
                     + ("the bound κ on mean(W²)" if method == "uniform" else
                        "s, the number of steps before κ = R(W_s)") + ").")
  if method in ("warm_start", "inflection_point"):
    if _validate.is_concrete(param) and (float(param) != int(float(param))
                                         or float(param) < 1):
      raise ValueError(f"kappa_init_param for {method!r} is a number of steps >= 1, got "
                       f"{param!r}.")
  else:
    _validate.check_strength("kappa_init_param", param)
  _validate.check_strength("lagmul_rate", lagmul_rate)
  return param


def cpr(kappa_init_method: str = "inflection_point", kappa_init_param: Any = None, *,
        lagmul_rate: Any = 1.0, mask: Any = DEFAULT_MASK) -> optax.GradientTransformationExtraArgs:
  """Constrained parameter regularization, after the optimizer: R(W) ≤ κ per leaf.

  At step t (1-based), with W̃ = W + u the leaf after the optimizer's step u:

    λ ← max(0, λ + μ·(R(W̃) − κ)),     W⁺ = W̃ − 2λ·W̃,     u ← W⁺ − W,

  with R(W) = mean(W²) and μ = `lagmul_rate`. (2λW̃ is λ·∇‖W̃‖², the correction of the
  authors' implementation, while the constraint is on the mean; μ = 1 is their default.)
  λ starts at 0 and is 0 while κ is unset. κ per leaf, by `kappa_init_method`:

  - "uniform": κ = `kappa_init_param` for every leaf.
  - "dependent": κ = k·R(W₀) with k = `kappa_init_param` (default 1), W₀ the params at
    init (the paper's Kappa-kI₀).
  - "warm_start": no regularization for s = `kappa_init_param` steps; κ = R(W̃_s), and
    the multiplier is updated from step s + 1 (Kappa-WS).
  - "inflection_point": R is sampled every k = `kappa_init_param` steps (default 1),
    r_0 = R(W₀) at init and r_j = R(W̃_{jk}); with increases δ_j = r_j − r_{j−1}, κ is set
    to r_j at the first j ≥ 2 with δ_j < δ_{j−1}: where R, which grows early in training,
    first grows more slowly (its second difference turns negative). No regularization
    before (Kappa-IP). Differences from the authors' code: r_0 is R(W₀), where their
    code starts from 0, and κ is R(W̃) of the sampled step in both methods.

  Args:
    kappa_init_method: "uniform", "dependent", "warm_start" or "inflection_point".
    kappa_init_param: κ, k, s or k (see above); may be traced.
    lagmul_rate: μ >= 0, the step of the multiplier (μ = 0: no regularization).
    mask: which leaves are constrained (default "weights_only": not biases or norms).

  Returns:
    An `optax.GradientTransformationExtraArgs` with `CPRState` (κ and λ per leaf).

  References:
    Franke et al, Improving Deep Learning Optimization through Constrained Parameter
    Regularization, 2023 (NeurIPS 2024). https://arxiv.org/abs/2311.09058

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from wdjax import constrained
    >>> tx = optax.chain(optax.sgd(1.0), constrained.cpr("uniform", 1.0, lagmul_rate=0.1,
    ...                                                  mask=None))
    >>> params = {"w": jnp.array([2.0, 1.0])}   # R = mean(W²) = 2.5 > κ = 1
    >>> updates, state = tx.update({"w": jnp.zeros(2)}, tx.init(params), params)
    >>> round(float(state[1].lagmul["w"]), 4), updates["w"]  # λ = 0.1·(2.5 − 1), u = −2λW
    (0.15, Array([-0.6, -0.3], dtype=float32))
  """
  kappa_init_param = _check(kappa_init_method, kappa_init_param, lagmul_rate)
  method = kappa_init_method

  def init_fn(params):
    check_init(mask, params)
    params = masks.unwrap(params)
    bools = resolve_mask(mask, params)
    leaves, treedef = jax.tree.flatten(params)
    regs = [regularizer(w) if b else None for w, b in zip(leaves, bools)]

    def tree(fn):
      return jax.tree.unflatten(treedef, [fn(r) if b else optax.MaskedNode()
                                          for r, b in zip(regs, bools)])

    def kappa0(r):
      if method == "uniform":
        return jnp.asarray(_real(kappa_init_param), r.dtype)
      if method == "dependent":
        return jnp.asarray(_real(kappa_init_param), r.dtype) * r
      return jnp.full([], jnp.inf, r.dtype)

    return CPRState(count=jnp.zeros([], jnp.int32), kappa=tree(kappa0),
                    lagmul=tree(jnp.zeros_like), prev_reg=tree(lambda r: r),
                    prev_delta=tree(jnp.zeros_like))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    params = _need_params("cpr", params)
    t = state.count + 1  # this step, 1-based
    bools = resolve_mask(mask, params)
    fields = (state.kappa, state.lagmul, state.prev_reg, state.prev_delta)
    per_leaf = [_per_leaf(f, bools) for f in fields]
    new_state: list[list[Any]] = [[], [], [], []]

    def step(u, w, kappa, lagmul, prev_reg, prev_delta):
      out = []
      for ui, wi, ka, la, pr, pd in zip(u, w, kappa, lagmul, prev_reg, prev_delta):
        new_w = wi + ui.astype(wi.dtype)
        r = regularizer(new_w)
        if method == "warm_start":
          ka = jnp.where(t == kappa_init_param, r, ka)
          active = t > kappa_init_param
        elif method == "inflection_point":
          sample = t % kappa_init_param == 0
          delta = r - pr
          found = sample & (t >= 2 * kappa_init_param) & (delta < pd) & jnp.isinf(ka)
          ka = jnp.where(found, r, ka)
          pr, pd = jnp.where(sample, r, pr), jnp.where(sample, delta, pd)
          active = jnp.isfinite(ka)
        else:
          active = jnp.bool_(True)
        excess = r - jnp.where(active, ka, r)  # 0 while κ is unset: no inf arithmetic
        mu = jnp.asarray(_real(lagmul_rate), r.dtype)
        la = jnp.where(active, jnp.maximum(0.0, la + mu * excess), 0.0).astype(la.dtype)
        for store, v in zip(new_state, (ka, la, pr, pd)):
          store.append(v)
        out.append(ui - (_validate.cast_like(2 * la, wi) * new_w).astype(ui.dtype))
      return out

    updates = _map_masked(step, updates, params, mask, *per_leaf)
    kappa, lagmul, prev_reg, prev_delta = (_as_tree(v, params, bools) for v in new_state)
    return updates, CPRState(count=optax.safe_increment(state.count), kappa=kappa,
                             lagmul=lagmul, prev_reg=prev_reg, prev_delta=prev_delta)

  return mark_decay(optax.GradientTransformationExtraArgs(init_fn, update_fn), "wdjax.cpr")


def _per_leaf(tree: Any, bools: list[bool]) -> list[Any]:
  stored = iter(jax.tree.leaves(tree))
  return [next(stored) if b else None for b in bools]


def _as_tree(values: list[Any], params: Any, bools: list[bool]) -> Any:
  it = iter(values)
  treedef = jax.tree.structure(params)
  return jax.tree.unflatten(treedef, [next(it) if b else optax.MaskedNode() for b in bools])


def adamcpr(learning_rate: Any, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
            eps_root: float = 0.0, mu_dtype: Any = None, mask: Any = DEFAULT_MASK, *,
            nesterov: bool = False, kappa_init_method: str = "inflection_point",
            kappa_init_param: Any = None,
            lagmul_rate: Any = 1.0) -> optax.GradientTransformation:
  """AdamCPR: `chain(optax.adam(η), cpr(kappa_init_method, kappa_init_param, ...))`.

  u = −η_t·m̂/(√v̂ + ε), then CPR's correction −2λ_W·W̃ on each constrained leaf (see
  `cpr`): no weight decay coefficient, a bound per leaf. Positional arguments as
  `optax.adam`, then `mask`, in the slot where `optax.adamw` has `weight_decay` (there is
  no λ to give: a number there, as from a port of an `optax.adamw` call, is an error);
  CPR's options are keyword-only. Default: the inflection-point bound (Kappa-IP, no
  hyperparameter) and μ = 1.

  References:
    Franke et al, Improving Deep Learning Optimization through Constrained Parameter
    Regularization, 2023 (NeurIPS 2024). https://arxiv.org/abs/2311.09058

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import constrained
    >>> tx = constrained.adamcpr(0.1, kappa_init_method="dependent", kappa_init_param=0.5,
    ...                          mask=None)
    >>> params = {"w": jnp.array([1.0, -1.0])}   # κ = 0.5·R(W₀) = 0.5
    >>> updates, state = tx.update({"w": jnp.array([-1.0, 1.0])}, tx.init(params), params)
    >>> # W̃ = (1.1, −1.1), R = 1.21: λ = 0.71, u = 0.1·sign(−g) − 2·0.71·W̃
    >>> [round(float(x), 4) for x in updates["w"]]
    [-1.462, 1.462]
  """
  _validate.check_optax_order(adamcpr, nesterov=nesterov, mu_dtype=mu_dtype, b1=b1, b2=b2)
  if isinstance(mask, (int, float)) and not isinstance(mask, bool):
    raise TypeError(f"adamcpr has no weight_decay (CPR bounds each leaf instead of decaying "
                    f"it), but got mask={mask!r} in the slot where optax.adamw has "
                    "weight_decay: drop it (the bound is set by kappa_init_method), and pass "
                    "mask= by keyword.")
  _validate.check_positive("learning_rate", learning_rate)
  return optax.chain(optax.adam(learning_rate, b1, b2, eps, eps_root, mu_dtype,
                                nesterov=nesterov),
                     cpr(kappa_init_method, kappa_init_param, lagmul_rate=lagmul_rate,
                         mask=mask))

"""Decay toward a reference point w₀ instead of toward 0: L2-SP / L2-init and SPD.

Optax convention: the optimizer emits the update u (params ← params + u). A reference
w₀ is the params at `init` (the default: L2-init when training from scratch, L2-SP when
the params at init are pretrained weights) or a pytree given as `reference=` (pretrained
weights kept apart from the params, or zeros). It is kept in the transform's state for
the leaves the `mask` decays.

| rule                   | update on a decayed leaf                                 | paper           |
|------------------------|----------------------------------------------------------|-----------------|
| `toward_reference`     | u ← u − c_t·λ·(w − w₀)                                   | Li et al 2018   |
| `selective_projection` | w̃ = w + u; if −⟨g, w − w₀⟩ < 0: w̃ ← w̃ − λ·r·(w̃ − w₀)    | Tian et al 2024 |

and the presets `adamw_sp` (Adam + `toward_reference`, positional arguments as
`optax.adamw`) and `adam_spd` (Adam + SPD).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from wdjax import _validate, masks
from wdjax._validate import ScalarOrSchedule
from wdjax.leafwise import check_values, leaf_values
from wdjax.transforms import (DEFAULT_MASK, _map_masked, _need_params, check_decay_scale,
                              check_init, decay_coefficients, mark_decay, resolve_mask)


class ReferenceState(NamedTuple):
  """Step count and w₀ of the decayed leaves (`optax.MaskedNode()` at the others)."""
  count: jax.Array
  reference: Any


class SelectiveProjectionState(NamedTuple):
  """Step count, w₀ of the decayed leaves, and the wrapped optimizer's state."""
  count: jax.Array
  reference: Any
  inner: Any


def init_reference(reference: Any, params: Any, mask: Any) -> Any:
  """w₀ as the state keeps it: a copy of `reference` (or of `params` when None) in the
  params' dtypes, with `optax.MaskedNode()` at the leaves `mask` does not decay."""
  params = masks.unwrap(params)
  bools = resolve_mask(mask, params, allow_empty=True)   # (init checked it)
  ref = params if reference is None else masks.unwrap(reference)
  p_leaves, treedef = jax.tree.flatten(params)
  r_leaves = jax.tree.leaves(ref)
  if jax.tree.structure(ref) != treedef:
    raise ValueError(f"reference= has the structure {jax.tree.structure(ref)}, the params "
                     f"{treedef}: pass a pytree with one array per params leaf (e.g. the "
                     "pretrained params), or None for the params at init.")
  out = []
  for b, p, r in zip(bools, p_leaves, r_leaves):
    if b and jnp.shape(r) != jnp.shape(p):
      raise ValueError(f"reference leaf of shape {jnp.shape(r)} for a params leaf of shape "
                       f"{jnp.shape(p)}.")
    out.append(jnp.array(r, dtype=p.dtype) if b else optax.MaskedNode())
  return jax.tree.unflatten(treedef, out)


def reference_leaves(reference: Any, params: Any, mask: Any) -> list[Any]:
  """One entry per params leaf: w₀ where `mask` decays, None elsewhere."""
  stored = iter(jax.tree.leaves(reference))
  bools = resolve_mask(mask, masks.unwrap(params), allow_empty=True)   # (init checked it)
  return [next(stored) if b else None for b in bools]


def toward_reference(strength: ScalarOrSchedule, *,
                     learning_rate: ScalarOrSchedule | None = None, scale_by: str = "lr",
                     peak_learning_rate: float | None = None, reference: Any = None,
                     mask: Any = DEFAULT_MASK) -> optax.GradientTransformationExtraArgs:
  """Decoupled decay toward w₀ (L2-SP, L2-init), placed after the optimizer.

  On a decayed leaf,

    u ← u − c_t·λ·(w − w₀),

  the decoupled form of the penalty (λ/2)‖w − w₀‖², which pulls w toward the starting
  point w₀ instead of toward 0. With w₀ = 0 it is `wdjax.decoupled`. c_t is named by
  `scale_by` as in `wdjax.decoupled`: "lr" (c_t = η_t, AdamW's coupling), "schedule"
  (c_t = η_t/η_peak) or "constant" (c_t = 1).

  Args:
    strength: λ >= 0: a float, an array, a schedule, or one per leaf.
    learning_rate: η_t; needed for "lr" and "schedule".
    scale_by: "lr", "schedule" or "constant".
    peak_learning_rate: η_peak for "schedule" when `learning_rate` is a schedule.
    reference: w₀, a pytree like the params (e.g. pretrained weights); None (default):
      the params given to `init`.
    mask: which leaves to decay (default "weights_only": not biases or norms).

  Returns:
    An `optax.GradientTransformationExtraArgs` whose state keeps w₀.

  References:
    Li et al, Explicit Inductive Bias for Transfer Learning with Convolutional Networks,
    2018. https://arxiv.org/abs/1802.01483
    Kumar et al, Maintaining Plasticity in Continual Learning via Regenerative
    Regularization, 2023. https://arxiv.org/abs/2308.11958

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from wdjax import reference
    >>> tx = optax.chain(optax.sgd(0.5),
    ...                  reference.toward_reference(0.1, learning_rate=0.5, mask=None))
    >>> w0 = {"w": jnp.array([1.0, -2.0])}
    >>> state = tx.init(w0)
    >>> params = {"w": jnp.array([3.0, -3.0])}      # 2 and −1 away from w₀
    >>> updates, _ = tx.update({"w": jnp.zeros(2)}, state, params)
    >>> updates["w"]                                 # −0.5·0.1·(w − w₀)
    Array([-0.1 ,  0.05], dtype=float32)
  """
  check_values("strength", strength)
  check_decay_scale(scale_by, learning_rate, peak_learning_rate)

  def init_fn(params):
    check_init(mask, params, strength)
    return ReferenceState(count=jnp.zeros([], jnp.int32),
                          reference=init_reference(reference, params, mask))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    params = _need_params("toward_reference", params)
    cs = decay_coefficients(learning_rate, scale_by, peak_learning_rate, params, state.count)
    lams = leaf_values(strength, params, state.count, "strength")
    refs = reference_leaves(state.reference, params, mask)

    def decay(u, w, c, lam, w0):
      return [ui - (_validate.cast_like(ci * li, wi) * (wi - ri)).astype(ui.dtype)
              for ui, wi, ci, li, ri in zip(u, w, c, lam, w0)]

    updates = _map_masked(decay, updates, params, mask, cs, lams, refs)
    return updates, ReferenceState(count=optax.safe_increment(state.count),
                                   reference=state.reference)

  return mark_decay(optax.GradientTransformationExtraArgs(init_fn, update_fn),
                    "wdjax.toward_reference")


def _real_dot(a: jax.Array, b: jax.Array) -> jax.Array:
  """Re⟨a, b⟩ summed over the leaf, accumulated in at least float32."""
  acc = jnp.result_type(jnp.float32, jnp.real(a).dtype)
  return jnp.sum(jnp.real(jnp.conj(a) * b).astype(acc))


def _norm(a: jax.Array) -> jax.Array:
  return jnp.sqrt(_real_dot(a, a))


def selective_projection(inner: optax.GradientTransformation, strength: ScalarOrSchedule, *,
                         reference: Any = None,
                         mask: Any = DEFAULT_MASK) -> optax.GradientTransformationExtraArgs:
  """Selective projection decay (SPD) around an optimizer `inner`, per leaf (layer).

  With g the gradient (the updates `inner` receives), w the params, w̃ = w + u the params
  after `inner`'s step u, and w₀ the reference, on each decayed leaf:

    c = −⟨g, w − w₀⟩                               (the paper's selection condition)
    r = clip((‖w̃ − w₀‖ − ‖w − w₀‖)/‖w̃ − w₀‖, 0, 1)  (the deviation ratio; 0 if w̃ = w₀)
    w⁺ = w̃ − λ·r·(w̃ − w₀)   if c < 0,   else w⁺ = w̃;   u ← w⁺ − w.

  So a leaf is pulled back toward w₀ only when the descent direction −g points toward w₀
  (c < 0: the loss no longer decreases along the leaf's progress w − w₀; the paper's
  "inconsistent loss reduction") while the step still moves it away (r > 0), and then by
  the fraction λ·r of its new deviation. The condition uses the raw gradient, which an
  optax transform placed after the optimizer never sees; this is why SPD wraps `inner`.
  Note what "the gradient points away from w₀" means here: it is −g that points *toward*
  w₀; an update that merely moves away from w₀ along −g is never decayed. As in the
  paper, λ is not multiplied by the learning rate (c_t = 1); r is computed from the norms
  of the whole leaf, in at least float32. What we implement is the paper's Algorithm and
  its authors' AdamSPD, with Adam replaced by any `inner`; the PEFT form (w₀ = 0) is
  `reference=` a pytree of zeros.

  Args:
    inner: the optimizer (e.g. `optax.adam(η)`), a complete transformation.
    strength: λ >= 0 (the paper tunes λ·r as a fraction, so λ ≤ 1 keeps w⁺ between w̃ and
      w₀): a float, an array, a schedule, or one per leaf.
    reference: w₀, a pytree like the params; None (default): the params given to `init`.
    mask: which leaves to decay (default "weights_only": not biases or norms).

  Returns:
    An `optax.GradientTransformationExtraArgs`: `inner` with SPD.

  References:
    Tian et al, Rethinking Weight Decay for Robust Fine-Tuning of Foundation Models,
    2024. https://arxiv.org/abs/2411.01713

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from wdjax import reference
    >>> w0 = {"w": jnp.array([0.0])}
    >>> tx = reference.selective_projection(optax.sgd(1.0), 0.5, reference=w0, mask=None)
    >>> params = {"w": jnp.array([1.0])}
    >>> state = tx.init(params)
    >>> # −g points toward w₀ (c = −g·1 < 0). g = 2 jumps to w̃ = −1, as far from w₀ as
    >>> # w: r = 0, no decay. g = 3 jumps to w̃ = −2: r = (2 − 1)/2, u = −3 + 0.5·0.5·2.
    >>> [float(tx.update({"w": jnp.array([g])}, state, params)[0]["w"][0]) for g in (2.0, 3.0)]
    [-2.0, -2.5]
  """
  check_values("strength", strength)

  def init_fn(params):
    check_init(mask, params, strength)
    return SelectiveProjectionState(count=jnp.zeros([], jnp.int32),
                                    reference=init_reference(reference, params, mask),
                                    inner=inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    params_in = params
    params = _need_params("selective_projection", params)
    steps, inner_state = inner.update(updates, state.inner, params_in, **extra_args)
    lams = leaf_values(strength, params, state.count, "strength")
    refs = reference_leaves(state.reference, params, mask)
    grads = jax.tree.leaves(masks.unwrap(updates))

    def project(u, w, g, lam, w0):
      out = []
      for ui, wi, gi, li, ri in zip(u, w, g, lam, w0):
        dev = wi - ri
        new_dev = (wi + ui.astype(wi.dtype)) - ri
        c = -_real_dot(gi, dev)
        cur, prev = _norm(new_dev), _norm(dev)
        r = jnp.clip(jnp.where(cur > 0, (cur - prev) / jnp.where(cur > 0, cur, 1.0), 0.0),
                     0.0, 1.0)
        k = jnp.where(c < 0, li * r, 0.0)
        out.append(ui - (_validate.cast_like(k, wi) * new_dev).astype(ui.dtype))
      return out

    steps = _map_masked(project, steps, params, mask, grads, lams, refs)
    return steps, SelectiveProjectionState(count=optax.safe_increment(state.count),
                                           reference=state.reference, inner=inner_state)

  return mark_decay(optax.GradientTransformationExtraArgs(init_fn, update_fn),
                    "wdjax.selective_projection")


def adamw_sp(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
             eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Any = None,
             weight_decay: ScalarOrSchedule = 1e-4, mask: Any = DEFAULT_MASK, *,
             nesterov: bool = False, scale_by: str = "lr",
             peak_learning_rate: float | None = None,
             reference: Any = None) -> optax.GradientTransformation:
  """AdamW toward w₀ (L2-SP): `chain(optax.adam(η), toward_reference(λ, learning_rate=η))`.

  u = −η_t·m̂/(√v̂ + ε) − c_t·λ·(w − w₀), c_t = η_t by default (see `toward_reference`);
  with w₀ = 0 it is `wdjax.adamw`. Positional arguments as `optax.adamw`; `reference`
  (default: the params at `init`), `scale_by` and `peak_learning_rate` are keyword-only.

  References:
    Li et al, Explicit Inductive Bias for Transfer Learning with Convolutional Networks,
    2018. https://arxiv.org/abs/1802.01483

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import reference
    >>> tx = reference.adamw_sp(0.1, weight_decay=0.5, mask=None)
    >>> state = tx.init({"w": jnp.array([1.0])})     # w₀ = 1
    >>> updates, _ = tx.update({"w": jnp.array([2.0])}, state, {"w": jnp.array([3.0])})
    >>> round(float(updates["w"][0]), 4)             # −0.1·sign(g) − 0.1·0.5·(3 − 1)
    -0.2
  """
  _validate.check_optax_order(adamw_sp, nesterov=nesterov, mu_dtype=mu_dtype, b1=b1, b2=b2)
  return optax.chain(optax.adam(learning_rate, b1, b2, eps, eps_root, mu_dtype,
                                nesterov=nesterov),
                     toward_reference(weight_decay, learning_rate=learning_rate,
                                      scale_by=scale_by, peak_learning_rate=peak_learning_rate,
                                      reference=reference, mask=mask))


def adam_spd(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
             eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Any = None,
             weight_decay: ScalarOrSchedule = 0.1, mask: Any = DEFAULT_MASK, *,
             nesterov: bool = False, reference: Any = None) -> optax.GradientTransformation:
  """Adam with selective projection decay: `selective_projection(optax.adam(η), λ)`.

  w̃ = w − η_t·m̂/(√v̂ + ε); where −⟨g, w − w₀⟩ < 0, w⁺ = w̃ − λ·r·(w̃ − w₀) with r the
  deviation ratio of `selective_projection`. Positional arguments as `optax.adamw` (λ is
  SPD's strength, not multiplied by η, and defaults to 0.1 where optax.adamw's 1e-4 is a
  decay rate); `reference` (default: the params at `init`) is keyword-only.

  References:
    Tian et al, Rethinking Weight Decay for Robust Fine-Tuning of Foundation Models,
    2024. https://arxiv.org/abs/2411.01713

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import reference
    >>> tx = reference.adam_spd(0.5, weight_decay=0.5, mask=None,
    ...                         reference={"w": jnp.array([0.8])})
    >>> params = {"w": jnp.array([1.0])}
    >>> # g = 1: −g points toward w₀; Adam's step −0.5 overshoots to w̃ = 0.5, 0.3 from w₀
    >>> # (0.2 before): r = 1/3, w⁺ = 0.5 − 0.5·(1/3)·(0.5 − 0.8) = 0.55
    >>> updates, _ = tx.update({"w": jnp.array([1.0])}, tx.init(params), params)
    >>> updates["w"].round(4)
    Array([-0.45], dtype=float32)
  """
  _validate.check_optax_order(adam_spd, nesterov=nesterov, mu_dtype=mu_dtype, b1=b1, b2=b2)
  _validate.check_positive("learning_rate", learning_rate)
  return selective_projection(
      optax.adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
      weight_decay, reference=reference, mask=mask)

"""Training dynamics under weight decay: norms, rotations, their equilibria, spectra.

Pure functions of one leaf's weights before and after a step (and optionally the update
itself), usable eagerly, under `jax.jit`/`jax.vmap`/`lax.scan`, and over pytrees through
`per_leaf`. In networks with normalization, weight decay does not shrink the function: it
sets an equilibrium weight norm, and with it the effective learning rate and the angle by
which each step rotates a neuron's weights (Kosson et al. 2024). These are the quantities
papers report; the predictions are `equilibrium_angle` and `equilibrium_norm`.

Neurons. `neuron_axis=None` treats the whole leaf as one vector (one number per leaf);
`neuron_axis=k` gives one number per index along axis k, reducing over all other axes.
A Flax kernel is (in, out) for `Dense` and (kh, kw, in, out) for `Conv`, so a neuron's
weight vector is a column: `neuron_axis=-1` (its fan-in C is the product of the other
axes). A PyTorch `Linear` weight is (out, in): `neuron_axis=0`. A 1-D leaf with
`neuron_axis=-1` gives one "neuron" per element.

Symbols: w = weights before the step, Δ = update, w' = w + Δ; η the learning rate, λ the
weight decay and s the decay per step (w ← (1 − s)w + ...): s = ηλ for the optax/PyTorch
convention (`scale_by="lr"`, c_t = η) and for coupled L2, s = λ for `scale_by="constant"`
(also `wdjax.sgdw`'s default c_t = s_t at a constant learning rate, where s_t = 1).
Quantities are computed in at least float32 (bf16 leaves are upcast).

| function                   | value                                                     |
|----------------------------|-----------------------------------------------------------|
| weight_norm                | ‖w‖                                                       |
| update_norm                | ‖Δ‖                                                       |
| relative_update            | ‖Δ‖ / ‖w‖                                                 |
| angular_update             | ∠(w, w') = arccos(⟨w, w'⟩ / (‖w‖‖w'‖)), computed by atan2 |
| radial_tangential          | (⟨Δ, ŵ⟩, ‖Δ − ⟨Δ, ŵ⟩ŵ‖), ŵ = w/‖w‖                        |
| effective_learning_rate    | η/‖w‖² (SGD) or η/‖w‖ (Adam-type)                         |
| timescale                  | τ_iter = 1/s, τ_epoch = τ_iter·B/N                        |
| equilibrium_angle, _norm   | predicted θ* and ‖w*‖ (AdamW, SGD + L2, SGDW, Lion)       |
| spectral_norm, stable_rank | σ_max, ‖W‖_F²/‖W‖₂²                                       |
| effective_rank             | exp(entropy of σ/Σσ)                                      |
| linf_bound                 | λ‖w‖∞ (≤ 1 at AdamW's and Lion's limit points)            |
| distance_to_init           | ‖w − w₀‖ (or / ‖w₀‖)                                      |
| zero_fraction              | fraction of exact zeros                                   |
| per_leaf                   | any of these over a pytree: {leaf name: value}            |
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from wdjax import _validate

__all__ = (
    "OPTIMIZERS",
    "RadialTangential",
    "angular_update",
    "distance_to_init",
    "effective_learning_rate",
    "effective_rank",
    "equilibrium_angle",
    "equilibrium_norm",
    "leaf_name",
    "linf_bound",
    "per_leaf",
    "radial_tangential",
    "relative_update",
    "singular_values",
    "spectral_norm",
    "stable_rank",
    "timescale",
    "update_norm",
    "weight_norm",
    "zero_fraction",
)

#: The optimizers `equilibrium_angle` and `equilibrium_norm` know (registry names).
OPTIMIZERS = ("adamw", "sgd_l2", "sgdw", "lion")


# ---- helpers ------------------------------------------------------------------------------


def _acc(x: Any) -> jax.Array:
  # At least float32, so a bf16 leaf's norms and angles are not rounded to 3 digits.
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating) or jnp.finfo(x.dtype).bits < 32:
    return x.astype(jnp.float32)
  return x


def _axes(x: jax.Array, neuron_axis: int | None) -> tuple[int, ...]:
  """The axes reduced to get one value per neuron (all axes when `neuron_axis` is None)."""
  if neuron_axis is None:
    return tuple(range(x.ndim))
  if x.ndim == 0:
    raise ValueError("neuron_axis needs a leaf with at least one axis; got a scalar. Pass "
                     "neuron_axis=None for one value per leaf.")
  if not -x.ndim <= neuron_axis < x.ndim:
    raise ValueError(f"neuron_axis={neuron_axis} is out of range for a leaf of shape "
                     f"{x.shape}; Flax kernels (in, out) use -1, PyTorch's (out, in) 0.")
  k = neuron_axis % x.ndim
  return tuple(i for i in range(x.ndim) if i != k)


def _sq(x: jax.Array, axes: tuple[int, ...], keepdims: bool = False) -> jax.Array:
  return jnp.sum(jnp.square(x), axis=axes, keepdims=keepdims)


def _div(a: jax.Array, b: jax.Array) -> jax.Array:
  """a / b, with 0/0 = 0 and a/0 = inf for a > 0 (a zero leaf that moved moved infinitely
  far relative to its size; one that did not, did not)."""
  safe = jnp.where(b > 0, b, 1)
  return jnp.where(b > 0, a / safe, jnp.where(a > 0, jnp.inf, 0))


def _delta(before: Any, after: Any, update: Any) -> jax.Array:
  if update is not None:
    return _acc(update)
  if after is None:
    raise ValueError("pass the weights after the step (`after`) or the step (`update=`).")
  return _acc(after) - _acc(before)


# ---- norms and rotations ------------------------------------------------------------------


def weight_norm(w: Any, *, neuron_axis: int | None = None) -> jax.Array:
  """The Euclidean norm ‖w‖ of a leaf, or of each neuron's weights.

  Args:
    w: a leaf (array).
    neuron_axis: None (the whole leaf) or the neurons' axis (-1 for Flax kernels).

  Returns:
    ‖w‖: a scalar, or one value per neuron.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.weight_norm(jnp.array([[3.0, 0.0], [4.0, 1.0]]), neuron_axis=-1)
    Array([5., 1.], dtype=float32)
  """
  x = _acc(w)
  return jnp.sqrt(_sq(x, _axes(x, neuron_axis)))


def update_norm(before: Any, after: Any = None, *, update: Any = None,
                neuron_axis: int | None = None) -> jax.Array:
  """The norm of the step, ‖Δ‖ = ‖w' − w‖ (or ‖update‖ when it is given).

  Args:
    before: the weights w before the step.
    after: the weights w' after it (unused when `update` is given).
    update: the step Δ itself; more accurate than after − before, which loses the low
      bits of a small step to the rounding of w'.
    neuron_axis: None or the neurons' axis (-1 for Flax kernels).

  Returns:
    ‖Δ‖: a scalar, or one value per neuron.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.update_norm(jnp.zeros(2), jnp.array([3.0, 4.0]))
    Array(5., dtype=float32)
  """
  d = _delta(before, after, update)
  return jnp.sqrt(_sq(d, _axes(d, neuron_axis)))


def relative_update(before: Any, after: Any = None, *, update: Any = None,
                    neuron_axis: int | None = None) -> jax.Array:
  """The relative update ‖Δ‖ / ‖w‖ (0 when both are 0, inf when only ‖w‖ is).

  Args:
    before, after, update, neuron_axis: as in `update_norm`.

  Returns:
    ‖Δ‖/‖w‖: a scalar, or one value per neuron.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.relative_update(jnp.array([3.0, 4.0]), jnp.array([3.0, 4.5]))
    Array(0.1, dtype=float32)
  """
  w = _acc(before)
  d = _delta(before, after, update)
  axes = _axes(w, neuron_axis)
  return _div(jnp.sqrt(_sq(d, axes)), jnp.sqrt(_sq(w, axes)))


class RadialTangential(NamedTuple):
  """The step split along ŵ = w/‖w‖ (radial, signed: < 0 shrinks w) and across it."""
  radial: jax.Array
  tangential: jax.Array


def radial_tangential(before: Any, after: Any = None, *, update: Any = None,
                      neuron_axis: int | None = None) -> RadialTangential:
  """The radial and tangential parts of the step: Δ = r·ŵ + Δ_⊥, with ŵ = w/‖w‖.

    r = ⟨Δ, ŵ⟩ (signed),   t = ‖Δ_⊥‖ = ‖Δ − r·ŵ‖,   r² + t² = ‖Δ‖².

  The tangential part is computed from Δ_⊥ itself, not as √(‖Δ‖² − r²), which cancels
  when the step is nearly radial. Weight decay alone is radial (r = −s‖w‖, t = 0); for
  scale-invariant weights the gradient is tangential (r = 0), so the radial part of a
  step measures how far an optimizer's update departs from the gradient's direction.
  A zero w has no direction: r = 0 and t = ‖Δ‖.

  Args:
    before, after, update, neuron_axis: as in `update_norm`.

  Returns:
    `RadialTangential(radial, tangential)`: scalars, or one value per neuron each.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> rt = dynamics.radial_tangential(jnp.array([2.0, 0.0]), update=jnp.array([-0.5, 1.0]))
    >>> float(rt.radial), float(rt.tangential)
    (-0.5, 1.0)
  """
  w = _acc(before)
  _, radial, tangential = _decompose(w, _delta(before, after, update), _axes(w, neuron_axis))
  return RadialTangential(radial, tangential)


def _decompose(w: jax.Array, d: jax.Array, axes: tuple[int, ...]
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(‖w‖, ⟨Δ, ŵ⟩, ‖Δ − ⟨Δ, ŵ⟩ŵ‖) reduced over `axes` (r = 0 where w = 0)."""
  ww = _sq(w, axes, keepdims=True)
  pos = ww > 0
  coef = jnp.where(pos, jnp.sum(w * d, axis=axes, keepdims=True) / jnp.where(pos, ww, 1), 0)
  tangential = jnp.sqrt(_sq(d - coef * w, axes))
  nw = jnp.sqrt(jnp.sum(ww, axis=axes))  # drops the kept axes (each of size 1)
  radial = jnp.sum(coef, axis=axes) * nw  # ⟨Δ, w⟩/‖w‖² · ‖w‖
  return nw, radial, tangential


def angular_update(before: Any, after: Any = None, *, update: Any = None,
                   neuron_axis: int | None = None) -> jax.Array:
  """The angle θ by which a step rotates the weights, in radians, in [0, π].

    θ = arccos(⟨w, w'⟩ / (‖w‖‖w'‖)) = atan2(‖Δ_⊥‖, ‖w‖ + ⟨Δ, ŵ⟩),   w' = w + Δ.

  The atan2 form is the same angle (‖w'‖ sin θ = ‖Δ_⊥‖, ‖w'‖ cos θ = ‖w‖ + ⟨Δ, ŵ⟩; see
  `radial_tangential`) but keeps full relative precision for small angles: arccos is
  flat at 1, so in float32 (ε = 1.2e-7) a cosine rounded to 1 − kε resolves only angles
  near √(2kε), none below √(2ε) ≈ 5e-4 rad, while AdamW's equilibrium angle at η = 1e-4,
  λ = 0.1 is √(2ηλ(1−β₁)/(1+β₁)) ≈ 1e-3; a clipped arccos would round it to a few
  discrete values. The angle is undefined when w or w' is 0; 0 is returned there, so
  that a mean over neurons stays finite (a dead neuron does not rotate).

  Args:
    before, after, update, neuron_axis: as in `update_norm` (pass `update=` for the most
      accurate small angles: w' − w has lost the bits of Δ below the rounding of w').

  Returns:
    θ in radians: a scalar, or one value per neuron.

  References:
    Kosson et al, Rotational Equilibrium: How Weight Decay Balances Learning Across
    Neural Networks, 2024. https://arxiv.org/abs/2305.17212

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> w = jnp.array([[1.0, 2.0], [0.0, 0.0]])        # two neurons (columns)
    >>> w2 = jnp.array([[1.0, -2.0], [1.0, 0.0]])      # rotated by 45° and by 180°
    >>> dynamics.angular_update(w, w2, neuron_axis=-1) / jnp.pi
    Array([0.25, 1.  ], dtype=float32)
  """
  w = _acc(before)
  d = _delta(before, after, update)
  nw, radial, tangential = _decompose(w, d, _axes(w, neuron_axis))
  theta = jnp.arctan2(tangential, nw + radial)
  # w = 0: no direction (atan2 would say π/2); w' = 0: both terms are 0, atan2 gives 0.
  return jnp.where(nw > 0, theta, 0)


def effective_learning_rate(w: Any, learning_rate: Any, *, optimizer: str = "sgd",
                            neuron_axis: int | None = None) -> jax.Array:
  """The learning rate of a scale-invariant weight's direction: η/‖w‖² or η/‖w‖.

  If the loss does not change when w is scaled (weights followed by a normalization),
  ∇L(w) = ∇L(ŵ)/‖w‖ with ŵ = w/‖w‖, so an SGD step moves the direction ŵ by
  (η/‖w‖²)·∇L(ŵ): the effective learning rate is η/‖w‖² (van Laarhoven 2017). An
  Adam-type step (Adam, AdamW, Lion, sign descent) has a size that does not depend on the
  gradient's scale, so the direction moves by (η/‖w‖)·(step of unit scale): η/‖w‖.
  Weight decay sets ‖w‖, and with it this learning rate.

  Args:
    w: a leaf.
    learning_rate: η (scalar, may be traced).
    optimizer: "sgd" (η/‖w‖²) or "adam" (η/‖w‖, for any update whose size does not
      scale with the gradient).
    neuron_axis: None or the neurons' axis (-1 for Flax kernels).

  Returns:
    The effective learning rate (inf where w = 0): a scalar, or one value per neuron.

  References:
    van Laarhoven, L2 Regularization versus Batch and Weight Normalization, 2017.
    https://arxiv.org/abs/1706.05350
    Kosson et al, Rotational Equilibrium: How Weight Decay Balances Learning Across
    Neural Networks, 2024. https://arxiv.org/abs/2305.17212

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> w = jnp.array([3.0, 4.0])
    >>> dynamics.effective_learning_rate(w, 0.5)                    # η/‖w‖²
    Array(0.02, dtype=float32)
    >>> dynamics.effective_learning_rate(w, 0.5, optimizer="adam")  # η/‖w‖
    Array(0.1, dtype=float32)
  """
  powers = {"sgd": 2, "adam": 1}
  if optimizer not in powers:
    raise ValueError(f"optimizer must be 'sgd' (η/‖w‖²) or 'adam' (η/‖w‖), got {optimizer!r}.")
  _validate.check_strength("learning_rate", learning_rate)
  n = weight_norm(w, neuron_axis=neuron_axis)
  eta = jnp.asarray(learning_rate, n.dtype)
  return _div(jnp.broadcast_to(eta, n.shape), n ** powers[optimizer])


# ---- timescales and equilibria ------------------------------------------------------------


def _per_step(learning_rate: Any, weight_decay: Any, scale_by: str) -> Any:
  """s, the fraction of w that decay removes per step."""
  if scale_by not in ("lr", "constant"):
    raise ValueError(f"scale_by must be 'lr' (decay per step ηλ, optax/PyTorch AdamW) or "
                     f"'constant' (λ), got {scale_by!r}.")
  _validate.check_positive("learning_rate", learning_rate)
  _validate.check_positive("weight_decay", weight_decay)
  return learning_rate * weight_decay if scale_by == "lr" else weight_decay


def timescale(*, learning_rate: Any, weight_decay: Any, batch_size: Any = None,
              dataset_size: Any = None, scale_by: str = "lr") -> tuple[Any, Any]:
  """The timescales of weight decay: τ_iter = 1/(ηλ) iterations, τ_epoch = B/(ηλN) epochs.

  Decay multiplies w by (1 − s) per step, s = ηλ, so w forgets its past (and relaxes to
  its equilibrium norm) over ~1/s iterations: w is an exponential moving average of the
  updates with timescale τ_iter = 1/s. With N examples and batch size B an epoch is N/B
  iterations: τ_epoch = τ_iter·B/N. Wang & Aitchison find the best τ_epoch roughly
  constant across model and dataset sizes. (`wdjax.variants.timescale` is the same
  computation with the same arguments.)

  Args:
    learning_rate: η > 0 (may be traced).
    weight_decay: λ > 0.
    batch_size: B (optional, with dataset_size).
    dataset_size: N.
    scale_by: "lr" (s = ηλ: optax/PyTorch AdamW, and coupled L2) or "constant" (s = λ).

  Returns:
    (τ_iter, τ_epoch); τ_epoch is None without batch_size and dataset_size.

  References:
    Wang & Aitchison, How to set AdamW's weight decay as you scale model and dataset
    size, 2024. https://arxiv.org/abs/2405.13698

  Example:
    >>> from wdjax import dynamics
    >>> dynamics.timescale(learning_rate=1e-3, weight_decay=0.1, batch_size=100,
    ...                    dataset_size=50_000)
    (10000.0, 20.0)
  """
  tau_iter = 1.0 / _per_step(learning_rate, weight_decay, scale_by)
  if batch_size is None or dataset_size is None:
    return tau_iter, None
  _validate.check_positive("batch_size", batch_size)
  _validate.check_positive("dataset_size", dataset_size)
  return tau_iter, tau_iter * batch_size / dataset_size


def _lion_k(b1: Any, b2: Any) -> Any:
  """Lion's lifetime factor K (see `equilibrium_angle`)."""
  var = (1 - b1) ** 2 + b1 ** 2 * (1 - b2) / (1 + b2)
  return (2 / math.pi) / var + 1 - 2 / math.pi


def _check_name(optimizer: str) -> None:
  if optimizer not in OPTIMIZERS:
    raise ValueError(f"no equilibrium formula for optimizer {optimizer!r}; known: "
                     f"{list(OPTIMIZERS)}. (Adam with coupled L2 has none: its balance "
                     "depends on the gradient's scale.)")


def _check_coupled(optimizer: str, scale_by: str) -> None:
  if optimizer == "sgd_l2" and scale_by != "lr":
    raise ValueError("sgd_l2 is coupled L2: its decay per step is always ηλ; scale_by "
                     "applies to decoupled decay (sgdw, adamw, lion).")


def equilibrium_angle(optimizer: str, learning_rate: Any, weight_decay: Any, *,
                      momentum: Any = 0.0, b1: Any = 0.9, b2: Any = 0.99,
                      scale_by: str = "lr") -> Any:
  """The predicted root-mean-square angular update θ* (radians per step) at equilibrium.

  For scale-invariant weights (followed by a normalization) and gradients that behave
  like a random walk (uncorrelated across steps, orthogonal to w), with s the decay per
  step (ηλ by default) and to first order in s:

  | optimizer | θ*                          | source                                 |
  |-----------|-----------------------------|----------------------------------------|
  | adamw     | √(2s·(1 − β₁)/(1 + β₁))     | Kosson et al. 2024 (√(2ηλ) for β₁ = 0) |
  | sgd_l2    | √(2ηλ/(1 + μ))              | Wan et al. 2021; Kosson et al. 2024    |
  | sgdw      | √(2s·(1 − μ)/(1 + μ))       | derived below                          |
  | lion      | √(2s/K), K below            | derived below; Kosson et al. 2024      |

  Derivation (the norm balance of `equilibrium_norm`, then θ = ‖one step‖/‖w‖):
  - SGD, μ = 0: g ⊥ w, so ‖w'‖² = (1 − s)²‖w‖² + η²‖g‖²; at equilibrium ‖w'‖ = ‖w‖ and
    cos θ = (1 − s)‖w‖/‖w'‖ = 1 − s exactly, θ = arccos(1 − s) ≈ √(2s).
  - SGD with momentum μ (m ← μm + g, step −ηm): each gradient moves w by η·g/(1 − μ) in
    total over the steps it stays in m, and one step's own norm is E‖ηm‖² =
    η²‖g‖²/(1 − μ²). In sgd_l2 (PyTorch `SGD(weight_decay=λ)`, `wdjax.sgd_l2`) λw also
    goes through m, so the decay per step is ηλ/(1 − μ); the balance
    2ηλ‖w‖²/(1 − μ) = η²‖g‖²/(1 − μ)² gives θ² = η²‖g‖²/((1 − μ²)‖w‖²) = 2ηλ/(1 + μ).
    In sgdw the decay s bypasses m: 2s‖w‖² = η²‖g‖²/(1 − μ)², θ² = 2s(1 − μ)/(1 + μ).
  - AdamW: a step is η·m̂/√v̂; each gradient moves w by η·g/√v in total (m's weights sum
    to 1), of expected squared norm η²C (C = fan-in), and one step has E‖u‖² =
    η²C(1 − β₁)/(1 + β₁) (an EMA of white noise): 2s‖w‖² = η²C gives the table.
  - Lion: a step is η·sign(c), c = β₁m + (1 − β₁)g, m ← β₂m + (1 − β₂)g, of norm η√C
    exactly. c is white noise filtered with unit total weight and variance
    σ² = (1 − β₁)² + β₁²(1 − β₂)/(1 + β₂); writing sign(c) = √(2/π)·c/σ + r (r uncorrelated
    with c, variance 1 − 2/π), each gradient's total displacement has squared norm
    η²C·K with K = (2/π)/σ² + 1 − 2/π, so 2s‖w‖² = η²CK and θ = η√C/‖w‖ = √(2s/K).
    Kosson et al.'s Lion rule keeps only (2/π)/σ² (θ 0.4% larger at the defaults
    β = (0.9, 0.99)); the 1 − 2/π term makes it exact for sign descent (β₁ = 0: √(2s)).

  Validity: s ≪ 1 − μ, 1 − β₁ and 1 − β₂ (decay must not act within the momentum's
  memory; at s/(1 − β₂) = 0.5 Lion's angle is ~15% above the prediction), weights
  scale-invariant, and the gradient's scale stable over ~1/s steps. Simulated in
  tests/test_dynamics.py (random gradients orthogonal to w, optax's optimizers): within
  3% for s/(1 − β) ≤ 0.05.

  Args:
    optimizer: "adamw", "sgd_l2" (coupled: PyTorch SGD's weight_decay), "sgdw" or "lion".
    learning_rate: η > 0 (may be traced).
    weight_decay: λ > 0.
    momentum: μ, for sgd_l2 and sgdw (no Nesterov).
    b1: β₁, for adamw and lion.
    b2: β₂, for lion (adamw's β₂ does not enter).
    scale_by: "lr" (s = ηλ) or "constant" (s = λ), for the decoupled ones.

  Returns:
    θ* in radians (a float for Python numbers, an array for arrays).

  References:
    Kosson et al, Rotational Equilibrium: How Weight Decay Balances Learning Across
    Neural Networks, 2024. https://arxiv.org/abs/2305.17212
    Wan et al, Spherical Motion Dynamics: Learning Dynamics of Normalized Neural Network
    using SGD and Weight Decay, 2021. https://arxiv.org/abs/2006.08419
    Chen et al, Symbolic Discovery of Optimization Algorithms (Lion), 2023.
    https://arxiv.org/abs/2302.06675

  Example:
    >>> from wdjax import dynamics
    >>> round(dynamics.equilibrium_angle("adamw", 1e-3, 0.1, b1=0.0), 6)   # √(2ηλ)
    0.014142
    >>> round(dynamics.equilibrium_angle("sgd_l2", 0.1, 5e-4, momentum=0.9), 6)
    0.007255
  """
  _check_name(optimizer)
  _check_coupled(optimizer, scale_by)
  s = _per_step(learning_rate, weight_decay, scale_by)
  if optimizer == "adamw":
    return (2 * s * (1 - b1) / (1 + b1)) ** 0.5
  if optimizer == "sgd_l2":
    return (2 * s / (1 + momentum)) ** 0.5
  if optimizer == "sgdw":
    return (2 * s * (1 - momentum) / (1 + momentum)) ** 0.5
  return (2 * s / _lion_k(b1, b2)) ** 0.5


def equilibrium_norm(optimizer: str, learning_rate: Any, weight_decay: Any, *,
                     fan_in: Any = None, grad_norm: Any = None, momentum: Any = 0.0,
                     b1: Any = 0.9, b2: Any = 0.99, scale_by: str = "lr") -> Any:
  """The predicted equilibrium norm ‖w*‖ of a scale-invariant weight vector.

  At equilibrium the growth of ‖w‖² from the steps (which, for scale-invariant weights,
  are orthogonal to w on average and add their squared norm) balances the decay, which
  removes 2s‖w‖² per step (s = ηλ by default). Per gradient, over the steps it acts in:

  | optimizer | growth of ‖w‖²        | ‖w*‖                           |
  |-----------|-----------------------|--------------------------------|
  | adamw     | η²C                   | η·√(C/(2s)) = √(ηC/(2λ))       |
  | lion      | η²C·K                 | η·√(CK/(2s))                   |
  | sgd_l2    | η²G²/((1−μ)²‖w‖²)     | (ηG²/(2λ(1 − μ)))^(1/4)        |
  | sgdw      | η²G²/((1−μ)²‖w‖²)     | (η²G²/(2s(1 − μ)²))^(1/4)      |

  (sgd_l2's decay also passes through the momentum: 2ηλ‖w‖²/(1 − μ) per step.) C is the
  fan-in (elements per neuron), K Lion's factor of `equilibrium_angle`, G the gradient
  norm at unit weight norm: for scale-invariant weights ‖∇L(w)‖ = G/‖w‖, so measure it as
  ‖w‖·‖∇L(w)‖ (root-mean-square over steps). The Adam and Lion norms do not depend on the
  gradient at all; SGD's does, through G. Derivations and validity: `equilibrium_angle`.

  Args:
    optimizer: "adamw", "sgd_l2", "sgdw" or "lion".
    learning_rate: η > 0 (may be traced).
    weight_decay: λ > 0.
    fan_in: C, for adamw and lion (the leaf's size for neuron_axis=None).
    grad_norm: G = ‖w‖·‖∇L(w)‖ (RMS), for sgd_l2 and sgdw.
    momentum, b1, b2, scale_by: as in `equilibrium_angle`.

  Returns:
    ‖w*‖ (a float for Python numbers, an array for arrays).

  References:
    Kosson et al, Rotational Equilibrium: How Weight Decay Balances Learning Across
    Neural Networks, 2024. https://arxiv.org/abs/2305.17212
    Wan et al, Spherical Motion Dynamics: Learning Dynamics of Normalized Neural Network
    using SGD and Weight Decay, 2021. https://arxiv.org/abs/2006.08419

  Example:
    >>> from wdjax import dynamics
    >>> dynamics.equilibrium_norm("adamw", 1e-3, 0.05, fan_in=400)     # √(ηC/(2λ))
    2.0
    >>> dynamics.equilibrium_norm("sgd_l2", 0.1, 0.2, grad_norm=2.0)    # (ηG²/(2λ))^¼
    1.0
  """
  _check_name(optimizer)
  _check_coupled(optimizer, scale_by)
  s = _per_step(learning_rate, weight_decay, scale_by)
  eta = learning_rate
  if optimizer in ("adamw", "lion"):
    if fan_in is None:
      raise ValueError(f"{optimizer}'s equilibrium norm needs fan_in= (C, the number of "
                       "weights per neuron, or the leaf's size for a whole leaf).")
    k = 1.0 if optimizer == "adamw" else _lion_k(b1, b2)
    return eta * (fan_in * k / (2 * s)) ** 0.5
  if grad_norm is None:
    raise ValueError(f"{optimizer}'s equilibrium norm needs grad_norm= (G = ‖w‖·‖∇L(w)‖, "
                     "the gradient norm at unit weight norm).")
  decay = 2 * s / (1 - momentum) if optimizer == "sgd_l2" else 2 * s
  return (eta ** 2 * grad_norm ** 2 / ((1 - momentum) ** 2 * decay)) ** 0.25


# ---- spectra, bounds, distances -----------------------------------------------------------


def singular_values(w: Any) -> jax.Array:
  """The singular values σ₁ ≥ σ₂ ≥ ... of a matrix leaf (leading axes flattened).

  A Flax kernel (kh, kw, in, out) is read as the (kh·kw·in, out) matrix whose columns are
  the neurons, as `wdjax.penalties.nuclear` does.

  Args:
    w: a leaf with at least 2 axes.

  Returns:
    The singular values, descending (float32 for float32/bf16 leaves).

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.singular_values(jnp.array([[0.0, 2.0], [3.0, 0.0]]))
    Array([3., 2.], dtype=float32)
  """
  x = _acc(w)
  if x.ndim < 2:
    raise ValueError(f"spectra are defined on matrices; got a leaf of shape {x.shape}. "
                     "Select kernels only, e.g. with wdjax.masks.by_ndim(2).")
  return jnp.linalg.svd(x.reshape(-1, x.shape[-1]), compute_uv=False)


def spectral_norm(w: Any) -> jax.Array:
  """The spectral norm ‖W‖₂ = σ_max(W), the largest singular value.

  Args:
    w: a leaf with at least 2 axes (see `singular_values`).

  Returns:
    σ_max, a scalar.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.spectral_norm(jnp.array([[0.0, 2.0], [3.0, 0.0]]))
    Array(3., dtype=float32)
  """
  return singular_values(w)[0]


def stable_rank(w: Any) -> jax.Array:
  """The stable rank ‖W‖_F² / ‖W‖₂² = Σσᵢ²/σ₁², in [1, rank W] (0 for W = 0).

  A continuous proxy of the rank, insensitive to tiny singular values.

  Args:
    w: a leaf with at least 2 axes (see `singular_values`).

  Returns:
    The stable rank, a scalar.

  References:
    Rudelson & Vershynin, Sampling from large matrices: an approach through geometric
    functional analysis, 2007. https://arxiv.org/abs/math/0503442

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.stable_rank(jnp.diag(jnp.array([2.0, 1.0, 1.0])))   # (4 + 1 + 1)/4
    Array(1.5, dtype=float32)
  """
  s = singular_values(w)
  return _div(jnp.sum(jnp.square(s)), jnp.square(s[0]))


def effective_rank(w: Any) -> jax.Array:
  """The effective rank exp(H(p)), H(p) = −Σ pᵢ log pᵢ, pᵢ = σᵢ / Σⱼσⱼ (0 for W = 0).

  The exponential of the entropy of the normalized singular values: k for k equal
  non-zero singular values, between 1 and rank W in general (Roy & Vetterli 2007).

  Args:
    w: a leaf with at least 2 axes (see `singular_values`).

  Returns:
    The effective rank, a scalar.

  References:
    Roy & Vetterli, The effective rank: a measure of effective dimensionality, 2007
    (EUSIPCO). https://infoscience.epfl.ch/record/110188

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.effective_rank(jnp.diag(jnp.array([5.0, 5.0, 0.0])))
    Array(2., dtype=float32)
  """
  s = singular_values(w)
  total = jnp.sum(s)
  p = s / jnp.where(total > 0, total, 1)
  h = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1)), 0))
  return jnp.where(total > 0, jnp.exp(h), 0)


def linf_bound(w: Any, weight_decay: Any) -> jax.Array:
  """λ‖w‖∞, which AdamW's and Lion's implicit bias drives to at most 1.

  With decoupled decay of strength λ at learning rate η (w ← (1 − ηλ)w − η·u, the
  optax/PyTorch convention): Lion's step has |uᵢ| = 1, so |wᵢ'| ≤ (1 − ηλ)|wᵢ| + η and the
  box ‖w‖∞ ≤ 1/λ attracts and, once entered, is never left; Lion minimizes the loss subject
  to it (Chen et al. 2023). AdamW's step is not bounded by 1 coordinate-wise, but Xie & Li
  prove that if AdamW's iterates converge (with Σηₜ = ∞), the limit is a KKT point of
  min L(w) s.t. ‖w‖∞ ≤ 1/λ. A value above 1 late in training means the limit is not
  reached yet (or the decay is coupled: Adam + L2 has no such bound). For decay with
  c_t = 1 (`scale_by="constant"`) the bound is ‖w‖∞ ≤ η/λ: pass weight_decay=λ/η.

  Args:
    w: a leaf.
    weight_decay: λ (may be traced).

  Returns:
    λ‖w‖∞, a scalar.

  References:
    Xie & Li, Implicit Bias of AdamW: ℓ∞ Norm Constrained Optimization, 2024.
    https://arxiv.org/abs/2404.04454
    Chen et al, Lion Secretly Solves Constrained Optimization: As Lyapunov Predicts, 2023.
    https://arxiv.org/abs/2310.05898

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.linf_bound(jnp.array([0.5, -20.0, 3.0]), 0.05)
    Array(1., dtype=float32)
  """
  _validate.check_strength("weight_decay", weight_decay)
  x = _acc(w)
  return jnp.asarray(weight_decay, x.dtype) * jnp.max(jnp.abs(x))


def distance_to_init(init: Any, w: Any, *, neuron_axis: int | None = None,
                     relative: bool = False) -> jax.Array:
  """The distance from initialization ‖w − w₀‖, or ‖w − w₀‖/‖w₀‖ with `relative`.

  Args:
    init: the weights w₀ at initialization.
    w: the current weights.
    neuron_axis: None or the neurons' axis (-1 for Flax kernels).
    relative: divide by ‖w₀‖ (0/0 = 0, x/0 = inf).

  Returns:
    The distance: a scalar, or one value per neuron.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> w0 = jnp.array([3.0, 4.0])
    >>> dynamics.distance_to_init(w0, jnp.zeros(2))
    Array(5., dtype=float32)
    >>> dynamics.distance_to_init(w0, w0 / 2, relative=True)
    Array(0.5, dtype=float32)
  """
  if relative:
    return relative_update(init, w, neuron_axis=neuron_axis)
  return update_norm(init, w, neuron_axis=neuron_axis)


def zero_fraction(w: Any) -> jax.Array:
  """The fraction of exactly zero entries (what proximal L1 produces and decay does not).

  XLA flushes subnormal numbers to zero on CPU and GPU, so entries below the smallest
  normal number (1.2e-38 in float32) count as zeros, unlike in NumPy.

  Args:
    w: a leaf.

  Returns:
    #{i: wᵢ = 0} / size, a float32 scalar (0 for an empty leaf).

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> dynamics.zero_fraction(jnp.array([0.0, 1e-30, -0.0, 2.0]))
    Array(0.5, dtype=float32)
  """
  x = jnp.asarray(w)
  if x.size == 0:
    return jnp.zeros((), jnp.float32)
  return jnp.mean((x == 0).astype(jnp.float32))


# ---- pytrees ------------------------------------------------------------------------------


def leaf_name(path: tuple) -> str:
  """A leaf's path as "a/b/c" (a Flax NNX Variable's trailing ".value" dropped).

  Example:
    >>> import jax
    >>> from wdjax import dynamics
    >>> [dynamics.leaf_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(
    ...     {"Dense_0": {"kernel": 1.0}, "layers": [2.0]})[0]]
    ['Dense_0/kernel', 'layers/0']
  """
  if path and isinstance(path[-1], jax.tree_util.GetAttrKey) and path[-1].name == "value":
    path = path[:-1]
  return jax.tree_util.keystr(tuple(path), simple=True, separator="/")


def per_leaf(fn: Callable[..., Any], *trees: Any, mask: Any = None,
             **kwargs: Any) -> dict[str, Any]:
  """`fn` applied leaf by leaf to pytrees of the same structure: {leaf name: value}.

  `per_leaf(angular_update, before, after, neuron_axis=-1)` gives each leaf's per-neuron
  angles. Works on plain dicts, Flax Linen params and Flax NNX state, and inside
  `jax.jit`/`jax.vmap` (the result is a dict of arrays, itself a pytree).

  Args:
    fn: a function of one leaf of each tree (e.g. `weight_norm`, `angular_update`).
    *trees: pytrees of the structure of the first.
    mask: None (all leaves), a pytree of bools of that structure (e.g. a `wdjax.masks`
      mask: which leaves are decayed) or a function of the first tree returning one.
    **kwargs: passed to `fn` (neuron_axis=, weight_decay=, ...).

  Returns:
    A dict from leaf name (`leaf_name`) to `fn`'s value, in the trees' leaf order.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> before = {"bias": jnp.zeros(2), "kernel": jnp.eye(2)}
    >>> after = {"bias": jnp.ones(2), "kernel": 2 * jnp.eye(2)}
    >>> dynamics.per_leaf(dynamics.relative_update, before, after,
    ...                   mask={"bias": False, "kernel": True})
    {'kernel': Array(1., dtype=float32)}
  """
  if not trees:
    raise ValueError("per_leaf needs at least one pytree.")
  flat, treedef = jax.tree_util.tree_flatten_with_path(trees[0])
  others = []
  for i, t in enumerate(trees[1:], start=1):
    if jax.tree.structure(t) != treedef:
      raise ValueError(f"tree {i} has structure {jax.tree.structure(t)}, the first "
                       f"{treedef}; per_leaf needs trees of the same structure.")
    others.append(jax.tree.leaves(t))
  if callable(mask):
    mask = mask(trees[0])
  keep = [True] * len(flat) if mask is None else [bool(m) for m in jax.tree.leaves(mask)]
  if len(keep) != len(flat):
    raise ValueError(f"mask has {len(keep)} leaves, the trees {len(flat)}; pass a mask of "
                     "the trees' structure.")
  out = {}
  for i, (path, leaf) in enumerate(flat):
    if keep[i]:
      out[leaf_name(path)] = fn(leaf, *(o[i] for o in others), **kwargs)
  return out

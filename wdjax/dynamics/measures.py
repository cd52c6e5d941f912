"""What one step does to a leaf: norms, the update's size and rotation, the effective
learning rate and the decay timescales."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from wdjax import _validate
from wdjax.dynamics._common import _acc, _axes, _delta, _div, _sq


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

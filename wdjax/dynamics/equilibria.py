"""Predicted equilibria of scale-invariant weights under weight decay: the angle each step
rotates a neuron by and the weight norm, for AdamW, SGD with L2, SGDW and Lion."""

from __future__ import annotations

import math
from typing import Any


from wdjax.dynamics.measures import _per_step


#: The optimizers `equilibrium_angle` and `equilibrium_norm` know (registry names).
OPTIMIZERS = ("adamw", "sgd_l2", "sgdw", "lion")


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

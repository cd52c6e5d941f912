"""Scaling rules for λ: how to set weight decay as width, batch size and η change.

Pure functions of numbers (Python floats, NumPy or JAX arrays; vmappable), next to the
timescale rule `wdjax.variants.weight_decay_from_timescale`. Conventions as in
`wdjax.decoupled`: a decoupled decay removes c_t·λ·w per step, c_t = η_t ("lr", AdamW in
PyTorch/optax), η_t/η_peak ("schedule", "independent" decay) or 1 ("constant"); s = c_t·λ
is the fraction of w removed per step (`per_step_decay`).

| rule                       | λ and η at width d (or batch B)            | paper                |
|----------------------------|--------------------------------------------|----------------------|
| `width_scaled` independent | η ∝ 1/d (μP), λ fixed, c_t = s_t            | Wortsman, Kosson     |
| `width_scaled` sqrt_width  | η ∝ 1/d, λ ∝ √d, c_t = η_t (matrices)       | Fan et al 2025       |
| `batch_size_rule`          | λ ∝ B/η at fixed D: τ = B/(ηλD) held        | Bergsma et al 2025   |
| `power_lines_weight_decay` | λ = B/(η·D·τ_opt), τ_opt = c·(D/N)^m        | Bergsma et al 2025   |
| `lr_squared_weight_decay`  | shrink η_t²·λ̂: ‖w‖² ≈ C/(2λ̂), free of η    | Chou 2025            |
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from wdjax import _validate

WIDTH_RULES = ("standard", "independent", "sqrt_width")


class WidthRule(NamedTuple):
  """The hyperparameters of the hidden matrices at one width, and the c_t of their decay."""
  learning_rate: Any
  weight_decay: Any
  scale_by: str


def per_step_decay(learning_rate: Any, weight_decay: Any, scale_by: str = "lr",
                   peak_learning_rate: Any = None) -> Any:
  """s = c_t·λ, the fraction of w a decoupled decay removes per step.

  c_t = η ("lr"), η/η_peak ("schedule"; 1 without `peak_learning_rate`) or 1
  ("constant").

  Example:
    >>> from wdjax import scaling
    >>> scaling.per_step_decay(1e-3, 0.1), scaling.per_step_decay(1e-3, 0.1, "schedule")
    (0.0001, 0.1)
  """
  if scale_by == "lr":
    return learning_rate * weight_decay
  if scale_by == "schedule":
    return weight_decay if peak_learning_rate is None else (
        learning_rate / peak_learning_rate * weight_decay)
  if scale_by == "constant":
    return weight_decay
  raise ValueError(f"scale_by must be 'lr', 'schedule' or 'constant', got {scale_by!r}.")


def width_scaled(learning_rate: Any, weight_decay: Any, *, width: Any, base_width: Any,
                 rule: str = "independent") -> WidthRule:
  """η, λ and c_t of the hidden (matrix-like) weights at width d, from those tuned at d₀.

  Every rule takes μP's Adam learning rate for matrix-like weights, η(d) = η₀·d₀/d. They
  differ in the decay:

  - "standard": λ(d) = λ₀, c_t = η_t (PyTorch/optax AdamW). The per-step shrink
    s = η(d)·λ₀ falls as 1/d: the wider model forgets its past more slowly.
  - "independent": λ(d) = λ₀, c_t = η_t/η_peak (independent decay; Wortsman et al 2023
    use it with μP, Kosson et al 2025 find it, not μP's η, is what keeps the update
    dynamics stable across width for most of training). s = s_t·λ₀ at every width: the
    same equilibrium angular update √(2s) (`wdjax.dynamics.equilibrium_angle`).
  - "sqrt_width": λ(d) = λ₀·√(d/d₀), c_t = η_t (Fan et al 2025, for AdamW's matrices:
    they observe the top singular value ∝ √(η/λ)·d^0.75, which this keeps fixed; their
    vector-like weights keep η and λ = 0, i.e. are outside the decay mask). s ∝ 1/√d.

  Args:
    learning_rate: η₀ at the base width (its peak for a schedule).
    weight_decay: λ₀ at the base width.
    width: d, the width of the model to train (e.g. d_model or the hidden size).
    base_width: d₀, the width at which η₀ and λ₀ were tuned.
    rule: "standard", "independent" or "sqrt_width".

  Returns:
    `WidthRule(learning_rate=η(d), weight_decay=λ(d), scale_by)`, to pass to
    `wdjax.adamw(η, weight_decay=λ, scale_by=scale_by)` for the matrices.

  References:
    Wortsman et al, Small-scale proxies for large-scale Transformer training
    instabilities, 2023. https://arxiv.org/abs/2309.14322
    Kosson et al, Weight Decay may matter more than muP for Learning Rate Transfer in
    Practice, 2025. https://arxiv.org/abs/2510.19093
    Fan et al, Robust Layerwise Scaling Rules by Proper Weight Decay Tuning, 2025.
    https://arxiv.org/abs/2510.15262

  Example:
    >>> from wdjax import scaling
    >>> scaling.width_scaled(1e-3, 0.1, width=1024, base_width=256, rule="sqrt_width")
    WidthRule(learning_rate=0.00025, weight_decay=0.2, scale_by='lr')
  """
  if rule not in WIDTH_RULES:
    raise ValueError(f"rule must be one of {WIDTH_RULES}, got {rule!r}.")
  _validate.check_positive("learning_rate", learning_rate)
  _validate.check_strength("weight_decay", weight_decay)
  _validate.check_positive("width", width)
  _validate.check_positive("base_width", base_width)
  ratio = width / base_width
  eta = learning_rate / ratio
  if rule == "sqrt_width":
    return WidthRule(eta, weight_decay * ratio ** 0.5, "lr")
  return WidthRule(eta, weight_decay, "schedule" if rule == "independent" else "lr")


def ema_timescale(*, batch_size: Any, learning_rate: Any, weight_decay: Any,
                  dataset_size: Any) -> Any:
  """The AdamW timescale τ = B/(ηλD), in units of the whole run (or of an epoch).

  1/(ηλ) is the number of steps over which AdamW (c_t = η) averages its updates; D/B is
  the number of steps in the run (D tokens or examples, B per batch, in the same unit).
  This is `wdjax.variants.timescale`'s τ_epoch, with D the dataset size.

  Example:
    >>> from wdjax import scaling
    >>> scaling.ema_timescale(batch_size=256, learning_rate=1e-3, weight_decay=0.1,
    ...                       dataset_size=25_600_000)
    0.1
  """
  for name, v in (("batch_size", batch_size), ("learning_rate", learning_rate),
                  ("weight_decay", weight_decay), ("dataset_size", dataset_size)):
    _validate.check_positive(name, v)
  return batch_size / (learning_rate * weight_decay * dataset_size)


def batch_size_rule(weight_decay: Any, *, batch_size: Any, base_batch_size: Any,
                    learning_rate: Any = None, base_learning_rate: Any = None) -> Any:
  """λ at batch size B from λ₀ tuned at B₀, holding τ = B/(ηλD) fixed (same data D).

    λ(B) = λ₀·(B/B₀)·(η₀/η)      (η = η₀ when the learning rates are not given)

  Bergsma et al verify that the optimal λ scales linearly with B at fixed model and
  dataset size (for B not too large), as a constant optimal τ implies.

  Args:
    weight_decay: λ₀ (for c_t = η, PyTorch/optax AdamW).
    batch_size: B.
    base_batch_size: B₀.
    learning_rate: η at batch size B (optional, with `base_learning_rate`).
    base_learning_rate: η₀ at B₀.

  References:
    Bergsma et al, Power Lines: Scaling Laws for Weight Decay and Batch Size in LLM
    Pre-training, 2025. https://arxiv.org/abs/2505.13738

  Example:
    >>> from wdjax import scaling
    >>> scaling.batch_size_rule(0.1, batch_size=512, base_batch_size=128)
    0.4
  """
  _validate.check_strength("weight_decay", weight_decay)
  _validate.check_positive("batch_size", batch_size)
  _validate.check_positive("base_batch_size", base_batch_size)
  if (learning_rate is None) != (base_learning_rate is None):
    raise ValueError("give both learning_rate= and base_learning_rate=, or neither.")
  lam = weight_decay * (batch_size / base_batch_size)
  if learning_rate is not None:
    _validate.check_positive("learning_rate", learning_rate)
    _validate.check_positive("base_learning_rate", base_learning_rate)
    lam = lam * (base_learning_rate / learning_rate)
  return lam


def power_lines_weight_decay(*, batch_size: Any, learning_rate: Any, dataset_size: Any,
                             num_params: Any, coefficient: Any, exponent: Any) -> Any:
  """λ_opt = B/(η·D·τ_opt), with τ_opt = c·(D/N)^m a power law in tokens per parameter.

  Bergsma et al find that the optimal timescale τ = B/(ηλD) is not constant as model
  size N and data D grow but follows a power law in D/N; they fit c and m on their
  runs (GPT-2-like models, μP learning rates). The fitted constants are not reproduced
  here: we could read the law's form, not their values, from the sources available to
  us (a secondary summary reports m ≈ −0.5), so pass the c and m you fitted or took from
  the paper.

  Args:
    batch_size: B (tokens or sequences, in the unit of `dataset_size`).
    learning_rate: η.
    dataset_size: D.
    num_params: N.
    coefficient: c > 0.
    exponent: m (negative in the paper: more tokens per parameter, shorter τ).

  Returns:
    λ for a decay with c_t = η (AdamW).

  References:
    Bergsma et al, Power Lines: Scaling Laws for Weight Decay and Batch Size in LLM
    Pre-training, 2025. https://arxiv.org/abs/2505.13738

  Example:
    >>> from wdjax import scaling
    >>> lam = scaling.power_lines_weight_decay(batch_size=2**19, learning_rate=1e-3,
    ...     dataset_size=2e10, num_params=1e9, coefficient=1.0, exponent=-0.5)
    >>> round(lam, 6)    # τ_opt = 20^-0.5; λ = B/(η·D·τ_opt)
    0.117234
  """
  for name, v in (("batch_size", batch_size), ("learning_rate", learning_rate),
                  ("dataset_size", dataset_size), ("num_params", num_params),
                  ("coefficient", coefficient)):
    _validate.check_positive(name, v)
  tau = coefficient * (dataset_size / num_params) ** exponent
  return batch_size / (learning_rate * dataset_size * tau)


def lr_squared_weight_decay(weight_decay: Any, learning_rate: Any) -> Any:
  """λ_t = λ̂·η_t, so that a decay with c_t = η_t removes η_t²·λ̂·w per step.

  Chou (2025) derives, assuming the updates become independent of the weights at steady
  state (whatever the optimizer), E‖w‖² ≈ η·C/(2λ) for AdamW's per-step shrink η·λ and
  update η·Δ with E‖Δ‖² = C: the equilibrium norm grows with η. With the shrink ∝ η², here
  η²·λ̂, it is E‖w‖² ≈ C/(2λ̂), the same at every learning rate. Pass the result as the
  `weight_decay` of `wdjax.adamw` (scale_by="lr"); with a schedule η_t the result is the
  schedule count → λ̂·η_t, i.e. c_t·λ_t = η_t²·λ̂ step by step (AdamC's c_t = η_t²/η_peak
  is the same rule with λ̂ = λ/η_peak). How the paper treats schedules was not verified.

  Args:
    weight_decay: λ̂ >= 0.
    learning_rate: η, a number, an array or a schedule `count -> η_t`.

  Returns:
    λ̂·η (a number or array), or a schedule `count -> λ̂·η_t`.

  References:
    Chou, Correction of Decoupled Weight Decay, 2025. https://arxiv.org/abs/2512.08217

  Example:
    >>> from wdjax import scaling
    >>> lam = scaling.lr_squared_weight_decay(100.0, 0.01)   # shrink η²λ̂ = 0.01 per step
    >>> lam, scaling.per_step_decay(0.01, lam)
    (1.0, 0.01)
  """
  _validate.check_strength("weight_decay", weight_decay)
  if callable(learning_rate):
    schedule: Callable[[Any], Any] = learning_rate
    return lambda count: weight_decay * schedule(count)
  _validate.check_positive("learning_rate", learning_rate)
  return weight_decay * learning_rate

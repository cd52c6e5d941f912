"""Rotational equilibrium: weight decay sets the norm and the per-step rotation of
scale-invariant weights to predicted values, in ~1/(ηλ) steps (Kosson et al. 2024).

A scale-invariant MLP (`wdjax.models.MLP(normalize="neuron")`: each hidden neuron's
weights are normalized in the forward pass, so the loss ignores their scale and the
gradient is orthogonal to them) is trained with each optimizer variant at three (η, λ)
points, (c·η, c·λ) for c in `params.scales`: the ratio η/λ is fixed, so the predicted
equilibrium norm is the same at the three points, and s = ηλ grows as c². The hidden
kernels' weight norm and RMS angular update are tracked (`make_train_fn(track=...)`).

Measured at each point, over the last `params.tail` of the run (which must last at least
5·τ_iter = 5/(ηλ) steps at every point):
- the angle θ (RMS over neurons and steps) against `wdjax.dynamics.equilibrium_angle`:
  √(2ηλ(1−β₁)/(1+β₁)) for AdamW, √(2ηλ/(1+μ)) for SGD + L2 with momentum;
- the norm ‖W‖ against `equilibrium_norm`: √(ηC/(2λ)) per neuron for AdamW (C the fan-in;
  the leaf's norm is √(η·size/(2λ))); SGD's depends on the gradient scale G, so for SGD
  the check is that the three points, which share η/λ, settle to the same norm;
- the time to equilibrium: the steps for the excess ‖W‖² − ‖W*‖² to fall by a factor e
  from the first record. For AdamW and Lion (decoupled decay, steps of fixed size) the
  excess decays as e^{−2ηλt}: predicted 1/(2ηλ) = τ_iter/2. For SGD + L2 the decay passes
  through the momentum (rate 2ηλ/(1 − μ)) and, while ‖W‖ ≫ ‖W*‖, the gradient's growth
  term (∝ 1/‖W‖²) is negligible: predicted (1 − μ)/(2ηλ). The fitted exponent against
  ηλ is −1 for both.

References:
  Kosson et al, Rotational Equilibrium: How Weight Decay Balances Learning Across Neural
  Networks, 2024. https://arxiv.org/abs/2305.17212
  Wan et al, Spherical Motion Dynamics: Learning Dynamics of Normalized Neural Network
  using SGD and Weight Decay, 2021. https://arxiv.org/abs/2006.08419
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from wdjax import _io, dynamics, dynamics_plots
from wdjax.config import Config, ConfigError, OptimizerConfig, bounds
import wdjax.experiments._dynamics as _dynamics
from wdjax.experiments.registry import Kind, Outcome, register

#: The optimizers whose equilibrium `wdjax.dynamics` predicts with s = ηλ.
SUPPORTED = ("adamw", "sgd_l2", "lion")


@dataclass(frozen=True)
class RotationalParams:
  """[params] of rotational_equilibrium."""
  dataset: str = ""            # "" (the [data] table) or "mnist" (the extra "mnist")
  n: int = field(default=0, **bounds(0, 5000))   # mnist subset (0: all 5,000)
  widths: tuple[int, ...] = field(default=(64, 64), **bounds(1, 4096))
  normalize: str = "neuron"    # "neuron" or "layer" (see wdjax.models)
  # (c·η, c·λ) for each c: η/λ fixed, ηλ ∝ c²
  scales: tuple[float, ...] = field(default=(1.0, 1.4142135623730951, 2.0), **bounds(0, strict_lo=True))
  track_every: int = field(default=10, **bounds(1, 10**6))
  tail: float = 0.2            # fraction of the run the equilibrium values average
  min_tau: float = field(default=5.0, **bounds(0))   # the run lasts at least this many τ_iter


CHECKS = {
    "angle_error_adamw": "max over points and hidden leaves of |θ/θ* − 1|, AdamW",
    "angle_error_sgd_l2": "max over points and hidden leaves of |θ/θ* − 1|, SGD + L2",
    "angle_error_lion": "max over points and hidden leaves of |θ/θ* − 1|, Lion",
    "norm_error_adamw": "max over points and hidden leaves of |‖W‖/‖W*‖ − 1|, AdamW",
    "norm_spread_sgd_l2": "max over hidden leaves of the ratio of the largest to the "
                          "smallest equilibrium norm across the points (same η/λ: 1), SGD",
    "time_slope_error": "max over variants of |fitted exponent of the relaxation time "
                        "against ηλ + 1| (τ_iter ∝ 1/(ηλ))",
    "time_error": "max over variants, points and leaves of |relaxation time / predicted − "
                  "1| (1/(2ηλ); (1 − μ)/(2ηλ) for SGD + L2)",
}


def _validate(cfg: Config) -> None:
  _dynamics.check_params(cfg)
  p = cfg.params
  if p.normalize not in ("layer", "neuron"):
    raise ConfigError("params.normalize: the equilibria assume scale-invariant weights; "
                      "use 'neuron' or 'layer'.")
  if len(p.scales) < 2:
    raise ConfigError("params.scales: give at least two points to fit the time exponent.")
  for name, opt in _dynamics.variants(cfg).items():
    if opt.name not in SUPPORTED:
      raise ConfigError(f"variants.{name}.name = {opt.name!r}: choose one of {SUPPORTED} "
                        "(decay per step ηλ, whose equilibrium wdjax.dynamics predicts).")
    if opt.weight_decay <= 0 or opt.schedule != "constant":
      raise ConfigError(f"variants.{name}: needs weight_decay > 0 and a constant schedule.")


def _prediction(opt: OptimizerConfig, eta: float, lam: float, size: int) -> tuple[float, float]:
  """(θ*, ‖W*‖ of the leaf, NaN where it needs the gradient scale)."""
  name = opt.name
  kw = ({"momentum": opt.momentum} if name == "sgd_l2" else
        {"b1": opt.option("b1")} if name == "adamw" else
        {"b1": opt.option("b1"), "b2": opt.option("b2")})
  theta = dynamics.equilibrium_angle(name, eta, lam, **kw)
  if name == "sgd_l2":
    return theta, math.nan
  return theta, dynamics.equilibrium_norm(name, eta, lam, fan_in=size, **kw)


def run(cfg: Config, ctx) -> Outcome:
  p = cfg.params
  ds = _dynamics.dataset(cfg)
  make = _dynamics.model(ds, p.widths, p.normalize)
  seeds = _dynamics_seeds(cfg)
  scales = np.asarray(p.scales, np.float64)
  n_steps = cfg.train.epochs * (int(ds.x_train.shape[0]) // cfg.train.batch_size)
  metrics: dict[str, np.ndarray] = {}
  values: dict[str, float] = {}
  table: list[tuple[str, str]] = []
  slopes, time_err = [], []
  for vname, opt in _dynamics.variants(cfg).items():
    etas, lams = opt.learning_rate * scales, opt.weight_decay * scales
    s = etas * lams
    if n_steps * s.min() < p.min_tau:
      raise ConfigError(f"variants.{vname}: the run has {n_steps} steps, "
                        f"{n_steps * s.min():.2f}·τ_iter at the smallest ηλ = {s.min():.3g}; "
                        f"it needs params.min_tau = {p.min_tau} (raise train.epochs).")
    m, _, steps = _dynamics.tracked_sweep(
        ctx, cfg, vname, opt, ds, make, etas, lams, seeds,
        quantities=("weight_norm", "angular_update"), every=p.track_every,
        report_mask=_dynamics.hidden_kernels(p.widths))
    metrics[f"{vname}/track_steps"] = steps
    metrics[f"{vname}/weight_decay"] = lams
    metrics[f"{vname}/learning_rate"] = etas
    angle_err, norm_err, spread, t_eq = [], [], [], []
    for leaf in _dynamics.leaves(m, "angular_update"):
      theta, norm = m[f"track/angular_update/{leaf}"], m[f"track/weight_norm/{leaf}"]
      metrics[f"{vname}/track/angular_update/{leaf}"] = theta
      metrics[f"{vname}/track/weight_norm/{leaf}"] = norm
      size = int(np.prod(_leaf_shape(ds, p, leaf)))
      pred = np.asarray([_prediction(opt, e, l, size) for e, l in zip(etas, lams)])
      metrics[f"{vname}/predicted/angular_update/{leaf}"] = pred[:, 0]
      metrics[f"{vname}/predicted/weight_norm/{leaf}"] = pred[:, 1]
      th_eq = _dynamics.tail_rms(theta, p.tail).mean(axis=1)       # (points,) seed mean
      n_eq = _dynamics.tail_mean(norm, p.tail).mean(axis=1)
      angle_err.append(np.abs(th_eq / pred[:, 0] - 1))
      if np.all(np.isfinite(pred[:, 1])):
        norm_err.append(np.abs(n_eq / pred[:, 1] - 1))
      spread.append(n_eq.max() / n_eq.min())
      # per seed, then the seed mean (a mean trajectory would mix the seeds' excesses)
      t_eq.append([np.mean([_dynamics.relaxation_time(norm[k, r], steps, n_eq[k])
                            for r in range(norm.shape[1])]) for k in range(len(s))])
      for k, c in enumerate(scales):
        table.append((f"{vname} ({opt.name}) η={etas[k]:.3g} λ={lams[k]:.3g} {leaf}: θ / θ*, "
                      f"‖W‖ / ‖W*‖",
                      f"{th_eq[k]:.4g} / {pred[k, 0]:.4g} ({100 * (th_eq[k] / pred[k, 0] - 1):+.1f}%), "
                      f"{n_eq[k]:.3g} / {pred[k, 1]:.3g}"))
    t_eq = np.asarray(t_eq)                           # (leaves, points)
    metrics[f"{vname}/relaxation_time"] = t_eq
    key = opt.name
    values[f"angle_error_{key}"] = max(values.get(f"angle_error_{key}", 0.0),
                                       float(np.max(angle_err)))
    if norm_err:
      values[f"norm_error_{key}"] = max(values.get(f"norm_error_{key}", 0.0),
                                        float(np.max(norm_err)))
    if key == "sgd_l2":
      values["norm_spread_sgd_l2"] = max(values.get("norm_spread_sgd_l2", 0.0),
                                         float(np.max(spread)))
    mean_t = t_eq.mean(axis=0)
    b = _dynamics.slope(s, mean_t) if np.all(np.isfinite(mean_t)) else float("nan")
    values[f"{vname}/time_slope"] = b
    unit = 2 * s if key != "sgd_l2" else 2 * s / (1 - opt.momentum)
    slopes.append(abs(b + 1))
    time_err.append(float(np.max(np.abs(t_eq * unit - 1))))
    table.append((f"{vname}: steps for ‖W‖² − ‖W*‖² to fall by e at ηλ = "
                  f"{' '.join(f'{x:.3g}' for x in s)} (leaf mean); × 2ηλ"
                  + (" / (1 − μ)" if key == "sgd_l2" else "") + " (predicted 1)",
                  f"{' '.join(f'{x:.0f}' for x in mean_t)}; "
                  f"{' '.join(f'{x:.2f}' for x in mean_t * unit)}"))
    table.append((f"{vname}: fitted exponent of that time against ηλ (τ_iter: −1)", f"{b:+.2f}"))
  if slopes:
    values["time_slope_error"] = float(max(slopes))
    values["time_error"] = float(max(time_err))
  return Outcome(metrics, values, table)


def _dynamics_seeds(cfg: Config) -> np.ndarray:
  if "seed" in cfg.sweep.axes:
    return cfg.sweep.axes["seed"].values().astype(np.int64)
  return np.asarray([cfg.seed], np.int64)


def _leaf_shape(ds, p: RotationalParams, leaf: str) -> tuple[int, int]:
  """The shape of hidden kernel `layers/i/kernel` of the MLP."""
  i = int(leaf.split("/")[1])
  sizes = (int(np.prod(ds.x_train.shape[1:])),) + tuple(p.widths)
  return sizes[i], sizes[i + 1]


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  from matplotlib.figure import Figure  # optional and heavy: imported when a plot is drawn
  names = list(_dynamics.variants(cfg))
  fig = Figure(figsize=(5.2 * len(names), 7.0))
  axes = fig.subplots(2, len(names), squeeze=False)
  for j, name in enumerate(names):
    steps = m[f"{name}/track_steps"]
    lams, etas = m[f"{name}/weight_decay"], m[f"{name}/learning_rate"]
    leaf = sorted(k for k in m if k.startswith(f"{name}/track/angular_update/"))[-1]
    leaf = leaf.split("/track/angular_update/")[1]
    for row, q in enumerate(("weight_norm", "angular_update")):
      series = {f"η={e:.2g}, λ={l:.2g}": m[f"{name}/track/{q}/{leaf}"][k].mean(axis=0)
                for k, (e, l) in enumerate(zip(etas, lams))}
      pred = m[f"{name}/predicted/{q}/{leaf}"]
      predicted = {lab: float(v) for lab, v in zip(series, pred) if np.isfinite(v)}
      dynamics_plots.plot_over_steps(series, steps, predicted=predicted or None, quantity=q,
                                     logy=True, ax=axes[row, j],
                                     title=f"{name} ({leaf}); dashed: predicted")
  out = [_io.save_figure(fig, f"{out_dir}/rotational_equilibrium.png")]
  return out


def shrink(cfg: Config) -> Config:
  """Smoke tests: two points, a run of `min_tau` = 1 τ_iter, tracked sparsely."""
  p = cfg.params
  return dataclasses.replace(cfg, params=dataclasses.replace(
      p, scales=(p.scales[0], p.scales[-1]), min_tau=0.0, track_every=1))


KIND = register(Kind("rotational_equilibrium", RotationalParams, CHECKS, run, plot, _validate,
                     shrink=shrink, sections=("data", "optimizer", "variants", "train", "sweep")))

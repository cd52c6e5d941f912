"""Coupled L2 against decoupled weight decay, seen through the rotational equilibrium.

The same scale-invariant MLP as `rotational_equilibrium` is trained by four optimizers,
each at λ·c for c in `params.scales` (η fixed): SGD + L2 (coupled, through the momentum)
and SGDW (decoupled, w ← (1 − λ_w)w per step), with λ_w = ηλ/(1 − μ) so that both remove
the same fraction of w per step once the momentum has summed the L2 term; and Adam + L2
and AdamW at the same λ.

- SGD: the gradient of ½λ‖w‖² enters the momentum like any gradient, so L2 is decay at
  the rate ηλ/(1 − μ): both reach θ* = √(2ηλ/(1+μ)) (`wdjax.dynamics.equilibrium_angle`
  of "sgd_l2", and of "sgdw" at s = λ_w), in every layer alike.
- Adam: AdamW's decay is outside the preconditioner, so every layer settles at
  θ* = √(2ηλ(1−β₁)/(1+β₁)), whatever its gradient scale. Adam + L2 divides the decay λw
  by √v̂, the gradient's RMS: a layer with small gradients is decayed hard, one with large
  gradients barely, so its angle depends on the layer's gradient scale and follows no
  single law in λ. The figure shows both: angle against step per layer, and the
  equilibrium angle against λ with the predictions.

References:
  Loshchilov & Hutter, Decoupled Weight Decay Regularization, 2019.
  https://arxiv.org/abs/1711.05101
  Kosson et al, Rotational Equilibrium: How Weight Decay Balances Learning Across Neural
  Networks, 2024. https://arxiv.org/abs/2305.17212
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from wdjax import _io, dynamics, dynamics_plots
from wdjax.config import Config, ConfigError, OptimizerConfig, bounds
import wdjax.experiments._dynamics as _dynamics
from wdjax.experiments.registry import Kind, Outcome, register

#: One variant of each, compared in pairs: (coupled, decoupled).
PAIRS = (("sgd_l2", "sgdw"), ("adam_l2", "adamw"))


@dataclass(frozen=True)
class L2VsWdParams:
  """[params] of l2_vs_wd_dynamics."""
  dataset: str = ""            # "" (the [data] table) or "mnist" (the extra "mnist")
  n: int = field(default=0, **bounds(0, 5000))
  widths: tuple[int, ...] = field(default=(64, 64), **bounds(1, 4096))
  normalize: str = "neuron"
  scales: tuple[float, ...] = field(default=(1.0, 2.0, 4.0), **bounds(0, strict_lo=True))
  track_every: int = field(default=10, **bounds(1, 10**6))
  tail: float = 0.2


CHECKS = {
    "sgd_angle_gap": "max over λ and hidden leaves of |θ(SGD + L2)/θ(SGDW) − 1| (same "
                     "equilibrium: 0)",
    "sgd_angle_error": "max over both SGD variants, λ and leaves of |θ/θ* − 1|",
    "adamw_angle_error": "max over λ and leaves of |θ/θ* − 1|, AdamW",
    "adamw_layer_spread": "max over λ of the largest over the smallest layer angle, AdamW "
                          "(one law for all layers: 1)",
    "adam_l2_layer_spread": "max over λ of the largest over the smallest layer angle, "
                            "Adam + L2 (the preconditioned decay depends on the layer)",
    "adam_angle_gap": "min over λ of the largest |θ(Adam + L2)/θ(AdamW) − 1| over leaves",
    "adamw_exponent_error": "max over leaves of |fitted exponent of θ against λ − ½|, AdamW",
    "adam_l2_exponent_gap": "min over leaves of |fitted exponent of θ against λ − ½|, Adam + L2",
}


def _by_name(cfg: Config) -> dict[str, tuple[str, OptimizerConfig]]:
  return {opt.name: (v, opt) for v, opt in _dynamics.variants(cfg).items()}


def _validate(cfg: Config) -> None:
  _dynamics.check_params(cfg)
  names = sorted(opt.name for opt in _dynamics.variants(cfg).values())
  want = sorted(n for pair in PAIRS for n in pair)
  if names != want:
    raise ConfigError(f"variants: give one of each of {want} (got {names}).")
  for v, opt in _dynamics.variants(cfg).items():
    if opt.weight_decay <= 0 or opt.schedule != "constant":
      raise ConfigError(f"variants.{v}: needs weight_decay > 0 and a constant schedule.")
  by = _by_name(cfg)
  if by["sgdw"][1].option("scale_by") not in ("schedule", "constant"):
    raise ConfigError("variants: sgdw must decay by λ_w per step (scale_by = 'schedule' or "
                      "'constant' at a constant learning rate).")
  c, d = by["sgd_l2"][1], by["sgdw"][1]
  match = c.learning_rate * c.weight_decay / (1 - c.momentum)
  if c.momentum != d.momentum or not np.isclose(d.weight_decay, match, rtol=1e-3):
    raise ConfigError(f"variants: the sgdw variant must have sgd_l2's momentum and "
                      f"weight_decay = ηλ/(1 − μ) = {match:.6g} (the same decay per step).")


def _prediction(opt: OptimizerConfig, eta: float, lam: float) -> float:
  if opt.name == "sgd_l2":
    return dynamics.equilibrium_angle("sgd_l2", eta, lam, momentum=opt.momentum)
  if opt.name == "sgdw":
    return dynamics.equilibrium_angle("sgdw", eta, lam, momentum=opt.momentum,
                                      scale_by="constant")
  if opt.name == "adamw":
    return dynamics.equilibrium_angle("adamw", eta, lam, b1=opt.option("b1"))
  return float("nan")  # Adam + L2: no prediction independent of the gradient scale


def run(cfg: Config, ctx) -> Outcome:
  p = cfg.params
  ds = _dynamics.dataset(cfg)
  make = _dynamics.model(ds, p.widths, p.normalize)
  seeds = (cfg.sweep.axes["seed"].values().astype(np.int64) if "seed" in cfg.sweep.axes
           else np.asarray([cfg.seed], np.int64))
  scales = np.asarray(p.scales, np.float64)
  metrics, values, table = {}, {}, []
  theta = {}   # optimizer name -> (leaves, points) equilibrium angle (seed mean)
  for oname, (vname, opt) in _by_name(cfg).items():
    etas = np.full_like(scales, opt.learning_rate)
    lams = opt.weight_decay * scales
    m, _, steps = _dynamics.tracked_sweep(
        ctx, cfg, vname, opt, ds, make, etas, lams, seeds,
        quantities=("weight_norm", "angular_update"), every=p.track_every,
        report_mask=_dynamics.hidden_kernels(p.widths))
    metrics[f"{vname}/track_steps"] = steps
    metrics[f"{vname}/weight_decay"] = lams
    pred = np.asarray([_prediction(opt, e, l) for e, l in zip(etas, lams)])
    rows = []
    for leaf in _dynamics.leaves(m, "angular_update"):
      for q in ("angular_update", "weight_norm"):
        metrics[f"{vname}/track/{q}/{leaf}"] = m[f"track/{q}/{leaf}"]
      metrics[f"{vname}/predicted/angular_update/{leaf}"] = pred
      rows.append(_dynamics.tail_rms(m[f"track/angular_update/{leaf}"], p.tail).mean(axis=1))
    theta[oname] = np.asarray(rows)
    metrics[f"{vname}/equilibrium_angle"] = theta[oname]
    for k, lam in enumerate(lams):
      table.append((f"{vname} ({oname}) η={opt.learning_rate:g} λ={lam:.3g}: θ per layer "
                    f"(predicted)", " ".join(f"{x:.4g}" for x in theta[oname][:, k])
                    + (f" ({pred[k]:.4g})" if np.isfinite(pred[k]) else " (no prediction)")))
  sgd = np.stack([theta["sgd_l2"], theta["sgdw"]])
  sgd_pred = np.asarray([_prediction(_by_name(cfg)[n][1], _by_name(cfg)[n][1].learning_rate,
                                     _by_name(cfg)[n][1].weight_decay * scales)
                         for n in ("sgd_l2", "sgdw")])
  values["sgd_angle_gap"] = float(np.max(np.abs(theta["sgd_l2"] / theta["sgdw"] - 1)))
  values["sgd_angle_error"] = float(np.max(np.abs(sgd / sgd_pred[:, None, :] - 1)))
  adamw_opt = _by_name(cfg)["adamw"][1]
  adamw_pred = _prediction(adamw_opt, adamw_opt.learning_rate, adamw_opt.weight_decay * scales)
  values["adamw_angle_error"] = float(np.max(np.abs(theta["adamw"] / adamw_pred - 1)))
  spread = lambda t: float(np.max(t.max(axis=0) / t.min(axis=0)))
  values["adamw_layer_spread"] = spread(theta["adamw"])
  values["adam_l2_layer_spread"] = spread(theta["adam_l2"])
  values["adam_angle_gap"] = float(np.min(np.max(np.abs(theta["adam_l2"] / theta["adamw"] - 1),
                                                 axis=0)))
  lams_a = _by_name(cfg)["adamw"][1].weight_decay * scales
  exps = {n: np.asarray([_dynamics.slope(lams_a, t) for t in theta[n]]) for n in ("adamw", "adam_l2")}
  values["adamw_exponent_error"] = float(np.max(np.abs(exps["adamw"] - 0.5)))
  values["adam_l2_exponent_gap"] = float(np.min(np.abs(exps["adam_l2"] - 0.5)))
  table.append(("Adam: fitted exponent of θ against λ per layer, AdamW / Adam + L2 (√λ: 0.5)",
                " ".join(f"{x:.2f}" for x in exps["adamw"]) + " / "
                + " ".join(f"{x:.2f}" for x in exps["adam_l2"])))
  metrics["scales"] = scales
  table += [
      ("SGD: max |θ(L2)/θ(SGDW) − 1| over λ and layers", f"{values['sgd_angle_gap']:.3f}"),
      ("Adam: layer spread of θ, AdamW / Adam + L2 (max over λ)",
       f"{values['adamw_layer_spread']:.2f} / {values['adam_l2_layer_spread']:.2f}"),
      ("Adam: min over λ of max |θ(Adam + L2)/θ(AdamW) − 1|", f"{values['adam_angle_gap']:.2f}"),
  ]
  return Outcome(metrics, values, table)


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  from matplotlib.figure import Figure  # optional and heavy: imported when a plot is drawn
  by = _by_name(cfg)
  fig = Figure(figsize=(15.0, 7.4))
  axes = fig.subplots(2, 3, squeeze=False)
  # Top: angle against step per layer at the middle λ, for each optimizer in turn.
  for j, (pair, ax) in enumerate(zip(PAIRS, axes[0, :2])):
    for oname in pair:
      vname = by[oname][0]
      k = len(m[f"{vname}/weight_decay"]) // 2
      keys = sorted(x for x in m if x.startswith(f"{vname}/track/angular_update/"))
      series = {f"{oname} {x.split('/track/angular_update/')[1]}": m[x][k].mean(axis=0)
                for x in keys}
      pred = m[f"{vname}/predicted/angular_update/{keys[0].split('/track/angular_update/')[1]}"][k]
      dynamics_plots.plot_over_steps(series, m[f"{vname}/track_steps"], logy=True, ax=ax,
                                     quantity="angular_update",
                                     predicted=float(pred) if np.isfinite(pred) else None,
                                     title=f"{' vs '.join(pair)} at λ={m[f'{vname}/weight_decay'][k]:.3g}")
  # Right: equilibrium angle per layer against λ, measured and predicted.
  for ax, pair in zip((axes[0, 2], axes[1, 2]), PAIRS):
    for oname in pair:
      vname = by[oname][0]
      lams = m[f"{vname}/weight_decay"]
      th = m[f"{vname}/equilibrium_angle"]
      leaves = sorted(x.split("/track/angular_update/")[1] for x in m
                      if x.startswith(f"{vname}/track/angular_update/"))
      pred = m[f"{vname}/predicted/angular_update/{leaves[0]}"]
      dynamics_plots.plot_against_lambda(
          lams, {f"{oname} {leaf}": th[i] for i, leaf in enumerate(leaves)},
          predicted=pred if np.all(np.isfinite(pred)) else None, quantity="angular_update",
          ax=ax, title="equilibrium θ against λ (dashed: predicted)")
  # Bottom left: the weight norms, which is where Adam + L2 differs.
  for ax, oname in zip(axes[1, :2], ("adam_l2", "adamw")):
    vname = by[oname][0]
    k = len(m[f"{vname}/weight_decay"]) // 2
    keys = sorted(x for x in m if x.startswith(f"{vname}/track/weight_norm/"))
    dynamics_plots.plot_over_steps({x.split("/track/weight_norm/")[1]: m[x][k].mean(axis=0)
                                    for x in keys}, m[f"{vname}/track_steps"], logy=True,
                                   ax=ax, quantity="weight_norm", title=f"{oname}: ‖W‖ per layer")
  return [_io.save_figure(fig, f"{out_dir}/l2_vs_wd_dynamics.png")]


def shrink(cfg: Config) -> Config:
  p = cfg.params
  return dataclasses.replace(cfg, params=dataclasses.replace(
      p, scales=(p.scales[0], p.scales[-1]), track_every=1))


KIND = register(Kind("l2_vs_wd_dynamics", L2VsWdParams, CHECKS, run, plot, _validate,
                     shrink=shrink, sections=("data", "variants", "train", "sweep")))

"""The implicit ℓ∞ bound of decoupled decay: AdamW and Lion drive λ‖θ‖∞ to at most 1.

With decoupled decay at learning rate η (w ← (1 − ηλ)w − η·u): Lion's step has |uᵢ| = 1,
so |wᵢ'| ≤ (1 − ηλ)|wᵢ| + η and the box ‖w‖∞ ≤ 1/λ attracts and is never left (Chen et
al. 2023); Xie & Li (2024) prove that where AdamW's iterates converge, the limit is a KKT
point of min L(w) subject to ‖w‖∞ ≤ 1/λ. On digits the cross-entropy keeps pulling the
weights outwards (the training set is separable), so the bound is active: λ‖θ‖∞ settles
at 1, not below it. Each variant is trained at each λ of `params.weight_decays`; the
largest λ‖θ‖∞ over the decayed leaves (`wdjax.dynamics.linf_bound`, tracked) is read over
the last `params.tail` of the run. Adam + L2 (coupled) is reported for contrast: its fixed
point minimizes L + ½λ‖w‖², where λ|wᵢ| = |∂L/∂wᵢ|, with no bound of 1.

References:
  Xie & Li, Implicit Bias of AdamW: ℓ∞ Norm Constrained Optimization, 2024.
  https://arxiv.org/abs/2404.04454
  Chen et al, Lion Secretly Solves Constrained Optimization: As Lyapunov Predicts, 2023.
  https://arxiv.org/abs/2310.05898
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from wdjax import _io, masks
from wdjax.config import Config, ConfigError, bounds
import wdjax.experiments._dynamics as _dynamics
from wdjax.experiments.registry import Kind, Outcome, register

#: Optimizers whose decoupled decay implies the bound (checked); others are reported.
BOUNDED = ("adamw", "lion")


@dataclass(frozen=True)
class ImplicitBoundParams:
  """[params] of implicit_bound."""
  dataset: str = ""            # "" (the [data] table) or "mnist" (the extra "mnist")
  n: int = field(default=0, **bounds(0, 5000))
  widths: tuple[int, ...] = field(default=(64,), **bounds(1, 4096))
  weight_decays: tuple[float, ...] = field(default=(0.5, 1.0, 2.0), **bounds(0, strict_lo=True))
  track_every: int = field(default=10, **bounds(1, 10**6))
  tail: float = 0.2


CHECKS = {
    "bound_max": "max over AdamW/Lion variants, λ, seeds and decayed leaves of λ‖θ‖∞ over "
                 "the last `tail` of the run (the bound: ≤ 1)",
    "lion_active_min": "min over Lion variants, λ and seeds of the largest λ‖θ‖∞ over "
                       "leaves at the end (the bound is reached: ≈ 1)",
    "adamw_active_min": "the same for AdamW (which approaches the bound more slowly)",
}


def _validate(cfg: Config) -> None:
  _dynamics.check_params(cfg)
  if not any(o.name in BOUNDED for o in _dynamics.variants(cfg).values()):
    raise ConfigError(f"variants: give at least one of {BOUNDED} (the bounded optimizers).")
  for v, opt in _dynamics.variants(cfg).items():
    if opt.schedule != "constant":
      raise ConfigError(f"variants.{v}: the bound 1/λ is for a constant learning rate.")
    if opt.name in BOUNDED and opt.option("scale_by") not in (None, "lr"):
      raise ConfigError(f"variants.{v}: scale_by must be 'lr' (decay ηλ per step), whose "
                        "bound is ‖θ‖∞ ≤ 1/λ.")


def run(cfg: Config, ctx) -> Outcome:
  p = cfg.params
  ds = _dynamics.dataset(cfg)
  make = _dynamics.model(ds, p.widths, "")
  seeds = (cfg.sweep.axes["seed"].values().astype(np.int64) if "seed" in cfg.sweep.axes
           else np.asarray([cfg.seed], np.int64))
  lams = np.asarray(p.weight_decays, np.float64)
  metrics, values, table = {"weight_decays": lams}, {}, []
  tail_max, final = [], {}
  for vname, opt in _dynamics.variants(cfg).items():
    m, _, steps = _dynamics.tracked_sweep(
        ctx, cfg, vname, opt, ds, make, np.full_like(lams, opt.learning_rate), lams, seeds,
        quantities=("linf_bound",), every=p.track_every, report_mask=masks.weights_only)
    metrics[f"{vname}/track_steps"] = steps
    metrics[f"{vname}/weight_decay"] = lams
    leaves = _dynamics.leaves(m, "linf_bound")
    b = np.stack([m[f"track/linf_bound/{leaf}"] for leaf in leaves])   # (leaves, λ, seeds, T)
    for leaf in leaves:
      metrics[f"{vname}/track/linf_bound/{leaf}"] = m[f"track/linf_bound/{leaf}"]
      metrics[f"{vname}/predicted/linf_bound/{leaf}"] = np.ones_like(lams)
    t = b.shape[-1]
    tail = b[..., t - max(1, int(round(p.tail * t))):].max(axis=(0, 2, 3))   # (λ,)
    end = b[..., -1].max(axis=0)                                             # (λ, seeds)
    metrics[f"{vname}/bound_tail_max"] = tail
    if opt.name in BOUNDED:
      tail_max.append(tail.max())
      final.setdefault(opt.name, []).append(end.min())
    table.append((f"{vname} ({opt.name}, η={opt.learning_rate:g}): max λ‖θ‖∞ over the last "
                  f"{p.tail:.0%} at λ = {' '.join(f'{x:g}' for x in lams)}"
                  + ("" if opt.name in BOUNDED else " (coupled: no bound, reported)"),
                  " ".join(f"{x:.3f}" for x in tail)))
  values["bound_max"] = float(max(tail_max))
  for name, v in final.items():
    values[f"{name}_active_min"] = float(min(v))
  return Outcome(metrics, values, table)


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  from matplotlib.figure import Figure  # optional and heavy: imported when a plot is drawn
  names = list(_dynamics.variants(cfg))
  lams = m["weight_decays"]
  fig = Figure(figsize=(4.6 * len(names), 3.8))
  axes = fig.subplots(1, len(names), squeeze=False)[0]
  for ax, name in zip(axes, names):
    keys = [k for k in m if k.startswith(f"{name}/track/linf_bound/")]
    steps = m[f"{name}/track_steps"]
    for i, lam in enumerate(lams):
      worst = np.max(np.stack([m[k][i] for k in keys]), axis=(0, 1))   # leaves, seeds
      ax.plot(steps, worst, lw=1.2, label=f"λ={lam:g}")
    ax.axhline(1.0, color="k", ls="--", lw=1, label="bound 1")
    ax.set_xlabel("step")
    ax.set_ylabel("max over leaves of λ‖θ‖∞")
    ax.set_title(f"{name} ({cfg.variants[name].name if cfg.variants else name})")
    ax.legend(fontsize="small")
  return [_io.save_figure(fig, f"{out_dir}/implicit_bound.png")]


def shrink(cfg: Config) -> Config:
  p = cfg.params
  return dataclasses.replace(cfg, params=dataclasses.replace(
      p, weight_decays=(p.weight_decays[0], p.weight_decays[-1]), track_every=1))


KIND = register(Kind("implicit_bound", ImplicitBoundParams, CHECKS, run, plot, _validate,
                     shrink=shrink, sections=("data", "variants", "train", "sweep")))

"""Cautious weight decay against AdamW on the digits MLP (issue 5, part 4).

`wdjax.cautious` after `optax.adam` (decay only the coordinates where the update already
moves the weight toward 0; Chen et al 2025) against plain AdamW (`wdjax.decoupled` after
`optax.adam`, the same c_t) over a λ grid and seeds. Reported: test error and loss at each
variant's λ chosen on validation, and the decayed weights' norm ‖w‖₂ at every λ. Checked
are facts, not a winner: at λ = 0 the two are the same program (identical numbers); at
equal λ > 0 cautious decays a subset of what AdamW decays, so its decayed norm is at least
AdamW's; larger λ gives smaller norms; both reach a test accuracy floor. The gap between
the two best test errors is reported with its seed-to-seed standard error, and called a
difference only when it exceeds two of them.

References:
  Chen et al, Cautious Weight Decay, 2025. https://arxiv.org/abs/2510.12402
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wdjax import _io
from wdjax.config import Config, ConfigError, bounds
import wdjax.experiments._common as _common
import wdjax.experiments._digits as _digits
from wdjax.experiments.registry import Kind, Outcome, register


@dataclass(frozen=True)
class CautiousParams:
  """[params] of cautious_vs_adamw."""
  # a gap smaller than this many standard errors is "no difference"
  noise_factor: float = field(default=2.0, **bounds(0, 1e6, strict_lo=True))


CHECKS = {
    "lambda0_gap": "max relative difference of test loss and ‖w‖ between the variants at "
                   "λ = 0 (the same program)",
    "norm_ratio_min": "min over λ > 0 and seeds of ‖w‖ cautious / ‖w‖ AdamW (cautious "
                      "decays a subset)",
    "norm_decreasing_fraction": "fraction of consecutive λ pairs (seed mean, both "
                                "variants) where a larger λ gives a smaller ‖w‖",
    "min_best_test_acc": "lowest of the two variants' test accuracy at their λ chosen on "
                         "validation (seed mean)",
}


def _validate(cfg: Config) -> None:
  _digits.check_data(cfg, "cautious_vs_adamw")
  if cfg.params.noise_factor <= 0:
    raise ConfigError("params.noise_factor must be > 0.")
  lams = cfg.sweep.axes["weight_decay"].values()
  if "lambda0_gap" in cfg.expected and not np.any(lams == 0):
    raise ConfigError("expected.lambda0_gap needs λ = 0 in sweep.weight_decay.")


def run(cfg: Config, ctx) -> Outcome:
  ds = _common.dataset(cfg)
  lams = cfg.sweep.axes["weight_decay"].values()
  seeds = _common.axis(cfg, "seed", cfg.seed).astype(np.int64)
  res = {v: _digits.sweep_rule(ctx, cfg, ds, "decoupled" if v == "adamw" else v, lams, seeds, v)
         for v in ("adamw", "cautious")}
  plain = "AdamW" if cfg.optimizer.name == "adam" else "SGDW"
  a, c = res["adamw"], res["cautious"]
  metrics, values, table = {"lambdas": lams, "seeds": seeds}, {}, []
  for v, r in res.items():
    for k in ("test_loss", "test_acc", "val_loss", "val_acc", "decayed_norm"):
      metrics[f"{v}/{k}"] = r[k]
  zero = lams == 0
  if zero.any():
    gaps = [np.abs(c[k][zero] / a[k][zero] - 1) for k in ("test_loss", "decayed_norm")]
    values["lambda0_gap"] = float(max(np.max(g) for g in gaps))
  pos = lams > 0
  values["norm_ratio_min"] = float(np.min(c["decayed_norm"][pos] / a["decayed_norm"][pos]))
  order = np.argsort(lams)
  dec = [np.diff(np.mean(r["decayed_norm"], axis=1)[order]) < 0 for r in (a, c)]
  values["norm_decreasing_fraction"] = float(np.mean(np.concatenate(dec)))
  S = len(seeds)
  best = {}
  for v, r in res.items():
    i = _digits.best_index(r["val_loss"])
    err = 1 - r["test_acc"][i]
    best[v] = (i, err)
    values[f"{v}_best_lambda"] = float(lams[i])
    values[f"{v}_best_test_error"] = float(np.mean(err))
    values[f"{v}_best_test_loss"] = float(np.mean(r["test_loss"][i]))
    values[f"{v}_best_test_acc"] = float(np.mean(r["test_acc"][i]))
    table.append((f"{plain if v == 'adamw' else 'cautious'}: λ chosen on validation / "
                  f"test error / test loss (mean of {S} seeds)",
                  f"{lams[i]:g} / {np.mean(err):.2%} ± {np.std(err):.2%} / "
                  f"{np.mean(r['test_loss'][i]):.4f}"))
  values["min_best_test_acc"] = min(values["adamw_best_test_acc"], values["cautious_best_test_acc"])
  # The gap between the two best test errors, paired by seed, against its standard error.
  diff = best["cautious"][1] - best["adamw"][1]
  se = float(np.std(diff, ddof=1) / np.sqrt(S)) if S > 1 else float("nan")
  values["best_test_error_gap"] = float(np.mean(diff))
  values["best_test_error_gap_se"] = se
  k = cfg.params.noise_factor
  verdict = ("fewer than 3 seeds: no comparison" if S < 3 else
             "within seed noise: no winner claimed" if abs(np.mean(diff)) <= k * se else
             ("cautious lower" if np.mean(diff) < 0 else f"{plain} lower") +
             f" by more than {k:g} standard errors")
  table.append((f"best test error, cautious − {plain} (paired over seeds) ± s.e.",
                f"{np.mean(diff):+.2%} ± {se:.2%} ({verdict})"))
  for j, lam in enumerate(lams):
    table.append((f"λ={lam:g}: test error {plain} / cautious; ‖w‖ {plain} / cautious",
                  f"{1 - np.mean(a['test_acc'][j]):.2%} / {1 - np.mean(c['test_acc'][j]):.2%}; "
                  f"{np.mean(a['decayed_norm'][j]):.3g} / {np.mean(c['decayed_norm'][j]):.3g}"))
  return Outcome(metrics, values, table)


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt  # optional and heavy: imported when a plot is drawn
  lams = m["lambdas"]
  x = np.where(lams > 0, lams, np.min(lams[lams > 0]) / 10 if np.any(lams > 0) else 1.0)
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
  for v, label, c in (("adamw", "AdamW", "C0"), ("cautious", "cautious (CWD)", "C3")):
    for ax, key, f in ((axes[0], "test_acc", lambda a: 1 - a), (axes[1], "test_loss", None),
                       (axes[2], "decayed_norm", None)):
      y = m[f"{v}/{key}"]
      y = f(y) if f else y
      ax.errorbar(x, y.mean(1), yerr=y.std(1), color=c, marker="o", ms=3, capsize=2,
                  label=label)
  for ax, title in zip(axes, ("test error", "test loss", "‖decayed weights‖₂")):
    ax.set_xscale("log")
    ax.set_xlabel("λ (λ = 0 drawn at the left edge)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
  axes[1].set_yscale("log")
  fig.suptitle(f"cautious weight decay vs AdamW, digits MLP, {len(m['seeds'])} seeds "
               "(mean ± std)", fontsize=10)
  out = [_io.save_figure(fig, f"{out_dir}/cautious_vs_adamw.png")]
  return out


KIND = register(Kind("cautious_vs_adamw", CautiousParams, CHECKS, run, plot, _validate,
                     sections=("data", "model", "optimizer", "train", "sweep")))

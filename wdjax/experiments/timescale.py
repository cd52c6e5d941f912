"""Wang & Aitchison's timescale rule across training-set sizes on the digits MLP (issue 5).

Subsets of digits' training split of sizes N, a fixed number of epochs (so N/B iterations
per epoch). AdamW with c_t = η averages the updates over τ_iter = 1/(ηλ) iterations,
τ_epoch = τ_iter·B/N epochs; the paper's claim is that the best τ_epoch stays constant,
i.e. the best λ ∝ 1/N at fixed η and B. Per size: a λ grid (the best λ by seed-mean
validation loss), the λ of the fixed-τ rule (τ_epoch of the grid's best λ at
`reference_size`, through `wdjax.variants.weight_decay_from_timescale`) and a fixed λ (the
reference size's best). Reported: the fitted exponent of best λ against N (the rule says
−1), and the validation/test regret of each rule at each size.

References:
  Wang & Aitchison, How to set AdamW's weight decay as you scale model and dataset size,
  2024. https://arxiv.org/abs/2405.13698
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from wdjax import _io, variants
from wdjax.config import Config, ConfigError, OptimizerConfig, bounds
import wdjax.experiments._common as _common
import wdjax.experiments._digits as _digits
from wdjax.experiments.registry import Kind, Outcome, register


@dataclass(frozen=True)
class TimescaleParams:
  """[params] of timescale."""
  # training-set sizes (subsets)
  sizes: tuple[int, ...] = field(default=(128, 256, 512, 1024), **bounds(1, 10**6))
  # τ_epoch of the grid's best λ at this size defines the rule
  reference_size: int = field(default=1024, **bounds(1, 10**6))
  check_variant: str = ""      # the variant the [expected] checks read ("" = the first)


CHECKS = {
    "lambda_slope_error": "|fitted exponent of best λ against N + 1| (the fixed-τ rule: "
                          "best λ ∝ 1/N)",
    "tau_rule_factor_max": "max over sizes of the factor between the fixed-τ rule's λ and "
                           "the grid's best λ",
    "tau_rule_regret_max": "max over sizes of validation loss at the fixed-τ λ over the "
                           "grid's best, minus 1 (seed mean)",
}


def _variants(cfg: Config) -> dict[str, OptimizerConfig]:
  return dict(cfg.variants) or {"optimizer": cfg.optimizer}


def _validate(cfg: Config) -> None:
  plain = dataclasses.replace(cfg, variants={})
  _digits.check_data(plain, "timescale")
  for name, opt in _variants(cfg).items():
    if opt.coupling != "decoupled" or opt.scale_by != "lr":
      raise ConfigError(f"variants.{name}: the timescale rule is for decoupled decay with "
                        "c_t = η (coupling = 'decoupled', scale_by = 'lr').")
  p = cfg.params
  if len(p.sizes) < 2 or min(p.sizes) < 1 or len(set(p.sizes)) != len(p.sizes):
    raise ConfigError(f"params.sizes = {list(p.sizes)}: give at least two distinct sizes > 0.")
  if p.reference_size not in p.sizes:
    raise ConfigError(f"params.reference_size = {p.reference_size}: must be one of "
                      f"params.sizes = {list(p.sizes)}.")
  if p.check_variant and p.check_variant not in _variants(cfg):
    raise ConfigError(f"params.check_variant = {p.check_variant!r}: not a variant; choose "
                      f"one of {list(_variants(cfg))}.")
  if cfg.train.batch_size <= 0 or cfg.train.batch_size > min(p.sizes):
    raise ConfigError(f"train.batch_size = {cfg.train.batch_size}: must be in [1, "
                      f"{min(p.sizes)}] (the smallest size); the rule needs B.")
  if np.any(cfg.sweep.axes["weight_decay"].values() <= 0):
    raise ConfigError("sweep.weight_decay: the timescale rule needs λ > 0 (τ = 1/(ηλ)).")


def run(cfg: Config, ctx) -> Outcome:
  p = cfg.params
  full = _common.dataset(cfg)
  n_avail = int(full.x_train.shape[0])
  if max(p.sizes) > n_avail:
    raise ConfigError(f"params.sizes: {max(p.sizes)} exceeds the {n_avail} training examples "
                      "of the split; lower it or data.val_fraction/test_fraction.")
  grid = cfg.sweep.axes["weight_decay"].values()
  seeds = _common.axis(cfg, "seed", cfg.seed).astype(np.int64)
  sizes = np.asarray(sorted(p.sizes))
  B = cfg.train.batch_size
  metrics = {"grid": grid, "sizes": sizes}
  values, table = {}, []
  check_name = p.check_variant or next(iter(_variants(cfg)))
  for vname, opt in _variants(cfg).items():
    sub = dataclasses.replace(cfg, optimizer=opt)
    subset = lambda n: full._replace(x_train=full.x_train[:n], y_train=full.y_train[:n])
    ref = _digits.sweep_rule(ctx, sub, subset(p.reference_size), "decoupled", grid, seeds,
                             f"{vname}_n{p.reference_size}")
    lam_ref = float(grid[_digits.best_index(ref["val_loss"])])
    _, tau_epoch = variants.timescale(weight_decay=lam_ref, learning_rate=opt.learning_rate, batch_size=B,
                                      dataset_size=p.reference_size)
    best, rule, val_best, val_rule, val_fixed, test_best, test_rule, test_fixed = ([] for _ in range(8))
    curves_val, curves_test = [], []
    for n in sizes:
      lam_rule = float(variants.weight_decay_from_timescale(
          learning_rate=opt.learning_rate, tau_epoch=tau_epoch, batch_size=B, dataset_size=int(n)))
      if n == p.reference_size:
        i_ref = _digits.best_index(ref["val_loss"])
        r = {k: np.concatenate([v, v[[i_ref]]]) for k, v in ref.items()}
      else:
        r = _digits.sweep_rule(ctx, sub, subset(int(n)), "decoupled",
                               np.append(grid, lam_rule), seeds, f"{vname}_n{n}")
      val, test = _digits.seed_mean(r["val_loss"]), _digits.seed_mean(r["test_loss"])
      i = _digits.best_index(r["val_loss"][:len(grid)])
      j = int(np.argmin(np.abs(np.log(grid / lam_ref))))
      best.append(grid[i]), rule.append(lam_rule)
      val_best.append(val[i]), val_rule.append(val[-1]), val_fixed.append(val[j])
      test_best.append(test[i]), test_rule.append(test[-1]), test_fixed.append(test[j])
      curves_val.append(val[:len(grid)]), curves_test.append(test[:len(grid)])
    best, rule = np.asarray(best), np.asarray(rule)
    slope = float(np.polyfit(np.log(sizes), np.log(best), 1)[0])
    vb, vr, vf = map(np.asarray, (val_best, val_rule, val_fixed))
    tb, tr, tf = map(np.asarray, (test_best, test_rule, test_fixed))
    _, taus = variants.timescale(weight_decay=best, learning_rate=opt.learning_rate, batch_size=B,
                                 dataset_size=sizes)
    out = {
        "lambda_slope": slope, "lambda_slope_error": abs(slope + 1),
        "tau_rule_factor_max": float(np.max(np.maximum(rule / best, best / rule))),
        "fixed_lambda_factor_max": float(np.max(np.maximum(lam_ref / best, best / lam_ref))),
        "tau_rule_regret_max": float(np.max(vr / vb - 1)),
        "fixed_lambda_regret_max": float(np.max(vf / vb - 1)),
        "tau_rule_test_regret_max": float(np.max(tr / tb - 1)),
        "fixed_lambda_test_regret_max": float(np.max(tf / tb - 1)),
        "tau_epoch": float(tau_epoch),
        "best_tau_epoch_spread": float(np.max(taus) / np.min(taus)),
    }
    values.update({f"{vname}/{k}": v for k, v in out.items()})
    if vname == check_name:
      values.update({k: out[k] for k in CHECKS})
    metrics.update({f"{vname}/best": best, f"{vname}/rule": rule, f"{vname}/best_tau_epoch": taus,
                    f"{vname}/val": np.asarray(curves_val), f"{vname}/test": np.asarray(curves_test),
                    f"{vname}/val_best": vb, f"{vname}/val_rule": vr, f"{vname}/val_fixed": vf})
    label = f"{vname} ({opt.name}, η={opt.learning_rate:g}, B={B}, {cfg.train.epochs} epochs)"
    table += [
        (f"{label}: best λ per N = {sizes.tolist()}", " ".join(f"{x:.3g}" for x in best)),
        (f"{label}: τ_epoch of the best λ per N (rule: constant)",
         " ".join(f"{x:.3g}" for x in taus)),
        (f"{label}: fitted exponent of best λ vs N (rule: −1)", f"{slope:+.2f}"),
        (f"{label}: fixed-τ rule (τ_epoch={tau_epoch:.3g}) λ per N", " ".join(f"{x:.3g}" for x in rule)),
        (f"{label}: worst validation regret, fixed-τ λ / fixed λ={lam_ref:.3g}",
         f"{100 * out['tau_rule_regret_max']:.1f}% / {100 * out['fixed_lambda_regret_max']:.1f}%"),
        (f"{label}: worst test regret, fixed-τ λ / fixed λ",
         f"{100 * out['tau_rule_test_regret_max']:.1f}% / "
         f"{100 * out['fixed_lambda_test_regret_max']:.1f}%"),
    ]
  return Outcome(metrics, values, table)


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt  # optional and heavy: imported when a plot is drawn
  names = list(_variants(cfg))
  sizes, grid = m["sizes"], m["grid"]
  fig, axes = plt.subplots(1, len(names) + 1, figsize=(4.4 * (len(names) + 1), 3.7))
  for ax, name in zip(axes, names):
    for k, n in enumerate(sizes):
      ax.loglog(grid, m[f"{name}/val"][k], "-", color=f"C{k}", label=f"N={n}")
      ax.plot(m[f"{name}/best"][k], np.min(m[f"{name}/val"][k]), "o", color=f"C{k}")
      ax.plot(m[f"{name}/rule"][k], m[f"{name}/val_rule"][k], "x", color=f"C{k}", ms=8)
    ax.set_xlabel("λ")
    ax.set_ylabel("validation loss (seed mean)")
    ax.set_title(f"{name}: o grid best, x fixed-τ rule", fontsize=9)
    ax.legend(fontsize=7)
  ax = axes[-1]
  for k, name in enumerate(names):
    ax.loglog(sizes, m[f"{name}/best"], "o-", color=f"C{k}",
              label=f"{name}: best λ (slope {values.get(f'{name}/lambda_slope', np.nan):+.2f})")
    ax.loglog(sizes, m[f"{name}/rule"], "--", color=f"C{k}", label=f"{name}: fixed-τ rule (∝ 1/N)")
  ax.set_xlabel("training-set size N")
  ax.set_ylabel("λ")
  ax.set_title("best λ across dataset sizes", fontsize=9)
  ax.legend(fontsize=7)
  out = [_io.save_figure(fig, f"{out_dir}/timescale.png")]
  return out


def shrink(cfg: Config) -> Config:
  """`wdjax.experiments.shrink`'s hook: the checked variant only, at the two smallest sizes
  (each variant x size is its own compiled program)."""
  p = cfg.params
  name = p.check_variant or next(iter(_variants(cfg)))
  sizes = tuple(sorted(p.sizes)[:2])
  return dataclasses.replace(
      cfg, variants={name: _variants(cfg)[name]} if cfg.variants else {},
      params=dataclasses.replace(p, sizes=sizes, reference_size=sizes[-1], check_variant=name))


KIND = register(Kind("timescale", TimescaleParams, CHECKS, run, plot, _validate,
                     shrink=shrink,
                     sections=("data", "model", "optimizer", "variants", "train", "sweep")))

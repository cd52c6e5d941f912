"""Decay variants on the digits MLP (issue 5, part 4): cautious vs AdamW, and the timescale rule.

- `cautious_vs_adamw`: `wdjax.cautious` after `optax.adam` (decay only the coordinates
  where the update already moves the weight toward 0; Chen et al 2025) against plain
  AdamW (`wdjax.decoupled` after `optax.adam`, the same c_t) over a λ grid and seeds.
  Reported: test error and loss at each variant's λ chosen on validation, and the decayed
  weights' norm ‖w‖₂ at every λ. Checked are facts, not a winner: at λ = 0 the two are the
  same program (identical numbers); at equal λ > 0 cautious decays a subset of what AdamW
  decays, so its decayed norm is at least AdamW's; larger λ gives smaller norms; both reach
  a test accuracy floor. The gap between the two best test errors is reported with its
  seed-to-seed standard error, and called a difference only when it exceeds two of them.

- `timescale`: Wang & Aitchison's rule across training-set sizes N (subsets of digits'
  training split, a fixed number of epochs, so N/B iterations per epoch). AdamW with
  c_t = η averages the updates over τ_iter = 1/(ηλ) iterations, τ_epoch = τ_iter·B/N
  epochs; the paper's claim is that the best τ_epoch stays constant, i.e. the best λ
  ∝ 1/N at fixed η and B. Per size: a λ grid (the best λ by seed-mean validation loss),
  the λ of the fixed-τ rule (τ_epoch of the grid's best λ at `reference_size`, through
  `wdjax.weight_decay_from_timescale`) and a fixed λ (the reference size's best). Reported:
  the fitted exponent of best λ against N (the rule says −1), and the validation/test
  regret of each rule at each size.

References:
  Chen et al, Cautious Weight Decay, 2025. https://arxiv.org/abs/2510.12402
  Wang & Aitchison, How to set AdamW's weight decay as you scale model and dataset size,
  2024. https://arxiv.org/abs/2405.13698
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from wdjax import data, masks, models, transforms, variants
from wdjax.config import Config, ConfigError, OptimizerConfig
from wdjax.experiments import Kind, Outcome, _common, register

# ----------------------------------------------------------------------------- shared


def _check_data(cfg: Config, kind: str) -> None:
  if cfg.data.source != "sklearn" or cfg.data.name != "digits" or cfg.data.test_fraction <= 0:
    raise ConfigError(f"data: {kind} runs on the digits MLP: source = 'sklearn', name = "
                      "'digits', test_fraction > 0 (a held-out test split).")
  if cfg.model.kind != "mlp":
    raise ConfigError(f"model.kind = {cfg.model.kind!r}: {kind} trains an MLP (kind = 'mlp').")
  if cfg.variants:
    raise ConfigError(f"variants: {kind} builds its own variants from [optimizer]; remove "
                      "[variants].")
  opt = cfg.optimizer
  if opt.coupling != "decoupled" or opt.penalty != "l2":
    raise ConfigError(f"optimizer.coupling = {opt.coupling!r}: {kind} compares decoupled "
                      "decay rules; set coupling = 'decoupled' (penalty = 'l2').")
  _common.allowed_axes(cfg, ("weight_decay", "seed"))
  if "weight_decay" not in cfg.sweep.axes:
    raise ConfigError(f"sweep.weight_decay: missing; {kind} sweeps λ, e.g. "
                      "weight_decay = {values = [0, 0.1, 1, 10]}.")


def _sweep(ctx, cfg: Config, ds: data.Dataset, decay: str, lams: np.ndarray, seeds: np.ndarray,
           name: str) -> dict:
  """One compiled sweep over λ x seed of `cfg.optimizer` then a decoupled or cautious decay
  (the same c_t, so at λ = 0 the two programs compute the same update); returns the
  final-epoch metrics of shape (λ, seed), NaN where a run diverged."""
  model = models.for_dataset("mlp", ds, widths=cfg.model.hidden or (64,),
                             activation=cfg.model.activation)
  res = _common.sweep_variant(
      ctx, cfg, cfg.optimizer, ds, model,
      {"weight_decay": lams, "learning_rate": [cfg.optimizer.lr], "seed": seeds}, name,
      decay=transforms.decoupled if decay == "decoupled" else variants.cautious,
      # The norm is reported over the weights (not opt.mask's leaves), no train-set pass.
      train_options={"mask": masks.weights_only, "eval_train": False},
      progress=False, timing="sweeps (compile + run)")
  out = {k: np.asarray(v, np.float64)[:, 0, :, -1] for k, v in res.metrics.items()}
  bad = res.diverged[:, 0, :]
  for k in out:
    out[k] = np.where(bad, np.nan, out[k])
  return out


# ----------------------------------------------------------------------------- cautious


@dataclass(frozen=True)
class CautiousParams:
  """[params] of cautious_vs_adamw."""
  noise_factor: float = 2.0   # a gap smaller than this many standard errors is "no difference"


CAUTIOUS_CHECKS = {
    "lambda0_gap": "max relative difference of test loss and ‖w‖ between the variants at "
                   "λ = 0 (the same program)",
    "norm_ratio_min": "min over λ > 0 and seeds of ‖w‖ cautious / ‖w‖ AdamW (cautious "
                      "decays a subset)",
    "norm_decreasing_fraction": "fraction of consecutive λ pairs (seed mean, both "
                                "variants) where a larger λ gives a smaller ‖w‖",
    "min_best_test_acc": "lowest of the two variants' test accuracy at their λ chosen on "
                         "validation (seed mean)",
}


def _validate_cautious(cfg: Config) -> None:
  _check_data(cfg, "cautious_vs_adamw")
  if cfg.params.noise_factor <= 0:
    raise ConfigError("params.noise_factor must be > 0.")
  lams = cfg.sweep.axes["weight_decay"].values()
  if "lambda0_gap" in cfg.expected and not np.any(lams == 0):
    raise ConfigError("expected.lambda0_gap needs λ = 0 in sweep.weight_decay.")


def _mean(a: np.ndarray) -> np.ndarray:
  """Mean over seeds (last axis); a diverged run (NaN) makes the mean +inf."""
  return np.mean(np.where(np.isfinite(a), a, np.inf), axis=-1)


def _best(val: np.ndarray) -> int:
  """Index of the λ with the lowest seed-mean validation loss (a diverged run counts +inf)."""
  return int(np.argmin(_mean(val)))


def run_cautious(cfg: Config, ctx) -> Outcome:
  ds = _common.dataset(cfg)
  lams = cfg.sweep.axes["weight_decay"].values()
  seeds = _common.axis(cfg, "seed", cfg.seed).astype(np.int64)
  res = {v: _sweep(ctx, cfg, ds, "decoupled" if v == "adamw" else v, lams, seeds, v)
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
    i = _best(r["val_loss"])
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


def plot_cautious(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt
  from wdjax import report
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
  out = [report.save_figure(fig, f"{out_dir}/cautious_vs_adamw.png")]
  return out


register(Kind("cautious_vs_adamw", CautiousParams, CAUTIOUS_CHECKS, run_cautious, plot_cautious,
              _validate_cautious))


# ----------------------------------------------------------------------------- timescale


@dataclass(frozen=True)
class TimescaleParams:
  """[params] of timescale."""
  sizes: tuple[int, ...] = (128, 256, 512, 1024)   # training-set sizes (subsets)
  reference_size: int = 1024   # τ_epoch of the grid's best λ at this size defines the rule
  check_variant: str = ""      # the variant the [expected] checks read ("" = the first)


TIMESCALE_CHECKS = {
    "lambda_slope_error": "|fitted exponent of best λ against N + 1| (the fixed-τ rule: "
                          "best λ ∝ 1/N)",
    "tau_rule_factor_max": "max over sizes of the factor between the fixed-τ rule's λ and "
                           "the grid's best λ",
    "tau_rule_regret_max": "max over sizes of validation loss at the fixed-τ λ over the "
                           "grid's best, minus 1 (seed mean)",
}


def _variants(cfg: Config) -> dict[str, OptimizerConfig]:
  return dict(cfg.variants) or {"optimizer": cfg.optimizer}


def _validate_timescale(cfg: Config) -> None:
  plain = dataclasses.replace(cfg, variants={})
  _check_data(plain, "timescale")
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


def run_timescale(cfg: Config, ctx) -> Outcome:
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
    ref = _sweep(ctx, sub, subset(p.reference_size), "decoupled", grid, seeds,
                 f"{vname}_n{p.reference_size}")
    lam_ref = float(grid[_best(ref["val_loss"])])
    _, tau_epoch = variants.timescale(weight_decay=lam_ref, learning_rate=opt.lr, batch_size=B,
                                      dataset_size=p.reference_size)
    best, rule, val_best, val_rule, val_fixed, test_best, test_rule, test_fixed = ([] for _ in range(8))
    curves_val, curves_test = [], []
    for n in sizes:
      lam_rule = float(variants.weight_decay_from_timescale(
          learning_rate=opt.lr, tau_epoch=tau_epoch, batch_size=B, dataset_size=int(n)))
      if n == p.reference_size:
        r = {k: np.concatenate([v, v[[_best(ref["val_loss"])]]]) for k, v in ref.items()}
      else:
        r = _sweep(ctx, sub, subset(int(n)), "decoupled", np.append(grid, lam_rule), seeds,
                   f"{vname}_n{n}")
      val, test = _mean(r["val_loss"]), _mean(r["test_loss"])
      i = _best(r["val_loss"][:len(grid)])
      j = int(np.argmin(np.abs(np.log(grid / lam_ref))))
      best.append(grid[i]), rule.append(lam_rule)
      val_best.append(val[i]), val_rule.append(val[-1]), val_fixed.append(val[j])
      test_best.append(test[i]), test_rule.append(test[-1]), test_fixed.append(test[j])
      curves_val.append(val[:len(grid)]), curves_test.append(test[:len(grid)])
    best, rule = np.asarray(best), np.asarray(rule)
    slope = float(np.polyfit(np.log(sizes), np.log(best), 1)[0])
    vb, vr, vf = map(np.asarray, (val_best, val_rule, val_fixed))
    tb, tr, tf = map(np.asarray, (test_best, test_rule, test_fixed))
    _, taus = variants.timescale(weight_decay=best, learning_rate=opt.lr, batch_size=B,
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
      values.update({k: out[k] for k in TIMESCALE_CHECKS})
    metrics.update({f"{vname}/best": best, f"{vname}/rule": rule, f"{vname}/best_tau_epoch": taus,
                    f"{vname}/val": np.asarray(curves_val), f"{vname}/test": np.asarray(curves_test),
                    f"{vname}/val_best": vb, f"{vname}/val_rule": vr, f"{vname}/val_fixed": vf})
    label = f"{vname} ({opt.name}, η={opt.lr:g}, B={B}, {cfg.train.epochs} epochs)"
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


def plot_timescale(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt
  from wdjax import report
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
  out = [report.save_figure(fig, f"{out_dir}/timescale.png")]
  return out


def shrink_timescale(cfg: Config) -> Config:
  """`wdjax.experiments.shrink`'s hook: the checked variant only, at the two smallest sizes
  (each variant x size is its own compiled program)."""
  p = cfg.params
  name = p.check_variant or next(iter(_variants(cfg)))
  sizes = tuple(sorted(p.sizes)[:2])
  return dataclasses.replace(
      cfg, variants={name: _variants(cfg)[name]} if cfg.variants else {},
      params=dataclasses.replace(p, sizes=sizes, reference_size=sizes[-1], check_variant=name))


register(Kind("timescale", TimescaleParams, TIMESCALE_CHECKS, run_timescale, plot_timescale,
              _validate_timescale, shrink=shrink_timescale))

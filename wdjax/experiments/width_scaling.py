"""Does the best weight decay transfer across width? The byte-level transformer at three
widths under the standard rule and the independent (μP) rule of `wdjax.scaling.width_scaled`.

Both rules take μP's Adam learning rate η(d) = η₀·d₀/d (here for every leaf, a
simplification of μP's per-layer rule) and keep λ₀ tuned at the base width d₀; they differ
in the decay's c_t:

- "standard" (PyTorch/optax AdamW, c_t = η_t): the per-step shrink s(d) = η(d)·λ₀ = s₀·d₀/d
  falls with width;
- "independent" (c_t = η_t/η_peak; Wortsman et al 2023, Kosson et al 2025): s(d) = s₀ at
  every width.

Under a schedule, c_t = η_t/η_peak with λ is exactly c_t = η_t with λ/η_peak
(`wdjax.scaling.per_step_decay`), so at each width one AdamW ("lr") sweep covers both
rules: the union of the λ each rule asks for, compiled once per width. The grid is the
per-step decay at the base width, s₀ = η₀·λ₀. Reported: the best s₀ per width and rule
(validation loss, seed mean) and how far it moves across widths (in grid steps of s₀);
whether it moves less under one rule is what is found, not what is checked.

When decay does not help at this scale (the best s₀ is 0 at every width, so "the best
s₀" cannot move), the question is asked of the whole curve instead: the cost of the
largest decay, Δ(d) = L(s₀_max) − L(0), and its width exponent, the least-squares slope of
log Δ against log d under each rule. A rule under which decay transfers across width has
slope 0. With a cost ∝ (s(d)·d^β)^p, the slopes are p(β − 1) (standard) and pβ
(independent), so β = slope_independent / (slope_independent − slope_standard) is the
width exponent of the per-step decay s ∝ d^−β (λ ∝ d^(1−β) at η ∝ 1/d) that would keep
the cost fixed: 1 is the standard rule, 0 the independent one (reported).

Checked: every width learns; the seed spread; no decay lowers the loss by more than the
noise (`max_decay_gain`); the largest decay costs loss at every width under both rules
(`min_top_decay_cost`: the grid reaches past the best s₀); and the sign of each rule's
width exponent.

References:
  Wortsman et al, Small-scale proxies for large-scale Transformer training instabilities,
  2023. arXiv:2309.14322
  Kosson et al, Weight Decay may matter more than muP for Learning Rate Transfer in
  Practice, 2025. arXiv:2510.19093
  Yang et al, Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
  Hyperparameter Transfer (μP), 2022. arXiv:2203.03466
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from wdjax import _io, scaling
from wdjax.config import Config, ConfigError, bounds
import wdjax.experiments._lm as _lm
from wdjax.experiments.registry import Kind, Outcome, register

RULES = ("standard", "independent")


@dataclass(frozen=True)
class WidthParams(_lm.LMParams):
  """[params] of width_scaling (`d_model` is the base width d₀)."""
  widths: tuple[int, ...] = field(default=(16, 32, 64), **bounds(1, 4096))
  per_step_decay: tuple[float, ...] = field(default=(0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2),
                                            **bounds(0, 0.5))


CHECKS = {
    "min_learned_nats": "min over widths of ln 256 − best validation loss (nats/byte)",
    "max_seed_std": "max over widths and rules of the seed std of the validation loss at "
                    "the best s₀",
    "standard_best_shift": "max over widths of |index of best s₀ − index at d₀| (grid "
                           "steps), standard rule (reported)",
    "independent_best_shift": "the same under the independent rule (reported)",
    "max_decay_gain": "max over widths and rules of L(s₀ = 0) − min over s₀ > 0 of L(s₀) "
                      "(seed means, nats/byte): how much any decay helps",
    "min_top_decay_cost": "min over widths and rules of L(largest s₀) − L(best s₀) (seed "
                          "means): the grid reaches decays that hurt",
    "standard_cost_slope": "slope of log[L(largest s₀) − L(0)] against log d, standard "
                           "rule (0: the cost of decay transfers across width)",
    "independent_cost_slope": "the same under the independent rule",
    "transfer_exponent": "β with s ∝ d^−β keeping the cost of decay fixed across width (1: "
                         "standard rule, 0: independent; reported)",
    "max_rule_gap": "max over widths of |best loss, standard − best loss, independent| "
                    "(reported)",
}

COST_FLOOR = 1e-6   # nats: a cost at or below it (decay not costing) is floored before log


def _validate(cfg: Config) -> None:
  _lm.check_params(cfg)
  p = cfg.params
  if p.d_model not in p.widths:
    raise ConfigError(f"params.d_model = {p.d_model} (the base width) must be one of "
                      f"params.widths = {list(p.widths)}.")
  bad = [w for w in p.widths if w % p.num_heads]
  if bad:
    raise ConfigError(f"params.widths {bad} are not multiples of num_heads = {p.num_heads}.")
  if cfg.optimizer.name != "adamw" or cfg.optimizer.scale_by != "lr":
    raise ConfigError("optimizer: width_scaling runs AdamW with scale_by = 'lr' (both "
                      "rules are expressed through it); set name = 'adamw'.")
  for name in cfg.sweep.axes:
    if name != "seed":
      raise ConfigError(f"sweep.{name}: width_scaling sweeps only seed.")
  need_zero = {"max_decay_gain", "standard_cost_slope", "independent_cost_slope",
               "transfer_exponent"} & set(cfg.expected)
  if need_zero and 0.0 not in p.per_step_decay:
    raise ConfigError(f"expected.{sorted(need_zero)[0]} needs 0 in params.per_step_decay.")


def cost_slope(widths, cost) -> float:
  """Least-squares slope of log(cost) against log(width), cost floored at `COST_FLOOR`
  (NaN with fewer than two widths).

  Example:
    >>> round(cost_slope([16, 32, 64], [0.4, 0.2, 0.1]), 6)
    -1.0
  """
  if len(set(widths)) < 2:
    return float("nan")
  c = np.maximum(np.asarray(cost, np.float64), COST_FLOOR)
  return float(np.polyfit(np.log(np.asarray(widths, np.float64)), np.log(c), 1)[0])


def transfer_exponent(standard_slope: float, independent_slope: float) -> float:
  """β = b_ind / (b_ind − b_std): the width exponent of the per-step decay s ∝ d^−β that
  keeps the cost of decay fixed, for a cost depending on s·d^β (NaN for equal slopes).

  Example:
    >>> transfer_exponent(-0.5, 0.5)
    0.5
  """
  den = independent_slope - standard_slope
  return float(independent_slope / den) if den != 0 else float("nan")


def run(cfg: Config, ctx) -> Outcome:
  p = cfg.params
  c = _lm.read(cfg)
  ctx.log("  " + c.provenance())
  ds = _lm.dataset(cfg, c)
  s0 = np.asarray(p.per_step_decay, np.float64)
  eta0 = float(cfg.optimizer.learning_rate)
  seeds = (cfg.sweep.axes["seed"].values() if "seed" in cfg.sweep.axes
           else np.asarray([cfg.seed])).astype(np.int64)
  widths = sorted(p.widths)
  metrics = {"per_step_decay": s0, "widths": np.asarray(widths), "seeds": seeds}
  values: dict[str, float] = {"corpus_matches_recorded": float(bool(c.matches_recorded))}
  table = [("corpus", c.provenance())]
  best: dict[str, dict[int, int]] = {r: {} for r in RULES}
  means: dict[str, dict[int, np.ndarray]] = {r: {} for r in RULES}   # seed means over s₀
  learned, stds = [], []
  for d in widths:
    # Both rules through AdamW's c_t = η_t: the standard rule keeps λ₀ = s₀/η₀; the
    # independent rule's c_t = η_t/η_peak with λ₀ = s₀ is c_t = η_t with λ = s₀/η(d).
    rule = scaling.width_scaled(eta0, 1.0, width=d, base_width=p.d_model, rule="independent")
    eta = float(rule.learning_rate)
    lam = {"standard": s0 / eta0, "independent": s0 / eta}
    union = np.unique(np.concatenate([lam[r] for r in RULES]))
    opt = dataclasses.replace(cfg.optimizer, learning_rate=float(eta))
    res, _ = _lm.run_sweep(ctx, cfg, opt, ds,
                           _lm.model(cfg, d_model=d), {"weight_decay": union, "seed": seeds},
                           f"width{d}")
    val = res.metrics["val_loss"][..., -1]
    for r in RULES:
      idx = np.searchsorted(union, lam[r])
      v = val[idx]                                      # (len(s0), seeds)
      metrics[f"{r}/d{d}/val_loss"] = v
      mean = means[r][d] = v.mean(axis=1)
      i = int(np.argmin(mean))
      best[r][d] = i
      learned.append(_lm.LN_VOCAB - mean[i])
      stds.append(float(v[i].std()))
      values[f"{r}_d{d}_best_s0"] = float(s0[i])
      table.append((f"d = {d}, {r} (η = {eta:.3g}): val loss at s₀ = "
                    + ", ".join(f"{s:g}" for s in s0),
                    ", ".join(f"{a:.3f}" for a in mean) + f" ± ≤{v.std(axis=1).max():.3f}; "
                    f"best s₀ = {s0[i]:g}"))
  for r in RULES:
    shift = max(abs(best[r][d] - best[r][p.d_model]) for d in widths)
    values[f"{r}_best_shift"] = float(shift)
    table.append((f"{r}: best s₀ across d = {widths}",
                  ", ".join(f"{s0[best[r][d]]:g}" for d in widths)
                  + f" (moves by up to {shift} grid steps)"))
  values["min_learned_nats"] = float(min(learned))
  values["max_seed_std"] = float(max(stds))
  a, b = values["standard_best_shift"], values["independent_best_shift"]
  table.append(("does the best decay transfer across width?",
                "equally under both rules" if a == b else
                f"better under the {'independent' if b < a else 'standard'} rule "
                f"({min(a, b):g} vs {max(a, b):g} grid steps); one grid, "
                f"{len(seeds)} seeds: a finding at this scale, not a claim"))
  facts, rows = curve_facts(s0, widths, means)
  values.update(facts)
  table.extend(rows)
  return Outcome(metrics, values, table)


def curve_facts(s0: np.ndarray, widths: list[int], means: dict) -> tuple:
  """The checked facts of the loss curves (seed means `means[rule][d]` over `s0`): how
  much decay helps, what the largest decay costs and how that cost scales with width
  under each rule. Returns (values, table rows)."""
  j = int(np.argmax(s0))
  low = {r: {d: float(np.min(means[r][d])) for d in widths} for r in RULES}
  gaps = [low["standard"][d] - low["independent"][d] for d in widths]
  values = {
      "min_top_decay_cost": float(min(means[r][d][j] - low[r][d]
                                      for r in RULES for d in widths)),
      "max_rule_gap": float(np.max(np.abs(gaps))),
  }
  rows = [("best loss, standard − independent, per width",
           ", ".join(f"d = {d}: {g:+.4f}" for d, g in zip(widths, gaps)))]
  zero = np.flatnonzero(s0 == 0)
  if zero.size == 0:
    return values, rows
  z = int(zero[0])
  if np.any(s0 > 0):
    values["max_decay_gain"] = float(max(means[r][d][z] - np.min(means[r][d][s0 > 0])
                                         for r in RULES for d in widths))
  for r in RULES:
    cost = [means[r][d][j] - means[r][d][z] for d in widths]
    values[f"{r}_cost_slope"] = cost_slope(widths, cost)
    rows.append((f"{r}: cost of s₀ = {s0[j]:g}, L(s₀) − L(0), at d = {widths}",
                 ", ".join(f"{c:.3f}" for c in cost)
                 + f" (∝ d^{values[f'{r}_cost_slope']:.2f})"))
  beta = transfer_exponent(values["standard_cost_slope"], values["independent_cost_slope"])
  values["transfer_exponent"] = beta
  rows.append(("per-step decay s ∝ d^−β that would keep that cost fixed",
               f"β = {beta:.2f} (standard rule 1, independent 0; λ ∝ d^{1 - beta:.2f} "
               "at η ∝ 1/d)"))
  return values, rows


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt  # optional and heavy: imported when a plot is drawn
  s0 = m["per_step_decay"]
  x = np.where(s0 > 0, s0, np.min(s0[s0 > 0]) / 10)
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
  for ax, r in zip(axes, RULES):
    for d in m["widths"]:
      v = m[f"{r}/d{int(d)}/val_loss"]
      ax.errorbar(x, v.mean(1), yerr=v.std(1), marker="o", ms=3, capsize=2, label=f"d={int(d)}")
    ax.set_xscale("log")
    ax.set_xlabel("s₀ = η₀·λ₀ at the base width")
    ax.set_title(f"{r} rule", fontsize=9)
    ax.legend(fontsize=7)
  axes[0].set_ylabel("validation loss (nats/byte)")
  return [_io.save_figure(fig, f"{out_dir}/width_scaling.png")]


KIND = register(Kind("width_scaling", WidthParams, CHECKS, run, plot, _validate,
                     sections=("optimizer", "train", "sweep")))

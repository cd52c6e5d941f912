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
whether it moves less under one rule is what is found, not what is checked. Checked:
every width learns, and the seed spread.

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
}


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
      mean = v.mean(axis=1)
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
  return Outcome(metrics, values, table)


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

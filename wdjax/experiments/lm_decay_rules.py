"""Decay rules on a small byte-level transformer: AdamW ("lr", "schedule"), Lion, Muon,
cautious, AdamC, each over a grid of per-step decays × seeds as one vmapped sweep.

The rules are the `[variants]` tables; `params.rules` picks which of them run. To compare
rules whose λ means different things, the grid is the per-step shrink at the peak
learning rate, s = c·λ (`wdjax.scaling.per_step_decay`): c = η for the "lr" rules
(AdamW/Lion/Muon as in PyTorch and optax, cautious, AdamC), c = 1 for "schedule"
(independent decay, Wortsman et al 2023: AdamW's paper form). Each variant is swept at
λ = s/c.

Checked are bounds that follow from the update rules, not a winner. Writing a decoupled
step as w⁺ = (1 − s_t)·w + η_t·a_t with s_t/η_t = λ/b constant along the schedule (b = η
for "schedule", 1 for "lr"), ‖w⁺‖ ≤ (1 − s_t)‖w‖ + η_t‖a_t‖ keeps ‖w‖ ≤ B = b·A/λ once
there, and pulls it there at rate Σ_t s_t, where A bounds the step's norm:

- Lion: a_t = −sign(·), so ‖a‖∞ ≤ 1 and λ‖w‖∞ ≤ 1 ("lr"), exactly (Chen et al 2023; the
  equilibrium of Xie & Lin 2024). Checked as `lion_linf_ratio_max` ≤ 1 after the transient
  (1 + (‖w₀‖∞/B)·e^(−Σ s_t) allowed; ‖w₀‖∞ ≤ 6·0.02 at GPT-2's initialization).
- AdamW: ‖m̂/(√v̂+ε)‖∞ is ≈ 1 but not bounded by 1 (early steps, rare coordinates), so
  λ‖w‖∞ ≤ 1 is a statistical fact here: `adamw_linf_ratio_max` with a tolerance.
- Muon: a_t = −k·NS(m) with NS(m) ≈ orthogonal (Newton–Schulz: singular values in about
  [0.7, 1.2]) and optax's shape factor k = √max(1, fan_out/fan_in): ‖W‖₂ ≤ k/λ·σ_max(NS)
  ("lr"). Checked as `muon_spectral_ratio_max` = max λ‖W‖₂/k over the blocks' kernels.

Also reported: validation loss (nats/byte) per rule and s with its seed spread, the
decayed weights' norm (larger s gives a smaller norm: checked), per-layer weight norms
and the RMS angular update at the end of training (`track=`), next to the equilibrium
angle √(2s) predicted for scale-invariant weights (Kosson et al 2024), reported only: the
attention and MLP kernels are not scale-invariant.

References:
  Loshchilov & Hutter, Decoupled Weight Decay Regularization, 2019. arXiv:1711.05101
  Chen et al, Symbolic Discovery of Optimization Algorithms (Lion), 2023. arXiv:2302.06675
  Xie & Lin, Implicit Bias of AdamW: ℓ∞ Norm Constrained Optimization, 2024. arXiv:2404.04454
  Jordan et al, Muon, 2024. https://kellerjordan.github.io/posts/muon/
  Chen et al, Cautious Weight Decay, 2025. arXiv:2510.12402
  Defazio, Why Gradients Rapidly Increase Near the End of Training (AdamC), 2025. arXiv:2506.02285
  Wortsman et al, Small-scale proxies for large-scale Transformer training instabilities,
  2023. arXiv:2309.14322
  Kosson et al, Rotational Equilibrium, 2024. arXiv:2305.17212
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wdjax import _io
from wdjax.config import Config, ConfigError, OptimizerConfig, bounds
import wdjax.experiments._lm as _lm
from wdjax.experiments.registry import Kind, Outcome, register

INIT_LINF = 6 * 0.02   # ‖w₀‖∞ bound at N(0, 0.02²) init (P(|z| > 6σ) ≈ 2e-9 per entry)


@dataclass(frozen=True)
class DecayRulesParams(_lm.LMParams):
  """[params] of lm_decay_rules."""
  per_step_decay: tuple[float, ...] = field(default=(0.0, 3e-4, 3e-3, 3e-2), **bounds(0, 0.5))
  rules: tuple[str, ...] = ()            # which [variants] run (empty: all)
  track_points: int = field(default=10, **bounds(1, 10**4))


CHECKS = {
    "lion_linf_ratio_max": "max over s > 0, seeds and decayed leaves of λ‖w‖∞ (s‖w‖∞/η) "
                           "under Lion, divided by its transient allowance (≤ 1 exactly)",
    "adamw_linf_ratio_max": "the same under the AdamW rules (\"lr\", \"schedule\"): "
                            "Adam's normalized step is ≈ 1, not bounded by 1",
    "muon_spectral_ratio_max": "max over s > 0 and seeds of λ‖W‖₂/k on the blocks' kernels "
                               "under Muon (≤ σ_max of Newton–Schulz ≈ 1.2)",
    "norm_decreasing_fraction": "fraction of consecutive s pairs (seed mean, every rule) "
                                "where the larger s gives the smaller decayed norm",
    "min_learned_nats": "min over rules of ln 256 − best validation loss (nats/byte): "
                        "every rule learns",
    "max_seed_std": "max over rules of the seed std of the validation loss at its best s",
}


def _rules(cfg: Config) -> dict[str, OptimizerConfig]:
  names = cfg.params.rules or tuple(cfg.variants)
  return {n: cfg.variants[n] for n in names}


def _validate(cfg: Config) -> None:
  _lm.check_params(cfg)
  if not cfg.variants:
    raise ConfigError("variants: give the decay rules to compare, one optimizer table each.")
  unknown = sorted(set(cfg.params.rules) - set(cfg.variants))
  if unknown:
    raise ConfigError(f"params.rules: {unknown} are not [variants] ({sorted(cfg.variants)}).")
  if not any(s > 0 for s in cfg.params.per_step_decay):
    raise ConfigError("params.per_step_decay: give at least one s > 0.")
  for name in cfg.sweep.axes:
    if name != "seed":
      raise ConfigError(f"sweep.{name}: lm_decay_rules sweeps only seed (λ comes from "
                        "params.per_step_decay).")


def step_scale(name: str, shape: tuple[int, ...]) -> float:
  """optax Muon's shape factor k = √max(1, fan_out/fan_in) of a (fan_in, fan_out) kernel."""
  del name
  return float(np.sqrt(max(1.0, shape[-1] / shape[0])))


def run(cfg: Config, ctx) -> Outcome:
  c = _lm.read(cfg)
  ctx.log("  " + c.provenance())
  ds = _lm.dataset(cfg, c)
  s_grid = np.asarray(cfg.params.per_step_decay, np.float64)
  seeds = (cfg.sweep.axes["seed"].values() if "seed" in cfg.sweep.axes
           else np.asarray([cfg.seed])).astype(np.int64)
  T = _lm.steps(cfg, ds)
  every = max(1, T // cfg.params.track_points)
  metrics = {"per_step_decay": s_grid, "seeds": seeds}
  values: dict[str, float] = {"corpus_matches_recorded": float(bool(c.matches_recorded))}
  table = [("corpus", c.provenance()),
           ("model / data", f"{cfg.params.num_layers} layers, d = {cfg.params.d_model}, "
                            f"context {cfg.params.context}; {ds.x_train.shape[0]} training "
                            f"windows, {T} steps")]
  ratios = {"lion": [], "adamw": [], "muon": []}
  decreasing, learned, seed_std = [], [], []
  for name, opt in _rules(cfg).items():
    cpk = _lm.peak_multiplier(opt)
    lams = s_grid / cpk
    res, _ = _lm.run_sweep(ctx, cfg, opt, ds, _lm.model(cfg),
                            {"weight_decay": lams, "seed": seeds}, name,
                            track=("weight_norm", "angular_update"), track_every=every,
                            return_params=True)
    val = res.metrics["val_loss"][..., -1]                       # (S, seeds)
    norm = res.metrics["decayed_norm"][..., -1]
    metrics[f"{name}/val_loss"] = res.metrics["val_loss"]
    metrics[f"{name}/decayed_norm"] = norm
    leaves = _lm.leaves(res.params)
    # Σ_t s_t over the run, per grid point: the transient factor e^(−Σ s_t).
    decay_sum = s_grid * _lm.schedule_sum(opt, T)
    allow = lambda B: 1 + (INIT_LINF / B) * np.exp(-decay_sum)[:, None]  # noqa: E731
    kind = ("lion" if opt.name == "lion" else "muon" if opt.name == "muon" else
            "adamw" if opt.name in ("adamw",) or (opt.name == "adam" and
                                                 opt.option("coupling") == "decoupled")
            else None)
    pos = lams > 0
    decayed = _lm.decayed_names(cfg, res.params)
    if kind in ("lion", "adamw"):
      B = np.where(pos, cpk / np.where(pos, s_grid, 1.0), np.inf)[:, None]   # bound on ‖w‖∞
      for k in decayed:
        linf = np.max(np.abs(leaves[k]).reshape(*val.shape, -1), axis=-1)
        r = linf / B / allow(B)
        ratios[kind].append(r[pos])
        metrics[f"{name}/linf_ratio/{k}"] = r
    if kind == "muon":
      for k in decayed:
        if not k.startswith("blocks/") or leaves[k].ndim != 4:
          continue
        w = leaves[k]
        sig = np.linalg.norm(w.reshape(-1, *w.shape[-2:]), ord=2, axis=(-2, -1))
        sig = sig.reshape(val.shape)
        kfac = step_scale(k, w.shape[-2:])
        B = np.where(pos, kfac * opt.learning_rate / np.where(pos, s_grid, 1.0), np.inf)[:, None]
        r = sig / B / allow(B / kfac)
        ratios["muon"].append(r[pos])
        metrics[f"{name}/spectral_ratio/{k}"] = r
    m = norm.mean(axis=1)
    decreasing.append(np.diff(m[np.argsort(s_grid)]) < 0)
    mean_val = val.mean(axis=1)
    i = int(np.argmin(mean_val))
    learned.append(_lm.LN_VOCAB - mean_val[i])
    seed_std.append(float(val[i].std()))
    values[f"{name}_best_s"] = float(s_grid[i])
    values[f"{name}_best_val_loss"] = float(mean_val[i])
    table.append((f"{name}: val loss (nats/byte) at s = " + ", ".join(f"{s:g}" for s in s_grid)
                  + f" (mean ± std of {len(seeds)} seeds)",
                  ", ".join(f"{a:.3f} ± {b:.3f}" for a, b in zip(mean_val, val.std(axis=1)))
                  + f"; best s = {s_grid[i]:g} (λ = {lams[i]:.3g})"))
    table.append((f"{name}: ‖decayed weights‖₂ over s", ", ".join(f"{x:.3g}" for x in m)))
    _angles(name, res, s_grid, table, metrics)
  for kind, rs in ratios.items():
    if rs:
      values[f"{kind}_{'spectral' if kind == 'muon' else 'linf'}_ratio_max"] = float(
          max(np.max(r) for r in rs))
  values["norm_decreasing_fraction"] = float(np.mean(np.concatenate(decreasing)))
  values["min_learned_nats"] = float(min(learned))
  values["max_seed_std"] = float(max(seed_std))
  for k in ("lion_linf_ratio_max", "adamw_linf_ratio_max", "muon_spectral_ratio_max"):
    if k in values:
      table.append((k.replace("_", " ") + " (bound: 1)", f"{values[k]:.3f}"))
  return Outcome(metrics, values, table)


def _angles(name, res, s_grid, table, metrics) -> None:
  """Per-layer weight norm and RMS angular update a quarter into training, vs √(2s).

  A quarter in (η_t ≈ 0.85·η under cosine), not at the end, where η_t → 0 stops the
  rotation."""
  keys = sorted(k for k in res.metrics if k.startswith("track/angular_update/"))
  if not keys:
    return
  q = res.metrics[keys[0]].shape[-1] // 4
  last = {k.split("/", 2)[2]: res.metrics[k][..., q].mean(axis=1) for k in keys}
  norms = {k.split("/", 2)[2]: res.metrics[k][..., q].mean(axis=1)
           for k in res.metrics if k.startswith("track/weight_norm/")}
  for k, v in last.items():
    metrics[f"{name}/angle/{k}"] = v
  j = int(np.argmax(s_grid))
  ang = np.asarray([v[j] for v in last.values()])
  pred = np.sqrt(2 * s_grid[j])
  table.append((f"{name}: at s = {s_grid[j]:g}, a quarter in, RMS angular update per step "
                f"over layers "
                f"(min / median / max) vs √(2s) = {pred:.3g}",
                f"{ang.min():.3g} / {np.median(ang):.3g} / {ang.max():.3g}"))
  table.append((f"{name}: at s = {s_grid[j]:g}, per-layer ‖W‖ (min / max)",
                f"{min(v[j] for v in norms.values()):.3g} / "
                f"{max(v[j] for v in norms.values()):.3g}"))


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt  # optional and heavy: imported when a plot is drawn
  s = m["per_step_decay"]
  x = np.where(s > 0, s, np.min(s[s > 0]) / 10)
  rules = sorted({k.split("/")[0] for k in m if k.endswith("/val_loss")})
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
  for r in rules:
    v = m[f"{r}/val_loss"][..., -1]
    axes[0].errorbar(x, v.mean(1), yerr=v.std(1), marker="o", ms=3, capsize=2, label=r)
    axes[1].plot(x, m[f"{r}/decayed_norm"].mean(1), marker="o", ms=3, label=r)
  for ax, t in zip(axes, ("validation loss (nats/byte)", "‖decayed weights‖₂")):
    ax.set_xscale("log")
    ax.set_xlabel("per-step decay s = c·λ (s = 0 at the left edge)")
    ax.set_title(t, fontsize=9)
    ax.legend(fontsize=7)
  fig.suptitle("decay rules on a byte-level transformer (stdlib corpus)", fontsize=10)
  return [_io.save_figure(fig, f"{out_dir}/lm_decay_rules.png")]


KIND = register(Kind("lm_decay_rules", DecayRulesParams, CHECKS, run, plot, _validate,
                     sections=("optimizer", "train", "sweep", "variants")))

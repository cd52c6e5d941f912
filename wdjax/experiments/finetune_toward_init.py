"""Fine-tuning toward the pretrained weights: AdamW vs L2-SP vs SPD on the byte transformer.

A model is pretrained on one part of `wdjax.corpus` (`params.pretrain_part`, plain Adam, one
run), then fine-tuned on another (`params.part`) from those weights by each `[variants]`
optimizer over a grid of per-step decays s and seeds:

- AdamW (`adamw`): u ← u − η_t·λ·w, a pull toward 0;
- L2-SP (`adamw_sp`, Li et al 2018): u ← u − η_t·λ·(w − w₀), w₀ the pretrained weights;
- SPD (`adam_spd`, Tian et al 2024): a projection toward w₀, per layer, only when the
  gradient points away from it, of strength λ per step (not multiplied by η).

As in `lm_decay_rules` the grid is the per-step strength s = c·λ (c = η for AdamW and
L2-SP, 1 for SPD). Reported, per variant and s: the distance ‖w − w₀‖₂ of the decayed
weights from the pretrained ones, the loss on the new part (validation windows) and on
the old part (its held-out windows: forgetting). Checked: at s = 0 the three are plain
Adam (the same numbers); a stronger pull toward w₀ keeps L2-SP and SPD closer to it
(distance falling with s); at the largest s L2-SP ends closer to w₀ than AdamW, forgets
less than plain Adam (old-part loss below its s = 0 value) and pays for it on the new
part (new-part loss above); the pretraining learned. Which variant gives the best
new-part loss is reported with the seed spread, not checked; so is, per variant, what the
largest s changes against s = 0 (old- and new-part loss, distance ratio).

References:
  Li et al, Explicit Inductive Bias for Transfer Learning with Convolutional Networks,
  2018. arXiv:1802.01483
  Tian et al, Rethinking Weight Decay for Robust Fine-Tuning of Foundation Models, 2024.
  arXiv:2411.01713
  Kumar et al, Maintaining Plasticity in Continual Learning via Regenerative
  Regularization (L2-init), 2023. arXiv:2308.11958
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import jax
import numpy as np
from flax import nnx

from wdjax import _io
from wdjax.config import Config, ConfigError, bounds
import wdjax.experiments._lm as _lm
from wdjax.experiments.registry import Kind, Outcome, register

ROLES = {"adamw": "adamw", "adamw_sp": "l2_sp", "adam_spd": "spd"}


@dataclass(frozen=True)
class FinetuneParams(_lm.LMParams):
  """[params] of finetune_toward_init (`part` is the fine-tuning part)."""
  pretrain_part: str = "numeric"
  pretrain_epochs: int = field(default=3, **bounds(1, 10**4))
  per_step_decay: tuple[float, ...] = field(default=(0.0, 1e-3, 1e-2, 1e-1), **bounds(0, 1))


CHECKS = {
    "lambda0_gap": "max |difference| of new- and old-part loss between the variants at "
                   "s = 0 (all plain Adam)",
    "sp_distance_decreasing_fraction": "fraction of consecutive s pairs (seed mean) where "
                                       "L2-SP and SPD end closer to w₀ at the larger s",
    "sp_vs_adamw_distance_ratio": "‖w − w₀‖ of L2-SP / of AdamW at the largest s (seed mean)",
    "pretrain_learned_nats": "ln 256 − the pretrained model's loss on its own part",
    "l2_sp_old_loss_change": "L2-SP's old-part loss at the largest s − at s = 0 (seed "
                             "mean; < 0: less forgetting)",
    "l2_sp_new_loss_change": "L2-SP's new-part loss at the largest s − at s = 0 (seed "
                             "mean; > 0: what the pull costs on the new part)",
    "spd_distance_ratio": "‖w − w₀‖ of SPD at the largest s / at s = 0 (seed mean; reported)",
}
ZERO_CHECKS = ("lambda0_gap", "l2_sp_old_loss_change", "l2_sp_new_loss_change",
               "spd_distance_ratio")


def _validate(cfg: Config) -> None:
  _lm.check_params(cfg)
  names = {v.name for v in cfg.variants.values()}
  if not {"adamw", "adamw_sp", "adam_spd"} <= names:
    raise ConfigError("variants: finetune_toward_init compares name = 'adamw', 'adamw_sp' "
                      f"and 'adam_spd'; got {sorted(names)}.")
  if cfg.params.pretrain_part == cfg.params.part:
    raise ConfigError("params.pretrain_part must differ from params.part.")
  need_zero = [k for k in ZERO_CHECKS if k in cfg.expected]
  if 0.0 not in cfg.params.per_step_decay and need_zero:
    raise ConfigError(f"expected.{need_zero[0]} needs 0 in params.per_step_decay.")
  for name in cfg.sweep.axes:
    if name != "seed":
      raise ConfigError(f"sweep.{name}: finetune_toward_init sweeps only seed.")


def pretrain(ctx, cfg: Config) -> tuple[nnx.Module, float, str]:
  """The pretrained model (plain Adam, λ = 0), its loss on its part, and the provenance."""
  c = _lm.read(cfg, cfg.params.pretrain_part)
  ds = _lm.dataset(cfg, c)
  pre_cfg = dataclasses.replace(cfg, train=dataclasses.replace(
      cfg.train, epochs=cfg.params.pretrain_epochs))
  opt = dataclasses.replace(cfg.optimizer, name="adamw", options={})
  res, _ = _lm.run_sweep(ctx, pre_cfg, opt, ds, _lm.model(cfg),
                         {"weight_decay": [0.0], "seed": [cfg.seed]}, "pretrain",
                         return_params=True)
  params = jax_tree_first(res.params)
  model = _lm.model(cfg)(rngs=nnx.Rngs(0))
  state = nnx.state(model, nnx.Param)
  nnx.replace_by_pure_dict(state, params)
  nnx.update(model, state)
  return model, float(res.metrics["val_loss"][0, 0, -1]), c.provenance()


def jax_tree_first(tree):
  """The first grid point of a (λ, seed)-batched params pytree."""
  return jax.tree.map(lambda a: np.asarray(a)[0, 0], tree)


def run(cfg: Config, ctx) -> Outcome:
  p = cfg.params
  model, pre_loss, pre_prov = pretrain(ctx, cfg)
  c_new = _lm.read(cfg)
  c_old = _lm.read(cfg, p.pretrain_part)
  ctx.log(f"  pretraining: {pre_prov}\n  fine-tuning: {c_new.provenance()}")
  ds = _lm.dataset(cfg, c_new, test=c_old)
  s_grid = np.asarray(p.per_step_decay, np.float64)
  seeds = (cfg.sweep.axes["seed"].values() if "seed" in cfg.sweep.axes
           else np.asarray([cfg.seed])).astype(np.int64)
  w0 = _lm.leaves(nnx.to_pure_dict(nnx.state(model, nnx.Param)))
  metrics = {"per_step_decay": s_grid, "seeds": seeds}
  values = {"pretrain_learned_nats": _lm.LN_VOCAB - pre_loss,
            "corpus_matches_recorded": float(bool(c_new.matches_recorded
                                                  and c_old.matches_recorded))}
  table = [("pretraining corpus", pre_prov), ("fine-tuning corpus", c_new.provenance()),
           ("pretrained model: loss on its own part (nats/byte)", f"{pre_loss:.3f}")]
  out = {}
  for vname, opt in cfg.variants.items():
    lams = s_grid / _lm.peak_multiplier(opt)
    res, _ = _lm.run_sweep(ctx, cfg, opt, ds, None, {"weight_decay": lams, "seed": seeds},
                           vname, return_params=True, init=model)
    leaves = _lm.leaves(res.params)
    names = _lm.decayed_names(cfg, res.params)
    dist = np.sqrt(sum(np.sum(np.square(leaves[k] - w0[k]).reshape(*lams.shape, len(seeds), -1),
                              axis=-1) for k in names))
    r = {"new": res.metrics["val_loss"][..., -1], "old": res.metrics["test_loss"][..., -1],
         "dist": dist}
    out[ROLES.get(opt.name, vname)] = r
    for k, v in r.items():
      metrics[f"{vname}/{k}"] = v
    table.append((f"{vname}: loss new part / old part / ‖w − w₀‖ at s = "
                  + ", ".join(f"{s:g}" for s in s_grid) + f" ({len(seeds)} seeds)",
                  "; ".join(f"{a:.3f} / {b:.3f} / {d:.3g}" for a, b, d in zip(
                      r["new"].mean(1), r["old"].mean(1), r["dist"].mean(1)))
                  + f" (seed std ≤ {r['new'].std(axis=1).max():.3f})"))
  zero = s_grid == 0
  if zero.any():
    base = out["adamw"]
    values["lambda0_gap"] = float(max(np.max(np.abs(o[k][zero] - base[k][zero]))
                                      for o in out.values() for k in ("new", "old")))
  order = np.argsort(s_grid)
  dec = [np.diff(out[v]["dist"].mean(1)[order]) < 0 for v in ("l2_sp", "spd")]
  values["sp_distance_decreasing_fraction"] = float(np.mean(np.concatenate(dec)))
  j = int(np.argmax(s_grid))
  values["sp_vs_adamw_distance_ratio"] = float(out["l2_sp"]["dist"][j].mean()
                                               / out["adamw"]["dist"][j].mean())
  if zero.any():
    facts, rows = change_facts(s_grid, out)
    values.update(facts)
    table.extend(rows)
  for v, r in out.items():
    i = int(np.argmin(r["new"].mean(1)))
    values[f"{v}_best_new_loss"] = float(r["new"][i].mean())
    values[f"{v}_old_loss_at_best"] = float(r["old"][i].mean())
    table.append((f"{v}: best new-part loss (s = {s_grid[i]:g}) / old-part loss there",
                  f"{r['new'][i].mean():.3f} ± {r['new'][i].std():.3f} / "
                  f"{r['old'][i].mean():.3f} ± {r['old'][i].std():.3f}"))
  return Outcome(metrics, values, table)


def change_facts(s_grid: np.ndarray, out: dict) -> tuple[dict, list]:
  """What the largest s changes against s = 0 (seed means), per variant role in `out`
  ({"new", "old", "dist"} arrays of shape (len(s_grid), seeds)): the old- and new-part
  loss differences and the distance ratio. Returns (values, table rows).

  Example:
    >>> r = {"new": np.array([[2.0], [2.5]]), "old": np.array([[3.0], [2.75]]),
    ...      "dist": np.array([[4.0], [1.0]])}
    >>> change_facts(np.array([0.0, 0.1]), {"l2_sp": r})[0]
    {'l2_sp_old_loss_change': -0.25, 'l2_sp_new_loss_change': 0.5, 'l2_sp_distance_ratio': 0.25}
  """
  z, j = int(np.flatnonzero(s_grid == 0)[0]), int(np.argmax(s_grid))
  values, rows = {}, []
  for v, r in out.items():
    m = {k: r[k].mean(axis=1) for k in ("new", "old", "dist")}
    values[f"{v}_old_loss_change"] = float(m["old"][j] - m["old"][z])
    values[f"{v}_new_loss_change"] = float(m["new"][j] - m["new"][z])
    values[f"{v}_distance_ratio"] = float(m["dist"][j] / m["dist"][z])
    rows.append((f"{v}: s = {s_grid[j]:g} against s = 0: old-part loss (forgetting) / "
                 "new-part loss / ‖w − w₀‖ ratio",
                 f"{values[f'{v}_old_loss_change']:+.3f} / "
                 f"{values[f'{v}_new_loss_change']:+.3f} / "
                 f"{values[f'{v}_distance_ratio']:.3f}"))
  return values, rows


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt  # optional and heavy: imported when a plot is drawn
  s = m["per_step_decay"]
  x = np.where(s > 0, s, np.min(s[s > 0]) / 10)
  names = sorted({k.split("/")[0] for k in m if k.endswith("/dist")})
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
  for n in names:
    for ax, k in zip(axes, ("new", "old", "dist")):
      v = m[f"{n}/{k}"]
      ax.errorbar(x, v.mean(1), yerr=v.std(1), marker="o", ms=3, capsize=2, label=n)
  for ax, t in zip(axes, ("loss on the new part", "loss on the old part (forgetting)",
                          "‖w − w₀‖₂ (decayed weights)")):
    ax.set_xscale("log")
    ax.set_xlabel("per-step strength s")
    ax.set_title(t, fontsize=9)
    ax.legend(fontsize=7)
  return [_io.save_figure(fig, f"{out_dir}/finetune_toward_init.png")]


KIND = register(Kind("finetune_toward_init", FinetuneParams, CHECKS, run, plot, _validate,
                     sections=("optimizer", "train", "sweep", "variants")))

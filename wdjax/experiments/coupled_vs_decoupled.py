"""Coupled against decoupled weight decay under Adam (Loshchilov & Hutter's figure 2, small).

A digits MLP (64-128-10) is trained with a cosine learning-rate schedule over a grid of
learning rate η x weight decay λ for three optimizers: Adam+L2 (coupled: λw goes through
Adam's preconditioner), AdamW "lr" (u −= η_t·λ·w: PyTorch and optax) and AdamW "schedule"
(u −= s_t·λ·w, s_t = η_t/η: the paper's form, where λ does not move with η). Heatmaps of
test error; two numbers say how separable η and λ are: the fraction of the variance of the
test error an additive model f(η) + g(λ) explains (1: separable), and the slope
d log λ*/d log η of the best λ against η (0: the best λ does not move with η; −1: only
the product η·λ matters, as expected of AdamW "lr").

A structural check: with any schedule, "lr" at (η, λ) and "schedule" at (η, η·λ) apply the
same decay c_t·λ = η_t·λ at every step, so they train the same network; a small zipped
sweep of the "schedule" form at (η, η·λ) must reproduce the "lr" grid's numbers.

References:
  Loshchilov & Hutter, Decoupled Weight Decay Regularization, 2019.
  https://arxiv.org/abs/1711.05101
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wdjax import _io, models
from wdjax.config import Config, ConfigError, bounds
import wdjax.experiments._common as _common
from wdjax.experiments.registry import Kind, Outcome, register


@dataclass(frozen=True)
class AdamParams:
  """[params] of coupled_vs_decoupled."""
  # (η, λ) pairs of the lr/schedule equivalence check
  equivalence_points: int = field(default=3, **bounds(1, 1000))


CHECKS = {
    "lr_schedule_equivalence": "max |train loss of AdamW 'lr' at (η, λ) − 'schedule' at "
                               "(η, ηλ)|, relative",
    "separability_gain": "separability of AdamW 'schedule' minus that of Adam+L2",
    "best_test_error": "lowest test error over every grid",
}


def _validate(cfg: Config) -> None:
  _common.allowed_axes(cfg, ("weight_decay", "learning_rate", "seed"))
  for ax in ("weight_decay", "learning_rate"):
    if ax not in cfg.sweep.axes:
      raise ConfigError(f"sweep.{ax}: missing; coupled_vs_decoupled sweeps an lr x "
                        "weight_decay grid.")
  names = {(v.coupling, v.scale_by) for v in cfg.variants.values()}
  if not {("coupled", "lr"), ("decoupled", "lr"), ("decoupled", "schedule")} <= {
      (c, s if c == "decoupled" else "lr") for c, s in names}:
    raise ConfigError("variants: coupled_vs_decoupled needs a coupled variant and decoupled "
                      "variants with scale_by = 'lr' and 'schedule'.")
  if cfg.data.source not in ("sklearn", "npz") or cfg.data.test_fraction <= 0 and cfg.data.source == "sklearn":
    raise ConfigError("data: coupled_vs_decoupled needs a classification dataset with a test "
                      "split (source = 'sklearn', name = 'digits', test_fraction > 0).")


def separability(err: np.ndarray) -> float:
  """1 − SS_interaction/SS_total of a two-way table (rows η, columns λ): the share of the
  variation an additive f(η) + g(λ) explains."""
  e = np.asarray(err, np.float64)
  fit = e.mean(1, keepdims=True) + e.mean(0, keepdims=True) - e.mean()
  tot = np.sum(np.square(e - e.mean()))
  return float(1.0 - np.sum(np.square(e - fit)) / tot) if tot > 0 else 1.0


def best_lambda_slope(err: np.ndarray, lrs: np.ndarray, wds: np.ndarray,
                      temperature: float = 0.005) -> float:
  """d log λ*(η) / d log η: how the best λ moves with η (0: separable; −1: only η·λ
  matters). λ*(η) is a soft arg-min over each row, weights softmax(−error/temperature),
  and the slope a least-squares fit over the rows that train (best error < 2x overall)."""
  e = np.asarray(err, np.float64)
  rows = e.min(1) < 2 * e.min()
  if rows.sum() < 2:
    return float("nan")
  w = np.exp(-(e[rows] - e[rows].min(1, keepdims=True)) / temperature)
  log_best = (w * np.log10(wds)[None]).sum(1) / w.sum(1)
  return float(np.polyfit(np.log10(lrs[rows]), log_best, 1)[0])


def run(cfg: Config, ctx) -> Outcome:
  ds = _common.dataset(cfg)
  if ds.task != "classification" or not ds.has_test:
    raise ConfigError("data: coupled_vs_decoupled needs a classification dataset with a "
                      "test split.")
  lrs = cfg.sweep.axes["learning_rate"].values()
  wds = cfg.sweep.axes["weight_decay"].values()
  seeds = ({"seed": cfg.sweep.axes["seed"].values().astype(np.int64)}
           if "seed" in cfg.sweep.axes else {})
  model = models.for_dataset(cfg.model.name, ds, widths=cfg.model.widths or (128,),
                             activation=cfg.model.activation) \
      if cfg.model.name == "mlp" else models.for_dataset(cfg.model.name, ds)
  # Every variant runs its η x λ points as one zipped axis; the "schedule" variant also
  # runs the points (η, η·λ) of the structural check, in the same compiled program.
  grid_lr, grid_wd = (a.ravel() for a in np.meshgrid(lrs, wds, indexing="ij"))
  k = min(cfg.params.equivalence_points, len(wds))
  i_lr = len(lrs) // 2
  js = np.linspace(0, len(wds) - 1, k).round().astype(int)
  metrics, values, table, seps = {"lrs": lrs, "wds": wds}, {}, [], {}
  tail = {}
  for name, opt in cfg.variants.items():
    lr_pts, wd_pts = grid_lr, grid_wd
    extra = opt.coupling == "decoupled" and opt.scale_by == "schedule"
    if extra:
      lr_pts = np.concatenate([grid_lr, np.full(k, lrs[i_lr])])
      wd_pts = np.concatenate([grid_wd, lrs[i_lr] * wds[js]])
    res = _common.sweep_variant(ctx, cfg, opt, ds, model, dict(seeds), name,
                                zip_axes={"learning_rate": lr_pts, "weight_decay": wd_pts})
    err = 1.0 - np.asarray(res.metrics["test_acc"])[..., -1]
    tl = np.asarray(res.metrics["train_loss"])[..., -1]
    bad = res.diverged | ~np.isfinite(err)
    if seeds:                                  # mean over seeds (the first dimension)
      err, tl, bad = err.mean(0), tl.mean(0), bad.any(0)
    err = np.where(bad, 1.0, err)
    if extra:
      tail[name] = tl[len(grid_lr):]
    err = err[:len(grid_lr)].reshape(len(lrs), len(wds))
    tl = tl[:len(grid_lr)].reshape(len(lrs), len(wds))
    metrics[f"{name}/test_error"], metrics[f"{name}/train_loss"] = err, tl
    seps[name] = separability(err)
    slope = best_lambda_slope(err, lrs, wds)
    values[f"best_lambda_slope/{name}"] = slope
    i, j = np.unravel_index(np.argmin(err), err.shape)
    table.append((f"{name}: best test error (η={lrs[i]:.2g}, λ={wds[j]:.2g}) / "
                  "separability / d log λ*/d log η",
                  f"{err[i, j]:.2%} / {seps[name]:.2f} / {slope:+.2f}"))
  values["best_test_error"] = float(min(np.min(metrics[f"{n}/test_error"]) for n in cfg.variants))
  coupled = next(n for n, v in cfg.variants.items() if v.coupling == "coupled")
  values["separability_gain"] = seps[_name(cfg, "schedule")] - seps[coupled]
  for n, sep in seps.items():
    values[f"separability/{n}"] = sep
  # Structural check: "schedule" at (η, η·λ) is "lr" at (η, λ).
  ref = metrics[f"{_name(cfg, 'lr')}/train_loss"][i_lr, js]
  tl_eq = tail[_name(cfg, "schedule")]
  values["lr_schedule_equivalence"] = float(np.max(np.abs(tl_eq - ref) / np.abs(ref)))
  table.append(("AdamW 'lr' at (η, λ) vs 'schedule' at (η, ηλ): max relative train-loss gap",
                f"{values['lr_schedule_equivalence']:.2g}"))
  table.append(("separability gain, AdamW 'schedule' over Adam+L2",
                f"{values['separability_gain']:+.2f}"))
  return Outcome(metrics, values, table)


def _name(cfg: Config, scale_by: str) -> str:
  return next(n for n, v in cfg.variants.items()
              if v.coupling == "decoupled" and v.scale_by == scale_by)


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt  # optional and heavy: imported when a plot is drawn
  names = list(cfg.variants)
  fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6))
  lrs, wds = m["lrs"], m["wds"]
  for ax, name in zip(np.atleast_1d(axes), names):
    err = m[f"{name}/test_error"]
    im = ax.imshow(err, origin="lower", cmap="viridis_r", vmin=0, vmax=min(1.0, err.max()),
                   aspect="auto")
    ax.set_xticks(range(len(wds)), [f"{w:.0e}" for w in wds], rotation=60, fontsize=7)
    ax.set_yticks(range(len(lrs)), [f"{v:.0e}" for v in lrs], fontsize=7)
    ax.set_xlabel("weight decay λ")
    ax.set_ylabel("learning rate η")
    i, j = np.unravel_index(np.argmin(err), err.shape)
    ax.plot(j, i, "r*", ms=10)
    ax.set_title(f"{name}: separability {values.get(f'separability/{name}', float('nan')):.2f}",
                 fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="test error")
  fig.suptitle("test error over η x λ (cosine schedule)")
  out = [_io.save_figure(fig, f"{out_dir}/adam_decay_heatmaps.png")]
  return out


KIND = register(Kind("coupled_vs_decoupled", AdamParams, CHECKS, run, plot, _validate,
                     sections=("data", "model", "optimizer", "variants", "train", "sweep")))

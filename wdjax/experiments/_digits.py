"""The digits-MLP sweep shared by `cautious_vs_adamw` and `timescale`: one compiled sweep
over λ x seed of a decoupled decay rule after the config's optimizer, and seed means."""

from __future__ import annotations

import dataclasses

import numpy as np

from wdjax import data, masks, models
from wdjax.config import Config, ConfigError
import wdjax.experiments._common as _common


def check_data(cfg: Config, kind: str) -> None:
  """The digits MLP with a test split, decoupled L2 decay, λ (and seed) swept."""
  if cfg.data.source != "sklearn" or cfg.data.name != "digits" or cfg.data.test_fraction <= 0:
    raise ConfigError(f"data: {kind} runs on the digits MLP: source = 'sklearn', name = "
                      "'digits', test_fraction > 0 (a held-out test split).")
  if cfg.model.name != "mlp":
    raise ConfigError(f"model.name = {cfg.model.name!r}: {kind} trains an MLP (name = 'mlp').")
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


def sweep_rule(ctx, cfg: Config, ds: data.Dataset, decay: str, lams: np.ndarray,
               seeds: np.ndarray, name: str) -> dict:
  """One compiled sweep over λ x seed of `cfg.optimizer` then a decoupled or cautious decay
  (the same c_t, so at λ = 0 the two programs compute the same update); returns the
  final-epoch metrics of shape (λ, seed), NaN where a run diverged."""
  model = models.for_dataset("mlp", ds, widths=cfg.model.widths or (64,),
                             activation=cfg.model.activation)
  opt = dataclasses.replace(cfg.optimizer, options={**cfg.optimizer.options, "decay": decay})
  res = _common.sweep_variant(
      ctx, cfg, opt, ds, model,
      {"weight_decay": lams, "learning_rate": [cfg.optimizer.learning_rate], "seed": seeds}, name,
      # The norm is reported over the weights (not opt.mask's leaves), no train-set pass.
      train_options={"report_mask": masks.weights_only, "eval_train": False},
      progress=False, timing="sweeps (compile + run)")
  out = {k: np.asarray(v, np.float64)[:, 0, :, -1] for k, v in res.metrics.items()}
  bad = res.diverged[:, 0, :]
  for k in out:
    out[k] = np.where(bad, np.nan, out[k])
  return out


def seed_mean(a: np.ndarray) -> np.ndarray:
  """Mean over seeds (last axis); a diverged run (NaN) makes the mean +inf."""
  return np.mean(np.where(np.isfinite(a), a, np.inf), axis=-1)


def best_index(val: np.ndarray) -> int:
  """Index of the λ with the lowest seed-mean validation loss (a diverged run counts +inf)."""
  return int(np.argmin(seed_mean(val)))

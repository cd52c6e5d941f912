"""Pieces the experiment kinds share: the optimizer a config names, grids, compiling."""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import numpy as np
import optax

from wdjax import _progress, data, optimizers, sweep, train
from wdjax.config import Config, ConfigError, OptimizerConfig, build_optimizer

def optimizer_builder(opt: OptimizerConfig, total_steps: int,
                      swept: tuple[str, ...] = ()) -> optimizers.Builder:
  """The builder of an `[optimizer]` table (`wdjax.config.build_optimizer`).

  Example:
    >>> from wdjax.config import OptimizerConfig
    >>> opt = OptimizerConfig(name="adam", options={"coupling": "decoupled"})
    >>> tx = optimizer_builder(opt, 100)({"learning_rate": 1e-3, "weight_decay": 1e-2})
  """
  return build_optimizer(opt, total_steps, swept)


def dataset(cfg: Config) -> Any:
  """The dataset a `[data]` table names: a user's .npz, or a scikit-learn dataset split by
  `cfg.seed` with the table's fractions and standardization."""
  d = cfg.data
  if d.source == "npz":
    try:
      return data.load_npz(d.path)
    except ValueError as e:   # (the file's fault, not wdjax's: one line from the CLI)
      raise ConfigError(f"data.path = {d.path!r}: {e}") from None
  return data.sklearn_dataset(d.name, cfg.seed, val_fraction=d.val_fraction,
                              test_fraction=d.test_fraction,
                              standardize_target=d.standardize_target)


def full_batch(tx: optax.GradientTransformation, grad: Callable[[Any], Any], w0: Any,
               steps: int) -> Any:
  """`steps` full-batch updates of `tx` from `w0` with gradient `grad(w)`, under lax.scan."""
  def body(carry, _):
    w, st = carry
    u, st = tx.update(grad(w), st, w)
    return (optax.apply_updates(w, u), st), None

  (w, _), _ = jax.lax.scan(body, (w0, tx.init(w0)), None, length=steps)
  return w


def allowed_axes(cfg: Config, allowed: tuple[str, ...]) -> None:
  for name in cfg.sweep.axes:
    if name not in allowed:
      raise ConfigError(f"sweep.{name}: experiment kind {cfg.kind!r} sweeps only "
                        f"{', '.join(allowed)}.")


def axis(cfg: Config, name: str, default: Any) -> np.ndarray:
  """The values of sweep axis `name`, or `[default]` when the config does not sweep it."""
  if name in cfg.sweep.axes:
    return cfg.sweep.axes[name].values()
  return np.asarray([default])


def compiler_options(cfg: Config) -> dict:
  """XLA options for `cfg` (`train.fast_compile`: CPU backend optimization level 0)."""
  return {"xla_backend_optimization_level": 0} if cfg.train.fast_compile else {}


def compile_fn(ctx: Any, cfg: Config, fn: Callable, *args: Any) -> Any:
  """jit-compiles `fn` for `args`, timed as "compile"."""
  with ctx.timed("compile"):
    return jax.jit(fn).lower(*args).compile(compiler_options=compiler_options(cfg))


def log_progress(ctx: Any, what: str, done: int, total: int, t0: float) -> None:
  """One progress line through the run's log (the wording of `wdjax._progress`)."""
  ctx.log(f"  {what}: {_progress.status(done, total, time.perf_counter() - t0)}")


def sweep_variant(ctx: Any, cfg: Config, opt: OptimizerConfig, dataset: Any, model: Any,
                  axes: dict, name: str, *, return_params: bool = False,
                  batch_size: int | None = None, seed: int | None = None,
                  zip_axes: dict | None = None,
                  train_options: dict | None = None, progress: bool = True,
                  timing: str = "sweep (compile + run)") -> Any:
  """`wdjax.sweep.run` of `wdjax.train.make_train_fn` for one optimizer variant.

  `axes` maps "weight_decay", "learning_rate" (and "seed") to values; their product is
  the grid (times one dimension of `zip_axes`, zipped). Finished chunks go to `<run_dir>/chunks/<name>/`, so an interrupted run
  resumes from them (the sweep's own checkpointing).
  `train_options` (e.g. `eval_train`, `report_mask`) override `wdjax.train.make_train_fn`'s
  arguments; the sweep is timed under `timing`.
  """
  bs = cfg.train.batch_size if batch_size is None else batch_size
  n = int(dataset.x_train.shape[0])
  # One rule for every kind: 0 (or n) is full batch, more than n examples is an error.
  if bs > n:
    raise ConfigError(f"train.batch_size = {bs} exceeds the {n} training examples of the "
                      "data; use 0 (or at most the number of examples).")
  bs = None if bs in (0, n) else bs
  steps = cfg.train.epochs * (1 if bs is None else n // bs)
  # The norm is reported over the leaves the optimizer regularizes, unless overridden.
  options = {"report_mask": optimizers.MASKS[opt.mask], "return_params": return_params,
             **(train_options or {})}
  swept = tuple(axes or ()) + tuple(zip_axes or ())
  fn = train.make_train_fn(model, dataset, optimizer=optimizer_builder(opt, steps, swept),
                           epochs=cfg.train.epochs, batch_size=bs, **options)
  d = ctx.chunk_dir()
  ckpt = None if d is None else f"{d}/{name}"
  with ctx.timed(timing):
    return sweep.run(fn, sweep.grid(product=axes or None, zip=zip_axes), chunk_size=cfg.sweep.chunk_size or None,
                     progress=progress, seed=cfg.seed if seed is None else seed,
                     checkpoint_dir=ckpt)

"""Pieces the experiment kinds share: the optimizer a config names, grids, compiling."""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import numpy as np
import optax

from wdjax import aliases, masks, penalties, prox, transforms
from wdjax.config import Config, ConfigError, OptimizerConfig

PENALTIES = {"l2": penalties.l2, "l1": penalties.l1, "frobenius": penalties.frobenius,
             "nuclear": penalties.nuclear}
PROXES = {"l2": prox.l2, "l1": prox.l1, "frobenius": prox.frobenius, "nuclear": prox.nuclear}
MASKS = {"weights_only": masks.weights_only, "everything": None}


def optimizer_builder(opt: OptimizerConfig, total_steps: int, *,
                      decay: Callable[..., optax.GradientTransformation] = transforms.decoupled,
                      ) -> Callable[[dict], optax.GradientTransformation]:
  """`hparams -> optax.GradientTransformation` for an `[optimizer]` table.

  The builder reads the traced hyperparameters "learning_rate" and "weight_decay" (so a
  sweep over them compiles once) and, with SGD and a non-zero `momentum`, "momentum".
  `schedule = "cosine"` decays the learning rate to 0 over `total_steps`; decoupled decay
  then scales by η_t ("lr") or η_t/η_peak ("schedule"), as `wdjax.decoupled` documents.
  `decay` is the decoupled rule (`wdjax.decoupled`, or one with its signature such as
  `wdjax.variants.cautious`), given the same c_t.

  Example:
    >>> from wdjax.config import OptimizerConfig
    >>> build = optimizer_builder(OptimizerConfig(name="adam", coupling="decoupled"), 100)
    >>> tx = build({"learning_rate": 1e-3, "weight_decay": 1e-2})
  """
  mask = MASKS[opt.mask]

  def build(h: dict) -> optax.GradientTransformation:
    lr, lam = h["learning_rate"], h["weight_decay"]
    sched = lr if opt.schedule == "constant" else optax.cosine_decay_schedule(lr, total_steps)
    peak = lr if opt.schedule != "constant" else None
    momentum = h.get("momentum", opt.momentum) if opt.momentum else None
    if opt.coupling == "proximal" and opt.name == "adam":
      return aliases.proximal_adam(sched, PROXES[opt.penalty], lam, mask=mask)
    if opt.coupling == "proximal":  # with momentum the prox threshold is η_t/(1 − β)·λ
      return aliases.proximal_sgd(sched, PROXES[opt.penalty], lam, momentum=momentum, mask=mask)
    base = (optax.sgd(sched, momentum=momentum) if opt.name == "sgd" else optax.adam(sched))
    if opt.coupling == "coupled":
      return optax.chain(transforms.coupled(PENALTIES[opt.penalty], lam, mask=mask), base)
    if opt.coupling == "decoupled":
      return optax.chain(base, decay(lam, learning_rate=sched, scale_by=opt.scale_by,
                                     peak_learning_rate=peak, mask=mask))
    raise ConfigError(f"unknown coupling {opt.coupling!r}")

  return build


def dataset(cfg: Config) -> Any:
  """The dataset a `[data]` table names: a user's .npz, or a scikit-learn dataset split by
  `cfg.seed` with the table's fractions and standardization."""
  from wdjax import data
  d = cfg.data
  if d.source == "npz":
    return data.load_npz(d.path)
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


def check_decoupled_penalty(cfg: Config) -> None:
  """Decoupled decay is multiplicative shrinkage, i.e. L2 only: say so instead of ignoring
  another `penalty`."""
  for name, opt in [("optimizer", cfg.optimizer)] + [(f"variants.{k}", v)
                                                     for k, v in cfg.variants.items()]:
    if opt.coupling == "decoupled" and opt.penalty != "l2":
      raise ConfigError(f"{name}.penalty = {opt.penalty!r}: decoupled decay is L2 shrinkage "
                        "(u ← u − c_t·λ·w); use coupling = 'proximal' for other penalties.")


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
  el = time.perf_counter() - t0
  eta = el / max(done, 1) * (total - done)
  ctx.log(f"  {what}: {done}/{total} done, {el:.1f}s elapsed, ~{eta:.1f}s left")


def sweep_variant(ctx: Any, cfg: Config, opt: OptimizerConfig, dataset: Any, model: Any,
                  axes: dict, name: str, *, return_params: bool = False,
                  batch_size: int | None = None, seed: int | None = None,
                  zip_axes: dict | None = None,
                  decay: Callable[..., optax.GradientTransformation] = transforms.decoupled,
                  train_options: dict | None = None, progress: bool = True,
                  timing: str = "sweep (compile + run)") -> Any:
  """`wdjax.sweep.run` of `wdjax.train.make_train_fn` for one optimizer variant.

  `axes` maps "weight_decay", "learning_rate" (and "seed") to values; their product is
  the grid (times one dimension of `zip_axes`, zipped). Finished chunks go to `<run_dir>/chunks/<name>/`, so an interrupted run
  resumes from them (the sweep's own checkpointing). `decay` goes to `optimizer_builder`;
  `train_options` (e.g. `eval_train`, `mask`) override `wdjax.train.make_train_fn`'s
  arguments; the sweep is timed under `timing`.
  """
  from wdjax import sweep, train
  bs = cfg.train.batch_size if batch_size is None else batch_size
  n = int(dataset.x_train.shape[0])
  bs = None if (bs == 0 or bs >= n) else bs
  steps = cfg.train.epochs * (1 if bs is None else n // bs)
  options = {"mask": MASKS[opt.mask], "return_params": return_params, **(train_options or {})}
  fn = train.make_train_fn(model, dataset, optimizer=optimizer_builder(opt, steps, decay=decay),
                           epochs=cfg.train.epochs, batch_size=bs, **options)
  d = ctx.chunk_dir()
  ckpt = None if d is None else f"{d}/{name}"
  with ctx.timed(timing):
    return sweep.run(fn, sweep.grid(product=axes or None, zip=zip_axes), chunk_size=cfg.sweep.chunk_size or None,
                     progress=progress, seed=cfg.seed if seed is None else seed,
                     checkpoint_dir=ckpt)

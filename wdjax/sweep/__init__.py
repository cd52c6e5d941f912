"""Sweeps: one jit+vmap program over a grid of hyperparameters, chunked and sharded.

A grid is a product of named axes and/or one group of zipped axes:

  grid(product={"weight_decay": λs, "seed": [0, 1, 2]}, zip={"learning_rate": ηs, "momentum": μs})

"seed" is an int axis turned into the PRNG key of each run; every other axis is a float
hyperparameter passed to `train_fn(hparams, key)`. `run(train_fn, grid)` compiles
`jit(vmap(train_fn))` once, runs the grid's points through it in chunks sharded over the
devices, and gathers the metrics into a `SweepResult` with named axes:

  res.metrics["val_loss"]       # shape grid.shape + (epochs,)
  res.sel(weight_decay=3.0)      # index by value
  res.diverged, res.diverged_epoch
  res.to_xarray(), res.to_dataframe()

Modules: `grid` (axes and points), `result` (`SweepResult`), `engine` (`run`, devices,
`use_cpu_cores`), `store` (`.npz` files of pytrees and the checkpoint store for resuming).
Note that `wdjax.sweep.grid` is the function `grid`; the module is `wdjax.sweep.grid` in
`sys.modules` only (import from it with `from wdjax.sweep.grid import ...`).

Example:
  >>> import jax, jax.numpy as jnp
  >>> from wdjax import sweep
  >>> def train_fn(hparams, key):  # a toy "training": w ← (1 − λ)w, 3 epochs
  ...   w = jnp.cumprod(jnp.full((3,), 1 - hparams["weight_decay"]))
  ...   return {"train_loss": w ** 2}
  >>> g = sweep.grid(product={"weight_decay": [0.0, 0.5], "seed": [0, 1, 2]})
  >>> res = sweep.run(train_fn, g, progress=False)
  >>> res.metrics["train_loss"].shape
  (2, 3, 3)
  >>> res.sel(weight_decay=0.5, seed=1).metrics["train_loss"]
  array([0.25    , 0.0625  , 0.015625], dtype=float32)
"""

from __future__ import annotations

from wdjax.sweep import engine
from wdjax.sweep import result
from wdjax.sweep import store
from wdjax.sweep.engine import run
from wdjax.sweep.engine import use_cpu_cores
from wdjax.sweep.grid import SEED
from wdjax.sweep.grid import Grid
from wdjax.sweep.grid import grid  # after the submodule imports: the name is the function
from wdjax.sweep.result import SweepResult

__all__ = (
    "SEED",
    "Grid",
    "SweepResult",
    "engine",
    "grid",
    "result",
    "run",
    "store",
    "use_cpu_cores",
)

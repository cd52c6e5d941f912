"""Experiments: each kind is the code behind one or more configs in `experiments/*.toml`.

`run(cfg)` runs a validated `wdjax.config.Config` into a run directory (see
`wdjax.report`): the resolved config and its hash, the environment, the metrics (.npz and
summary.json), PNG plots and report.md. Each kind registers

- `params`: a frozen dataclass of its own knobs (the config's `[params]` table),
- `checks`: the names of the numbers its `[expected]` table may bound, each checked
  against an independent reference or a structural fact, never against a stored output,
- `run(cfg, ctx) -> Outcome` and `plot(cfg, metrics, values, out_dir) -> [png paths]`.

| kind                  | reproduces                                                       |
|-----------------------|------------------------------------------------------------------|
| d2l_weight_decay      | D2L 3.7: λ=0 vs λ=3, loss vs λ over seeds, λ chosen on validation |
| bias_penalty          | should the bias be penalized (mask with/without the bias)        |
| l1_vs_l2              | sparsity, proximal vs subgradient L1, lasso path vs sklearn      |
| coupled_vs_decoupled  | Adam+L2 vs AdamW ("lr", "schedule") lr x wd grids (L&H fig. 2)   |
| bayesian              | MAP under Gaussian / Laplace priors = ridge / lasso              |
| matrices              | Frobenius = L2 on a kernel; the nuclear prox gives low rank      |
| tune_lambda           | λ by hypergradient search vs the grid's best (D2L, digits, lasso) |
| cautious_vs_adamw     | cautious weight decay vs AdamW on the digits MLP, over seeds     |
| timescale             | Wang & Aitchison's fixed-τ_epoch rule: best λ ∝ 1/N              |

Any other module dropped into this package is imported too, and registers its own kinds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np


class Outcome(NamedTuple):
  """What an experiment returns: arrays, named numbers (checks among them), result rows."""
  metrics: dict[str, np.ndarray]
  values: dict[str, float]
  table: list[tuple[str, str]]


@dataclass(frozen=True)
class Kind:
  """An experiment kind: its parameters, its checks and its run/plot functions."""
  name: str
  params: type
  checks: Mapping[str, str]
  run: Callable[..., Outcome]
  plot: Callable[..., list[str]]
  validate: Callable[[Any], None] = lambda cfg: None
  shrink: Callable[[Any], Any] | None = None   # a smaller config for smoke tests


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
  KINDS[kind.name] = kind
  return kind


class Context:
  """Per-run services for an experiment: logging, timings and resumable pieces.

  `ctx.cached(name, fn)` returns the dict of arrays `fn()` computes, saved atomically
  under `<run_dir>/chunks/<name>.npz`; a rerun of the same config (same hash) loads
  finished pieces instead of recomputing them, so an interrupted run resumes.
  """

  def __init__(self, run_dir: str | None = None, log: Callable[[str], None] | None = print):
    self.run_dir = run_dir
    self.log = log or (lambda s: None)
    self.timings: dict[str, float] = {}
    self.resumed: list[str] = []

  @contextlib.contextmanager
  def timed(self, name: str):
    t0 = time.perf_counter()
    try:
      yield
    finally:
      self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0

  def chunk_dir(self) -> str | None:
    if self.run_dir is None:
      return None
    path = os.path.join(self.run_dir, "chunks")
    os.makedirs(path, exist_ok=True)
    return path

  def cached(self, name: str, fn: Callable[[], Mapping[str, Any]]) -> dict[str, np.ndarray]:
    from wdjax import report
    d = self.chunk_dir()
    path = os.path.join(d, f"{name}.npz") if d else None
    if path and os.path.exists(path):
      with np.load(path, allow_pickle=False) as f:
        self.resumed.append(name)
        self.log(f"  resumed {name} from {path}")
        return {k: f[k] for k in f.files}
    out = {k: np.asarray(v) for k, v in fn().items()}
    if path:
      report.write_npz(path, out)
    return out


def run(cfg: Any, out_dir: str | None = None, *, log: Callable[[str], None] | None = print,
        plots: bool = True) -> "report.RunRecord":
  """Runs `cfg` into a run directory (default `runs/<name>-<hash>`); see `wdjax.report`."""
  from wdjax import report
  return report.execute(cfg, out_dir, log=log, plots=plots)


def shrink(cfg: Any) -> Any:
  """A smaller version of a (quick) config for smoke tests: every sweep axis cut to its
  first and last value, epochs to at most 2, the kind's own `shrink` applied."""
  from wdjax import config as _config
  axes = {}
  for name, axis in cfg.sweep.axes.items():
    v = axis.values()
    vals = [v[0], v[-1]] if len(v) > 1 else [v[0]]
    axes[name] = (_config.Axis("range", (min(len(v), 2),)) if axis.kind == "range"
                  else _config.Axis("values", tuple(float(x) for x in vals)))
  train = dataclasses.replace(cfg.train, epochs=min(cfg.train.epochs, 2))
  shrunk = dataclasses.replace(cfg, sweep=dataclasses.replace(cfg.sweep, axes=axes), train=train)
  fn = KINDS[cfg.kind].shrink
  return fn(shrunk) if fn else shrunk


# Importing the kinds registers them: those of this package explicitly (an error there
# is a bug to see at once), then any other module dropped into wdjax/experiments/, whose
# import error is kept and reported when a config asks for its kind.
from wdjax.experiments import (adam_decay, bayes, bias, d2l, l1_l2, matrices,  # noqa: E402,F401
                               tuning, variants_exp)

IMPORT_ERRORS: dict[str, str] = {}


def _discover() -> None:
  import importlib
  import pkgutil
  for mod in pkgutil.iter_modules(__path__):
    if mod.name.startswith("_") or f"{__name__}.{mod.name}" in __import__("sys").modules:
      continue
    try:
      importlib.import_module(f"{__name__}.{mod.name}")
    except Exception as e:  # noqa: BLE001 - kept, shown when the kind is asked for
      IMPORT_ERRORS[mod.name] = f"{type(e).__name__}: {e}"


_discover()

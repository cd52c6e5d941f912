"""Running a config: its run directory, provenance, resume, checks and summary.

`run(cfg)` runs a validated `wdjax.config.Config` (from `wdjax.experiments.load`) into a
run directory (default `runs/<name>-<hash>`), which holds

| file          | content                                                             |
|---------------|---------------------------------------------------------------------|
| config.json   | the resolved config and its hash                                    |
| env.json      | python, jax, jaxlib, optax, flax, numpy versions, devices, git commit |
| chunks/*.npz  | finished pieces; an interrupted run of the same config resumes from them |
| metrics.npz   | the metric arrays                                                   |
| *.png         | plots (`wdjax.plots.make_plots`)                                    |
| report.md     | the result table, the checks and the plots (`wdjax.report`)         |
| summary.json  | named numbers, checks, timings; written last, only on success       |

Every file is written atomically (`wdjax._io`), so an interrupted run never leaves a
half-written file; `summary.json` exists only for a run that finished, so a failed run
leaves nothing that pretends to be a result.

Example:
  >>> import os, tempfile
  >>> from wdjax import experiments, runner
  >>> cfg = experiments.from_dict({"name": "demo", "kind": "matrices", "description": "d",
  ...     "data": {"source": "lowrank", "dim": 4, "outputs": 3, "n_train": 20, "n_val": 10},
  ...     "sweep": {"weight_decay": {"values": [0.1]}}, "params": {"steps": 20},
  ...     "expected": {"ridge_min_rank": {"min": 1.0}}})
  >>> rec = runner.run(cfg, os.path.join(tempfile.mkdtemp(), "demo"), log=None, plots=False)
  >>> rec.passed, sorted(os.listdir(rec.run_dir))
  (True, ['config.json', 'env.json', 'metrics.npz', 'report.md', 'summary.json'])
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from typing import Callable, NamedTuple

import flax
import jax
import jaxlib
import numpy as np
import optax

from wdjax import _io
from wdjax import config as _config
from wdjax import experiments
from wdjax import plots as _plots
from wdjax import report


class RunRecord(NamedTuple):
  """A finished run: where it is, its hash, its numbers and its checks."""
  run_dir: str
  hash: str
  values: dict
  checks: list[report.CheckRow]
  table: list[tuple[str, str]]
  plots: list[str]
  timings: dict

  @property
  def passed(self) -> bool:
    return all(c.passed for c in self.checks)


def default_run_dir(cfg: _config.Config, root: str = "runs") -> str:
  """`runs/<name>[-quick]-<hash>`."""
  return os.path.join(root, f"{cfg.name}{'-quick' if cfg.is_quick else ''}-{cfg.hash()}")


def run(cfg: _config.Config, out_dir: str | None = None, *,
        log: Callable[[str], None] | None = print, plots: bool = True) -> RunRecord:
  """Runs a config into its run directory and writes the results (see the module doc).

  A directory that already holds a run of the same config resumes from its finished
  chunks; one that holds another config is an error (pick another `--out`).

  Args:
    cfg: a validated config (`wdjax.experiments.load`).
    out_dir: the run directory; default `default_run_dir(cfg)`.
    log: where progress lines go (None: nowhere).
    plots: draw the kind's PNG plots.

  Returns:
    A `RunRecord`.
  """
  t_start = time.perf_counter()
  log = log or (lambda s: None)
  h = cfg.hash()
  run_dir = out_dir or default_run_dir(cfg)
  cfg_path = os.path.join(run_dir, "config.json")
  if os.path.exists(cfg_path):
    with open(cfg_path) as f:
      old = json.load(f).get("hash")
    if old != h:
      raise _config.ConfigError(
          f"{run_dir} holds a run of another config (hash {old}, this one {h}); choose "
          "another --out or remove it.")
  os.makedirs(run_dir, exist_ok=True)
  # A finished earlier run is recomputed from scratch (the code may have changed since);
  # only an unfinished one (no summary.json) resumes from its chunks.
  if os.path.exists(os.path.join(run_dir, "summary.json")):
    shutil.rmtree(os.path.join(run_dir, "chunks"), ignore_errors=True)
  # Results of an earlier attempt are withdrawn first: only this run may write them again.
  for stale in ("summary.json", "report.md"):
    if os.path.exists(os.path.join(run_dir, stale)):
      os.remove(os.path.join(run_dir, stale))
  _io.write_json(cfg_path, {"hash": h, "config": _config.to_dict(cfg)})
  kind = experiments.KINDS[cfg.kind]
  ctx = experiments.Context(run_dir, log)
  with ctx.timed("environment"):   # includes JAX's backend start and the sklearn import
    _io.write_json(os.path.join(run_dir, "env.json"), environment())
  log(f"{cfg.name} [{h}]{' (quick)' if cfg.is_quick else ''}: {cfg.description}")
  outcome = kind.run(cfg, ctx)
  _io.write_npz(os.path.join(run_dir, "metrics.npz"), outcome.metrics)
  pngs: list[str] = []
  if plots:
    with ctx.timed("plots"):
      pngs = _plots.make_plots(cfg, outcome.metrics, outcome.values, run_dir)
  rows = report.check_rows(cfg.expected, outcome.values)
  ctx.timings["total_in_process"] = time.perf_counter() - t_start
  _io.write_text(os.path.join(run_dir, "report.md"),
                 report.markdown_report(cfg, h, outcome.table, rows, pngs, ctx.timings))
  record = RunRecord(run_dir, h, outcome.values, rows, outcome.table, pngs, ctx.timings)
  _io.write_json(os.path.join(run_dir, "summary.json"), {
      "name": cfg.name, "hash": h, "quick": cfg.is_quick, "values": outcome.values,
      "table": outcome.table, "checks": [r._asdict() for r in rows],
      "passed": record.passed, "plots": [os.path.basename(p) for p in pngs],
      "timings_s": ctx.timings, "resumed_chunks": ctx.resumed})
  return record


# --- provenance -------------------------------------------------------------------------


def git_commit() -> str:
  """The git commit of wdjax's own working tree (+ "-dirty" with local changes)."""
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                         text=True, timeout=5).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                           capture_output=True, text=True, timeout=5).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return "unknown"
  return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


def environment() -> dict:
  """Versions, devices, platform and git commit: what reproducing a number needs."""
  env = {
      "python": sys.version.split()[0],
      "jax": jax.__version__, "jaxlib": jaxlib.__version__,
      "optax": optax.__version__, "flax": flax.__version__, "numpy": np.__version__,
      "platform": platform.platform(), "machine": platform.machine(),
      "backend": jax.default_backend(),
      "devices": [str(d) for d in jax.devices()],
      "git_commit": git_commit(),
      "x64": bool(jax.config.jax_enable_x64),
      "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  }
  try:
    import sklearn  # optional and heavy: only its version is recorded, when installed
    env["sklearn"] = sklearn.__version__
  except ImportError:  # pragma: no cover
    pass
  return env

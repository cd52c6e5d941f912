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

Every file is written atomically (`wdjax._io`), and the whole directory too: a run
computes in an attempt folder beside it (`.NAME.wdjax-attempt`, where an interrupted run
of the same config resumes; an unfinished attempt of another config is set aside as
`.NAME.wdjax-attempt.HASH`, with a warning, and resumed when that config runs there again)
and replaces the run directory only once finished. So a run
directory always holds one whole finished result or none, a failed or interrupted rerun
leaves the earlier result intact, and `summary.json` exists only for a finished run. A
directory wdjax did not write is never written into nor deleted.

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
import warnings
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


class RunDirError(_config.ConfigError):
  """A run directory that wdjax may not use: another config's run, not a wdjax run
  directory, a file, or a damaged config.json; the message names the path and the fix."""


ATTEMPT_SUFFIX = ".wdjax-attempt"   # sibling folder where a run computes
OLD_SUFFIX = ".wdjax-old"           # sibling folder of a result being replaced


def _siblings(run_dir: str) -> tuple[str, str]:
  """(attempt folder, old-result folder) beside `run_dir`: `.NAME.wdjax-attempt`, ..."""
  parent, base = os.path.split(os.path.abspath(run_dir))
  return (os.path.join(parent, f".{base}{ATTEMPT_SUFFIX}"),
          os.path.join(parent, f".{base}{OLD_SUFFIX}"))


def _stored_hash(path: str) -> str | None:
  """The "hash" of a config.json; None when it is missing or unreadable."""
  try:
    with open(path, encoding="utf-8") as f:
      value = json.load(f).get("hash")
  except (OSError, ValueError, AttributeError):
    return None
  return value if isinstance(value, str) else None


def _check_run_dir(run_dir: str, h: str) -> bool:
  """Whether `run_dir` holds a finished run of this config; raises `RunDirError` when it
  is not a place wdjax may replace (never deleting anything in it)."""
  if not os.path.lexists(run_dir):
    return False
  if not os.path.isdir(run_dir) or os.path.islink(run_dir):
    raise RunDirError(f"{run_dir}: exists and is not a directory; choose another --out.")
  if not os.listdir(run_dir):
    return False
  cfg_path = os.path.join(run_dir, "config.json")
  if not os.path.exists(cfg_path):
    raise RunDirError(f"{run_dir} is not empty and is not a wdjax run directory (no "
                      "config.json); wdjax writes nothing there and deletes nothing. Choose "
                      "another --out (a new or empty directory).")
  old = _stored_hash(cfg_path)
  if old is None:
    raise RunDirError(f"{cfg_path}: unreadable (damaged or edited); wdjax will not replace "
                      "this directory. Remove it or choose another --out.")
  if old != h:
    raise RunDirError(f"{run_dir} holds a run of another config (hash {old}, this one {h}); "
                      "choose another --out or remove it.")
  return os.path.exists(os.path.join(run_dir, "summary.json"))


def _recover(run_dir: str, old: str) -> None:
  """Completes a replacement that was interrupted between its two renames."""
  if os.path.isdir(old):
    if not os.path.lexists(run_dir):
      os.rename(old, run_dir)       # the old result goes back where it was
    else:
      shutil.rmtree(old)            # the new result is in place: the old one is spare


def _publish(attempt: str, run_dir: str, old: str) -> None:
  """Puts the finished `attempt` in place of `run_dir` by two renames; a kill between
  them leaves both results whole, and the next run's `_recover` completes the swap."""
  if os.path.lexists(run_dir):
    os.rename(run_dir, old)
  os.rename(attempt, run_dir)
  shutil.rmtree(old, ignore_errors=True)


def _prepare_attempt(attempt: str, run_dir: str, h: str, finished: bool) -> bool:
  """The attempt folder for this run: an unfinished attempt of the same config is resumed
  (its chunks); one of another config is set aside as `ATTEMPT.HASH`, not deleted, and
  resumed from there when that config runs again into this directory; a damaged one is
  replaced. Returns whether it resumes."""
  if os.path.lexists(attempt):
    stored = None
    if os.path.isdir(attempt) and not os.path.islink(attempt):
      stored = _stored_hash(os.path.join(attempt, "config.json"))
      if stored == h:
        return True
      if stored is not None and not stored.isalnum():   # (it names a folder below)
        stored = None
    if stored is not None:
      aside = f"{attempt}.{stored}"
      if os.path.lexists(aside):   # an older attempt of that config: this one is newer
        shutil.rmtree(aside)
      os.rename(attempt, aside)
      warnings.warn(f"an unfinished run of another config ({stored}) was set aside in "
                    f"{aside}: its finished chunks are kept, and running that config again "
                    "into this output directory resumes from them (while no finished run "
                    "of another config is there).")
    elif os.path.isdir(attempt) and not os.path.islink(attempt):
      shutil.rmtree(attempt)        # wdjax's own folder, damaged (no config.json)
    else:
      os.remove(attempt)
  kept = f"{attempt}.{h}"
  if os.path.isdir(kept) and _stored_hash(os.path.join(kept, "config.json")) == h:
    os.rename(kept, attempt)        # this config's attempt, set aside by another's run
    return True
  if not finished and os.path.isdir(run_dir) and os.listdir(run_dir):
    # An unfinished run left in place by an older wdjax: resume from its chunks.
    os.rename(run_dir, attempt)
    return True
  os.makedirs(attempt)
  return False


def run(cfg: _config.Config, out_dir: str | None = None, *,
        log: Callable[[str], None] | None = print, plots: bool = True) -> RunRecord:
  """Runs a config into its run directory and writes the results (see the module doc).

  The run computes in a fresh attempt folder beside the run directory
  (`.NAME.wdjax-attempt`) and replaces the run directory with it only when it has
  finished, so an earlier result stays whole until a new one takes its place; a run that
  is interrupted or fails leaves the earlier result as it was, and the next run of the
  same config resumes from the attempt's finished chunks. A directory that holds another
  config's run, or that is not empty and not a wdjax run directory, is refused
  (`RunDirError`) and nothing in it is touched.

  Args:
    cfg: a validated config (`wdjax.experiments.load`).
    out_dir: the run directory; default `default_run_dir(cfg)`.
    log: where progress lines go (None: nowhere).
    plots: draw the kind's PNG plots.

  Returns:
    A `RunRecord`.

  Raises:
    RunDirError: the run directory cannot be used (see above).
    OSError: the file system refused (permissions, no space, ...); the earlier result is
      intact.
  """
  t_start = time.perf_counter()
  log = log or (lambda s: None)
  h = cfg.hash()
  run_dir = out_dir or default_run_dir(cfg)
  attempt, old = _siblings(run_dir)
  _recover(run_dir, old)
  finished = _check_run_dir(run_dir, h)
  parent = os.path.dirname(os.path.abspath(run_dir))
  above = parent
  while not os.path.lexists(above) and os.path.dirname(above) != above:
    above = os.path.dirname(above)
  if not os.path.isdir(above):
    raise RunDirError(f"{above}: is a file, not a directory, so {run_dir} cannot be created "
                      "below it; choose another --out.")
  os.makedirs(parent, exist_ok=True)
  resumed = _prepare_attempt(attempt, run_dir, h, finished)
  if not resumed:
    _io.write_json(os.path.join(attempt, "config.json"),
                   {"hash": h, "config": _config.to_dict(cfg)})
  kind = experiments.KINDS[cfg.kind]
  ctx = experiments.Context(attempt, log, fingerprint=h)
  with ctx.timed("environment"):   # includes JAX's backend start and the sklearn import
    _io.write_json(os.path.join(attempt, "env.json"), environment())
  log(f"{cfg.name} [{h}]{' (quick)' if cfg.is_quick else ''}: {cfg.description}")
  outcome = kind.run(cfg, ctx)
  _io.write_npz(os.path.join(attempt, "metrics.npz"), outcome.metrics)
  pngs: list[str] = []
  if plots:
    with ctx.timed("plots"):
      pngs = _plots.make_plots(cfg, outcome.metrics, outcome.values, attempt)
  rows = report.check_rows(cfg.expected, outcome.values)
  ctx.timings["total_in_process"] = time.perf_counter() - t_start
  _io.write_text(os.path.join(attempt, "report.md"),
                 report.markdown_report(cfg, h, outcome.table, rows, pngs, ctx.timings))
  passed = all(r.passed for r in rows)
  _io.write_json(os.path.join(attempt, "summary.json"), {
      "name": cfg.name, "hash": h, "quick": cfg.is_quick, "values": outcome.values,
      "table": outcome.table, "checks": [r._asdict() for r in rows],
      "passed": passed, "plots": [os.path.basename(p) for p in pngs],
      "timings_s": ctx.timings, "resumed_chunks": ctx.resumed})
  _publish(attempt, run_dir, old)
  pngs = [os.path.join(run_dir, os.path.basename(p)) for p in pngs]
  return RunRecord(run_dir, h, outcome.values, rows, outcome.table, pngs, ctx.timings)


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

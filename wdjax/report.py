"""Results with provenance: run directories, atomic files, check tables, reports.

A run directory (default `runs/<name>-<hash>`) holds

| file          | content                                                             |
|---------------|---------------------------------------------------------------------|
| config.json   | the resolved config and its hash                                    |
| env.json      | python, jax, jaxlib, optax, flax, numpy versions, devices, git commit |
| chunks/*.npz  | finished pieces; an interrupted run of the same config resumes from them |
| metrics.npz   | the metric arrays                                                   |
| *.png         | plots                                                               |
| report.md     | the result table, the checks and the plots                          |
| summary.json  | named numbers, checks, timings; written last, only on success       |

Every file is written to a temporary name and moved into place with `os.replace`, so an
interrupted run never leaves a half-written file; `summary.json` exists only for a run
that finished, so a failed run leaves nothing that pretends to be a result.
"""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from wdjax import config as _config


# --- atomic files -----------------------------------------------------------------------


def write_bytes(path: str, data: bytes) -> None:
  """Writes `data` to `path` atomically (a temporary file in the same folder, then
  `os.replace`)."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_text(path: str, text: str) -> None:
  write_bytes(path, text.encode())


def write_json(path: str, obj: Any) -> None:
  write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(x: Any) -> Any:
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  return str(x)


def write_npz(path: str, arrays: Mapping[str, Any]) -> None:
  buf = io.BytesIO()
  np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
  write_bytes(path, buf.getvalue())


def save_figure(fig: Any, path: str) -> str:
  """Lays out `fig`, writes it atomically to `path` as a PNG and closes it."""
  import matplotlib.pyplot as plt
  buf = io.BytesIO()
  fig.tight_layout()
  fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
  plt.close(fig)
  write_bytes(path, buf.getvalue())
  return path


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
  import jax
  import jaxlib
  import optax
  import flax
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
    import sklearn
    env["sklearn"] = sklearn.__version__
  except ImportError:  # pragma: no cover
    pass
  return env


# --- tables -----------------------------------------------------------------------------


class CheckRow(NamedTuple):
  """One expected number: its value, the bound, the tolerance and whether it passes."""
  name: str
  value: float
  expected: str
  tolerance: str
  passed: bool


def check_rows(expected: Mapping[str, _config.Check], values: Mapping[str, float]) -> list[CheckRow]:
  """Evaluates each `[expected]` check on the run's values (a missing value fails)."""
  rows = []
  for name, check in expected.items():
    v = float(values.get(name, float("nan")))
    exp, tol = check.describe()
    rows.append(CheckRow(name, v, exp, tol, check.passes(v)))
  return rows


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], markdown: bool = False) -> str:
  """An aligned text (or markdown) table."""
  cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
  widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
  line = lambda r: ("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
                    if markdown else "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
  sep = ("|" + "|".join("-" * (w + 2) for w in widths) + "|" if markdown
         else "  ".join("-" * w for w in widths))
  return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


def _fmt(x: Any) -> str:
  if isinstance(x, bool) or isinstance(x, np.bool_):
    return "PASS" if x else "FAIL"
  if isinstance(x, (float, np.floating)):
    return f"{x:.4g}"
  return str(x)


def checks_table(rows: Sequence[CheckRow], markdown: bool = False) -> str:
  return text_table(("check", "value", "expected", "tolerance", "pass"),
                    [tuple(r) for r in rows], markdown)


def results_table(rows: Sequence[tuple[str, str]], markdown: bool = False) -> str:
  return text_table(("result", "value"), rows, markdown)


# --- running ----------------------------------------------------------------------------


class RunRecord(NamedTuple):
  """A finished run: where it is, its hash, its numbers and its checks."""
  run_dir: str
  hash: str
  values: dict
  checks: list[CheckRow]
  table: list[tuple[str, str]]
  plots: list[str]
  timings: dict

  @property
  def passed(self) -> bool:
    return all(c.passed for c in self.checks)


def default_run_dir(cfg: _config.Config, root: str = "runs") -> str:
  return os.path.join(root, f"{cfg.name}{'-quick' if cfg.is_quick else ''}-{cfg.hash()}")


def execute(cfg: _config.Config, out_dir: str | None = None, *,
            log: Callable[[str], None] | None = print, plots: bool = True) -> RunRecord:
  """Runs a config into its run directory and writes the results (see the module doc).

  A directory that already holds a run of the same config resumes from its finished
  chunks; one that holds another config is an error (pick another `--out`).
  """
  from wdjax import experiments
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
  write_json(cfg_path, {"hash": h, "config": _config.to_dict(cfg)})
  kind = experiments.KINDS[cfg.kind]
  ctx = experiments.Context(run_dir, log)
  with ctx.timed("environment"):   # includes JAX's backend start and the sklearn import
    write_json(os.path.join(run_dir, "env.json"), environment())
  log(f"{cfg.name} [{h}]{' (quick)' if cfg.is_quick else ''}: {cfg.description}")
  outcome = kind.run(cfg, ctx)
  write_npz(os.path.join(run_dir, "metrics.npz"), outcome.metrics)
  pngs: list[str] = []
  if plots:
    with ctx.timed("plots"):
      pngs = make_plots(cfg, outcome.metrics, outcome.values, run_dir)
  rows = check_rows(cfg.expected, outcome.values)
  ctx.timings["total_in_process"] = time.perf_counter() - t_start
  write_text(os.path.join(run_dir, "report.md"),
             markdown_report(cfg, h, outcome.table, rows, pngs, ctx.timings))
  record = RunRecord(run_dir, h, outcome.values, rows, outcome.table, pngs, ctx.timings)
  write_json(os.path.join(run_dir, "summary.json"), {
      "name": cfg.name, "hash": h, "quick": cfg.is_quick, "values": outcome.values,
      "table": outcome.table, "checks": [r._asdict() for r in rows],
      "passed": record.passed, "plots": [os.path.basename(p) for p in pngs],
      "timings_s": ctx.timings, "resumed_chunks": ctx.resumed})
  return record


def make_plots(cfg: _config.Config, metrics: Mapping[str, np.ndarray],
               values: Mapping[str, float], out_dir: str) -> list[str]:
  """The kind's PNG plots of a run (matplotlib's Agg backend, no screen needed)."""
  import matplotlib
  matplotlib.use("Agg")
  from wdjax import experiments
  return experiments.KINDS[cfg.kind].plot(cfg, metrics, values, out_dir)


def markdown_report(cfg: _config.Config, h: str, table: Sequence[tuple[str, str]],
                    rows: Sequence[CheckRow], pngs: Sequence[str], timings: Mapping[str, float]) -> str:
  lines = [f"# {cfg.name}{' (quick)' if cfg.is_quick else ''}", "", cfg.description.strip(), "",
           f"config hash `{h}`; `wdjax reproduce {cfg.source or cfg.name}"
           f"{' --quick' if cfg.is_quick else ''}`", "", "## Results", "",
           results_table(table, markdown=True), ""]
  if rows:
    lines += ["## Checks", "", checks_table(rows, markdown=True), ""]
  if pngs:
    lines += ["## Plots", ""] + [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in pngs] + [""]
  lines += ["## Time (s)", "", text_table(("phase", "seconds"),
                                          [(k, f"{v:.2f}") for k, v in timings.items()],
                                          markdown=True), ""]
  return "\n".join(lines)


def load_run(run_dir: str) -> tuple[_config.Config, dict[str, np.ndarray], dict]:
  """(config, metrics, summary) of a finished run directory."""
  summary_path = os.path.join(run_dir, "summary.json")
  if not os.path.exists(summary_path):
    raise FileNotFoundError(f"{run_dir} holds no finished run (no summary.json); run it "
                            "with `wdjax run CONFIG --out DIR` first.")
  with open(os.path.join(run_dir, "config.json")) as f:
    cfg = _config.from_resolved(json.load(f)["config"])
  with open(summary_path) as f:
    summary = json.load(f)
  with np.load(os.path.join(run_dir, "metrics.npz"), allow_pickle=False) as f:
    metrics = {k: f[k] for k in f.files}
  return cfg, metrics, summary

"""Formatting results: check rows, text and markdown tables, the run report; reading a
run directory back.

`wdjax.runner` runs a config and writes its run directory through these formatters (the
table printed by `wdjax run`, `report.md`); `load_run` reads a finished directory back
(what `wdjax plot` redraws from).

Example:
  >>> print(results_table([("best λ", "0.1"), ("val loss", "0.25")]))
  result    value
  --------  -----
  best λ    0.1
  val loss  0.25
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from wdjax import _io
from wdjax import config as _config
from wdjax import experiments


# --- atomic files -----------------------------------------------------------------------


# The one implementation is wdjax._io (atomic, umask-respecting, npz with a checksum);
# these names stay here for the callers that write through `report`.
write_bytes = _io.write_bytes
write_text = _io.write_text
write_json = _io.write_json
write_npz = _io.write_npz
save_figure = _io.save_figure


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


# --- the run report -------------------------------------------------------------------


def markdown_report(cfg: _config.Config, h: str, table: Sequence[tuple[str, str]],
                    rows: Sequence[CheckRow], pngs: Sequence[str], timings: Mapping[str, float]) -> str:
  """report.md of a run: description, the command, results, checks, plots and timings."""
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
  """(config, metrics, summary) of a finished run directory (`wdjax.runner.run`'s).

  Raises:
    FileNotFoundError: no finished run there.
    wdjax.config.ConfigError: a file of the run is damaged (named in the message).
  """
  summary_path = os.path.join(run_dir, "summary.json")
  if not os.path.exists(summary_path):
    raise FileNotFoundError(f"{run_dir} holds no finished run (no summary.json); run it "
                            "with `wdjax run CONFIG --out DIR` first.")
  cfg_path = os.path.join(run_dir, "config.json")
  try:
    with open(cfg_path, encoding="utf-8") as f:
      cfg = experiments.from_resolved(json.load(f)["config"])
    with open(summary_path, encoding="utf-8") as f:
      summary = json.load(f)
    summary["values"]  # noqa: B018 - a summary without values is damaged
  except (ValueError, KeyError, TypeError) as e:  # JSON, UTF-8, missing entries
    raise _config.ConfigError(f"{run_dir}: config.json or summary.json is damaged ({e!r:.200}); "
                              "run the config again.") from None
  try:
    metrics, _ = _io.load_npz(os.path.join(run_dir, "metrics.npz"))
  except _io.ChecksumError as e:
    raise _config.ConfigError(f"{e} (run the config again)") from None
  return cfg, metrics, summary

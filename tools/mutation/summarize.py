"""Per-module mutation score from a mutmut 3 run directory (the `mutants/*.meta` files).

Usage: python summarize.py RUN_DIR   (with mutmut importable, as run.sh arranges)

Prints, per mutated module: killed / checked, timeouts and the other verdicts apart, and the
names of the mutants that were not killed (see them with `mutmut show NAME` in RUN_DIR).
The score counts only "killed": a timeout is listed, not counted, until someone has rerun it
(`mutmut run NAME`) or read its diff and judged it a real detection.
"""

from __future__ import annotations

import collections
import json
import pathlib
import sys

from mutmut.stats import status_by_exit_code

LIST_AT_MOST = 40  # names per verdict and module


def main(run_dir: str) -> None:
  metas = sorted(pathlib.Path(run_dir, "mutants").rglob("*.py.meta"))
  total_killed = total_checked = 0
  for meta in metas:
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    by_status = collections.defaultdict(list)
    for name, code in codes.items():
      # mutmut files a worker that raised before its tests ran (exit 255, e.g. pytest
      # refusing to start) under "timeout"; it is neither a timeout nor a kill.
      status = "worker error" if code == 255 else status_by_exit_code[code]
      by_status[status].append(name)
    if not codes:
      continue
    module = str(meta.relative_to(pathlib.Path(run_dir, "mutants")))[: -len(".meta")]
    killed = len(by_status["killed"])
    checked = len(codes) - len(by_status["not checked"])
    total_killed += killed
    total_checked += checked
    score = f"{100 * killed / checked:.1f}%" if checked else "-"
    counts = ", ".join(f"{k} {len(v)}" for k, v in sorted(by_status.items()))
    print(f"{module}: killed {killed} / {checked} checked ({score}) of {len(codes)} mutants"
          f" [{counts}]")
    for status in sorted(by_status):
      if status not in ("killed", "not checked"):
        names = sorted(by_status[status])
        for name in names[:LIST_AT_MOST]:
          print(f"    {status}: {name}")
        if len(names) > LIST_AT_MOST:
          print(f"    {status}: ... and {len(names) - LIST_AT_MOST} more")
  if total_checked:
    print(f"all: killed {total_killed} / {total_checked} checked "
          f"({100 * total_killed / total_checked:.1f}%)")


if __name__ == "__main__":
  main(sys.argv[1])

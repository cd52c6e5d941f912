"""Run chosen tests against many mutants of a run, one after the other, in one process.

  nice -n 19 .venv/bin/python tools/mutation/verify_many.py RUN_DIR NAMES_FILE [PYTEST ARGS]
  e.g. tools/mutation/verify_many.py /tmp/wdjax-mut.abc123 survivors.txt \\
         tests/test_pinned.py -k "preset"

NAMES_FILE holds one mutant name a line (the last word of each line is taken, so the
"survived: NAME" lines of summarize.py do). Prints "killed NAME" or "survived NAME" per
mutant (or "rcN NAME" for another pytest exit status) after a first run with no mutant,
which must pass. It is `verify.sh` for a list: after adding tests for a run's survivors,
copy the new test file into RUN_DIR/mutants/tests/ (under a new name if mutmut is still
running there) and check every survivor in minutes instead of one fresh process each.

One process means two limits; use `verify.sh` (a fresh process) where they matter:
- code that runs at import time (module constants, decorators, `_sees_variables(...)` at
  module level) ran once, unmutated: its mutants show "survived" here;
- anything cached across tests (a module-level `jax.jit`, `functools.cache`) keeps what
  the first mutant that filled it computed. The modules run so far have no such cache
  on the mutated paths; check a few "killed" ones with `verify.sh` all the same.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import sys


def main(argv: list[str]) -> int:
  run_dir, names_file, *pytest_args = argv
  names = [line.split()[-1] for line in pathlib.Path(names_file).read_text().splitlines()
           if line.strip()]
  os.chdir(pathlib.Path(run_dir, "mutants"))
  paths = [os.environ.get("MUT_TOOLS", "/tmp/wdjax-mutmut-3.8.1"), "."]
  sys.path[:0] = paths
  # the same for a test's subprocesses (the mutated wdjax imports mutmut's trampoline)
  os.environ["PYTHONPATH"] = os.pathsep.join(
      [os.path.abspath(p) for p in paths] + [os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
  import pytest
  from mutmut.mutation import trampoline

  args = [*pytest_args, "-q", "-x", "-p", "no:cacheprovider"]

  def run(name: str) -> int:
    os.environ["MUTANT_UNDER_TEST"] = name
    trampoline.set_mutant_under_test(name)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      rc = pytest.main(args)
    if not name and rc != 0:
      print(out.getvalue()[-3000:])
    return int(rc)

  if run("") != 0:
    print("the tests fail with no mutant: fix them first")
    return 2
  for name in names:
    rc = run(name)
    print({0: "survived", 1: "killed"}.get(rc, f"rc{rc}"), name, flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))

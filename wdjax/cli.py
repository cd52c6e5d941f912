"""`wdjax run|reproduce|plot|list`: thin entry points over `wdjax.experiments` (load a
config), `wdjax.runner` (run it), `wdjax.report` (print it) and `wdjax.plots`.

  wdjax run experiments/d2l_weight_decay.toml [--out DIR] [--set optimizer.learning_rate=0.1] [--quick]
  wdjax reproduce experiments/d2l_weight_decay.toml [--quick]   # exit 1 on any failed check
  wdjax plot runs/d2l_weight_decay-<hash>
  wdjax list

A fault the user can fix (a bad config, a damaged file, a full disk, a read-only or
unwritable --out, a bad environment variable) is one line on stderr, `error: ...`, naming
the path or key and the fix, with exit status 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import glob
import json
import os
import sys
import time
import warnings
from typing import Sequence

import jax

from wdjax import _io, experiments, plots, report, runner, sweep
from wdjax.config import ConfigError, read_toml

_T0 = time.perf_counter()


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="wdjax", description="Reproduce weight-decay experiments "
                              "from config files.")
  debug = dict(action="store_true", help="on an error, show the full traceback")
  p.add_argument("--debug", **debug)
  sub = p.add_subparsers(dest="command", required=True)
  for name, help_ in (("run", "run a config into a run directory"),
                      ("reproduce", "run a config and check its expected numbers "
                                    "(exit status 1 on any miss)")):
    s = sub.add_parser(name, help=help_)
    s.add_argument("config", help="a TOML file, e.g. experiments/d2l_weight_decay.toml")
    s.add_argument("--out", default=None, help="run directory (default runs/<name>-<hash>)")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optimizer.learning_rate=0.1 (repeatable)")
    s.add_argument("--quick", action="store_true", help="apply the config's [quick] overrides")
    s.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    s.add_argument("--debug", **debug, default=argparse.SUPPRESS)
  s = sub.add_parser("plot", help="(re)draw the plots of a finished run directory")
  s.add_argument("run_dir")
  s.add_argument("--debug", **debug, default=argparse.SUPPRESS)
  s = sub.add_parser("list", help="the experiments and what each reproduces")
  s.add_argument("--dir", default=None, help="folder of configs (default ./experiments)")
  s.add_argument("--debug", **debug, default=argparse.SUPPRESS)
  return p


def experiments_dir() -> str:
  """./experiments, else the repository's experiments/ next to the package."""
  if os.path.isdir("experiments"):
    return "experiments"
  return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments")


def list_experiments(folder: str | None = None) -> list[tuple[str, str, str]]:
  """(path, kind, description) of every config in `folder`; a file that is not a readable
  TOML config gets kind "invalid" and the error as its description."""
  out = []
  for path in sorted(glob.glob(os.path.join(folder or experiments_dir(), "*.toml"))):
    try:
      raw = read_toml(path)
    except ConfigError as e:
      out.append((path, "invalid", str(e)))
      continue
    out.append((path, str(raw.get("kind", "?")), " ".join(str(raw.get("description", "")).split())))
  return out


def enable_compilation_cache() -> str | None:
  """JAX's persistent compilation cache in $WDJAX_CACHE (default ~/.cache/wdjax/jax):
  a second run of a config skips XLA compilation, most of a small sweep's time.
  WDJAX_CACHE=off disables it."""
  path = os.environ.get("WDJAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache",
                                                     "wdjax", "jax"))
  if path.lower() in ("off", "0", "none", ""):
    return None
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  return path


def _run(args: argparse.Namespace, check: bool) -> int:
  t_import = process_age()
  try:
    sweep.use_cpu_cores()  # a device per core: sweeps shard across them (see its docstring)
  except RuntimeError:
    pass  # called in a process where JAX already runs (a test, a notebook): keep its devices
  enable_compilation_cache()
  cfg = experiments.load(args.config, quick=args.quick, overrides=args.overrides)
  try:
    rec = runner.run(cfg, args.out, plots=not args.no_plots)
  except KeyboardInterrupt:
    print("\ninterrupted: finished chunks are kept; run the same command again to resume.",
          file=sys.stderr)
    return 130
  print()
  print(report.results_table(rec.table))
  if rec.checks:
    print()
    print(report.checks_table(rec.checks))
  print()
  timing = {"start + import": t_import, **rec.timings, "total (process)": process_age()}
  print("time (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timing.items()))
  for png in rec.plots:
    print(f"plot: {png}")
  print(f"results: {rec.run_dir}/report.md")
  if check and not rec.passed:
    missed = [c.name for c in rec.checks if not c.passed]
    print(f"FAILED: {len(missed)} check(s) missed: {', '.join(missed)}", file=sys.stderr)
    return 1
  return 0


def process_age() -> float:
  """Seconds since this process started (interpreter start included; Linux /proc), else
  since the `wdjax.cli` import."""
  try:
    with open("/proc/self/stat") as f:
      start_ticks = float(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
      uptime = float(f.read().split()[0])
    return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
  except (OSError, ValueError, IndexError):
    return time.perf_counter() - _T0


def main(argv: Sequence[str] | None = None) -> int:
  """The `wdjax` console script (tests call it with `argv`)."""
  code = _main(argv)
  if argv is None:
    # Every result is written and closed by now; skipping the interpreter's teardown
    # (JAX's backend and thread pools, ~0.7 s on 2 cores) ends the command sooner.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
  return code


# What an OS error means for a run, and the fix, by errno.
_OS_HINTS = {
    errno.EACCES: "permission denied: choose a --out you may write to, or fix the permissions",
    errno.EPERM: "operation not permitted: choose another --out",
    errno.EROFS: "read-only file system: choose a --out on a writable file system",
    errno.ENOSPC: "no space left on the device: free some space or choose a --out elsewhere "
                  "(finished chunks are kept: the same command resumes)",
    errno.EDQUOT: "disk quota exceeded: free some space or choose a --out elsewhere",
    errno.ENOTDIR: "a part of the path is a file, not a directory: choose another --out",
    errno.EISDIR: "is a directory, where a file was expected",
    errno.ENOENT: "no such file or directory",
    errno.ENAMETOOLONG: "file name too long: choose a shorter --out",
}


def describe_error(e: BaseException) -> str | None:
  """The one-line message of an error the user can fix (a config, a file, the file system,
  the environment), or None for anything else (a bug: shown with its traceback)."""
  if isinstance(e, (ConfigError, _io.ChecksumError)):
    return str(e)
  if isinstance(e, OSError):
    where = e.filename if e.filename is not None else ""
    hint = _OS_HINTS.get(e.errno or -1, e.strerror or str(e))
    return f"{where}: {hint}" if where else hint
  if isinstance(e, (UnicodeDecodeError, json.JSONDecodeError)):
    return f"a file wdjax reads is damaged or not what it expects ({e})"
  if isinstance(e, ValueError) and "JAX flag" in str(e):  # e.g. JAX_NUM_CPU_DEVICES=abc
    return f"{e}: fix or unset that environment variable (JAX_..., XLA_FLAGS)"
  return None


def _one_line_warnings(message, category, filename, lineno, file=None, line=None):
  """Warnings as `warning: <message>` lines (a damaged chunk being recomputed, ...)."""
  print(f"warning: {message}", file=file or sys.stderr)


def _main(argv: Sequence[str] | None) -> int:
  args = _parser().parse_args(argv)
  try:
    with warnings.catch_warnings():
      warnings.showwarning = _one_line_warnings
      return _command(args)
  except Exception as e:  # noqa: BLE001 - user-fixable faults become one line, exit 2
    message = describe_error(e)
    if message is None or args.debug:
      raise
    print(f"error: {message}", file=sys.stderr)
    return 2


def _command(args: argparse.Namespace) -> int:
  if args.command in ("run", "reproduce"):
    return _run(args, check=args.command == "reproduce")
  if args.command == "plot":
    cfg, metrics, summary = report.load_run(args.run_dir)
    for png in plots.make_plots(cfg, metrics, summary["values"], args.run_dir):
      print(f"plot: {png}")
    return 0
  rows = list_experiments(args.dir)
  if not rows:
    print("no experiments found (looked for experiments/*.toml)", file=sys.stderr)
    return 1
  for path, kind, desc in rows:
    print(f"{path}\n  [{kind}] {desc}")
  return 2 if any(kind == "invalid" for _, kind, _ in rows) else 0


if __name__ == "__main__":
  sys.exit(main())

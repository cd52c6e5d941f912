"""Whole-loop kernels on XLA:CPU: the opt-in that lets the homotopy's loop run as one kernel.

XLA:CPU runs a compiled program as a sequence of kernels ("thunks"), and a `while_loop`
dispatches every kernel of its body on every iteration: ~1 µs each, which for a solver of
many small steps (the homotopy: ~50 kernels a breakpoint, 171 breakpoints on the
100 x 2000 correlated benchmark problem) is a third of its time. XLA can instead compile
a while loop into one kernel, control flow included, when one iteration touches fewer
bytes than a threshold (its small-while-loop hoisting, 1 KiB by default; loops that call
a library routine, as LAPACK's Cholesky, are never hoisted). The threshold is an option of
the XLA backend, process-wide, read once when JAX starts its CPU backend, and it cannot be
set per compiled function (JAX's `compiler_options` reject map-valued options); so wdjax
leaves the choice to the user: `use_loop_kernels()`.

Measured (`benchmarks/README.md`, run O, 2-core Xeon): the homotopy's correlated path 1.5x
faster (~21 -> ~14 ms) and ~0.1 s less to compile, the same coefficients to rounding; the
group lasso's block CD 5-10% faster (its sweeps become kernels); the lasso's CD and the
active set (their outer loops call LAPACK) and the D2L sweep unchanged. Not measured:
FISTA (its power iteration has no library call and may become one kernel), machines with
more cores (a hoisted loop runs on one core).
"""

from __future__ import annotations

import operator
import os
import warnings

# XLA's option (an entry of --xla_backend_extra_options)
_OPTION = "xla_cpu_small_while_loop_byte_threshold"
DEFAULT_MAX_BYTES = 64 << 20


def _backends_started() -> bool:
  # (private JAX API, guarded: if it moves, the check is skipped and the docstring's rule,
  # call it first, is all that holds)
  try:
    from jax._src import xla_bridge
    return bool(xla_bridge.backends_are_initialized())
  except (ImportError, AttributeError):
    return False


def _threshold_in(flags: str) -> int | None:
  """The threshold XLA will read from an XLA_FLAGS value, or None. As XLA reads it: words
  from the first, up to one that does not start with "-"; the entries of every
  --xla_backend_extra_options (comma-separated, repeated flags merged, the last wins)."""
  found = None
  for word in flags.split():
    if not word.startswith("-"):
      break
    name, _, value = word.lstrip("-").partition("=")
    if name != "xla_backend_extra_options":
      continue
    for entry in value.strip("\"'").split(","):
      key, _, val = entry.partition("=")
      if key == _OPTION and val.isdigit():
        found = int(val)
  return found


def use_loop_kernels(max_bytes: int | None = None) -> int:
  """Lets XLA:CPU compile every while loop whose one iteration touches fewer than
  `max_bytes` bytes into a single kernel (process-wide; call it before JAX's first
  computation).

  It makes the exact lasso path faster on a CPU: `wdjax.path.lasso_path`'s homotopy (few
  samples, many features) runs ~50 small kernels per breakpoint, and as one kernel its
  loop no longer pays their dispatch (the 100 x 2000 correlated benchmark path: ~21 ->
  ~14 ms, compilation ~1.2 -> ~1.1 s; benchmarks/README.md, run O). The coefficients are
  the same to rounding. It puts

    --xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=<max_bytes>

  first in the XLA_FLAGS environment variable (XLA merges repeated extra-options flags,
  and stops reading at a word that does not start with "-"), which JAX reads when its CPU
  backend starts. It affects every JAX program of the process, and child processes that
  inherit the environment: a loop under the threshold runs as one kernel on one core,
  its large products included, so it is the user's call. Loops that touch more bytes per
  iteration, or call a library routine (LAPACK, a sort), keep running kernel by kernel.

  Args:
    max_bytes: the threshold, bytes touched by one iteration of a loop (XLA's cost
      estimate), 1 <= max_bytes < 2**63. Default 64 MiB (`DEFAULT_MAX_BYTES`), which takes
      the homotopy on the benchmark problems (100-500 x 2000, float64).

  Returns:
    The threshold in force: `max_bytes`, or the value XLA_FLAGS already sets (by the user,
    or an earlier call), which is kept whether or not JAX has started (a value set in the
    shell is in force from the start); a different explicit `max_bytes` then warns.

  Raises:
    ValueError: `max_bytes` is not an integer in [1, 2**63), or XLA_FLAGS names a file of
      flags (add the option to that file).
    RuntimeError: JAX has already started its backend (XLA read its flags then) and
      XLA_FLAGS does not set the option.

  Example:
    >>> import wdjax.path
    >>> wdjax.path.use_loop_kernels()   # doctest: +SKIP
    67108864
  """
  want = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
  try:
    if isinstance(want, bool):
      raise TypeError
    want = operator.index(want)
  except TypeError:
    want = None
  if want is None or not 1 <= want < 2 ** 63:
    raise ValueError(f"max_bytes must be an integer in [1, 2**63) (bytes), got {max_bytes!r}.")
  flags = os.environ.get("XLA_FLAGS", "").strip()
  if flags and not flags.startswith("-"):
    raise ValueError(
        f"XLA_FLAGS names a file of flags ({flags!r}), which XLA reads instead: add "
        f"--xla_backend_extra_options={_OPTION}={want} to that file.")
  already = _threshold_in(flags)
  if already is not None:   # the user's (or an earlier call's) choice stands
    if max_bytes is not None and already != want:
      warnings.warn(f"XLA_FLAGS already sets {_OPTION}={already}; kept (asked: {want}).",
                    stacklevel=2)
    return already
  if _backends_started():
    raise RuntimeError(
        "wdjax.path.use_loop_kernels must be called before JAX runs its first computation "
        "(XLA reads its flags when the backend starts): call it right after the imports, "
        f"or set XLA_FLAGS='--xla_backend_extra_options={_OPTION}={want}' in the "
        "environment before starting Python.")
  # (first, as a flag of its own: XLA stops reading at a word that does not start with
  # "-", and merges repeated extra-options flags)
  os.environ["XLA_FLAGS"] = f"--xla_backend_extra_options={_OPTION}={want} {flags}".strip()
  return want

"""Whole-loop kernels on XLA:CPU: the opt-in that lets the homotopy's loop run as one kernel.

XLA:CPU runs a compiled program as a sequence of kernels ("thunks"), and a `while_loop`
dispatches every kernel of its body on every iteration: ~1 µs each, which for a solver of
many small steps (the homotopy: ~50 kernels a breakpoint, 171 breakpoints on the
100 x 2000 correlated benchmark problem) is a third of its time. XLA can instead compile
a while loop into one kernel, control flow included, when one iteration touches fewer
bytes than a threshold (its small-while-loop hoisting, a small default; loops that call a
library routine, as LAPACK's Cholesky, are never hoisted). The threshold is an option of
the XLA backend, process-wide, read once when JAX starts its CPU backend, and it cannot be
set per compiled function; so wdjax leaves the choice to the user: `use_loop_kernels()`.

Measured (`benchmarks/README.md`, run O): the homotopy's correlated path 1.5x faster
(~21 -> ~14 ms) and ~0.1 s less to compile, the same coefficients; the coordinate-descent,
active-set and group paths and the D2L sweep unchanged (their loops call LAPACK, or
gain nothing).
"""

from __future__ import annotations

import os
import re

from wdjax._validate import positive_int

# XLA's option (an entry of --xla_backend_extra_options)
_OPTION = "xla_cpu_small_while_loop_byte_threshold"


def _backends_started() -> bool:
  # (private JAX API, guarded: if it moves, the check is skipped and the docstring's rule,
  # call it first, is all that holds)
  try:
    from jax._src import xla_bridge
    return bool(xla_bridge.backends_are_initialized())
  except (ImportError, AttributeError):
    return False


def use_loop_kernels(max_bytes: int = 64 << 20) -> int:
  """Lets XLA:CPU compile every while loop whose one iteration touches fewer than
  `max_bytes` bytes into a single kernel (process-wide; call it before JAX's first
  computation).

  This is what makes the exact lasso path fast on a CPU: `wdjax.path.lasso_path`'s
  homotopy (few samples, many features) runs ~50 small kernels per breakpoint, and as one
  kernel its loop no longer pays their dispatch (the 100 x 2000 correlated benchmark path:
  ~21 -> ~14 ms, compilation ~1.2 -> ~1.1 s; benchmarks/README.md, run O). The results
  are the same. It adds `--xla_backend_extra_options=xla_cpu_small_while_loop_byte_
  threshold=max_bytes` to the XLA_FLAGS environment variable, which JAX reads when its CPU
  backend starts: it affects every JAX program of the process, so it is the user's call
  (a known remedy for programs of many small loops on XLA:CPU's runtime). Loops that
  touch more bytes per iteration, or call a library routine (LAPACK, a sort), keep running
  kernel by kernel, with their large operations spread over the cores.

  Args:
    max_bytes: the threshold, bytes touched by one iteration of the loop (XLA's cost
      estimate). The default, 64 MiB, takes the homotopy on problems up to ~30000
      features at 128 samples (two passes over X a step, float64).

  Returns:
    The threshold in force: `max_bytes`, or the value already in XLA_FLAGS (set by the
    user, or by an earlier call), which is kept.

  Raises:
    ValueError: `max_bytes` is not a positive int.
    RuntimeError: JAX has already started its backend (XLA read its flags then).

  Example:
    >>> import wdjax.path
    >>> wdjax.path.use_loop_kernels()   # doctest: +SKIP
    67108864
  """
  positive_int("max_bytes", max_bytes)
  flags = os.environ.get("XLA_FLAGS", "")
  already = re.findall(_OPTION + r"=(\d+)", flags)
  if already:   # the user's (or an earlier call's) choice stands, as XLA reads the last
    return int(already[-1])
  if _backends_started():
    raise RuntimeError(
        "wdjax.path.use_loop_kernels must be called before JAX runs its first computation "
        "(XLA reads its flags when the backend starts): call it right after the imports, "
        f"or set XLA_FLAGS='--xla_backend_extra_options={_OPTION}={max_bytes}' in the "
        "environment before starting Python.")
  entry = f"{_OPTION}={max_bytes}"
  extra = re.search(r"--xla_backend_extra_options=(\S*)", flags)
  if extra:   # one option holds every entry, comma-separated: add ours to it
    flags = (flags[:extra.end(1)] + ("," if extra.group(1) else "") + entry
             + flags[extra.end(1):])
  else:   # first: XLA stops reading XLA_FLAGS at a word that is not a --flag
    flags = f"--xla_backend_extra_options={entry} {flags}".strip()
  os.environ["XLA_FLAGS"] = flags
  return max_bytes

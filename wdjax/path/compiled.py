"""Where the path solvers compile: the platform of new computations, and `cpu_jit`, a
`jax.jit` that compiles with the path solvers' XLA:CPU options when it runs on a CPU."""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax

# XLA:CPU's backend (LLVM) optimization level for the path solvers. Their compiled loops
# are chains of small kernels (a coordinate update, a breakpoint, a working set), which
# -O1 makes faster than XLA's default -O3; measured on the 2-core AMD EPYC, one core, best
# of 5, in one process each (benchmarks/README.md, run S; run J found no change on the
# Intel Xeon, with the CD solver of that day): the lasso's default call on
# 500 x 2000 25.8 -> 23.8 ms (21.7 against 24.3 ms in two more pairs of processes), the
# elastic net's 93.2 -> 78.3, the group lasso's 30.8 -> 27.6 (with kkt_tol 1e-6: 342 ->
# 312), the correlated homotopy 9.8 -> 8.6; FISTA's matrix products the same (78.3 against
# 77.0 ms) and compiled in 12.5 instead of 13.9 s. Results agree to rounding (the lasso's
# coefficients to 3e-15). Not for the sweep engine: its matmul-heavy steps are slower at
# -O1 (D2L, 2 devices: 0.90 -> 1.07 ms). An accelerator keeps XLA's defaults.
CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def platform() -> str:
  """The platform new computations run on: a `jax.default_device` in force, else JAX's
  default backend."""
  dev = getattr(jax.config, "jax_default_device", None)
  if dev is None:
    return jax.default_backend()
  return dev if isinstance(dev, str) else dev.platform


def cpu_jit(fun: Callable | None = None, **jit_kwargs: Any) -> Callable:
  """`jax.jit(fun, **jit_kwargs)`, compiled with CPU_COMPILER_OPTIONS where `platform()`
  is "cpu" at the call (two jitted functions, each with its own cache); `.lower` picks the
  same way (the only attribute of a jitted function it forwards). Usable as `@cpu_jit` or
  `@cpu_jit(static_argnames=...)`."""
  if fun is None:
    return functools.partial(cpu_jit, **jit_kwargs)
  default = jax.jit(fun, **jit_kwargs)
  on_cpu = jax.jit(fun, compiler_options=CPU_COMPILER_OPTIONS, **jit_kwargs)

  def pick():
    return on_cpu if platform() == "cpu" else default

  @functools.wraps(fun)
  def call(*args, **kwargs):
    return pick()(*args, **kwargs)

  call.lower = lambda *args, **kwargs: pick().lower(*args, **kwargs)
  return call

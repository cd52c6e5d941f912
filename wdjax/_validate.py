"""Argument checks shared by penalties, prox operators and transforms.

Checks run only on concrete values (Python numbers, NumPy/JAX arrays outside a trace):
a traced λ inside `jax.vmap`/`jax.jit` cannot be inspected without a host sync, and a
schedule is checked when called. The aim is an error that names the argument and the fix
instead of a NaN that surfaces hundreds of steps later.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from typing import Any, Callable, Union

import jax
import jax.numpy as jnp
import numpy as np

ScalarOrSchedule = Union[float, jax.Array, Callable[[jax.Array], jax.Array]]


def is_concrete(x: Any) -> bool:
  """True when `x` holds a value we can inspect now (not a tracer, not a schedule)."""
  if callable(x) or isinstance(x, jax.core.Tracer):
    return False
  return True


def check_strength(name: str, value: Any) -> None:
  """Raises ValueError unless a concrete `value` is finite and >= 0 everywhere."""
  if value is None:
    raise ValueError(f"`{name}` is None; pass a non-negative number (0 turns it off).")
  # np.asarray would turn "0.1" into 0.1 and True into 1.0: refuse them by type.
  if isinstance(value, (str, bytes, bool)):
    raise TypeError(f"`{name}` must be a number, an array or a schedule (count -> value); "
                    f"got {type(value).__name__} {value!r:.40}.")
  if not is_concrete(value):
    return
  try:
    # (NumPy on a host copy: a jnp op on a concrete array would be traced, and fail, under
    # an enclosing jit)
    host = np.asarray(value)
    arr = np.asarray(np.real(host), dtype=np.float64)
  except (TypeError, ValueError) as e:
    raise TypeError(
        f"`{name}` must be a number, an array or a schedule (count -> value); "
        f"got {type(value).__name__}."
    ) from e
  if np.iscomplexobj(host) and np.any(np.imag(host) != 0):
    raise TypeError(f"`{name}` must be real, got the complex {value!r:.40}.")
  if host.dtype == bool:
    raise TypeError(f"`{name}` must be a number, got a boolean array {value!r:.40}.")
  if np.isnan(arr).any():
    raise ValueError(f"`{name}` is NaN; pass a finite non-negative number such as 1e-4.")
  if (arr < 0).any():
    what = ("A negative learning rate ascends the loss" if "learning_rate" in name else
            "A negative strength rewards large weights; pass its absolute value, or 0 to "
            "turn the penalty off")
    raise ValueError(f"`{name}` must be >= 0, got {value}. {what}.")
  if np.isinf(arr).any():
    raise ValueError(f"`{name}` is infinite; pass a finite non-negative number.")


@functools.cache
def _positional(fn: Callable[..., Any]) -> tuple[str, ...]:
  return tuple(p.name for p in inspect.signature(fn).parameters.values()
               if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)


def check_optax_order(fn: Callable[..., Any], **args: Any) -> None:
  """TypeError for a value in the wrong slot of an optax-ordered signature, the mistake a
  PyTorch-style positional call makes: `sgd_l2(0.1, 0.9, 0.5)` meant dampening 0.5
  (torch.optim.SGD's lr, momentum, dampening, weight_decay, nesterov) and would silently
  turn on Nesterov; `adamw(1e-3, (0.9, 0.999))` passes torch's betas tuple as b1. Checks
  `nesterov` (a bool, or 0/1 as optax takes), `accumulator_dtype`/`mu_dtype` (None or a
  dtype, not a number) and `b1`/`b2` (a number in [0, 1] or a schedule, not a tuple or a
  string); the message names `fn`'s positional order."""
  def order() -> str:
    return (f"if the call follows PyTorch's positional order: {fn.__name__} takes optax's "
            f"({', '.join(_positional(fn))})")
  for name, value in args.items():
    if name == "nesterov":
      if not (isinstance(value, (bool, np.bool_)) or getattr(value, "dtype", None) == bool
              or (isinstance(value, int) and value in (0, 1))):
        raise TypeError(f"nesterov must be a bool, got {value!r} ({order()}; torch.optim.SGD "
                        "has lr, momentum, dampening, weight_decay, nesterov: pass "
                        "weight_decay= and nesterov= by keyword).")
    elif name in ("accumulator_dtype", "mu_dtype"):
      if value is not None and (isinstance(value, (int, float, complex))
                                or not _is_dtype(value)):
        raise TypeError(f"{name} must be None or a dtype, got {value!r} ({order()}; pass "
                        "weight_decay= by keyword).")
    elif name in ("b1", "b2"):
      if isinstance(value, (tuple, list)):
        raise TypeError(f"{name} must be a number or a schedule, got {value!r} ({order()}; "
                        "torch's betas=(b1, b2) are two arguments here, b1 and b2).")
      if isinstance(value, (str, bytes, bool)):
        raise TypeError(f"{name} must be a number or a schedule, got {value!r}.")
      if (is_concrete(value) and np.ndim(value) == 0
          and np.isrealobj(value) and not 0 <= float(np.asarray(value)) <= 1):
        # (optax accepts it, and the moments then grow without bound)
        raise ValueError(f"{name} must be in [0, 1] (a moment's decay rate), got {value!r}.")


def _is_dtype(value: Any) -> bool:
  try:
    jnp.dtype(value)   # (knows "bfloat16", which NumPy does not)
  except TypeError:
    return False
  return True


def check_positive(name: str, value: Any) -> None:
  """Raises ValueError unless a concrete `value` is finite and > 0."""
  check_strength(name, value)
  if is_concrete(value) and (np.asarray(value, dtype=np.float64) <= 0).any():
    raise ValueError(f"`{name}` must be > 0, got {value}.")


def evaluate(value: ScalarOrSchedule, count: jax.Array, name: str = "schedule") -> jax.Array:
  """The value of a float, array or schedule at step `count`; a schedule's value checked.

  A float or array was checked when the transform was built (`check_strength`); a
  schedule can only be checked where it is evaluated, and its value (a learning rate or
  a strength) must be finite and >= 0:

  - outside a trace (eager updates, a concrete `count`), a bad value raises ValueError
    naming `name` and the step;
  - inside `jit`/`vmap`/`scan` the value cannot be inspected without a host sync, so the
    rule is explicit and NaN-safe instead: a negative, NaN or infinite real value becomes
    NaN. The same holds for a traced constant (a λ swept by `jax.vmap`, a hyperparameter
    of `optax.inject_hyperparams` under jit), which was not there to check at build
    time. The update, then the params and the loss, become NaN, which
    `wdjax.sweep.SweepResult.diverged` marks, instead of a silent step of gradient
    ascent or a decay with the wrong sign. Complex values are passed through.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> evaluate(lambda c: 0.1 - 0.05 * c, jnp.asarray(1))
    Array(0.05, dtype=float32, weak_type=True)
    >>> evaluate(lambda c: 0.1 - 0.05 * c, jnp.asarray(3), "learning_rate")
    Traceback (most recent call last):
    ...
    ValueError: `learning_rate` (a schedule) at step 3 must be >= 0, ...
    >>> float(jax.jit(lambda c: evaluate(lambda c: 0.1 - 0.05 * c, c))(3))
    nan
  """
  if not callable(value):
    if isinstance(value, jax.core.Tracer):
      # a traced constant (a value swept by vmap, a hyperparameter of inject_hyperparams
      # under jit) could not be checked when the transform was built: the same NaN rule
      return _nan_unless_valid(value)
    return value
  out = value(count)
  if isinstance(out, jax.core.Tracer) or isinstance(count, jax.core.Tracer):
    return _nan_unless_valid(out)
  arr = np.asarray(out)
  if np.iscomplexobj(arr) or not np.issubdtype(arr.dtype, np.number):
    return out
  step = int(np.asarray(count).max()) if np.size(count) else 0
  if np.isnan(arr).any() or np.isinf(arr).any():
    raise ValueError(f"`{name}` (a schedule) at step {step} is {arr.ravel()[0] if arr.size == 1 else arr}; "
                     "a schedule must return finite values >= 0.")
  if (arr < 0).any():
    raise ValueError(f"`{name}` (a schedule) at step {step} must be >= 0, got "
                     f"{arr.ravel()[0] if arr.size == 1 else arr}; a negative value reverses "
                     "the step (gradient ascent, or growth instead of decay).")
  return out


def _nan_unless_valid(out: Any) -> jax.Array:
  """A traced real value where it is finite and >= 0, NaN elsewhere (complex and integer
  values pass through)."""
  out = jnp.asarray(out)
  if not jnp.issubdtype(out.dtype, jnp.floating):
    return out
  ok = jnp.isfinite(out) & (out >= 0)
  return jnp.where(ok, out, jnp.asarray(jnp.nan, out.dtype))


def positive_int(name: str, value: Any, *, none_ok: bool = False) -> Any:
  """`value` unchanged if it is an int >= 1 (or None when `none_ok`); else ValueError."""
  if none_ok and value is None:
    return value
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise ValueError(f"{name} must be a positive int{' or None' if none_ok else ''}, "
                     f"got {value!r}.")
  return value


def check_float_leaves(tree: Any, what: str = "params", which: list[bool] | None = None) -> None:
  """Raises TypeError naming the first leaf (of those `which` marks, default all) that is
  not a floating-point array."""
  for i, (path, leaf) in enumerate(jax.tree_util.tree_flatten_with_path(tree)[0]):
    if which is not None and not which[i]:
      continue
    dtype = getattr(leaf, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
      raise TypeError(
          f"{what} leaf {jax.tree_util.keystr(path) or '<root>'} has dtype {dtype}; penalties "
          "and weight decay need floating-point leaves. Cast it (x.astype(jnp.float32)) or "
          "exclude it with a mask."
      )


def cast_like(x: Any, leaf: jax.Array) -> jax.Array:
  """`x` as an array of `leaf`'s dtype, so bf16 params stay bf16 under strict promotion."""
  return jnp.asarray(x, dtype=leaf.dtype)


def by_name(name: Any, table: dict, what: str, other: str) -> Any:
  """`table[name]` for a name, `name` itself for a callable; else a ValueError listing the
  names (and a close one) and `other`, the callable form that would also do."""
  if callable(name):
    return name
  if name not in table:
    close = difflib.get_close_matches(str(name), list(table), n=1)
    raise ValueError(f"unknown {what} {name!r}; " + (f"did you mean {close[0]!r}? " if close
                                                     else "")
                     + f"choose one of {sorted(table)} or pass {other}.")
  return table[name]

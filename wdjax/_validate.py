"""Argument checks shared by penalties, prox operators and transforms.

Checks run only on concrete values (Python numbers, NumPy/JAX arrays outside a trace):
a traced λ inside `jax.vmap`/`jax.jit` cannot be inspected without a host sync, and a
schedule is checked when called. The aim is an error that names the argument and the fix
instead of a NaN that surfaces hundreds of steps later.
"""

from __future__ import annotations

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
  if not is_concrete(value):
    return
  try:
    arr = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError) as e:
    raise TypeError(
        f"`{name}` must be a number, an array or a schedule (count -> value); "
        f"got {type(value).__name__}."
    ) from e
  if np.isnan(arr).any():
    raise ValueError(f"`{name}` is NaN; pass a finite non-negative number such as 1e-4.")
  if (arr < 0).any():
    raise ValueError(
        f"`{name}` must be >= 0, got {value}. A negative strength rewards large weights; "
        "pass its absolute value, or 0 to turn the penalty off."
    )
  if np.isinf(arr).any():
    raise ValueError(f"`{name}` is infinite; pass a finite non-negative number.")


def check_positive(name: str, value: Any) -> None:
  """Raises ValueError unless a concrete `value` is finite and > 0."""
  check_strength(name, value)
  if is_concrete(value) and (np.asarray(value, dtype=np.float64) <= 0).any():
    raise ValueError(f"`{name}` must be > 0, got {value}.")


def evaluate(value: ScalarOrSchedule, count: jax.Array) -> jax.Array:
  """The value of a float, array or schedule at step `count`."""
  return value(count) if callable(value) else value


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

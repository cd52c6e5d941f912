"""Turning raw TOML values into schema fields: types, ranges, sweep axes and checks, each
error naming its dotted key path."""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from typing import Any, Literal, Mapping

import numpy as np

from wdjax.config.schema import (AXIS_KINDS, AXIS_RANGES, MAX_AXIS_VALUES, MAX_GRID_POINTS,
                                 MAX_LOG10, Axis, Check, ConfigError, SweepConfig)


def _unknown(key: str, valid: typing.Iterable[str], path: str) -> ConfigError:
  valid = list(valid)
  close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
  hint = f"did you mean '{close[0]}'? " if close else ""
  return ConfigError(f"{path}{key}: unknown key; {hint}valid keys: {', '.join(sorted(valid))}.")


def _type_name(v: Any) -> str:
  return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
          list: "a list", dict: "a table"}.get(type(v), type(v).__name__)


def _check_range(x: float, meta: Mapping[str, Any], path: str) -> None:
  lo, hi, strict = meta.get("lo"), meta.get("hi"), meta.get("strict_lo", False)
  if isinstance(x, float) and math.isnan(x):
    raise ConfigError(f"{path}: NaN is not allowed; give a finite number.")
  if isinstance(x, float) and math.isinf(x):
    raise ConfigError(f"{path} = {x}: must be a finite number.")
  if lo is not None and (x < lo or (strict and x <= lo)):
    op = ">" if strict else ">="
    raise ConfigError(f"{path} = {x}: must be {op} {lo}.")
  if hi is not None and x > hi:
    raise ConfigError(f"{path} = {x}: must be <= {hi}.")


_INT_MAX = 2**31 - 1


def _finite(a: int | float) -> bool:
  """A finite number that converts to float64 (a huge TOML int does not)."""
  return abs(a) <= 1e300 if isinstance(a, int) else math.isfinite(a)


def _convert(value: Any, hint: Any, path: str, meta: Mapping[str, Any]) -> Any:
  origin = typing.get_origin(hint)
  if hint is float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise ConfigError(f"{path}: expected a number, got {_type_name(value)} ({value!r}).")
    if isinstance(value, int) and abs(value) > 1e300:
      raise ConfigError(f"{path} = {value:.3g}: must be a finite number of a sane size.")
    value = float(value)
    _check_range(value, meta, path)
    return value
  if hint is int:
    if isinstance(value, bool) or not isinstance(value, int):
      raise ConfigError(f"{path}: expected an integer, got {_type_name(value)} ({value!r}).")
    # An int field without its own upper bound is a count, size or seed: int32 at most.
    _check_range(value, {**meta, "hi": _INT_MAX if meta.get("hi") is None else meta["hi"]},
                 path)
    return value
  if hint is bool:
    if not isinstance(value, bool):
      raise ConfigError(f"{path}: expected true or false, got {_type_name(value)} ({value!r}).")
    return value
  if hint is str:
    if not isinstance(value, str):
      raise ConfigError(f"{path}: expected a string, got {_type_name(value)} ({value!r}).")
    return value
  if origin is Literal:
    choices = typing.get_args(hint)
    if value not in choices:
      close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
      hint_s = f"did you mean {close[0]!r}? " if close else ""
      raise ConfigError(f"{path} = {value!r}: not a valid choice; {hint_s}choose one of "
                        f"{', '.join(repr(c) for c in choices)}.")
    return value
  if origin is tuple:
    (item, _) = typing.get_args(hint)
    if not isinstance(value, (list, tuple)):
      raise ConfigError(f"{path}: expected a list, got {_type_name(value)} ({value!r}).")
    return tuple(_convert(v, item, f"{path}[{i}]", meta) for i, v in enumerate(value))
  if dataclasses.is_dataclass(hint):
    return _build(hint, value, path + ".")
  raise TypeError(f"unsupported config field type {hint} at {path}")  # a bug in a schema


def _build(cls: type, raw: Any, prefix: str) -> Any:
  """Instantiates dataclass `cls` from the table `raw`, checking every key."""
  where = prefix.rstrip(".") or "config"
  if not isinstance(raw, Mapping):
    raise ConfigError(f"{where}: expected a table, got {_type_name(raw)} ({raw!r}).")
  hints = typing.get_type_hints(cls)
  fields = {f.name: f for f in dataclasses.fields(cls)}
  for key in raw:
    if key not in fields:
      raise _unknown(key, fields, prefix)
  kwargs = {}
  for name, f in fields.items():
    if name in raw:
      kwargs[name] = _convert(raw[name], hints[name], prefix + name, f.metadata)
  return cls(**kwargs)


def _axis(name: str, raw: Any, path: str) -> Axis:
  """One sweep axis, checked without materializing more than `MAX_AXIS_VALUES` values."""
  if name not in AXIS_RANGES:
    raise _unknown(name, [*AXIS_RANGES, "chunk_size"], "sweep.")
  if not isinstance(raw, Mapping) or len(raw) != 1:
    raise ConfigError(f"{path}: a sweep axis is a table with one key, one of {AXIS_KINDS}, "
                      "e.g. {logspace = [-3, 1, 64]} or {values = [0, 3]}.")
  ((kind, args),) = raw.items()
  if kind not in AXIS_KINDS:
    raise _unknown(kind, AXIS_KINDS, path + ".")
  too_many = lambda n: ConfigError(
      f"{path}.{kind}: {n:,} values; an axis may have at most {MAX_AXIS_VALUES:,}.")
  if kind == "range":
    if isinstance(args, bool) or not isinstance(args, int) or args < 1:
      raise ConfigError(f"{path}.range = {args!r}: expected a positive integer (the count).")
    if args > MAX_AXIS_VALUES:
      raise too_many(args)
    axis = Axis("range", (args,))
  else:
    if not isinstance(args, list) or not all(
        isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
      raise ConfigError(f"{path}.{kind}: expected a list of numbers, got {args!r:.200}.")
    if len(args) > MAX_AXIS_VALUES:
      raise too_many(len(args))
    for i, a in enumerate(args):
      if not _finite(a):
        raise ConfigError(f"{path}.{kind}[{i}] = {a!r:.20}: must be a finite number.")
    if kind in ("logspace", "linspace"):
      if len(args) != 3 or int(args[2]) != args[2] or args[2] < 1:
        raise ConfigError(f"{path}.{kind} = {args!r}: expected [start, stop, count] with a "
                          "positive integer count (logspace: exponents of 10).")
      if args[2] > MAX_AXIS_VALUES:
        raise too_many(int(args[2]))
      if kind == "logspace" and max(abs(args[0]), abs(args[1])) > MAX_LOG10:
        raise ConfigError(f"{path}.logspace = {args!r}: exponents must lie in "
                          f"[-{MAX_LOG10:g}, {MAX_LOG10:g}] (10**x finite and non-zero).")
    elif not args:
      raise ConfigError(f"{path}.values: empty list; give at least one value.")
    axis = Axis(kind, tuple(float(a) for a in args))
  lo, hi, strict = AXIS_RANGES[name]
  vals = axis.values()  # at most MAX_AXIS_VALUES: checked vectorized, not per value
  bad = ~np.isfinite(vals) | (vals < lo) | (vals > hi) | ((vals <= lo) if strict else False)
  if np.any(bad):  # the first offending value, with the message of a scalar field
    _check_range(float(vals[np.argmax(bad)]), {"lo": lo, "hi": hi, "strict_lo": strict},
                 f"{path} value")
  if name == "seed" and not np.all(vals == np.round(vals)):
    raise ConfigError(f"{path}: seeds must be integers, got {vals[vals != np.round(vals)][:5].tolist()}.")
  return axis


def _axis_len(axis: Axis) -> int:
  return int(axis.args[0] if axis.kind == "range" else
             axis.args[2] if axis.kind in ("logspace", "linspace") else len(axis.args))


def _sweep(raw: Any) -> SweepConfig:
  if not isinstance(raw, Mapping):
    raise ConfigError(f"sweep: expected a table, got {_type_name(raw)}.")
  axes = {}
  chunk = 0
  for name, spec in raw.items():
    if name == "chunk_size":
      chunk = _convert(spec, int, "sweep.chunk_size", {"lo": 0, "hi": MAX_GRID_POINTS})
    else:
      axes[name] = _axis(name, spec, f"sweep.{name}")
  sizes = {k: _axis_len(a) for k, a in axes.items()}
  total = math.prod(sizes.values())
  if total > MAX_GRID_POINTS:
    shape = " x ".join(f"{k} {n:,}" for k, n in sizes.items())
    raise ConfigError(f"sweep: the grid has {total:,} points ({shape}), more than the limit "
                      f"of {MAX_GRID_POINTS:,}; use fewer values.")
  return SweepConfig(axes=axes, chunk_size=chunk)


def _check(name: str, raw: Any, valid: Mapping[str, str] | None) -> Check:
  path = f"expected.{name}"
  if valid is not None and name not in valid:
    raise _unknown(name, valid, "expected.")
  if not isinstance(raw, Mapping):
    raise ConfigError(f"{path}: expected a table such as {{max = 1e-4}}, {{min = 0.5}} or "
                      f"{{value = 0.0, tol = 0.01}}, got {raw!r}.")
  ops = [k for k in raw if k in ("max", "min", "value")]
  for k in raw:
    if k not in ("max", "min", "value", "tol"):
      raise _unknown(k, ("max", "min", "value", "tol"), path + ".")
  if len(ops) != 1:
    raise ConfigError(f"{path}: give exactly one of max, min, value; got {sorted(raw)}.")
  op = ops[0]
  bound = _convert(raw[op], float, f"{path}.{op}", {})
  if op == "value":
    if "tol" not in raw:
      raise ConfigError(f"{path}: a `value` check needs `tol` (absolute tolerance).")
    tol = _convert(raw["tol"], float, f"{path}.tol", {"lo": 0})
  else:
    if "tol" in raw:
      raise ConfigError(f"{path}: `tol` goes with `value`; a {op} check is already a bound.")
    tol = 0.0
  return Check(op, bound, tol)

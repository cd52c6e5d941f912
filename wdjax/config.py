"""Typed, validated experiment configs: TOML files in, frozen dataclasses out.

A config is one TOML file per published result (`experiments/*.toml`):

```toml
name = "d2l_weight_decay"
kind = "d2l_weight_decay"            # which experiment code runs it (`wdjax list`)
description = "D2L 3.7: ..."         # what it reproduces
seed = 0

[data]        # DataConfig
[model]       # ModelConfig
[optimizer]   # OptimizerConfig
[train]       # TrainConfig
[sweep]       # axes: weight_decay = {logspace = [-3, 1, 64]}, seed = {range = 20}, ...
[variants]    # name = {optimizer overrides}, e.g. adamw = {coupling = "decoupled"}
[params]      # the experiment kind's own knobs (validated by its own dataclass)
[expected]    # check = {max = 1e-4} | {min = 0.5} | {value = 0.0, tol = 0.0}
[quick]       # overrides applied by --quick, e.g. train.epochs = 2
```

Every key is checked: an unknown key is an error naming the closest valid one, a value of
the wrong type or out of range is an error naming its dotted path. Overrides
(`--set optimizer.lr=0.1`) are parsed as TOML values and applied before validation, so
they are checked the same way. `config_hash` is a stable hash of the resolved config.

Example:
  >>> cfg = from_dict({"name": "demo", "kind": "d2l_weight_decay",
  ...                  "description": "demo", "sweep": {"weight_decay": {"values": [0, 3]}}})
  >>> cfg.sweep.axes["weight_decay"].values().tolist()
  [0.0, 3.0]
  >>> from_dict({"name": "demo", "kind": "d2l_weight_decay", "description": "d",
  ...            "optimzer": {}})
  Traceback (most recent call last):
  ...
  wdjax.config.ConfigError: optimzer: unknown key; did you mean 'optimizer'? ...
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import numpy as np


class ConfigError(ValueError):
  """A config that cannot be run: the message names the key path and the fix."""


def _rng(lo: float | None = None, hi: float | None = None, *, strict_lo: bool = False) -> dict:
  return {"metadata": {"lo": lo, "hi": hi, "strict_lo": strict_lo}}


# --- sections ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig:
  """Where the data comes from (see `wdjax.data`)."""
  source: Literal["d2l", "sklearn", "npz", "lowrank"] = "d2l"
  name: str = ""            # sklearn dataset: digits, diabetes, breast_cancer
  path: str = ""            # .npz file (x_train, y_train, x_val, y_val[, x_test, y_test])
  n_train: int = field(default=20, **_rng(1))
  n_val: int = field(default=100, **_rng(1))
  n_heldout: int = field(default=10000, **_rng(0))
  dim: int = field(default=200, **_rng(1))
  outputs: int = field(default=1, **_rng(1))
  rank: int = field(default=2, **_rng(1))
  noise: float = field(default=0.01, **_rng(0))
  val_fraction: float = field(default=0.2, **_rng(0, 0.9, strict_lo=True))
  test_fraction: float = field(default=0.0, **_rng(0, 0.9))
  standardize_target: bool = False


@dataclass(frozen=True)
class ModelConfig:
  """Which model (see `wdjax.models`)."""
  kind: Literal["linear", "softmax", "mlp", "cnn"] = "linear"
  hidden: tuple[int, ...] = ()
  activation: Literal["relu", "tanh", "gelu"] = "relu"


@dataclass(frozen=True)
class OptimizerConfig:
  """The optimizer and where the penalty enters it (DESIGN.md, "Where a penalty enters")."""
  name: Literal["sgd", "adam"] = "sgd"
  lr: float = field(default=0.01, **_rng(0, strict_lo=True))
  momentum: float = field(default=0.0, **_rng(0, 1))
  schedule: Literal["constant", "cosine"] = "constant"
  penalty: Literal["l2", "l1", "frobenius", "nuclear"] = "l2"
  coupling: Literal["coupled", "decoupled", "proximal"] = "coupled"
  scale_by: Literal["lr", "schedule", "constant"] = "lr"
  weight_decay: float = field(default=0.0, **_rng(0))
  mask: Literal["weights_only", "everything"] = "weights_only"


@dataclass(frozen=True)
class TrainConfig:
  """Epochs and minibatches (`batch_size = 0` is full batch)."""
  epochs: int = field(default=10, **_rng(1))
  batch_size: int = field(default=5, **_rng(0))
  x64: bool = False
  # XLA's CPU backend at optimization level 0: these small sweeps are compile-bound
  # (D2L: 6.8 s -> 2.0 s to compile, the same run time); false for compute-bound ones.
  fast_compile: bool = True


# Sweep axes: the hyperparameters a config may sweep, and each one's valid range.
AXIS_RANGES: dict[str, tuple[float, float, bool]] = {
    "weight_decay": (0.0, math.inf, False),
    "lr": (0.0, math.inf, True),
    "seed": (0.0, 2.0**31, False),
    "momentum": (0.0, 1.0, False),
}
AXIS_KINDS = ("values", "logspace", "linspace", "range")


@dataclass(frozen=True)
class Axis:
  """One sweep axis: `{values=[...]}`, `{logspace=[lo, hi, n]}` (base 10), `{linspace=[lo,
  hi, n]}` or `{range = n}` (0..n-1)."""
  kind: str
  args: tuple

  def values(self) -> np.ndarray:
    """The axis values as a float64 (int64 for `range`) NumPy array."""
    if self.kind == "values":
      return np.asarray(self.args, np.float64)
    if self.kind == "logspace":
      return np.logspace(self.args[0], self.args[1], int(self.args[2]))
    if self.kind == "linspace":
      return np.linspace(self.args[0], self.args[1], int(self.args[2]))
    return np.arange(int(self.args[0]), dtype=np.int64)

  def to_raw(self) -> dict:
    return {self.kind: list(self.args) if self.kind != "range" else self.args[0]}


@dataclass(frozen=True)
class SweepConfig:
  """Named grid axes (their product is swept) and the chunk size (0: one chunk)."""
  axes: Mapping[str, Axis] = field(default_factory=dict)
  chunk_size: int = 0


@dataclass(frozen=True)
class Check:
  """An expected number: `{max = b}`, `{min = b}` or `{value = v, tol = t}` (absolute)."""
  op: Literal["max", "min", "value"]
  bound: float
  tol: float = 0.0

  def passes(self, x: float) -> bool:
    if not np.isfinite(x):
      return False
    if self.op == "max":
      return x <= self.bound
    if self.op == "min":
      return x >= self.bound
    return abs(x - self.bound) <= self.tol

  def describe(self) -> tuple[str, str]:
    """(expected, tolerance) as printed in the check table."""
    if self.op == "max":
      return f"<= {self.bound:.4g}", "-"
    if self.op == "min":
      return f">= {self.bound:.4g}", "-"
    return f"{self.bound:.4g}", f"±{self.tol:.2g}"

  def to_raw(self) -> dict:
    return {self.op: self.bound, **({"tol": self.tol} if self.op == "value" else {})}


@dataclass(frozen=True)
class Config:
  """A resolved experiment config. `params` is the experiment kind's own dataclass."""
  name: str
  kind: str
  description: str
  seed: int = 0
  data: DataConfig = DataConfig()
  model: ModelConfig = ModelConfig()
  optimizer: OptimizerConfig = OptimizerConfig()
  train: TrainConfig = TrainConfig()
  sweep: SweepConfig = SweepConfig()
  variants: Mapping[str, OptimizerConfig] = field(default_factory=dict)
  params: Any = None
  expected: Mapping[str, Check] = field(default_factory=dict)
  quick: Mapping[str, Any] = field(default_factory=dict)
  source: str = ""          # the file it came from ("" when built from a dict)
  is_quick: bool = False

  def hash(self) -> str:
    return config_hash(self)


_TOP_KEYS = ("name", "kind", "description", "seed", "data", "model", "optimizer", "train",
             "sweep", "variants", "params", "expected", "quick")


# --- validation -------------------------------------------------------------------------


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
  if lo is not None and (x < lo or (strict and x <= lo)):
    op = ">" if strict else ">="
    raise ConfigError(f"{path} = {x}: must be {op} {lo}.")
  if hi is not None and x > hi:
    raise ConfigError(f"{path} = {x}: must be <= {hi}.")


def _convert(value: Any, hint: Any, path: str, meta: Mapping[str, Any]) -> Any:
  origin = typing.get_origin(hint)
  if hint is float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise ConfigError(f"{path}: expected a number, got {_type_name(value)} ({value!r}).")
    value = float(value)
    _check_range(value, meta, path)
    return value
  if hint is int:
    if isinstance(value, bool) or not isinstance(value, int):
      raise ConfigError(f"{path}: expected an integer, got {_type_name(value)} ({value!r}).")
    _check_range(value, meta, path)
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
  if name not in AXIS_RANGES:
    raise _unknown(name, [*AXIS_RANGES, "chunk_size"], "sweep.")
  if not isinstance(raw, Mapping) or len(raw) != 1:
    raise ConfigError(f"{path}: a sweep axis is a table with one key, one of {AXIS_KINDS}, "
                      "e.g. {logspace = [-3, 1, 64]} or {values = [0, 3]}.")
  ((kind, args),) = raw.items()
  if kind not in AXIS_KINDS:
    raise _unknown(kind, AXIS_KINDS, path + ".")
  if kind == "range":
    if isinstance(args, bool) or not isinstance(args, int) or args < 1:
      raise ConfigError(f"{path}.range = {args!r}: expected a positive integer (the count).")
    axis = Axis("range", (args,))
  else:
    if not isinstance(args, list) or not all(
        isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
      raise ConfigError(f"{path}.{kind}: expected a list of numbers, got {args!r}.")
    if kind in ("logspace", "linspace"):
      if len(args) != 3 or int(args[2]) != args[2] or args[2] < 1:
        raise ConfigError(f"{path}.{kind} = {args!r}: expected [start, stop, count] with a "
                          "positive integer count (logspace: exponents of 10).")
    elif not args:
      raise ConfigError(f"{path}.values: empty list; give at least one value.")
    axis = Axis(kind, tuple(float(a) for a in args))
  lo, hi, strict = AXIS_RANGES[name]
  vals = axis.values()
  for v in vals:
    _check_range(float(v), {"lo": lo, "hi": hi, "strict_lo": strict}, f"{path} value")
  if name == "seed" and not np.all(vals == np.round(vals)):
    raise ConfigError(f"{path}: seeds must be integers, got {vals.tolist()}.")
  return axis


def _sweep(raw: Any) -> SweepConfig:
  if not isinstance(raw, Mapping):
    raise ConfigError(f"sweep: expected a table, got {_type_name(raw)}.")
  axes = {}
  chunk = 0
  for name, spec in raw.items():
    if name == "chunk_size":
      chunk = _convert(spec, int, "sweep.chunk_size", {"lo": 0})
    else:
      axes[name] = _axis(name, spec, f"sweep.{name}")
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


def _is_axis_spec(x: Any) -> bool:
  return isinstance(x, Mapping) and len(x) == 1 and next(iter(x)) in AXIS_KINDS


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict:
  """Deep merge of two raw tables; a sweep-axis spec or a list is replaced whole."""
  out = copy.deepcopy(dict(base))
  for k, v in over.items():
    if (isinstance(v, Mapping) and isinstance(out.get(k), Mapping)
        and not _is_axis_spec(v) and not _is_axis_spec(out[k])):
      out[k] = merge(out[k], v)
    else:
      out[k] = copy.deepcopy(v)
  return out


def parse_override(text: str) -> dict:
  """`"optimizer.lr=0.1"` -> `{"optimizer": {"lr": 0.1}}`; the value is parsed as TOML
  (so `0.1`, `true`, `[1, 2]`, `{values = [0, 3]}`), else taken as a string."""
  if "=" not in text:
    raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set optimizer.lr=0.1.")
  key, value = text.split("=", 1)
  key = key.strip()
  if not key or any(not p for p in key.split(".")):
    raise ConfigError(f"--set {text!r}: empty key; expected e.g. optimizer.lr=0.1.")
  try:
    parsed = tomllib.loads(f"v = {value.strip()}")["v"]
  except tomllib.TOMLDecodeError:
    parsed = value.strip()
  out: dict = {}
  node = out
  parts = key.split(".")
  for p in parts[:-1]:
    node = node.setdefault(p, {})
  node[parts[-1]] = parsed
  return out


def from_dict(raw: Mapping[str, Any], *, quick: bool = False,
              overrides: typing.Sequence[str | Mapping[str, Any]] = (),
              source: str = "") -> Config:
  """Validates a raw config table (as read from TOML) into a `Config`.

  Args:
    raw: the table.
    quick: apply the config's `[quick]` overrides.
    overrides: `"key.path=value"` strings or raw tables, applied last.
    source: the file name, kept for messages and provenance.

  Returns:
    A frozen `Config`.

  Raises:
    ConfigError: naming the offending key path and what would be valid.
  """
  from wdjax import experiments  # the registry of experiment kinds (imported lazily)

  raw = dict(raw)
  for key in raw:
    if key not in _TOP_KEYS:
      raise _unknown(key, _TOP_KEYS, "")
  quick_table = raw.get("quick", {})
  if not isinstance(quick_table, Mapping):
    raise ConfigError(f"quick: expected a table of overrides, got {_type_name(quick_table)}.")
  for name in ("name", "kind", "description"):
    if name not in raw:
      raise ConfigError(f"{name}: missing; every config needs name, kind and description.")
  kind = raw["kind"]
  if kind not in experiments.KINDS:
    err = _unknown(str(kind), experiments.KINDS, "kind = ")
    if experiments.IMPORT_ERRORS:
      raise ConfigError(f"{err} (modules of wdjax/experiments that failed to import: "
                        f"{experiments.IMPORT_ERRORS})")
    raise err
  spec = experiments.KINDS[kind]
  # The [quick] table must always apply cleanly, so a quick run cannot drift from the config.
  layers = [quick_table] if quick else []
  layers += [parse_override(o) if isinstance(o, str) else o for o in overrides]
  resolved = raw
  for layer in layers:
    for key in layer:
      if key in ("quick",) or key not in _TOP_KEYS:
        raise _unknown(key, [k for k in _TOP_KEYS if k != "quick"], "override ")
    resolved = merge(resolved, layer)
  if not quick and quick_table:
    from_dict(raw, quick=True, source=source)  # validates the [quick] overrides too
  top = {k: v for k, v in resolved.items() if k in ("name", "kind", "description", "seed")}
  cfg_top = _build(_Top, top, "")
  optimizer = _build(OptimizerConfig, resolved.get("optimizer", {}), "optimizer.")
  variants_raw = resolved.get("variants", {})
  if not isinstance(variants_raw, Mapping):
    raise ConfigError("variants: expected a table of name = {optimizer overrides}.")
  base_opt = resolved.get("optimizer", {})
  variants = {name: _build(OptimizerConfig, merge(base_opt, v) if isinstance(v, Mapping) else v,
                           f"variants.{name}.")
              for name, v in variants_raw.items()}
  expected_raw = resolved.get("expected", {})
  if not isinstance(expected_raw, Mapping):
    raise ConfigError("expected: expected a table of check = {max|min|value = ...}.")
  data = _build(DataConfig, resolved.get("data", {}), "data.")
  if data.source == "npz":
    if not data.path:
      raise ConfigError("data.path: missing; source = 'npz' needs the path of a .npz file.")
    path = data.path
    if source and not os.path.isabs(path) and not os.path.exists(path):
      path = os.path.join(os.path.dirname(source), path)
    if not os.path.isfile(path):
      raise ConfigError(f"data.path = {data.path!r}: no such file. Give the path of a .npz "
                        "with x_train, y_train, x_val, y_val (relative to the working "
                        "directory or to the config file).")
    data = dataclasses.replace(data, path=os.path.abspath(path))
  from wdjax.data import SKLEARN_DATASETS
  if data.source == "sklearn" and data.name not in SKLEARN_DATASETS:
    close = difflib.get_close_matches(data.name, SKLEARN_DATASETS, n=1)
    raise ConfigError(f"data.name = {data.name!r}: not a scikit-learn dataset wdjax ships; "
                      + (f"did you mean {close[0]!r}? " if close else "")
                      + "choose digits, diabetes or breast_cancer.")
  cfg = Config(
      name=cfg_top.name, kind=kind, description=cfg_top.description, seed=cfg_top.seed,
      data=data,
      model=_build(ModelConfig, resolved.get("model", {}), "model."),
      optimizer=optimizer,
      train=_build(TrainConfig, resolved.get("train", {}), "train."),
      sweep=_sweep(resolved.get("sweep", {})),
      variants=variants,
      params=_build(spec.params, resolved.get("params", {}), "params."),
      expected={k: _check(k, v, spec.checks) for k, v in expected_raw.items()},
      quick=dict(quick_table), source=source, is_quick=quick)
  if cfg.name != os.path.basename(cfg.name) or not cfg.name:
    raise ConfigError(f"name = {cfg.name!r}: must be a plain non-empty file name (it names "
                      "the run directory).")
  spec.validate(cfg)
  return cfg


@dataclass(frozen=True)
class _Top:
  name: str
  kind: str
  description: str
  seed: int = field(default=0, **_rng(0))


def load(path: str | os.PathLike, *, quick: bool = False,
         overrides: typing.Sequence[str | Mapping[str, Any]] = ()) -> Config:
  """Reads and validates a TOML config (see `from_dict`)."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ConfigError(f"{path}: no such config file. `wdjax list` shows the experiments.")
  with open(path, "rb") as f:
    try:
      raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
      raise ConfigError(f"{path}: not valid TOML: {e}") from None
  try:
    return from_dict(raw, quick=quick, overrides=overrides, source=path)
  except ConfigError as e:
    raise ConfigError(f"{path}: {e}") from None


def to_dict(cfg: Config) -> dict:
  """The resolved config as a JSON-able table (what the run directory records)."""
  def conv(x: Any) -> Any:
    if isinstance(x, (Axis, Check)):
      return x.to_raw()
    if dataclasses.is_dataclass(x):
      return {f.name: conv(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, Mapping):
      return {k: conv(v) for k, v in x.items()}
    if isinstance(x, tuple):
      return [conv(v) for v in x]
    return x
  out = conv(cfg)
  out["sweep"] = {**out["sweep"].pop("axes"), **(
      {"chunk_size": cfg.sweep.chunk_size} if cfg.sweep.chunk_size else {})}
  return out


def from_resolved(table: Mapping[str, Any]) -> Config:
  """Rebuilds a `Config` from `to_dict`'s output (a run directory's config.json)."""
  table = dict(table)
  source, is_quick = table.pop("source", ""), table.pop("is_quick", False)
  # Variants were stored fully resolved; merging them over the optimizer again is a no-op.
  cfg = from_dict(table, source="")
  return dataclasses.replace(cfg, source=source, is_quick=is_quick)


def config_hash(cfg: Config) -> str:
  """A stable 10-hex-digit hash of the resolved config (its description and the [quick]
  table left out: they do not change what is computed)."""
  table = to_dict(cfg)
  for k in ("description", "quick", "source", "is_quick"):
    table.pop(k, None)
  blob = json.dumps(table, sort_keys=True, separators=(",", ":"), default=str)
  return hashlib.sha256(blob.encode()).hexdigest()[:10]

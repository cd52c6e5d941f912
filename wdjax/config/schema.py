"""The config schema: one frozen dataclass per TOML table, with the ranges each field accepts."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import numpy as np

from wdjax import optimizers


class ConfigError(ValueError):
  """A config that cannot be run: the message names the key path and the fix."""


ConfigError.__module__ = "wdjax.config"  # its public home (tracebacks, doctests)


class KindSchema(typing.Protocol):
  """What `from_dict` needs of an experiment kind (`wdjax.experiments.registry.Kind`)."""
  params: type                        # a frozen dataclass: the [params] table
  checks: Mapping[str, str]           # names the [expected] table may bound
  validate: typing.Callable[[Any], None]   # raises ConfigError on a bad Config
  sections: tuple[str, ...] | None    # the tables of SECTIONS it reads (None: all)


def bounds(lo: float | None = None, hi: float | None = None, *, strict_lo: bool = False) -> dict:
  return {"metadata": {"lo": lo, "hi": hi, "strict_lo": strict_lo}}


# --- sections ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig:
  """Where the data comes from (see `wdjax.data`)."""
  source: Literal["d2l", "sklearn", "npz", "lowrank"] = "d2l"
  name: str = ""            # sklearn dataset: digits, diabetes, breast_cancer
  path: str = ""            # .npz file (x_train, y_train, x_val, y_val[, x_test, y_test])
  n_train: int = field(default=20, **bounds(1, 10**7))
  n_val: int = field(default=100, **bounds(1, 10**7))
  n_heldout: int = field(default=10000, **bounds(0, 10**7))
  dim: int = field(default=200, **bounds(1, 10**5))
  outputs: int = field(default=1, **bounds(1, 10**4))
  rank: int = field(default=2, **bounds(1, 10**4))
  noise: float = field(default=0.01, **bounds(0, 1e6))
  val_fraction: float = field(default=0.2, **bounds(0, 0.9, strict_lo=True))
  test_fraction: float = field(default=0.0, **bounds(0, 0.9))
  standardize_target: bool = False


@dataclass(frozen=True)
class ModelConfig:
  """Which model (see `wdjax.models`)."""
  name: Literal["linear", "softmax", "mlp", "cnn"] = "linear"   # a key of wdjax.models.MODELS
  widths: tuple[int, ...] = field(default=(), **bounds(1, 10**5))
  activation: Literal["relu", "tanh", "gelu"] = "relu"


@dataclass(frozen=True)
class OptimizerConfig:
  """The optimizer: a name of `wdjax.optimizers` and its Python function's arguments.

  `name` is any registered optimizer ("sgd", "adam", "sgd_l2", "adamw", "sgdw",
  "proximal_sgd", "proximal_adam", "adamc", "adams", "cautious_adamw", ...). The fields below
  are the values every optimizer shares; any other key of the table must be an argument of
  that optimizer's Python function (`b1 = 0.95`, `scale_by = "schedule"`, `prox = "l1"`)
  and is kept in `options`. The base optimizers "sgd" and "adam" place a penalty with
  `penalty`, `coupling` ("coupled" | "decoupled" | "proximal"; none by default), `scale_by`
  and `decay` ("decoupled" | "cautious"), as `wdjax.optimizers.compose` documents.
  """
  name: str = "sgd"
  learning_rate: float = field(default=0.01, **bounds(0, strict_lo=True))
  momentum: float = field(default=0.0, **bounds(0, 1))
  schedule: Literal["constant", "cosine"] = "constant"
  weight_decay: float = field(default=0.0, **bounds(0))
  mask: Literal["weights_only", "everything"] = "weights_only"
  options: Mapping[str, Any] = field(default_factory=dict)

  def option(self, key: str) -> Any:
    """An argument of the optimizer's function: the config's value, else its default."""
    if key in self.options:
      return self.options[key]
    p = optimizers.spec(self.name).parameters.get(key)
    return None if p is None or p.default is p.empty else p.default

  # The composer's arguments, read by experiments that compare couplings.
  coupling = property(lambda self: self.option("coupling"))
  penalty = property(lambda self: self.option("penalty"))
  scale_by = property(lambda self: self.option("scale_by"))


# Keys of [optimizer] that are fields of OptimizerConfig, not options of the function.


@dataclass(frozen=True)
class TrainConfig:
  """Epochs and minibatches (`batch_size = 0` is full batch)."""
  epochs: int = field(default=10, **bounds(1, 10**6))
  batch_size: int = field(default=5, **bounds(0, 10**7))
  x64: bool = False
  # XLA's CPU backend at optimization level 0: these small sweeps are compile-bound
  # (D2L: 6.8 s -> 2.0 s to compile, the same run time); false for compute-bound ones.
  fast_compile: bool = True


# Sweep axes: the hyperparameters a config may sweep, and each one's valid range.
AXIS_RANGES: dict[str, tuple[float, float, bool]] = {
    "weight_decay": (0.0, math.inf, False),
    "learning_rate": (0.0, math.inf, True),
    "seed": (0.0, 2.0**31 - 1, False),
    "momentum": (0.0, 1.0, False),
}
AXIS_KINDS = ("values", "logspace", "linspace", "range")
# Limits checked before any axis is materialized: values per axis, points per grid (the
# product of every axis), and |exponent| of a logspace (10**±300 is still finite in float64).
MAX_AXIS_VALUES = 100_000
MAX_GRID_POINTS = 1_000_000
MAX_LOG10 = 300.0
# A name that becomes a file or folder name (the run directory, a variant's chunks).
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
# The tables a kind may declare it reads (`Kind.sections`); [params] and [expected] always.
SECTIONS = ("data", "model", "optimizer", "train", "sweep", "variants")


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


@dataclass(frozen=True)
class _Top:
  name: str
  kind: str
  description: str
  seed: int = field(default=0, **bounds(0, 2**31 - 1))


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
  # An [optimizer] table keeps the Python function's argument names at its top level.
  for table in (out["optimizer"], *out["variants"].values()):
    table.update(table.pop("options"))
  out["sweep"] = {**out["sweep"].pop("axes"), **(
      {"chunk_size": cfg.sweep.chunk_size} if cfg.sweep.chunk_size else {})}
  return out


def _file_digest(path: str) -> str:
  st = os.stat(path)
  return _digest_of(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
  """SHA-256 of a file, once per (path, size, mtime): the hash is asked more than once a
  run, and a user's data file may be large."""
  del size, mtime_ns   # (the cache key)
  digest = hashlib.sha256()
  with open(path, "rb") as fh:
    for block in iter(lambda: fh.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def config_hash(cfg: Config) -> str:
  """A stable 10-hex-digit hash of the resolved config (its description and the [quick]
  table left out: they do not change what is computed)."""
  table = to_dict(cfg)
  for k in ("description", "quick", "source", "is_quick"):
    table.pop(k, None)
  if cfg.data.source == "npz" and os.path.isfile(cfg.data.path):
    # a user's data file edited in place is another computation: without its contents in
    # the hash, the run resumed the old data's attempt and its chunk store refused it
    table["data_file_sha256"] = _file_digest(cfg.data.path)
  blob = json.dumps(table, sort_keys=True, separators=(",", ":"), default=str)
  return hashlib.sha256(blob.encode()).hexdigest()[:10]

"""The [optimizer] table: a `wdjax.optimizers` name and its Python function's arguments."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import typing
from typing import Any, Mapping

import optax

from wdjax import optimizers
from wdjax.config.fields import _build, _type_name, _unknown
from wdjax.config.schema import ConfigError, OptimizerConfig


_OPT_FIELDS = ("name", "learning_rate", "momentum", "schedule", "weight_decay", "mask")


def _optimizer(raw: Any, prefix: str) -> OptimizerConfig:
  """Validates an [optimizer] table: its fields, then the other keys against the named
  optimizer's function, then a trial build (so a bad combination fails here, not mid-run)."""
  where = prefix.rstrip(".")
  if not isinstance(raw, Mapping):
    raise ConfigError(f"{where}: expected a table, got {_type_name(raw)} ({raw!r}).")
  name = raw.get("name", "sgd")
  if not isinstance(name, str) or name not in optimizers.names():
    close = difflib.get_close_matches(str(name), optimizers.names(), n=1)
    raise ConfigError(f"{prefix}name = {name!r}: not an optimizer; "
                      + (f"did you mean {close[0]!r}? " if close else "")
                      + f"choose one of {', '.join(optimizers.names())}.")
  spec = optimizers.spec(name)
  if raw.get("momentum") and "momentum" not in spec.parameters:
    # (it was dropped silently: an [optimizer] table meant for SGD switched to Adam)
    raise ConfigError(f"{prefix}momentum = {raw['momentum']!r}: {name} takes no momentum "
                      "(Adam-type optimizers have b1); remove it, or pick an SGD optimizer.")
  fields = {k: v for k, v in raw.items() if k in _OPT_FIELDS}
  extras = {k: v for k, v in raw.items() if k not in _OPT_FIELDS}
  valid = sorted(set(_OPT_FIELDS) | set(spec.parameters))
  for key, value in extras.items():
    if key not in spec.parameters or key == "options":
      raise _unknown(key, valid, prefix)
    if not isinstance(value, (bool, int, float, str)):
      raise ConfigError(f"{prefix}{key}: expected a number, string or boolean, got "
                        f"{_type_name(value)} ({value!r}).")
    if isinstance(value, float) and not math.isfinite(value) or (
        isinstance(value, int) and abs(value) > 2**53):
      raise ConfigError(f"{prefix}{key} = {value}: must be a finite number of a sane size.")
  cfg = dataclasses.replace(_build(OptimizerConfig, fields, prefix), options=dict(extras))
  try:
    build = build_optimizer(cfg, total_steps=1)
    trial = {"learning_rate": cfg.learning_rate, "weight_decay": cfg.weight_decay}
    build({k: v for k, v in trial.items() if k in build.hparam_names})
  except (TypeError, ValueError, ArithmeticError) as e:
    raise ConfigError(f"{where} (name = {name!r}): {e}") from None
  return cfg


def build_optimizer(opt: OptimizerConfig, total_steps: int,
                    swept: typing.Collection[str] = ()) -> optimizers.Builder:
  """The `wdjax.optimizers.Builder` an [optimizer] table describes.

  It reads the traced hyperparameters "learning_rate" and "weight_decay" (and "momentum"
  when the table sets a non-zero momentum or the sweep varies it), so a sweep over them
  compiles once; the names in `swept` stay hyperparameters even when the table fixes
  them. `schedule = "cosine"` decays the learning rate to 0 over `total_steps`
  (the factory gets the schedule, and η as its `peak_learning_rate`).
  """
  options = dict(opt.options)
  params = optimizers.spec(opt.name).parameters
  if "mask" in params:
    options["mask"] = optimizers.MASKS[opt.mask]
  if opt.momentum and "momentum" in params:
    options["momentum"] = opt.momentum
  options = {k: v for k, v in options.items() if k not in swept}
  schedule, schedule_name = None, ""
  if opt.schedule == "cosine":
    schedule = functools.partial(optax.cosine_decay_schedule, decay_steps=total_steps)
    schedule_name = f"cosine({total_steps})"
  return optimizers.get(opt.name, schedule=schedule, schedule_name=schedule_name, **options)

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
[params]      # the experiment kind's own knobs (validated by the kind's dataclass)
[expected]    # check = {max = 1e-4} | {min = 0.5} | {value = 0.0, tol = 0.0}
[quick]       # overrides applied by --quick, e.g. train.epochs = 2
```

Every key is checked: an unknown key is an error naming the closest valid one, a value of
the wrong type or out of range is an error naming its dotted path. Overrides
(`--set optimizer.learning_rate=0.1`) are parsed as TOML values and applied before validation, so
they are checked the same way. `config_hash` is a stable hash of the resolved config.

This module knows no experiment: the kind-specific parts (the `[params]` dataclass, the
names its `[expected]` table may bound, its own `validate`) come from the caller as a
mapping `kinds` of `KindSchema`s, which `wdjax.experiments.registry` passes (its
`load`/`from_dict` are what the CLI and the tests call). Without `kinds` only the generic
schema is checked and `params` stays a plain table.

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

Layout: `schema` (the dataclasses and their JSON form), `fields` (raw values to fields),
`optimizer` (the [optimizer] table against `wdjax.optimizers`), `loading` (whole configs).
"""

from wdjax.config.schema import AXIS_KINDS
from wdjax.config.loading import from_dict
from wdjax.config.loading import from_resolved
from wdjax.config.loading import load
from wdjax.config.loading import merge
from wdjax.config.loading import parse_override
from wdjax.config.loading import read_toml
from wdjax.config.optimizer import build_optimizer
from wdjax.config.schema import AXIS_RANGES
from wdjax.config.schema import Axis
from wdjax.config.schema import Check
from wdjax.config.schema import Config
from wdjax.config.schema import ConfigError
from wdjax.config.schema import DataConfig
from wdjax.config.schema import KindSchema
from wdjax.config.schema import ModelConfig
from wdjax.config.schema import OptimizerConfig
from wdjax.config.schema import SweepConfig
from wdjax.config.schema import TrainConfig
from wdjax.config.schema import bounds
from wdjax.config.schema import config_hash
from wdjax.config.schema import to_dict

__all__ = (
    "AXIS_KINDS", "AXIS_RANGES", "Axis", "Check", "Config", "ConfigError", "DataConfig",
    "KindSchema", "ModelConfig", "OptimizerConfig", "SweepConfig", "TrainConfig", "bounds",
    "build_optimizer", "config_hash", "from_dict", "from_resolved", "load", "merge",
    "parse_override", "read_toml", "to_dict",
)

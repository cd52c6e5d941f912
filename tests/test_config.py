"""Configs: every experiments/*.toml loads (full and --quick); bad configs fail clearly."""

import glob
import os

import numpy as np
import pytest

from wdjax import config, experiments
from wdjax.config import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "experiments", "*.toml")))
BASE = {"name": "t", "kind": "d2l_weight_decay", "description": "test",
        "sweep": {"weight_decay": {"values": [0.0, 3.0]}}}


def test_there_are_configs():
  assert len(CONFIGS) >= 6


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
@pytest.mark.parametrize("quick", [False, True])
def test_every_config_loads(path, quick):
  cfg = experiments.load(path, quick=quick)
  assert cfg.description.strip() and cfg.expected, "a config says what it reproduces and checks"
  assert cfg.is_quick == quick
  assert cfg.hash() == experiments.load(path, quick=quick).hash()       # stable
  again = experiments.from_resolved(config.to_dict(cfg))                 # what `plot` reloads
  assert again.hash() == cfg.hash()


def test_quick_changes_the_hash_and_values():
  path = os.path.join(ROOT, "experiments", "d2l_weight_decay.toml")
  full, quick = experiments.load(path), experiments.load(path, quick=True)
  assert full.hash() != quick.hash()
  assert len(quick.sweep.axes["weight_decay"].values()) < len(full.sweep.axes["weight_decay"].values())


def test_axes():
  axes = experiments.from_dict({**BASE, "sweep": {"weight_decay": {"logspace": [-3, 1, 5]},
                                             "seed": {"range": 3}}}).sweep.axes
  np.testing.assert_allclose(axes["weight_decay"].values(), np.logspace(-3, 1, 5))
  assert axes["seed"].values().tolist() == [0, 1, 2]
  lin = experiments.from_dict({**BASE, "sweep": {"weight_decay": {"linspace": [0, 1, 3]}}})
  np.testing.assert_allclose(lin.sweep.axes["weight_decay"].values(), [0, 0.5, 1])


def test_overrides():
  cfg = experiments.from_dict(BASE, overrides=["optimizer.learning_rate=0.1", "train.epochs=3",
                                          "sweep.weight_decay={values = [1, 2]}",
                                          "optimizer.name=adam"])
  assert cfg.optimizer.learning_rate == 0.1 and cfg.train.epochs == 3 and cfg.optimizer.name == "adam"
  assert cfg.sweep.axes["weight_decay"].values().tolist() == [1.0, 2.0]
  assert cfg.hash() != experiments.from_dict(BASE).hash()


@pytest.mark.parametrize("change, message", [
    ({"optimzer": {}}, "optimzer: unknown key; did you mean 'optimizer'"),
    ({"optimizer": {"learning_rat": 0.1}}, "optimizer.learning_rat: unknown key; did you mean 'learning_rate'"),
    ({"optimizer": {"lr": 0.1}}, "optimizer.lr: unknown key"),
    ({"optimizer": {"learning_rate": "fast"}}, "optimizer.learning_rate: expected a number, got a string"),
    ({"optimizer": {"learning_rate": 0.0}}, "optimizer.learning_rate = 0.0: must be > 0"),
    ({"optimizer": {"name": "adamw", "scale_bye": "lr"}}, "optimizer.scale_bye: unknown key; did you mean 'scale_by'"),
    ({"optimizer": {"name": "adamw", "scale_by": "epoch"}}, "scale_by must be one of"),
    ({"optimizer": {"name": "adamww"}}, "did you mean 'adamw'"),
    ({"optimizer": {"name": "adam", "coupling": "decoupled", "penalty": "l1"}}, "decoupled decay is L2"),
    ({"optimizer": {"name": "adamw", "b1": [0.9]}}, "optimizer.b1: expected a number, string or boolean"),
    ({"optimizer": {"weight_decay": -1.0}}, "optimizer.weight_decay = -1.0: must be >= 0"),
    ({"sweep": {"weight_decay": {"values": [0.1, -1.0]}}}, "sweep.weight_decay value = -1.0: must be >= 0"),
    ({"sweep": {"weight_decay": {"logspace": [-3, 1]}}}, "[start, stop, count]"),
    ({"sweep": {"weight_dacay": {"values": [1.0]}}}, "did you mean 'weight_decay'"),
    ({"sweep": {"weight_decay": {"logspac": [-3, 1, 4]}}}, "did you mean 'logspace'"),
    ({"train": {"epochs": 2.5}}, "train.epochs: expected an integer"),
    ({"train": {"epochs": 0}}, "train.epochs = 0: must be >= 1"),
    ({"optimizer": {"coupling": "decopled"}}, "did you mean 'decoupled'"),
    ({"kind": "d2l_wieght_decay"}, "did you mean 'd2l_weight_decay'"),
    ({"data": {"source": "npz", "path": "/no/such/file.npz"}}, "data.path = '/no/such/file.npz': no such file"),
    ({"data": {"source": "sklearn", "name": "digit"}}, "did you mean 'digits'"),
    ({"expected": {"norm_ratoi": {"max": 1.0}}}, "expected.norm_ratoi: unknown key; did you mean 'norm_ratio'"),
    ({"expected": {"norm_ratio": {"value": 1.0}}}, "needs `tol`"),
    ({"expected": {"norm_ratio": {"max": 1.0, "min": 0.0}}}, "exactly one of max, min, value"),
    ({"quick": {"train": {"epoch": 1}}}, "train.epoch: unknown key; did you mean 'epochs'"),
    ({"params": {"compare": [0.0]}}, "params.compare"),
])
def test_bad_configs_name_the_key(change, message):
  raw = config.merge(BASE, change)
  with pytest.raises(ConfigError) as e:
    experiments.from_dict(raw)
  assert message in str(e.value)


def test_bad_override():
  with pytest.raises(ConfigError, match="expected KEY=VALUE"):
    experiments.from_dict(BASE, overrides=["optimizer.learning_rate"])
  with pytest.raises(ConfigError, match="optimizer.learning_rate: expected a number"):
    experiments.from_dict(BASE, overrides=["optimizer.learning_rate=fast"])


def test_missing_file_and_bad_toml(tmp_path):
  with pytest.raises(ConfigError, match="no such config file"):
    experiments.load(tmp_path / "nope.toml")
  bad = tmp_path / "bad.toml"
  bad.write_text("name = \n")
  with pytest.raises(ConfigError, match="not valid TOML"):
    experiments.load(bad)


def test_npz_path_relative_to_config(tmp_path):
  np.savez(tmp_path / "d.npz", x_train=np.ones((4, 3)), y_train=np.ones(4),
           x_val=np.ones((2, 3)), y_val=np.ones(2))
  text = ('name = "n"\nkind = "l1_vs_l2"\ndescription = "d"\n[data]\nsource = "npz"\n'
          'path = "d.npz"\n[sweep]\nweight_decay = {values = [0.1]}\n')
  (tmp_path / "c.toml").write_text(text)
  cfg = experiments.load(tmp_path / "c.toml")
  assert cfg.data.path == str(tmp_path / "d.npz")


def test_checks():
  c = config.Check("max", 1.0)
  assert c.passes(1.0) and not c.passes(1.1) and not c.passes(float("nan"))
  v = config.Check("value", 2.0, 0.5)
  assert v.passes(2.4) and not v.passes(2.6)
  assert config.Check("min", 0.0).describe() == (">= 0", "-")


def test_config_alone_checks_the_generic_schema_only():
  """`wdjax.config` knows no experiment: without `kinds` any kind name passes and
  [params] stays a table; with `kinds` the kind's dataclass, checks and validate apply."""
  import dataclasses

  raw = {**BASE, "kind": "my_own", "params": {"n": 3}, "expected": {"anything": {"max": 1.0}}}
  cfg = config.from_dict(raw)
  assert cfg.kind == "my_own" and cfg.params == {"n": 3} and set(cfg.expected) == {"anything"}

  @dataclasses.dataclass(frozen=True)
  class Params:
    n: int = 1

  seen = []
  kind = type("K", (), {"params": Params, "checks": {"anything": "a number"},
                        "validate": staticmethod(seen.append)})
  cfg = config.from_dict(raw, kinds={"my_own": kind})
  assert cfg.params == Params(3) and seen == [cfg]
  with pytest.raises(ConfigError, match="kind = my_owm: unknown key; did you mean 'my_own'"):
    config.from_dict({**raw, "kind": "my_owm"}, kinds={"my_own": kind})
  with pytest.raises(ConfigError, match="expected.nothing: unknown key"):
    config.from_dict({**raw, "expected": {"nothing": {"max": 1.0}}}, kinds={"my_own": kind})


def test_optimizer_options_a_named_optimizer_cannot_use_are_refused(tmp_path):
  # found by a review (a helper, 2026-11-29): momentum on an Adam-type optimizer was
  # dropped silently, and b1 = "x" died mid-sweep inside optax
  from wdjax import experiments
  from wdjax.config import ConfigError
  base = {"name": "m", "kind": "d2l_weight_decay", "description": "d",
          "sweep": {"weight_decay": {"values": [0.1]}}}
  with pytest.raises(ConfigError, match="optimizer.momentum = 0.9: adamw takes no momentum"):
    experiments.from_dict({**base, "optimizer": {"name": "adamw", "momentum": 0.9}})
  with pytest.raises(ConfigError, match="b1 must be a number"):
    experiments.from_dict({**base, "optimizer": {"name": "adamw", "b1": "x"}})
  experiments.from_dict({**base, "optimizer": {"name": "sgd_l2", "momentum": 0.9}})

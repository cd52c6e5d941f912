"""Issue 5's experiments (tune_lambda, cautious_vs_adamw, timescale): each config loads, its
[quick] version runs and every [expected] check passes; bad configs fail with a message
naming the key."""

import dataclasses
import os

import numpy as np
import pytest

from wdjax import config, experiments, plots, report, runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {"tune_lambda": "tune_lambda.toml", "cautious_vs_adamw": "cautious_vs_adamw.toml",
           "timescale": "timescale.toml"}


def _path(kind):
  return os.path.join(ROOT, "experiments", CONFIGS[kind])


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_config_loads_full_and_quick(kind):
  for quick in (False, True):
    cfg = experiments.load(_path(kind), quick=quick)
    assert cfg.kind == kind and cfg.is_quick == quick
    assert set(cfg.expected) <= set(experiments.KINDS[kind].checks)
    assert cfg.expected, "every config states its expected numbers"


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def quick_run(request, tmp_path_factory):
  """(config, RunRecord) of each config's [quick] version, run once for the module."""
  kind = request.param
  cfg = experiments.load(_path(kind), quick=True)
  if kind == "timescale":
    # The checks read `check_variant` (SGDW) only; the AdamW half, reported but not
    # checked, runs in the shrunk smoke test of tests/test_experiments.py (each variant x
    # size is its own compiled program, so this halves the test).
    keep = cfg.params.check_variant
    cfg = dataclasses.replace(cfg, variants={keep: cfg.variants[keep]})
  out = tmp_path_factory.mktemp(kind)
  return cfg, runner.run(cfg, str(out), log=None, plots=kind == "tune_lambda")


def test_quick_run_passes_its_checks(quick_run):
  cfg, rec = quick_run
  failed = [(r.name, r.value) for r in rec.checks if not r.passed]
  assert not failed, failed
  assert {r.name for r in rec.checks} == set(cfg.expected)
  for name in cfg.expected:
    assert np.isfinite(rec.values[name])
  assert os.path.exists(os.path.join(rec.run_dir, "summary.json"))
  if cfg.kind == "tune_lambda":
    # both λ and both test losses are reported, as the issue asks
    for prob in ("d2l", "digits"):
      for k in ("lambda_search", "lambda_grid", "test_search", "test_grid"):
        assert np.isfinite(rec.values[f"{prob}_{k}"])


def test_run_directory_reloads_and_replots(quick_run, tmp_path):
  """`wdjax plot RUN_DIR`: the resolved config (nested [params] tables included) and the
  metrics read back, and the kind's plot draws from them."""
  cfg, rec = quick_run
  cfg2, metrics, summary = report.load_run(rec.run_dir)
  assert cfg2.params == cfg.params and cfg2.hash() == cfg.hash()
  assert summary["passed"]
  pngs = plots.make_plots(cfg2, metrics, summary["values"], str(tmp_path))
  assert pngs and all(os.path.getsize(p) > 0 for p in pngs)


def _raw(kind):
  import tomllib
  with open(_path(kind), "rb") as f:
    return tomllib.load(f)


@pytest.mark.parametrize("kind, override, match", [
    ("tune_lambda", {"params": {"d2l": {"grid": [2, -3, 10]}}}, "params.d2l.grid"),
    ("tune_lambda", {"params": {"digitz": {}}}, "did you mean 'digits'"),
    ("tune_lambda", {"sweep": {"weight_decay": {"values": [1.0]}}}, "does not read \\[sweep\\]"),
    ("tune_lambda", {"params": {"lasso": {"lambdas": [-1.0]}}}, "params.lasso.lambdas"),
    ("cautious_vs_adamw", {"optimizer": {"coupling": "coupled"}}, "optimizer.coupling"),
    ("cautious_vs_adamw", {"sweep": {"weight_decay": {"values": [1.0, 2.0]}}}, "lambda0_gap"),
    ("cautious_vs_adamw", {"data": {"name": "diabetes"}}, "digits"),
    ("timescale", {"params": {"reference_size": 100}}, "params.reference_size"),
    ("timescale", {"params": {"check_variant": "nope"}}, "params.check_variant"),
    ("timescale", {"sweep": {"weight_decay": {"values": [0.0, 1.0]}}}, "λ > 0"),
    ("timescale", {"variants": {"adamw": {"scale_by": "schedule"}}}, "variants.adamw"),
])
def test_bad_config_names_the_key(kind, override, match):
  raw = config.merge(_raw(kind), override)
  with pytest.raises(config.ConfigError, match=match):
    experiments.from_dict(raw)


def test_shrink_keeps_a_valid_timescale_config():
  """`wdjax.experiments.shrink` (the smoke test of every config) uses the kind's hook: the
  checked variant at the two smallest sizes, still a config its validation accepts."""
  cfg = experiments.load(_path("timescale"), quick=True)
  small = experiments.shrink(cfg)
  assert list(small.variants) == [cfg.params.check_variant]
  assert small.params.sizes == tuple(sorted(cfg.params.sizes)[:2])
  experiments.KINDS["timescale"].validate(small)
  assert set(small.expected) <= set(experiments.KINDS["timescale"].checks)


def test_shrink_keeps_a_valid_tune_lambda_config():
  cfg = experiments.load(_path("tune_lambda"), quick=True)
  small = experiments.shrink(cfg)
  assert small.params.search_steps == 3 and small.params.d2l.grid[2] == 3
  experiments.KINDS["tune_lambda"].validate(small)

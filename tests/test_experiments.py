"""Every config smoke-runs shrunk (so configs cannot drift from the code); same seed, same
numbers; an interrupted sweep resumes from its finished chunks."""

import glob
import os

import numpy as np
import pytest

from wdjax import experiments, runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "experiments", "*.toml")))
D2L = os.path.join(ROOT, "experiments", "d2l_weight_decay.toml")


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_every_config_smoke_runs_shrunk(path, tmp_path):
  cfg = experiments.shrink(experiments.load(path, quick=True))
  rec = runner.run(cfg, str(tmp_path / "run"), log=None, plots=False)
  # Every expected number is produced (a check whose value is missing would fail).
  assert set(cfg.expected) <= set(rec.values)
  assert all(np.isfinite(rec.values[k]) for k in cfg.expected), rec.values
  assert os.path.exists(os.path.join(rec.run_dir, "summary.json"))


def test_same_seed_same_numbers():
  cfg = experiments.shrink(experiments.load(D2L, quick=True, overrides=[
      "sweep.seed={range = 3}", "sweep.weight_decay={values = [0.01, 1.0, 10.0]}"]))
  ctx = lambda: experiments.Context(None, log=None)
  a = experiments.KINDS[cfg.kind].run(cfg, ctx())
  b = experiments.KINDS[cfg.kind].run(cfg, ctx())
  assert a.values == b.values
  for k in a.metrics:
    np.testing.assert_array_equal(a.metrics[k], b.metrics[k])


def test_interrupted_sweep_resumes_from_finished_chunks(tmp_path, monkeypatch):
  # 3 seeds x 5 λ with chunk_size 5: one seed per chunk, three chunks.
  cfg = experiments.load(D2L, quick=True, overrides=[
      "sweep.seed={range = 3}", "sweep.weight_decay={values = [0.01, 1.0, 10.0]}",
      "sweep.chunk_size=5", "train.epochs=2"])
  out = str(tmp_path / "run")
  first = runner.run(cfg, out, log=None, plots=False)
  chunks = sorted(os.listdir(os.path.join(out, "chunks")))
  assert len(chunks) == 3
  # Simulate an interruption after the first two chunks: the third and the results are lost.
  os.remove(os.path.join(out, "chunks", chunks[-1]))
  for f in ("summary.json", "metrics.npz"):
    os.remove(os.path.join(out, f))
  logs = []
  again = runner.run(cfg, out, log=logs.append, plots=False)
  assert sum("resumed" in line for line in logs) == 2
  assert again.values == first.values


def test_lr_and_schedule_decay_agree_in_the_config_builder():
  # The structural fact the coupled_vs_decoupled check rests on, at the builder level.
  import jax.numpy as jnp
  import optax
  from wdjax.config import OptimizerConfig
  from wdjax.experiments import _common
  p = {"kernel": jnp.ones((3, 2))}
  g = {"kernel": jnp.full((3, 2), 0.1)}
  outs = []
  for scale_by, lam in (("lr", 0.5), ("schedule", 0.5 * 1e-2)):
    opt = OptimizerConfig(name="adam", schedule="cosine",
                          options={"coupling": "decoupled", "scale_by": scale_by})
    tx = _common.optimizer_builder(opt, 10)(
        {"learning_rate": 1e-2, "weight_decay": lam})
    st, q = tx.init(p), p
    for _ in range(5):
      u, st = tx.update(g, st, q)
      q = optax.apply_updates(q, u)
    outs.append(q["kernel"])
  np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6)


def test_width_scaling_cost_exponent_recovers_the_width_rule():
  # A decay cost that depends on s·d^β (linear in it): the standard rule (s = s₀·d₀/d)
  # gives slope β − 1, the independent rule (s = s₀) slope β, and the exponent β back.
  from wdjax.experiments import width_scaling as ws
  s0, widths, d0, beta = np.array([0.0, 1e-3, 1e-2]), [16, 32, 64], 32, 0.3
  s = {"standard": lambda d: s0 * d0 / d, "independent": lambda d: s0 + 0 * d}
  means = {r: {d: 2.0 + 5.0 * s[r](d) * d**beta for d in widths} for r in ws.RULES}
  values, _ = ws.curve_facts(s0, widths, means)
  np.testing.assert_allclose(values["standard_cost_slope"], beta - 1, rtol=1e-9)
  np.testing.assert_allclose(values["independent_cost_slope"], beta, rtol=1e-9)
  np.testing.assert_allclose(values["transfer_exponent"], beta, rtol=1e-9)
  assert values["max_decay_gain"] < 0 and values["max_rule_gap"] == 0
  np.testing.assert_allclose(values["min_top_decay_cost"], 5e-2 * 64**beta / 2, rtol=1e-9)


def test_width_scaling_cost_checks_need_zero_decay():
  path = os.path.join(ROOT, "experiments", "width_scaling.toml")
  from wdjax.config import ConfigError
  with pytest.raises(ConfigError, match="needs 0 in params.per_step_decay"):
    experiments.load(path, overrides=["params.per_step_decay=[1e-3, 1e-2]"])

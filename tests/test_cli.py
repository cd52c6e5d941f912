"""The `wdjax` command: run/reproduce/plot/list, run directories, failures leave no result."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from wdjax import cli, experiments, report

# Tests stay hermetic: no persistent compilation cache written to (or read from) ~/.cache.
os.environ["WDJAX_CACHE"] = "off"

def _read(path):
  with open(path) as f:
    return f.read()


def _json(path):
  return json.loads(_read(path))


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MATRICES = os.path.join(ROOT, "experiments", "matrices.toml")
# A small, fast run of a real config (a few λ, few steps), reused by the tests below.
SMALL = ["--quick", "--set", "sweep.weight_decay={values = [0.3, 3.0]}", "--set",
         "params.steps=300"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("runs") / "m")
  assert cli.main(["run", MATRICES, "--out", out, *SMALL]) == 0
  return out


def test_run_directory_holds_the_provenance(run_dir):
  files = set(os.listdir(run_dir))
  assert {"config.json", "env.json", "metrics.npz", "summary.json", "report.md",
          "matrices_rank.png"} <= files
  assert not [f for f in files if f.startswith(".tmp-")], "no temporary files left"
  cfg = _json(os.path.join(run_dir, "config.json"))
  assert len(cfg["hash"]) == 10 and cfg["config"]["params"]["steps"] == 300
  env = _json(os.path.join(run_dir, "env.json"))
  for key in ("python", "jax", "optax", "flax", "devices", "git_commit"):
    assert env[key]
  summary = _json(os.path.join(run_dir, "summary.json"))
  assert summary["hash"] == cfg["hash"] and summary["checks"]
  with np.load(os.path.join(run_dir, "metrics.npz")) as m:
    assert m["nuclear/rank"].shape == (2,)
  assert "## Checks" in _read(os.path.join(run_dir, "report.md"))


def test_plot_redraws(run_dir, capsys):
  os.remove(os.path.join(run_dir, "matrices_rank.png"))
  assert cli.main(["plot", run_dir]) == 0
  assert os.path.exists(os.path.join(run_dir, "matrices_rank.png"))
  assert "matrices_rank.png" in capsys.readouterr().out


def test_reproduce_exits_nonzero_on_a_miss(tmp_path, capsys):
  args = ["reproduce", MATRICES, "--out", str(tmp_path / "r"), "--no-plots", *SMALL]
  # An impossible bound on a real number of the run: the check must fail, the exit be 1.
  code = cli.main(args + ["--set", "expected.ridge_min_rank={value = 3.0, tol = 0.0}"])
  out = capsys.readouterr()
  assert code == 1
  assert "ridge_min_rank" in out.err and "FAIL" in out.out
  assert cli.main(args[:3] + [str(tmp_path / "r2")] + args[4:]) == 0


def test_bad_config_exits_2_and_writes_nothing(tmp_path, capsys):
  out = tmp_path / "never"
  assert cli.main(["run", MATRICES, "--out", str(out), "--set", "data.n_trian=1"]) == 2
  assert "did you mean 'n_train'" in capsys.readouterr().err
  # a table the kind would ignore is refused
  assert cli.main(["run", MATRICES, "--out", str(out), "--set", "optimizer.learning_rate=1"]) == 2
  assert "does not read [optimizer]" in capsys.readouterr().err
  assert cli.main(["run", MATRICES, "--out", str(out), "--set",
                   "sweep.weight_decay={values = [-1.0]}"]) == 2
  assert "must be >= 0" in capsys.readouterr().err
  l1 = os.path.join(ROOT, "experiments", "l1_vs_l2.toml")
  assert cli.main(["run", l1, "--out", str(out), "--set", "data.source='npz'", "--set",
                   "data.path='missing.npz'"]) == 2
  assert "data.path = 'missing.npz': no such file" in capsys.readouterr().err
  assert cli.main(["run", MATRICES, "--out", str(out), "--set", "params.steps='ten'"]) == 2
  assert "params.steps: expected an integer" in capsys.readouterr().err
  assert not out.exists()


def test_failed_rerun_keeps_the_finished_result(tmp_path, monkeypatch):
  out = str(tmp_path / "f")
  assert cli.main(["run", MATRICES, "--out", out, "--no-plots", *SMALL]) == 0
  before = {f: _read(os.path.join(out, f)) for f in ("summary.json", "report.md")}
  kind = experiments.KINDS["matrices"]

  def boom(cfg, ctx):
    raise RuntimeError("simulated crash")

  monkeypatch.setitem(experiments.KINDS, "matrices", kind.__class__(**{**kind.__dict__, "run": boom}))
  with pytest.raises(RuntimeError, match="simulated crash"):
    cli.main(["run", MATRICES, "--out", out, "--no-plots", *SMALL])
  # The rerun computed elsewhere (its attempt folder): the finished result is untouched.
  assert {f: _read(os.path.join(out, f)) for f in before} == before
  cfg, metrics, summary = report.load_run(out)
  assert summary["passed"] and metrics["nuclear/rank"].shape == (2,)


def test_a_run_that_fails_before_finishing_leaves_no_result(tmp_path, monkeypatch):
  kind = experiments.KINDS["matrices"]

  def boom(cfg, ctx):
    raise RuntimeError("simulated crash")

  monkeypatch.setitem(experiments.KINDS, "matrices", kind.__class__(**{**kind.__dict__, "run": boom}))
  out = str(tmp_path / "g")
  with pytest.raises(RuntimeError, match="simulated crash"):
    cli.main(["run", MATRICES, "--out", out, "--no-plots", *SMALL])
  assert not os.path.exists(out)
  with pytest.raises(FileNotFoundError, match="no finished run"):
    report.load_run(out)


def test_another_config_in_the_same_dir_is_refused(run_dir, capsys):
  assert cli.main(["run", MATRICES, "--out", run_dir, *SMALL, "--set", "params.steps=301"]) == 2
  assert "holds a run of another config" in capsys.readouterr().err


def test_list(capsys):
  assert cli.main(["list", "--dir", os.path.join(ROOT, "experiments")]) == 0
  out = capsys.readouterr().out
  for name in ("d2l_weight_decay", "bias_penalty", "l1_vs_l2", "coupled_vs_decoupled",
               "bayesian", "matrices"):
    assert f"{name}.toml" in out


def test_python_dash_m():
  r = subprocess.run([sys.executable, "-m", "wdjax", "list"], cwd=ROOT, capture_output=True,
                     text=True, timeout=120)
  assert r.returncode == 0 and "d2l_weight_decay.toml" in r.stdout


def test_atomic_write_replaces_whole_files(tmp_path):
  p = str(tmp_path / "a.json")
  report.write_json(p, {"a": 1})
  report.write_json(p, {"b": 2})
  assert _json(p) == {"b": 2}
  assert os.listdir(tmp_path) == ["a.json"]

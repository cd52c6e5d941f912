"""Faults a hostile or careless user meets (issue 10): each one reproduced, and the new
behaviour shown: the finished result intact, a chunk reused only when it is this run's,
a one-line error naming the problem, or the input refused before anything runs.

Subprocesses (SIGKILL during a sweep, several fake CPU devices) run a small worker given
inline; each is bounded by a timeout.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wdjax import _io, _validate, cli, data, experiments, models, report, runner, sweep, train
from wdjax.config import ConfigError
from wdjax.sweep import store

os.environ["WDJAX_CACHE"] = "off"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MATRICES = os.path.join(ROOT, "experiments", "matrices.toml")
SMALL = ["--quick", "--no-plots", "--set", "sweep.weight_decay={values = [0.3, 3.0]}",
         "--set", "params.steps=200"]


def _small_matrices(**over):
  raw = {"name": "m", "kind": "matrices", "description": "d",
         "data": {"source": "lowrank", "dim": 4, "outputs": 3, "n_train": 20, "n_val": 10},
         "sweep": {"weight_decay": {"values": [0.1, 1.0]}}, "params": {"steps": 50}}
  raw.update(over)
  return experiments.from_dict(raw)


def _contents(folder):
  out = {}
  for f in os.listdir(folder):
    with open(os.path.join(folder, f), "rb") as fh:
      out[f] = fh.read()
  return out


# --- 1. a finished result is never destroyed by a later run ------------------------------


def test_out_on_a_directory_that_is_not_a_wdjax_run_is_refused_and_untouched(tmp_path, capsys):
  d = tmp_path / "mine"
  (d / "chunks").mkdir(parents=True)
  (d / "summary.json").write_text("{}")             # looks like a result, but no config.json
  (d / "chunks" / "notes.txt").write_text("my own file")
  assert cli.main(["run", MATRICES, "--out", str(d), *SMALL]) == 2
  err = capsys.readouterr().err
  assert "not a wdjax run directory" in err and err.count("\n") == 1
  assert (d / "chunks" / "notes.txt").read_text() == "my own file"
  assert sorted(os.listdir(d)) == ["chunks", "summary.json"]
  assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # no attempt made


def test_an_interrupted_rerun_keeps_the_finished_result(tmp_path, monkeypatch):
  out = str(tmp_path / "r")
  cfg = _small_matrices()
  first = runner.run(cfg, out, log=None, plots=False)
  before = _contents(out)
  kind = experiments.KINDS["matrices"]

  def killed(cfg, ctx):  # the rerun is interrupted half-way
    raise KeyboardInterrupt

  monkeypatch.setitem(experiments.KINDS, "matrices",
                      kind.__class__(**{**kind.__dict__, "run": killed}))
  with pytest.raises(KeyboardInterrupt):
    runner.run(cfg, out, log=None, plots=False)
  assert _contents(out) == before
  _, _, summary = report.load_run(out)                # `wdjax plot` still reads it
  assert summary["values"] == json.loads(json.dumps(first.values))
  monkeypatch.undo()
  again = runner.run(cfg, out, log=None, plots=False)  # a finished rerun replaces it whole
  assert again.values == first.values
  assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]


def test_a_replacement_interrupted_between_its_renames_is_repaired(tmp_path):
  out = str(tmp_path / "r")
  runner.run(_small_matrices(), out, log=None, plots=False)
  attempt, old = runner._siblings(out)
  os.rename(out, old)                                  # killed after the first rename
  rec = runner.run(_small_matrices(), out, log=None, plots=False)
  assert os.path.exists(os.path.join(rec.run_dir, "summary.json"))
  assert not os.path.exists(old) and not os.path.exists(attempt)


# --- 2. a chunk is reused only when it provably belongs to this run -----------------------


@pytest.fixture(scope="module")
def d2l():
  return data.d2l_synthetic(seed=0, n_train=8, n_val=4, dim=3)


def _fn(ds, optimizer="sgd_l2", activation="relu", widths=(3,)):
  return train.make_train_fn(models.for_dataset("mlp", ds, widths=widths, activation=activation),
                             ds, optimizer=optimizer, epochs=2, batch_size=4)


def test_fingerprint_covers_activation_and_user_optimizer_code(d2l):
  g = sweep.grid(weight_decay=[0.0, 0.1], learning_rate=[0.1])
  fp = lambda fn: store.fingerprint(g, 2, 0, fn)
  assert fp(_fn(d2l)) == fp(_fn(d2l))                                   # stable
  assert fp(_fn(d2l, activation="relu")) != fp(_fn(d2l, activation="tanh"))
  assert fp(_fn(d2l, widths=(3,))) != fp(_fn(d2l, widths=(4,)))
  sgd = lambda hp: optax.sgd(hp["learning_rate"])
  adam = lambda hp: optax.adam(hp["learning_rate"])
  assert fp(_fn(d2l, sgd)) != fp(_fn(d2l, adam))        # every lambda is not the same
  lr_scale = 2.0
  scaled = lambda hp: optax.sgd(hp["learning_rate"] * lr_scale)
  first = fp(_fn(d2l, scaled))
  lr_scale = 3.0                                                         # a closure value
  assert fp(_fn(d2l, scaled)) != first
  obj = object()
  opaque = lambda hp: (obj, optax.sgd(hp["learning_rate"]))[1]           # cannot be hashed
  assert fp(_fn(d2l, opaque)) != fp(_fn(d2l, opaque))                    # never reused


def test_chunks_without_their_manifest_are_not_reused_by_another_sweep(tmp_path, d2l):
  g = sweep.grid(weight_decay=[0.0, 0.1, 1.0], learning_rate=[0.1])
  sweep.run(_fn(d2l), g, chunk_size=1, checkpoint_dir=tmp_path, progress=False)
  os.remove(tmp_path / "sweep.json")                 # the manifest is gone
  other = sweep.grid(weight_decay=[0.0, 0.1, 1.0], learning_rate=[0.3])  # another lr
  with pytest.warns(store.ChunkWarning, match="another sweep"):
    res = sweep.run(_fn(d2l), other, chunk_size=1, checkpoint_dir=tmp_path, progress=False)
  fresh = sweep.run(_fn(d2l), other, chunk_size=1, progress=False)
  for k in fresh.metrics:
    np.testing.assert_array_equal(res.metrics[k], fresh.metrics[k])


def test_a_truncated_chunk_is_recomputed_with_a_warning_and_results_are_identical(tmp_path, d2l):
  g = sweep.grid(weight_decay=[0.0, 0.1, 1.0, 3.0], learning_rate=[0.1])
  first = sweep.run(_fn(d2l), g, chunk_size=1, checkpoint_dir=tmp_path, progress=False)
  path = tmp_path / "chunk_00002.npz"
  path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
  computed = []
  with pytest.warns(store.ChunkWarning, match="chunk_00002.npz"):
    again = sweep.run(_fn(d2l), g, chunk_size=1, checkpoint_dir=tmp_path, progress=False,
                      on_chunk=lambda i, n, out: computed.append(i))
  assert computed == [2]
  for k in first.metrics:
    np.testing.assert_array_equal(again.metrics[k], first.metrics[k])
  _io.load_npz(path)  # rewritten whole, its checksum verifies


def test_a_damaged_run_piece_is_recomputed_with_a_warning(tmp_path):
  ctx = experiments.Context(str(tmp_path), log=None, fingerprint="abc")
  a = ctx.cached("piece", lambda: {"x": np.arange(3.0)})
  (tmp_path / "chunks" / "piece.npz").write_bytes(b"garbage")
  with pytest.warns(store.ChunkWarning, match="piece.npz"):
    b = ctx.cached("piece", lambda: {"x": np.arange(3.0)})
  other = experiments.Context(str(tmp_path), log=None, fingerprint="xyz")  # another config
  with pytest.warns(store.ChunkWarning, match="another run"):
    other.cached("piece", lambda: {"x": np.zeros(3)})
  np.testing.assert_array_equal(a["x"], b["x"])


_WORKER = textwrap.dedent("""
    import os, sys, time
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=" + sys.argv[3]
    os.environ["JAX_PLATFORMS"] = "cpu"
    import numpy as np
    from wdjax import data, models, sweep, train
    ds = data.d2l_synthetic(seed=0, n_train=8, n_val=4, dim=3)
    fn = train.make_train_fn(models.for_dataset("mlp", ds, widths=(3,)), ds,
                             optimizer="sgd_l2", epochs=3, batch_size=4)
    g = sweep.grid(weight_decay=np.linspace(0, 1, 12), learning_rate=[0.1], seed=[0, 1])
    slow = float(sys.argv[4])
    computed = []
    def on_chunk(i, n, out):
      computed.append(i)
      time.sleep(slow)
    ckpt = None if sys.argv[2] == "-" else sys.argv[2]
    res = sweep.run(fn, g, chunk_size=3, checkpoint_dir=ckpt, progress=False,
                    on_chunk=on_chunk)
    np.savez(sys.argv[1], computed=np.array(computed, int),
             **{k: np.asarray(v) for k, v in res.metrics.items()})
""")


def _worker(out, ckpt, devices, slow, wait=True):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  args = [sys.executable, "-c", _WORKER, str(out), str(ckpt), str(devices), str(slow)]
  if not wait:
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
  proc = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=240)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with np.load(out) as f:
    return dict(f)


def test_sigkill_during_a_sweep_then_resume_is_bitwise_identical_on_any_device_count(tmp_path):
  ckpt = tmp_path / "ckpt"
  proc = _worker(tmp_path / "killed.npz", ckpt, 2, 1.0, wait=False)
  deadline = time.time() + 200
  while time.time() < deadline and len(list(ckpt.glob("chunk_*.npz"))) < 2:
    assert proc.poll() is None, proc.stderr.read()[-3000:]
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=30)
  proc.stderr.close()
  done = len(list(ckpt.glob("chunk_*.npz")))
  assert 2 <= done < 8, "killed mid-sweep"
  resumed = _worker(tmp_path / "resumed.npz", ckpt, 2, 0)
  assert len(resumed["computed"]) == 8 - done          # the finished chunks were read back
  reference = _worker(tmp_path / "ref.npz", "-", 2, 0)
  for k in ("train_loss", "val_loss", "decayed_norm"):
    np.testing.assert_array_equal(resumed[k], reference[k])
  # The chunk layout does not depend on the device count: one device reads them all.
  one = _worker(tmp_path / "one.npz", ckpt, 1, 0)
  assert len(one["computed"]) == 0
  np.testing.assert_array_equal(one["val_loss"], reference["val_loss"])


# --- 3. every fault a one-line error -------------------------------------------------------


def _one_line_error(capsys, *args):
  code = cli.main(list(args))
  err = capsys.readouterr().err
  assert code == 2, err
  assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
  return err


@pytest.mark.parametrize("code, words", [
    (errno.EROFS, "read-only file system"), (errno.ENOSPC, "no space left"),
    (errno.EACCES, "permission denied")])
def test_os_errors_are_one_line_with_the_path_and_the_fix(tmp_path, capsys, monkeypatch,
                                                          code, words):
  def refuse(path, data):
    raise OSError(code, os.strerror(code), os.fspath(path))

  monkeypatch.setattr(_io, "write_bytes", refuse)
  err = _one_line_error(capsys, "run", MATRICES, "--out", str(tmp_path / "o"), *SMALL)
  assert words in err and str(tmp_path) in err


def test_out_naming_a_file_or_below_a_file(tmp_path, capsys):
  f = tmp_path / "file"
  f.write_text("x")
  assert "not a directory" in _one_line_error(capsys, "run", MATRICES, "--out", str(f), *SMALL)
  err = _one_line_error(capsys, "run", MATRICES, "--out", str(f / "below"), *SMALL)
  assert "is a file, not a directory" in err
  assert f.read_text() == "x"


def test_damaged_run_files_are_one_line(tmp_path, capsys):
  out = str(tmp_path / "r")
  assert cli.main(["run", MATRICES, "--out", out, *SMALL]) == 0
  capsys.readouterr()
  metrics = tmp_path / "r" / "metrics.npz"
  metrics.write_bytes(metrics.read_bytes()[:100])
  assert "metrics.npz" in _one_line_error(capsys, "plot", out)
  (tmp_path / "r" / "config.json").write_text("\x00garbage{")
  assert "unreadable" in _one_line_error(capsys, "run", MATRICES, "--out", out, *SMALL)
  assert "damaged" in _one_line_error(capsys, "plot", out)


def test_bad_environment_variable_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
  def bad_flag(n=None):  # what JAX raises for JAX_NUM_CPU_DEVICES=abc
    raise ValueError('Invalid value "abc" for JAX flag jax_num_cpu_devices')

  monkeypatch.setattr(sweep, "use_cpu_cores", bad_flag)
  err = _one_line_error(capsys, "run", MATRICES, "--out", str(tmp_path / "o"), *SMALL)
  assert "jax_num_cpu_devices" in err and "environment variable" in err
  with pytest.raises(ValueError, match="JAX flag"):
    cli.main(["--debug", "run", MATRICES, "--out", str(tmp_path / "o"), *SMALL])


def test_list_with_malformed_and_non_utf8_configs(tmp_path, capsys):
  (tmp_path / "bad.toml").write_text("name = [unclosed\n")
  (tmp_path / "bytes.toml").write_bytes(b"name = \"\xff\xfe\"\n")
  (tmp_path / "ok.toml").write_text('name = "x"\nkind = "matrices"\ndescription = "fine"\n')
  assert cli.main(["list", "--dir", str(tmp_path)]) == 2
  out = capsys.readouterr().out
  assert "[invalid]" in out and "not valid TOML" in out and "not UTF-8" in out
  assert "[matrices] fine" in out


# --- 4. the schema rejects what the run would reject, before anything runs ------------------


BASE = {"name": "t", "kind": "d2l_weight_decay", "description": "test",
        "sweep": {"weight_decay": {"values": [0.0, 3.0]}}}


@pytest.mark.parametrize("change, key", [
    ({"optimizer": {"learning_rate": float("inf")}}, "optimizer.learning_rate"),
    ({"sweep": {"weight_decay": {"values": [0.1, float("inf")]}}}, "sweep.weight_decay"),
    ({"sweep": {"weight_decay": {"logspace": [-3, 1, float("nan")]}}}, "sweep.weight_decay"),
    ({"sweep": {"weight_decay": {"logspace": [-3, 1, 10**30]}}}, "sweep.weight_decay"),
    ({"sweep": {"weight_decay": {"logspace": [-3, 400, 4]}}}, "sweep.weight_decay"),
    ({"sweep": {"weight_decay": {"values": [0.1]}, "seed": {"range": 100_000_000}}},
     "sweep.seed"),
    ({"kind": ["x"]}, "kind"),
    ({"seed": 2**70}, "seed"),
    ({"train": {"epochs": 10**12}}, "train.epochs"),
    ({"data": {"noise": float("inf")}}, "data.noise"),
    ({"train": {"batch_size": 21}}, "train.batch_size"),
    ({"params": {"ridge_points": -5}}, "params.ridge_points"),
    ({"model": {"name": "mlp"}}, "model"),            # d2l_weight_decay does not read [model]
    ({"name": "../escape"}, "name"),
])
def test_schema_rejects_before_running(change, key):
  raw = {**BASE, **change}
  t0 = time.perf_counter()
  with pytest.raises(ConfigError) as e:
    experiments.from_dict(raw)
  assert time.perf_counter() - t0 < 1.0
  assert key in str(e.value), str(e.value)


def test_grid_limit_names_the_size():
  raw = {**BASE, "sweep": {"weight_decay": {"logspace": [-3, 1, 100_000]},
                           "seed": {"range": 1000}}}
  with pytest.raises(ConfigError, match=r"100,000,000 points"):
    experiments.from_dict(raw)


def test_widths_and_ignored_sections():
  mlp = {"name": "t", "kind": "cautious_vs_adamw", "description": "d",
         "data": {"source": "sklearn", "name": "digits", "test_fraction": 0.2},
         "model": {"name": "mlp", "widths": [0]},
         "optimizer": {"name": "adam", "coupling": "decoupled"},
         "sweep": {"weight_decay": {"values": [0.0, 1.0]}}}
  with pytest.raises(ConfigError, match=r"model.widths\[0\]"):
    experiments.from_dict(mlp)
  bayes = {"name": "b", "kind": "bayesian", "description": "d", "optimizer": {"name": "adam"}}
  with pytest.raises(ConfigError, match="does not read \\[optimizer\\]"):
    experiments.from_dict(bayes)


def test_set_applies_to_every_key_including_kind():
  with pytest.raises(ConfigError, match="kind = nope: unknown key"):
    experiments.from_dict(BASE, overrides=["kind=nope"])
  cfg = experiments.from_dict({**BASE, "kind": "nope"}, overrides=["kind='d2l_weight_decay'"])
  assert cfg.kind == "d2l_weight_decay"


def test_batch_size_above_n_train_is_one_error_everywhere(tmp_path):
  cfg = experiments.load(os.path.join(ROOT, "experiments", "l1_vs_l2.toml"), quick=True,
                         overrides=["train.batch_size=100000"])   # diabetes has 353 examples
  with pytest.raises(ConfigError, match="train.batch_size = 100000 exceeds"):
    runner.run(cfg, str(tmp_path / "r"), log=None, plots=False)


def test_bias_penalty_reads_the_largest_lambda_by_value(tmp_path):
  def run(values):
    cfg = experiments.load(os.path.join(ROOT, "experiments", "bias_penalty.toml"), quick=True,
                           overrides=[f"sweep.weight_decay={{values = {values}}}",
                                      "train.epochs=300"])
    return runner.run(cfg, str(tmp_path / str(len(os.listdir(tmp_path)))), log=None,
                      plots=False).values
  up, down = run([1.0, 1000.0]), run([1000.0, 1.0])
  for k in ("decayed_bias_at_max_lambda", "undecayed_bias_offset_error"):
    np.testing.assert_allclose(down[k], up[k], rtol=1e-5, atol=1e-7)


# --- 5. library arguments at construction, schedules when called ----------------------------


def test_strings_and_bools_are_refused_as_strengths():
  for bad in ("0.1", b"0.1", True):
    with pytest.raises(TypeError, match="must be a number"):
      _validate.check_strength("weight_decay", bad)


def test_schedule_value_checked_where_evaluated():
  bad = lambda count: 0.1 - 0.05 * count
  assert float(_validate.evaluate(bad, jnp.asarray(1))) == pytest.approx(0.05)
  with pytest.raises(ValueError, match="`weight_decay` \\(a schedule\\) at step 3"):
    _validate.evaluate(bad, jnp.asarray(3), "weight_decay")
  with pytest.raises(ValueError, match="finite"):
    _validate.evaluate(lambda c: jnp.nan * c, jnp.asarray(1), "learning_rate")
  # Inside jit: the explicit rule, a bad value becomes NaN (the run is then marked diverged).
  traced = jax.jit(lambda c: _validate.evaluate(bad, c))
  assert float(traced(1)) == pytest.approx(0.05) and np.isnan(float(traced(3)))


def test_seeds_and_negative_grid_values_refused():
  with pytest.raises(ValueError, match="2\\*\\*32"):
    sweep.grid(weight_decay=[0.1], seed=[2**32])          # it wrapped to seed 0
  with pytest.raises(ValueError, match="negative"):
    sweep.grid(weight_decay=[-0.1, 0.1])
  with pytest.raises(ValueError, match="seed must be an int in \\[0, 2\\*\\*32\\)"):
    sweep.run(lambda hp, k: {"x": hp["weight_decay"]}, sweep.grid(weight_decay=[0.0]),
              seed=2**32, progress=False)


@pytest.mark.parametrize("arrays, match", [
    ({"x_train": np.array([[np.nan]]), "y_train": np.zeros(1), "x_val": np.ones((1, 1)),
      "y_val": np.zeros(1)}, "entry 'x_train': 1 NaN or infinite"),
    ({"x_train": np.ones((1, 1)) * 1j, "y_train": np.zeros(1), "x_val": np.ones((1, 1)),
      "y_val": np.zeros(1)}, "entry 'x_train': complex"),
    ({"x_train": np.array([["a"]]), "y_train": np.zeros(1), "x_val": np.ones((1, 1)),
      "y_val": np.zeros(1)}, "entry 'x_train': dtype <U1"),
    ({"x_train": np.ones((0, 2)), "y_train": np.zeros(0, int), "x_val": np.ones((1, 2)),
      "y_val": np.zeros(1, int)}, "train split is empty"),
])
def test_load_npz_names_file_and_key(tmp_path, arrays, match):
  path = tmp_path / "d.npz"
  np.savez(path, **arrays)
  with pytest.raises(ValueError, match=match) as e:
    data.load_npz(path)
  assert "d.npz" in str(e.value)


def test_load_npz_truncated_object_and_directory(tmp_path):
  path = tmp_path / "d.npz"
  np.savez(path, x_train=np.ones((4, 2)), y_train=np.zeros(4), x_val=np.ones((2, 2)),
           y_val=np.zeros(2))
  path.write_bytes(path.read_bytes()[:-30])
  with pytest.raises(ValueError, match="d.npz.*not a readable .npz"):
    data.load_npz(path)
  np.savez(path, x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1),
           x_val=np.ones((1, 1)), y_val=np.zeros(1))
  with pytest.raises(ValueError, match="d.npz.*'x_train'.*objects"):
    data.load_npz(path)
  with pytest.raises(ValueError, match="is a directory"):
    data.load_npz(tmp_path)


def test_run_directory_files_keep_the_umask(tmp_path):
  old = os.umask(0o027)
  try:
    rec = runner.run(_small_matrices(), str(tmp_path / "r"), log=None, plots=False)
  finally:
    os.umask(old)
  for f in os.listdir(rec.run_dir):
    assert os.stat(os.path.join(rec.run_dir, f)).st_mode & 0o777 == 0o640, f


def test_bad_jax_num_cpu_devices_is_one_line_from_the_cli():
  """JAX reads the variable when it is imported; wdjax names it first, for the CLI too."""
  env = {**os.environ, "JAX_NUM_CPU_DEVICES": "abc"}
  out = subprocess.run([sys.executable, "-m", "wdjax", "list"], env=env, capture_output=True,
                       text=True, timeout=120)
  assert out.returncode == 2
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: JAX_NUM_CPU_DEVICES='abc'"), out.stderr


# --- found by a review (a helper, 2026-11-29) ------------------------------------------------


def test_another_configs_interrupted_attempt_is_set_aside_and_resumed(tmp_path):
  # config A interrupted (its attempt holds finished chunks), then config B run into the
  # same --out: A's chunks were deleted silently; now they are set aside (with a warning)
  # and A resumes from them when it runs again
  out = str(tmp_path / "r")
  a, b = _small_matrices(), _small_matrices(params={"steps": 60})
  attempt, _ = runner._siblings(out)
  os.makedirs(os.path.join(attempt, "chunks"))
  _io.write_json(os.path.join(attempt, "config.json"), {"hash": a.hash(), "config": {}})
  with open(os.path.join(attempt, "chunks", "done.marker"), "w") as fh:
    fh.write("a finished chunk of A")
  with pytest.warns(UserWarning, match=f"another config \\({a.hash()}\\) was set aside"):
    runner.run(b, out, log=None, plots=False)
  aside = f"{attempt}.{a.hash()}"
  assert os.path.exists(os.path.join(aside, "chunks", "done.marker"))
  # A again, into another directory's name: its own attempt comes back from the side
  os.rename(out, str(tmp_path / "b_result"))
  assert runner._prepare_attempt(attempt, out, a.hash(), finished=False)   # resumes
  assert os.path.exists(os.path.join(attempt, "chunks", "done.marker"))
  assert not os.path.exists(aside)


def test_npz_that_is_not_an_archive_is_named(tmp_path):
  single = tmp_path / "single.npz"
  with open(single, "wb") as fh:
    np.save(fh, np.ones(3))                    # np.save's .npy under an .npz name
  with pytest.raises(ValueError, match="single .npy array.*np.savez"):
    data.load_npz(str(single))
  junk = tmp_path / "junk.npz"
  junk.write_bytes(b"hello")
  with pytest.raises(ValueError, match="not an .npz archive"):
    data.load_npz(str(junk))


def test_npz_content_errors_are_one_line_config_errors(tmp_path, capsys):
  # a user's data file with the wrong keys: the CLI's one-line error (exit 2), not a
  # traceback
  bad = tmp_path / "bad.npz"
  np.savez(bad, X_train=np.ones((4, 2)), Y_train=np.zeros(4))
  cfg = tmp_path / "c.toml"
  with open(os.path.join(ROOT, "experiments", "l1_vs_l2.toml")) as fh:
    text = fh.read()
  start, end = text.index("[data]"), text.index("[model]")
  cfg.write_text(text[:start] + f'[data]\nsource = "npz"\npath = "{bad}"\n\n' + text[end:])
  code = cli.main(["run", str(cfg), "--quick", "--no-plots", "--out", str(tmp_path / "o")])
  err = capsys.readouterr().err
  assert code == 2 and "data.path" in err and "x_train" in err and "Traceback" not in err


def test_a_data_file_edited_in_place_is_another_config(tmp_path):
  # the hash covers the .npz's contents: an edited file is a new run, not a resume of the
  # old data's attempt (whose chunk store then refused it, on every rerun)
  f = tmp_path / "d.npz"
  arrays = dict(x_train=np.ones((6, 2)), y_train=np.arange(6.0), x_val=np.ones((2, 2)),
                y_val=np.ones(2))
  np.savez(f, **arrays)
  raw = {"name": "m", "kind": "l1_vs_l2", "description": "d",
         "data": {"source": "npz", "path": str(f)},
         "sweep": {"weight_decay": {"values": [0.1]}}}
  first = experiments.from_dict(raw).hash()
  assert experiments.from_dict(raw).hash() == first
  np.savez(f, **{**arrays, "y_train": np.arange(6.0) + 1})
  assert experiments.from_dict(raw).hash() != first


def test_l1_vs_l2_refuses_a_target_it_cannot_fit(tmp_path, capsys):
  # integer labels (read as classes) or a 2-D target: one config error, not a softmax
  # model beside a lasso path, or a reshape failure deep inside the experiment
  with open(os.path.join(ROOT, "experiments", "l1_vs_l2.toml")) as fh:
    text = fh.read()
  start, end = text.index("[data]"), text.index("[model]")
  for i, y in enumerate([np.arange(8) % 3, np.ones((8, 3))]):
    f = tmp_path / f"d{i}.npz"
    np.savez(f, x_train=np.random.default_rng(0).normal(size=(8, 2)), y_train=y,
             x_val=np.ones((2, 2)), y_val=y[:2])
    cfg = tmp_path / f"c{i}.toml"
    cfg.write_text(text[:start] + f'[data]\nsource = "npz"\npath = "{f}"\n\n' + text[end:])
    code = cli.main(["run", str(cfg), "--quick", "--no-plots", "--out", str(tmp_path / f"o{i}")])
    err = capsys.readouterr().err
    assert code == 2 and "one regression target" in err, err

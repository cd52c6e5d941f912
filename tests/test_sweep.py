"""Sweeps: vmapped grid == Python loop, one compile, divergence, resume, bad input."""

import dataclasses
import functools
import io
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wdjax import _progress, data, models, sweep, train
from wdjax.sweep import engine

# Tolerance: the sweep runs a batched (vmapped) program and the loop an unbatched one; XLA
# may pick different float32 matmul/reduction kernels for the two, so results agree to
# float32 rounding accumulated over a few steps, not bit for bit.
RTOL, ATOL = 1e-5, 1e-6


@functools.lru_cache(maxsize=None)
def _digits():
  ds = data.sklearn_dataset("digits", seed=0)
  return ds._replace(x_train=ds.x_train[:64], y_train=ds.y_train[:64], x_val=ds.x_val[:32],
                     y_val=ds.y_val[:32])


@functools.lru_cache(maxsize=None)
def _d2l():
  return data.d2l_synthetic(seed=0, n_train=16, n_val=8, dim=6)


MODELS = {
    "linear": lambda: ("linear", _d2l(), {}),
    "softmax": lambda: ("softmax", _digits(), {}),
    "mlp": lambda: ("mlp", _digits(), {"widths": (16,), "layernorm": True}),
    "cnn": lambda: ("cnn", _digits(), {"features": (4,)}),
}
REGULARIZERS = {"coupled": "sgd_coupled_l2", "decoupled": "adamw", "proximal": "proximal_l1"}


@pytest.mark.parametrize("reg", sorted(REGULARIZERS))
@pytest.mark.parametrize("model", sorted(MODELS))
def test_sweep_equals_python_loop_and_compiles_once(model, reg):
  name, ds, kw = MODELS[model]()
  fn = train.make_train_fn(models.for_dataset(name, ds, **kw), ds, optimizer=REGULARIZERS[reg],
                           epochs=2, batch_size=16, return_params=True)
  chex.clear_trace_counter()  # chex counts by source footprint: shared by parametrized cases
  # The same declared function with its pure function traced at most once, and a cache of
  # its own (where sweep.run keeps the compiled program).
  counted = dataclasses.replace(fn, fn=chex.assert_max_traces(fn.fn, n=1), cache={})
  g = sweep.grid(product={"weight_decay": [0.0, 0.3], "seed": [0, 1]},
                 zip={"learning_rate": [0.05]})
  # 4 points in chunks of 3: two calls, the second padded, both of the one compiled function.
  res = sweep.run(counted, g, chunk_size=3, progress=False)
  single = jax.jit(fn)
  for i, lam in enumerate([0.0, 0.3]):
    for s in (0, 1):
      want = single({"weight_decay": lam, "learning_rate": 0.05}, jax.random.key(s))
      got = res.sel(weight_decay=lam, seed=s, learning_rate=0.05)
      for k, v in want.items():
        if k == "params":
          chex.assert_trees_all_close(got.params, v, rtol=RTOL, atol=ATOL)
        else:
          np.testing.assert_allclose(got.metrics[k], v, rtol=RTOL, atol=ATOL, err_msg=k)
  assert res.metrics["val_loss"].shape == (2, 2, 1, 2)
  assert not res.diverged.any()
  # A second sweep of the same shape reuses the compiled program (no new trace).
  sweep.run(counted, g, chunk_size=3, progress=False)
  assert len(counted.cache) == 1 and not fn.cache


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_seedless_sweep_shares_one_key_and_equals_python_loop(model):
  # Without a "seed" axis the key goes in unbatched (computed once for all runs); the
  # results must be those of single runs with that key.
  name, ds, kw = MODELS[model]()
  fn = train.make_train_fn(models.for_dataset(name, ds, **kw), ds, optimizer="adamw",
                           epochs=2, batch_size=8)
  g = sweep.grid(weight_decay=[0.0, 0.3, 3.0], learning_rate=[0.05])
  res = sweep.run(fn, g, chunk_size=2, progress=False, seed=5)
  single = jax.jit(fn)
  for lam in (0.0, 0.3, 3.0):
    want = single({"weight_decay": lam, "learning_rate": 0.05}, jax.random.key(5))
    got = res.sel(weight_decay=lam, learning_rate=0.05)
    for k, v in want.items():
      np.testing.assert_allclose(got.metrics[k], v, rtol=RTOL, atol=ATOL, err_msg=k)


def test_divergence_marked_with_epoch_and_isolated():
  ds = _d2l()
  fn = train.make_train_fn(models.for_dataset("linear", ds), ds, optimizer="sgd", epochs=30,
                           batch_size=4)
  lrs = [0.01, 50.0, 0.1]
  res = sweep.run(fn, sweep.grid(learning_rate=lrs), progress=False)
  np.testing.assert_array_equal(res.diverged, [False, True, False])
  single = jax.jit(fn)
  bad = single({"learning_rate": 50.0}, jax.random.key(0))["train_loss"]
  first = int(np.flatnonzero(~np.isfinite(bad))[0])
  assert first > 0  # it diverges during training, not at once
  assert res.diverged_epoch.tolist() == [-1, first, -1]
  for i in (0, 2):
    want = single({"learning_rate": lrs[i]}, jax.random.key(0))
    for k, v in want.items():
      assert np.all(np.isfinite(res.metrics[k][i])), k
      np.testing.assert_allclose(res.metrics[k][i], v, rtol=RTOL, atol=ATOL, err_msg=k)
  assert res.best("val_loss")["learning_rate"] in (0.01, 0.1)


def _toy(hparams, key):
  """A toy 'training' with a closed form, for fast tests: w_e = (1 − λη)^e + noise(key)."""
  lam, lr = hparams["weight_decay"], hparams["learning_rate"]
  e = jnp.arange(1, 5)
  return {"train_loss": (1 - lam * lr) ** e + 0.0 * jax.random.normal(key, ()),
          "noise": jnp.full((4,), jax.random.normal(key, ())),
          "params": {"w": {0: jnp.full((2,), lam)}}}


_toy.hparam_names = ("learning_rate", "weight_decay")
_toy.required_hparams = ("learning_rate", "weight_decay")


def test_axes_shape_and_values_by_point():
  g = sweep.grid(product={"weight_decay": [0.0, 0.5, 1.0], "seed": [3, 4]},
                 zip={"learning_rate": [0.1, 0.2]})
  assert g.shape == (3, 2, 2) and g.size == 12
  res = sweep.run(_toy, g, progress=False, chunk_size=5)
  assert res.metrics["train_loss"].shape == (3, 2, 2, 4)
  for lam in (0.0, 0.5, 1.0):
    for s in (3, 4):
      for lr in (0.1, 0.2):
        p = res.sel(weight_decay=lam, seed=s, learning_rate=lr)
        want = _toy({"weight_decay": lam, "learning_rate": lr}, jax.random.key(s))
        np.testing.assert_allclose(p.metrics["train_loss"], want["train_loss"], rtol=1e-6)
        np.testing.assert_allclose(p.metrics["noise"], want["noise"], rtol=1e-6)
        np.testing.assert_array_equal(p.params["w"][0], want["params"]["w"][0])
  # zipped axes: selecting by either name picks the same dimension index
  assert res.sel(learning_rate=0.2).shape == (3, 2) and res.sel(weight_decay=0.5).shape == (2, 2)
  np.testing.assert_array_equal(res.sel(learning_rate=0.2).metrics["noise"],
                                res.isel(learning_rate=1).metrics["noise"])
  with pytest.raises(KeyError, match="not on the grid"):
    res.sel(weight_decay=0.7)
  with pytest.raises(KeyError, match="no axis"):
    res.sel(momentum=0.9)
  assert res.best("train_loss") == {"weight_decay": 1.0, "seed": 3, "learning_rate": 0.2}


def test_no_seed_axis_uses_the_seed_argument():
  g = sweep.grid(weight_decay=[0.0, 1.0], learning_rate=[0.1])
  a = sweep.run(_toy, g, progress=False, seed=7).metrics["noise"]
  want = _toy({"weight_decay": 0.0, "learning_rate": 0.1}, jax.random.key(7))["noise"]
  np.testing.assert_allclose(a[0, 0], want, rtol=1e-6)
  np.testing.assert_allclose(a[1, 0], want, rtol=1e-6)


def test_results_are_writable_copies_whatever_the_chunk_count():
  """One chunk is copied out of device_get's read-only arrays, as several are concatenated:
  a result's metrics and params are the user's to edit in place."""
  g = sweep.grid(weight_decay=[0.0, 1.0], learning_rate=[0.1])
  for chunk_size in (None, 1):
    res = sweep.run(_toy, g, progress=False, chunk_size=chunk_size)
    for a in [*res.metrics.values(), res.params["w"][0]]:
      assert a.flags.writeable
    res.metrics["noise"][0, 0, 0] = np.nan   # in place: no error
    assert np.isnan(res.metrics["noise"][0, 0, 0])
    assert not res.diverged.any()   # computed when the result was made


def test_checkpoint_resume_after_interruption(tmp_path):
  g = sweep.grid(weight_decay=np.linspace(0, 1, 7), learning_rate=[0.1, 0.3])
  full = sweep.run(_toy, g, chunk_size=4, progress=False)
  seen = []

  def interrupt(i, n, out):
    seen.append(i)
    if i == 1:
      raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    sweep.run(_toy, g, chunk_size=4, progress=False, checkpoint_dir=tmp_path, on_chunk=interrupt)
  assert seen == [0, 1]
  seen.clear()
  res = sweep.run(_toy, g, chunk_size=4, progress=False, checkpoint_dir=tmp_path,
                  on_chunk=lambda i, n, out: seen.append((i, n)))
  assert seen == [(2, 4), (3, 4)]  # chunks 0 and 1 were read back, not recomputed
  for k in full.metrics:
    np.testing.assert_array_equal(res.metrics[k], full.metrics[k])
  np.testing.assert_array_equal(res.params["w"][0], full.params["w"][0])
  with pytest.raises(ValueError, match="another sweep"):
    sweep.run(_toy, sweep.grid(weight_decay=[0.0], learning_rate=[0.1]),
              checkpoint_dir=tmp_path, progress=False)


def test_save_load_roundtrip(tmp_path):
  g = sweep.grid(product={"weight_decay": [0.0, 1.0]}, zip={"learning_rate": [0.1, 0.2],
                                                           "seed": [0, 1]})
  res = sweep.run(_toy, g, progress=False)
  res.save(tmp_path / "r.npz")
  back = sweep.SweepResult.load(tmp_path / "r.npz")
  assert back.dims == res.dims and back.shape == res.shape
  for k in res.metrics:
    np.testing.assert_array_equal(back.metrics[k], res.metrics[k])
  np.testing.assert_array_equal(back.params["w"][0], res.params["w"][0])
  np.testing.assert_array_equal(back.sel(seed=1).metrics["noise"], res.sel(seed=1).metrics["noise"])


def test_progress_reports_chunks_and_time_left():
  buf = io.StringIO()
  bar = _progress.Progress(3, 30, after=0.0, stream=buf)
  for i in range(3):
    bar.update(i + 1, 10 * (i + 1))
  lines = buf.getvalue().splitlines()
  assert lines[0].startswith("wdjax.sweep: chunk 1/3, 10/30 runs") and "left" in lines[1]
  assert lines[2].startswith("wdjax.sweep: chunk 3/3, 30/30 runs") and "left" not in lines[2]
  quiet = io.StringIO()
  bar = _progress.Progress(3, 30, after=3600.0, stream=quiet)
  bar.update(1, 10)
  assert quiet.getvalue() == ""


def test_short_sweep_prints_nothing(capsys):
  sweep.run(_toy, sweep.grid(weight_decay=[0.0], learning_rate=[0.1]))
  assert capsys.readouterr().err == ""


@pytest.mark.parametrize("make, match", [
    (lambda: sweep.grid(), "grid is empty"),
    (lambda: sweep.grid(product={"weight_decay": []}), "is empty"),
    (lambda: sweep.grid(zip={"weight_decay": [0, 1], "learning_rate": [0.1]}), "same length"),
    (lambda: sweep.grid(product={"weight_decay": [0]}, zip={"weight_decay": [1]}), "once"),
    (lambda: sweep.grid(seed=[0.5, 1.0]), "integers"),
    (lambda: sweep.grid(weight_decay=[[0.1, 0.2]]), "1-D"),
    (lambda: sweep.grid(weight_decay=[0.1, float("nan")]), "NaN"),
    (lambda: sweep.grid(weight_decay=[0.1, float("inf")]), "infinite"),
    (lambda: sweep.grid(weight_decay=[0.1, -0.1]), "negative"),
    (lambda: sweep.grid(learning_rate=[-1e-3]), "negative"),
    (lambda: sweep.grid(seed=[2**32]), r"outside \[0, 2\*\*32\)"),
    (lambda: sweep.grid(seed=[-1]), r"outside \[0, 2\*\*32\)"),
])
def test_bad_grids(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_bad_run_arguments():
  g = sweep.grid(weight_decay=[0.0], learning_rate=[0.1])
  with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['momentun'\]"):
    sweep.run(_toy, sweep.grid(weight_decay=[0.0], learning_rate=[0.1], momentun=[0.9]))
  with pytest.raises(ValueError, match=r"lacks hyperparameter\(s\) \['learning_rate'\]"):
    sweep.run(_toy, sweep.grid(weight_decay=[0.0]))
  for bad in (0, -1, 1.5):
    with pytest.raises(ValueError, match="chunk_size"):
      sweep.run(_toy, g, chunk_size=bad)
  with pytest.raises(TypeError, match="Grid"):
    sweep.run(_toy, {"weight_decay": [0.0]})


def test_progress_heartbeat_while_waiting():
  buf = io.StringIO()
  bar = _progress.Progress(1, 8, after=0.0, stream=buf, heartbeat=0.2)
  with bar.waiting(0):
    time.sleep(1.5)
  assert "wdjax.sweep: chunk 1/1 running" in buf.getvalue()
  quiet = io.StringIO()
  with _progress.Progress(1, 8, after=0.0, stream=quiet, enabled=False).waiting(0):
    pass
  assert quiet.getvalue() == ""


def test_diverged_epoch_is_the_first_non_finite_epoch_of_any_metric():
  def fn(h, key):
    del key
    e = jnp.arange(5.0)
    vec = jnp.zeros((5, 3)).at[:, 1].set(jnp.where(e >= h["at2"], jnp.inf, 0.0))
    return {"loss": jnp.where(e >= h["at"], jnp.nan, e), "vec": vec}

  res = sweep.run(fn, sweep.grid(at=[1, 9], at2=[3, 9]), progress=False)
  np.testing.assert_array_equal(res.diverged_epoch, [[1, 1], [3, -1]])
  np.testing.assert_array_equal(res.diverged, [[True, True], [True, False]])
  assert res.best("loss") == {"at": 9.0, "at2": 9.0}
  bad = sweep.run(fn, sweep.grid(at=[1], at2=[3]), progress=False)
  with pytest.raises(ValueError, match="every point diverged"):
    bad.best("loss")


def test_checkpoint_refuses_another_training_setup(tmp_path):
  a, b = data.d2l_synthetic(seed=0, n_train=8, n_val=4, dim=3), data.d2l_synthetic(
      seed=1, n_train=8, n_val=4, dim=3)
  make = lambda ds, opt: train.make_train_fn(models.for_dataset("linear", ds), ds,
                                             optimizer=opt, epochs=1)
  g = sweep.grid(weight_decay=[0.0, 0.1], learning_rate=[0.1])
  sweep.run(make(a, "sgd_coupled_l2"), g, checkpoint_dir=tmp_path, progress=False)
  sweep.run(make(a, "sgd_coupled_l2"), g, checkpoint_dir=tmp_path, progress=False)  # resumes
  for other in (make(b, "sgd_coupled_l2"), make(a, "sgdw")):  # other data, other optimizer
    with pytest.raises(ValueError, match="another sweep"):
      sweep.run(other, g, checkpoint_dir=tmp_path, progress=False)


def test_host_built_keys_equal_jax_random_key():
  seeds = np.array([0, 1, 7, 2**31 - 1, 4_000_000_000], np.int64)
  want = np.stack([np.asarray(jax.random.key_data(jax.random.key(np.uint32(s)))) for s in seeds])
  np.testing.assert_array_equal(engine._keys(seeds), want)


def test_training_data_is_placed_once_per_mesh_and_replaced_by_new_data():
  from jax.sharding import Mesh
  ds = _d2l()
  g = sweep.grid(weight_decay=[0.0, 1.0], learning_rate=[0.05])
  make = lambda d: train.make_train_fn(models.for_dataset("linear", d), d, optimizer="sgd_coupled_l2",
                                       epochs=2, batch_size=8)
  mesh = Mesh(np.array(jax.devices()), (engine._MESH_AXIS,))
  first = sweep.run(make(ds), g, progress=False)
  placed = engine._PLACED[mesh][2]
  # another function on the same arrays reuses the device copy: one copy per mesh
  again = sweep.run(make(ds), g, progress=False)
  assert engine._PLACED[mesh][2] is placed
  np.testing.assert_array_equal(again.metrics["val_loss"], first.metrics["val_loss"])
  # new data replaces it, and the sweep trains on the new data
  other = data.d2l_synthetic(seed=1, n_train=16, n_val=8, dim=6)
  res = sweep.run(make(other), g, progress=False)
  assert engine._PLACED[mesh][2] is not placed
  assert not np.allclose(res.metrics["val_loss"], first.metrics["val_loss"])


def test_compiled_programs_live_on_the_function():
  g = sweep.grid(weight_decay=[0.0, 1.0], learning_rate=[0.1])

  def plain(hparams, key):
    return _toy(hparams, key)

  sweep.run(plain, g, progress=False)
  assert len(plain.__dict__["_wdjax_compiled"]) == 1  # a plain function: in its __dict__

  class Declared:  # a TrainFn-like object: programs go to its own `cache`
    def __init__(self):
      self.cache = {}

    def __call__(self, hparams, key):
      return _toy(hparams, key)

  obj = Declared()
  first = sweep.run(obj, g, progress=False)
  assert len(obj.cache) == 1 and "_wdjax_compiled" not in vars(obj)
  again = sweep.run(obj, g, progress=False)
  assert len(obj.cache) == 1
  np.testing.assert_array_equal(again.metrics["train_loss"], first.metrics["train_loss"])


def test_checkpoint_fingerprint_reads_fingerprint_then_signature():
  from wdjax.sweep import store
  g = sweep.grid(weight_decay=[0.0], learning_rate=[0.1])

  def make(**attrs):
    def fn(hparams, key):
      return _toy(hparams, key)
    fn.__dict__.update(attrs)
    return fn

  plain = store.fingerprint(g, 1, 0, make())
  assert store.fingerprint(g, 1, 0, make(fingerprint="a")) != plain
  assert store.fingerprint(g, 1, 0, make(fingerprint="a")) != store.fingerprint(
      g, 1, 0, make(fingerprint="b"))
  # `signature` (older closures) is read when there is no `fingerprint`, and is overridden by it
  assert store.fingerprint(g, 1, 0, make(signature="a")) == store.fingerprint(
      g, 1, 0, make(fingerprint="a"))
  assert store.fingerprint(g, 1, 0, make(signature="b", fingerprint="a")) == store.fingerprint(
      g, 1, 0, make(fingerprint="a"))


def test_damaged_checkpoint_chunk_is_recomputed_with_a_warning_naming_it(tmp_path):
  from wdjax.sweep import store
  g = sweep.grid(weight_decay=np.linspace(0, 1, 4), learning_rate=[0.1])
  first = sweep.run(_toy, g, chunk_size=2, progress=False, checkpoint_dir=tmp_path)
  chunk = tmp_path / "chunk_00001.npz"
  chunk.write_bytes(chunk.read_bytes()[:-40])  # e.g. a copy cut short
  seen = []
  with pytest.warns(store.ChunkWarning, match="chunk_00001.npz"):
    again = sweep.run(_toy, g, chunk_size=2, progress=False, checkpoint_dir=tmp_path,
                      on_chunk=lambda i, n, out: seen.append(i))
  assert seen == [1]  # only the damaged chunk was recomputed
  np.testing.assert_array_equal(again.metrics["train_loss"], first.metrics["train_loss"])


def _mixed(hparams, key):
  """Outputs of every kind the packing must carry: float metrics of two shapes, an int and
  a bool metric, a zero-width one, and nested float/int params."""
  lam, lr = hparams["weight_decay"], hparams["learning_rate"]
  w = lam * jnp.arange(3.0) + lr + jax.random.uniform(key, (3,))
  return {"loss": jnp.stack([lam, lr, lam * lr]), "matrix": jnp.outer(w, w),
          "count": (10 * lam).astype(jnp.int32) + jnp.arange(2, dtype=jnp.int32),
          "flag": lam > 0.5, "none": jnp.zeros((0,)),
          "params": {"w": w, "step": jnp.asarray(7, jnp.int32), "b": {"c": lam * 2}}}


@pytest.mark.parametrize("pack", [True, False])
@pytest.mark.parametrize("chunk_size", [None, 2])
def test_outputs_come_back_packed_one_array_per_dtype_and_unpack_exactly(monkeypatch, pack,
                                                                         chunk_size):
  """The program returns its outputs as one array per dtype (one device-to-host copy per
  chunk); above `_PACK_MAX_BYTES` it returns them as they are. Both give every leaf its
  shape, dtype and values, the same as calling the function point by point."""
  if not pack:
    monkeypatch.setattr(engine, "_PACK_MAX_BYTES", 0)
  g = sweep.grid(weight_decay=[0.0, 0.25, 1.0], learning_rate=[0.1, 0.3])
  fn = lambda hp, key: _mixed(hp, key)  # a fresh function: its own program and layout
  res = sweep.run(fn, g, progress=False, chunk_size=chunk_size, seed=3)
  (prog, layouts), = fn.__dict__["_wdjax_compiled"].values()
  assert [l["packed"] for l in layouts.values()] == [pack]
  for i, lam in enumerate([0.0, 0.25, 1.0]):
    for j, lr in enumerate([0.1, 0.3]):
      want = _mixed({"weight_decay": jnp.float32(lam), "learning_rate": jnp.float32(lr)},
                    jax.random.key(3))
      want_params = want.pop("params")
      for k, v in want.items():
        got = res.metrics[k][i, j]
        assert got.dtype == v.dtype and got.shape == v.shape, k
        np.testing.assert_allclose(got, v, rtol=1e-6, err_msg=k)
      for path, v in jax.tree_util.tree_leaves_with_path(want_params):
        got = functools.reduce(lambda t, p: t[p.key], path, res.params)[i, j]
        assert got.dtype == v.dtype and got.shape == v.shape
        np.testing.assert_allclose(got, v, rtol=1e-6)


def test_hyperparameters_travel_as_one_matrix_in_grid_order():
  """Each column of the (points, names) matrix reaches the training function under its own
  name, whatever the order the grid lists them in."""
  g = sweep.grid(momentum=[0.5, 0.9], learning_rate=[0.1, 0.2, 0.3], weight_decay=[2.0])
  res = sweep.run(lambda hp, key: {"hp": jnp.stack([hp["learning_rate"], hp["momentum"],
                                                    hp["weight_decay"]])},
                  g, progress=False)
  got = res.metrics["hp"]
  np.testing.assert_allclose(got[..., 0], np.broadcast_to([[0.1, 0.2, 0.3]], (2, 3))[..., None],
                             rtol=1e-6)
  np.testing.assert_allclose(got[..., 1], np.broadcast_to([[0.5], [0.9]], (2, 3))[..., None])
  np.testing.assert_allclose(got[..., 2], 2.0)


def test_shared_key_is_placed_once_per_seed():
  """A grid without a "seed" axis passes one key, placed on the devices once per seed and
  mesh, not transferred with every call; another seed gets its own."""
  g = sweep.grid(weight_decay=[0.0, 1.0], learning_rate=[0.1])
  sweep.run(_toy, g, progress=False, seed=11)
  placed = {k: v for k, v in engine._SHARED_KEYS.items() if k[0] == 11}
  assert len(placed) == 1
  (k, key), = placed.items()
  np.testing.assert_array_equal(np.asarray(key), engine._keys(np.asarray([11]))[0])
  sweep.run(_toy, g, progress=False, seed=11)
  assert engine._SHARED_KEYS[k] is key
  sweep.run(_toy, g, progress=False, seed=12)
  assert any(k2[0] == 12 for k2 in engine._SHARED_KEYS)


def test_small_hyperparameter_matrices_are_placed_once_per_content(monkeypatch):
  """A chunk's hyperparameter matrix goes to the devices once per content: the same values
  from another grid object reuse the placed copy, other values get their own, and the
  cache keeps the `_PLACED_POINTS_MAX` most recently used."""
  import collections
  monkeypatch.setattr(engine, "_PLACED_POINTS", collections.OrderedDict())
  monkeypatch.setattr(engine, "_PLACED_POINTS_MAX", 2)
  run = lambda lams: sweep.run(_toy, sweep.grid(weight_decay=lams, learning_rate=[0.1]),
                               progress=False)
  run([0.0, 1.0])
  (first,) = engine._PLACED_POINTS.values()
  again = run([0.0, 1.0])
  assert list(engine._PLACED_POINTS.values()) == [first]
  other = run([0.0, 2.0])
  np.testing.assert_allclose(other.params["w"][0][:, 0, 0], [0.0, 2.0])
  np.testing.assert_allclose(again.params["w"][0][:, 0, 0], [0.0, 1.0])
  run([0.0, 3.0])  # a third content: the least recently used (the first) goes
  assert len(engine._PLACED_POINTS) == 2
  assert all(v is not first for v in engine._PLACED_POINTS.values())


def test_each_trace_unpacks_with_its_own_layout(monkeypatch):
  """One function swept with chunk sizes on both sides of `_PACK_MAX_BYTES` has two traces
  of its program, one packed and one not; a call that reuses the older trace must be
  unpacked with that trace's layout (jit does not trace again), whatever ran in between."""
  monkeypatch.setattr(engine, "_PACK_MAX_BYTES", 200)

  def fn(hp, key):
    lam = hp["weight_decay"]
    return {"a": lam * jnp.arange(5.0), "m": lam * jnp.ones((3, 3))}

  g = sweep.grid(weight_decay=np.arange(8.0), learning_rate=[0.1])
  want = {"a": np.arange(8.0)[:, None, None] * np.arange(5.0),
          "m": np.broadcast_to(np.arange(8.0)[:, None, None, None], (8, 1, 3, 3))}
  for chunk_size in (8, 2, 8, 2):   # 56 bytes a point: 8 points > 200, not packed; 2 packed
    res = sweep.run(fn, g, progress=False, chunk_size=chunk_size)
    for k, v in want.items():
      np.testing.assert_allclose(res.metrics[k].reshape(v.shape), v, err_msg=f"{k} {chunk_size}")
      assert res.metrics[k].shape == (8, 1) + v.shape[2:], (k, chunk_size)
  layouts = list(fn.__dict__["_wdjax_compiled"].values())[0][1]
  assert sorted(l["packed"] for l in layouts.values()) == [False, True]


def test_divergence_check_is_silent_on_overflowing_sums():
  """`SweepResult`'s all-finite shortcut sums each metric: a finite metric whose sum
  overflows (float16), or one holding both infinities, takes the exact path without a
  warning (the suite turns warnings into errors) and is marked exactly."""
  from wdjax.sweep.result import _diverged_epoch
  big = np.full((2, 3), 40000.0, np.float16)        # finite; its sum overflows float16
  np.testing.assert_array_equal(_diverged_epoch({"m": big}, (2,)), [-1, -1])
  both = np.array([[1.0, np.inf, -np.inf], [1.0, 2.0, 3.0]])
  np.testing.assert_array_equal(_diverged_epoch({"m": both}, (2,)), [1, -1])


@pytest.mark.parametrize("pack", [True, False])
def test_outputs_written_to_pinned_host_memory_equal_the_default(monkeypatch, pack):
  """`_OUTPUT_MEMORY_KIND = "pinned_host"` (XLA copies the results back inside the
  program; the default on accelerators) gives the same results as outputs left in device
  memory (None), packed or not, over every device; it is a program of its own."""
  if not pack:
    monkeypatch.setattr(engine, "_PACK_MAX_BYTES", 0)
  g = sweep.grid(weight_decay=[0.0, 0.25, 1.0], learning_rate=[0.1, 0.3])
  fn = lambda hp, key: _mixed(hp, key)
  monkeypatch.setattr(engine, "_OUTPUT_MEMORY_KIND", None)
  want = sweep.run(fn, g, progress=False, seed=3)
  monkeypatch.setattr(engine, "_OUTPUT_MEMORY_KIND", "pinned_host")
  got = sweep.run(fn, g, progress=False, seed=3, chunk_size=4)
  assert len(fn.__dict__["_wdjax_compiled"]) == 2
  for k in want.metrics:
    np.testing.assert_array_equal(got.metrics[k], want.metrics[k], err_msg=k)
  chex.assert_trees_all_equal(got.params, want.params)


def test_output_memory_auto_is_pinned_host_on_accelerators_only(monkeypatch):
  """"auto" (the default) resolves per mesh: pinned host memory on GPUs that list it, in a
  single process; the devices' own memory on CPUs, TPUs, GPUs without it and across
  processes; an explicit kind is kept as given."""
  import types
  from jax.sharding import Mesh, NamedSharding, PartitionSpec

  def sharding_on(platform, kinds):
    dev = types.SimpleNamespace(
        platform=platform,
        addressable_memories=lambda: [types.SimpleNamespace(kind=k) for k in kinds])
    mesh = types.SimpleNamespace(devices=np.array([dev], dtype=object))
    return types.SimpleNamespace(mesh=mesh)

  assert engine._OUTPUT_MEMORY_KIND == "auto"
  cpu = NamedSharding(Mesh(np.array(jax.devices("cpu")[:1]), ("x",)), PartitionSpec("x"))
  assert engine._output_memory(cpu) is None
  gpu = sharding_on("gpu", ["device", "pinned_host", "unpinned_host"])
  assert engine._output_memory(gpu) == "pinned_host"
  assert engine._output_memory(sharding_on("gpu", ["device"])) is None
  assert engine._output_memory(sharding_on("tpu", ["device", "pinned_host"])) is None  # unmeasured
  monkeypatch.setattr(jax, "process_count", lambda: 2)  # several processes: all-gathered
  assert engine._output_memory(gpu) is None             # on the devices, so device memory
  monkeypatch.undo()
  monkeypatch.setattr(engine, "_OUTPUT_MEMORY_KIND", None)
  assert engine._output_memory(gpu) is None
  monkeypatch.setattr(engine, "_OUTPUT_MEMORY_KIND", "pinned_host")
  assert engine._output_memory(cpu) == "pinned_host"

"""Training: exact ridge and lasso solutions, metrics, every named optimizer, bad input."""

import functools

import jax
import numpy as np
import pytest
from flax import nnx
from sklearn.linear_model import Lasso, Ridge

import wdjax
from wdjax import data, models, optimizers, sweep, train


@functools.lru_cache(maxsize=None)
def _tiny():
  return data.d2l_synthetic(seed=1, n_train=12, n_val=8, dim=5)


@functools.lru_cache(maxsize=None)
def _digits():
  ds = data.sklearn_dataset("digits", seed=0, test_fraction=0.1)
  return ds._replace(x_train=ds.x_train[:64], y_train=ds.y_train[:64])


def test_coupled_l2_reaches_sklearn_ridge(x64):
  """Full-batch GD on ½ mean (ŷ−y)² + (λ/2)‖w‖², bias unpenalized = Ridge(alpha=n·λ)."""
  del x64
  ds = data.d2l_synthetic(seed=0)
  n = ds.x_train.shape[0]
  fn = train.make_train_fn(models.for_dataset("linear", ds), ds, optimizer="sgd_coupled_l2",
                           epochs=3000, return_params=True)
  lams = np.array([2.0, 4.0, 8.0])
  # η = 0.06 < 2/L with L ≈ λ + ‖X‖²/n ≈ 26 for λ=8. The slowest direction mixes the
  # unpenalized bias with the features (n < d lets X nearly fit a constant), with a
  # curvature that shrinks with λ: at λ=2, 3000 steps leave an error of ~1e-15.
  res = sweep.run(fn, sweep.grid(weight_decay=lams, learning_rate=[0.06]), progress=False)
  x, y = np.asarray(ds.x_train), np.asarray(ds.y_train)
  for i, lam in enumerate(lams):
    ref = Ridge(alpha=n * lam, fit_intercept=True, solver="svd").fit(x, y)
    p = res.isel(weight_decay=i, learning_rate=0).params["linear"]
    np.testing.assert_allclose(p["kernel"][:, 0], ref.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(p["bias"][0], ref.intercept_, rtol=0, atol=1e-10)
    pred = x @ ref.coef_ + ref.intercept_
    want = 0.5 * np.mean((pred - y) ** 2)
    got = res.isel(weight_decay=i, learning_rate=0).metrics["train_loss"][-1]
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_proximal_l1_reaches_sklearn_lasso(x64):
  """ISTA on ½ mean (ŷ−y)² + λ‖w‖₁ (bias unpenalized) = Lasso(alpha=λ), exact zeros included."""
  del x64
  ds = data.sklearn_dataset("diabetes", seed=0, standardize_target=True)
  fn = train.make_train_fn(models.for_dataset("linear", ds), ds, optimizer="proximal_l1",
                           epochs=4000, return_params=True)
  lams = np.array([0.01, 0.05])
  res = sweep.run(fn, sweep.grid(weight_decay=lams, learning_rate=[0.1]), progress=False)
  x, y = np.asarray(ds.x_train), np.asarray(ds.y_train)
  for i, lam in enumerate(lams):
    ref = Lasso(alpha=lam, fit_intercept=True, tol=1e-14, max_iter=100_000).fit(x, y)
    p = res.isel(weight_decay=i, learning_rate=0).params["linear"]
    np.testing.assert_allclose(p["kernel"][:, 0], ref.coef_, rtol=0, atol=1e-7)
    np.testing.assert_allclose(p["bias"][0], ref.intercept_, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(p["kernel"][:, 0] == 0, ref.coef_ == 0)
    assert res.isel(weight_decay=i, learning_rate=0).metrics["zero_fraction"][-1] == np.mean(
        ref.coef_ == 0)


def test_proximal_gives_exact_zeros_subgradient_does_not():
  ds = _tiny()
  hp = {"learning_rate": 0.05, "weight_decay": 0.5}
  out = {}
  for name in ("proximal_l1", "sgd_coupled_l1"):
    fn = train.make_train_fn(models.for_dataset("linear", ds), ds, optimizer=name, epochs=200)
    out[name] = jax.jit(fn)(hp, jax.random.key(0))["zero_fraction"][-1]
  assert out["proximal_l1"] == 1.0
  assert out["sgd_coupled_l1"] < 0.5


def test_metrics_shapes_and_values():
  ds = _digits()
  fn = train.make_train_fn(models.for_dataset("mlp", ds, widths=(8,)), ds, optimizer="adamw",
                           epochs=3, batch_size=16, return_params=True)
  m = jax.jit(fn)({"learning_rate": 1e-2, "weight_decay": 1e-2}, jax.random.key(0))
  per_epoch = {"train_loss", "val_loss", "test_loss", "train_acc", "val_acc", "test_acc",
               "decayed_norm", "zero_fraction"}
  assert set(m) == per_epoch | {"params"}
  for k in per_epoch:
    assert m[k].shape == (3,), k
  # decayed_norm is the norm of the kernels of the final params (biases excluded).
  kernels = [m["params"]["layers"][i]["kernel"] for i in (0, 1)]
  want = np.sqrt(sum(np.sum(np.square(np.asarray(k, np.float64))) for k in kernels))
  np.testing.assert_allclose(m["decayed_norm"][-1], want, rtol=1e-5)
  # Losses/accuracies recomputed from the final params with the model itself.
  model = nnx.merge(nnx.graphdef(models.for_dataset("mlp", ds, widths=(8,))(rngs=nnx.Rngs(0))),
                    m["params"])
  logits = model(ds.x_val)
  np.testing.assert_allclose(m["val_acc"][-1], np.mean(np.argmax(logits, -1) == ds.y_val))
  logp = jax.nn.log_softmax(logits)
  want = -np.mean(np.take_along_axis(np.asarray(logp), np.asarray(ds.y_val)[:, None], 1))
  np.testing.assert_allclose(m["val_loss"][-1], want, rtol=1e-5)


def test_running_train_loss_option():
  ds = _tiny()
  fn = train.make_train_fn(models.for_dataset("linear", ds), ds, optimizer="sgd", epochs=2,
                           eval_train=False)
  m = jax.jit(fn)({"learning_rate": 0.1}, jax.random.key(0))
  assert m["train_loss"].shape == (2,) and "train_loss" in m


def test_unrolled_loops_give_the_same_run():
  """unroll=True (straight-line epochs and steps, for GPUs) and unroll=4 are the same
  computation as loops (the default); unroll enters the fingerprint, so sweep
  checkpoints of the two are not mixed."""
  ds = _tiny()
  make = functools.partial(train.make_train_fn, models.for_dataset("linear", ds), ds,
                           optimizer="sgd_coupled_l2", epochs=2, batch_size=len(ds.x_train) // 2)
  hp = {"learning_rate": 0.1, "weight_decay": 0.01}
  loops, flat, four = make(unroll=1), make(unroll=True), make(unroll=4)
  a = jax.jit(loops)(hp, jax.random.key(0))
  for other in (flat, four):
    b = jax.jit(other)(hp, jax.random.key(0))
    for k in a:
      np.testing.assert_allclose(b[k], a[k], rtol=1e-6, err_msg=k)
    assert loops.fingerprint != other.fingerprint
  assert make().fingerprint == loops.fingerprint  # the default: loops
  for bad in (0, 1.5, "yes"):
    with pytest.raises(ValueError, match="unroll"):
      make(unroll=bad)


@pytest.mark.parametrize("dataset, size", [("digits", 7), ("tiny", 5), ("tiny", 4)])
def test_chunked_evaluation_equals_the_whole_split(dataset, size):
  """The per-epoch evaluation in chunks of `eval_batch_size` (with a remainder chunk, or
  an exact multiple) gives the whole split's loss and accuracy; the size enters the
  fingerprint only where an evaluated split is larger than it."""
  ds = _digits() if dataset == "digits" else _tiny()
  model = (models.for_dataset("mlp", ds, widths=(8,)) if dataset == "digits"
           else models.for_dataset("linear", ds))
  make = functools.partial(train.make_train_fn, model, ds, optimizer="sgd", epochs=2,
                           batch_size=4)
  whole, chunked = make(eval_batch_size=None), make(eval_batch_size=size)
  sizes = [len(ds.x_train), len(ds.x_val)] + ([] if ds.x_test is None else [len(ds.x_test)])
  assert all(n > size and bool(n % size) == (size != 4) for n in sizes[:2])
  hp = {"learning_rate": 0.05}
  key = jax.random.key(0)
  # the chunks ran: one more loop (lax.map) per chunked split in the program
  loops = lambda fn: str(jax.make_jaxpr(fn)(hp, key)).count("scan[")
  assert loops(chunked) > loops(whole)
  a, b = jax.jit(whole)(hp, key), jax.jit(chunked)(hp, key)
  assert set(a) == set(b)
  for k in a:
    # the same numbers summed in another order: float32 rounding
    np.testing.assert_allclose(b[k], a[k], rtol=1e-6, atol=1e-7, err_msg=k)
  assert whole.fingerprint != chunked.fingerprint
  # chunks at least as large as every split: the whole-split program and fingerprint
  assert make(eval_batch_size=max(sizes)).fingerprint == whole.fingerprint


def test_eval_batch_size_auto_fingerprint_and_bad_input(monkeypatch):
  ds = _tiny()   # 12 training, 8 validation examples
  make = functools.partial(train.make_train_fn, models.for_dataset("linear", ds), ds,
                           optimizer="sgd", epochs=1)
  # only evaluated splits count: with eval_train=False the 12 training examples are not
  assert (make(eval_batch_size=9, eval_train=False).fingerprint
          == make(eval_batch_size=None, eval_train=False).fingerprint)
  assert make(eval_batch_size=9).fingerprint != make(eval_batch_size=None).fingerprint
  # "auto": 256 on a CPU, the whole split on an accelerator
  big = functools.partial(make, eval_batch_size="auto")
  assert train.make_train_fn.__kwdefaults__["eval_batch_size"] == "auto"
  ds_big = ds._replace(x_train=np.tile(ds.x_train, (30, 1)), y_train=np.tile(ds.y_train, 30))
  make_big = functools.partial(train.make_train_fn, models.for_dataset("linear", ds_big),
                               ds_big, optimizer="sgd", epochs=1)
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")   # (the tests run on GPUs too)
  assert make_big(eval_batch_size="auto").fingerprint == make_big(eval_batch_size=256).fingerprint
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert make_big(eval_batch_size="auto").fingerprint == make_big(eval_batch_size=None).fingerprint
  monkeypatch.undo()
  assert big().fingerprint == make(eval_batch_size=None).fingerprint   # no split above 256
  for bad in (0, -3, 2.5, True, "yes"):
    with pytest.raises(ValueError, match="eval_batch_size"):
      make(eval_batch_size=bad)


def test_a_loss_that_is_not_a_mean_is_refused_where_chunks_apply(monkeypatch):
  import warnings
  ds = _digits()   # 360 validation examples
  make = functools.partial(train.make_train_fn, models.for_dataset("mlp", ds, widths=(8,)),
                           ds, optimizer="sgd", epochs=1, batch_size=32)
  total = lambda pred, y: 64 * train.cross_entropy(pred, y) * y.shape[0]   # a sum
  with pytest.raises(ValueError, match="not the mean.*eval_batch_size=None"):
    make(loss=total, eval_batch_size=16)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    whole = make(loss=total, eval_batch_size=None)   # the whole split: any loss, silently
    make(loss=lambda p, y: 2.0 * train.cross_entropy(p, y), eval_batch_size=16)   # a mean
  # the default keeps working on whole splits, and says why (pointing at the caller)
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  with pytest.warns(UserWarning, match="not the mean.*whole splits") as rec:
    auto = make(loss=total)
  assert rec[0].filename == __file__
  assert auto.fingerprint == whole.fingerprint


def test_fixed_module_vs_factory_init():
  ds = _tiny()
  hp = {"learning_rate": 0.01, "weight_decay": 0.1}
  fixed = train.make_train_fn(models.LinearRegression(5, rngs=nnx.Rngs(0)), ds,
                              optimizer="sgd_coupled_l2", epochs=2)
  fac = train.make_train_fn(models.for_dataset("linear", ds), ds, optimizer="sgd_coupled_l2",
                            epochs=2)
  a, b = (jax.jit(fixed)(hp, jax.random.key(k))["val_loss"] for k in (0, 1))
  np.testing.assert_array_equal(a, b)  # full batch, same init: the key changes nothing
  c, d = (jax.jit(fac)(hp, jax.random.key(k))["val_loss"] for k in (0, 1))
  assert not np.allclose(c, d)


def test_dropout_training_is_a_function_of_the_key():
  ds = _digits()
  fn = jax.jit(train.make_train_fn(models.for_dataset("mlp", ds, widths=(8,), dropout=0.5),
                                   ds, optimizer="sgd", epochs=2, batch_size=32))
  hp = {"learning_rate": 0.1}
  a, b, c = (fn(hp, jax.random.key(k))["train_loss"] for k in (0, 0, 1))
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)


@pytest.mark.parametrize("name", optimizers.names())
def test_every_named_optimizer_trains(name):
  ds = _tiny()
  fn = train.make_train_fn(models.for_dataset("linear", ds), ds, optimizer=name, epochs=30)
  assert fn.required_hparams == ("learning_rate",)
  hp = {"learning_rate": 0.05}
  # the bases take λ only with a coupling; CPR has a bound instead of a λ
  if name not in ("sgd", "adam") and "weight_decay" in fn.hparam_names:
    hp["weight_decay"] = 1e-3
  m = jax.jit(fn)(hp, jax.random.key(0))
  assert np.all(np.isfinite(m["train_loss"]))
  assert m["train_loss"][-1] < m["train_loss"][0]


def test_raw_uint32_key_equals_typed_key():
  ds = _tiny()
  fn = jax.jit(train.make_train_fn(models.for_dataset("linear", ds), ds, optimizer="sgd",
                                   epochs=2, batch_size=4))
  hp = {"learning_rate": 0.1}
  np.testing.assert_array_equal(fn(hp, jax.random.PRNGKey(3))["val_loss"],
                                fn(hp, jax.random.key(3))["val_loss"])


def test_bad_input():
  ds = _tiny()
  make = functools.partial(train.make_train_fn, models.for_dataset("linear", ds), ds)
  fn = make(optimizer="adamw", epochs=1)
  with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['wd'\]"):
    fn({"learning_rate": 0.1, "wd": 0.1}, jax.random.key(0))
  with pytest.raises(ValueError, match=r"missing hyperparameter\(s\) \['learning_rate'\]"):
    fn({"weight_decay": 0.1}, jax.random.key(0))
  with pytest.raises(ValueError, match="epochs"):
    make(optimizer="sgd", epochs=0)
  with pytest.raises(ValueError, match="batch_size"):
    make(optimizer="sgd", epochs=1, batch_size=100)
  with pytest.raises(ValueError, match="unknown optimizer"):
    make(optimizer="lbfgs", epochs=1)
  with pytest.raises(ValueError, match="has no argument"):
    optimizers.get("adamw", momentum=0.9)
  with pytest.raises(TypeError, match="report_mask"):
    make(optimizer="adamw", epochs=1, mask=None)
  with pytest.raises(ValueError, match="without a coupling"):  # λ would be ignored
    jax.jit(make(optimizer="sgd", epochs=1))({"learning_rate": 0.1, "weight_decay": 0.1},
                                             jax.random.key(0))
  with pytest.raises(TypeError, match="model"):
    train.make_train_fn(3, ds, optimizer="sgd", epochs=1)
  bad = _digits()._replace(num_classes=5)
  with pytest.raises(ValueError, match="labels"):
    train.make_train_fn(models.for_dataset("softmax", _digits()), bad, optimizer="sgd", epochs=1)


def test_data_argument_replaces_the_closed_over_dataset():
  """sweep.run passes train_fn.data as an argument (not a compiled-in constant)."""
  a, b = data.d2l_synthetic(seed=1, n_train=12, n_val=8, dim=5), data.d2l_synthetic(
      seed=2, n_train=12, n_val=8, dim=5)
  make = lambda ds: train.make_train_fn(models.LinearRegression(5, rngs=nnx.Rngs(0)), ds,
                                        optimizer="sgd", epochs=2, batch_size=4)
  fa, fb = make(a), make(b)
  assert set(fa.data) == {"train", "val"}
  hp, key = {"learning_rate": 0.1}, jax.random.key(0)
  run = jax.jit(fa)
  swapped = jax.jit(fa)(hp, key, fb.data)
  for k, v in jax.jit(fb)(hp, key).items():
    np.testing.assert_allclose(swapped[k], v, rtol=1e-6)
  np.testing.assert_array_equal(run(hp, key)["val_loss"], jax.jit(fa)(hp, key, fa.data)["val_loss"])


def test_hparam_names_are_declared():
  """Named optimizers declare their hyperparameters; a user's own builder is not probed."""
  import optax
  ds = _tiny()
  fn = train.make_train_fn(models.for_dataset("linear", ds), ds,
                           optimizer=optimizers.get("adamw", scale_by="schedule"), epochs=1)
  assert fn.hparam_names == ("b1", "b2", "eps", "learning_rate", "weight_decay")
  assert "adamw(scale_by='schedule')" in fn.fingerprint
  # Static options change the fingerprint (sweep checkpoints must not mix them).
  other = train.make_train_fn(models.for_dataset("linear", ds), ds, optimizer="adamw", epochs=1)
  assert other.fingerprint != fn.fingerprint
  dyn = lambda h: optax.sgd(**h)
  fn = train.make_train_fn(models.for_dataset("linear", ds), ds, optimizer=dyn, epochs=1)
  assert fn.hparam_names is None and fn.required_hparams == ()
  assert np.isfinite(jax.jit(fn)({"learning_rate": 0.1}, jax.random.key(0))["val_loss"]).all()


def test_named_optimizer_is_the_python_preset():
  """make_train_fn(optimizer="sgdw") runs exactly wdjax.sgdw (one definition, one name)."""
  ds = _tiny()
  model = models.for_dataset("linear", ds)
  hp = {"learning_rate": 0.05, "weight_decay": 0.01, "momentum": 0.5}
  by_name = train.make_train_fn(model, ds, optimizer="sgdw", epochs=3)
  by_fn = train.make_train_fn(model, ds, epochs=3, optimizer=lambda h: wdjax.sgdw(
      h["learning_rate"], momentum=h["momentum"], weight_decay=h["weight_decay"]))
  key = jax.random.key(0)
  np.testing.assert_array_equal(jax.jit(by_name)(hp, key)["val_loss"],
                                jax.jit(by_fn)(hp, key)["val_loss"])


@pytest.mark.parametrize("n", [1, 2, 5, 20, train.SMALL_SHUFFLE, train.SMALL_SHUFFLE + 1])
def test_permutation_is_a_permutation(n):
  keys = jax.random.split(jax.random.key(0), 50)
  perms = np.asarray(jax.jit(jax.vmap(lambda k: train.permutation(k, n)))(keys))
  np.testing.assert_array_equal(np.sort(perms, axis=1), np.broadcast_to(np.arange(n), perms.shape))


def test_small_permutation_is_uniform():
  """All 6 permutations of 3 items appear 1/6 of the time (6000 draws: 5 sigma = 144)."""
  keys = jax.random.split(jax.random.key(1), 6000)
  perms = np.asarray(jax.jit(jax.vmap(lambda k: train.permutation(k, 3)))(keys))
  _, counts = np.unique(perms, axis=0, return_counts=True)
  assert len(counts) == 6
  assert np.all(np.abs(counts - 1000) < 5 * np.sqrt(6000 * (1 / 6) * (5 / 6)))

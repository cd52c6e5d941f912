"""make_train_fn(track=...): the recorded dynamics equal a NumPy replay of the same steps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import wdjax
from wdjax import data, models, sweep, tracking, train

DS = data.d2l_synthetic(seed=1, n_train=16, n_val=8, dim=6)


def _model():
  return models.MLP(6, (5,), 1, rngs=nnx.Rngs(3))


def _replay(lr, lam, steps):
  """The same full-batch AdamW steps in a Python loop; the weights after every step."""
  model = _model()
  params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  graphdef = nnx.split(model, nnx.Param, ...)[0]
  tx = wdjax.adamw(lr, weight_decay=lam)
  state = tx.init(params)

  def loss(p):
    pred = nnx.merge(graphdef, p)(DS.x_train)[:, 0]
    return 0.5 * jnp.mean((pred - DS.y_train) ** 2)

  history = [params]
  for _ in range(steps):
    u, state = tx.update(jax.grad(loss)(params), state, params)
    params = optax.apply_updates(params, u)
    history.append(params)
  return history


def _kernel(p, i):
  return np.asarray(p["layers"][i]["kernel"], np.float64)


def test_tracked_quantities_equal_a_numpy_replay():
  steps, every = 6, 2
  fn = train.make_train_fn(_model(), DS, optimizer="adamw", epochs=steps, shuffle=False,
                           track=list(tracking.QUANTITIES), track_every=every)
  hp = {"learning_rate": 0.05, "weight_decay": 0.3}
  m = jax.jit(fn)(hp, jax.random.key(0))
  assert fn.track_steps == (2, 4, 6)
  hist = _replay(0.05, 0.3, steps)
  for i, name in ((0, "layers/0/kernel"), (1, "layers/1/kernel")):
    w = [_kernel(p, i) for p in hist]
    rec = [(w[s - 1], w[s]) for s in fn.track_steps]
    cos = [np.sum(a * b, 0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)) for a, b in rec]
    want = {
        "weight_norm": [np.linalg.norm(b) for a, b in rec],
        "update_norm": [np.linalg.norm(b - a) for a, b in rec],
        "relative_update": [np.linalg.norm(b - a) / np.linalg.norm(a) for a, b in rec],
        # per-neuron angles (columns of a Flax kernel), root mean square
        "angular_update": [np.sqrt(np.mean(np.arccos(np.clip(c, -1, 1)) ** 2)) for c in cos],
        "spectral_norm": [np.linalg.svd(b, compute_uv=False)[0] for a, b in rec],
        "stable_rank": [np.sum(b ** 2) / np.linalg.svd(b, compute_uv=False)[0] ** 2 for a, b in rec],
        "linf_bound": [0.3 * np.abs(b).max() for a, b in rec],
        "distance_to_init": [np.linalg.norm(b - w[0]) for a, b in rec],
        "zero_fraction": [np.mean(b == 0) for a, b in rec],
    }
    for q, ref in want.items():
      # float32 training vs a float32 replay: rounding only; the arccos reference itself
      # resolves angles to ~1e-4 rad in float32-rounded cosines, hence its looser bound
      tol = 3e-3 if q == "angular_update" else 2e-5
      np.testing.assert_allclose(m[f"track/{q}/{name}"], ref, rtol=tol, atol=1e-6, err_msg=q)
  assert "track/weight_norm/layers/0/bias" not in m    # biases are not reported by default


def test_tracking_in_a_sweep_equals_single_runs_and_leaves_losses_unchanged():
  fn = train.make_train_fn(models.for_dataset("linear", DS), DS, optimizer="sgd_l2", epochs=3,
                           batch_size=4, track=tracking.DEFAULT, track_every=5)
  plain = train.make_train_fn(models.for_dataset("linear", DS), DS, optimizer="sgd_l2",
                              epochs=3, batch_size=4)
  grid = sweep.grid(product={"weight_decay": [0.0, 1.0], "learning_rate": [0.05]})
  res = sweep.run(fn, grid)
  key = jax.random.key(0)
  for i, lam in enumerate((0.0, 1.0)):
    one = jax.jit(fn)({"weight_decay": lam, "learning_rate": 0.05}, key)
    for k in ("track/angular_update/linear/kernel", "track/weight_norm/linear/kernel"):
      np.testing.assert_allclose(res.metrics[k][i, 0], one[k], rtol=1e-6)
    base = jax.jit(plain)({"weight_decay": lam, "learning_rate": 0.05}, key)
    np.testing.assert_array_equal(one["val_loss"], base["val_loss"])
  assert res.metrics["track/weight_norm/linear/kernel"].shape == (2, 1, 2)   # 12 steps // 5
  assert fn.fingerprint != plain.fingerprint


def test_track_errors():
  def make(optimizer="sgd_l2", **kw):
    return train.make_train_fn(models.for_dataset("linear", DS), DS, optimizer=optimizer,
                               epochs=2, **kw)
  with pytest.raises(ValueError, match="unknown quantity \\['angle'\\]"):
    make(track=["angle"])
  with pytest.raises(ValueError, match="track_every"):
    make(track=["weight_norm"], track_every=0)
  with pytest.raises(ValueError, match="exceeds the 2 optimizer steps"):
    make(track=["weight_norm"], track_every=3)
  with pytest.raises(ValueError, match="selects no leaf"):
    make(track=["weight_norm"], report_mask=lambda p: jax.tree.map(lambda _: False, p))
  with pytest.raises(ValueError, match="weight_decay"):
    make(track=["linf_bound"], optimizer="sgd")({"learning_rate": 0.1}, jax.random.key(0))


@pytest.mark.parametrize("batch_size", [4, None])   # 4 steps per epoch; full batch: 1
def test_per_epoch_default_equals_the_in_loop_branch(batch_size):
  """The default interval (once per epoch, recorded outside the step loop) records what
  the in-loop branch records at the same steps, and trains identically."""
  make = lambda **kw: train.make_train_fn(models.for_dataset("linear", DS), DS,
                                          optimizer="adamw", epochs=4, batch_size=batch_size,
                                          track=tracking.DEFAULT, **kw)
  per_epoch, branch = make(), make(track_every=2 * (16 // (batch_size or 16)))
  hp, key = {"learning_rate": 0.05, "weight_decay": 0.3}, jax.random.key(0)
  a, b = jax.jit(per_epoch)(hp, key), jax.jit(branch)(hp, key)
  assert per_epoch.track_steps[1::2] == branch.track_steps
  for k in b:
    if k.startswith("track/"):
      np.testing.assert_allclose(a[k][1::2], b[k], rtol=1e-6, err_msg=k)
    else:
      np.testing.assert_allclose(a[k], b[k], rtol=1e-6, err_msg=k)

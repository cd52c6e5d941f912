"""Hypergradients against central finite differences, and the gradient-based λ search."""

import jax
import numpy as np
import pytest
from sklearn.datasets import load_diabetes

from wdjax import data, models, train, tune


@pytest.fixture(scope="module")
def d2l_fn():
  ds = data.d2l_synthetic(seed=0, dim=20, n_train=20, n_val=50)
  return train.make_train_fn(models.for_dataset("linear", ds), ds,
                             optimizer="sgd_coupled_l2", epochs=20)


def test_hypergradient_matches_finite_differences(d2l_fn, x64):
  key = jax.random.key(0)
  h = {"learning_rate": 0.05, "weight_decay": 0.5}
  v, g = tune.hypergradient(d2l_fn, h, key, wrt=("weight_decay", "learning_rate"))
  eps = 1e-4
  for name in ("weight_decay", "learning_rate"):
    up = dict(h, **{name: h[name] * np.exp(eps)})
    dn = dict(h, **{name: h[name] * np.exp(-eps)})
    fd = (float(d2l_fn(up, key)["val_loss"][-1]) - float(d2l_fn(dn, key)["val_loss"][-1])) / (2 * eps)
    np.testing.assert_allclose(float(g[name]), fd, rtol=1e-3)
  np.testing.assert_allclose(float(v), float(d2l_fn(h, key)["val_loss"][-1]), rtol=1e-6)


def test_search_improves_validation_loss(d2l_fn):
  key = jax.random.key(1)
  h0 = {"learning_rate": 0.05, "weight_decay": 1e-3}
  res = tune.search(d2l_fn, h0, key, steps=15, learning_rate=0.5)
  assert res.best_value < 0.8 * res.values[0]
  assert res.best["weight_decay"] > h0["weight_decay"]  # D2L overfits: more decay helps
  assert res.values.shape == (15,) and res.trajectory["weight_decay"].shape == (15,)


def test_lasso_implicit_hypergradient_matches_finite_differences(x64):
  X, y = load_diabetes(return_X_y=True)
  X = (X - X.mean(0)) / X.std(0)
  y = (y - y.mean()) / y.std()
  Xt, yt, Xv, yv = X[:300], y[:300], X[300:], y[300:]
  for lam in (0.01, 0.05):
    v, g, w = tune.lasso_hypergradient(Xt, yt, Xv, yv, lam)
    assert 0 < np.count_nonzero(w) < X.shape[1]
    h = 1e-6 * lam  # small enough that the support does not change
    vp = tune.lasso_hypergradient(Xt, yt, Xv, yv, lam + h)[0]
    vm = tune.lasso_hypergradient(Xt, yt, Xv, yv, lam - h)[0]
    np.testing.assert_allclose(g, (vp - vm) / (2 * h), rtol=1e-3)


def test_bad_input():
  with pytest.raises(ValueError, match="must be > 0"):
    tune._check_wrt({"weight_decay": 0.0}, ("weight_decay",))
  with pytest.raises(ValueError, match="not in hparams"):
    tune._check_wrt({"weight_decay": 1.0}, ("lr",))
  with pytest.raises(ValueError, match="strength .λ. must be"):
    tune.lasso_hypergradient(np.eye(2), np.ones(2), np.eye(2), np.ones(2), -1.0)

"""Full-batch convergence to scikit-learn's Lasso on the diabetes data (float64).

Objective (DESIGN.md): 1/(2n)‖y − Xw‖² + λ‖w‖₁, which is sklearn's `Lasso(alpha=λ)`.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Lasso

import wdjax

LAM = 0.02


@pytest.fixture(scope="module")
def problem():
  X, y = load_diabetes(return_X_y=True)
  X = (X - X.mean(0)) / X.std(0)
  y = (y - y.mean()) / y.std()
  ref = Lasso(alpha=LAM, fit_intercept=False, tol=1e-14, max_iter=10**6).fit(X, y).coef_
  assert 0 < (ref == 0).sum() < len(ref)  # a problem with a non-trivial support
  return X, y, ref


def fit(tx, X, y, steps):
  X, y = jnp.asarray(X), jnp.asarray(y)
  loss = lambda w: 0.5 * jnp.mean((X @ w - y) ** 2)

  def body(carry, _):
    w, s = carry
    u, s = tx.update(jax.grad(loss)(w), s, w)
    return (optax.apply_updates(w, u), s), None

  w0 = jnp.zeros(X.shape[1], X.dtype)
  (w, _), _ = jax.lax.scan(body, (w0, tx.init(w0)), length=steps)
  return w


def test_proximal_sgd_reaches_sklearn_lasso(problem, x64):
  X, y, ref = problem
  L = np.linalg.eigvalsh(X.T @ X / len(y)).max()  # step 1/L: ISTA's guarantee
  w = jax.jit(functools.partial(fit, wdjax.proximal_sgd(1 / L, wdjax.prox.l1, LAM, mask=None),
                                steps=2000))(X, y)
  w = np.asarray(w)
  np.testing.assert_allclose(w, ref, atol=1e-5)
  np.testing.assert_array_equal(w == 0, ref == 0)  # exact zeros, same support


def test_preconditioned_proximal_adam_reaches_lasso(problem, x64):
  X, y, ref = problem
  sched = optax.cosine_decay_schedule(1e-2, 20000)  # decaying step: Adam's iterates settle
  w = jax.jit(functools.partial(fit, wdjax.proximal_adam(sched, wdjax.prox.l1, LAM, mask=None),
                                steps=20000))(X, y)
  w = np.asarray(w)
  np.testing.assert_array_equal(w == 0, ref == 0)
  np.testing.assert_allclose(w, ref, atol=1e-3)


def test_unpreconditioned_prox_after_adam_misses_lasso(problem, x64):
  """Threshold η·λ instead of η·λ/D: the fixed point is not the lasso minimizer."""
  X, y, ref = problem
  sched = optax.cosine_decay_schedule(1e-2, 20000)
  tx = optax.chain(optax.adam(sched), wdjax.proximal(wdjax.prox.l1, LAM, learning_rate=sched, mask=None))
  w = jax.jit(functools.partial(fit, tx, steps=20000))(X, y)
  w = np.asarray(w)
  assert np.abs(w - ref).max() > 0.1
  assert not np.array_equal(w == 0, ref == 0)


def test_accelerated_proximal_gradient_reaches_sklearn_lasso(problem, x64):
  """FISTA with adaptive restart (wdjax.path.fista): the accelerated variant, same prox."""
  from wdjax import path
  X, y, ref = problem
  sol = path.fista(X, y, LAM, tol=1e-14, dtype=np.float64)
  assert sol.converged
  np.testing.assert_allclose(sol.coef, ref, atol=1e-5)
  np.testing.assert_array_equal(sol.coef == 0, ref == 0)


@pytest.mark.parametrize("nesterov", [False, True])
def test_proximal_sgd_with_momentum_reaches_sklearn_lasso(problem, x64, nesterov):
  """Heavy ball β = 0.9: the prox threshold η·λ/(1 − β) keeps the fixed point at the lasso.
  Nesterov's step g + β·buf has the same fixed point, and the same threshold (it used to be
  dropped silently by `optimizers.sgd(..., coupling="proximal")`)."""
  X, y, ref = problem
  L = np.linalg.eigvalsh(X.T @ X / len(y)).max()
  tx = wdjax.optimizers.sgd(0.5 / L, 0.9, nesterov, weight_decay=LAM, coupling="proximal",
                            penalty="l1", mask=None)
  w = np.asarray(jax.jit(functools.partial(fit, tx, steps=5000))(X, y))
  np.testing.assert_allclose(w, ref, atol=1e-5)
  np.testing.assert_array_equal(w == 0, ref == 0)

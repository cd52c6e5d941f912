"""`wdjax.path.sklearn_api`: sklearn's lasso_path/enet_path swapped in keep their meaning."""

import numpy as np
import pytest
import scipy.sparse
import sklearn.linear_model as sk
from sklearn.datasets import load_diabetes

from wdjax import path
from wdjax.path import sklearn_api

REL = 1e-6  # test_path.py's bar: 1e-6 of the largest coefficient, same support


@pytest.fixture(scope="module")
def diabetes():
  X, y = load_diabetes(return_X_y=True)
  return X, y - y.mean()   # (sklearn's lasso_path fits no intercept)


def _sklearn_gap(X, y, w, alpha, l1_ratio):
  """The duality gap sklearn's coordinate descent computes (cd_fast, on the n-scaled
  problem with its dual point), divided by n as its enet_path reports it; NumPy."""
  n = len(y)
  a, b = alpha * l1_ratio * n, alpha * (1 - l1_ratio) * n
  r = y - X @ w
  dual_norm = np.max(np.abs(X.T @ r - b * w))
  const = a / dual_norm if dual_norm > a else 1.0
  gap = 0.5 * (r @ r) * (1 + const ** 2) if dual_norm > a else r @ r
  gap += a * np.abs(w).sum() - const * (r @ y) + 0.5 * b * (1 + const ** 2) * (w @ w)
  return gap / n


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("alphas", ["default", 12, "array"])
def test_same_call_same_result_as_sklearn(diabetes, l1_ratio, alphas):
  # the call a user makes against sklearn, unchanged: the same grid, coefs (n_features,
  # n_alphas) within 1e-6 of the largest with the same support, n_iters with return_n_iter
  X, y = diabetes
  kw = {} if alphas == "default" else dict(
      alphas=alphas if alphas == 12 else [0.3, 3.0, 0.03, 0.3])   # unsorted, a repeat
  fn_sk = sk.lasso_path if l1_ratio == 1.0 else sk.enet_path
  fn_wd = sklearn_api.lasso_path if l1_ratio == 1.0 else sklearn_api.enet_path
  extra = {} if l1_ratio == 1.0 else dict(l1_ratio=l1_ratio)
  a_sk, c_sk, _ = fn_sk(X, y, tol=1e-12, max_iter=1_000_000, **extra, **kw)
  a_wd, c_wd, g_wd, n_iter = fn_wd(X, y, tol=1e-12, return_n_iter=True, **extra, **kw)
  np.testing.assert_allclose(a_wd, a_sk, rtol=1e-12)
  assert c_wd.shape == c_sk.shape == (X.shape[1], len(a_sk)) and c_wd.dtype == np.float64
  np.testing.assert_allclose(c_wd, c_sk, rtol=0, atol=REL * np.abs(c_sk).max())
  np.testing.assert_array_equal(c_wd != 0, np.abs(c_sk) > 1e-10 * np.abs(c_sk).max())
  assert len(n_iter) == len(a_sk) and all(isinstance(i, int) for i in n_iter)
  assert (g_wd <= 1e-12 * (y @ y) / len(y) * (1 + 1e-6)).all()


def test_dual_gaps_are_sklearns():
  # dual_gaps in sklearn's scale: sklearn's own gap formula (checked first on sklearn's
  # output, which it reproduces) applied to wdjax's coefficients, at the default tol, on a
  # wide problem with more than 200 samples, where wdjax stops at the gap (coordinate
  # descent) rather than solving exactly (a gap is a difference of terms of size ‖y‖²/n:
  # its rounding is absolute, ~1e-12 of that)
  rng = np.random.default_rng(0)
  X = rng.normal(size=(240, 300))
  y = X[:, :10] @ rng.normal(size=10) + rng.normal(size=240)
  y -= y.mean()
  atol = 1e-9 * (y @ y) / len(y)
  for l1_ratio in (1.0, 0.5):
    a, c, g = sk.enet_path(X, y, l1_ratio=l1_ratio, alphas=10)
    np.testing.assert_allclose([_sklearn_gap(X, y, c[:, i], a[i], l1_ratio) for i in range(10)],
                               g, rtol=1e-6, atol=atol)
    a, c, g = sklearn_api.enet_path(X, y, l1_ratio=l1_ratio, alphas=10)
    ref = [_sklearn_gap(X, y, c[:, i], a[i], l1_ratio) for i in range(10)]
    np.testing.assert_allclose(g, ref, rtol=1e-6, atol=atol)
    # not n times them (the solver's own scale): the largest gaps are far above atol
    assert max(ref) > 1e3 * atol
    assert (g <= 1e-4 * (y @ y) / len(y)).all()   # sklearn's default tol, met


def test_dtype_follows_X_as_sklearn(diabetes):
  X, y = diabetes
  _, c32, _ = sklearn_api.lasso_path(X.astype(np.float32), y.astype(np.float32), alphas=5)
  _, c64, _ = sklearn_api.lasso_path(X, y, alphas=5)
  assert c32.dtype == np.float32 and c64.dtype == np.float64
  np.testing.assert_allclose(c32, c64, rtol=0, atol=1e-2 * np.abs(c64).max())


def test_what_it_does_not_solve_is_loud(diabetes):
  X, y = diabetes
  with pytest.raises(NotImplementedError, match="positive=True"):
    sklearn_api.lasso_path(X, y, positive=True)
  with pytest.raises(NotImplementedError, match="multi-task"):
    sklearn_api.enet_path(X, np.c_[y, y])
  with pytest.raises(NotImplementedError, match="sparse"):
    sklearn_api.lasso_path(scipy.sparse.csc_matrix(X), y)
  with pytest.raises(ValueError, match="Unexpected parameters"):
    sklearn_api.lasso_path(X, y, tolerance=1e-3)
  with pytest.raises(ValueError, match="selection should be either"):
    sklearn_api.lasso_path(X, y, selection="bogus")
  with pytest.raises(ValueError, match="alpha = 0"):
    sklearn_api.lasso_path(X, y, alphas=[1.0, 0.0])
  with pytest.raises(ValueError, match="alphas must be an integer"):
    sklearn_api.lasso_path(X, y, alphas="auto")
  # sklearn's solver hints (and the weights its path reads for sparse X only) are
  # accepted and change nothing
  base = sklearn_api.lasso_path(X, y, alphas=4)[1]
  hinted = sklearn_api.lasso_path(X, y, alphas=4, precompute=True, copy_X=False,
                                  coef_init=np.ones(X.shape[1]), selection="random",
                                  random_state=0, verbose=True,
                                  sample_weight=np.ones(len(y)))[1]
  np.testing.assert_array_equal(base, hinted)


def test_sklearn_habits_are_kept(diabetes):
  # what sklearn code writes: max_iter as a float, eps beside an explicit grid (unused
  # there, any value), a repeated alpha (solved once; its repeat took 0 iterations)
  X, y = diabetes
  a, c, _, it = sklearn_api.lasso_path(X, y, alphas=[0.5, 0.1, 0.5], eps=2.0, max_iter=1e5,
                                       return_n_iter=True)
  np.testing.assert_array_equal(a, [0.5, 0.5, 0.1])
  np.testing.assert_array_equal(c[:, 0], c[:, 1])
  assert it[1] == 0 and it[0] > 0


def test_sklearn_names_in_wdjax_paths_are_named(diabetes):
  # wdjax.path's own functions, called with sklearn's names: an error naming wdjax's
  # argument and the sklearn-shaped functions, not Python's about an internal function
  X, y = diabetes
  with pytest.raises(TypeError, match=r"sklearn's argument 'alphas': wdjax.path names it "
                                      r"lambdas=.*sklearn_api"):
    path.lasso_path(X, y, alphas=[1.0])
  with pytest.raises(TypeError, match=r"enet_path\(\) got sklearn's argument 'n_alphas'"):
    path.enet_path(X, y, n_alphas=5)
  with pytest.raises(TypeError, match=r"group_lasso_path\(\) got an unexpected keyword "
                                      r"argument 'step'; its arguments: .*groups.*lambdas"):
    path.group_lasso_path(X, y, np.arange(X.shape[1]) // 2, step=1)
  with pytest.raises(TypeError, match=r"n_lambdas= \(their number\)"):
    path.lasso_path(X, y, alphas=50)
  with pytest.raises(TypeError, match=r"lasso_path\(\) has no groups"):
    path.lasso_path(X, y, groups=np.arange(X.shape[1]) // 2)
  # and the checks that came with it: a 1-D X, a max_iter past the solvers' int32 counts
  with pytest.raises(ValueError, match="X must be a 2-D array"):
    path.lasso_path(X[:, 0], y)
  with pytest.raises(ValueError, match=r"max_iter must be an integer in \[10, 2\*\*31 - 1\]"):
    path.enet_path(X, y, max_iter=2 ** 31)
  with pytest.raises(ValueError, match="max_iter must be"):
    path.fista(X, y, 0.1, max_iter=2 ** 31)

"""Independent references for formulas that had no direct check.

Each test recomputes a library formula a different way (a closed form, NumPy, sklearn),
never by calling the code under test twice. Problems are tiny and compiled functions few.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from wdjax import path
from wdjax.path import solver as path_solver
from wdjax.experiments import bias_penalty, coupled_vs_decoupled, d2l_weight_decay, matrices

LAMS_FRAC = np.array([0.5, 0.2, 0.1, 0.05, 0.02])  # a short 5-λ path, as fractions of λ_max


# ------------------------------------------------------------------ 1. duality gaps


def _diabetes():
  X, y = load_diabetes(return_X_y=True)
  return X - X.mean(0), y - y.mean()  # what fit_intercept=True solves on


def _np_gap(X, y, w, lam, alpha=1.0, groups=None):
  """P(w) − D(θ) with the elastic net written as a lasso on augmented data
  X̃ = [X; √(nλ(1−α))·I], ỹ = [y; 0], dual D(θ) = (θᵀỹ − ½‖θ‖²)/n over
  Ω*(X̃ᵀθ/n) <= λα, at θ = κ·r̃ (the documented dual point). Returns (gap, primal)."""
  n, d = X.shape
  r = y - X @ w
  if groups is None:
    omega, dual_norm = np.sum(np.abs(w)), lambda v: np.max(np.abs(v))
  else:
    ids = np.unique(groups)
    omega = sum(np.linalg.norm(w[groups == g]) for g in ids)
    dual_norm = lambda v: max(np.linalg.norm(v[groups == g]) for g in ids)
  primal = 0.5 * r @ r / n + lam * alpha * omega + 0.5 * lam * (1 - alpha) * w @ w
  Xa = np.vstack([X, np.sqrt(n * lam * (1 - alpha)) * np.eye(d)])
  ya = np.concatenate([y, np.zeros(d)])
  ra = ya - Xa @ w
  kappa = min(1.0, lam * alpha / dual_norm(Xa.T @ ra / n))
  theta = kappa * ra
  # the dual point is feasible (up to rounding), so D(θ) is a true lower bound
  assert dual_norm(Xa.T @ theta / n) <= lam * alpha * (1 + 1e-12)
  dual = (theta @ ya - 0.5 * theta @ theta) / n
  return primal - dual, primal


def _lib_gap(X, y, w, lam, alpha=1.0, kind="l1", groups=None):
  """wdjax.path.solver._gap fed with c = Xᵀ(y − Xw)/n, bw = yᵀXw/n, yy = ‖y‖²/n (float64)."""
  n = X.shape[0]
  gidx = None if groups is None else jnp.asarray(path._group_index(groups, X.shape[1]))
  with jax.enable_x64(True):
    g = path_solver._gap(kind, jnp.asarray(w), jnp.asarray(X.T @ (y - X @ w) / n),
                  float(y @ X @ w / n), float(y @ y / n), lam * alpha, lam * (1 - alpha), gidx)
    return float(g)


@pytest.mark.parametrize("kind,alpha", [("l1", 1.0), ("elastic_net", 0.5)])
def test_gap_vs_numpy_primal_dual(kind, alpha):
  X, y = _diabetes()
  yy = y @ y / X.shape[0]
  lams = path.lambda_max(X, y, l1_ratio=alpha) * LAMS_FRAC
  fn = path.lasso_path if kind == "l1" else (
      lambda *a, **k: path.enet_path(*a, l1_ratio=alpha, **k))
  # polish off and a loose tol: the lasso's returned gaps are 3e-6..8e-5·yy, not rounding
  # noise (the elastic net, better conditioned, gets within 1e-10·yy in 10 iterations anyway)
  res = fn(X, y, lambdas=lams, dtype="float64", polish=False, tol=1e-4, solver="fista")
  assert res.converged.all()
  if kind == "l1":
    assert np.all(res.gaps > 1e-7 * yy)
  for lam, w, gap in zip(lams, res.coefs, res.gaps):
    ref, p_star = _np_gap(X, y, w, lam, alpha)
    # float64: the library's Gram form (yy − bᵀw − wᵀc) cancels O(yy) terms, ~1e-16·yy each;
    # 1e-12·yy absolute (+1e-9 relative) leaves ~1e4x margin and, for the lasso, is still
    # 1e5x below the gaps
    np.testing.assert_allclose(gap, ref, rtol=1e-9, atol=1e-12 * yy)
    assert ref >= -1e-12 * yy  # weak duality (rounding only)
    # A clearly non-optimal w: the gap is large, and the two formulas agree to rounding.
    w_half = 0.5 * w
    ref_h, p_half = _np_gap(X, y, w_half, lam, alpha)
    lib_h = _lib_gap(X, y, w_half, lam, alpha, kind)
    assert ref_h > 1e-3 * yy  # clearly > 0
    # relative 1e-9: float64 rounding of O(yy) sums, far below the gap itself (> 1e-3·yy)
    np.testing.assert_allclose(lib_h, ref_h, rtol=1e-9)
    # and the gap bounds the suboptimality: P(w/2) − P(w) <= P(w/2) − P* <= gap(w/2)
    assert lib_h >= p_half - p_star


def test_group_lasso_gap_vs_numpy():
  X, y = _diabetes()
  groups = np.array([0, 0, 1, 1, 1, 2, 2, 3, 3, 3])
  yy = y @ y / X.shape[0]
  lams = path.lambda_max(X, y, groups=groups) * LAMS_FRAC
  res = path.group_lasso_path(X, y, groups, lambdas=lams, dtype="float64")
  for lam, w, gap in zip(lams, res.coefs, res.gaps):
    ref, _ = _np_gap(X, y, w, lam, groups=groups)
    # the gaps here are 4e-12..9e-11·yy (no polishing); float64 cancellation of O(yy) terms
    # is ~1e-16·yy, so 1e-13·yy absolute is ~1000x rounding and < 1/40 of the smallest gap
    assert abs(gap - ref) <= 1e-13 * yy
    w_half = 0.5 * w
    ref_h, _ = _np_gap(X, y, w_half, lam, groups=groups)
    assert ref_h > 1e-3 * yy
    # float64 rounding of O(yy) sums, relative to a gap > 1e-3·yy
    np.testing.assert_allclose(_lib_gap(X, y, w_half, lam, kind="group_lasso", groups=groups),
                               ref_h, rtol=1e-9)


# ------------------------------------------------------------------ 2. Lipschitz constant


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lipschitz_estimate_of_the_largest_eigenvalue(dtype):
  for seed, (m, d) in enumerate([(40, 12), (15, 30)]):  # full-rank and rank-deficient PSD
    A = np.random.default_rng(seed).normal(size=(m, d))
    Q = A.T @ A / m + 1e-3 * np.eye(d)
    lmax = np.linalg.eigvalsh(Q).max()
    with jax.enable_x64(dtype == "float64"):
      L = float(path_solver._lipschitz(jnp.asarray(Q, dtype)))
    # relative slack: float64 / float32 rounding of d-term products (d·eps ≈ 1e-14 / 4e-6)
    eps = 1e-12 if dtype == "float64" else 2e-5
    # no underestimate on these matrices (FISTA's step 1/L needs L >= λ_max; the estimate
    # is not a bound in general, and FISTA raises L where a step shows it too small:
    # test_path.py::test_fista_raises_an_underestimated_step_size) ...
    assert L >= lmax * (1 - eps)
    # ... and the Rayleigh quotient is <= λ_max, so L <= 1.05·λ_max
    assert L <= 1.05 * lmax * (1 + eps)


# ------------------------------------------------------------------ 3-4. ridge closed forms


def _xy(n, d, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d))
  return x, x @ rng.normal(size=d) + 0.7 + 0.3 * rng.normal(size=n)


@pytest.mark.parametrize("lam", [1e-2, 0.5])
def test_bias_exact_vs_sklearn(lam):
  x, y = _xy(30, 5)
  n = x.shape[0]
  # loss mean ½(ŷ−y)² + λ/2‖·‖²  <=>  sklearn ½‖ŷ−y‖² + (nλ/2)‖·‖², i.e. alpha = nλ
  a = np.hstack([x, np.ones((n, 1))])
  ref = Ridge(alpha=n * lam, fit_intercept=False, solver="cholesky").fit(a, y).coef_
  # both are direct float64 solves of a well-conditioned 6x6 system: 1e-9 relative
  np.testing.assert_allclose(bias_penalty.exact(x, y, lam, decay_bias=True), ref, rtol=1e-9, atol=1e-12)
  r = Ridge(alpha=n * lam, fit_intercept=True, solver="cholesky").fit(x, y)
  np.testing.assert_allclose(bias_penalty.exact(x, y, lam, decay_bias=False),
                             np.append(r.coef_, r.intercept_), rtol=1e-9, atol=1e-12)


def test_d2l_ridge_dual_vs_sklearn():
  x, y = _xy(10, 30, seed=1)  # n < d: the dual (n x n) form is the one used
  n = x.shape[0]
  lams = np.array([1e-3, 0.1, 3.0])
  w, b = d2l_weight_decay._ridge(x, y, lams)
  for k, lam in enumerate(lams):
    r = Ridge(alpha=n * lam, fit_intercept=True, solver="svd").fit(x, y)
    # eigendecomposition vs SVD in float64; at λ = 1e-3 the n x n kernel's condition
    # number is ~1e4, so ~1e-12 rounding, hence 1e-8 relative with margin
    np.testing.assert_allclose(w[k], r.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(b[k], r.intercept_, rtol=1e-8, atol=1e-10)


# ------------------------------------------------------------------ 5. nuclear-norm KKT


def test_nuclear_kkt_residual():
  rng = np.random.default_rng(2)
  C = rng.normal(size=(6, 4))
  u, s, vt = np.linalg.svd(C, full_matrices=False)
  lam = 0.5 * (s[1] + s[2])  # keeps exactly 2 singular values
  W = (u * np.maximum(s - lam, 0)) @ vt  # SVT(C, λ): the minimizer of ½‖W‖² − tr(CᵀW) + λ‖W‖_*
  g = W - C  # ∇ of the smooth part at Q = I
  tol = 1e-8 * s[0]
  # the optimum: residual is float64 rounding of O(s/λ) quantities
  assert matrices._kkt(W, g, lam, tol) <= 1e-12
  # W = 0 (rank 0): z = C/λ, residual exactly ‖C‖₂/λ − 1
  np.testing.assert_allclose(matrices._kkt(np.zeros_like(C), -C, lam, tol), s[0] / lam - 1,
                             rtol=1e-12)  # one SVD in float64
  # same support, singular values halved: −g/λ − UVᵀ − Z = U_r diag((s_r − λ)/(2λ)) V_rᵀ
  W2 = 0.5 * W
  expect = np.max(np.abs((u[:, :2] * ((s[:2] - lam) / (2 * lam))) @ vt[:2]))
  assert expect > 0.1  # clearly not optimal
  np.testing.assert_allclose(matrices._kkt(W2, W2 - C, lam, tol), expect, rtol=1e-10)


# ---------------------------------------------------------- 6. coupled_vs_decoupled table stats


def test_separability_closed_forms():
  rng = np.random.default_rng(3)
  f, g = rng.normal(size=5), rng.normal(size=7)
  additive = f[:, None] + g[None, :]
  a, b = f - f.mean(), g - g.mean()
  interaction = a[:, None] * b[None, :]  # zero row and column means: SS all interaction
  # float64 rounding of sums of 35 squares
  assert coupled_vs_decoupled.separability(additive) == pytest.approx(1.0, abs=1e-12)
  assert coupled_vs_decoupled.separability(interaction) == pytest.approx(0.0, abs=1e-12)
  # orthogonal mix: the additive share SS_add / (SS_add + SS_int)
  ss_add = np.sum(np.square(additive - additive.mean()))
  ss_int = np.sum(np.square(interaction))
  assert coupled_vs_decoupled.separability(additive + interaction) == pytest.approx(
      ss_add / (ss_add + ss_int), rel=1e-12)


def test_best_lambda_slope_synthetic():
  lrs = np.geomspace(1e-3, 1e-1, 5)
  wds = np.geomspace(1e-7, 10.0, 33)  # 4 points per decade, λ* = c/η always on the grid
  c = 1e-4
  # error quadratic in log10(ηλ/c): minimum at λ = c/η, symmetric on the grid, so the soft
  # arg-min is exactly c/η (λ* is >= 2 decades from
  # either grid end, so the truncated tails weigh < e^-40)
  dist = np.log10(lrs[:, None] * wds[None, :] / c)
  err = 0.1 + 0.05 * dist ** 2
  # rounding of log10 only; the exact slope is −1
  assert coupled_vs_decoupled.best_lambda_slope(err, lrs, wds) == pytest.approx(-1.0, abs=1e-9)
  # a diverged row (error >= 2x the best) is dropped, whatever its arg-min
  bad = np.vstack([err, np.full(33, 5.0) - np.linspace(0, 1, 33)])
  assert coupled_vs_decoupled.best_lambda_slope(bad, np.append(lrs, 1.0), wds) == pytest.approx(-1.0,
                                                                                      abs=1e-9)
  # additive f(η) + g(λ): λ* does not move with η, slope 0
  add = 0.1 + 0.01 * (np.log10(lrs)[:, None] + 2) ** 2 + 0.05 * (np.log10(wds)[None, :] + 3) ** 2
  assert coupled_vs_decoupled.best_lambda_slope(add, lrs, wds) == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------- 7. penalties and their use in updates


def test_coupled_elastic_net_and_nuclear_gradients_vs_closed_forms():
  # coupled() adds ∇R to the gradient: for the elastic net α·sign(w) + (1−α)·w (w has no
  # zeros), for the nuclear norm U·Vᵀ of the SVD (distinct nonzero singular values).
  import wdjax
  rng = np.random.default_rng(0)
  w = rng.normal(size=(4, 3)).astype(np.float32)
  g = rng.normal(size=(4, 3)).astype(np.float32)
  lam, alpha = 0.3, 0.7
  enet = lambda p, s: wdjax.penalties.elastic_net(p, s, l1_ratio=alpha)
  for penalty, want in (
      (enet, g + lam * (alpha * np.sign(w) + (1 - alpha) * w)),
      (wdjax.penalties.nuclear, g + lam * (lambda u, _, vt: u @ vt)(
          *np.linalg.svd(w.astype(np.float64), full_matrices=False))),
  ):
    tx = wdjax.coupled(penalty, lam, mask=None)
    params = {"w": jnp.asarray(w)}
    upd, _ = tx.update({"w": jnp.asarray(g)}, tx.init(params), params)
    np.testing.assert_allclose(upd["w"], want, rtol=1e-5, atol=1e-5)  # float32 SVD rounding


def test_group_lasso_other_axis_and_3d_leaves_vs_numpy():
  # group_axis=0 makes one group per row of a (4, 3) kernel; a (2, 3, 5) leaf with
  # group_axis=-1 has one group per index of its last axis, over the first two axes;
  # nuclear and frobenius flatten leading axes to (6, 5).
  from wdjax import penalties, prox
  rng = np.random.default_rng(1)
  a = rng.normal(size=(4, 3))
  b = rng.normal(size=(2, 3, 5))
  lam = 0.4
  np.testing.assert_allclose(float(penalties.group_lasso({"a": jnp.asarray(a)}, lam, group_axis=0)),
                             lam * np.linalg.norm(a, axis=1).sum(), rtol=1e-5)
  np.testing.assert_allclose(float(penalties.group_lasso({"b": jnp.asarray(b)}, lam)),
                             lam * np.linalg.norm(b.reshape(6, 5), axis=0).sum(), rtol=1e-5)
  m = b.reshape(6, 5)
  np.testing.assert_allclose(float(penalties.nuclear({"b": jnp.asarray(b)}, lam)),
                             lam * np.linalg.svd(m, compute_uv=False).sum(), rtol=1e-5)
  # block soft-thresholding along axis 0: row_i · max(0, 1 − λ/‖row_i‖)
  z = 2.0 * a
  norms = np.linalg.norm(z, axis=1, keepdims=True)
  want = z * np.maximum(0.0, 1 - 1.5 / norms)
  got = prox.group_lasso(jnp.asarray(z), 1.5, 1.0, group_axis=0)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_decoupled_schedule_form_constant_lr_vs_numpy():
  # scale_by="schedule": c_t = η_t/η_peak (1 when η is constant and no peak is given), so
  # SGDW takes w ← w − η·g − s_t·λ·w; with η_peak = 2η, s_t = 1/2.
  import optax

  import wdjax
  w0, g = np.array([1.0, -2.0], np.float32), np.array([0.5, 0.25], np.float32)
  eta, lam = 0.1, 0.2
  for peak, s in ((None, 1.0), (2 * eta, 0.5)):
    tx = optax.chain(optax.sgd(eta), wdjax.decoupled(lam, learning_rate=eta, scale_by="schedule",
                                                     peak_learning_rate=peak, mask=None))
    params = {"w": jnp.asarray(w0)}
    state = tx.init(params)
    w = w0.copy()
    for _ in range(3):
      upd, state = tx.update({"w": jnp.asarray(g)}, state, params)
      params = optax.apply_updates(params, upd)
      w = w - eta * g - s * lam * w
    np.testing.assert_allclose(params["w"], w, rtol=1e-6)

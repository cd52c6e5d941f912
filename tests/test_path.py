"""Regularization paths against sklearn's coordinate descent and the optimality conditions."""

import functools

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet, Lasso, enet_path, lasso_path
from sklearn.preprocessing import StandardScaler

from wdjax import path, plots

REL = 1e-6  # the bar: |w − w_sklearn| <= 1e-6·max|w_sklearn| along the path, float64


@pytest.fixture(scope="module")
def diabetes():
  X, y = load_diabetes(return_X_y=True, scaled=False)
  return X, y


@pytest.fixture(scope="module")
def wide():
  rng = np.random.default_rng(0)
  n, d, k = 500, 2000, 20
  X = rng.normal(size=(n, d))
  w = np.zeros(d)
  w[rng.choice(d, k, replace=False)] = 2 * rng.normal(size=k)
  return X, X @ w + 0.5 * rng.normal(size=n)


def _sklearn(fn, X, y, lambdas, **kw):
  # tight tolerance: sklearn's default tol=1e-4 can be far from the optimum
  _, coefs, _ = fn(X, y, alphas=lambdas, tol=1e-12, max_iter=1_000_000, **kw)
  return coefs.T


def _assert_same_path(ours, ref):
  scale = np.max(np.abs(ref))
  np.testing.assert_allclose(ours, ref, rtol=0, atol=REL * scale)
  np.testing.assert_array_equal(ours != 0, ref != 0)


def test_lasso_diabetes_standardized_matches_sklearn(diabetes):
  X = StandardScaler().fit_transform(diabetes[0])
  y = diabetes[1] - diabetes[1].mean()
  res = path.lasso_path(X, y, dtype="float64", tol=1e-10)
  sk_lams, sk_coefs, _ = lasso_path(X, y, tol=1e-12, max_iter=1_000_000)
  np.testing.assert_allclose(res.lambdas, sk_lams, rtol=1e-12)  # same default grid
  assert res.converged.all() and res.coefs.dtype == np.float64
  _assert_same_path(res.coefs, sk_coefs.T)


def test_lasso_and_enet_diabetes_raw_with_intercept(diabetes):
  X, y = diabetes  # raw units: columns on very different scales, ill-conditioned
  Xc, yc = X - X.mean(0), y - y.mean()
  res = path.lasso_path(X, y, fit_intercept=True, dtype="float64", tol=1e-10)
  _assert_same_path(res.coefs, _sklearn(lasso_path, Xc, yc, res.lambdas))
  k = 40
  ref = Lasso(alpha=res.lambdas[k], tol=1e-12, max_iter=1_000_000).fit(X, y)
  assert res.intercepts[k] == pytest.approx(ref.intercept_, rel=1e-8)

  enet = path.enet_path(X, y, l1_ratio=0.3, fit_intercept=True, dtype="float64", tol=1e-10)
  assert enet.lambdas[0] == pytest.approx(np.max(np.abs(Xc.T @ yc)) / (len(y) * 0.3))
  _assert_same_path(enet.coefs, _sklearn(enet_path, Xc, yc, enet.lambdas, l1_ratio=0.3))


def test_vmap_path_equals_warm_path(diabetes):
  X = StandardScaler().fit_transform(diabetes[0])
  y = diabetes[1] - diabetes[1].mean()
  warm = path.lasso_path(X, y, dtype="float64", tol=1e-10, n_lambdas=30)
  cold = path.lasso_path(X, y, dtype="float64", tol=1e-10, n_lambdas=30, method="vmap")
  assert cold.converged.all()
  _assert_same_path(cold.coefs, warm.coefs)


def test_lasso_wide_synthetic_matches_sklearn(wide):
  # a shorter path than the benchmark's (12 λ to 1e-2·λ_max) keeps the test cheap; the
  # working sets and the KKT re-check are exercised all the same (d = 2000 > 64)
  X, y = wide
  res = path.lasso_path(X, y, n_lambdas=12, eps=1e-2, dtype="float64", tol=1e-10)
  assert res.converged.all()
  assert (res.coefs[-1] != 0).sum() > 20  # the path went past the 20 true features
  _assert_same_path(res.coefs, _sklearn(lasso_path, X, y, res.lambdas))
  # Exact, not merely within the gap tolerance: the FISTA steps run in float32 (mixed
  # precision) and the float64 polishing solve must finish every λ, so the optimality
  # conditions x_jᵀr/n = λ·sign(w_j) on the support hold to float64 rounding (seen: 6e-14·λ;
  # float32-accurate coefficients that merely meet the gap tolerance give 4e-10·λ).
  n = X.shape[0]
  for lam, w in zip(res.lambdas, res.coefs):
    corr = X.T @ (y - X @ w) / n
    on = w != 0
    np.testing.assert_allclose(corr[on], lam * np.sign(w[on]), rtol=0, atol=1e-11 * lam)
    assert np.all(np.abs(corr[~on]) <= lam * (1 + 1e-11))
  # the strong-rule seeding, and no screening at all (fewer λ: FISTA on all 2000 features
  # is slower), reach the same path
  for screening, k in (("strong", 12), (False, 5)):
    other = path.lasso_path(X, y, lambdas=res.lambdas[:k], dtype="float64", tol=1e-10, screening=screening)
    _assert_same_path(other.coefs, res.coefs[:k])


@pytest.fixture(scope="module")
def correlated():
  """p >> n with neighbouring features correlated (corr 0.6^|i-j|, AR(1) rows), the
  structure of gene-expression data; a smaller copy of benchmarks/bench_path.py's
  "correlated" problem (100 x 2000)."""
  rng = np.random.default_rng(1)
  n, d, rho = 80, 2000, 0.6  # d as in `wide`: the compiled working-set kernels are shared
  X = np.empty((n, d))
  X[:, 0] = rng.normal(size=n)
  for j in range(1, d):
    X[:, j] = rho * X[:, j - 1] + np.sqrt(1 - rho ** 2) * rng.normal(size=n)
  w = np.zeros(d)
  w[rng.choice(d, 10, replace=False)] = rng.normal(size=10)
  return X, X @ w + 0.3 * np.std(X @ w) * rng.normal(size=n)


def test_lasso_correlated_p_much_larger_than_n_matches_sklearn(correlated):
  # d = 25n: the support saturates near n as λ falls, and correlated neighbours make the
  # working set change its mind; sklearn's own path is the reference
  X, y = correlated
  # (a short path to 5e-2·λ_max keeps it cheap: the full path to n non-zeros takes 1.2 s
  # warm here against sklearn's 1.5 s at tol 1e-12, and ~13 s to compile)
  # (solver="fista": n <= 128 makes "auto" follow the exact path, tested below)
  res = path.lasso_path(X, y, n_lambdas=12, eps=5e-2, dtype="float64", tol=1e-10,
                        solver="fista")
  assert res.converged.all()
  assert (res.coefs[-1] != 0).sum() > 10
  _assert_same_path(res.coefs, _sklearn(lasso_path, X, y, res.lambdas))
  enet = path.enet_path(X, y, l1_ratio=0.5, n_lambdas=6, eps=1e-1, dtype="float64", tol=1e-10)
  _assert_same_path(enet.coefs, _sklearn(enet_path, X, y, enet.lambdas, l1_ratio=0.5))


def test_float32_working_set_path_matches_sklearn(wide):
  # the float32 path forms its Gram matrix in float32 and runs the working-set solver
  # without polishing to float64: it must still land within float32's gap tolerance
  # (default 1e-5·‖y‖²/n: about 1e-3 of the largest coefficient) of sklearn's path
  X, y = wide[0][:, :200], wide[1]
  res = path.lasso_path(X, y, n_lambdas=8, eps=5e-2, dtype="float32", tol=1e-5,
                        solver="fista")
  assert res.converged.all() and (res.coefs[-1] != 0).sum() > 5
  ref = _sklearn(lasso_path, X, y, res.lambdas)
  np.testing.assert_allclose(res.coefs, ref, rtol=0, atol=1e-3 * np.max(np.abs(ref)))


def test_enet_wide_synthetic_matches_sklearn(wide):
  X, y = wide
  res = path.enet_path(X, y, l1_ratio=0.7, n_lambdas=6, eps=5e-2, dtype="float64", tol=1e-10)
  _assert_same_path(res.coefs, _sklearn(enet_path, X, y, res.lambdas, l1_ratio=0.7))


def _assert_group_kkt(X, y, groups, res, rtol):
  """The group lasso's optimality conditions at every λ, in NumPy: X_gᵀr/n = λ·w_g/‖w_g‖
  on a non-zero group, ‖X_gᵀr/n‖ <= λ on a zero one (to rtol·λ). Returns whether both
  kinds of group were seen."""
  n = len(y)
  seen = set()
  for lam, w in zip(res.lambdas, res.coefs):
    grad = X.T @ (y - X @ w) / n  # −∇ of the smooth part
    for g in np.unique(groups):
      wg, cg = w[groups == g], grad[groups == g]
      norm = np.linalg.norm(wg)
      if norm > 0:
        np.testing.assert_allclose(cg, lam * wg / norm, atol=rtol * lam)
      else:
        assert np.linalg.norm(cg) <= lam * (1 + rtol)
      seen.add(norm > 0)
  return seen == {True, False}


@pytest.mark.parametrize("solver", ["fista", "cd"])
def test_group_lasso_path_satisfies_kkt(diabetes, solver):
  X = StandardScaler().fit_transform(diabetes[0])
  y = diabetes[1] - diabetes[1].mean()
  groups = np.array([0, 0, 1, 1, 2, 2, 2, 2, 2, 3])
  res = path.group_lasso_path(X, y, groups, n_lambdas=20, dtype="float64", tol=1e-10,
                              solver=solver)
  assert res.converged.all()
  assert _assert_group_kkt(X, y, groups, res, 1e-6)
  assert not res.coefs[0].any()  # λ_max = max_g ‖X_gᵀy‖/n gives w = 0
  n = len(y)
  np.testing.assert_allclose(
      res.lambdas[0], max(np.linalg.norm(X[:, groups == g].T @ y) / n for g in range(4)))


def test_group_cd_wide_uneven_groups(correlated):
  # block CD on p >> n with groups of 1 to 7 features, their members interleaved across X
  # and their ids neither sorted nor contiguous, and one group of zero columns (L_g = 0: it
  # must stay 0 and never enter a working set): the optimality conditions at tight tol, the
  # same path as FISTA's on the Gram matrix, with an intercept as well
  X, y = correlated
  X = X[:, :300] + 1.5   # not centered: fit_intercept has work to do
  sizes = np.resize([1, 3, 7, 2, 5, 4], 300)
  ids = np.repeat(np.arange(300), sizes)[:300]
  groups = 3 * np.random.default_rng(0).permutation(ids)   # members interleaved, ids 0, 3, …
  zero = groups == groups[17]
  assert zero.sum() > 1
  X[:, zero] = 0
  Xc, yc = X - X.mean(axis=0), y - y.mean()
  res = path.group_lasso_path(X, y, groups, n_lambdas=12, eps=2e-2, dtype="float64",
                              tol=1e-12, solver="cd", fit_intercept=True)
  assert res.converged.all() and (res.coefs[-1] != 0).sum() > 20
  assert _assert_group_kkt(Xc, yc, groups, res, 1e-5)
  assert not res.coefs[:, zero].any()
  ref = path.group_lasso_path(X, y, groups, lambdas=res.lambdas, dtype="float64", tol=1e-12,
                              solver="fista", max_iter=200_000, fit_intercept=True)
  _assert_same_path(res.coefs, ref.coefs)
  np.testing.assert_allclose(res.intercepts, ref.intercepts, rtol=1e-6)
  # float32 X at the default tol: its gaps are certified (computed in float64 from the
  # float32 X), and its coefficients land within that gap's reach of the float64 path
  # (error ~ √gap: ~1e-2 of the largest coefficient at tol 1e-4 on this problem)
  f32 = path.group_lasso_path(X, y, groups, lambdas=res.lambdas, dtype="float32", solver="cd",
                              fit_intercept=True)
  assert f32.converged.all() and (f32.gaps <= 1e-4 * np.mean(yc ** 2)).all()
  np.testing.assert_allclose(f32.coefs, res.coefs, atol=3e-2 * np.abs(res.coefs).max())


def test_group_cd_refines_the_support_at_tight_tol(wide):
  # Near λ_max one small group is active and the gap, read from objective values, misses a
  # point δ away from the solution by only ~δ²: gap <= 1e-10·‖y‖²/n left the coefficients
  # 6e-5 off here. Below tol 5e-5 the support is swept until the optimality conditions hold
  # to tol·λ_max: they must then hold in NumPy to that order (fails without the refinement)
  X, y = wide
  groups = np.arange(2000) // 5
  n = len(y)
  lam_max = max(np.linalg.norm(X[:, groups == g].T @ y) / n for g in range(400))
  res = path.group_lasso_path(X, y, groups, lambdas=lam_max * np.array([1, 0.93, 0.87]),
                              dtype="float64", tol=1e-10, solver="cd")   # (1.4e-5 unrefined)
  assert res.converged.all() and all((res.coefs[1:] != 0).any(axis=1))
  for lam, w in zip(res.lambdas, res.coefs):
    grad = X.T @ (y - X @ w) / n
    for g in range(400):
      wg, cg = w[groups == g], grad[groups == g]
      norm = np.linalg.norm(wg)
      off = (np.linalg.norm(cg - lam * wg / norm) if norm > 0
             else max(np.linalg.norm(cg) - lam, 0))
      assert off <= 1e-8 * lam_max, (lam, g, off)


def test_cd_enet_refined_support_conditions(wide):
  # the refinement for width-1 blocks with the elastic net's ridge term: |x_jᵀr/n − λ(1−α)w_j
  # − λα·sign(w_j)| on the support, |x_jᵀr/n| <= λα off it, to tol·α·λ_max (fails unrefined)
  X, y = wide
  n, alpha = len(y), 0.5
  res = path.enet_path(X, y, l1_ratio=alpha, n_lambdas=5, eps=0.01, dtype="float64",
                       tol=1e-8, solver="cd")   # (unrefined: 2.6e-8·α·λ_max off; refined 3e-9)
  assert res.converged.all() and (res.coefs[1:] != 0).any(axis=1).all()
  lam_max_alpha = np.max(np.abs(X.T @ y)) / n
  for lam, w in zip(res.lambdas, res.coefs):
    v = X.T @ (y - X @ w) / n - lam * (1 - alpha) * w
    on = w != 0
    np.testing.assert_allclose(v[on], lam * alpha * np.sign(w[on]), rtol=0,
                               atol=1e-8 * lam_max_alpha)
    assert np.all(np.abs(v[~on]) <= lam * alpha + 1e-8 * lam_max_alpha)


def _worst_conditions(X, y, res, groups, alpha=1.0):
  """max over λ and blocks of the distance of X_gᵀr/n − λ(1−α)w_g to λα·∂‖w_g‖, in NumPy
  (width-1 blocks without `groups`)."""
  n = len(y)
  groups = np.arange(X.shape[1]) if groups is None else np.asarray(groups)
  worst = 0.0
  for lam, w in zip(res.lambdas, res.coefs):
    v = X.T @ (y - X @ w) / n - lam * (1 - alpha) * w
    for g in np.unique(groups):
      wg, vg = w[groups == g], v[groups == g]
      norm = np.linalg.norm(wg)
      worst = max(worst, np.linalg.norm(vg - lam * alpha * wg / norm) if norm > 0
                  else max(np.linalg.norm(vg) - lam * alpha, 0.0))
  return worst


@pytest.mark.parametrize("kind", ["lasso", "enet", "group"])
def test_kkt_tol_holds_every_condition_with_a_loose_gap(wide, kind):
  # kkt_tol names a target for the optimality conditions: with a gap tolerance of 1e-2 they
  # must hold to kkt_tol·α·λ_max at every feature, on the support (the refinement's sweeps)
  # and off it (a zero block violating its condition sends the λ back to working-set
  # rounds: without that, the groups missing from the support at tol 1e-2 stay out), and
  # the path must be sklearn's at its tight tolerance (same support, 1e-6)
  X, y = wide
  alpha, groups = {"lasso": (1.0, None), "enet": (0.5, None),
                   "group": (1.0, np.arange(2000) // 5)}[kind]
  fn = {"lasso": path.lasso_path, "enet": functools.partial(path.enet_path, l1_ratio=alpha),
        "group": functools.partial(path.group_lasso_path, groups=groups)}[kind]
  kw = dict(n_lambdas=5, eps=0.01, dtype="float64", solver="cd", tol=1e-2)
  res = fn(X, y, kkt_tol=1e-9, **kw)
  assert res.converged.all() and (res.coefs[-1] != 0).sum() > 10
  lam_max_alpha = res.lambdas[0] * alpha
  assert _worst_conditions(X, y, res, groups, alpha) <= 1e-9 * lam_max_alpha * (1 + 1e-6)
  loose = fn(X, y, **kw)   # the gap alone at 1e-2: far off
  assert _worst_conditions(X, y, loose, groups, alpha) > 1e-5 * lam_max_alpha
  if kind == "group":
    ref = path.group_lasso_path(X, y, groups, lambdas=res.lambdas, dtype="float64", tol=1e-10,
                                solver="cd").coefs
  else:
    ref = _sklearn(lasso_path if kind == "lasso" else enet_path, X, y, res.lambdas,
                   **({} if kind == "lasso" else dict(l1_ratio=alpha)))
  _assert_same_path(res.coefs, ref)


def test_kkt_tol_unmet_is_reported_and_float32_warned(wide, monkeypatch):
  # conditions not met within max_iter: converged False and a warning at the caller's line;
  # float32 X with a target it cannot resolve: a warning naming the fix (other warnings of
  # that call, if any, are recorded rather than raised)
  import warnings
  X, y = wide
  kw = dict(n_lambdas=5, eps=0.01, solver="cd", tol=1e-2)
  with pytest.warns(path.PathConvergenceWarning, match="optimality conditions") as caught:
    res = path.lasso_path(X, y, kkt_tol=1e-12, max_iter=20, dtype="float64", **kw)
  assert not res.converged.all() and (res.gaps <= 1e-2 * np.mean(y ** 2)).all()
  assert {w.filename for w in caught} == {__file__}
  assert "dtype=float64" not in str(caught[0].message)   # (it is float64 already)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    path.lasso_path(X, y, kkt_tol=1e-8, dtype="float32", **kw)
  mine = [w for w in caught if w.category is UserWarning and "dtype='float64'" in str(w.message)]
  assert len(mine) == 1 and mine[0].filename == __file__
  # solver="auto" with kkt_tol: an exact solver that cannot certify a λ hands the path to
  # CD (not FISTA); groups too uneven to pad are an error that names solver='cd'
  import wdjax.path as wp
  calls = []
  monkeypatch.setattr(wp, "_homotopy", lambda *a, **k: calls.append("homotopy"))
  monkeypatch.setattr(wp, "_cd", lambda *a, **k: calls.append("cd") or "done")
  assert path.lasso_path(X[:100], y[:100], kkt_tol=1e-6) == "done"
  assert calls == ["homotopy", "cd"]
  uneven = np.concatenate([np.zeros(40, int), np.arange(1, 61)])
  with pytest.raises(ValueError, match="solver='cd' to accept"):
    path.group_lasso_path(X[:, :100], y, uneven, kkt_tol=1e-6)


@pytest.mark.parametrize("x64", [True, False], ids=["y float64", "all float32"])
@pytest.mark.parametrize("design", ["gaussian", "positive", "positive, mixed residual",
                                    "sparse binary", "cauchy"])
def test_cd_correlation_rounding_margin_bounds_the_float32_product(design, x64):
  # the off-support check discounts the rounding of c = X_gᵀr/n, a float32 product when X
  # is float32: its margin must bound that rounding (else a zero block at its threshold is
  # flagged for ever and the λ never meets kkt_tol), measured against float64 from the
  # same float32 values, for widths 1 and 4, n from 200 to 10⁵ (where a sum of terms of one
  # sign rounds 5x past the margin's first term alone)
  import jax
  import jax.numpy as jnp
  from wdjax.path.coordinate_descent import _block_norms, _correlation_rounding, _correlations
  rng = np.random.default_rng(0)
  eps = np.finfo(np.float32).eps
  worst, first_term_exceeded = 0.0, False
  for n in (200, 20_000, 100_000):
    draw = {"gaussian": lambda: (rng.normal(size=(n, 16)), rng.normal(size=n)),
            "positive": lambda: (rng.uniform(size=(n, 16)), rng.uniform(size=n)),
            "positive, mixed residual": lambda: (3 + rng.uniform(size=(n, 16)),
                                                 0.05 + rng.normal(size=n)),
            "sparse binary": lambda: (1e3 * (rng.uniform(size=(n, 16)) < 0.05),
                                      3 + rng.normal(size=n)),
            "cauchy": lambda: (rng.standard_cauchy(size=(n, 16)),
                               rng.standard_cauchy(size=n))}[design]
    X, r = draw()
    # as cd_path's: the product in X's float32, r (and the division) in y's dtype
    dt = np.float64 if x64 else np.float32
    r = r.astype(dt)
    for W in (1, 4):
      Xb = X.T.reshape(16 // W, W, n).astype(np.float32)
      exact = np.linalg.norm(np.einsum("gwn,n->gw", Xb.astype(np.float64), r.astype(np.float64))
                             / n, axis=1)
      L_max = max(np.linalg.norm(Xb[g].astype(np.float64), 2) ** 2 / n for g in range(16 // W))
      with jax.enable_x64(x64):
        norms = _block_norms(_correlations(jnp.asarray(Xb), jnp.asarray(r), dt))
        margin = np.asarray(_correlation_rounding(norms, jnp.asarray(r), W, L_max, eps))
      norms = np.asarray(norms, np.float64)
      err = np.abs(norms - exact)
      worst = max(worst, np.max(err / margin))
      first_term = 2 * eps * np.sqrt(W * L_max) * np.linalg.norm(r.astype(np.float64)) / np.sqrt(n)
      first_term_exceeded |= bool(np.any(err > first_term))
  assert worst <= 0.5    # (measured: at most 0.31)
  if design == "positive":
    assert first_term_exceeded   # why the margin has its second term


def test_group_cd_gaps_and_step_sizes_against_numpy(correlated):
  # the block solver's two pieces of math the KKT checks reach only indirectly: its step
  # sizes L_g = ‖X_g‖₂²/n (NumPy's spectral norm; a zero-padded and an all-zero group
  # included), and the duality gaps it reports, recomputed from the definitions:
  # P(w) − D(θ), θ = κ·r/n, κ = min(1, λ/max_g ‖X_gᵀr/n‖), D(θ) = ½‖y‖²/n − (n/2)‖y/n − θ‖²
  import jax
  import jax.numpy as jnp
  from wdjax.path.coordinate_descent import _lipschitz
  X, y = correlated
  X = X[:, :120].copy()
  X[:, 9:12] = 0
  n = len(y)
  groups = np.repeat(np.arange(40), 3)
  groups[[1, 2]] = 40                       # group 0 now has one feature, 40 has two
  gidx = path._group_index(groups, 120)
  Xb = np.concatenate([X.T, np.zeros((1, n))])[gidx]
  with jax.enable_x64(True):
    L = np.asarray(_lipschitz(jnp.asarray(Xb), jnp.float64))
  ref = [np.linalg.norm(X[:, gidx[g][gidx[g] < 120]], 2) ** 2 / n for g in range(len(gidx))]
  np.testing.assert_allclose(L, ref, rtol=1e-12, atol=1e-14)
  assert L[3] == 0                          # features 9-11 (group 3) are all zero
  for tol in (1e-4, 1e-7):                  # (1e-7: after the support refinement)
    res = path.group_lasso_path(X, y, groups, n_lambdas=8, eps=0.05, tol=tol,
                                dtype="float64", solver="cd")
    for lam, w, gap in zip(res.lambdas, res.coefs, res.gaps):
      r = y - X @ w
      dual_norm = max(np.linalg.norm(X[:, groups == g].T @ r) / n for g in np.unique(groups))
      theta = min(1.0, lam / dual_norm) * r / n
      primal = 0.5 * r @ r / n + lam * sum(np.linalg.norm(w[groups == g])
                                           for g in np.unique(groups))
      dual = 0.5 * y @ y / n - 0.5 * n * np.sum((y / n - theta) ** 2)
      np.testing.assert_allclose(gap, primal - dual, rtol=1e-6, atol=1e-12 * (y @ y / n))


def test_group_index_against_its_definition():
  # row k of the index lists the features of the k-th smallest group id in increasing
  # order, padded with d: built here one group at a time, as the definition says (the
  # library sorts once), on ids that are unsorted, non-contiguous, negative and of uneven
  # sizes
  rng = np.random.default_rng(0)
  for trial in range(20):
    d = int(rng.integers(1, 60))
    ids = rng.choice([-7, 0, 3, 4, 11, 50], size=d) if trial % 2 else rng.integers(0, 9, d)
    got = path._group_index(ids, d)
    members = [np.flatnonzero(ids == g) for g in np.unique(ids)]
    want = np.full((len(members), max(map(len, members))), d)
    for k, m in enumerate(members):
      want[k, :len(m)] = m
    np.testing.assert_array_equal(got, want)


def test_group_lasso_with_singleton_groups_is_the_lasso(diabetes):
  X = StandardScaler().fit_transform(diabetes[0])
  y = diabetes[1] - diabetes[1].mean()
  lasso = path.lasso_path(X, y, n_lambdas=15, dtype="float64", tol=1e-10)
  group = path.group_lasso_path(X, y, np.arange(10), n_lambdas=15, dtype="float64", tol=1e-10)
  np.testing.assert_allclose(group.coefs, lasso.coefs, atol=1e-6 * np.abs(lasso.coefs).max())


def test_fista_single_problem_and_float32(diabetes):
  X = StandardScaler().fit_transform(diabetes[0])
  y = diabetes[1]
  lam = 0.5
  ref = Lasso(alpha=lam, tol=1e-12, max_iter=1_000_000).fit(X, y)
  sol = path.solve_lasso(X, y, lam, fit_intercept=True, dtype="float64")
  assert sol.converged
  np.testing.assert_allclose(sol.coef, ref.coef_, atol=1e-8 * np.abs(ref.coef_).max())
  assert sol.intercept == pytest.approx(ref.intercept_)
  # float32 stops at its default gap tolerance 1e-5·‖y‖²/n: about 1e-4 relative here
  sol32 = path.fista(X, y, lam, fit_intercept=True, dtype="float32")
  assert sol32.converged
  np.testing.assert_allclose(sol32.coef, ref.coef_, atol=1e-3 * np.abs(ref.coef_).max())


def test_default_dtype_follows_the_tolerance(diabetes):
  # dtype=None: float32 down to tol 1e-6 (FLOAT32_MIN_TOL), float64 below it, where float32
  # cannot certify the gap: sklearn's `enet_path(X, y, tol=1e-8)` swapped for wdjax's keeps
  # converging (in float32 half of diabetes's λ reach max_iter at 1e-8), with the
  # coefficients of an explicit float64 call, bit for bit; an explicit float32 is kept
  import warnings
  X = StandardScaler().fit_transform(diabetes[0])
  y = diabetes[1] - diabetes[1].mean()
  kw = dict(n_lambdas=8, eps=1e-2)
  tight = path.enet_path(X, y, l1_ratio=0.5, tol=1e-8, **kw)
  assert tight.converged.all()
  np.testing.assert_array_equal(
      tight.coefs, path.enet_path(X, y, l1_ratio=0.5, tol=1e-8, dtype="float64", **kw).coefs)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    single = path.enet_path(X, y, l1_ratio=0.5, tol=1e-8, dtype="float32", max_iter=200, **kw)
  assert not single.converged.all()
  assert any(w.category is path.PathConvergenceWarning for w in caught)
  # at 1e-6 float32 still certifies, and stays the default
  loose = path.lasso_path(X, y, tol=1e-6, **kw)
  assert loose.converged.all()
  np.testing.assert_array_equal(loose.coefs,
                                path.lasso_path(X, y, tol=1e-6, dtype="float32", **kw).coefs)
  assert not np.array_equal(loose.coefs,
                            path.lasso_path(X, y, tol=1e-6, dtype="float64", **kw).coefs)
  # kkt_tol below float32's resolution: float64, without the float32 warning
  with warnings.catch_warnings():
    warnings.simplefilter("error", UserWarning)
    res = path.lasso_path(X, y, tol=1e-2, kkt_tol=1e-8, solver="cd", **kw)
  np.testing.assert_array_equal(
      res.coefs, path.lasso_path(X, y, tol=1e-2, kkt_tol=1e-8, solver="cd", dtype="float64",
                                 **kw).coefs)
  # one problem: fista's tol likewise
  lam = 0.5
  np.testing.assert_array_equal(path.fista(X, y, lam, tol=1e-8).coef,
                                path.fista(X, y, lam, tol=1e-8, dtype="float64").coef)


def test_non_convergence_is_reported(wide):
  X, y = wide
  with pytest.warns(path.PathConvergenceWarning, match="max_iter") as rec:
    res = path.lasso_path(X[:, :50], y, n_lambdas=3, eps=1e-3, tol=1e-14, max_iter=10,
                          polish=False, dtype="float64")
  assert not res.converged.all()
  assert rec[0].filename == __file__   # the warning points at the caller's line


@pytest.mark.parametrize("kwargs, match", [
    (dict(lambdas=[0.1, 0.2]), "strictly decreasing"),
    (dict(lambdas=[0.2, 0.2]), "strictly decreasing"),
    (dict(lambdas=[1.0, -0.1]), "> 0"),
    (dict(eps=0.0), r"eps must be in \(0, 1\)"),
    (dict(eps=1.0), r"eps must be in \(0, 1\)"),
    (dict(eps=-1e-3), r"eps must be in \(0, 1\)"),
    (dict(n_lambdas=0), "n_lambdas"),
    (dict(method="newton"), "method"),
    (dict(dtype="int32"), "dtype"),
    (dict(screening="yes"), "screening"),
    (dict(solver="newton"), "solver must be"),
    (dict(solver="cd", method="vmap"), "solver='cd' solves"),
    (dict(l1_ratio=0.5), "lasso_path has no l1_ratio"),
    (dict(kkt_tol=-1e-6), "kkt_tol must be a finite number >= 1e-13"),
    (dict(kkt_tol=float("nan")), "kkt_tol must be a finite number"),
    (dict(kkt_tol=0), "kkt_tol must be a finite number"),
    (dict(kkt_tol=1e-15), "float64 resolves them"),
    (dict(kkt_tol="1e-6"), "kkt_tol must be a finite number"),
    (dict(kkt_tol=True), "kkt_tol must be a finite number"),
    (dict(kkt_tol=1e-6, solver="fista"), "kkt_tol is the coordinate-descent solver's"),
    (dict(kkt_tol=1e-6, method="vmap"), "kkt_tol is the coordinate-descent solver's"),
    (dict(kkt_tol=1e-10, solver="homotopy"), "certifies each λ's optimality conditions"),
    (dict(kkt_tol=1e-6, screening="strong"), "FISTA's options"),
    (dict(kkt_tol=1e-6, polish=False), "FISTA's options"),
])
def test_bad_input(diabetes, kwargs, match):
  with pytest.raises(ValueError, match=match):
    path.lasso_path(diabetes[0], diabetes[1], **kwargs)


def test_bad_data_and_penalty_arguments(diabetes):
  X, y = diabetes
  with pytest.raises(ValueError, match="one entry per row"):
    path.lasso_path(X, y[:-1])
  with pytest.raises(ValueError, match="l1_ratio"):
    path.enet_path(X, y, l1_ratio=0.0)
  with pytest.raises(ValueError, match="groups"):
    path.group_lasso_path(X, y, [0, 1])
  with pytest.raises(ValueError, match="group_lasso_path has no l1_ratio"):
    path.group_lasso_path(X, y, np.arange(10), l1_ratio=0.5)
  with pytest.raises(ValueError, match="penalty"):
    path.fista(X, y, 0.1, penalty="l0")
  with pytest.raises(ValueError, match="solver='cd' solves the path with method='warm'"):
    path.group_lasso_path(X, y, np.arange(10), solver="cd", method="vmap")


def test_plot_path_writes_png(diabetes, tmp_path):
  X = StandardScaler().fit_transform(diabetes[0])
  res = path.lasso_path(X, diabetes[1] - diabetes[1].mean(), n_lambdas=20, dtype="float64", tol=1e-10)
  out = tmp_path / "path.png"
  plots.plot_path(res, str(out), title="diabetes")
  assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mixed_precision_steps_reach_the_float64_solution(x64):
  # The float32 steps (mixed=True, the default in float64) and pure float64 steps must give
  # the same exact solution, here on a wide problem with a tight tolerance that float32
  # steps alone cannot meet (the float64 fall-back and the final solve are exercised).
  import jax.numpy as jnp
  rng = np.random.default_rng(3)
  X = rng.normal(size=(60, 120))
  y = X[:, :8] @ rng.normal(size=8) + 0.1 * rng.normal(size=60)
  _, _, _, _, Q, b, yy = path._prepare(X, y, False, jnp.float64)
  lam = 0.02 * path.lambda_max(X, y)
  out = {}
  for mixed in (True, False):
    w, gap, _ = path._solve_full(jnp.asarray(Q), jnp.asarray(b), yy, lam, 1.0, None,
                                 jnp.zeros(120), 1e-13 * yy, kind="l1", max_iter=20_000,
                                 check_every=10, polish=True, mixed=mixed)
    assert float(gap) <= 1e-13 * yy
    out[mixed] = np.asarray(w)
  assert (out[True] != 0).sum() > 8
  np.testing.assert_allclose(out[True], out[False], rtol=0, atol=1e-10 * np.abs(out[False]).max())
  np.testing.assert_array_equal(out[True] != 0, out[False] != 0)


@pytest.mark.parametrize("kind, mixed, polish", [("l1", True, True), ("l1", False, False),
                                                 ("elastic_net", False, False),
                                                 ("elastic_net", True, True),
                                                 ("group_lasso", False, False)])
@pytest.mark.parametrize("start", [0.2, None], ids=["L0 = 0.2 lmax", "L0 estimated"])
def test_fista_raises_an_underestimated_step_size(kind, mixed, polish, start, monkeypatch, x64):
  # FISTA's step 1/L needs L >= λ_max(Q); the power-iteration estimate is not a bound (it
  # fell to 0.961·λ_max on the benchmark's working sets). Started from a fifth of λ_max,
  # where plain FISTA diverges, the majorization check must raise L and reach the same
  # solution as sklearn; started from the estimate, rounding must not raise L past
  # 1.1·λ_max. n > d, so the solution is unique.
  import jax
  import jax.numpy as jnp
  from wdjax.path import solver
  rng = np.random.default_rng(5)
  X = rng.normal(size=(80, 30)) @ np.diag(np.linspace(0.2, 3, 30))   # condition ~ 200
  y = X[:, :6] @ rng.normal(size=6) + 0.1 * rng.normal(size=80)
  l1_ratio = 0.5 if kind == "elastic_net" else 1.0
  _, _, _, _, Q, b, yy = path._prepare(X, y, False, jnp.float64)
  gidx = path._group_index(np.arange(30) // 3, 30) if kind == "group_lasso" else None
  lam = 0.05 * path.lambda_max(X, y) / l1_ratio
  eig = np.linalg.eigvalsh(Q)
  tol = 1e-14 * yy

  def solve():
    fista = jax.jit(functools.partial(solver._fista, kind=kind, max_iter=20_000,
                                      check_every=10, polish=polish, mixed=mixed,
                                      with_step_size=True))
    return fista(jnp.asarray(Q), jnp.asarray(b), yy, lam, l1_ratio, gidx, jnp.zeros(30), tol)

  if kind == "group_lasso":
    # no sklearn reference: FISTA from L = 1.05·λ_max exactly, a valid step throughout
    monkeypatch.setattr(solver, "_lipschitz", lambda Q: jnp.asarray(1.05 * eig[-1], Q.dtype))
    ref, ref_gap, _, _ = solve()
    ref = np.asarray(ref)
    assert float(ref_gap) <= tol
  if start is not None:
    monkeypatch.setattr(solver, "_lipschitz", lambda Q: jnp.asarray(start * eig[-1], Q.dtype))
  else:
    monkeypatch.undo()
  w, gap, it, L = solve()
  assert float(gap) <= tol and int(it) < 20_000
  # a raised L is 1.1 x a Rayleigh quotient of Q (float64 rounding aside)
  assert float(L) <= 1.1 * eig[-1] * (1 + 1e-9)
  if start is not None:
    assert float(L) > start * eig[-1]
  # the primal error is bounded through the gap by strong convexity,
  # ½μ‖w − w*‖² <= gap with μ = λ_min(Q) + λ(1 − α): 6e-7 of max|w*| here; 1e-7 of it
  # for sklearn's own error at tol 1e-15, twice the bound against the group reference
  mu = eig[0] + lam * (1 - l1_ratio)
  if kind == "group_lasso":
    bound = 2 * np.sqrt(2 * tol / mu)
  else:
    ref = ElasticNet(alpha=lam, l1_ratio=l1_ratio, fit_intercept=False, tol=1e-15,
                     max_iter=1_000_000).fit(X, y).coef_
    bound = np.sqrt(2 * tol / mu) + 1e-7 * np.abs(ref).max()
  np.testing.assert_allclose(np.asarray(w), ref, rtol=0, atol=bound)
  np.testing.assert_array_equal(np.asarray(w) != 0, ref != 0)


@pytest.mark.parametrize("l1_ratio", [0.5, 1.0])
def test_polish_factors_the_support_in_the_smaller_size_that_holds_it(l1_ratio, monkeypatch,
                                                                      x64):
  # The exact solve on FISTA's support gathers the support first and factors k - 64
  # coordinates when it fits there (run Y: 0.77x the time of a factorization of k on the
  # benchmark's largest working sets). Both sizes are compiled (a switch); with supports on either side
  # of k - 64 the solution must be sklearn's, same support, within the gap's
  # strong-convexity bound.
  import jax
  import jax.numpy as jnp
  from wdjax.path import solver
  shapes, ran = [], []
  factor = jax.scipy.linalg.cho_factor

  def recording_factor(a, *args, **kw):
    # traced once per branch of the switch; the callback runs only in the branch taken
    shapes.append(a.shape)
    jax.debug.callback(lambda: ran.append(a.shape[0]))
    return factor(a, *args, **kw)
  monkeypatch.setattr(jax.scipy.linalg, "cho_factor", recording_factor)
  rng = np.random.default_rng(6)
  k, n = 256, 400   # n > k: a unique solution at every λ
  X = rng.normal(size=(n, k))
  y = X @ (rng.normal(size=k) * (rng.random(k) < 0.9)) + 0.1 * rng.normal(size=n)
  _, _, _, _, Q, b, yy = path._prepare(X, y, False, jnp.float64)
  fista = jax.jit(functools.partial(solver._fista, kind="elastic_net", max_iter=20_000,
                                    check_every=10, polish=True))
  tol = 1e-14 * yy
  mu = np.linalg.eigvalsh(Q)[0]
  sizes = set()
  for frac in (0.3, 0.001):   # supports of ~100 and ~230 of 256
    lam = frac * path.lambda_max(X, y) / l1_ratio
    ran.clear()
    w, gap, _ = fista(jnp.asarray(Q), jnp.asarray(b), yy, lam, l1_ratio, None, jnp.zeros(k), tol)
    w = np.asarray(w)
    # every factorization ran in the smaller size that held its support (the last one's
    # support is the solution's)
    assert ran and ran[-1] == (k - 64 if np.sum(w != 0) <= k - 64 else k), ran
    ref = ElasticNet(alpha=lam, l1_ratio=l1_ratio, fit_intercept=False, tol=1e-15,
                     max_iter=1_000_000).fit(X, y).coef_
    assert float(gap) <= tol
    np.testing.assert_array_equal(w != 0, ref != 0)
    bound = np.sqrt(2 * tol / (mu + lam * (1 - l1_ratio))) + 1e-7 * np.abs(ref).max()
    np.testing.assert_allclose(w, ref, rtol=0, atol=bound)
    sizes.add(int(np.sum(w != 0)) <= k - 64)
  assert sizes == {True, False}                 # one support on each side of k - 64
  assert {(k - 64, k - 64), (k, k)} <= set(shapes)   # both factorization sizes compiled


@pytest.mark.parametrize("l1_ratio", [0.5, 1.0])
def test_polish_repairs_a_support_with_a_flipped_or_a_missing_coordinate(l1_ratio, x64):
  # The exact solve on a support corrects it: a coordinate outside the true support
  # (its solve flips the sign) leaves it, a coordinate FISTA had not reached yet (it
  # violates |c_j| <= λα at the solve) joins it at the sign of c_j. From the solution with
  # both faults at once it takes all three solves; with two it cannot finish.
  import jax
  import jax.numpy as jnp
  from wdjax.path import solver
  rng = np.random.default_rng(8)
  X = rng.normal(size=(120, 60))
  y = X[:, :12] @ rng.normal(size=12) + 0.3 * rng.normal(size=120)
  _, _, _, _, Q, b, yy = path._prepare(X, y, False, jnp.float64)
  lam = 0.1 * path.lambda_max(X, y) / l1_ratio
  ref = ElasticNet(alpha=lam, l1_ratio=l1_ratio, fit_intercept=False, tol=1e-15,
                   max_iter=1_000_000).fit(X, y).coef_
  on = np.flatnonzero(ref)
  off = np.flatnonzero(ref == 0)
  missing, spurious = on[np.argmin(np.abs(ref[on]))], off[0]
  polish = jax.jit(solver._polish, static_argnames="attempts")
  lam1, lam2 = lam * l1_ratio, lam * (1 - l1_ratio)
  starts = {"missing": ref.copy(), "spurious": ref.copy(), "both": ref.copy()}
  starts["missing"][missing] = 0
  starts["spurious"][spurious] = 1.0
  starts["both"][[missing, spurious]] = [0, -1.0]
  for name, w0 in starts.items():
    w, ok, qw = polish(jnp.asarray(Q), jnp.asarray(b), lam1, lam2, jnp.asarray(w0))
    assert bool(ok), name
    np.testing.assert_array_equal(np.asarray(w) != 0, ref != 0, err_msg=name)
    np.testing.assert_allclose(np.asarray(w), ref, rtol=0, atol=1e-9 * np.abs(ref).max(),
                               err_msg=name)
    np.testing.assert_allclose(np.asarray(qw), Q @ np.asarray(w), rtol=1e-12, atol=1e-12)
  w, _, _ = polish(jnp.asarray(Q), jnp.asarray(b), lam1, lam2, jnp.asarray(starts["both"]),
                 attempts=2)
  assert not np.array_equal(np.asarray(w) != 0, ref != 0)


def test_gram_rows_are_formed_as_working_sets_reach_them(monkeypatch):
  # The working-set paths form XᵀX/n's rows on demand: the rows asked for (and the
  # highest-scored others, 64 rows a product at least) are exact, a row is formed once,
  # and the matrix keeps the solve's dtype.
  from wdjax.path import working_set
  from wdjax.path.problem import _x64_scope, _float_dtype
  rng = np.random.default_rng(7)
  X = rng.normal(size=(40, 300))
  full = X.T @ X / 40
  products = []
  set_rows = working_set._set_rows
  monkeypatch.setattr(working_set, "_set_rows",
                      lambda Q, xt, rows: products.append(rows.size) or set_rows(Q, xt, rows))
  for name, rtol in (("float64", 1e-12), ("float32", 1e-5)):
    products.clear()
    dt = _float_dtype(name)
    with _x64_scope(dt):
      gram = working_set._GramRows(X, dt)
      score = np.zeros(300)
      score[[7, 8, 9]] = [3.0, 2.0, 1.0]
      ws = np.array([0, 5, 250])
      Q = np.asarray(gram(ws, score))
      assert Q.dtype == dt and products == [64]
      np.testing.assert_allclose(Q[ws], full[ws], rtol=rtol, atol=rtol)
      np.testing.assert_allclose(Q[[7, 8, 9]], full[[7, 8, 9]], rtol=rtol, atol=rtol)
      # formed rows are not formed again; 200 new ones take a product of 256
      Q = np.asarray(gram(np.array([0, 7]), score))
      assert products == [64]
      ws = np.setdiff1d(np.arange(300), np.flatnonzero(Q.any(axis=1)))[:200]
      Q = np.asarray(gram(ws, score))
      assert products == [64, 256]
      np.testing.assert_allclose(Q[ws], full[ws], rtol=rtol, atol=rtol)


def test_gram_rows_at_full_precision_and_the_path_as_with_the_whole_matrix(wide, x64):
  # The rows are a full-precision product (a GPU's default float32 matmul is TF32, ~1e-3:
  # on a CPU the tests cannot see it, so the program is read); and a working-set path on
  # rows formed as they are reached is the path on the whole Gram matrix, to rounding.
  import jax
  import jax.numpy as jnp
  from wdjax.path import working_set
  from wdjax.path.problem import _centered, _gram
  X, y = wide
  xt = jnp.asarray(X[:, :50].T)
  program = str(jax.make_jaxpr(working_set._set_rows)(jnp.zeros((50, 50)), xt,
                                                        jnp.arange(8)))
  assert "precision=(Precision.HIGHEST, Precision.HIGHEST)" in program, program
  Xc, _, _, _, b, yy = _centered(X, y, False)
  lam_max = path.lambda_max(X, y, l1_ratio=0.5)
  lams = path.lambda_grid(lam_max, 6, eps=0.05)
  kw = dict(kind="elastic_net", max_iter=20_000, check_every=10, polish=True)
  whole = jnp.asarray(_gram(Xc, jnp.float64))
  run = lambda gram: working_set._path_working_sets(gram, jnp.asarray(b), yy, lams, 0.5,
                                                    lam_max, 1e-12 * yy, kw)
  rows, full = run(working_set._GramRows(Xc, jnp.float64)), run(lambda ws, score: whole)
  np.testing.assert_array_equal(rows[0] != 0, full[0] != 0)
  np.testing.assert_allclose(rows[0], full[0], rtol=0, atol=1e-10 * np.abs(full[0]).max())
  assert (rows[1] <= 1e-12 * yy).all() and (full[1] <= 1e-12 * yy).all()


def test_fista_checks_a_small_problem_every_two_steps(diabetes, x64):
  # Below tol 5e-5, without working sets on <= 64 features, FISTA checks the gap (and
  # tries the support solve) every 2 steps by default, every 10 elsewhere (at the default
  # tol too); an explicit check_every is kept. The path is the same to rounding.
  X, y = diabetes
  kw = dict(l1_ratio=0.5, n_lambdas=20, solver="fista", dtype="float64", tol=1e-12)
  small, ten = path.enet_path(X, y, **kw), path.enet_path(X, y, check_every=10, **kw)
  # (λ_max takes no step: w = 0 is its solution)
  assert (small.n_iter % 2 == 0).all() and small.n_iter[small.n_iter > 0].min() == 2
  assert (ten.n_iter % 10 == 0).all() and ten.n_iter[ten.n_iter > 0].min() == 10
  np.testing.assert_allclose(small.coefs, ten.coefs, rtol=0,
                             atol=1e-9 * np.abs(ten.coefs).max())
  loose = path.enet_path(X, y, **dict(kw, tol=1e-4))
  assert (loose.n_iter % 10 == 0).all()


def test_empty_design_matrix_is_a_clear_error():
  import numpy as np
  with pytest.raises(ValueError, match="at least one sample and one feature"):
    path.lasso_path(np.zeros((5, 0)), np.ones(5))


# ------------------------------------------------ coordinate descent (solver="cd")
# The default at sklearn's tolerance. Each test below uses 12 λ on d = 2000 or the default
# grid on diabetes, so the compiled path programs are shared between them.


def _lasso_gap(X, y, w, lam):
  """sklearn's duality gap of the lasso at w, in NumPy (the dual point r·min(1, λn/‖Xᵀr‖∞))."""
  n = X.shape[0]
  r = y - X @ w
  kappa = min(1.0, lam * n / np.max(np.abs(X.T @ r)))
  primal = 0.5 * r @ r / n + lam * np.sum(np.abs(w))
  return primal - (kappa * r @ y - 0.5 * kappa ** 2 * r @ r) / n


@pytest.mark.parametrize("problem", ["wide", "correlated"])
def test_cd_path_matches_sklearn(problem, request):
  X, y = request.getfixturevalue(problem)
  res = path.lasso_path(X, y, n_lambdas=12, eps=5e-2, dtype="float64", tol=1e-10, solver="cd")
  assert res.converged.all() and (res.coefs[-1] != 0).sum() > 10
  _assert_same_path(res.coefs, _sklearn(lasso_path, X, y, res.lambdas))
  enet = path.enet_path(X, y, l1_ratio=0.5, n_lambdas=12, eps=1e-1, dtype="float64",
                        tol=1e-10, solver="cd")
  assert enet.converged.all()
  _assert_same_path(enet.coefs, _sklearn(enet_path, X, y, enet.lambdas, l1_ratio=0.5))


def test_cd_diabetes_raw_with_intercept(diabetes):
  # raw units: column norms from 1e-2 to 1e3, so the per-coordinate step 1/‖x_k‖² matters
  X, y = diabetes
  Xc, yc = X - X.mean(0), y - y.mean()
  res = path.lasso_path(X, y, fit_intercept=True, dtype="float64", tol=1e-10, solver="cd")
  assert res.converged.all()
  _assert_same_path(res.coefs, _sklearn(lasso_path, Xc, yc, res.lambdas))
  k = 40
  ref = Lasso(alpha=res.lambdas[k], tol=1e-12, max_iter=1_000_000).fit(X, y)
  assert res.intercepts[k] == pytest.approx(ref.intercept_, rel=1e-8)


def test_default_tol_is_sklearns_and_its_gaps_are_certified(wide):
  # lasso_path(X, y) stops at sklearn's default gap 1e-4·‖y‖²/n by coordinate descent; every
  # returned gap is checked again in NumPy, and the coefficients are within the 1e-2 of the
  # largest that the docstring promises at this tolerance
  X, y = wide
  n = X.shape[0]
  yy = y @ y / n
  res = path.lasso_path(X, y, n_lambdas=12, eps=5e-2)
  assert res.converged.all()
  np.testing.assert_array_equal(res.coefs, path.lasso_path(X, y, n_lambdas=12, eps=5e-2,
                                                           solver="cd").coefs)
  gaps = np.array([_lasso_gap(X, y, w, lam) for lam, w in zip(res.lambdas, res.coefs)])
  # the library's gap uses c = Xᵀr in X's dtype (float32 by default here): ~1e-7 relative
  np.testing.assert_allclose(res.gaps, gaps, rtol=1e-3, atol=1e-7 * yy)
  assert np.all(gaps <= 1e-4 * yy * (1 + 1e-3))
  exact = _sklearn(lasso_path, X, y, res.lambdas)
  assert np.max(np.abs(res.coefs - exact)) <= 1e-2 * np.max(np.abs(exact))


def test_cd_zero_column_and_float32(wide):
  X, y = wide
  X = X.copy()
  X[:, 3] = 0.0   # a zero column: L_k = 0, its coefficient must stay 0 (no 0/0)
  res = path.lasso_path(X, y, n_lambdas=12, eps=5e-2, dtype="float32", tol=1e-6, solver="cd")
  assert res.converged.all() and np.all(np.isfinite(res.coefs))
  assert np.all(res.coefs[:, 3] == 0)
  ref = _sklearn(lasso_path, X, y, res.lambdas)
  np.testing.assert_allclose(res.coefs, ref, rtol=0, atol=1e-2 * np.max(np.abs(ref)))


def test_cd_non_convergence_is_reported(wide):
  X, y = wide
  with pytest.warns(path.PathConvergenceWarning, match="max_iter=10") as rec:
    res = path.lasso_path(X, y, n_lambdas=12, eps=1e-3, tol=1e-12, max_iter=10, solver="cd",
                          dtype="float64")
  assert not res.converged.all()
  assert rec[0].filename == __file__   # the warning points at the caller's line
  # the cap holds with the support refinement of tight tolerances too (up to the last
  # inner iteration's 1 + 3 sweeps)
  assert (res.n_iter <= 10 + 3).all(), res.n_iter


def test_auto_solver_routing(wide, diabetes, monkeypatch):
  # the lasso's exact path (homotopy) when n <= 128 and d > 64 with FISTA's options at their
  # defaults (below tol 5e-5 also for n <= 800 < d); else CD for wide lasso/enet at
  # tol >= 5e-5; FISTA otherwise. Checked by which
  # kernel runs (each replaced by a recorder: nothing is compiled)
  import wdjax.path as wp
  calls = []
  monkeypatch.setattr(wp, "_cd", lambda *a, **k: calls.append("cd"))
  monkeypatch.setattr(wp, "_homotopy", lambda *a, **k: calls.append("homotopy") or "done")
  monkeypatch.setattr(wp, "_active_set", lambda *a, **k: calls.append("active_set") or "done")

  def fista(gram, b, *a, **k):
    calls.append("fista")
    m = a[1].size   # (lams)
    return np.zeros((m, b.shape[0])), np.zeros(m), np.zeros(m, int)
  monkeypatch.setattr(wp, "_path_working_sets", fista)
  X, y = wide[0][:, :200], wide[1]   # n = 500 > 128
  cases = [(dict(), "cd"), (dict(tol=1e-4), "cd"), (dict(tol=1e-5), "fista"),
           (dict(screening="strong"), "fista"), (dict(polish=False), "fista")]
  for kwargs, want in cases:
    calls.clear()
    path.lasso_path(X, y, n_lambdas=3, eps=0.5, dtype="float64", **kwargs)
    assert calls == [want], (kwargs, calls)
  # below CD's tolerances the homotopy also for 128 < n <= 800 when n < d (FISTA the
  # alternative there); not at CD's tolerances, nor for n >= d
  Xw, yw = wide
  for Xs, kwargs, want in [(X[:128], dict(), "homotopy"), (X[:100], dict(tol=1e-10), "homotopy"),
                           (X[:129], dict(), "cd"), (X[:100], dict(screening="strong"), "fista"),
                           (X[:100], dict(method="vmap"), None),
                           (Xw[:500, :600], dict(tol=1e-5), "homotopy"),
                           (Xw[:500, :600], dict(tol=1e-4), "cd"),
                           (Xw[:500, :500], dict(tol=1e-5), "fista"),
                           (np.vstack([Xw, Xw])[:, :1200], dict(tol=1e-5), "homotopy"),
                           (np.vstack([Xw, Xw, Xw[:1]])[:, :1200], dict(tol=1e-5), "fista")]:
    calls.clear()
    ys = np.resize(yw, Xs.shape[0])
    path.lasso_path(Xs, ys, n_lambdas=3, eps=0.5, dtype="float64", **kwargs)
    assert calls == ([want] if want else []), (Xs.shape, kwargs, calls)
  # the elastic net's exact solver on the same terms (0 < l1_ratio < 1), and the homotopy
  # for l1_ratio = 1 (the lasso)
  for Xs, kwargs, want in [(X[:100], dict(), "active_set"),
                           (X[:199], dict(tol=1e-10), "active_set"), (X[:201], dict(), "cd"),
                           (X[:200], dict(), "cd"),   # (n < d only)
                           (X[:100], dict(polish=False), "fista"),
                           (X[:100], dict(l1_ratio=1.0), "homotopy"),
                           (Xw[:500, :600], dict(l1_ratio=1.0, tol=1e-6), "homotopy")]:
    calls.clear()
    kwargs.setdefault("l1_ratio", 0.5)
    path.enet_path(Xs, y[:Xs.shape[0]], n_lambdas=3, eps=0.5, dtype="float64", **kwargs)
    assert calls == [want], (Xs.shape, kwargs, calls)
  # a target for the optimality conditions (kkt_tol) is CD's: it takes FISTA's place, and
  # the exact solvers' only where their certificates (1e-9·λ_max) are at least as tight
  for fn, Xs, kwargs, want in [
      (path.lasso_path, X, dict(tol=1e-5, kkt_tol=1e-6), "cd"),
      (path.lasso_path, X[:100], dict(kkt_tol=1e-6), "homotopy"),
      (path.lasso_path, X[:100], dict(kkt_tol=1e-10), "cd"),
      (functools.partial(path.enet_path, l1_ratio=0.5), X[:100], dict(kkt_tol=2e-9),
       "active_set"),
      (functools.partial(path.enet_path, l1_ratio=0.5), X[:100], dict(kkt_tol=1e-9), "cd"),
      (path.lasso_path, diabetes[0], dict(kkt_tol=1e-6), "cd")]:
    calls.clear()
    fn(Xs, np.resize(y, Xs.shape[0]), n_lambdas=3, eps=0.5, dtype="float64", **kwargs)
    assert calls == [want], (Xs.shape, kwargs, calls)
  for tol in (1e-4, 1e-10):  # the group lasso: block CD at every tol (screening is not its)
    calls.clear()
    path.group_lasso_path(X, y, np.arange(200) // 4, n_lambdas=3, eps=0.5, dtype="float64",
                          tol=tol, screening=False)
    assert calls == ["cd"], tol
  calls.clear()   # one 40-wide group among singletons: padding would be 24x X, FISTA
  uneven = np.concatenate([np.zeros(40, int), np.arange(1, 61)])
  path.group_lasso_path(X[:, :100], y, uneven, n_lambdas=3, eps=0.5, dtype="float64")
  assert calls == []
  for fn in (path.lasso_path, path.enet_path):
    calls.clear()
    fn(diabetes[0], diabetes[1], n_lambdas=3, eps=0.5, dtype="float64")
    assert calls == []   # d = 10: the scanned FISTA solver, no working sets
  calls.clear()
  import jax
  # an accelerator machine: CD, homotopy and active set are CPU solvers. device="auto" (the
  # default) runs a warm path on the host CPU, so it routes as on a CPU, with its
  # computations placed there; device="default" stays on the accelerator (FISTA)
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  for name in ("_cd", "_homotopy", "_active_set"):
    solve = getattr(wp, name)
    monkeypatch.setattr(wp, name, lambda *a, solve=solve, **k: (
        calls.append(wp._platform()), solve(*a, **k))[1])
  for device, want in (("auto", ["cpu", "cd", "cpu", "homotopy", "cpu", "active_set"]),
                       ("default", ["fista", "fista", "fista"])):
    calls.clear()
    path.lasso_path(X, y, n_lambdas=3, eps=0.5, dtype="float64", device=device)
    path.lasso_path(X[:100], y[:100], n_lambdas=3, eps=0.5, dtype="float64", device=device)
    path.enet_path(X[:100], y[:100], n_lambdas=3, eps=0.5, dtype="float64", device=device)
    assert calls == want, device
  vmapped = wp._path_vmap
  monkeypatch.setattr(wp, "_path_vmap", lambda *a, **k: (calls.append(wp._platform()),
                                                        vmapped(*a, **k))[1])
  for device, want in (("auto", ["gpu"]), ("cpu", ["cpu"])):   # all λ at once: stays, or asked
    calls.clear()
    path.lasso_path(X[:100, :50], y[:100], n_lambdas=3, eps=0.5, dtype="float64",
                    method="vmap", device=device)
    assert calls == want, device
  with pytest.raises(ValueError, match="device must be one of"):
    path.lasso_path(X, y, device="gpu")
  # a JAX without a CPU backend (JAX_PLATFORMS=cuda): "auto" stays on the accelerator,
  # "cpu" is an error that names the fix
  devices = jax.devices
  monkeypatch.setattr(jax, "devices", lambda *a: (_ for _ in ()).throw(RuntimeError("no cpu"))
                      if a == ("cpu",) else devices(*a))
  calls.clear()
  path.lasso_path(X, y, n_lambdas=3, eps=0.5, dtype="float64")
  assert calls == ["fista"]
  with pytest.raises(ValueError, match="JAX_PLATFORMS"):
    path.lasso_path(X, y, n_lambdas=3, eps=0.5, dtype="float64", device="cpu")


def test_cd_enet_gaps_are_certified(correlated):
  # the elastic net's gap in NumPy, written as a lasso on augmented data (sklearn's dual point)
  X, y = correlated
  n, d = X.shape
  yy = y @ y / n
  alpha = 0.5
  res = path.enet_path(X, y, l1_ratio=alpha, n_lambdas=12, eps=1e-1, solver="cd")
  assert res.converged.all()
  for lam, w, gap in zip(res.lambdas, res.coefs, res.gaps):
    r = y - X @ w
    rho = X.T @ r / n - lam * (1 - alpha) * w
    kappa = min(1.0, lam * alpha / np.max(np.abs(rho)))
    want = (0.5 * r @ r / n * (1 + kappa ** 2) + lam * alpha * np.abs(w).sum()
            - kappa * r @ y / n + 0.5 * lam * (1 - alpha) * (1 + kappa ** 2) * w @ w)
    assert want <= 1e-4 * yy * (1 + 1e-3)
    np.testing.assert_allclose(gap, want, rtol=1e-3, atol=1e-7 * yy)


def test_cd_edge_cases(wide):
  X, y = wide[0][:, :100], wide[1]
  lam_max = path.lambda_max(X, y)
  # λ above λ_max: zero at once; a single λ; y = 0: zero with gap 0
  res = path.lasso_path(X, y, lambdas=[2 * lam_max, lam_max], solver="cd", dtype="float64")
  assert res.converged.all() and np.all(res.coefs == 0) and np.all(res.n_iter == 0)
  res = path.lasso_path(X, np.zeros_like(y), lambdas=[0.1], solver="cd", dtype="float64")
  assert res.converged.all() and np.all(res.coefs == 0)


def test_cd_zero_columns_do_not_crowd_out_features():
  # constant columns (zero after centering) at the lowest indices, the signal on the
  # highest: the working set must hold the real candidates, not the zero columns (a review
  # found a version that took them in index order and never converged here)
  rng = np.random.default_rng(3)
  X = rng.normal(size=(30, 12))
  X[:, :3] = 1.0
  y = 3 * X[:, 11] + 2 * X[:, 10] + 0.1 * rng.normal(size=30)
  res = path.lasso_path(X, y, n_lambdas=8, eps=1e-2, dtype="float64", tol=1e-10, solver="cd",
                        fit_intercept=True)
  assert res.converged.all() and np.all(res.coefs[:, :3] == 0)
  ref = lasso_path(X - X.mean(0), y - y.mean(), alphas=res.lambdas, tol=1e-13,
                   max_iter=100_000)[1].T
  _assert_same_path(res.coefs, ref)


def test_cd_round_cap_is_named(wide, monkeypatch):
  import wdjax.path as wp
  monkeypatch.setattr(wp, "CD_MAX_ROUNDS", 1)
  X, y = wide
  with pytest.warns(path.PathConvergenceWarning, match="1 working-set rounds"):
    path.lasso_path(X, y, n_lambdas=12, eps=5e-2, tol=1e-10, solver="cd", dtype="float64")


def test_cd_helpers_against_numpy():
  # the two pieces of the CD solver that the path comparisons reach only indirectly
  import jax.numpy as jnp
  from wdjax.path.coordinate_descent import (_UNROLL, _anderson, _oldest_first, _pack,
                                               _smallest)
  # Anderson extrapolation is exact on a linear fixed-point iteration x ← Ax + c in
  # dimension <= K (the minimal polynomial of A has degree <= K): it returns x* = (I−A)⁻¹c
  rng = np.random.default_rng(0)
  A = 0.3 * rng.normal(size=(4, 4))
  c = rng.normal(size=4)
  H = [np.zeros(4)]
  for _ in range(5):
    H.append(A @ H[-1] + c)
  H = np.stack(H)
  coef = np.asarray(_anderson(jnp.asarray(H, jnp.float32)))
  np.testing.assert_allclose(coef.sum(), 1.0, rtol=1e-5)
  np.testing.assert_allclose(coef @ H[1:], np.linalg.solve(np.eye(4) - A, c), atol=1e-3)
  # the working set: the `size` smallest scores (NumPy's argsort), then the padding index d
  d = 300
  score = rng.normal(size=d)
  score[[5, 17]] = -np.inf          # the support comes first whatever the size
  for size in (2, 20, 40, 200, 300):
    ws = np.asarray(_smallest(jnp.asarray(score), size))
    assert ws.shape == (d + _UNROLL,)
    assert set(ws[:size]) == set(np.argsort(score, kind="stable")[:size])
    assert np.all(ws[size:] == d)
  # zero columns score +inf and are never taken (their coefficient cannot leave 0): when
  # fewer finite scores than asked remain, the set is shorter and padded with d; equal
  # scores are ties taken in index order; no candidates at all leaves the support alone
  score[[0, 1, 7, 8]] = np.inf      # low indices: they must not push finite ones out
  finite_order = [i for i in np.argsort(score, kind="stable") if np.isfinite(score[i])
                  or score[i] == -np.inf]
  for size in (295, 296, 297, 298, 299, 300):
    ws = np.asarray(_smallest(jnp.asarray(score), size))
    real = ws[ws < d]
    assert set(real) == set(finite_order[:size])
    assert list(ws[:real.size]) == list(real) and np.all(ws[real.size:] == d)
  tied = np.zeros(10)
  tied[3] = -np.inf
  np.testing.assert_array_equal(np.asarray(_smallest(jnp.asarray(tied), 4))[:5], [3, 0, 1, 2, 10])
  none = np.full(6, np.inf)
  none[1] = -np.inf
  np.testing.assert_array_equal(np.asarray(_smallest(jnp.asarray(none), 1))[:3], [1, 6, 6])
  # the compaction under both: kept values in order from `offset`, dropped at `limit`
  keep = rng.random(40) < 0.4
  vals = rng.permutation(40).astype(np.int32)
  out = np.asarray(_pack(jnp.asarray(vals), jnp.asarray(keep), jnp.full(45, -1, jnp.int32),
                         offset=3, limit=10))
  expect = np.full(45, -1)
  expect[3:3 + min(keep.sum(), 7)] = vals[keep][:7]
  np.testing.assert_array_equal(out, expect)
  # Anderson's ring: rows written at steps 1..9 into 6 slots (step t at t mod 6) read back
  # oldest first are the last 6 steps in order
  ring = np.zeros((6, 2))
  for t in range(1, 10):
    ring[t % 6] = t
  np.testing.assert_array_equal(np.asarray(_oldest_first(jnp.asarray(ring), 9 % 6))[:, 0],
                                np.arange(4, 10))


# ------------------------------------------------------ the exact path (solver="homotopy")


def _assert_lasso_kkt(X, y, res, rtol):
  """The lasso's optimality conditions in NumPy at every λ: x_jᵀr/n = λ·sign(w_j) on the
  support, |x_jᵀr/n| <= λ off it (to rtol·λ_max)."""
  n = X.shape[0]
  slack = rtol * res.lambdas[0]
  for lam, w in zip(res.lambdas, res.coefs):
    c = X.T @ (y - X @ w) / n
    on = w != 0
    np.testing.assert_allclose(c[on], lam * np.sign(w[on]), rtol=0, atol=slack)
    assert np.all(np.abs(c[~on]) <= lam + slack)


def test_homotopy_matches_sklearn_lars_at_its_breakpoints(correlated):
  # sklearn's LARS-lasso (an independent homotopy, in NumPy with Cholesky updates) gives
  # the exact coefficients at its breakpoints: the same λ as our grid give the same path
  from sklearn.linear_model import lars_path
  X, y = correlated
  n = X.shape[0]
  alphas, _, coefs = lars_path(X, y, method="lasso", alpha_min=2e-2 * np.max(np.abs(X.T @ y)) / n)
  lams = alphas[alphas > 0]
  res = path.lasso_path(X, y, lambdas=lams, solver="homotopy")
  assert res.converged.all() and res.n_iter.sum() >= lams.size - 1
  np.testing.assert_allclose(res.coefs, coefs[:, :lams.size].T, rtol=0,
                             atol=1e-9 * np.max(np.abs(coefs)))
  _assert_lasso_kkt(X, y, res, 1e-10)


def test_homotopy_slot_stages_match_sklearn_lars():
  # k = min(n, d) >= 256 slots run in stages (homotopy._stages: k/2, then k): the path
  # through the stage boundary (the support grows past 150 of 300 slots) is still sklearn's
  # LARS at its breakpoints, with the optimality conditions to 1e-10·λ_max; below CD's
  # tolerances "auto" takes this path (n = 300 < d)
  from sklearn.linear_model import lars_path
  from wdjax.path import homotopy
  assert homotopy._stages(300) == (150, 300) and homotopy._stages(255) == (255,)
  rng = np.random.default_rng(3)
  n, d = 300, 450
  X = rng.normal(size=(n, d))
  y = X[:, :40] @ rng.normal(size=40) + rng.normal(size=n)
  alphas, _, coefs = lars_path(X, y, method="lasso", alpha_min=1e-3 * np.max(np.abs(X.T @ y)) / n)
  lams = alphas[alphas > 0]
  res = path.lasso_path(X, y, lambdas=lams, solver="homotopy")
  assert res.converged.all() and (res.coefs[-1] != 0).sum() > 150
  np.testing.assert_allclose(res.coefs, coefs[:, :lams.size].T, rtol=0,
                             atol=1e-9 * np.max(np.abs(coefs)))
  _assert_lasso_kkt(X, y, res, 1e-10)
  auto = path.lasso_path(X, y, lambdas=lams, tol=1e-8)
  np.testing.assert_array_equal(auto.coefs, res.coefs)


def test_homotopy_carries_correlations_between_sparse_grid_lambdas():
  # With a grid λ every 25 breakpoints, 24 of 25 steps carry c = Xᵀr/n along the path
  # (c − Δ·a) instead of taking it afresh from X, and correct w_A only after a fresh one:
  # the coefficients are still sklearn's LARS at those λ and the conditions hold to
  # 1e-10·λ_max (300 x 450: ~600 breakpoints, through the slot stages)
  from sklearn.linear_model import lars_path
  rng = np.random.default_rng(4)
  n, d = 300, 450
  X = rng.normal(size=(n, d))
  y = X[:, :40] @ rng.normal(size=40) + rng.normal(size=n)
  alphas, _, coefs = lars_path(X, y, method="lasso", alpha_min=1e-3 * np.max(np.abs(X.T @ y)) / n)
  keep = np.flatnonzero(alphas > 0)[::25]
  res = path.lasso_path(X, y, lambdas=alphas[keep], solver="homotopy")
  assert res.converged.all() and res.n_iter.sum() > 20 * keep.size
  np.testing.assert_allclose(res.coefs, coefs[:, keep].T, rtol=0,
                             atol=1e-9 * np.max(np.abs(coefs)))
  _assert_lasso_kkt(X, y, res, 1e-10)


@pytest.mark.parametrize("eps, seed", [(1e-3, 7), (3e-4, 1)])
def test_homotopy_near_duplicate_columns_stay_certified(eps, seed):
  # 30 pairs of near-duplicate columns (x_{j+1} = x_j + eps·noise): an ill-conditioned Q_AA
  # amplifies the drift of a carried c (to 1e-10·λ_max and beyond), so the homotopy takes
  # c afresh every step once it drifts; every λ is then certified, as with c afresh always
  rng = np.random.default_rng(seed)
  n, d = 120, 300
  X = rng.normal(size=(n, d))
  X[:, 1:60:2] = X[:, 0:60:2] + eps * rng.normal(size=(n, 30))
  y = X[:, :20] @ rng.normal(size=20) + 0.5 * rng.normal(size=n)
  res = path.lasso_path(X, y, solver="homotopy", tol=1e-10)
  assert res.converged.all()
  _assert_lasso_kkt(X, y, res, 1e-9)


def test_homotopy_default_path_is_exact_and_its_gaps_certified(correlated, diabetes):
  # the default call on the correlated problem (n <= 128 < d: the homotopy) and the
  # homotopy on diabetes (n > d) are the exact path whatever tol asks: the optimality
  # conditions to 1e-10·λ_max all the way to n non-zeros, and every gap reported equal to
  # P(w) − D(θ) recomputed here
  Xd, yd = diabetes[0] - diabetes[0].mean(0), diabetes[1] - diabetes[1].mean()
  for X, y, solver in ((*correlated, "auto"), (Xd, yd, "homotopy")):
    n = X.shape[0]
    res = path.lasso_path(X, y, solver=solver)
    assert res.converged.all()
    _assert_lasso_kkt(X, y, res, 1e-10)
    gaps = np.array([_lasso_gap(X, y, w, lam) for lam, w in zip(res.lambdas, res.coefs)])
    np.testing.assert_allclose(res.gaps, gaps, rtol=0, atol=1e-12 * (y @ y / n))
  assert (res.coefs[-1] != 0).sum() == Xd.shape[1]   # diabetes: all 10 at 1e-3·λ_max
  X, y = correlated
  ref = _sklearn(lasso_path, X, y, path.lasso_path(X, y, n_lambdas=20, eps=2e-2).lambdas)
  _assert_same_path(path.lasso_path(X, y, n_lambdas=20, eps=2e-2).coefs, ref)


def test_homotopy_features_leave_and_come_back():
  # a path on which coefficients cross zero (the lasso modification of LARS): features
  # leave the support and some come back later; the KKT conditions hold throughout
  rng = np.random.default_rng(3)
  n, d = 60, 40
  base = rng.normal(size=(n, 5))
  X = base @ rng.normal(size=(5, d)) + 0.3 * rng.normal(size=(n, d))   # strongly correlated
  y = X[:, :8] @ rng.normal(size=8) + 0.1 * rng.normal(size=n)
  res = path.lasso_path(X, y, n_lambdas=200, eps=1e-4, solver="homotopy")
  support = res.coefs != 0
  left = support[:-1] & ~support[1:]          # (λ index, feature) where it leaves
  came_back = [j for i, j in zip(*np.nonzero(left)) if support[i + 1:, j].any()]
  assert came_back, "the test problem should make a feature leave the support and return"
  _assert_lasso_kkt(X, y, res, 1e-9)
  _assert_same_path(res.coefs, _sklearn(lasso_path, X, y, res.lambdas))


def test_homotopy_collinear_columns_grid_above_lambda_max_and_intercept(diabetes):
  X, y = diabetes
  # a duplicated column: the solution is not unique and the copy can never enter (its Schur
  # complement is 0); the conditions hold (its correlation equals its twin's)
  Xd = np.column_stack([X, X[:, 2]])
  res = path.lasso_path(Xd, y, fit_intercept=True, n_lambdas=30, solver="homotopy")
  assert res.converged.all() and np.all(res.coefs[:, -1] == 0)
  Xc, yc = Xd - Xd.mean(0), y - y.mean()
  _assert_lasso_kkt(Xc, yc, res, 1e-10)
  ref = Lasso(alpha=res.lambdas[20], tol=1e-12, max_iter=1_000_000).fit(X, y)
  np.testing.assert_allclose(res.coefs[20, :10], ref.coef_, rtol=0,
                             atol=1e-8 * np.max(np.abs(ref.coef_)))
  assert res.intercepts[20] == pytest.approx(ref.intercept_, rel=1e-10)
  # λ above λ_max: exactly 0 (and a zero gap)
  lam_max = path.lambda_max(X, y, fit_intercept=True)
  res = path.lasso_path(X, y, fit_intercept=True, lambdas=[3 * lam_max, lam_max, 0.5 * lam_max],
                        solver="homotopy")
  assert np.all(res.coefs[:2] == 0) and np.any(res.coefs[2] != 0) and res.converged.all()


def test_homotopy_falls_back_when_it_cannot_certify(correlated, monkeypatch):
  # a cap on its steps below what the path needs leaves λ uncertified: "auto" solves the
  # path again by its other solver (CD at this tol); solver="homotopy" warns and marks them
  import wdjax.path as wp
  X, y = correlated
  monkeypatch.setattr(wp, "HOMOTOPY_MAX_STEPS_PER_K", 0)   # 64 steps, the path needs more
  calls = []
  real = wp._cd
  monkeypatch.setattr(wp, "_cd", lambda *a, **k: (calls.append("cd"), real(*a, **k))[1])
  res = path.lasso_path(X, y, n_lambdas=12, eps=1e-2, dtype="float64")
  assert calls == ["cd"] and res.converged.all()
  with pytest.warns(path.PathConvergenceWarning, match="homotopy steps") as rec:
    res = path.lasso_path(X, y, n_lambdas=12, eps=1e-2, solver="homotopy")
  assert rec[0].filename == __file__   # the warning points at the caller's line
  # the λ reached before the cap are certified and exact, the others +inf and unconverged
  done = res.converged
  assert done[:3].all() and not done[-1] and np.all(np.isinf(res.gaps[~done]))
  ref = _sklearn(lasso_path, X, y, res.lambdas[done])
  np.testing.assert_allclose(res.coefs[done], ref, rtol=0, atol=REL * np.max(np.abs(ref)))


def test_homotopy_random_small_problems_and_ties():
  # many small random paths (the grid's last λ, rounding at breakpoints, fit_intercept with
  # n < d): the optimality conditions at every λ to 1e-10·λ_max, no negative gap; then tied
  # designs, where several features enter (or leave) at one λ
  rng = np.random.default_rng(0)
  for trial in range(24):
    n, d = [(20, 8), (15, 40), (30, 30)][trial % 3]
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    eps = [1e-3, 1e-2, 0.05, 0.3, 1e-6][trial % 5]
    res = path.lasso_path(X, y, n_lambdas=10, eps=eps, fit_intercept=trial % 2 == 1,
                          solver="homotopy")
    Xc, yc = (X - X.mean(0), y - y.mean()) if trial % 2 else (X, y)
    assert res.converged.all() and np.all(res.gaps >= -1e-13 * (yc @ yc / n)), trial
    _assert_lasso_kkt(Xc, yc, res, 1e-10)
  H = np.array([[1.0, 1.0], [1.0, -1.0]])
  H = np.kron(np.kron(H, H), H)                                 # 8 x 8, orthogonal
  onehot = np.eye(4)[rng.integers(0, 4, 40)]
  for X, y in [(np.eye(6), np.array([3.0, 3, -3, 1, 1, 0])),
               (H, H @ np.array([2.0, 2, -2, 1, 1, 0, 0, 0])),
               (onehot, onehot @ np.array([1.0, 1, -1, 0]))]:
    res = path.lasso_path(X, y, n_lambdas=20, solver="homotopy")
    assert res.converged.all()
    _assert_lasso_kkt(X, y, res, 1e-12)
  # X = I: the path is known in closed form, w = soft(y/n, λ)·n
  res = path.lasso_path(np.eye(6), np.array([3.0, 3, -3, 1, 1, 0]), n_lambdas=20,
                        solver="homotopy")
  y = np.array([3.0, 3, -3, 1, 1, 0])
  want = np.sign(y) * np.maximum(np.abs(y) / 6 - res.lambdas[:, None], 0) * 6
  np.testing.assert_allclose(res.coefs, want, rtol=0, atol=1e-13)


def test_homotopy_float32_input_and_zero_column(correlated):
  # float32 data (and dtype="float32") still gets the float64 path; a zero column stays 0
  X, y = correlated
  X = X.copy()
  X[:, 5] = 0.0
  X32 = X.astype(np.float32)
  res = path.lasso_path(X32, y, n_lambdas=12, eps=5e-2, dtype="float32")
  assert res.converged.all() and res.coefs.dtype == np.float64 and np.all(res.coefs[:, 5] == 0)
  Xr = X32.astype(np.float64)
  _assert_lasso_kkt(Xr, y, res, 1e-10)
  _assert_same_path(res.coefs, _sklearn(lasso_path, Xr, y, res.lambdas))


@pytest.mark.parametrize("call, match", [
    (lambda X, y: path.enet_path(X, y, l1_ratio=0.5, solver="homotopy"), "piecewise linear"),
    (lambda X, y: path.group_lasso_path(X, y, np.arange(10) // 2, solver="homotopy"),
     "piecewise linear"),
    (lambda X, y: path.lasso_path(X, y, solver="homotopy", method="vmap"),
     "solver='homotopy' solves the path with method='warm'"),
    (lambda X, y: path.lasso_path(X, y, solver="active_set"), "0 < l1_ratio < 1"),
    (lambda X, y: path.enet_path(X, y, l1_ratio=1.0, solver="active_set"), "0 < l1_ratio < 1"),
    (lambda X, y: path.group_lasso_path(X, y, np.arange(10) // 2, solver="active_set"),
     "0 < l1_ratio < 1"),
    (lambda X, y: path.enet_path(X, y, solver="active_set", method="vmap"),
     "solver='active_set' solves the path with method='warm'")])
def test_exact_solvers_bad_arguments(diabetes, call, match):
  with pytest.raises(ValueError, match=match):
    call(*diabetes)


# ---------------------------------------------- the exact elastic net (solver="active_set")


def _enet_kkt_and_gaps(X, y, res, alpha, rtol):
  """The elastic net's optimality conditions in NumPy at every λ, x_jᵀr/n − λ(1−α)w_j =
  λα·sign(w_j) on the support and |x_jᵀr/n| <= λα off it (to rtol·λ_max), and each gap
  reported equal to P(w) − D(θ) recomputed here (sklearn's dual point)."""
  n = X.shape[0]
  yy = y @ y / n
  slack = rtol * np.max(np.abs(X.T @ y)) / (n * alpha)   # rtol·λ_max
  for lam, w, gap in zip(res.lambdas, res.coefs, res.gaps):
    r = y - X @ w
    c = X.T @ r / n
    rho = c - lam * (1 - alpha) * w
    on = w != 0
    np.testing.assert_allclose(rho[on], lam * alpha * np.sign(w[on]), rtol=0, atol=slack)
    assert np.all(np.abs(c[~on]) <= lam * alpha + slack)
    kappa = min(1.0, lam * alpha / np.max(np.abs(rho))) if np.any(rho) else 1.0
    want = (0.5 * r @ r / n * (1 + kappa ** 2) + lam * alpha * np.abs(w).sum()
            - kappa * r @ y / n + 0.5 * lam * (1 - alpha) * (1 + kappa ** 2) * w @ w)
    np.testing.assert_allclose(gap, want, rtol=0, atol=1e-12 * yy)


@pytest.mark.parametrize("alpha", [0.5, 0.9])
def test_active_set_enet_is_exact_against_sklearn(correlated, alpha):
  # the default call on the correlated problem (n <= 128 < d: the active-set solver) is the
  # exact path: sklearn's enet_path at tol 1e-12 to 1e-6 of the largest coefficient, same
  # support, the optimality conditions to 1e-10·λ_max, the gaps P − D as recomputed here
  X, y = correlated
  res = path.enet_path(X, y, l1_ratio=alpha, n_lambdas=30, eps=1e-2)
  assert res.converged.all() and res.n_iter.sum() >= 30
  same = path.enet_path(X, y, l1_ratio=alpha, n_lambdas=30, eps=1e-2, solver="active_set")
  np.testing.assert_array_equal(res.n_iter, same.n_iter)   # (the default took it)
  _enet_kkt_and_gaps(X, y, res, alpha, 1e-10)
  ref = _sklearn(enet_path, X, y, res.lambdas, l1_ratio=alpha)
  _assert_same_path(res.coefs, ref)
  # the objective in NumPy, apart from any gap formula: no worse than sklearn's at tol
  # 1e-12, and each reported gap bounds the distance to it (weak duality)
  n = X.shape[0]
  yy = y @ y / n

  def objective(w, lam):
    r = y - X @ w
    return 0.5 * r @ r / n + lam * (alpha * np.abs(w).sum() + 0.5 * (1 - alpha) * w @ w)

  for lam, w, w_ref, gap in zip(res.lambdas, res.coefs, ref, res.gaps):
    excess = objective(w, lam) - objective(w_ref, lam)
    assert excess <= 1e-12 * yy and gap >= excess - 1e-12 * yy
  # with an intercept, against sklearn's ElasticNet at one λ
  res = path.enet_path(X, y + 3.0, l1_ratio=alpha, n_lambdas=30, eps=1e-2, fit_intercept=True,
                       solver="active_set")
  ref = ElasticNet(alpha=res.lambdas[20], l1_ratio=alpha, tol=1e-12,
                   max_iter=1_000_000).fit(X, y + 3.0)
  np.testing.assert_allclose(res.coefs[20], ref.coef_, rtol=0,
                             atol=REL * np.max(np.abs(ref.coef_)))
  assert res.intercepts[20] == pytest.approx(ref.intercept_, rel=1e-9)


def _leaving_problem(rng, n=30, d=80):
  # a correlated design (rank-5 structure plus noise) whose elastic-net paths have features
  # leaving the support
  base = rng.normal(size=(n, 5))
  X = base @ rng.normal(size=(5, d)) + 0.3 * rng.normal(size=(n, d))
  return X, X[:, :8] @ rng.normal(size=8) + 0.1 * rng.normal(size=n)


def test_active_set_random_problems_drops_and_closed_form():
  # random paths with n < d and n > d, on correlated designs where coefficients cross zero
  # (the line search drops them; some come back): optimality conditions and gaps at every λ
  rng = np.random.default_rng(1)
  dropped = 0
  for trial in range(8):
    X, y = _leaving_problem(rng, *[(30, 80), (60, 40)][trial % 2])
    alpha = [0.3, 0.7, 0.95][trial % 3]
    res = path.enet_path(X, y, l1_ratio=alpha, n_lambdas=40, eps=1e-3,
                         fit_intercept=trial % 2 == 1, solver="active_set")
    Xc, yc = (X - X.mean(0), y - y.mean()) if trial % 2 else (X, y)
    assert res.converged.all(), trial
    _enet_kkt_and_gaps(Xc, yc, res, alpha, 1e-9)
    support = res.coefs != 0
    dropped += np.sum(support[:-1] & ~support[1:])
  assert dropped > 0, "the problems should make features leave the support"
  # X = I: w = soft(y/n, λα)/(1/n + λ(1−α)), per coordinate
  y = np.array([3.0, 2.0, -3.0, 1.0, 0.5, 0.0])
  res = path.enet_path(np.eye(6), y, l1_ratio=0.5, n_lambdas=20, solver="active_set")
  lam = res.lambdas[:, None]
  want = np.sign(y) * np.maximum(np.abs(y) / 6 - 0.5 * lam, 0) / (1 / 6 + 0.5 * lam)
  # (1e-12, not the homotopy's 1e-13: the n-space solve subtracts two terms of size
  # ‖X_A‖²/(nμ) times the result, here ~10, and loses that many ulps)
  np.testing.assert_allclose(res.coefs, want, rtol=0, atol=1e-12)


def test_active_set_predicted_leaves_and_tied_drops():
  # a member whose coefficient, extrapolated linearly in λ, changes sign leaves before the
  # λ's first solve: some leave at a λ that then takes a single step (without the
  # prediction a leave takes a step to drop it and one to solve again). Grids 4.5% apart:
  # no bridges, n_iter is per grid λ
  rng = np.random.default_rng(1)
  seen = 0
  for _ in range(6):
    X, y = _leaving_problem(rng)
    res = path.enet_path(X, y, l1_ratio=0.7, n_lambdas=100, eps=1e-2, solver="active_set")
    assert res.converged.all()
    _enet_kkt_and_gaps(X, y, res, 0.7, 1e-9)
    left = ((res.coefs[:-1] != 0) & (res.coefs[1:] == 0)).any(axis=1)
    seen += np.sum(left & (res.n_iter[1:] == 1))
  assert seen > 0
  # nine copies of a feature that leaves: they cross zero together, more than the 8 slot
  # writes of a step (the rest set to zero, leaving at the next step); the ridge term
  # gives the copies equal shares at every λ
  X, y = _leaving_problem(np.random.default_rng(1))
  first = path.enet_path(X, y, l1_ratio=0.7, n_lambdas=100, eps=1e-2, solver="active_set")
  on = first.coefs != 0
  j = int(np.flatnonzero((on[:-1] & ~on[1:]).any(axis=0))[0])
  Xc = np.column_stack([X] + [X[:, [j]]] * 9)
  res = path.enet_path(Xc, y, l1_ratio=0.7, n_lambdas=100, eps=1e-2, solver="active_set")
  assert res.converged.all()
  _enet_kkt_and_gaps(Xc, y, res, 0.7, 1e-9)
  copies = res.coefs[:, [j] + list(range(80, 89))]
  np.testing.assert_allclose(copies, copies[:, :1].repeat(10, axis=1), rtol=0,
                             atol=1e-12 * np.max(np.abs(res.coefs)))
  gone = (copies[:-1, 0] != 0) & (copies[1:, 0] == 0)
  assert gone.any(), "the copies should leave the support"
  _assert_same_path(res.coefs, _sklearn(enet_path, Xc, y, res.lambdas, l1_ratio=0.7))


def test_active_set_grid_far_below_lambda_max(correlated):
  # one λ at 1e-3·λ_max (150 non-zeros > n), and a grid that jumps there from λ_max (the
  # default grid with n_lambdas=2): bridged by λ 10% apart, where from far away
  # feature-sign search ran out of steps; the bridge's steps count in the λ after it
  X, y = correlated
  lam_max = path.lambda_max(X, y) / 0.5
  for lams in ([1e-3 * lam_max], [3 * lam_max, lam_max, 1e-3 * lam_max]):
    res = path.enet_path(X, y, l1_ratio=0.5, lambdas=lams, solver="active_set")
    assert res.converged.all() and (res.coefs[-1] != 0).sum() > X.shape[0]
    assert res.n_iter[-1] > 60 and np.all(res.coefs[:-1] == 0)
    _enet_kkt_and_gaps(X, y, res, 0.5, 1e-10)
    _assert_same_path(res.coefs, _sklearn(enet_path, X, y, res.lambdas, l1_ratio=0.5))


def test_active_set_zero_duplicate_columns_and_float32(correlated):
  # a zero column never enters; a duplicated column shares its twin's coefficient equally
  # (the ridge term makes the solution unique); float32 data still gets the float64 path
  X, y = correlated
  X = X[:, :300].astype(np.float32).astype(np.float64)
  first, second = np.argsort(-np.abs(X.T @ y))[:2]   # the first two to enter
  X[:, second] = 0.0
  X = np.column_stack([X, X[:, first]])
  res = path.enet_path(X.astype(np.float32), y, l1_ratio=0.5, n_lambdas=20, eps=1e-2,
                       dtype="float32", solver="active_set")
  assert res.converged.all() and res.coefs.dtype == np.float64
  assert np.all(res.coefs[:, second] == 0) and np.any(res.coefs[:, first] != 0)
  np.testing.assert_allclose(res.coefs[:, first], res.coefs[:, -1], rtol=0,
                             atol=1e-12 * np.max(np.abs(res.coefs)))
  _enet_kkt_and_gaps(X, y, res, 0.5, 1e-10)
  _assert_same_path(res.coefs, _sklearn(enet_path, X, y, res.lambdas, l1_ratio=0.5))


def test_active_set_falls_back_when_it_cannot_certify(correlated, monkeypatch):
  # a step cap below what the path needs leaves λ uncertified: "auto" solves the path
  # again by CD (at this tol); solver="active_set" warns and marks them. The same for a
  # support that outgrows its 4n slots (l1_ratio 0.02 on 20 x 200: 117 features)
  import wdjax.path as wp
  X, y = correlated
  calls = []
  real = wp._cd
  monkeypatch.setattr(wp, "_cd", lambda *a, **k: (calls.append("cd"), real(*a, **k))[1])
  # 1 step per λ and none per slot (`slots` patched where the cap is computed only), 12
  # steps for 12 λ
  monkeypatch.setattr(wp, "ACTIVE_SET_MAX_STEPS_PER_LAMBDA", 1)
  monkeypatch.setattr(wp, "slots", lambda n, d: 0)
  res = path.enet_path(X, y, l1_ratio=0.5, n_lambdas=12, eps=1e-2, dtype="float64")
  assert calls == ["cd"] and res.converged.all()
  with pytest.warns(path.PathConvergenceWarning, match="active-set steps") as rec:
    res = path.enet_path(X, y, l1_ratio=0.5, n_lambdas=12, eps=1e-2, solver="active_set")
  assert rec[0].filename == __file__   # the warning points at the caller's line
  done = res.converged
  assert done[0] and not done[-1] and np.all(np.isinf(res.gaps[~done]))
  ref = _sklearn(enet_path, X, y, res.lambdas[done], l1_ratio=0.5)
  np.testing.assert_allclose(res.coefs[done], ref, rtol=0, atol=REL * np.max(np.abs(ref)))
  monkeypatch.undo()
  rng = np.random.default_rng(0)
  X, y = rng.normal(size=(20, 200)), rng.normal(size=20)
  with pytest.warns(path.PathConvergenceWarning, match="at most 80 features"):
    res = path.enet_path(X, y, l1_ratio=0.02, n_lambdas=10, eps=1e-3, solver="active_set")
  # (the slots ran out, not the steps: the path stopped well below its cap)
  assert not res.converged[-1] and res.n_iter.sum() < 20 * res.lambdas.size
  res = path.enet_path(X, y, l1_ratio=0.02, n_lambdas=10, eps=1e-3)   # auto: CD instead
  assert res.converged.all() and (res.coefs[-1] != 0).sum() > 80


# ----------------------------------------------- whole-loop kernels (use_loop_kernels)

_LOOP_KERNELS_CHILD = r"""
import os, sys, numpy as np
import wdjax.path as p
print(p.use_loop_kernels(), flush=True)
print(os.environ["XLA_FLAGS"], flush=True)
print(p.use_loop_kernels(), flush=True)   # (the first call's threshold is in force)
d = np.load(sys.argv[1])
res = p.lasso_path(d["X"], d["y"], n_lambdas=30, eps=1e-2, solver="homotopy")
np.save(sys.argv[2], res.coefs)
# XLA took the option: the homotopy's loop is compiled as one kernel (XLA's "small call"
# attribute, an internal name: a canary for the option being renamed)
import jax
from wdjax.path.homotopy import homotopy_path
with jax.enable_x64(True):
  Xt = np.ascontiguousarray(d["X"].T)
  low = homotopy_path.lower(Xt, d["y"], res.lambdas, res.lambdas[0], np.int32(100))
  text = low.compile().as_text()
print("small call" if "xla_cpu_small_call" in text else "kernel by kernel")
"""


def test_use_loop_kernels_same_path_in_a_fresh_process(correlated, tmp_path):
  # in a fresh process (on the CPU), before JAX starts: the flag is set, the homotopy's
  # loop is one kernel, and its path is this process's (kernel by kernel) to rounding
  import os
  import subprocess
  import sys
  X, y = correlated
  X = X[:, :300]
  np.savez(tmp_path / "data.npz", X=X, y=y)
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env["JAX_PLATFORMS"] = "cpu"
  out = subprocess.run([sys.executable, "-c", _LOOP_KERNELS_CHILD, str(tmp_path / "data.npz"),
                        str(tmp_path / "coefs.npy")], env=env, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 0, out.stdout + out.stderr
  lines = out.stdout.splitlines()
  assert lines[:3] == [str(64 << 20),
                       "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold="
                       "67108864", str(64 << 20)], out.stdout
  assert lines[3] == "small call", out.stdout
  here = path.lasso_path(X, y, n_lambdas=30, eps=1e-2, solver="homotopy")
  there = np.load(tmp_path / "coefs.npy")
  np.testing.assert_array_equal(there != 0, here.coefs != 0)
  # (two compilations of the same program: 1e-10, not bit equality)
  np.testing.assert_allclose(there, here.coefs, rtol=0, atol=1e-10 * np.max(np.abs(here.coefs)))


def test_use_loop_kernels_flags_and_errors(monkeypatch):
  import os as _os

  import wdjax.path.loop_kernels as lk
  opt = "xla_cpu_small_while_loop_byte_threshold"
  # JAX has started: too late to set the flag (unless XLA_FLAGS already does)
  monkeypatch.setattr(lk, "_backends_started", lambda: True)
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  with pytest.raises(RuntimeError, match="before JAX runs its first computation"):
    path.use_loop_kernels()
  monkeypatch.setenv("XLA_FLAGS", f"--xla_backend_extra_options={opt}=4096")
  assert path.use_loop_kernels() == 4096   # (set in the shell: in force from the start)
  with pytest.warns(UserWarning, match="already sets"):
    assert path.use_loop_kernels(1024) == 4096
  for bad in (0, -1, 2.5, True, "64M", 2 ** 63):
    with pytest.raises(ValueError, match=r"max_bytes must be an integer in \[1, 2\*\*63\)"):
      path.use_loop_kernels(bad)
  assert path.use_loop_kernels(np.int64(4096)) == 4096
  # before the backend starts: a flag of its own, first (XLA merges repeated extra-options
  # flags, and stops reading at a word not starting with "-", as "not_a_flag=1" here)
  monkeypatch.setattr(lk, "_backends_started", lambda: False)
  for user in ("--xla_backend_extra_options=xla_cpu_use_multi_output_fusion "
               "--xla_cpu_multi_thread_eigen=false",
               '--xla_backend_extra_options="a" --xla_cpu_multi_thread_eigen=false',
               "--xla_cpu_multi_thread_eigen=false not_a_flag=1",
               f"--xla_cpu_multi_thread_eigen=false not_a_flag=1 "
               f"--xla_backend_extra_options={opt}=5",   # (after the stop: not read)
               f"--xla_dump_to=/tmp/{opt}=5", ""):
    monkeypatch.setenv("XLA_FLAGS", user)
    assert path.use_loop_kernels(8192) == 8192, user
    assert _os.environ["XLA_FLAGS"] == f"--xla_backend_extra_options={opt}=8192 {user}".strip()
  # the user's threshold, in any extra-options flag before the stop, stands
  monkeypatch.setenv("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=false "
                     f"--xla_backend_extra_options='a,{opt}=1000000000'")
  assert path.use_loop_kernels() == 1_000_000_000
  # XLA_FLAGS that names a file of flags (XLA reads the file instead)
  monkeypatch.setenv("XLA_FLAGS", "/etc/xla_flags.txt")
  with pytest.raises(ValueError, match="names a file of flags"):
    path.use_loop_kernels()


def test_cpu_jit_compiles_with_the_path_options_on_a_cpu_only(monkeypatch):
  # the path solvers' jit passes CPU_COMPILER_OPTIONS to XLA where it runs on a CPU (an
  # invalid value there must reach XLA and fail) and XLA's defaults elsewhere
  import jax
  import jax.numpy as jnp
  from wdjax.path import compiled
  assert compiled.CPU_COMPILER_OPTIONS == {"xla_backend_optimization_level": 1}
  monkeypatch.setattr(compiled, "CPU_COMPILER_OPTIONS",
                      {"xla_backend_optimization_level": "not a level"})
  double = compiled.cpu_jit(lambda x: 2 * x)
  with jax.default_device(jax.devices("cpu")[0]):   # (on any machine)
    with pytest.raises(Exception, match="xla_backend_optimization_level"):
      double(jnp.ones(3))
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")   # (as an accelerator would)
  assert compiled.platform() == "gpu"
  np.testing.assert_array_equal(double(jnp.ones(3)), 2.0)
  with jax.default_device(jax.devices("cpu")[0]):   # device="auto" on an accelerator
    assert compiled.platform() == "cpu"
    with pytest.raises(Exception, match="xla_backend_optimization_level"):
      double.lower(jnp.ones(3)).compile()


def test_gram_matrix_is_formed_aligned_and_aliased_on_the_cpu_device():
  """The Gram matrix Xᵀ X / n of the FISTA paths without working sets (and of `fista()`)
  is formed whole in a 64-byte-aligned buffer, which
  `jax.device_put` aliases on a CPU (a 32 MB copy and its page faults saved at 500 x 2000,
  benchmarks/README.md run U); a JAX that stopped aliasing would fail here, not slow down
  silently."""
  import jax
  from wdjax.path.problem import _float_dtype, _gram_on_device, _prepare, _x64_scope
  rng = np.random.default_rng(0)
  X, y = rng.normal(size=(30, 50)), rng.normal(size=30)
  for name, rtol in (("float32", 1e-5), ("float64", 1e-12)):
    dt = _float_dtype(name)
    Q = _prepare(X, y, False, dt)[4]
    assert Q.dtype == dt and Q.ctypes.data % 64 == 0
    np.testing.assert_allclose(Q, X.T @ X / 30, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(Q, Q.T)   # the symmetric product (syrk), exactly
    with _x64_scope(dt):
      Qj = _gram_on_device(Q)
    assert Qj.dtype == dt
    np.testing.assert_array_equal(np.asarray(Qj), Q)
    if jax.default_backend() == "cpu":
      assert Qj.unsafe_buffer_pointer() == Q.ctypes.data

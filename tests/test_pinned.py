"""Behaviours that a mutation run found unpinned (issue 16), each against an independent reference.

Every test here was checked to fail on a planted one-line bug (named in its docstring) and
to pass on the right code. The references are written out in NumPy in the test, or come
from scikit-learn or a closed form; none calls the code path it checks a second time.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from sklearn.linear_model import ElasticNet

import wdjax
from wdjax import config, data, models, path, report, train, tune, variants


def _peak_kw(fn, value):
  """η_peak by whichever name `fn` takes: `peak_learning_rate` (new) or `max_learning_rate`."""
  params = inspect.signature(fn).parameters
  name = "peak_learning_rate" if "peak_learning_rate" in params else "max_learning_rate"
  return {name: value}


def _decay_kw(fn, value):
  """λ by whichever name `fn` takes: `weight_decay` (new presets) or `strength`."""
  name = "weight_decay" if "weight_decay" in inspect.signature(fn).parameters else "strength"
  return {name: value}


def _get_optimizer(name, **options):
  """The training optimizer `name` as a builder `hparams -> GradientTransformation`."""
  get = getattr(train, "get_optimizer", None)
  if get is None:  # the registry moved to wdjax.optimizers
    from wdjax import optimizers
    get = optimizers.get
  return get(name, **options)


def _soft(z, t):
  return np.sign(z) * np.maximum(np.abs(z) - t, 0.0)


def _quadratic(seed, shape):
  """A least-squares-like gradient g(w) = A(w − w*) per coordinate, A > 0 diagonal."""
  rng = np.random.default_rng(seed)
  a = rng.uniform(0.5, 2.0, size=shape)
  w_star = rng.normal(size=shape)
  w_star.flat[::3] = 0.01  # |a·w*| < λ there: the l1 minimizer is exactly 0
  w0 = rng.normal(size=shape)
  return a, w_star, w0


def _eta(sched, t):
  # the value the transform sees: optax evaluates a schedule at an int32 count, in float32
  return float(sched(jnp.asarray(t, jnp.int32)))


# Tolerance for trajectories under x64: η_t and the coefficients built from it (η_t/(1−β),
# η_t²/η_peak) are float32 values (a schedule evaluated at an int32 count), so the
# iterates agree to ~1e-8 relative, not 1e-15. The bugs pinned here move them by more
# than 1e-3 relative within a few steps.
RTOL = 1e-6


def _run(tx, params, grad, steps):
  """The params after each of `steps` updates of `tx` with gradient `grad(params)`."""
  state = tx.init(params)
  out = []
  for _ in range(steps):
    updates, state = tx.update(grad(params), state, params)
    params = optax.apply_updates(params, updates)
    out.append(params)
  return out


# --------------------------------------------------------------------------- optimizers


def test_proximal_sgd_momentum_schedule_prox_step(x64):
  """proximal_sgd with momentum β and a schedule η_t: the prox step is η_t/(1−β).

  NumPy: buf ← β·buf + g;  w ← soft(w − η_t·buf, λ·η_t/(1−β)).
  Catches: the schedule branch passing η_t (not η_t/(1−β)) to the prox.
  """
  del x64
  a, w_star, w0 = _quadratic(0, (12,))
  beta, lam, steps = 0.8, 0.05, 15
  sched = optax.linear_schedule(0.2, 0.02, steps)
  grad = lambda p: {"w": jnp.asarray(a) * (p["w"] - jnp.asarray(w_star))}
  tx = wdjax.proximal_sgd(sched, prox=wdjax.prox.l1, momentum=beta, mask=None,
                          **_decay_kw(wdjax.proximal_sgd, lam))
  got = _run(tx, {"w": jnp.asarray(w0)}, grad, steps)

  w, buf = w0.copy(), np.zeros_like(w0)
  for t in range(steps):
    eta = _eta(sched, t)
    buf = beta * buf + a * (w - w_star)
    w = _soft(w - eta * buf, lam * eta / (1 - beta))
    np.testing.assert_allclose(np.asarray(got[t]["w"]), w, rtol=RTOL, atol=1e-9)
  # the threshold acted: some coordinates are exactly 0, some are not
  assert 0 < np.sum(w == 0) < w.size


def test_adamc_decayed_normalized_leaf_uses_eta_squared_over_peak(x64):
  """AdamC on a leaf both decayed and normalized: c_t = η_t²/η_peak, at steps with η_t ≠ η_peak.

  NumPy Adam (bias-corrected) then u ← u − c_t·λ·w, c_t = η_t²/η_peak on the normalized leaf
  and η_t on the other decayed leaf; the bias-like leaf outside the mask is not decayed.
  Catches: c_t = η_t on normalized leaves (AdamW's coefficient).
  """
  del x64
  b1, b2, eps, lam, peak, steps = 0.9, 0.999, 1e-8, 0.5, 0.1, 12
  # η_0 = η_peak (where η²/η_peak = η), then decays to 0.2·η_peak
  sched = optax.linear_schedule(peak, 0.2 * peak, steps)
  rng = np.random.default_rng(1)
  names = ("normed", "plain", "free")
  w0 = {k: rng.normal(size=(3, 4)) for k in names}
  target = {k: rng.normal(size=(3, 4)) for k in names}
  tx = variants.adamc(sched, weight_decay=lam, normalized={"normed": True, "plain": False,
                                                           "free": False},
                      mask={"normed": True, "plain": True, "free": False},
                      b1=b1, b2=b2, eps=eps, **_peak_kw(variants.adamc, peak))
  grad = lambda p: jax.tree.map(lambda w, y: w - jnp.asarray(y), p, target)
  got = _run(tx, jax.tree.map(jnp.asarray, w0), grad, steps)

  w = {k: v.copy() for k, v in w0.items()}
  m = {k: np.zeros((3, 4)) for k in names}
  v = {k: np.zeros((3, 4)) for k in names}
  for t in range(steps):
    eta = _eta(sched, t)
    coef = {"normed": eta ** 2 / peak, "plain": eta, "free": 0.0}
    for k in names:
      g = w[k] - target[k]
      m[k] = b1 * m[k] + (1 - b1) * g
      v[k] = b2 * v[k] + (1 - b2) * g * g
      mh, vh = m[k] / (1 - b1 ** (t + 1)), v[k] / (1 - b2 ** (t + 1))
      w[k] = w[k] - eta * mh / (np.sqrt(vh) + eps) - coef[k] * lam * w[k]
      np.testing.assert_allclose(np.asarray(got[t][k]), w[k], rtol=RTOL, atol=1e-9)


def _linear_problem():
  """A 12 x 4 regression and a linear model (kernel ~ N(0, 1), bias 0 at init)."""
  rng = np.random.default_rng(2)
  x = rng.normal(size=(12, 4)).astype(np.float32)
  y = (x @ np.array([1.5, -0.02, 0.8, 0.01]) + 0.3).astype(np.float32)
  ds = data.Dataset(jnp.asarray(x), jnp.asarray(y), jnp.asarray(x[:4]), jnp.asarray(y[:4]))
  model = models.LinearRegression(4, init_std=1.0, rngs=nnx.Rngs(0))
  return ds, model, x, y


def _numpy_full_batch(x, y, kernel, bias, steps, eta, shrink):
  """Full-batch GD on ½ mean (ŷ−y)², then `shrink(z_kernel)` on the kernel only."""
  w, b = kernel[:, 0].astype(np.float64), float(bias[0])
  for _ in range(steps):
    r = x @ w + b - y
    gw, gb = x.T @ r / len(y), np.mean(r)
    w, b = shrink(w - eta * gw, w), b - eta * gb
  return w, b


def _train_params(name, hparams, steps):
  ds, model, x, y = _linear_problem()
  init = nnx.to_pure_dict(nnx.state(model, nnx.Param))["linear"]
  kernel, bias = np.asarray(init["kernel"]), np.asarray(init["bias"])
  fn = train.make_train_fn(model, ds, optimizer=name, epochs=steps, return_params=True)
  p = fn(hparams, jax.random.key(0))["params"]["linear"]
  return np.asarray(p["kernel"])[:, 0], float(np.asarray(p["bias"])[0]), x, y, kernel, bias


def test_named_proximal_elastic_net_honours_l1_ratio():
  """make_train_fn(optimizer="proximal_elastic_net") with l1_ratio α: ISTA with the enet prox.

  NumPy: w ← soft(z, ηλα)/(1 + ηλ(1−α)), z = w − η∇L; the bias is not regularized.
  Catches: the builder ignoring hparams["l1_ratio"] (e.g. always α = 0.5).
  """
  eta, lam, alpha, steps = 0.2, 0.6, 0.9, 30
  got_w, got_b, x, y, kernel, bias = _train_params(
      "proximal_elastic_net", {"learning_rate": eta, "weight_decay": lam, "l1_ratio": alpha},
      steps)
  shrink = lambda z, w: _soft(z, eta * lam * alpha) / (1 + eta * lam * (1 - alpha))
  want_w, want_b = _numpy_full_batch(x, y, kernel, bias, steps, eta, shrink)
  np.testing.assert_allclose(got_w, want_w, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got_b, want_b, rtol=1e-5, atol=1e-6)
  assert 0 < np.sum(want_w == 0) < want_w.size  # the l1 part acted on some coordinates


def test_named_sgdw_default_is_schedule_coefficient():
  """make_train_fn(optimizer="sgdw") with a constant η: c_t = η_t/η_peak = 1, not η.

  NumPy: w ← w − η∇L − λw on the kernel (Loshchilov & Hutter's SGDW), bias w ← w − η∇L.
  Catches: the builder's default scale_by="lr" (then w ← w − η∇L − ηλw).
  """
  eta, lam, steps = 0.1, 0.05, 5
  got_w, got_b, x, y, kernel, bias = _train_params(
      "sgdw", {"learning_rate": eta, "weight_decay": lam}, steps)
  want_w, want_b = _numpy_full_batch(x, y, kernel, bias, steps, eta,
                                     lambda z, w: z - lam * w)
  np.testing.assert_allclose(got_w, want_w, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got_b, want_b, rtol=1e-5, atol=1e-6)
  # and the same default through get_optimizer (one step on a plain dict, mask=None)
  tx = _get_optimizer("sgdw", mask=None)({"learning_rate": eta, "weight_decay": lam})
  params = {"w": jnp.array([1.0, -2.0])}
  updates, _ = tx.update({"w": jnp.array([0.5, 0.5])}, tx.init(params), params)
  np.testing.assert_allclose(np.asarray(updates["w"]),
                             -eta * np.array([0.5, 0.5]) - lam * np.array([1.0, -2.0]),
                             rtol=1e-6)


# --------------------------------------------------------------------------- path, tune, config


def test_enet_path_cold_start_small_lambda_wide_matches_sklearn(x64):
  """enet_path at one small λ, cold start, d > 64 (working sets): sklearn's ElasticNet.

  At w = 0, 68 features violate |x_jᵀr|/n <= λα, more than the first working set takes
  (32), so the set must grow after the first solve, by the violation test with λα. With λ
  instead, the support features with λα < |x_jᵀr|/n <= λ are never added and the solve
  stops with a gap above tol (a PathConvergenceWarning, an error here).
  Catches: `_grow(ws, c, lam, ...)` in the working-set loop of `_path_working_sets`.
  Polishing is off: it does not touch the working sets, and its compile costs ~4 s.
  """
  del x64
  rng = np.random.default_rng(3)
  n, d, alpha = 40, 80, 0.3
  X = rng.normal(size=(n, d))
  w = np.zeros(d)
  w[:10] = rng.normal(size=10)
  y = X @ w + 0.1 * rng.normal(size=n)
  lam = 0.05 * path.lambda_max(X, y, l1_ratio=alpha)
  res = path.enet_path(X, y, l1_ratio=alpha, lambdas=[lam], polish=False)
  ref = ElasticNet(alpha=lam, l1_ratio=alpha, fit_intercept=False, tol=1e-12,
                   max_iter=1_000_000).fit(X, y)
  assert res.converged.all()
  scale = np.max(np.abs(ref.coef_))
  np.testing.assert_allclose(res.coefs[0], ref.coef_, rtol=0, atol=1e-8 * scale)
  np.testing.assert_array_equal(res.coefs[0] != 0, ref.coef_ != 0)
  # the case that needs λα: more than 32 violators at w = 0, and part of the solution's
  # support violates only λα there
  c0 = np.abs(X.T @ y) / n
  assert np.sum(c0 > lam * alpha) > 32
  assert np.any((ref.coef_ != 0) & (c0 > lam * alpha) & (c0 <= lam))


def test_search_best_matches_best_value():
  """tune.search: `best` is the point whose objective is `best_value`, the smallest seen.

  The training function is the closed-form ridge w(λ) = (XᵀX/n + λI)⁻¹Xᵀy/n with its
  validation loss, recomputed in NumPy at `best` and along the trajectory.
  Catches: recording the next iterate's λ (after the Adam step) as the best/visited point.
  """
  rng = np.random.default_rng(4)
  n, d = 20, 8
  x, xv = rng.normal(size=(n, d)), rng.normal(size=(n, d))
  w_true = rng.normal(size=d)
  y, yv = x @ w_true + rng.normal(size=n), xv @ w_true + rng.normal(size=n)

  def val_loss(lam):
    w = np.linalg.solve(x.T @ x / n + lam * np.eye(d), x.T @ y / n)
    return 0.5 * np.mean((xv @ w - yv) ** 2)

  xj, yj, xvj, yvj = (jnp.asarray(a, jnp.float32) for a in (x, y, xv, yv))

  def train_fn(hparams, key):
    del key
    lam = hparams["weight_decay"]
    w = jnp.linalg.solve(xj.T @ xj / n + lam * jnp.eye(d, dtype=jnp.float32), xj.T @ yj / n)
    return {"val_loss": (0.5 * jnp.mean((xvj @ w - yvj) ** 2))[None]}

  # start far below the optimum: V falls along the whole run, so the best is the last
  # iterate evaluated and the next iterate is a different, better point
  res = tune.search(train_fn, {"weight_decay": 1e-3}, jax.random.key(0), steps=6,
                    learning_rate=0.3)
  lams = res.trajectory["weight_decay"]
  np.testing.assert_allclose(lams[0], 1e-3, rtol=1e-6)  # the first point is the start
  want = np.array([val_loss(lam) for lam in lams])
  np.testing.assert_allclose(res.values, want, rtol=1e-4)
  np.testing.assert_allclose(res.best_value, np.min(res.values), rtol=0)
  np.testing.assert_allclose(val_loss(res.best["weight_decay"]), res.best_value, rtol=1e-4)
  assert res.best["weight_decay"] == lams[int(np.argmin(res.values))]


def test_config_value_check_with_zero_tolerance(tmp_path):
  """`{value = v, tol = 0}` in a TOML config passes at exactly v and fails at any other value."""
  text = ('name = "n"\nkind = "l1_vs_l2"\ndescription = "d"\n'
          '[sweep]\nweight_decay = {values = [0.1]}\n'
          '[expected]\nprox_all_zero_above_lambda_max = {value = 1.0, tol = 0}\n')
  (tmp_path / "c.toml").write_text(text)
  check = config.load(tmp_path / "c.toml").expected["prox_all_zero_above_lambda_max"]
  assert check.passes(1.0)
  assert not check.passes(float(np.nextafter(1.0, 2.0)))
  assert not check.passes(float(np.nextafter(1.0, 0.0)))
  assert not check.passes(float("nan"))
  rows = report.check_rows({"c": check}, {"c": 1.0})
  assert rows[0].passed
  assert config.Check("value", 0.25, 0.0).passes(0.25)


# --------------------------------------------------------------------------- mutation survivors


_NAMES = ("elastic_net", "frobenius", "group_lasso", "l1", "l2", "nuclear")


def test_by_name_maps_every_name_and_refuses_unknown():
  """`prox.by_name` and `penalties.by_name`: each name to its function, a callable unchanged,
  an unknown name refused with the sorted choices (mutmut: no fast test called them)."""
  for module, what in ((wdjax.prox, "prox"), (wdjax.penalties, "penalty")):
    for name in _NAMES:
      assert module.by_name(name) is getattr(module, name)
    assert sorted(module.BY_NAME) == list(_NAMES)
    own = lambda *args: None
    assert module.by_name(own) is own
    with pytest.raises(ValueError, match=rf"unknown {what} 'l3'; choose one of "
                       r"\['elastic_net', 'frobenius', 'group_lasso', 'l1', 'l2', 'nuclear'\]"):
      module.by_name("l3")


def test_prox_separable_flags():
  """`separable` is True exactly for the per-coordinate operators (what `proximal_adam`
  requires): l1, l2, elastic_net, frobenius (= l2 on matrices); False for group lasso and
  nuclear (mutmut: `fn.separable = None` survived the fast tests)."""
  flags = {name: getattr(wdjax.prox, name).separable for name in _NAMES}
  assert flags == {"elastic_net": True, "frobenius": True, "group_lasso": False, "l1": True,
                   "l2": True, "nuclear": False}
  assert all(type(v) is bool for v in flags.values())

"""Behaviours that a mutation run found unpinned (issue 16), each against an independent reference.

Every test here was checked to fail on a planted one-line bug (named in its docstring) and
to pass on the right code. The references are written out in NumPy in the test, or come
from scikit-learn or a closed form; none calls the code path it checks a second time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from sklearn.linear_model import ElasticNet

import wdjax
from wdjax import config, data, models, optimizers, path, report, train, tune, variants


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
                          weight_decay=lam)
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
                      b1=b1, b2=b2, eps=eps, peak_learning_rate=peak)
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
  # and the same default through the registry (one step on a plain dict, mask=None)
  tx = optimizers.get("sgdw", mask=None)({"learning_rate": eta, "weight_decay": lam})
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
  res = path.enet_path(X, y, l1_ratio=alpha, lambdas=[lam], polish=False, tol=1e-10)
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


# ------------------------------------------------------------ mutation survivors (tools/mutation)


def test_elastic_net_default_l1_ratio_is_one_half():
  """penalties.elastic_net and prox.elastic_net without `l1_ratio`: α = 0.5 (the documented
  default), checked against the closed forms (mutmut: a default of 1.5 survived, every test
  passed α explicitly)."""
  w = np.array([3.0, -0.2, 0.0, 1.0])
  lam, t = 0.4, 0.5
  want_r = lam * (0.5 * np.sum(np.abs(w)) + 0.25 * np.sum(w ** 2))
  np.testing.assert_allclose(float(wdjax.penalties.elastic_net({"w": jnp.asarray(w)}, lam)),
                             want_r, rtol=1e-6)
  want_z = _soft(w, t * lam * 0.5) / (1 + t * lam * 0.5)
  np.testing.assert_allclose(np.asarray(wdjax.prox.elastic_net(jnp.asarray(w), lam, t)),
                             want_z, rtol=1e-6)


def test_nuclear_of_a_3d_leaf_flattens_the_leading_axes():
  """A (2, 3, 4) leaf is the 6 x 4 matrix W.reshape(-1, 4) (leading axes flattened, the
  last kept), for the nuclear penalty and prox, checked with NumPy's SVD; the Frobenius
  penalty is Σ W²/2 whatever the reshape (mutmut: reshape(-1, shape[+1]), a 8 x 3
  matrix, survived: no test had a leaf with more than two axes and shape[1] != shape[-1])."""
  rng = np.random.default_rng(5)
  w = rng.normal(size=(2, 3, 4))
  lam, t = 0.3, 2.0
  m = w.reshape(-1, 4)
  np.testing.assert_allclose(float(wdjax.penalties.nuclear({"k": jnp.asarray(w, jnp.float32)},
                                                           lam)),
                             lam * np.sum(np.linalg.svd(m, compute_uv=False)), rtol=1e-5)
  u, s, vt = np.linalg.svd(m, full_matrices=False)
  want = (u * np.maximum(s - t * lam, 0.0)) @ vt
  assert 0 < np.sum(s > t * lam) < len(s)  # the threshold keeps some singular values
  got = np.asarray(wdjax.prox.nuclear(jnp.asarray(w, jnp.float32), lam, t))
  assert got.shape == w.shape
  np.testing.assert_allclose(got.reshape(-1, 4), want, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(float(wdjax.penalties.frobenius({"k": jnp.asarray(w, jnp.float32)},
                                                             lam)),
                             lam / 2 * np.sum(w ** 2), rtol=1e-5)


@pytest.mark.parametrize("fn, what", [(wdjax.penalties.nuclear, "nuclear"),
                                      (wdjax.penalties.frobenius, "frobenius")])
def test_matrix_penalty_on_a_vector_names_itself_and_the_fix(fn, what):
  """The error for a 1-D leaf names the penalty, the shape and the mask that excludes
  vectors (mutmut: every string of `as_matrix`'s message, and the name passed to it, could
  change unnoticed)."""
  msg = (rf"^{what} is defined on matrices; got a leaf of shape \(3,\)\. Exclude vectors "
         r"with a mask such as wdjax\.masks\.by_ndim\(2\)\.$")
  with pytest.raises(ValueError, match=msg):
    fn({"b": jnp.ones(3)}, 0.1)


def test_proximal_with_schedules_is_ista_with_eta_t_and_lambda_t():
  """optax.sgd(η_t) then wdjax.proximal("l1", λ_t, learning_rate=η_t): the threshold at step
  t is η_t·λ_t, both schedules evaluated at the step count (mutmut: evaluating them at
  count None survived: no test gave `proximal` a schedule).

  NumPy: w ← soft(w − η_t·g(w), η_t·λ_t)."""
  a, w_star, w0 = _quadratic(6, (10,))
  steps = 8
  eta = optax.linear_schedule(0.4, 0.1, steps)
  lam = optax.linear_schedule(0.05, 0.3, steps)
  tx = optax.chain(optax.sgd(eta), wdjax.proximal("l1", lam, learning_rate=eta, mask=None))
  grad = lambda p: {"w": jnp.asarray(a, jnp.float32) * (p["w"] - jnp.asarray(w_star,
                                                                                jnp.float32))}
  got = _run(tx, {"w": jnp.asarray(w0, jnp.float32)}, grad, steps)
  w = w0.copy()
  for t in range(steps):
    e, l = _eta(eta, t), _eta(lam, t)
    w = _soft(w - e * a * (w - w_star), e * l)
    np.testing.assert_allclose(np.asarray(got[t]["w"]), w, rtol=1e-5, atol=1e-6)
  assert 0 < np.sum(w == 0) < w.size


_BUILD = {"proximal": lambda **kw: wdjax.proximal("l1", mask=None, **kw),
          "coupled": lambda learning_rate, **kw: wdjax.coupled("l1", mask=None, **kw)}


@pytest.mark.parametrize("name", sorted(_BUILD))
def test_coupled_and_proximal_refuse_bad_arguments_by_name(name):
  """wdjax.proximal and wdjax.coupled: λ >= 0 (and for proximal η > 0), each error naming
  its argument; a per-leaf pytree missing a leaf names its argument; an update without
  params names the transform (mutmut: `positive=True` dropped or false, and each of these
  names, survived)."""
  build = _BUILD[name]
  if name == "proximal":
    with pytest.raises(ValueError, match=r"^`learning_rate` must be > 0, got 0\.0\.$"):
      build(strength=0.1, learning_rate=0.0)
    with pytest.raises(ValueError, match=r"^`learning_rate` must be >= 0"):
      build(strength=0.1, learning_rate=-0.1)
  with pytest.raises(ValueError, match=r"^`strength` must be >= 0, got -0\.1\."):
    build(strength=-0.1, learning_rate=0.1)
  params = {"a": jnp.ones(2), "b": jnp.ones(2)}
  bad = [("strength", {"strength": {"a": 0.1}, "learning_rate": 0.1})]
  if name == "proximal":
    bad.append(("learning_rate", {"strength": 0.1, "learning_rate": {"a": 0.1}}))
  for arg, kw in bad:
    tx = build(**kw)
    with pytest.raises(ValueError, match=rf"^`{arg}` is a pytree without a value for the "
                       r"params leaves \['b'\]"):
      tx.update(params, tx.init(params), params)
  tx = build(strength=0.1, learning_rate=0.1)
  with pytest.raises(ValueError, match=rf"^wdjax\.{name} needs the current params"):
    tx.update(params, tx.init(params))


def test_double_decay_warning_names_the_wdjax_decay():
  """wdjax.chain(optax.lion(...), decay) warns naming the wdjax decay: "wdjax.proximal",
  "wdjax.coupled(l1)", and "wdjax.coupled(penalty)" for a penalty without a __name__
  (mutmut: every part of these labels survived)."""
  import functools
  import re

  from wdjax import modern
  own = functools.partial(wdjax.penalties.l2)  # a penalty without __name__
  for tx, label in ((wdjax.proximal("l1", 0.1, learning_rate=0.1), "wdjax.proximal"),
                    (wdjax.coupled("l1", 0.1), "wdjax.coupled(l1)"),
                    (wdjax.coupled(own, 0.1), "wdjax.coupled(penalty)")):
    with pytest.warns(modern.DoubleDecayWarning, match=rf" and by {re.escape(label)}\. "):
      wdjax.chain(optax.lion(1e-4), tx)


def test_group_lasso_of_a_scalar_leaf_is_the_lasso():
  """A 0-D leaf is one group of one element: R = λ|w|, prox = soft-threshold (mutmut:
  `group_axes` testing `ndim == 1` instead of 0, which divides by zero on a scalar,
  survived: no test had a scalar leaf)."""
  w = {"s": jnp.asarray(-0.8), "v": jnp.asarray([0.5, -2.0])}
  lam, t = 0.3, 2.0
  np.testing.assert_allclose(float(wdjax.penalties.group_lasso(w, lam)),
                             lam * (0.8 + 0.5 + 2.0), rtol=1e-6)
  got = wdjax.prox.group_lasso(w, lam, t)
  np.testing.assert_allclose(float(got["s"]), -0.2, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(got["v"]), _soft(np.array([0.5, -2.0]), t * lam),
                             rtol=1e-6)


def test_decoupled_errors_and_label_name_it_and_its_arguments():
  """wdjax.decoupled: a per-leaf η or η_peak missing a leaf names that argument, an update
  without params and the double-decay warning name "wdjax.decoupled" (mutmut: the name
  given to `decay_transform` and the names in `decay_coefficients` survived)."""
  params = {"a": jnp.ones(2), "b": jnp.ones(2)}
  sched = optax.linear_schedule(0.1, 0.01, 10)
  for arg, kw in (("learning_rate", {"learning_rate": {"a": 0.1}}),
                  ("peak_learning_rate", {"learning_rate": sched, "scale_by": "schedule",
                                          "peak_learning_rate": {"a": 0.1}})):
    tx = wdjax.decoupled(0.1, mask=None, **kw)
    with pytest.raises(ValueError, match=rf"^`{arg}` is a pytree without a value for the "
                       r"params leaves \['b'\]"):
      tx.update(params, tx.init(params), params)
  tx = wdjax.decoupled(0.1, learning_rate=0.1, mask=None)
  with pytest.raises(ValueError, match=r"^wdjax\.decoupled needs the current params"):
    tx.update(params, tx.init(params))
  from wdjax import modern
  with pytest.warns(modern.DoubleDecayWarning, match=r" and by wdjax\.decoupled\. "):
    wdjax.chain(optax.lion(1e-4), wdjax.decoupled(0.1, learning_rate=1e-4))


def test_elastic_net_accepts_the_endpoints_of_l1_ratio():
  """α = 1 and α = 0 are allowed (the docstring: α = 1 is l1, α = 0 is l2), for the penalty
  and the prox, checked with the closed forms; α just outside [0, 1] is refused (mutmut:
  `0 < α` and `α < 1` in `_check_ratio` survived)."""
  w = np.array([1.5, -0.1, 0.0, -3.0])
  lam, t = 0.2, 1.5
  x = {"w": jnp.asarray(w)}
  np.testing.assert_allclose(float(wdjax.penalties.elastic_net(x, lam, l1_ratio=1.0)),
                             lam * np.sum(np.abs(w)), rtol=1e-6)
  np.testing.assert_allclose(float(wdjax.penalties.elastic_net(x, lam, l1_ratio=0.0)),
                             lam / 2 * np.sum(w ** 2), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(wdjax.prox.elastic_net(jnp.asarray(w), lam, t,
                                                               l1_ratio=1.0)),
                             _soft(w, t * lam), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(wdjax.prox.elastic_net(jnp.asarray(w), lam, t,
                                                               l1_ratio=0.0)),
                             w / (1 + t * lam), rtol=1e-6)
  for bad in (-1e-3, 1.001):
    with pytest.raises(ValueError, match=r"^l1_ratio must be in \[0, 1\]"):
      wdjax.penalties.elastic_net(x, lam, l1_ratio=bad)


def test_by_name_error_names_the_callable_form():
  """The unknown-name error ends with the callable form that would also do (mutmut: that
  part of the message survived: the by_name test matched only its beginning)."""
  for module, what, other in ((wdjax.penalties, "penalty",
                               "a function (params, strength) -> R"),
                              (wdjax.prox, "prox", "an operator (z, strength, scaling) -> z⁺")):
    with pytest.raises(ValueError) as err:
      module.by_name("l3")
    assert str(err.value) == (f"unknown {what} 'l3'; choose one of {sorted(module.BY_NAME)} "
                              f"or pass {other}.")


def test_custom_operator_written_for_a_scalar_strength_gets_a_scalar():
  """A user's prox (in `proximal`) or penalty (in `coupled`) written for a scalar λ gets
  the scalar when every leaf has the same λ, and a list (one per leaf) otherwise; results
  checked with the closed forms z/(1 + ηλ) and g + λw (mutmut: `_collapse` always
  returning the list survived: the built-in operators accept both)."""
  seen = []

  def my_prox(z, strength, scaling=1.0):
    seen.append(strength)
    return jax.tree.map(lambda x: x / (1 + float(strength) * float(scaling)), z)

  def my_penalty(params, strength):
    seen.append(strength)
    return 0.5 * float(strength) * sum(jnp.sum(x * x) for x in jax.tree.leaves(params))

  params = {"a": jnp.array([1.0, -2.0]), "b": jnp.array([3.0])}
  zero = jax.tree.map(jnp.zeros_like, params)
  lam, eta = 0.5, 0.2
  tx = wdjax.proximal(my_prox, lam, learning_rate=eta, mask=None)
  updates, _ = tx.update(zero, tx.init(params), params)
  for k in params:
    w = np.asarray(params[k])
    np.testing.assert_allclose(np.asarray(updates[k]), w / (1 + eta * lam) - w, rtol=1e-6)
  grads = {"a": jnp.array([0.1, 0.2]), "b": jnp.array([-0.3])}
  tx = wdjax.coupled(my_penalty, lam, mask=None)
  updates, _ = tx.update(grads, tx.init(params), params)
  for k in params:
    np.testing.assert_allclose(np.asarray(updates[k]),
                               np.asarray(grads[k]) + lam * np.asarray(params[k]), rtol=1e-6)
  assert seen and all(np.ndim(s) == 0 for s in seen)
  # one λ per leaf, not all the same: a list, one entry per leaf
  tx = wdjax.proximal(wdjax.prox.l2, {"a": 0.5, "b": 0.25}, learning_rate=eta, mask=None)
  updates, _ = tx.update(zero, tx.init(params), params)
  np.testing.assert_allclose(np.asarray(updates["b"]), 3.0 / (1 + eta * 0.25) - 3.0, rtol=1e-6)


def test_decoupled_argument_errors_in_full():
  """wdjax.decoupled's argument errors, whole: an unknown `scale_by` lists the choices and
  what each means, a missing η says how to decay without it, η = 0 is refused by name
  (mutmut: the message texts and `positive=True` in `check_decay_scale` survived)."""
  with pytest.raises(ValueError) as err:
    wdjax.decoupled(0.1, learning_rate=0.1, scale_by="step")
  assert str(err.value) == (
      "scale_by must be one of ('lr', 'schedule', 'constant'), got 'step': 'lr' for "
      "PyTorch/optax AdamW, 'schedule' for Loshchilov & Hutter, 'constant' for a fixed "
      "per-step shrink.")
  with pytest.raises(ValueError) as err:
    wdjax.decoupled(0.1, scale_by="lr")
  assert str(err.value) == ("scale_by='lr' needs learning_rate= (the optimizer's η or "
                            "schedule); use scale_by='constant' to decay without it.")
  with pytest.raises(ValueError, match=r"^`learning_rate` must be > 0, got 0\.0\.$"):
    wdjax.decoupled(0.1, learning_rate=0.0)
  sched = optax.linear_schedule(0.1, 0.01, 10)
  with pytest.raises(ValueError) as err:
    wdjax.decoupled(0.1, learning_rate=sched, scale_by="schedule")
  assert str(err.value) == ("scale_by='schedule' with a learning-rate schedule needs "
                            "peak_learning_rate= (η_peak, so that c_t = η_t/η_peak).")
  with pytest.raises(ValueError, match=r"^`peak_learning_rate` must be > 0, got 0\.0\.$"):
    wdjax.decoupled(0.1, learning_rate=sched, scale_by="schedule", peak_learning_rate=0.0)
  with pytest.raises(ValueError, match=r"^`strength` must be >= 0, got -0\.1\."):
    wdjax.decoupled(-0.1, learning_rate=0.1)
  params = {"a": jnp.ones(2), "b": jnp.ones(2)}
  tx = wdjax.decoupled({"a": 0.1}, learning_rate=0.1, mask=None)
  with pytest.raises(ValueError, match=r"^`strength` is a pytree without a value for the "
                     r"params leaves \['b'\]"):
    tx.update(params, tx.init(params), params)


def test_decoupled_with_a_strength_schedule_evaluates_it_at_the_step():
  """optax.sgd(η) then wdjax.decoupled(λ_t, learning_rate=η): w ← w − η·g − η·λ_t·w with λ_t
  at the step count (mutmut: evaluating λ at count None survived: no test gave `decoupled`
  a strength schedule)."""
  a, w_star, w0 = _quadratic(7, (6,))
  steps, eta = 6, 0.3
  lam = optax.linear_schedule(0.5, 0.05, steps)
  tx = optax.chain(optax.sgd(eta), wdjax.decoupled(lam, learning_rate=eta, mask=None))
  grad = lambda p: {"w": jnp.asarray(a, jnp.float32) * (p["w"] - jnp.asarray(w_star,
                                                                                jnp.float32))}
  got = _run(tx, {"w": jnp.asarray(w0, jnp.float32)}, grad, steps)
  w = w0.copy()
  for t in range(steps):
    w = w - eta * a * (w - w_star) - eta * _eta(lam, t) * w
    np.testing.assert_allclose(np.asarray(got[t]["w"]), w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", _NAMES)
def test_penalty_value_has_the_leaf_dtype_for_a_float64_strength(name, x64, strict_dtypes):
  """Under x64 and strict dtype promotion, a float32 leaf with a float64 λ gives a float32
  value λ·R₁(w) (λ is cast to the leaf's dtype; mutmut: `jnp.asarray(λ)` without the dtype
  survived: it promotes to float64, or is refused by strict promotion)."""
  del x64, strict_dtypes
  w = np.array([[3.0, -1.0], [0.5, 2.0]], np.float32)
  lam = jnp.asarray(0.25, jnp.float64)
  fn = wdjax.penalties.by_name(name)
  got = fn({"w": jnp.asarray(w)}, lam)
  assert got.dtype == jnp.float32
  w64 = w.astype(np.float64)
  r1 = {"l2": 0.5 * np.sum(w64 ** 2), "frobenius": 0.5 * np.sum(w64 ** 2),
        "l1": np.sum(np.abs(w64)),
        "elastic_net": 0.5 * np.sum(np.abs(w64)) + 0.25 * np.sum(w64 ** 2),
        "group_lasso": np.sum(np.linalg.norm(w64, axis=0)),  # one group per column
        "nuclear": np.sum(np.linalg.svd(w64, compute_uv=False))}[name]
  np.testing.assert_allclose(float(got), 0.25 * r1, rtol=1e-6)


def test_penalty_argument_errors_and_empty_params(x64):
  """penalties: no λ, a negative λ (single or per leaf) and a per-leaf λ of the wrong
  structure are refused, each message naming `strength` and the fix; no leaves gives a
  float32 zero, also under x64 (mutmut: these messages and `jnp.zeros((), jnp.float32)`'s
  arguments survived)."""
  del x64
  x = {"a": jnp.ones(2, jnp.float32), "b": jnp.ones(2, jnp.float32)}
  with pytest.raises(TypeError, match=r"^penalty called without a strength\. If this "
                     r"happened in optax\.inject_hyperparams: "):
    wdjax.penalties.l2(x)
  for lam in (-0.5, {"a": 0.1, "b": -0.5}):
    with pytest.raises(ValueError, match=r"^`strength` must be >= 0, got -0\.5\."):
      wdjax.penalties.l2(x, lam)
  with pytest.raises(ValueError, match=r"with 1 leaves for params with 2\. Pass one λ, or "
                     r"build a per-leaf strength with jax\.tree\.map\(lambda _: lam, "
                     r"params\)\.$"):
    wdjax.penalties.l2(x, {"a": 0.1})
  for name in _NAMES:
    got = wdjax.penalties.by_name(name)({}, 0.1)
    assert got.shape == () and got.dtype == jnp.float32 and float(got) == 0.0


def test_prox_per_leaf_strength_and_scaling_checks():
  """prox: a per-leaf λ must be scalars, >= 0, with the structure of z; a per-leaf scaling
  may be a scalar or an array of its leaf's shape; results against the soft-threshold
  (mutmut: `allow_arrays=True` by default, the check loop over no leaves, and the shape
  test inverted in `_per_leaf`, and its messages, survived)."""
  z = {"u": jnp.array([0.3, -2.0, 1.0]), "v": jnp.array([4.0, -0.1])}
  with pytest.raises(ValueError, match=r"^`strength` leaves must be scalars, got shape "
                     r"\(3,\)\.$"):
    wdjax.prox.l1(z, {"u": jnp.full(3, 0.1), "v": 0.1})
  with pytest.raises(ValueError, match=r"^`strength` must be >= 0, got -0\.1\."):
    wdjax.prox.l1(z, {"u": 0.1, "v": -0.1})
  with pytest.raises(ValueError, match=r"^`strength` must be a scalar or a pytree with the "
                     r"structure of z \(2 leaves\); got 1 leaves\.$"):
    wdjax.prox.l1(z, {"u": 0.1})
  with pytest.raises(ValueError, match=r"^per-coordinate `scaling` has shape \(2,\), its "
                     r"leaf \(3,\); they must match\.$"):
    wdjax.prox.l1(z, 0.5, {"u": jnp.ones(2), "v": 1.0})
  got = wdjax.prox.l1(z, 0.5, {"u": 2.0, "v": jnp.array([1.0, 4.0])})
  np.testing.assert_allclose(np.asarray(got["u"]), _soft(np.array([0.3, -2.0, 1.0]), 1.0),
                             rtol=1e-6)
  np.testing.assert_allclose(np.asarray(got["v"]),
                             _soft(np.array([4.0, -0.1]), np.array([0.5, 2.0])), rtol=1e-6)


def test_complex_soft_threshold_with_zero_strength_keeps_zeros():
  """The complex soft-threshold at λ = 0 is the identity, also at z = 0: no 0/0 (mutmut:
  the guard `|z| > 0` relaxed to `>= 0` survived; it gives NaN there)."""
  z = jnp.array([0.0 + 0.0j, 1.0 - 2.0j, -0.5j], jnp.complex64)
  for fn in (wdjax.prox.l1, wdjax.prox.elastic_net):
    got = np.asarray(fn(z, 0.0))
    np.testing.assert_array_equal(got, np.asarray(z))


# ------------------------------------------- mutation survivors: presets (wdjax/aliases.py)


def _enet(z, t, alpha):
  """prox of t·(α‖·‖₁ + (1−α)/2‖·‖²), the closed form (NumPy)."""
  return _soft(z, t * alpha) / (1 + t * (1 - alpha))


_KERNEL = {"dense": {"bias": False, "kernel": True}}   # what weights_only decays
_BIAS = {"dense": {"bias": True, "kernel": False}}     # a mask that is not the default
_ADAM = dict(b1=0.8, b2=0.99, eps=0.1, eps_root=1e-3, mu_dtype=jnp.float32)
_ETA, _PEAK, _LAM, _BETA, _ALPHA = 0.05, 0.2, 0.3, 0.5, 0.3
_LAM_T = optax.linear_schedule(2.0, 0.1, 4)  # a strength schedule, evaluated at the step

# id -> (the preset, optax's base transform with the same arguments, how the decay enters,
#        λ, the decayed leaves, c (decoupled) or the prox and its step τ (proximal))
_PRESETS = {
    "sgd_l2-defaults": (lambda: wdjax.sgd_l2(_ETA, 0.9), optax.sgd(_ETA, 0.9),
                        "coupled", 0.0, _KERNEL, None),
    "sgd_l2-every-argument": (
        lambda: wdjax.sgd_l2(_ETA, 0.9, True, jnp.float32, _LAM, mask=_BIAS),
        optax.sgd(_ETA, 0.9, True, jnp.float32), "coupled", _LAM, _BIAS, None),
    "adam_l2-defaults": (lambda: wdjax.adam_l2(_ETA), optax.adam(_ETA), "coupled", 0.0,
                         _KERNEL, None),
    "adam_l2-every-argument": (
        lambda: wdjax.adam_l2(_ETA, *_ADAM.values(), _LAM, nesterov=True, mask=_BIAS),
        optax.adam(_ETA, **_ADAM, nesterov=True), "coupled", _LAM, _BIAS, None),
    "adamw-defaults": (lambda: wdjax.adamw(_ETA), optax.adam(_ETA), "decoupled", 1e-4,
                       _KERNEL, _ETA),
    "adamw-every-argument": (
        lambda: wdjax.adamw(_ETA, *_ADAM.values(), _LAM, _BIAS, nesterov=True,
                            scale_by="schedule", peak_learning_rate=_PEAK),
        optax.adam(_ETA, **_ADAM, nesterov=True), "decoupled", _LAM, _BIAS, _ETA / _PEAK),
    "sgdw-defaults": (lambda: wdjax.sgdw(_ETA, 0.9), optax.sgd(_ETA, 0.9), "decoupled", 1e-4,
                      _KERNEL, 1.0),
    "sgdw-every-argument": (
        lambda: wdjax.sgdw(_ETA, 0.9, True, jnp.float32, _LAM, scale_by="schedule",
                           peak_learning_rate=_PEAK, mask=_BIAS),
        optax.sgd(_ETA, 0.9, True, jnp.float32), "decoupled", _LAM, _BIAS, _ETA / _PEAK),
    "proximal_sgd-defaults": (lambda: wdjax.proximal_sgd(_ETA), optax.sgd(_ETA), "prox", 0.0,
                              _KERNEL, ("l1", _ETA)),
    "proximal_sgd-default-prox": (lambda: wdjax.proximal_sgd(_ETA, weight_decay=_LAM),
                                  optax.sgd(_ETA), "prox", _LAM, _KERNEL, ("l1", _ETA)),
    "proximal_sgd-every-argument": (
        lambda: wdjax.proximal_sgd(_ETA, "elastic_net", _LAM, momentum=_BETA, l1_ratio=_ALPHA,
                                   mask=_BIAS),
        optax.sgd(_ETA, momentum=_BETA), "prox", _LAM, _BIAS,
        ("elastic_net", _ETA / (1 - _BETA))),
    "proximal_adam-defaults": (lambda: wdjax.proximal_adam(_ETA), optax.adam(_ETA),
                               "prox_adam", 0.0, _KERNEL, ("l1", None)),
    "proximal_adam-default-prox": (lambda: wdjax.proximal_adam(_ETA, weight_decay=_LAM),
                                   optax.adam(_ETA), "prox_adam", _LAM, _KERNEL, ("l1", None)),
    "proximal_adam-strength-schedule": (
        lambda: wdjax.proximal_adam(_ETA, weight_decay=_LAM_T), optax.adam(_ETA), "prox_adam",
        _LAM_T, _KERNEL, ("l1", None)),
    "proximal_adam-every-argument": (
        lambda: wdjax.proximal_adam(_ETA, "elastic_net", 1.0, **_ADAM, nesterov=True,
                                    l1_ratio=_ALPHA, mask=_BIAS),
        optax.adam(_ETA, **_ADAM, nesterov=True), "prox_adam", 1.0, _BIAS,
        ("elastic_net", None)),
}


@pytest.mark.parametrize("case", sorted(_PRESETS))
def test_preset_is_its_optax_base_plus_the_numpy_decay(case, x64):
  """Each preset of wdjax/aliases.py, with its defaults or with every argument given (not
  optax's defaults: ε = 0.1, eps_root, nesterov, mu/accumulator dtype float32 under x64,
  a mask that decays the bias only), = optax.sgd/optax.adam with the same arguments plus
  the decay written out in NumPy: coupled g + λw, decoupled − c·λ·w (c = η for "lr", 1
  for sgdw's "schedule" with a constant η, η/η_peak with η_peak), ISTA's prox with step
  η/(1−β) under momentum, and proximal Adam's threshold λη/(√v̂ + ε) (v̂ in NumPy).
  Mutmut: every default (λ, prox "l1", nesterov), every argument dropped or None on the
  way to optax or to the decay (mu_dtype, accumulator_dtype, nesterov, eps_root, mask,
  peak_learning_rate, l1_ratio), `separable` unset on the bound elastic net, η·(1−β),
  η/(1+β), √v̂ − ε, a strength schedule evaluated at count None."""
  del x64
  build, base, kind, lam, decayed, extra = _PRESETS[case]
  rng = np.random.default_rng(8)
  params = {"dense": {"bias": np.array([0.004, -1.3]),
                      "kernel": rng.normal(size=(3, 2)) * np.array([1.0, 0.004])}}
  grads = [jax.tree.map(lambda p: 0.1 * rng.normal(size=np.shape(p)), params)
           for _ in range(4)]
  tx = build()
  p = jax.tree.map(jnp.asarray, params)
  state, step = tx.init(p), jax.jit(tx.update)
  w, ref_state = params, base.init(p)
  v, zeros = jax.tree.map(np.zeros_like, params), 0
  b2, eps = (_ADAM["b2"], _ADAM["eps"]) if "every" in case else (0.999, 1e-8)
  for t, g in enumerate(grads):
    u, state = step(jax.tree.map(jnp.asarray, g), state, p)
    p = optax.apply_updates(p, u)
    lam_t = _eta(lam, t) if callable(lam) else lam
    if kind == "coupled":
      g = jax.tree.map(lambda gi, wi, d: gi + lam_t * wi if d else gi, g, w, decayed)
    a, ref_state = base.update(jax.tree.map(jnp.asarray, g), ref_state)
    a = jax.tree.map(np.asarray, a)
    v = jax.tree.map(lambda vi, gi: b2 * vi + (1 - b2) * gi * gi, v, g)

    def rule(wi, ai, vi, d):
      if not d or kind == "coupled":
        return wi + ai
      if kind == "decoupled":
        return wi + ai - extra * lam_t * wi
      name, tau = extra
      if tau is None:  # proximal Adam: η/D per coordinate, D = √v̂ + ε
        tau = _ETA / (np.sqrt(vi / (1 - b2 ** (t + 1))) + eps)
      z = wi + ai
      return _soft(z, tau * lam_t) if name == "l1" else _enet(z, tau * lam_t, _ALPHA)

    w = jax.tree.map(rule, w, a, v, decayed)
    for x, y in zip(jax.tree.leaves(p), jax.tree.leaves(w)):
      np.testing.assert_allclose(np.asarray(x), y, rtol=1e-10, atol=1e-12, err_msg=f"step {t}")
    if kind.startswith("prox") and lam != 0.0:
      zeros += np.sum(jax.tree.leaves(w)[0 if decayed is _BIAS else 1] == 0)
  if kind.startswith("prox") and lam != 0.0:
    assert zeros > 0  # the threshold acted
  if "every" in case and not case.startswith("proximal_sgd"):
    key = "trace" if "sgd" in case else "mu"  # accumulator_dtype / mu_dtype reach the state
    leaves = jax.tree.leaves(optax.tree_utils.tree_get(state, key))
    assert leaves and all(leaf.dtype == jnp.float32 for leaf in leaves)


def test_proximal_adam_complex_and_bfloat16_leaves():
  """proximal_adam's threshold uses v̂ = nu/(1 − b2ᵗ) computed in at least float32 and real:
  on a bfloat16 leaf (b2 = 0.999 rounded to bfloat16 would be 0.998), and on a complex
  leaf, whose modulus is soft-thresholded by η·λ/(|g| + ε) at the first step, without
  JAX's deprecated complex-to-real cast. References: optax.adam's step and NumPy.
  Mutmut: `acc = result_type(v.dtype)` (bfloat16 arithmetic), the `jnp.real` of the
  moments skipped or given None."""
  import warnings
  lam, eta = 1.0, 0.1
  # bfloat16: first step u = −η·sign(g), D = |g| + ε, threshold η·λ/|g|
  w = np.array([0.5, -0.3, 2.0], np.float32)
  g = np.array([1.0, -2.0, 0.5], np.float32)
  tx = wdjax.proximal_adam(eta, "l1", lam, mask=None)
  params = {"w": jnp.asarray(w, jnp.bfloat16)}
  u, _ = tx.update({"w": jnp.asarray(g, jnp.bfloat16)}, tx.init(params), params)
  got = np.asarray((params["w"] + u["w"]).astype(jnp.float32))
  np.testing.assert_allclose(got, _soft(w - eta * np.sign(g), eta * lam / np.abs(g)),
                             rtol=2e-2, atol=4e-3)
  # complex: optax.adam's step for the direction, the modulus thresholded (NumPy)
  w = np.array([1 + 1j, 0.05 - 0.02j, -2 + 0.5j], np.complex64)
  g = np.array([1 - 1j, 0.2 + 0.05j, -0.5j], np.complex64)
  params, grads = {"w": jnp.asarray(w)}, {"w": jnp.asarray(g)}
  ref = optax.adam(eta)
  step, _ = ref.update(grads, ref.init(params))
  z = w + np.asarray(step["w"])
  thr = eta * lam / (np.abs(g) + 1e-8)
  want = z * np.maximum(np.abs(z) - thr, 0) / np.abs(z)
  tx = wdjax.proximal_adam(eta, "l1", lam, mask=None)
  with warnings.catch_warnings():
    warnings.simplefilter("error", DeprecationWarning)  # "complex to real will soon raise"
    u, state = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(np.asarray(params["w"] + u["w"]), want, rtol=1e-5, atol=1e-6)
  assert want[1] == 0 and np.all(want[[0, 2]] != 0)
  # the step count is optax's: int32, like Adam's own
  assert state.count.dtype == state.adam.count.dtype == jnp.int32


def test_proximal_sgd_momentum_range_traced_momentum_and_constant_eta():
  """proximal_sgd's momentum: β = 0 is allowed (plain ISTA), β = 1 is refused with the
  whole message, a traced β (jax.vmap over β) is not inspected and equals the loop, and
  with a constant η the prox step is η/(1−β) (NumPy).
  Mutmut: `0 < β`, `β <= 1`, `β < 2`, the message None, `is_concrete(None)`, and the
  constant-η branch η·(1−β), η/(1+β), η/(2−β), None."""
  params = {"w": jnp.array([0.3, -1.2, 0.05])}
  g = {"w": jnp.array([0.5, -0.4, 0.02])}
  lam, eta = 0.4, 0.5

  def one(beta):
    tx = wdjax.proximal_sgd(eta, "l1", lam, momentum=beta, mask=None)
    state = tx.init(params)
    u, state = tx.update(g, state, params)
    p = optax.apply_updates(params, u)
    u, _ = tx.update(g, state, p)
    return optax.apply_updates(p, u)["w"]

  for bad in (1.0, 1.5):
    with pytest.raises(ValueError) as err:
      wdjax.proximal_sgd(eta, momentum=bad)
    assert str(err.value) == f"momentum must be in [0, 1), got {bad}."
  betas = jnp.array([0.0, 0.5, 0.9])
  np.testing.assert_allclose(jax.vmap(one)(betas), np.stack([one(float(b)) for b in betas]),
                             rtol=1e-6)
  w0, gw = np.asarray(params["w"], np.float64), np.asarray(g["w"], np.float64)
  for beta in (0.0, 0.5, 0.9):
    w, buf = w0, np.zeros(3)
    for _ in range(2):
      buf = beta * buf + gw
      w = _soft(w - eta * buf, lam * eta / (1 - beta))
    np.testing.assert_allclose(np.asarray(one(beta)), w, rtol=1e-6, atol=1e-7)


def test_preset_errors_name_the_preset_and_the_argument():
  """The presets' checks, whole: η > 0 by name (sgd_l2, adam_l2, proximal_adam), λ >= 0
  (proximal_adam), a per-leaf λ missing a leaf names `weight_decay`, an update without
  params names the preset, l1_ratio with another prox names that prox (or shows the
  callable), and proximal_adam refuses a prox that does not say it is separable with a
  ValueError naming it.
  Mutmut: these names and texts, `positive=True` dropped, getattr(prox, "separable")
  without a default or with True."""
  import functools
  for build in (wdjax.sgd_l2, wdjax.adam_l2, wdjax.proximal_adam):
    with pytest.raises(ValueError, match=r"^`learning_rate` must be > 0, got 0\.0\.$"):
      build(0.0)
  with pytest.raises(ValueError, match=r"^`weight_decay` must be >= 0, got -0\.1\. "):
    wdjax.proximal_adam(0.1, "l1", -0.1)
  params = {"a": jnp.ones(2), "b": jnp.ones(2)}
  tx = wdjax.proximal_adam(0.1, "l1", {"a": 0.1}, mask=None)
  with pytest.raises(ValueError, match=r"^`weight_decay` is a pytree without a value for "
                     r"the params leaves \['b'\]"):
    tx.update(params, tx.init(params), params)
  tx = wdjax.proximal_adam(0.1, "l1", 0.1, mask=None)
  with pytest.raises(ValueError, match=r"^wdjax\.proximal_adam needs the current params"):
    tx.update(params, tx.init(params))
  with pytest.raises(ValueError) as err:
    wdjax.proximal_sgd(0.1, "l1", 0.1, l1_ratio=0.5)
  assert str(err.value) == "l1_ratio applies to prox='elastic_net', not l1."
  unnamed = functools.partial(wdjax.prox.l1)
  with pytest.raises(ValueError, match=r"^l1_ratio applies to prox='elastic_net', not "
                     r"functools\.partial\(<function l1 at "):
    wdjax.proximal_sgd(0.1, unnamed, 0.1, l1_ratio=0.5)

  def my_prox(z, strength, scaling=1.0):
    return z

  with pytest.raises(ValueError) as err:
    wdjax.proximal_adam(0.1, my_prox, 0.1)
  assert str(err.value) == ("proximal_adam needs a separable prox (wdjax.prox.l1, l2, "
                            "elastic_net); my_prox is not. Use optax.chain(optax.sgd(η), "
                            "wdjax.proximal(...)) for it.")
  with pytest.raises(ValueError, match=r"^proximal_adam needs a separable prox \(.*\); "
                     r"functools\.partial\(<function .*my_prox at .*\) is not\. Use "):
    wdjax.proximal_adam(0.1, functools.partial(my_prox), 0.1)


def test_adam_then_defaults_are_optax_adams():
  """`aliases.adam_then` (the skeleton of proximal_adam and adams) with a `finish` that
  returns Adam's steps unchanged is optax.adam with the same b1, b2, ε and optax's
  defaults eps_root = 0, no Nesterov (mutmut: those two defaults survived: every caller
  passes them)."""
  from wdjax import aliases
  tx = aliases.adam_then("x", 0.1, 0.0, lambda steps, *_: steps, b1=0.8, b2=0.99, eps=1e-3,
                         mask=None)
  ref = optax.adam(0.1, b1=0.8, b2=0.99, eps=1e-3)
  params = {"w": jnp.array([1.0, -2.0, 0.5])}
  state, ref_state = tx.init(params), ref.init(params)
  for g in ([0.3, -0.1, 0.02], [0.1, 0.4, -0.3], [-0.2, 0.0, 0.1]):
    grads = {"w": jnp.array(g)}
    u, state = tx.update(grads, state, params)
    r, ref_state = ref.update(grads, ref_state, params)
    np.testing.assert_allclose(np.asarray(u["w"]), np.asarray(r["w"]), rtol=1e-6)


# ------------------------------------------- mutation survivors: prox (rerun of prox.py)


@pytest.mark.parametrize("name", _NAMES)
def test_prox_output_has_the_leaf_dtype_for_float64_strength_and_scaling(name, x64,
                                                                         strict_dtypes):
  """Under x64 and strict promotion, a float32 leaf with a float64 λ and a float64 step t
  gives a float32 prox (tλ is cast to the leaf's real dtype), equal to the closed form in
  NumPy (mutmut: `jnp.asarray(t)`/`jnp.asarray(λ)` without the leaf's dtype, or
  `rdt = None`, survived: every test gave Python floats, which are weakly typed)."""
  del x64, strict_dtypes
  w = np.array([[3.0, -1.0], [0.5, 2.0]], np.float32)
  lam, t = jnp.asarray(0.25, jnp.float64), jnp.asarray(2.0, jnp.float64)
  got = wdjax.prox.by_name(name)(jnp.asarray(w), lam, t)
  assert got.dtype == jnp.float32
  w64, thr = w.astype(np.float64), 0.5
  u, s, vt = np.linalg.svd(w64)
  cols = np.linalg.norm(w64, axis=0)
  want = {"l1": _soft(w64, thr), "l2": w64 / (1 + thr), "frobenius": w64 / (1 + thr),
          "elastic_net": _enet(w64, thr, 0.5),
          "group_lasso": w64 * np.maximum(0, 1 - thr / cols),  # one group per column
          "nuclear": (u * np.maximum(s - thr, 0)) @ vt}[name]
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-7)


def test_non_separable_prox_refuses_a_per_coordinate_scaling_whole():
  """group_lasso and nuclear under a per-coordinate step (what proximal_adam would give)
  refuse it with the whole message (mutmut: its last two strings survived)."""
  z = {"w": jnp.ones((2, 2))}
  for name in ("group_lasso", "nuclear"):
    with pytest.raises(ValueError) as err:
      wdjax.prox.by_name(name)(z, 0.1, {"w": jnp.ones((2, 2))})
    assert str(err.value) == (
        f"prox.{name} is not separable, so it needs one scalar `scaling` per leaf; got an "
        "array of shape (2, 2). Under a diagonal preconditioner (proximal_adam) use a "
        "separable prox (l1, l2, elastic_net), or apply this prox after optax.sgd with "
        "wdjax.proximal.")

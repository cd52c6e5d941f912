"""Decay variants against their update rules written out in NumPy, over several steps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wdjax import masks, variants

STEPS = 6
B1, B2, EPS = 0.9, 0.999, 1e-8


def _problem(seed=0):
  rng = np.random.default_rng(seed)
  params = {"dense": {"kernel": rng.normal(size=(3, 2)), "bias": rng.normal(size=2)},
            "norm_in": {"kernel": rng.normal(size=(2, 2))}}
  targets = jax.tree.map(lambda p: rng.normal(size=p.shape), params)
  noise = [jax.tree.map(lambda p: rng.normal(size=p.shape), params) for _ in range(STEPS)]
  return params, targets, noise


def _grad(w, target, noise):
  # gradient of ½‖w − target‖² plus a fixed per-step perturbation, so signs vary
  return w - target + noise


class NumpyAdam:
  """Adam's direction m̂/(√v̂ + ε), written out (Kingma & Ba)."""

  def __init__(self, params):
    self.m = jax.tree.map(np.zeros_like, params)
    self.v = jax.tree.map(np.zeros_like, params)
    self.t = 0

  def direction(self, grads):
    self.t += 1
    self.m = jax.tree.map(lambda m, g: B1 * m + (1 - B1) * g, self.m, grads)
    self.v = jax.tree.map(lambda v, g: B2 * v + (1 - B2) * g * g, self.v, grads)
    self.v_hat = jax.tree.map(lambda v: v / (1 - B2 ** self.t), self.v)
    return jax.tree.map(lambda m, vh: (m / (1 - B1 ** self.t)) / (np.sqrt(vh) + EPS),
                        self.m, self.v_hat)


def _run_jax(tx, params, targets, noise):
  p = jax.tree.map(jnp.asarray, params)
  state = tx.init(p)
  step = jax.jit(tx.update)
  out = []
  for t in range(STEPS):
    g = jax.tree.map(_grad, p, jax.tree.map(jnp.asarray, targets),
                     jax.tree.map(jnp.asarray, noise[t]))
    u, state = step(g, state, p)
    p = optax.apply_updates(p, u)
    out.append(jax.tree.map(np.asarray, p))
  return out


def _assert_trajectories(got, want, rtol=1e-7, atol=1e-7):
  # 1e-7, not 1e-12: even under x64, optax evaluates schedules and Adam's bias corrections
  # (decay**count with an int32 count) in float32, a ~1e-8 relative error on each step of
  # size O(0.1) applied to O(1) params (absolute, since some coordinates cross zero).
  for t, (g, w) in enumerate(zip(got, want)):
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(w)):
      np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"step {t}")


def _decayed(path_leaf_tree):
  return masks.weights_only(path_leaf_tree)


def test_cautious_matches_numpy(x64):
  params, targets, noise = _problem()
  lr = optax.linear_schedule(0.1, 0.02, STEPS)
  lam = 0.3
  tx = optax.chain(optax.adam(lr, b1=B1, b2=B2, eps=EPS),
                   variants.cautious(lam, learning_rate=lr))
  got = _run_jax(tx, params, targets, noise)

  decayed = _decayed(params)
  adam, w, want, seen_both = NumpyAdam(params), params, [], set()
  for t in range(STEPS):
    eta = float(lr(t))
    d = adam.direction(jax.tree.map(_grad, w, targets, noise[t]))

    # paper: x ← x − η(d + λ·1[d ⊙ x ≥ 0] ⊙ x)
    def rule(x, di, dec):
      agree = (di * x >= 0).astype(float)
      seen_both.update(agree.ravel().tolist())
      return x - eta * (di + (lam * agree * x if dec else 0.0))

    w = jax.tree.map(rule, w, d, decayed)
    want.append(w)
  assert seen_both == {0.0, 1.0}  # both branches of the indicator were exercised
  _assert_trajectories(got, want)


def test_cautious_constant_scale_and_masked_leaf_untouched(x64):
  params = {"w": jnp.array([1.0, -1.0, 2.0]), "bias": jnp.array([1.0])}
  tx = variants.cautious(0.25, scale_by="constant")
  u = {"w": jnp.array([-0.5, -0.5, 0.0]), "bias": jnp.array([-1.0])}
  out, _ = tx.update(u, tx.init(params), params)
  # u·w = -0.5 (decay), +0.5 (no decay), 0 (decay); bias not decayed by weights_only
  np.testing.assert_allclose(out["w"], [-0.75, -0.5, -0.5])
  np.testing.assert_allclose(out["bias"], [-1.0])


def test_corrected_matches_numpy(x64):
  params, targets, noise = _problem(1)
  peak = 0.1
  lr = optax.cosine_decay_schedule(peak, STEPS)
  lam = 0.5
  normalized = {"dense": {"kernel": False, "bias": False}, "norm_in": {"kernel": True}}
  tx = optax.chain(optax.adam(lr, b1=B1, b2=B2, eps=EPS),
                   variants.corrected(lam, learning_rate=lr, peak_learning_rate=peak,
                                      normalized=normalized))
  got = _run_jax(tx, params, targets, noise)

  decayed = _decayed(params)
  adam, w, want = NumpyAdam(params), params, []
  for t in range(STEPS):
    eta = float(lr(t))
    d = adam.direction(jax.tree.map(_grad, w, targets, noise[t]))

    def rule(x, di, dec, nrm):
      c = eta ** 2 / peak if nrm else eta
      return x - eta * di - (c * lam * x if dec else 0.0)

    w = jax.tree.map(rule, w, d, decayed, normalized)
    want.append(w)
  _assert_trajectories(got, want)


def test_corrected_on_plain_leaves_is_adamw(x64):
  params, targets, noise = _problem(2)
  lr = optax.linear_schedule(0.05, 0.01, STEPS)
  none = jax.tree.map(lambda _: False, params)
  tx = optax.chain(optax.adam(lr), variants.corrected(0.1, learning_rate=lr,
                                                      peak_learning_rate=0.05, normalized=none))
  ref = optax.adamw(lr, weight_decay=0.1, mask=masks.weights_only(params))
  _assert_trajectories(_run_jax(tx, params, targets, noise), _run_jax(ref, params, targets, noise),
                       rtol=1e-9, atol=1e-9)


def test_adamc_preset_is_adam_then_corrected(x64):
  params, targets, noise = _problem(4)
  lr = optax.cosine_decay_schedule(0.1, STEPS)
  norm = {"dense": {"kernel": True, "bias": False}, "norm_in": {"kernel": False}}
  ours = variants.adamc(lr, weight_decay=0.3, peak_learning_rate=0.1, normalized=norm)
  ref = optax.chain(optax.adam(lr), variants.corrected(0.3, learning_rate=lr,
                                                       peak_learning_rate=0.1, normalized=norm))
  _assert_trajectories(_run_jax(ours, params, targets, noise), _run_jax(ref, params, targets, noise),
                       rtol=0, atol=0)


def test_adams_matches_numpy(x64):
  params, targets, noise = _problem(3)
  lr = optax.linear_schedule(0.05, 0.01, STEPS)
  lam = 0.2
  tx = variants.adams(lr, weight_decay=lam, b1=B1, b2=B2, eps=EPS)
  got = _run_jax(tx, params, targets, noise)

  decayed = _decayed(params)
  adam, w, want = NumpyAdam(params), params, []
  for t in range(STEPS):
    eta = float(lr(t))
    d = adam.direction(jax.tree.map(_grad, w, targets, noise[t]))
    v_bar = np.mean(np.concatenate([v.ravel() for v in jax.tree.leaves(adam.v_hat)]))
    w = jax.tree.map(
        lambda x, di, dec: x - eta * di - (eta * lam * x / (np.sqrt(v_bar) + EPS) if dec else 0),
        w, d, decayed)
    want.append(w)
  _assert_trajectories(got, want)


def test_cautious_vmap_over_strength_equals_loop():
  params = {"w": jnp.array([1.0, -2.0, 0.5])}
  g = {"w": jnp.array([0.3, 0.4, -0.2])}

  def one(lam):
    tx = optax.chain(optax.sgd(0.1), variants.cautious(lam, learning_rate=0.1, mask=None))
    u, _ = tx.update(g, tx.init(params), params)
    return u["w"]

  lams = jnp.array([0.0, 0.1, 1.0])
  np.testing.assert_allclose(jax.vmap(one)(lams), jnp.stack([one(x) for x in lams]),
                             rtol=1e-6)


def test_inject_hyperparams_and_dtype():
  params = {"w": jnp.ones((2, 2), jnp.bfloat16)}
  tx = optax.inject_hyperparams(variants.cautious, static_args=("mask", "scale_by"))(
      strength=0.1, learning_rate=0.1, mask=None)
  u, _ = tx.update({"w": -jnp.ones((2, 2), jnp.bfloat16)}, tx.init(params), params)
  assert u["w"].dtype == jnp.bfloat16
  # u·w < 0: decayed, -1 - 0.1·0.1·1 (bf16 has 8 bits of mantissa, hence rtol 1e-2)
  np.testing.assert_allclose(np.asarray(u["w"], np.float32), -1.01, rtol=1e-2)


def test_timescale_formulas_and_roundtrip():
  lam = variants.weight_decay_from_timescale(learning_rate=2e-3, tau_epoch=5.0,
                                             batch_size=64, dataset_size=6400)
  # τ_iter = τ_epoch·N/B = 500, λ = 1/(η τ_iter)
  assert lam == pytest.approx(1 / (2e-3 * 500))
  tau_iter, tau_epoch = variants.timescale(weight_decay=lam, learning_rate=2e-3,
                                           batch_size=64, dataset_size=6400)
  assert (tau_iter, tau_epoch) == (pytest.approx(500.0), pytest.approx(5.0))
  assert variants.weight_decay_from_timescale(
      learning_rate=2e-3, tau_iter=500.0, scale_by="constant") == pytest.approx(1 / 500)
  # vmappable over the dataset size
  sizes = jnp.array([1000.0, 2000.0, 4000.0])
  lams = jax.vmap(lambda n: variants.weight_decay_from_timescale(
      learning_rate=1e-3, tau_epoch=2.0, batch_size=10.0, dataset_size=n))(sizes)
  np.testing.assert_allclose(lams, 10.0 / (1e-3 * 2.0 * np.asarray(sizes)), rtol=1e-6)


def test_normalized_weight_decay_formula():
  lam = variants.normalized_weight_decay(0.05, batch_size=128, dataset_size=50_000, epochs=100)
  assert lam == pytest.approx(0.05 * np.sqrt(128 / (50_000 * 100)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(tau_epoch=0.0, batch_size=1, dataset_size=10), "tau_epoch"),
    (dict(tau_epoch=-1.0, batch_size=1, dataset_size=10), "tau_epoch"),
    (dict(tau_iter=0.0), "tau_iter"),
    (dict(tau_iter=1.0, tau_epoch=1.0), "exactly one"),
    (dict(tau_epoch=1.0), "batch_size"),
])
def test_timescale_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    variants.weight_decay_from_timescale(learning_rate=1e-3, **kwargs)


def test_bad_input_errors():
  with pytest.raises(ValueError, match="strength"):
    variants.cautious(-1.0, learning_rate=0.1)
  with pytest.raises(ValueError, match="learning_rate"):
    variants.cautious(0.1)
  with pytest.raises(ValueError, match="peak_learning_rate"):
    variants.corrected(0.1, learning_rate=optax.constant_schedule(0.1))
  with pytest.raises(ValueError, match="weight_decay"):
    variants.adams(0.1, weight_decay=-0.1)
  with pytest.raises(ValueError, match="epochs"):
    variants.normalized_weight_decay(0.05, batch_size=1, dataset_size=10, epochs=0)
  tx = variants.cautious(0.1, learning_rate=0.1)
  with pytest.raises(ValueError, match="needs the current params"):
    tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))


# ------------------------------------------------------------ mutation survivors (tools/mutation)
# Each test below kills mutants of wdjax/variants.py that survived the tests above (named in
# its docstring); the references are optax's own Adam and the rules written out in NumPy.


def _fixed_grads(params, steps=4, seed=5):
  rng = np.random.default_rng(seed)
  return [jax.tree.map(lambda p: rng.normal(size=np.shape(p)), params) for _ in range(steps)]


def _trajectory(tx, params, grads):
  """The params after each update of `tx` along a fixed gradient sequence, and the state."""
  p = jax.tree.map(jnp.asarray, params)
  state, step, out = tx.init(p), jax.jit(tx.update), []
  for g in grads:
    u, state = step(jax.tree.map(jnp.asarray, g), state, p)
    p = optax.apply_updates(p, u)
    out.append(jax.tree.map(np.asarray, p))
  return out, state


def _adam_updates(adam, params, grads):
  """optax.adam's updates along the gradient sequence (they do not depend on the params)."""
  state, out = adam.init(params), []
  for g in grads:
    u, state = adam.update(g, state, params)
    out.append(jax.tree.map(np.asarray, u))
  return out


_ADAM_ARGS = dict(b1=0.8, b2=0.99, eps=0.1, eps_root=1e-3, mu_dtype=jnp.float32, nesterov=True)


@pytest.mark.parametrize("preset", ["adamc", "adams", "cautious_adamw"])
@pytest.mark.parametrize("full", [False, True], ids=["defaults", "every_argument"])
def test_adam_presets_are_optax_adam_then_the_numpy_decay(preset, full, x64):
  """adamc, adams and cautious_adamw = optax.adam with the same arguments (defaults b1 0.9,
  b2 0.999, ε 1e-8, λ 1e-4, mask weights_only; or every argument given, ε = 0.1 so that
  the ε of AdamS's decay √v̄ + ε shows), then the decay in NumPy: c·λ·w with c = η²/η_peak
  (adamc), c·λ·1[u⊙w ≤ 0]·w with c = η/η_peak for scale_by="schedule" (cautious_adamw),
  η·λ·w/(√mean(v̂) + ε) (adams). mu_dtype reaches Adam's state.
  Mutmut: every default, mu_dtype/nesterov/eps_root/mask dropped or None, √v̄ − ε, and
  no test calling cautious_adamw at all."""
  del x64
  eta, peak = 0.05, 0.2
  rng = np.random.default_rng(6)
  params = {"dense": {"bias": rng.normal(size=2), "kernel": rng.normal(size=(3, 2))}}
  grads = _fixed_grads(params)
  if full:
    lam, kw, adam_kw = 0.3, dict(_ADAM_ARGS), dict(_ADAM_ARGS)
    decayed = {"dense": {"bias": True, "kernel": False}}
    kw.update(weight_decay=lam, mask=decayed)
    if preset == "adamc":
      kw.update(peak_learning_rate=peak)
      coef = eta ** 2 / peak
    elif preset == "cautious_adamw":
      kw.update(scale_by="schedule", peak_learning_rate=peak)
      coef = eta / peak
    else:
      coef = eta
  else:
    lam, kw, adam_kw, coef = 1e-4, {}, {}, eta
    decayed = {"dense": {"bias": False, "kernel": True}}
  b2, eps = adam_kw.get("b2", 0.999), adam_kw.get("eps", 1e-8)
  got, state = _trajectory(getattr(variants, preset)(eta, **kw), params, grads)
  if full:
    assert all(m.dtype == jnp.float32 for m in jax.tree.leaves(
        optax.tree_utils.tree_get(state, "mu")))

  steps = _adam_updates(optax.adam(eta, **adam_kw), jax.tree.map(jnp.asarray, params), grads)
  w, v = params, jax.tree.map(np.zeros_like, params)
  for t, (a, g) in enumerate(zip(steps, grads)):
    v = jax.tree.map(lambda vi, gi: b2 * vi + (1 - b2) * gi * gi, v, g)
    v_bar = np.mean(np.concatenate([x.ravel() for x in jax.tree.leaves(v)])) / (1 - b2 ** (t + 1))

    def rule(x, ai, dec):
      if not dec:
        return x + ai
      if preset == "adams":
        return x + ai - eta * lam * x / (np.sqrt(v_bar) + eps)
      agree = (ai * x <= 0) if preset == "cautious_adamw" else 1.0
      return x + ai - coef * lam * agree * x

    w = jax.tree.map(rule, w, a, decayed)
    for x, y in zip(jax.tree.leaves(got[t]), jax.tree.leaves(w)):
      np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12, err_msg=f"step {t}")


def test_cautious_complex_leaf_uses_re_conj_u_times_w():
  """On a complex leaf the indicator is 1[Re(ū·w) ≤ 0] (NumPy), which differs from Re(u·w)
  and Re(u)·Re(w) at the first two coordinates.
  Mutmut: the complex branch skipped, its product None, ū/w, w cast to a real dtype."""
  u = np.array([1 + 1j, 1 + 1j, -1 + 0.5j, 2j], np.complex64)
  w = np.array([1 + 2j, -1 + 2j, 1 - 1j, 0.5 - 1j], np.complex64)
  lam, eta = 0.5, 0.2
  tx = variants.cautious(lam, learning_rate=eta, mask=None)
  params = {"w": jnp.asarray(w)}
  got, _ = tx.update({"w": jnp.asarray(u)}, tx.init(params), params)
  agree = (np.real(np.conj(u) * w) <= 0).astype(np.float32)
  np.testing.assert_allclose(np.asarray(got["w"]), u - eta * lam * agree * w, rtol=1e-6)
  assert agree.tolist() == [0.0, 0.0, 1.0, 1.0]
  assert np.real(u * w)[0] < 0 and np.real(u)[1] * np.real(w)[1] < 0  # where the wrong ones err


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_cautious_under_strict_promotion_keeps_the_leaf_dtype(dtype, x64, strict_dtypes):
  """cautious on float32/bfloat16 leaves under x64 and strict dtype promotion: no float64
  enters (it would be refused), the update keeps the leaf's dtype, values as in NumPy.
  Mutmut: `.astype(None)` (the default float, float64 under x64) for the leaf's dtype in
  `w.astype(u.dtype)`, the indicator and the decay term."""
  del x64, strict_dtypes
  w = np.array([1.0, -2.0, 0.5, 0.0])
  u = np.array([-0.5, -0.5, 0.25, 1.0])
  tx = variants.cautious(0.25, learning_rate=0.5, mask=None)
  params = {"w": jnp.asarray(w, dtype)}
  got, _ = tx.update({"w": jnp.asarray(u, dtype)}, tx.init(params), params)
  assert got["w"].dtype == dtype
  np.testing.assert_allclose(np.asarray(got["w"], np.float64),
                             u - 0.125 * (u * w <= 0) * w, rtol=1e-2 if dtype == jnp.bfloat16
                             else 1e-7)


def test_cautious_schedule_scale_and_corrected_constant_eta_and_strength_schedule(x64):
  """After optax.sgd(η_t): cautious with scale_by="schedule" decays by (η_t/η_peak)·λ;
  corrected with a constant η and no η_peak is AdamW's c = η²/η = η, with a strength
  schedule λ_t evaluated at the step (NumPy).
  Mutmut: cautious not passing peak_learning_rate on, corrected using η_peak = None, and
  corrected evaluating λ at count None."""
  del x64
  a, w0 = np.array([0.5, 1.5, 2.0]), np.array([1.0, -2.0, 0.3])
  grad = lambda p: {"w": jnp.asarray(a) * p["w"]}
  steps, peak = 5, 0.4
  sched = optax.linear_schedule(peak, 0.1, steps)
  lam_sched = optax.linear_schedule(0.5, 0.1, steps)
  cases = (  # (transform, η_t, NumPy update given t, w and the SGD step u)
      (optax.chain(optax.sgd(sched), variants.cautious(
          0.3, learning_rate=sched, scale_by="schedule", peak_learning_rate=peak, mask=None)),
       lambda t: float(sched(t)),
       lambda t, w, u: u - float(sched(t)) / peak * 0.3 * (u * w <= 0) * w),
      (optax.chain(optax.sgd(0.2), variants.corrected(lam_sched, learning_rate=0.2, mask=None)),
       lambda t: 0.2, lambda t, w, u: u - 0.2 * float(lam_sched(t)) * w),
  )
  for tx, eta, rule in cases:
    state, p, w = tx.init({"w": jnp.asarray(w0)}), {"w": jnp.asarray(w0)}, w0.copy()
    for t in range(steps):
      u, state = tx.update(grad(p), state, p)
      p = optax.apply_updates(p, u)
      w = w + rule(t, w, -eta(t) * a * w)
      np.testing.assert_allclose(np.asarray(p["w"]), w, rtol=1e-6, err_msg=f"step {t}")


def test_variant_errors_name_the_variant_and_the_argument():
  """Every check of cautious, corrected and adams names its argument (or the transform),
  whole: λ >= 0, η > 0, η_peak > 0 (also for a constant η), a schedule without η_peak, a
  per-leaf λ missing a leaf, an update without params, a mask or `normalized` that does not
  fit (refused at init, not at the first step), and the double-decay warning's label.
  Mutmut: each of these names and texts, `positive=True` dropped, the η_peak check skipped
  when it is given, the masks not checked at init."""
  from wdjax import modern
  sched = optax.linear_schedule(0.1, 0.01, 10)
  params = {"a": jnp.ones(2), "b": jnp.ones(2)}
  half = {"a": True}
  for fn in (lambda **k: variants.corrected(**k), lambda **k: variants.cautious(**k)):
    with pytest.raises(ValueError, match=r"^`strength` must be >= 0, got -0\.1\. "):
      fn(strength=-0.1, learning_rate=0.1)
    with pytest.raises(ValueError, match=r"^`learning_rate` must be > 0, got 0\.0\.$"):
      fn(strength=0.1, learning_rate=0.0)
  with pytest.raises(ValueError) as err:
    variants.corrected(0.1, learning_rate=sched)
  assert str(err.value) == ("corrected() with a learning-rate schedule needs "
                            "peak_learning_rate= (η_peak, the schedule's peak, so that "
                            "c_t = η_t²/η_peak).")
  with pytest.raises(ValueError, match=r"^`peak_learning_rate` must be > 0, got 0\.0\.$"):
    variants.corrected(0.1, learning_rate=0.1, peak_learning_rate=0.0)
  with pytest.raises(ValueError, match=r"^`weight_decay` must be >= 0, got -0\.1\. "):
    variants.adams(0.1, weight_decay=-0.1)
  with pytest.raises(ValueError, match=r"^`learning_rate` must be > 0, got 0\.0\.$"):
    variants.adams(0.0)
  for name, tx in (("cautious", variants.cautious(0.1, learning_rate=0.1, mask=None)),
                   ("corrected", variants.corrected(0.1, learning_rate=0.1, mask=None)),
                   ("adams", variants.adams(0.1, mask=None))):
    with pytest.raises(ValueError, match=rf"^wdjax\.{name} needs the current params"):
      tx.update(params, tx.init(params))
  tx = variants.corrected({"a": 0.1}, learning_rate=0.1, mask=None)
  with pytest.raises(ValueError, match=r"^`strength` is a pytree without a value for the "
                     r"params leaves \['b'\]"):
    tx.update(params, tx.init(params), params)
  for tx in (variants.corrected(0.1, learning_rate=0.1, mask=half),
             variants.corrected(0.1, learning_rate=0.1, normalized=half, mask=None),
             variants.adams(0.1, mask=half)):
    with pytest.raises(ValueError, match=r"^mask does not fit the params"):
      tx.init(params)
  for tx, label in ((variants.cautious(0.1, learning_rate=1e-4), "wdjax.cautious"),
                    (variants.corrected(0.1, learning_rate=1e-4), "wdjax.corrected")):
    with pytest.warns(modern.DoubleDecayWarning, match=rf" and by {label}\. "):
      modern.chain(optax.lion(1e-4), tx)


def test_timescale_calculators_constant_scale_partial_sizes_and_errors():
  """timescale/weight_decay_from_timescale/normalized_weight_decay: scale_by="constant"
  (τ_iter = 1/λ), only one of batch_size/dataset_size (no τ_epoch; refused for tau_epoch),
  and every error whole, naming its argument.
  Mutmut: the "constant" branch (its name, 1/λ), `or` → `and` on the sizes, and the names
  and texts of the messages."""
  vt = variants
  assert vt.timescale(weight_decay=0.25, learning_rate=1e-3, scale_by="constant") == (4.0, None)
  assert vt.timescale(weight_decay=0.25, learning_rate=1e-3, scale_by="constant",
                      batch_size=10, dataset_size=1000) == (4.0, pytest.approx(0.04))
  assert vt.timescale(weight_decay=0.25, learning_rate=0.5, batch_size=10) == (8.0, None)
  assert vt.timescale(weight_decay=0.25, learning_rate=0.5, dataset_size=10) == (8.0, None)
  for kw in (dict(batch_size=10), dict(dataset_size=10)):
    with pytest.raises(ValueError) as err:
      vt.weight_decay_from_timescale(learning_rate=1e-3, tau_epoch=1.0, **kw)
    assert str(err.value) == ("tau_epoch needs batch_size= and dataset_size= (τ_iter = "
                              "τ_epoch·dataset_size/batch_size).")
  with pytest.raises(ValueError) as err:
    vt.weight_decay_from_timescale(learning_rate=1e-3)
  assert str(err.value) == ("give exactly one of tau_epoch= (timescale in epochs) or "
                            "tau_iter= (in iterations).")
  for fn in (lambda: vt.timescale(weight_decay=0.1, learning_rate=0.1, scale_by="schedule"),
             lambda: vt.weight_decay_from_timescale(learning_rate=0.1, tau_iter=1.0,
                                                    scale_by="schedule")):
    with pytest.raises(ValueError) as err:
      fn()
    assert str(err.value) == "scale_by must be 'lr' or 'constant', got 'schedule'."
  ok_t = dict(weight_decay=0.1, learning_rate=0.1, batch_size=1, dataset_size=10)
  ok_w = dict(learning_rate=0.1, tau_epoch=1.0, batch_size=1, dataset_size=10)
  ok_n = dict(lambda_norm=0.1, batch_size=1, dataset_size=10, epochs=2)
  cases = [(vt.timescale, ok_t, k) for k in ok_t]
  cases += [(vt.weight_decay_from_timescale, ok_w, k) for k in ok_w]
  cases += [(vt.weight_decay_from_timescale, dict(learning_rate=0.1, tau_iter=1.0), "tau_iter")]
  cases += [(lambda lambda_norm, **k: vt.normalized_weight_decay(lambda_norm, **k), ok_n, k)
            for k in ok_n]
  for fn, ok, arg in cases:
    bad = -1.0 if arg == "lambda_norm" else 0.0
    want = (rf"^`{arg}` must be >= 0, got -1\.0\. " if arg == "lambda_norm"
            else rf"^`{arg}` must be > 0, got 0\.0\.$")
    with pytest.raises(ValueError, match=want):
      fn(**{**ok, arg: bad})

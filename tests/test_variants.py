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

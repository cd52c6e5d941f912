"""wdjax.dynamics against NumPy references, closed forms and simulated equilibria.

The equilibrium tests simulate the random-walk model of Kosson et al. (2024) that the
formulas assume: N = 16 neurons of fan-in C = 32, each scale-invariant, receiving each
step a fresh Gaussian gradient projected orthogonal to its weights and scaled by 1/‖w‖
(exactly the gradient of a scale-invariant loss), trained by optax's own optimizers
in one jit-compiled `lax.scan`; the RMS angular update and weight norm over the second
half are compared with the predictions.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wdjax import dynamics, variants

# ---- independent NumPy references ---------------------------------------------------------


def np_axes(x, neuron_axis):
  if neuron_axis is None:
    return tuple(range(x.ndim))
  return tuple(i for i in range(x.ndim) if i != neuron_axis % x.ndim)


def np_norm(x, neuron_axis):
  return np.sqrt((np.asarray(x, np.float64) ** 2).sum(axis=np_axes(x, neuron_axis)))


def np_angle(w, w2, neuron_axis):
  w, w2 = np.asarray(w, np.float64), np.asarray(w2, np.float64)
  ax = np_axes(w, neuron_axis)
  cos = (w * w2).sum(axis=ax) / (np_norm(w, neuron_axis) * np_norm(w2, neuron_axis))
  return np.arccos(np.clip(cos, -1.0, 1.0))


def np_radial_tangential(w, d, neuron_axis):
  w, d = np.asarray(w, np.float64), np.asarray(d, np.float64)
  ax = np_axes(w, neuron_axis)
  nw = np.sqrt((w ** 2).sum(axis=ax, keepdims=True))
  r = (w / nw * d).sum(axis=ax, keepdims=True)
  t = np.sqrt(((d - r * w / nw) ** 2).sum(axis=ax))
  return r.reshape(t.shape), t


def np_spectrum(w):
  s = np.linalg.svd(np.asarray(w, np.float64).reshape(-1, w.shape[-1]), compute_uv=False)
  p = s / s.sum()
  p = p[p > 0]
  return s, s[0], (s ** 2).sum() / s[0] ** 2, np.exp(-(p * np.log(p)).sum())


SHAPES_AXES = [((7,), None), ((7,), -1), ((5, 3), None), ((5, 3), -1), ((5, 3), 0),
               ((2, 3, 4, 6), -1), ((2, 3, 4, 6), 1)]


def _pair(shape, seed=0, scale=0.3):
  rng = np.random.default_rng(seed)
  w = rng.normal(size=shape).astype(np.float32)
  d = (scale * rng.normal(size=shape)).astype(np.float32)
  return w, d


@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
def test_norms_and_angles_match_numpy(shape, axis):
  w, d = _pair(shape)
  w2 = w + d
  d_exact = w2.astype(np.float64) - w  # what after − before represents
  tol = dict(rtol=2e-5, atol=1e-6)
  np.testing.assert_allclose(dynamics.weight_norm(w, neuron_axis=axis), np_norm(w, axis), **tol)
  np.testing.assert_allclose(dynamics.update_norm(w, w2, neuron_axis=axis),
                             np_norm(d_exact, axis), **tol)
  np.testing.assert_allclose(dynamics.relative_update(w, w2, neuron_axis=axis),
                             np_norm(d_exact, axis) / np_norm(w, axis), **tol)
  np.testing.assert_allclose(dynamics.angular_update(w, w2, neuron_axis=axis),
                             np_angle(w, w2, axis), rtol=1e-4, atol=1e-6)
  r, t = dynamics.radial_tangential(w, w2, neuron_axis=axis)
  r_np, t_np = np_radial_tangential(w, d_exact, axis)
  np.testing.assert_allclose(r, r_np, **tol)
  np.testing.assert_allclose(t, t_np, **tol)
  np.testing.assert_allclose(dynamics.distance_to_init(w, w2, neuron_axis=axis),
                             np_norm(d_exact, axis), **tol)
  np.testing.assert_allclose(dynamics.distance_to_init(w, w2, neuron_axis=axis, relative=True),
                             np_norm(d_exact, axis) / np_norm(w, axis), **tol)
  expected_shape = () if axis is None else (shape[axis],)
  assert dynamics.angular_update(w, w2, neuron_axis=axis).shape == expected_shape


def test_update_argument_equals_after_minus_before():
  w, d = _pair((6, 4), seed=1)
  for fn in (dynamics.update_norm, dynamics.relative_update, dynamics.angular_update):
    np.testing.assert_allclose(fn(w, update=d, neuron_axis=-1),
                               fn(w, w + d, neuron_axis=-1), rtol=1e-5)


@pytest.mark.parametrize("theta", [1e-7, 1e-5, 1e-3, 0.3, math.pi / 2, 2.5, math.pi])
def test_rotation_by_a_known_angle(theta):
  # w = 2·e0 in R^5 rotated by θ in the (e0, e3) plane and scaled by 1.5: the angle is θ
  # whatever the scale. The step is given exactly (computed in float64), as a tracker
  # that passes update= does; float32 then keeps the relative precision at θ = 1e-7.
  w = np.zeros(5); w[0] = 2.0
  w2 = np.zeros(5); w2[0], w2[3] = 3.0 * np.cos(theta), 3.0 * np.sin(theta)
  got = dynamics.angular_update(w.astype(np.float32), update=(w2 - w).astype(np.float32))
  np.testing.assert_allclose(got, theta, rtol=1e-6)


def test_small_angles_where_a_clipped_arccos_fails():
  # At θ = 1e-4 the float32 cosine rounds to 1 (or one ulp below): arccos resolves only
  # 0 or ~5e-4; the atan2 form gives θ to float32 precision.
  theta = 1e-4
  w = np.array([1.0, 0.0], np.float32)
  u = np.array([np.cos(theta) - 1, np.sin(theta)], np.float32)
  w2 = w + u
  cos = np.float32(w @ w2) / (np.linalg.norm(w) * np.linalg.norm(w2))
  assert abs(np.arccos(np.clip(cos, -1, 1)) - theta) > 0.5 * theta
  np.testing.assert_allclose(dynamics.angular_update(w, update=u), theta, rtol=1e-6)


def test_norm_preserving_update():
  # An orthogonal map keeps every neuron's norm: ‖Δ‖ = 2‖w‖sin(θ/2), r = −‖Δ‖²/(2‖w‖).
  rng = np.random.default_rng(2)
  w = rng.normal(size=(8, 3))
  q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
  w2 = q @ w
  n = np.linalg.norm(w, axis=0)
  theta = dynamics.angular_update(w.astype(np.float32), w2.astype(np.float32), neuron_axis=-1)
  np.testing.assert_allclose(dynamics.weight_norm(w2, neuron_axis=-1), n, rtol=1e-6)
  np.testing.assert_allclose(theta, np_angle(w, w2, -1), rtol=1e-5)
  rel = dynamics.relative_update(w, w2, neuron_axis=-1)
  np.testing.assert_allclose(rel, 2 * np.sin(np_angle(w, w2, -1) / 2), rtol=1e-5)
  r, t = dynamics.radial_tangential(w, w2, neuron_axis=-1)
  np.testing.assert_allclose(r, -(rel * n) ** 2 / (2 * n), rtol=1e-4)
  np.testing.assert_allclose(r ** 2 + t ** 2, (rel * n) ** 2, rtol=1e-5)


def test_pure_decay_is_radial_and_does_not_rotate():
  w, _ = _pair((6, 4), seed=3)
  s = 0.01
  r, t = dynamics.radial_tangential(w, update=-s * w, neuron_axis=-1)
  np.testing.assert_allclose(r, -s * np_norm(w, -1), rtol=1e-6)
  np.testing.assert_allclose(t, 0.0, atol=1e-8)
  np.testing.assert_allclose(dynamics.angular_update(w, update=-s * w, neuron_axis=-1), 0.0,
                             atol=1e-7)
  np.testing.assert_allclose(dynamics.relative_update(w, update=-s * w), s, rtol=1e-6)


def test_zero_weights():
  w = np.array([[0.0, 1.0], [0.0, 0.0]], np.float32)   # first neuron is dead
  u = np.array([[0.0, 0.0], [0.0, 1.0]], np.float32)
  np.testing.assert_allclose(dynamics.angular_update(w, update=u, neuron_axis=-1),
                             [0.0, np.pi / 4])
  np.testing.assert_array_equal(dynamics.relative_update(w, update=u, neuron_axis=-1), [0, 1])
  np.testing.assert_array_equal(
      dynamics.relative_update(w, update=np.ones_like(w), neuron_axis=-1),
      np.float32([np.inf, np.sqrt(2)]))
  # rotating to 0 (w' = 0) is not a rotation either: atan2(0, 0) = 0
  assert float(dynamics.angular_update(w, update=-w)) == 0.0
  r, t = dynamics.radial_tangential(w, update=u, neuron_axis=-1)
  np.testing.assert_array_equal(r, [0, 0])
  np.testing.assert_array_equal(t, [0, 1])


def test_bfloat16_leaves_are_measured_in_float32():
  w, d = _pair((16, 4), seed=4)
  wb, db = jnp.asarray(w, jnp.bfloat16), jnp.asarray(d, jnp.bfloat16)
  theta = dynamics.angular_update(wb, update=db, neuron_axis=-1)
  assert theta.dtype == jnp.float32
  ref = np_angle(np.asarray(wb, np.float64), np.asarray(wb, np.float64)
                 + np.asarray(db, np.float64), -1)
  np.testing.assert_allclose(theta, ref, rtol=1e-5)


def test_strict_dtype_promotion(strict_dtypes):
  w, d = _pair((5, 3), seed=5)
  for fn in (dynamics.angular_update, dynamics.relative_update, dynamics.update_norm):
    fn(w, update=d, neuron_axis=-1)
  dynamics.radial_tangential(w, update=d)
  dynamics.effective_learning_rate(w, 0.1, optimizer="adam", neuron_axis=-1)
  dynamics.linf_bound(w, 0.1)
  dynamics.stable_rank(w), dynamics.effective_rank(w)
  dynamics.equilibrium_angle("lion", jnp.float32(1e-3), jnp.float32(0.1))


# ---- spectra, bounds, counts --------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 3, 2, 5)])
def test_spectra_match_numpy(shape):
  w, _ = _pair(shape, seed=6)
  s, smax, srank, erank = np_spectrum(w)
  np.testing.assert_allclose(dynamics.singular_values(w), s, rtol=1e-5)
  np.testing.assert_allclose(dynamics.spectral_norm(w), smax, rtol=1e-5)
  np.testing.assert_allclose(dynamics.stable_rank(w), srank, rtol=1e-5)
  np.testing.assert_allclose(dynamics.effective_rank(w), erank, rtol=1e-5)


def test_known_spectrum():
  # W = U diag(σ) Vᵀ with random orthogonal U, V: the measures depend on σ alone.
  rng = np.random.default_rng(7)
  sigma = np.array([4.0, 2.0, 2.0, 1.0, 0.0])
  u, _ = np.linalg.qr(rng.normal(size=(9, 5)))
  v, _ = np.linalg.qr(rng.normal(size=(5, 5)))
  w = (u * sigma) @ v.T
  p = sigma[:4] / sigma.sum()
  np.testing.assert_allclose(dynamics.singular_values(w), sigma, atol=1e-5)
  np.testing.assert_allclose(dynamics.spectral_norm(w), 4.0, rtol=1e-5)
  np.testing.assert_allclose(dynamics.stable_rank(w), 25.0 / 16.0, rtol=1e-5)
  np.testing.assert_allclose(dynamics.effective_rank(w), np.exp(-(p * np.log(p)).sum()),
                             rtol=1e-5)
  # k equal singular values: effective rank k; rank one: 1; zero matrix: 0 (documented)
  np.testing.assert_allclose(dynamics.effective_rank(np.eye(3)), 3.0, rtol=1e-6)
  np.testing.assert_allclose(dynamics.effective_rank(np.outer([1.0, 2], [3.0, 1])), 1.0,
                             rtol=1e-6)
  assert float(dynamics.effective_rank(np.zeros((3, 2)))) == 0.0
  assert float(dynamics.stable_rank(np.zeros((3, 2)))) == 0.0


def test_linf_bound_and_zero_fraction():
  x = np.array([[0.0, -3.0], [2.0, -0.0], [1e-30, 0.5]], np.float32)
  np.testing.assert_allclose(dynamics.linf_bound(x, 0.2), 0.6, rtol=1e-6)
  np.testing.assert_allclose(dynamics.zero_fraction(x), 2 / 6, rtol=1e-6)
  assert float(dynamics.zero_fraction(np.zeros((0, 3)))) == 0.0
  assert float(dynamics.zero_fraction(np.arange(4))) == 0.25


def test_lion_contracts_into_the_linf_box():
  # Lion's step has |uᵢ| = η, so |wᵢ'| ≤ (1 − ηλ)|wᵢ| + η: the excess λ‖w‖∞ − 1 contracts by
  # (1 − ηλ) every step, and once ≤ 0 stays ≤ 0 (Chen et al. 2023). Half the coordinates
  # start at 3/λ, half inside the box; a drift in the gradients pushes them all outward.
  eta, lam = 0.05, 0.5
  s = eta * lam
  tx = optax.lion(eta, b1=0.9, b2=0.99, weight_decay=lam)

  @jax.jit
  def run(key):
    w = jnp.concatenate([jnp.full((32,), 3.0 / lam), jnp.linspace(-1.0, 1.0, 32) / lam])
    def step(carry, k):
      w, st = carry
      g = jax.random.normal(k, w.shape) - 0.3 * jnp.sign(w)
      u, st = tx.update(g, st, w)
      w = w + u
      return (w, st), (dynamics.linf_bound(w[:32], lam), dynamics.linf_bound(w[32:], lam))
    w0 = (w, tx.init(w))
    return jax.lax.scan(step, w0, jax.random.split(key, 400))[1]

  outside, inside = map(np.asarray, run(jax.random.key(0)))
  excess = np.concatenate([[2.0], outside - 1])
  assert np.all(excess[1:] <= (1 - s) * excess[:-1] + 1e-6)
  assert excess[-1] <= 2.0 * (1 - s) ** 400 + 1e-6
  assert excess[-1] > 0          # approached from outside, never crossed (the drift)
  assert inside.max() <= 1.0 + 1e-6


def test_adamw_converges_to_the_linf_constrained_minimizer():
  # Xie & Li: AdamW's limit is a KKT point of min L(w) s.t. ‖w‖∞ ≤ 1/λ. For
  # L = ½‖w − a‖² that is clip(a, −1/λ, 1/λ); two coordinates of a lie outside the box.
  # β₂ = 0.99 lets v forget the early, larger gradients within the run (with 0.999 the
  # coordinates at the bound sit 1-2% inside it after 3000 steps: |m̂/√v̂| < 1).
  lam = 0.5
  a = jnp.array([6.0, -4.0, 1.0, 0.2])
  sched = optax.cosine_decay_schedule(0.05, 3000, alpha=0.01)
  tx = optax.adamw(sched, b1=0.9, b2=0.99, eps=1e-12, weight_decay=lam)

  @jax.jit
  def run():
    def step(carry, _):
      w, st = carry
      u, st = tx.update(w - a, st, w)
      return (w + u, st), None
    w = jnp.zeros(4)
    return jax.lax.scan(step, (w, tx.init(w)), None, length=3000)[0][0]

  w = run()
  # measured within 4e-5; the tolerance is Adam's step at the final η = 5e-4 (its wobble)
  np.testing.assert_allclose(w, np.clip(a, -1 / lam, 1 / lam), atol=5e-4)
  np.testing.assert_allclose(dynamics.linf_bound(w, lam), 1.0, atol=5e-4)


# ---- effective learning rate and timescales -----------------------------------------------


def _scale_invariant_loss(w):
  v = jnp.array([1.0, -2.0, 0.5, 3.0])
  return jnp.sum(jnp.sin(3 * w / jnp.linalg.norm(w)) * v)


@pytest.mark.parametrize("optimizer,tx_fn", [("sgd", optax.sgd), ("adam", optax.adam)])
def test_effective_learning_rate_is_the_step_of_the_direction(optimizer, tx_fn):
  # One step at w and at c·w (same direction, same loss): the direction moves by an amount
  # proportional to the effective learning rate, 1/c² of it for SGD and 1/c for Adam.
  w = jnp.array([0.3, -1.0, 0.8, 0.2])
  eta = 1e-4
  moves = []
  for c in (1.0, 3.0):
    wc = c * w
    tx = tx_fn(eta)
    u, _ = tx.update(jax.grad(_scale_invariant_loss)(wc), tx.init(wc), wc)
    moves.append(float(dynamics.angular_update(wc, update=u)))
  ratio = moves[1] / moves[0]
  lr1 = float(dynamics.effective_learning_rate(w, eta, optimizer=optimizer))
  lr3 = float(dynamics.effective_learning_rate(3 * w, eta, optimizer=optimizer))
  np.testing.assert_allclose(ratio, lr3 / lr1, rtol=1e-3)
  np.testing.assert_allclose(lr3 / lr1, 1 / 9 if optimizer == "sgd" else 1 / 3, rtol=1e-6)
  if optimizer == "sgd":
    # and its value: the direction moves by η/‖w‖²·‖∇L(ŵ)‖ (to first order in η)
    w_hat = w / jnp.linalg.norm(w)
    g_hat = float(jnp.linalg.norm(jax.grad(_scale_invariant_loss)(w_hat)))
    np.testing.assert_allclose(moves[0], lr1 * g_hat, rtol=1e-3)


def test_timescale_matches_variants_timescale():
  for kw in (dict(learning_rate=1e-3, weight_decay=0.1, batch_size=128, dataset_size=60_000),
             dict(learning_rate=0.3, weight_decay=5e-4),
             dict(learning_rate=1e-2, weight_decay=1e-4, scale_by="constant", batch_size=32,
                  dataset_size=1000)):
    got = dynamics.timescale(**kw)
    ref = variants.timescale(**kw)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12)
    assert (got[1] is None) == (ref[1] is None)
    if got[1] is not None:
      np.testing.assert_allclose(got[1], ref[1], rtol=1e-12)
  np.testing.assert_allclose(dynamics.timescale(learning_rate=1e-3, weight_decay=0.1,
                                                batch_size=100, dataset_size=50_000),
                             (1e4, 20.0))


# ---- jit / vmap / pytrees -----------------------------------------------------------------

PAIR_FNS = [
    functools.partial(dynamics.update_norm, neuron_axis=-1),
    functools.partial(dynamics.relative_update, neuron_axis=-1),
    functools.partial(dynamics.angular_update, neuron_axis=-1),
    functools.partial(dynamics.radial_tangential, neuron_axis=-1),
    functools.partial(dynamics.distance_to_init, neuron_axis=None, relative=True),
]
LEAF_FNS = [
    functools.partial(dynamics.weight_norm, neuron_axis=-1), dynamics.singular_values,
    dynamics.spectral_norm, dynamics.stable_rank, dynamics.effective_rank,
    dynamics.zero_fraction, lambda w: dynamics.linf_bound(w, 0.3),
    lambda w: dynamics.effective_learning_rate(w, 0.1, neuron_axis=-1),
]


def _close(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=2e-5, atol=1e-6), a, b)


@pytest.mark.parametrize("fn", PAIR_FNS)
def test_pair_functions_jit_and_vmap_equal_eager(fn):
  w, d = _pair((3, 6, 4), seed=8)   # a batch of 3 leaves of shape (6, 4)
  w2 = w + d
  eager = [fn(w[i], w2[i]) for i in range(3)]
  _close(jax.jit(fn)(w[0], w2[0]), eager[0])
  _close(jax.vmap(fn)(w, w2), jax.tree.map(lambda *xs: np.stack(xs), *eager))


@pytest.mark.parametrize("fn", LEAF_FNS)
def test_leaf_functions_jit_and_vmap_equal_eager(fn):
  w, _ = _pair((3, 6, 4), seed=9)
  w[1, :2] = 0.0
  eager = [fn(w[i]) for i in range(3)]
  _close(jax.jit(fn)(w[1]), eager[1])
  _close(jax.vmap(fn)(w), np.stack(eager))


def test_hyperparameters_can_be_traced_and_vmapped():
  # A sweep vmaps λ and η: the predictions and λ‖w‖∞ accept traced values.
  lams = jnp.array([1e-3, 1e-2, 1e-1])
  got = jax.jit(jax.vmap(lambda lam: dynamics.equilibrium_angle("adamw", 1e-3, lam)))(lams)
  np.testing.assert_allclose(got, [dynamics.equilibrium_angle("adamw", 1e-3, float(x))
                                   for x in lams], rtol=1e-6)
  got = jax.vmap(lambda lam: dynamics.equilibrium_norm("lion", 1e-3, lam, fan_in=64))(lams)
  np.testing.assert_allclose(got, [dynamics.equilibrium_norm("lion", 1e-3, float(x), fan_in=64)
                                   for x in lams], rtol=1e-6)
  w = jnp.array([1.0, -4.0])
  np.testing.assert_allclose(jax.vmap(dynamics.linf_bound, (None, 0))(w, lams), 4 * lams,
                             rtol=1e-6)
  tau = jax.vmap(lambda lam: dynamics.timescale(learning_rate=0.1, weight_decay=lam)[0])(lams)
  np.testing.assert_allclose(tau, 10 / lams, rtol=1e-6)


def test_per_leaf_over_plain_dicts_and_masks():
  before = {"b": jnp.zeros(3), "dense": {"kernel": jnp.ones((4, 3))}, "out": [jnp.ones((3, 2))]}
  after = jax.tree.map(lambda x: 1.5 * x + 0.1, before)
  got = dynamics.per_leaf(dynamics.relative_update, before, after, neuron_axis=-1)
  assert list(got) == ["b", "dense/kernel", "out/0"]
  np.testing.assert_allclose(got["dense/kernel"],
                             np_norm(np.full((4, 3), 0.6), -1) / np_norm(np.ones((4, 3)), -1),
                             rtol=1e-6)
  mask = jax.tree.map(lambda x: x.ndim == 2, before)
  assert list(dynamics.per_leaf(dynamics.weight_norm, before, mask=mask)) == ["dense/kernel",
                                                                              "out/0"]
  by_fn = dynamics.per_leaf(dynamics.weight_norm, before,
                            mask=lambda p: jax.tree.map(lambda x: x.ndim == 1, p))
  assert list(by_fn) == ["b"]
  jitted = jax.jit(lambda a, b: dynamics.per_leaf(dynamics.angular_update, a, b))(before, after)
  _close(jitted, dynamics.per_leaf(dynamics.angular_update, before, after))
  with pytest.raises(ValueError, match="same structure"):
    dynamics.per_leaf(dynamics.update_norm, before, {"b": jnp.zeros(3)})
  with pytest.raises(ValueError, match="mask has"):
    dynamics.per_leaf(dynamics.weight_norm, before, mask=[True])


def test_per_leaf_names_flax_nnx_state():
  from flax import nnx
  model = nnx.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0)), nnx.LayerNorm(4, rngs=nnx.Rngs(0)))
  params = nnx.state(model, nnx.Param)
  norms = dynamics.per_leaf(dynamics.weight_norm, params)
  assert sorted(norms) == ["layers/0/bias", "layers/0/kernel", "layers/1/bias",
                           "layers/1/scale"]
  np.testing.assert_allclose(norms["layers/0/kernel"],
                             np.linalg.norm(np.asarray(model.layers[0].kernel[...])), rtol=1e-6)


def test_argument_errors():
  w = np.ones((3, 2), np.float32)
  with pytest.raises(ValueError, match="out of range"):
    dynamics.weight_norm(w, neuron_axis=2)
  with pytest.raises(ValueError, match="scalar"):
    dynamics.weight_norm(np.float32(1.0), neuron_axis=-1)
  with pytest.raises(ValueError, match="after"):
    dynamics.angular_update(w)
  with pytest.raises(ValueError, match="matrices"):
    dynamics.spectral_norm(np.ones(3))
  with pytest.raises(ValueError, match="'sgd'"):
    dynamics.effective_learning_rate(w, 0.1, optimizer="lion")
  with pytest.raises(ValueError, match="no equilibrium formula"):
    dynamics.equilibrium_angle("adam_l2", 1e-3, 0.1)
  with pytest.raises(ValueError, match="fan_in"):
    dynamics.equilibrium_norm("adamw", 1e-3, 0.1)
  with pytest.raises(ValueError, match="grad_norm"):
    dynamics.equilibrium_norm("sgdw", 1e-3, 0.1)
  with pytest.raises(ValueError, match="coupled"):
    dynamics.equilibrium_angle("sgd_l2", 0.1, 1e-4, scale_by="constant")
  with pytest.raises(ValueError, match=">= 0"):
    dynamics.equilibrium_angle("adamw", 1e-3, -0.1)
  with pytest.raises(ValueError, match="scale_by"):
    dynamics.timescale(learning_rate=1e-3, weight_decay=0.1, scale_by="schedule")


# ---- equilibria: formulas and simulations -------------------------------------------------


def test_equilibrium_formulas_closed_forms():
  eta, lam = 1e-3, 0.1
  s = eta * lam
  np.testing.assert_allclose(dynamics.equilibrium_angle("adamw", eta, lam, b1=0.0),
                             math.sqrt(2 * s))
  np.testing.assert_allclose(dynamics.equilibrium_angle("adamw", eta, lam, b1=0.9),
                             math.sqrt(2 * s * 0.1 / 1.9))
  np.testing.assert_allclose(dynamics.equilibrium_angle("sgd_l2", eta, lam, momentum=0.9),
                             math.sqrt(2 * s / 1.9))                 # Wan et al. 2021
  np.testing.assert_allclose(dynamics.equilibrium_angle("sgdw", eta, lam, momentum=0.0),
                             math.sqrt(2 * s))
  # Lion: sign descent (β₁ = 0) is exactly √(2s); at the defaults within 0.5% of Kosson et
  # al.'s rule √(π/2)·√(2s)·σ (their RotationalWrapper's lion_etar_func).
  np.testing.assert_allclose(dynamics.equilibrium_angle("lion", eta, lam, b1=0.0),
                             math.sqrt(2 * s))
  sigma = math.sqrt(0.1 ** 2 + 0.81 * 0.01 / 1.99)
  kosson = math.sqrt(math.pi / 2) * math.sqrt(2 * s) * sigma
  lion = dynamics.equilibrium_angle("lion", eta, lam, b1=0.9, b2=0.99)
  assert 0.995 * kosson < lion < kosson
  # scale_by="constant": the decay per step is λ itself
  np.testing.assert_allclose(dynamics.equilibrium_angle("adamw", eta, s, scale_by="constant"),
                             dynamics.equilibrium_angle("adamw", eta, lam))
  # θ = η·√C/‖w*‖ for AdamW at β₁ = 0 and for Lion (every step has norm η√C)
  for opt, kw in (("adamw", dict(b1=0.0)), ("lion", {})):
    np.testing.assert_allclose(
        eta * math.sqrt(50) / dynamics.equilibrium_norm(opt, eta, lam, fan_in=50, **kw),
        dynamics.equilibrium_angle(opt, eta, lam, **kw), rtol=1e-12)
  np.testing.assert_allclose(dynamics.equilibrium_norm("sgd_l2", 0.1, 0.2, grad_norm=2.0,
                                                       momentum=0.5), 2.0 ** 0.25)
  np.testing.assert_allclose(dynamics.equilibrium_norm("sgdw", 0.1, 0.2, grad_norm=2.0,
                                                       momentum=0.5), 2.0 ** 0.5)


C, N = 32, 16   # fan-in and neurons of the simulated layer


@functools.partial(jax.jit, static_argnames=("tx", "steps"))
def simulate(tx, steps, key):
  """RMS angular update and RMS weight norm over the second half of `steps` steps."""
  k0, k = jax.random.split(key)
  w = jax.random.normal(k0, (C, N))
  w = w / jnp.linalg.norm(w, axis=0, keepdims=True)   # unit norm: away from equilibrium

  def step(carry, k):
    w, st = carry
    nrm = jnp.linalg.norm(w, axis=0, keepdims=True)
    w_hat = w / nrm
    xi = jax.random.normal(k, w.shape)
    g = (xi - w_hat * jnp.sum(w_hat * xi, axis=0, keepdims=True)) / nrm
    u, st = tx.update(g, st, w)
    return (w + u, st), (dynamics.angular_update(w, update=u, neuron_axis=-1),
                         dynamics.weight_norm(w, neuron_axis=-1))

  _, (theta, norms) = jax.lax.scan(step, (w, tx.init(w)), jax.random.split(k, steps))
  half = steps // 2
  return jnp.sqrt(jnp.mean(theta[half:] ** 2)), jnp.sqrt(jnp.mean(norms[half:] ** 2))


G = math.sqrt(C - 1)   # the gradient norm at unit weight norm: E‖ξ_⊥‖² = C − 1
# name: (optax transform, steps, optimizer, η, λ, options). s = ηλ = 5e-3 (τ_iter = 200
# steps) except Lion at the defaults, whose momentum remembers 1/(1 − β₂) = 100 steps, so
# s = 5e-4 keeps s/(1 − β₂) at 0.05 (the formulas' regime; see equilibrium_angle).
EQUILIBRIA = {
    "adamw": (optax.adamw(0.01, b1=0.9, b2=0.999, eps=1e-12, weight_decay=0.5), 4000,
              "adamw", 0.01, 0.5, dict(b1=0.9)),
    "adamw_b1=0": (optax.adamw(0.01, b1=0.0, b2=0.999, eps=1e-12, weight_decay=0.5), 4000,
                   "adamw", 0.01, 0.5, dict(b1=0.0)),
    "sgd_l2": (optax.chain(optax.add_decayed_weights(0.05), optax.sgd(0.1)), 4000,
               "sgd_l2", 0.1, 0.05, {}),
    "sgd_l2_momentum": (optax.chain(optax.add_decayed_weights(0.05),
                                    optax.sgd(0.1, momentum=0.9)), 4000,
                        "sgd_l2", 0.1, 0.05, dict(momentum=0.9)),
    "sgdw_momentum": (optax.chain(optax.sgd(0.1, momentum=0.9),
                                  optax.add_decayed_weights(-0.1 * 0.05)), 4000,
                      "sgdw", 0.1, 0.05, dict(momentum=0.9)),
    "lion": (optax.lion(1e-3, b1=0.9, b2=0.99, weight_decay=0.5), 12000,
             "lion", 1e-3, 0.5, dict(b1=0.9, b2=0.99)),
    "lion_b1=0": (optax.lion(0.01, b1=0.0, b2=0.99, weight_decay=0.5), 4000,
                  "lion", 0.01, 0.5, dict(b1=0.0, b2=0.99)),
}


@pytest.mark.parametrize("name", list(EQUILIBRIA))
def test_simulated_equilibrium_matches_prediction(name):
  # Tolerance 3%: over 5 seeds the measured deviations are at most 2.1% (AdamW β₁ = 0's
  # norm), with a seed-to-seed sd below 0.4%; they are the O(s) terms the formulas drop
  # (at s = 1e-3 that norm is within 0.1%). Runs start at unit norm, 0.8x to 7.5x the
  # predicted ones, and are measured after 10 τ_iter (Lion at the defaults: 3 τ_iter, 6
  # relaxation times 1/(2s) of its norm).
  tx, steps, opt, eta, lam, kw = EQUILIBRIA[name]
  theta, norm = simulate(tx, steps, jax.random.key(0))
  pred_theta = dynamics.equilibrium_angle(opt, eta, lam, **kw)
  size = dict(grad_norm=G) if opt.startswith("sgd") else dict(fan_in=C)
  pred_norm = dynamics.equilibrium_norm(opt, eta, lam, **size, **kw)
  np.testing.assert_allclose(float(theta), pred_theta, rtol=0.03)
  np.testing.assert_allclose(float(norm), pred_norm, rtol=0.03)


# ---- figures ------------------------------------------------------------------------------


def test_plot_over_steps_draws_leaves_bands_and_predictions(tmp_path):
  from wdjax import dynamics_plots
  steps = np.arange(0, 100, 10)
  series = {"a/kernel": np.linspace(0.1, 0.02, 10),
            "b/kernel": np.tile(np.linspace(1.0, 2.0, 4), (10, 1))}   # (steps, neurons)
  out = tmp_path / "theta.png"
  ax = dynamics_plots.plot_over_steps(series, steps, predicted={"a/kernel": 0.02},
                                      quantity="angular_update", logy=True, filename=out)
  assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  lines = ax.get_lines()
  assert lines[0].get_label() == "a/kernel" and lines[2].get_label() == "b/kernel"
  np.testing.assert_allclose(lines[0].get_xdata(), steps)
  np.testing.assert_allclose(lines[0].get_ydata(), series["a/kernel"])
  np.testing.assert_allclose(lines[1].get_ydata(), [0.02, 0.02])    # a's prediction
  assert lines[1].get_color() == lines[0].get_color()
  np.testing.assert_allclose(lines[2].get_ydata(), np.full(10, 1.5))  # b: mean of neurons
  band = ax.collections[0].get_paths()[0].vertices[:, 1]
  np.testing.assert_allclose([band.min(), band.max()], [1.1, 1.9], rtol=1e-9)  # of 1..2
  assert ax.get_yscale() == "log"
  with pytest.raises(ValueError, match="values for"):
    dynamics_plots.plot_over_steps({"a": np.ones(3)}, np.arange(4))
  with pytest.raises(ValueError, match="reduce other axes"):
    dynamics_plots.plot_over_steps({"a": np.ones((3, 2, 2))})


def test_plot_dynamics_and_against_lambda(tmp_path):
  from wdjax import dynamics_plots
  tracked = {"weight_norm": {"k": np.linspace(1, 0.6, 5)},
             "angular_update": {"k": np.full(5, 0.03)}}
  fig = dynamics_plots.plot_dynamics(tracked, np.arange(5) * 100,
                                     predicted={"angular_update": 0.03},
                                     logy=["angular_update"], filename=tmp_path / "d.png")
  assert (tmp_path / "d.png").stat().st_size > 0
  norm_ax, theta_ax = fig.axes
  assert norm_ax.get_yscale() == "linear" and theta_ax.get_yscale() == "log"
  assert theta_ax.get_lines()[-1].get_label() == "predicted"
  np.testing.assert_allclose(theta_ax.get_lines()[-1].get_ydata(), [0.03, 0.03])

  lams = np.array([1e-3, 1e-2, 1e-1])
  pred = lambda lam: dynamics.equilibrium_angle("adamw", 1e-3, lam, b1=0.0)
  seeds = np.stack([pred(lams) * 0.98, pred(lams) * 1.02], axis=1)   # (L, seeds)
  ax = dynamics_plots.plot_against_lambda(lams, {"k": seeds}, predicted=pred,
                                          quantity="angular_update",
                                          filename=tmp_path / "l.png")
  curve, points = ax.get_lines()[:2]
  np.testing.assert_allclose(curve.get_ydata(), pred(curve.get_xdata()), rtol=1e-12)
  assert curve.get_xdata()[0] == 1e-3 and curve.get_xdata()[-1] == pytest.approx(0.1)
  np.testing.assert_allclose(points.get_ydata(), pred(lams), rtol=1e-12)
  assert ax.get_xscale() == "log"
  with pytest.raises(ValueError, match="expected"):
    dynamics_plots.plot_against_lambda(lams, np.ones(4))

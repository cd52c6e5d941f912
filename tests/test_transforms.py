"""Where the penalty enters: equivalences with optax, torch's rules in NumPy, and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wdjax
from wdjax import masks, penalties, prox

RNG = np.random.default_rng(0)
P0 = {"dense": {"kernel": jnp.asarray(RNG.normal(size=(4, 3)), jnp.float32),
                "bias": jnp.asarray(RNG.normal(size=3), jnp.float32)}}
GRADS = [jax.tree.map(lambda x: jnp.asarray(RNG.normal(size=x.shape), jnp.float32), P0)
         for _ in range(100)]


def run(tx, steps=10, params=P0):
  state = tx.init(params)
  for g in GRADS[:steps]:
    u, state = tx.update(g, state, params)
    params = optax.apply_updates(params, u)
  return params


def test_coupled_l2_sgd_equals_decoupled_constant_with_eta_lambda():
  eta, lam = 0.1, 0.3
  a = run(optax.chain(wdjax.coupled(penalties.l2, lam), optax.sgd(eta)))
  b = run(optax.chain(optax.sgd(eta), wdjax.decoupled(eta * lam, scale_by="constant")))
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), a, b)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_l2_momentum_matches_torch_rule(nesterov):
  """torch.optim.SGD(lr, momentum, weight_decay, nesterov), dampening 0, written in NumPy."""
  lr, mu, wd = 0.05, 0.9, 0.1
  got = run(wdjax.sgd_l2(lr, weight_decay=wd, momentum=mu, nesterov=nesterov), steps=20)
  w = {k: np.asarray(v, np.float64) for k, v in P0["dense"].items()}
  buf = {k: None for k in w}
  for g in GRADS[:20]:
    for k in w:
      d = np.asarray(g["dense"][k], np.float64) + (wd * w[k] if k == "kernel" else 0.0)
      buf[k] = d if buf[k] is None else mu * buf[k] + d  # torch: first buf is d itself
      step = d + mu * buf[k] if nesterov else buf[k]
      w[k] = w[k] - lr * step
  for k in w:
    np.testing.assert_allclose(got["dense"][k], w[k], rtol=2e-5, atol=2e-6)


def test_adam_l2_matches_torch_rule():
  lr, wd, b1, b2, eps = 1e-2, 0.1, 0.9, 0.999, 1e-8
  got = run(wdjax.adam_l2(lr, weight_decay=wd, mask=None), steps=30)
  w = {k: np.asarray(v, np.float64) for k, v in P0["dense"].items()}
  m = {k: 0.0 for k in w}
  v = {k: 0.0 for k in w}
  for t, g in enumerate(GRADS[:30], start=1):
    for k in w:
      d = np.asarray(g["dense"][k], np.float64) + wd * w[k]
      m[k] = b1 * m[k] + (1 - b1) * d
      v[k] = b2 * v[k] + (1 - b2) * d * d
      w[k] = w[k] - lr * (m[k] / (1 - b1 ** t)) / (np.sqrt(v[k] / (1 - b2 ** t)) + eps)
  for k in w:
    np.testing.assert_allclose(got["dense"][k], w[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lr", [1e-2, optax.cosine_decay_schedule(1e-2, 100)])
def test_adam_then_decoupled_lr_is_optax_adamw(lr):
  lam = 0.05
  ours = optax.chain(optax.adam(lr), wdjax.decoupled(lam, learning_rate=lr, scale_by="lr", mask=None))
  ref = optax.adamw(lr, weight_decay=lam)
  a, b = run(ours, steps=100), run(ref, steps=100)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6), a, b)


def test_adamw_schedule_form_multiplies_by_schedule_only():
  """Loshchilov & Hutter: u = −η_t·adam − (η_t/η_peak)·λ·w."""
  peak, lam = 1e-2, 0.1
  sched = optax.cosine_decay_schedule(peak, 10)
  got = run(wdjax.adamw(sched, weight_decay=lam, scale_by="schedule", peak_learning_rate=peak, mask=None), steps=10)
  adam = optax.adam(sched)
  params, state = P0, adam.init(P0)
  for t, g in enumerate(GRADS[:10]):
    u, state = adam.update(g, state, params)
    s_t = float(sched(t)) / peak
    params = jax.tree.map(lambda w, ui: w + ui - s_t * lam * w, params, u)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), got, params)


def test_proximal_step_is_prox_of_optimizer_step():
  eta, lam = 0.1, 0.5
  got = run(wdjax.proximal_sgd(eta, prox.l1, lam), steps=1)
  z = jax.tree.map(lambda w, g: w - eta * g, P0, GRADS[0])
  np.testing.assert_allclose(got["dense"]["kernel"], prox.l1(z["dense"]["kernel"], lam, eta), rtol=1e-6)
  np.testing.assert_allclose(got["dense"]["bias"], z["dense"]["bias"], rtol=1e-6)  # not in mask


def test_proximal_adam_matches_numpy_rule():
  lr, lam, b1, b2, eps = 1e-2, 0.3, 0.9, 0.999, 1e-8
  got = run(wdjax.proximal_adam(lr, prox.l1, lam, mask=None), steps=15)
  w = np.asarray(P0["dense"]["kernel"], np.float64)
  m = v = 0.0
  for t, g in enumerate(GRADS[:15], start=1):
    g = np.asarray(g["dense"]["kernel"], np.float64)
    m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    d = np.sqrt(v / (1 - b2 ** t)) + eps
    z = w - lr * (m / (1 - b1 ** t)) / d
    w = np.sign(z) * np.maximum(np.abs(z) - lr * lam / d, 0.0)
  np.testing.assert_allclose(got["dense"]["kernel"], w, rtol=1e-5, atol=1e-6)


def test_subgradient_l1_gives_no_exact_zeros_and_prox_does():
  w0 = {"w": jnp.asarray(RNG.normal(size=200) * 0.05, jnp.float32)}
  zero_grad = {"w": jnp.zeros(200, jnp.float32)}

  def go(tx):
    params, state = w0, tx.init(w0)
    for _ in range(200):
      u, state = tx.update(zero_grad, state, params)
      params = optax.apply_updates(params, u)
    return np.asarray(params["w"])

  sub = go(optax.chain(wdjax.coupled(penalties.l1, 0.1), optax.sgd(0.013)))
  prx = go(wdjax.proximal_sgd(0.013, prox.l1, 0.1))
  assert np.mean(prx == 0.0) == 1.0
  assert np.mean(sub == 0.0) < 0.05  # oscillates around 0 with amplitude ~ηλ
  assert np.max(np.abs(sub)) <= 0.013 * 0.1 + 1e-7


def test_coupled_with_scheduled_strength():
  sched = lambda count: 0.1 * (count + 1).astype(jnp.float32)
  tx = wdjax.coupled(penalties.l2, sched, mask=None)
  params = {"w": jnp.array([1.0, 2.0])}
  state = tx.init(params)
  for k in range(3):
    u, state = tx.update({"w": jnp.zeros(2)}, state, params)
    np.testing.assert_allclose(u["w"], 0.1 * (k + 1) * params["w"], rtol=1e-6)


# ---- Flax: NNX hands Variables to init and arrays to update; Linen is a nested dict -------

def test_nnx_optimizer_decays_kernel_not_bias():
  from flax import nnx
  model = nnx.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0)), nnx.LayerNorm(4, rngs=nnx.Rngs(0)))
  before = nnx.state(model, nnx.Param)
  before = jax.tree.map(lambda x: x, masks.unwrap(before))
  opt = nnx.Optimizer(model, wdjax.adamw(1e-1, weight_decay=0.5), wrt=nnx.Param)
  zero = nnx.grad(lambda m: 0.0 * jnp.sum(m(jnp.ones((1, 3)))))(model)
  opt.update(model, zero)
  after = masks.unwrap(nnx.state(model, nnx.Param))
  text = masks.describe(masks.weights_only, after, print_fn=None)
  assert "decayed: 1 leaves" in text
  np.testing.assert_allclose(after["layers"][0]["kernel"], before["layers"][0]["kernel"] * (1 - 0.05), rtol=1e-6)
  for path in (("layers", 0, "bias"), ("layers", 1, "scale"), ("layers", 1, "bias")):
    a, b = after, before
    for k in path:
      a, b = a[k], b[k]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("tx_fn", [
    lambda: wdjax.proximal_adam(1e-2, prox.l1, 0.1),
    lambda: wdjax.proximal_sgd(1e-2, prox.l1, 0.1),
    lambda: wdjax.sgd_l2(1e-2, weight_decay=0.1, momentum=0.9),
])
def test_nnx_optimizer_runs_every_preset(tx_fn):
  from flax import nnx
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  opt = nnx.Optimizer(model, tx_fn(), wrt=nnx.Param)
  x = jnp.ones((5, 3))
  grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
  opt.update(model, grads)
  assert np.isfinite(np.asarray(model.kernel[...])).all()


def test_linen_params():
  import flax.linen as nn
  model = nn.Sequential([nn.Dense(4), nn.LayerNorm(), nn.Dense(1)])
  variables = model.init(jax.random.key(0), jnp.ones((1, 3)))
  m = masks.weights_only(variables)
  flat = {"/".join(p): b for p, b in zip(masks.leaf_paths(variables), jax.tree.leaves(m))}
  assert flat == {"params/layers_0/bias": False, "params/layers_0/kernel": True,
                  "params/layers_1/bias": False, "params/layers_1/scale": False,
                  "params/layers_2/bias": False, "params/layers_2/kernel": True}
  u, _ = wdjax.adamw(1e-2, weight_decay=0.1).update(jax.tree.map(jnp.zeros_like, variables),
                                        wdjax.adamw(1e-2, weight_decay=0.1).init(variables), variables)
  np.testing.assert_array_equal(u["params"]["layers_1"]["scale"], 0.0)


# ---- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda s: wdjax.coupled(penalties.l2, s),
    lambda s: wdjax.decoupled(s, learning_rate=0.1),
    lambda s: wdjax.proximal(prox.l1, s, learning_rate=0.1),
    lambda s: wdjax.adamw(0.1, weight_decay=s),
    lambda s: wdjax.proximal_adam(0.1, prox.l1, s),
])
@pytest.mark.parametrize("bad,match", [(-1.0, "strength|weight_decay"), (float("nan"), "NaN")])
def test_bad_strength_names_argument(make, bad, match):
  with pytest.raises(ValueError, match=match):
    make(bad)


def test_unknown_scale_by():
  with pytest.raises(ValueError, match="scale_by must be one of"):
    wdjax.decoupled(0.1, learning_rate=0.1, scale_by="pytorch")


def test_schedule_needs_learning_rate_and_peak():
  with pytest.raises(ValueError, match="needs learning_rate"):
    wdjax.decoupled(0.1, scale_by="lr")
  with pytest.raises(ValueError, match="peak_learning_rate"):
    wdjax.decoupled(0.1, learning_rate=optax.constant_schedule(0.1), scale_by="schedule")


def test_mask_that_does_not_fit():
  tx = wdjax.decoupled(0.1, learning_rate=0.1, mask={"dense": {"kernel": True}})
  with pytest.raises(ValueError, match="mask does not fit the params.*dense/bias"):
    tx.init(P0)


def test_mask_that_decays_nothing():
  tx = wdjax.decoupled(0.1, learning_rate=0.1, mask=masks.by_path(include="nonexistent"))
  with pytest.raises(ValueError, match="decays nothing"):
    tx.init(P0)


def test_missing_params():
  tx = wdjax.decoupled(0.1, learning_rate=0.1)
  with pytest.raises(ValueError, match="needs the current params"):
    tx.update(P0, tx.init(P0))


def test_proximal_adam_rejects_non_separable_prox():
  with pytest.raises(ValueError, match="separable"):
    wdjax.proximal_adam(0.1, prox.group_lasso, 0.1)


@pytest.mark.parametrize("make", [
    lambda m: wdjax.coupled(wdjax.penalties.l2, 0.1, mask=m),
    lambda m: wdjax.decoupled(0.1, learning_rate=0.1, mask=m),
    lambda m: wdjax.proximal(wdjax.prox.l1, 0.1, learning_rate=0.1, mask=m),
    lambda m: wdjax.proximal_adam(0.1, wdjax.prox.l1, 0.1, mask=m),
    lambda m: wdjax.cautious(0.1, learning_rate=0.1, mask=m),
], ids=["coupled", "decoupled", "proximal", "proximal_adam", "cautious"])
def test_integer_leaf_that_would_be_decayed_is_refused_at_init(make):
  params = {"w": jnp.ones((3, 3), jnp.int32), "b": jnp.zeros(3)}
  with pytest.raises(TypeError, match=r"\['w'\] has dtype int32.*floating-point.*mask"):
    make(None).init(params)
  make({"w": False, "b": True}).init(params)  # excluded by the mask: fine

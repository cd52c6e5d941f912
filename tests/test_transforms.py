"""Where the penalty enters: equivalences with optax, torch's rules in NumPy, and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wdjax
from wdjax import masks, penalties, prox, transforms

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


# ---- λ per leaf and per group ----------------------------------------------------------

P2 = {"embed": {"embedding": jnp.asarray(RNG.normal(size=(5, 3)), jnp.float32)},
      "dense": {"kernel": jnp.asarray(RNG.normal(size=(3, 2)), jnp.float32),
                "bias": jnp.asarray(RNG.normal(size=2), jnp.float32)}}
G2 = [jax.tree.map(lambda x: jnp.asarray(RNG.normal(size=x.shape), jnp.float32), P2)
      for _ in range(5)]
LAMS = {"embed": {"embedding": 0.01}, "dense": {"kernel": 0.3, "bias": 0.0}}


def test_decoupled_per_leaf_matches_numpy():
  eta = 0.1
  tx = optax.chain(optax.sgd(eta), wdjax.decoupled(LAMS, learning_rate=eta, mask=None))
  got = _run2(tx, steps=5)
  w = jax.tree.map(lambda x: np.asarray(x, np.float64), P2)
  for g in G2:
    w = jax.tree.map(lambda wi, gi, lam: wi - eta * np.asarray(gi) - eta * lam * wi, w, g, LAMS)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, w)


def _run2(tx, steps=3):
  # eager: a compilation per run costs more than these few small steps
  state, p = tx.init(P2), P2
  for g in G2[:steps]:
    u, state = tx.update(g, state, p)
    p = optax.apply_updates(p, u)
  return p


def test_per_group_resolves_first_match_and_default():
  lam = wdjax.per_group({"^embed/": 0.01, "kernel": 0.3}, default=0.0)
  assert lam.resolve(P2) == LAMS
  assert wdjax.per_group([(masks.weights_only, 1.0)]).resolve(P2)["dense"] == {"kernel": 1.0, "bias": 0.0}


PER_LEAF = {  # each takes λ (a value, or one per leaf) and gives a full optimizer
    "coupled": lambda lam: optax.chain(wdjax.coupled("l2", lam, mask=None), optax.sgd(0.1)),
    "decoupled": lambda lam: optax.chain(optax.adam(0.1), wdjax.decoupled(lam, learning_rate=0.1, mask=None)),
    "proximal": lambda lam: optax.chain(optax.sgd(0.1), wdjax.proximal("l1", lam, learning_rate=0.1, mask=None)),
    "cautious": lambda lam: optax.chain(optax.adam(0.1), wdjax.cautious(lam, learning_rate=0.1, mask=None)),
    "corrected": lambda lam: optax.chain(optax.adam(0.1), wdjax.corrected(lam, learning_rate=0.1, mask=None)),
    "adamw": lambda lam: wdjax.adamw(0.1, weight_decay=lam, mask=None),
    "sgd_l2": lambda lam: wdjax.sgd_l2(0.1, momentum=0.9, weight_decay=lam, mask=None),
    "sgdw": lambda lam: wdjax.sgdw(0.1, weight_decay=lam, mask=None),
    "proximal_sgd": lambda lam: wdjax.proximal_sgd(0.1, "l1", lam, mask=None),
    "proximal_adam": lambda lam: wdjax.proximal_adam(0.1, "l1", lam, mask=None),
    "adamc": lambda lam: wdjax.adamc(0.1, weight_decay=lam, mask=None),
    "adams": lambda lam: wdjax.adams(0.1, weight_decay=lam, mask=None),
    "cautious_adamw": lambda lam: wdjax.cautious_adamw(0.1, weight_decay=lam, mask=None),
    "lion": lambda lam: wdjax.lion(0.1, weight_decay=lam, mask=None),
    "muon": lambda lam: wdjax.muon(0.1, weight_decay=lam, mask=None),
    "schedule_free_adamw": lambda lam: wdjax.schedule_free_adamw(0.1, weight_decay=lam, mask=None),
}


@pytest.mark.parametrize("name", sorted(PER_LEAF))
def test_per_leaf_lambda_is_the_scalar_run_leaf_by_leaf(name):
  """With λ = {embedding: 0.01, kernel: 0.3, bias: 0}, each leaf evolves exactly as in
  the run with that λ for every leaf (for AdamS too: its v̄ is over all leaves in both)."""
  def runs():
    scalar = {lam: _run2(PER_LEAF[name](lam)) for lam in (0.01, 0.3, 0.0)}
    return (_run2(PER_LEAF[name](wdjax.per_group({"^embed/": 0.01, "kernel": 0.3}))),
            _run2(PER_LEAF[name](LAMS)), scalar)

  # Newton-Schulz op by op is slow: Muon's five runs are compiled as one program
  got, got_tree, scalar = jax.jit(runs)() if name == "muon" else runs()
  for path, lam in (("embed", "embedding"), ("dense", "kernel"), ("dense", "bias")):
    want = scalar[LAMS[path][lam]][path][lam]
    np.testing.assert_allclose(got[path][lam], want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got_tree[path][lam], want, rtol=1e-6, atol=1e-7)


def test_per_leaf_lambda_is_traced_and_vmapped():
  @jax.jit
  def final(lam_embed, lam_rest):
    return _run2(wdjax.adamw(0.1, weight_decay=wdjax.per_group({"^embed/": lam_embed},
                                                               default=lam_rest), mask=None))
  batched = jax.vmap(final)(jnp.array([0.0, 0.5]), jnp.array([0.2, 0.1]))
  single = final(jnp.float32(0.5), jnp.float32(0.1))
  jax.tree.map(lambda b, s: np.testing.assert_allclose(b[1], s, rtol=1e-6), batched, single)


def test_per_leaf_lambda_that_misses_a_leaf_is_refused():
  tx = wdjax.decoupled({"dense": {"kernel": 0.1}}, learning_rate=0.1, mask=None)
  with pytest.raises(ValueError, match=r"without a value for the params leaves.*embed"):
    tx.update(G2[0], tx.init(P2), P2)
  with pytest.raises(ValueError, match=">= 0"):
    wdjax.decoupled({"w": -1.0}, learning_rate=0.1)


# ---- complex parameters ------------------------------------------------------------------

C0 = {"w": jnp.asarray(RNG.normal(size=(3, 2)) + 1j * RNG.normal(size=(3, 2)), jnp.complex64)}
CG = {"w": jnp.asarray(RNG.normal(size=(3, 2)) + 1j * RNG.normal(size=(3, 2)), jnp.complex64)}


def _one(tx, p=C0, g=CG):
  u, _ = tx.update(g, tx.init(p), p)
  return np.asarray(u["w"])


def test_complex_coupled_decoupled_proximal_cautious_match_numpy():
  w, g, eta, lam = np.asarray(C0["w"]), np.asarray(CG["w"]), 0.1, 0.3
  # coupled l2: g + λw (∇ of (λ/2)|w|² in the real inner product), through SGD
  np.testing.assert_allclose(_one(optax.chain(wdjax.coupled("l2", lam, mask=None), optax.sgd(eta))),
                             -eta * (g + lam * w), rtol=1e-5)
  np.testing.assert_allclose(_one(optax.chain(wdjax.coupled("l1", lam, mask=None), optax.sgd(eta))),
                             -eta * (g + lam * w / np.abs(w)), rtol=1e-5)
  np.testing.assert_allclose(_one(optax.chain(optax.sgd(eta), wdjax.decoupled(lam, learning_rate=eta, mask=None))),
                             -eta * g - eta * lam * w, rtol=1e-5)
  z = w - eta * g
  thr = eta * 2.0
  soft = z * np.maximum(0, 1 - thr / np.abs(z))
  np.testing.assert_allclose(_one(optax.chain(optax.sgd(eta), wdjax.proximal("l1", 2.0, learning_rate=eta, mask=None))),
                             soft - w, rtol=1e-5, atol=1e-6)
  # cautious: decay where Re(conj(u)·w) ≤ 0
  u = -eta * g
  agree = np.real(np.conj(u) * w) <= 0
  assert agree.any() and (~agree).any()
  np.testing.assert_allclose(_one(optax.chain(optax.sgd(eta), wdjax.cautious(lam, learning_rate=eta, mask=None))),
                             u - eta * lam * agree * w, rtol=1e-5)


def test_inject_hyperparams_names_the_fix_for_a_function_mask():
  tx = optax.inject_hyperparams(wdjax.adamw)(learning_rate=0.1, weight_decay=0.1,
                                             mask=masks.by_path(include="kernel"))
  with pytest.raises(ValueError, match=r"inject_hyperparams.*by name.*static_args"):
    tx.init(P0)
  tx = optax.inject_hyperparams(wdjax.adamw, static_args=("mask",))(
      learning_rate=0.1, weight_decay=0.1, mask=masks.by_path(include="kernel"))
  tx.update(GRADS[0], tx.init(P0), P0)
  with pytest.raises(TypeError, match=r"prox.l1 called without a strength.*inject_hyperparams"):
    optax.inject_hyperparams(wdjax.proximal)(prox=prox.l1, strength=0.1, learning_rate=0.1).init(P0)


# ----------------------------------------------------------------- pinned by mutation testing
# (issue 16: each test names the transforms.py mutants it kills)


def test_unknown_mask_name_error_names_every_alternative():
  # kills as_mask 2-5 (the message dropped or altered)
  with pytest.raises(ValueError) as e:
    transforms.as_mask("biases_please")
  assert str(e.value) == (
      f"unknown mask name 'biases_please'; use one of {sorted(transforms.MASK_NAMES)}, a "
      "pytree of bools or a function params -> pytree of bools.")


def test_resolve_mask_passes_allow_empty_through():
  # kills resolve_mask 10 and 13 (allow_empty not passed on): a mask that selects nothing
  # is an error unless allowed
  params = {"w": jnp.ones(2), "b": jnp.ones(1)}
  none = {"w": False, "b": False}
  assert transforms.resolve_mask(none, params, allow_empty=True) == [False, False]
  with pytest.raises(ValueError, match="mask decays nothing"):
    transforms.resolve_mask(none, params)


def test_init_rejects_an_integer_leaf_that_the_mask_decays():
  # caught at init, naming the leaf (check_init 3, the float check run on no params, is
  # equivalent: masks.resolve's _check_state refuses the same leaves first)
  params = {"w": jnp.ones(2), "steps": jnp.zeros(2, jnp.int32)}
  with pytest.raises(TypeError, match=r"params leaf \['steps'\] has dtype int32"):
    wdjax.decoupled(0.1, scale_by="constant", mask=None).init(params)
  wdjax.decoupled(0.1, scale_by="constant", mask={"w": True, "steps": False}).init(params)  # excluded: fine


def test_updates_that_do_not_match_the_params_are_named():
  # kills _map_masked 11-13 (the message dropped or altered)
  tx = wdjax.decoupled(0.1, scale_by="constant", mask=None)
  params = {"w": jnp.ones(2), "b": jnp.ones(1)}
  with pytest.raises(ValueError) as e:
    tx.update({"w": jnp.ones(2)}, tx.init(params), params)
  assert str(e.value) == ("updates have 1 leaves but params 2; pass the params the updates "
                          "belong to.")

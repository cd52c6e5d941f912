"""optax-style conformance for every preset and transform (written for wdjax, not copied).

For every optimizer in `wdjax.optimizers.REGISTRY` and the transforms coupled, decoupled,
proximal, cautious and corrected (each chained with a base optimizer):

- optimizes a parabola and Rosenbrock in float32 and complex64 (the gradient fed to optax
  is conj(jax.grad), optax's convention for complex parameters);
- an explicit `mu_dtype` / `accumulator_dtype` sets the moment dtype, updates keep theirs;
- the state keeps its shapes and dtypes across a step, for f16, bf16, f32, f64, c64, c128;
- `optax.inject_hyperparams(factory)(...)` without `static_args` equals the factory called
  with the same (float32) values, and changing λ in its state equals rebuilding;
- `update(..., **extra)` is accepted; the state survives pickle and flax.serialization;
- `optax.MultiSteps`, `optax.masked`, `optax.multi_transform` and `optax.flatten` wrap it
  and give what the transform gives on its own.

Each case is compiled once per (dtype, target pair); params are tiny.
"""

import functools
import inspect
import pickle

import chex
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wdjax
from wdjax import optimizers, variants

LAM = 1e-4  # small: the penalized optimum is within the tolerance of the plain one


def _with_base(base, make_tx):
  def factory(learning_rate, weight_decay, mask="weights_only"):
    return make_tx(base(learning_rate), learning_rate, weight_decay, mask)
  return factory


TRANSFORMS = {
    "t_coupled": _with_base(optax.adam, lambda b, lr, lam, m: optax.chain(
        wdjax.coupled("l2", lam, mask=m), b)),
    "t_decoupled": _with_base(optax.adam, lambda b, lr, lam, m: optax.chain(
        b, wdjax.decoupled(lam, learning_rate=lr, mask=m))),
    "t_proximal": _with_base(optax.sgd, lambda b, lr, lam, m: optax.chain(
        b, wdjax.proximal("l1", lam, learning_rate=lr, mask=m))),
    "t_cautious": _with_base(optax.adam, lambda b, lr, lam, m: optax.chain(
        b, wdjax.cautious(lam, learning_rate=lr, mask=m))),
    "t_corrected": _with_base(optax.adam, lambda b, lr, lam, m: optax.chain(
        b, wdjax.corrected(lam, learning_rate=lr, mask=m))),
}
# The registered factories take the other arguments with their defaults; `sgd`/`adam` need
# a coupling to take λ.
# a coupling to take λ; a constraint a loose bound (κ on mean(w²) far above the targets')
EXTRA = {"sgd": {"coupling": "decoupled"}, "adam": {"coupling": "decoupled"},
         "adamcpr": {"kappa_init_method": "uniform", "kappa_init_param": 100.0}}
# learning rates (and steps) that solve both targets; plain SGD is slow on Rosenbrock
LR = {"sgd": 1e-3, "sgd_l2": 1e-3, "sgdw": 1e-3, "proximal_sgd": 1e-3, "t_proximal": 1e-3,
      "lion": 3e-3}
STEPS = {name: 40_000 for name in ("sgd", "sgd_l2", "sgdw", "proximal_sgd", "t_proximal")}
# sgdw's default c_t is s_t = 1: λ is the per-step shrink, so it must be ~η·λ of the others
LAMS = {"sgdw": LAM * 1e-3}


def factory(name):
  if name in TRANSFORMS:
    return TRANSFORMS[name]
  return functools.partial(optimizers.REGISTRY[name].factory, **EXTRA.get(name, {}))


CASES = sorted(optimizers.REGISTRY) + sorted(TRANSFORMS)


def takes_lambda(name):
  return "weight_decay" in inspect.signature(factory(name)).parameters


def make(name, lam=None, **kw):
  """The optimizer `name` at its test learning rate and λ (optimizers without a λ, such as
  a constraint, are built without one)."""
  if takes_lambda(name):
    kw["weight_decay"] = LAMS.get(name, LAM) if lam is None else lam
  return factory(name)(learning_rate=LR.get(name, 1e-2), **kw)


def parabola(dtype):
  target = jnp.array([1.0, -1.0, 1.0], dtype) * (1 + 1j if jnp.iscomplexobj(dtype) else 1)
  return (jnp.array([-1.0, 10.0, 1.0], dtype), target,
          lambda w: jnp.sum(wdjax.penalties.abs_sq(w - target)))


def rosenbrock(dtype):
  a = (1 + 1j) if jnp.iscomplexobj(dtype) else 1.0
  sq = wdjax.penalties.abs_sq
  return (jnp.zeros(2, dtype), jnp.array([a, a * a], dtype),
          lambda w: sq(a - w[0]) + 100.0 * sq(w[1] - w[0] ** 2))


def descend(tx, w0, objective, steps):
  def body(_, carry):
    w, state = carry
    g = jnp.conj(jax.grad(objective)(w))  # optax's convention for complex parameters
    u, state = tx.update(g, state, w)
    return optax.apply_updates(w, u), state
  return jax.lax.fori_loop(0, steps, body, (w0, tx.init(w0)))[0]


def _skip_complex(name, dtype):
  if name == "lion" and jnp.iscomplexobj(dtype):
    pytest.skip("Lion's sign update is not defined for complex parameters (optax skips it).")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64], ids=["f32", "c64"])
@pytest.mark.parametrize("name", CASES)
def test_optimizes_parabola_and_rosenbrock(name, dtype):
  _skip_complex(name, dtype)
  tx = make(name, mask=None)
  targets = [parabola(dtype), rosenbrock(dtype)]

  @jax.jit
  def run():
    return [descend(tx, w0, f, STEPS.get(name, 10_000)) for w0, _, f in targets]

  for got, (_, want, _) in zip(run(), targets):
    np.testing.assert_allclose(got, want, rtol=3e-2, atol=3e-2)


def _dtype_options(name):
  params = inspect.signature(factory(name)).parameters
  return [k for k in ("mu_dtype", "accumulator_dtype") if k in params]


@pytest.mark.parametrize("name", [n for n in CASES if _dtype_options(n)])
def test_explicit_mu_dtype(name):
  (key,) = _dtype_options(name)
  p = {"w": jnp.ones((3, 2)), "v": jnp.ones(2)}
  kw = {key: jnp.bfloat16} if key == "mu_dtype" else {key: jnp.bfloat16, "momentum": 0.9}
  tx = make(name, **kw)
  state = tx.init(p)
  u, state = tx.update(jax.tree.map(jnp.ones_like, p), state, p)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(u))
  dtypes = {x.dtype for x in jax.tree.leaves(state) if x.ndim > 0}  # the moments
  assert jnp.dtype(jnp.bfloat16) in dtypes, dtypes


DTYPES = [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64, jnp.complex64, jnp.complex128]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("name", CASES)
def test_state_shapes_and_dtypes_are_stable(name, dtype):
  _skip_complex(name, dtype)
  with jax.enable_x64(dtype in (jnp.float64, jnp.complex128)):
    p = {"w": jnp.full((2, 3), 0.5 + (0.5j if jnp.iscomplexobj(dtype) else 0), dtype),
         "v": jnp.full((3,), -0.5, dtype)}
    tx = make(name)
    state = tx.init(p)
    u, new_state = jax.jit(tx.update)(jax.tree.map(jnp.ones_like, p), state, p)
    chex.assert_trees_all_equal_shapes_and_dtypes(state, new_state)
    chex.assert_trees_all_equal_shapes_and_dtypes(u, p)


def _as_injected(fn, kwargs, dtype=jnp.float32):
  """The factory's arguments as optax.inject_hyperparams passes them: numbers as arrays."""
  bound = inspect.signature(fn).bind(**kwargs)
  bound.apply_defaults()
  return {k: (jnp.asarray(v, dtype) if isinstance(v, float) else
              jnp.asarray(v) if isinstance(v, int) and not isinstance(v, bool) else v)
          for k, v in bound.arguments.items()}


@pytest.mark.parametrize("name", CASES)
def test_inject_hyperparams_without_static_args(name):
  fn = factory(name)
  if isinstance(fn, functools.partial):  # inject_hyperparams inspects the function itself
    fn = optimizers.REGISTRY[name].factory
  key = "weight_decay" if takes_lambda(name) else "learning_rate"
  kwargs = {"learning_rate": LR.get(name, 1e-2), key: 0.3, **EXTRA.get(name, {})}
  tx = optax.inject_hyperparams(fn)(**kwargs)
  p = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "bias": jnp.ones(3)}
  g = jax.tree.map(lambda x: 0.5 - x, p)
  state = tx.init(p)
  assert key in state.hyperparams
  state.hyperparams[key] = jnp.asarray(0.07, jnp.float32)  # change λ, no rebuild
  u, _ = jax.jit(tx.update)(g, state, p)
  ref = fn(**_as_injected(fn, {**kwargs, key: 0.07}))
  u_ref, _ = jax.jit(ref.update)(g, ref.init(p), p)
  chex.assert_trees_all_close(u, u_ref, rtol=1e-6, atol=1e-7)


BARE = {  # the transforms themselves, every option at its default or given by name
    "coupled": (wdjax.coupled, dict(penalty="l1", strength=0.3)),
    "decoupled": (wdjax.decoupled, dict(strength=0.3, learning_rate=0.1)),
    "proximal": (wdjax.proximal, dict(prox="l1", strength=0.3, learning_rate=0.1)),
    "cautious": (wdjax.cautious, dict(strength=0.3, learning_rate=0.1)),
    "corrected": (wdjax.corrected, dict(strength=0.3, learning_rate=0.1)),
}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64], ids=["f32", "c64"])
@pytest.mark.parametrize("name", sorted(BARE))
def test_inject_hyperparams_on_the_bare_transforms(name, dtype):
  """inject_hyperparams casts λ and η to the params' dtype (complex here): they are real."""
  fn, kwargs = BARE[name]
  p = {"w": (jnp.linspace(-1.0, 1.0, 6).reshape(2, 3) * (1 + 1j if dtype == jnp.complex64 else 1)
             ).astype(dtype), "bias": jnp.ones(3, dtype)}
  g = jax.tree.map(lambda x: 0.5 - x, p)
  tx = optax.inject_hyperparams(fn)(**kwargs)
  u, _ = jax.jit(tx.update)(g, tx.init(p), p)
  ref = fn(**_as_injected(fn, kwargs))
  chex.assert_trees_all_close(u, ref.update(g, ref.init(p), p)[0], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", CASES)
def test_extra_args_and_serialization(name):
  p = {"w": jnp.ones((2, 3)), "bias": jnp.ones(3)}
  g = jax.tree.map(lambda x: 0.5 * x, p)
  tx = make(name)
  assert isinstance(tx, optax.GradientTransformationExtraArgs)
  u, state = tx.update(g, tx.init(p), p, value=jnp.float32(1.0), loss_aux=None)
  u2, _ = tx.update(g, tx.init(p), p)
  chex.assert_trees_all_close(u, u2)
  chex.assert_trees_all_equal(pickle.loads(pickle.dumps(state)), state)
  restored = flax.serialization.from_bytes(tx.init(p), flax.serialization.to_bytes(state))
  chex.assert_trees_all_equal(restored, state)
  u3, _ = tx.update(g, restored, p)  # the restored state goes on like the original
  chex.assert_trees_all_close(u3, tx.update(g, state, p)[0])


def _steps(tx, p, grads):
  state, out = tx.init(p), []
  for g in grads:
    u, state = tx.update(g, state, p)
    out.append(u)
  return out


PARAMS = {"a": {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "bias": jnp.ones(3)},
          "b": {"w": jnp.linspace(0.5, 1.5, 4).reshape(2, 2)}}
GRADS = [jax.tree.map(lambda x, k=k: jnp.cos(x + k), PARAMS) for k in range(4)]
# Muon treats a matrix and its flattened vector differently (Newton-Schulz vs Adam)
SHAPE_DEPENDENT = {"muon"}


@pytest.mark.parametrize("name", CASES)
def test_inside_optax_wrappers(name):
  tx = make(name, lam=0.1, mask=None)
  sub = {"a": PARAMS["a"]}
  sub_grads = [{"a": g["a"]} for g in GRADS]
  alone = _steps(tx, sub, sub_grads)

  # masked: the inner transform sees only the leaves under "a"
  masked = _steps(optax.masked(tx, {"a": True, "b": False}), PARAMS, GRADS)
  # multi_transform: "a" through tx, "b" through sgd
  multi = _steps(optax.multi_transform({"x": tx, "y": optax.sgd(0.1)},
                                       {"a": "x", "b": "y"}), PARAMS, GRADS)
  for got_m, got_t, want, g in zip(masked, multi, alone, GRADS):
    chex.assert_trees_all_close(got_m["a"], want["a"], rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_close(got_t["a"], want["a"], rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_equal(got_m["b"], g["b"])  # masked-out updates pass through
    chex.assert_trees_all_close(got_t["b"], jax.tree.map(lambda x: -0.1 * x, g["b"]))

  # MultiSteps(k=2): one step with the mean of two gradients
  ms = optax.MultiSteps(tx, every_k_schedule=2)
  state = ms.init(sub)
  _, state = ms.update(sub_grads[0], state, sub)
  u, state = ms.update(sub_grads[1], state, sub)
  mean = jax.tree.map(lambda x, y: (x + y) / 2, sub_grads[0], sub_grads[1])
  chex.assert_trees_all_close(u, _steps(tx, sub, [mean])[0], rtol=1e-5, atol=1e-7)

  # flatten: the transform sees one vector
  flat = _steps(optax.flatten(tx), sub, sub_grads[:2])
  if name not in SHAPE_DEPENDENT:
    for got, want in zip(flat, alone):
      chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-7)


def test_every_case_is_here():
  assert set(optimizers.REGISTRY) <= set(CASES)
  assert {"t_coupled", "t_decoupled", "t_proximal", "t_cautious", "t_corrected"} <= set(CASES)
  assert variants.cautious is wdjax.cautious


# ---- modern optax optimizers against their native rules ----------------------------------

MP = {"kernel": jnp.linspace(-1.0, 1.0, 12).reshape(4, 3), "bias": jnp.linspace(0.2, 0.8, 3),
      "head": jnp.linspace(1.0, -0.5, 6).reshape(3, 2)}
MG = [jax.tree.map(lambda x, k=k: jnp.sin(3 * x + k), MP) for k in range(6)]


def _trajectory(tx, steps=6):
  @jax.jit
  def run():
    def step(carry, g):
      p, state = carry
      u, state = tx.update(g, state, p)
      return (optax.apply_updates(p, u), state), None
    grads = jax.tree.map(lambda *x: jnp.stack(x), *MG[:steps])
    return jax.lax.scan(step, (MP, tx.init(MP)), grads)[0][0]
  return run()


def test_lion_lr_form_is_optax_lion():
  got = _trajectory(wdjax.lion(1e-2, weight_decay=0.3, mask=None))
  chex.assert_trees_all_close(got, _trajectory(optax.lion(1e-2, weight_decay=0.3)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("scale_by", ["schedule", "constant"])
def test_lion_schedule_and_constant_forms_match_numpy(scale_by):
  """u = (optax.lion's step without decay) − c_t·λ·w, c_t = η_t/η_peak or 1, in NumPy."""
  sched, lam, peak = optax.linear_schedule(1e-2, 2e-3, 6), 0.05, 1e-2
  tx = wdjax.lion(sched, weight_decay=lam, scale_by=scale_by, peak_learning_rate=peak)
  base = optax.lion(sched, weight_decay=0.0)
  p, s, s_ref = MP, tx.init(MP), base.init(MP)
  w = {k: np.asarray(v, np.float64) for k, v in MP.items()}
  for t, g in enumerate(MG):
    u, s = tx.update(g, s, p)
    step, s_ref = base.update(g, s_ref, p)
    c = float(sched(t)) / peak if scale_by == "schedule" else 1.0
    for k in w:  # weights_only: "bias" is not decayed
      want = np.asarray(step[k]) - (c * lam * np.asarray(p[k]) if k != "bias" else 0.0)
      np.testing.assert_allclose(u[k], want, rtol=1e-5, atol=1e-7)
    p = optax.apply_updates(p, u)


def test_muon_matches_native_with_a_learning_rate_per_branch():
  lr, adam_lr, lam, adam_lam = 2e-2, 5e-3, 0.1, 0.4
  got = _trajectory(wdjax.muon(lr, weight_decay=lam, adam_weight_decay=adam_lam,
                               adam_learning_rate=adam_lr, mask=None))
  want = _trajectory(optax.contrib.muon(lr, weight_decay=lam, adam_weight_decay=adam_lam,
                                        adam_learning_rate=adam_lr))
  chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)
  # with one learning rate in c_t the Adam branch would decay by η·λ_a, not η_a·λ_a
  wrong = _trajectory(optax.chain(
      optax.contrib.muon(lr, adam_learning_rate=adam_lr),
      wdjax.decoupled(wdjax.per_group([(wdjax.modern.muon_leaves(), lam)], default=adam_lam),
                      learning_rate=lr, mask=None)))
  assert not np.allclose(wrong["bias"], want["bias"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("warmup", [None, 3])
def test_schedule_free_adamw_matches_native(warmup):
  got = _trajectory(wdjax.schedule_free_adamw(5e-2, warmup, weight_decay=0.2, mask=None))
  want = _trajectory(optax.contrib.schedule_free_adamw(5e-2, warmup, weight_decay=0.2))
  chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)


def test_chain_warns_once_naming_both_decays():
  with pytest.warns(wdjax.modern.DoubleDecayWarning) as record:
    wdjax.chain(optax.lion(1e-3), wdjax.decoupled(0.1, learning_rate=1e-3))
  assert len(record) == 1
  msg = str(record[0].message)
  assert "optax.add_decayed_weights(weight_decay=0.001)" in msg and "wdjax.decoupled" in msg
  with pytest.warns(wdjax.modern.DoubleDecayWarning, match="wdjax.coupled"):
    wdjax.chain(wdjax.coupled("l2", 0.1), optax.adamw(1e-3))  # optax.adamw's default 1e-4
  with pytest.warns(wdjax.modern.DoubleDecayWarning, match="weight_decay=0.1"):
    wdjax.chain(optax.contrib.muon(1e-3, weight_decay=0.1), wdjax.decoupled(0.1, learning_rate=1e-3))
  with pytest.warns(wdjax.modern.DoubleDecayWarning):  # the registry's composer checks, too
    optimizers.compose(optax.lion(1e-3), 0.1, learning_rate=1e-3, coupling="decoupled")


def test_chain_is_silent_when_the_weights_decay_once():
  import warnings
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    wdjax.chain(optax.lion(1e-3, weight_decay=0.0), wdjax.decoupled(0.1, learning_rate=1e-3))
    wdjax.chain(wdjax.lion(1e-3), wdjax.muon(1e-3, weight_decay=0.1))
    wdjax.chain(optax.adam(1e-3), wdjax.decoupled(0.1, learning_rate=1e-3))
    wdjax.chain(optax.lion(1e-3))

"""CPR against a NumPy version of the stated rule, and its bounds on hand-made paths."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wdjax
from wdjax import constrained, optimizers

RNG = np.random.default_rng(5)
P0 = {"dense": {"kernel": RNG.normal(size=(4, 3)), "bias": RNG.normal(size=3)},
      "head": {"kernel": 0.3 * RNG.normal(size=(3, 2))}}
A = {"dense": {"kernel": 2.0 * RNG.normal(size=(4, 3)), "bias": RNG.normal(size=3)},
     "head": {"kernel": 2.0 * RNG.normal(size=(3, 2))}}
DECAYED = [False, True, True]   # leaf order: dense/bias, dense/kernel, head/kernel


def grad(p):
  """Gradient of ½‖w − a‖²: the kernels grow toward a, past their bounds."""
  return jax.tree.map(lambda w, a: w - a, p, A)


def adam_np(g, m, v, k, lr, b1=0.9, b2=0.999, eps=1e-8):
  m = b1 * m + (1 - b1) * g
  v = b2 * v + (1 - b2) * g * g
  return -lr * (m / (1 - b1 ** (k + 1))) / (np.sqrt(v / (1 - b2 ** (k + 1))) + eps), m, v


def cpr_np(method, param, mu, steps, lr=0.1):
  """Adam, then per decayed leaf: λ ← max(0, λ + μ(R(W̃) − κ)), W⁺ = W̃ − 2λW̃."""
  ws = [np.copy(x) for x in jax.tree.leaves(P0)]
  m, v = [np.zeros_like(w) for w in ws], [np.zeros_like(w) for w in ws]
  r0 = [np.mean(w ** 2) for w in ws]
  kappa = [param if method == "uniform" else param * r if method == "dependent" else np.inf
           for r in r0]
  lag, prev_r, prev_d = [0.0] * 3, list(r0), [0.0] * 3
  for k in range(steps):
    t = k + 1
    g = jax.tree.leaves(grad(jax.tree.unflatten(jax.tree.structure(P0), ws)))
    for i in range(3):
      u, m[i], v[i] = adam_np(g[i], m[i], v[i], k, lr)
      wt = ws[i] + u
      if DECAYED[i]:
        r = np.mean(wt ** 2)
        if method == "warm_start":
          kappa[i] = r if t == param else kappa[i]
          active = t > param
        elif method == "inflection_point":
          if t % param == 0:
            d = r - prev_r[i]
            if t >= 2 * param and d < prev_d[i] and np.isinf(kappa[i]):
              kappa[i] = r
            prev_r[i], prev_d[i] = r, d
          active = np.isfinite(kappa[i])
        else:
          active = True
        lag[i] = max(0.0, lag[i] + mu * (r - kappa[i])) if active else 0.0
        wt = wt - 2 * lag[i] * wt
      ws[i] = wt
  return ws, kappa, lag


def run(tx, steps):
  p = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), P0)
  state = tx.init(p)
  step = jax.jit(lambda p, s: tx.update(grad(p), s, p))
  for _ in range(steps):
    u, state = step(p, state)
    p = optax.apply_updates(p, u)
  return [np.asarray(x) for x in jax.tree.leaves(p)], state[1]


@pytest.mark.parametrize("method,param", [("uniform", 1.0), ("dependent", 2.0),
                                          ("warm_start", 3), ("inflection_point", 1),
                                          ("inflection_point", 2)])
def test_adamcpr_matches_numpy(method, param):
  steps, mu = 14, 0.5
  want, kappa, lag = cpr_np(method, param, mu, steps)
  got, state = run(constrained.adamcpr(0.1, kappa_init_method=method, kappa_init_param=param,
                                       lagmul_rate=mu), steps)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)
  np.testing.assert_allclose([state.kappa["dense"]["kernel"], state.kappa["head"]["kernel"]],
                             kappa[1:], rtol=1e-5)
  # λ sums μ·(R − κ) over the steps: the float32 run's R errors (~1e-6) add up in it
  np.testing.assert_allclose([state.lagmul["dense"]["kernel"], state.lagmul["head"]["kernel"]],
                             lag[1:], rtol=0, atol=2e-5)
  # a bound was set (κ-IP: on the dense kernel, whose R turns; the head's keeps growing)
  assert np.isfinite(kappa[1:]).any()
  if (method, param) != ("inflection_point", 2):   # there, set late and not yet binding
    assert max(lag) > 0
  assert isinstance(state.kappa["dense"]["bias"], optax.MaskedNode)


def test_leaf_under_its_bound_is_not_decayed():
  """A loose bound leaves the step of Adam untouched; a tight one only where it binds."""
  loose, _ = run(constrained.adamcpr(0.1, kappa_init_method="uniform", kappa_init_param=1e3), 5)
  adam, _ = run(optax.adam(0.1), 5)
  for a, b in zip(loose, adam):
    np.testing.assert_array_equal(a, b)
  # a bound between the two kernels' R: only the head kernel (R ≈ 0.08 at init, < 0.5,
  # growing slowly) stays free for the first steps, the dense kernel (R ≈ 0.8) is decayed
  # (μ = 1 pushes it under the bound in one step; its λ is back at 0 after the second)
  tight, state = run(constrained.adamcpr(0.1, kappa_init_method="uniform",
                                         kappa_init_param=0.5), 2)
  adam2, _ = run(optax.adam(0.1), 2)
  np.testing.assert_array_equal(tight[2], adam2[2])
  assert float(state.lagmul["head"]["kernel"]) == 0.0
  assert not np.allclose(tight[1], adam2[1])


def test_inflection_point_on_a_given_path():
  """R = 1, 2, 3.5, 4.5, 5: increases 1, 1.5, 1, 0.5, the first decrease at step 3."""
  path = [1.0, 2.0, 3.5, 4.5, 5.0, 5.2]
  tx = constrained.cpr("inflection_point", 1, mask=None)
  w = {"w": jnp.array([path[0] ** 0.5])}
  state = tx.init(w)
  kappas = []
  for r in path[1:]:
    target = jnp.array([r ** 0.5])
    u, state = tx.update({"w": target - w["w"]}, state, w)
    w = {"w": w["w"] + u["w"]}
    kappas.append(float(state.kappa["w"]))
  assert kappas[:2] == [np.inf, np.inf]
  np.testing.assert_allclose(kappas[2:], [4.5] * 3, rtol=1e-6)


def test_warm_start_bound_and_no_decay_before():
  tx = constrained.cpr("warm_start", 2, lagmul_rate=1.0, mask=None)
  w = {"w": jnp.array([1.0, 1.0])}
  state = tx.init(w)
  ups = []
  for _ in range(3):   # every step adds 1: R(W̃) = 4, 9, 16
    u, state = tx.update({"w": jnp.ones(2)}, state, w)
    w = {"w": w["w"] + u["w"]}
    ups.append(np.asarray(u["w"]))
  np.testing.assert_array_equal(ups[0], [1.0, 1.0])
  np.testing.assert_array_equal(ups[1], [1.0, 1.0])   # κ = R(W̃₂) = 9 set, not yet active
  assert float(state.kappa["w"]) == 9.0
  # step 3: W̃ = 4, λ = 16 − 9 = 7, u = 1 − 2·7·4
  np.testing.assert_allclose(ups[2], [1.0 - 56.0] * 2)


def test_arguments_are_checked():
  with pytest.raises(ValueError, match="kappa_init_method"):
    constrained.cpr("init")
  with pytest.raises(ValueError, match="kappa_init_param"):
    constrained.cpr("uniform")
  with pytest.raises(ValueError, match="steps"):
    constrained.cpr("warm_start", 2.5)


def test_registered_and_nameable_from_a_config():
  build = optimizers.get("adamcpr", kappa_init_method="dependent")
  assert build.hparam_names == ("b1", "b2", "eps", "kappa_init_param", "lagmul_rate",
                                "learning_rate")
  tx = build({"learning_rate": 0.1, "kappa_init_param": 2.0, "lagmul_rate": 0.5})
  got, _ = run(tx, 6)
  want, _, _ = cpr_np("dependent", 2.0, 0.5, 6)
  np.testing.assert_allclose(got[2], want[2], rtol=2e-5, atol=2e-5)
  # the generic schema (no experiment kind sweeps a CPR bound yet): the table is checked
  # against adamcpr's arguments and trial-built, so a bad method fails at load time
  table = {"name": "adamcpr", "learning_rate": 1e-2, "kappa_init_method": "dependent",
           "kappa_init_param": 2.0}
  cfg = wdjax.config.from_dict({"name": "cpr_demo", "kind": "any", "description": "Kappa-kI0",
                                "optimizer": table,
                                "sweep": {"learning_rate": {"values": [1e-2, 1e-1]}}})
  assert cfg.optimizer.name == "adamcpr"
  assert cfg.optimizer.options == {"kappa_init_method": "dependent", "kappa_init_param": 2.0}
  with pytest.raises(wdjax.config.ConfigError, match="kappa_init_method"):
    wdjax.config.from_dict({"name": "c", "kind": "any", "description": "d",
                            "optimizer": {**table, "kappa_init_method": "init"}})

"""Decay toward a reference (L2-SP, SPD) against NumPy versions of the stated rules."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wdjax
from wdjax import optimizers, reference

RNG = np.random.default_rng(3)
P0 = {"dense": {"kernel": RNG.normal(size=(4, 3)), "bias": RNG.normal(size=3)},
      "head": {"kernel": RNG.normal(size=(3, 2))}}
A = jax.tree.map(lambda x: RNG.normal(size=x.shape), P0)      # the quadratic's minimizer
NOISE = [jax.tree.map(lambda x: RNG.normal(size=x.shape), P0) for _ in range(12)]
DECAYED = {"dense": {"kernel": True, "bias": False}, "head": {"kernel": True}}


def grad_np(p, k):
  """Gradient of ½‖w − a‖² plus fixed noise: steps overshoot and turn back (SPD's case)."""
  return jax.tree.map(lambda w, a, n: (w - a) + 2.0 * n, p, A, NOISE[k])


def run(tx, steps, p=P0):
  p = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), p)
  state = tx.init(p)
  for k in range(steps):
    g = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), grad_np(p, k))
    u, state = tx.update(g, state, p)
    p = optax.apply_updates(p, u)
  return jax.tree.map(np.asarray, p), state


def adam_np(g, m, v, k, lr, b1=0.9, b2=0.999, eps=1e-8):
  """One step of Adam (optax's bias correction), NumPy."""
  m = b1 * m + (1 - b1) * g
  v = b2 * v + (1 - b2) * g * g
  mh, vh = m / (1 - b1 ** (k + 1)), v / (1 - b2 ** (k + 1))
  return -lr * mh / (np.sqrt(vh) + eps), m, v


def paths(tree):
  return [("/".join(str(getattr(k, "key", k)) for k in path), x)
          for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]]


def close(a, b, tol=2e-5):
  for (pa, x), (_, y) in zip(paths(a), paths(b)):
    np.testing.assert_allclose(x, y, rtol=tol, atol=tol, err_msg=pa)


@pytest.mark.parametrize("scale_by", ["lr", "schedule"])
def test_adamw_sp_matches_numpy(scale_by):
  """u = Adam step − c_t·λ·(w − w₀), w₀ the params at init, biases not decayed."""
  lr = optax.linear_schedule(0.05, 0.01, 6)
  lam, steps = 0.7, 6
  got, state = run(reference.adamw_sp(lr, weight_decay=lam, scale_by=scale_by,
                                      peak_learning_rate=0.05), steps)
  p = jax.tree.map(np.copy, P0)
  m, v = jax.tree.map(np.zeros_like, P0), jax.tree.map(np.zeros_like, P0)
  for k in range(steps):
    g = grad_np(p, k)
    eta = float(lr(k))
    c = eta if scale_by == "lr" else eta / 0.05
    flat = []
    for (name, w), gi, mi, vi, w0, dec in zip(paths(p), jax.tree.leaves(g), jax.tree.leaves(m),
                                            jax.tree.leaves(v), jax.tree.leaves(P0),
                                            jax.tree.leaves(DECAYED)):
      u, mi, vi = adam_np(gi, mi, vi, k, eta)
      if dec:
        u = u - c * lam * (w - w0)
      flat.append((w + u, mi, vi))
    treedef = jax.tree.structure(P0)
    p = jax.tree.unflatten(treedef, [f[0] for f in flat])
    m = jax.tree.unflatten(treedef, [f[1] for f in flat])
    v = jax.tree.unflatten(treedef, [f[2] for f in flat])
  close(got, p)
  # w₀ stays the params at init, for the decayed leaves only
  w0 = state[1].reference
  np.testing.assert_allclose(w0["head"]["kernel"], P0["head"]["kernel"], rtol=1e-6)
  assert isinstance(w0["dense"]["bias"], optax.MaskedNode)


def test_toward_zero_reference_is_decoupled():
  """With w₀ = 0, `toward_reference` is `wdjax.decoupled` (same λ, η, c_t)."""
  zeros = jax.tree.map(np.zeros_like, P0)
  a, _ = run(optax.chain(optax.adam(0.05),
                         reference.toward_reference(0.3, learning_rate=0.05, reference=zeros)), 4)
  b, _ = run(optax.chain(optax.adam(0.05), wdjax.decoupled(0.3, learning_rate=0.05)), 4)
  close(a, b, 1e-6)


def test_given_reference_pulls_toward_it():
  """A long run with a large λ ends between the minimizer a and the given w₀ on decayed
  leaves: the fixed point of gradient descent on ½‖w − a‖² + (λ'/2)‖w − w₀‖² (SGD,
  c_t = η: λ' = λ) is (a + λ'w₀)/(1 + λ')."""
  w0 = jax.tree.map(lambda x: np.full(x.shape, 3.0), P0)
  tx = optax.chain(optax.sgd(0.1),
                   reference.toward_reference(1.0, learning_rate=0.1, reference=w0))
  p = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), P0)
  state = tx.init(p)
  step = jax.jit(lambda p, s: tx.update(jax.tree.map(lambda w, a: w - a, p, A), s, p))
  for _ in range(300):
    u, state = step(p, state)
    p = optax.apply_updates(p, u)
  np.testing.assert_allclose(p["head"]["kernel"], (A["head"]["kernel"] + 3.0) / 2, atol=1e-4)
  np.testing.assert_allclose(p["dense"]["bias"], A["dense"]["bias"], atol=1e-4)


def spd_np(lam, steps, lr, w_ref, inner="adam"):
  """The paper's Algorithm (Adam + SPD), per leaf, NumPy; also counts decayed steps."""
  p = jax.tree.map(np.copy, P0)
  leaves_ref = jax.tree.leaves(w_ref)
  m = [np.zeros_like(x) for x in jax.tree.leaves(P0)]
  v = [np.zeros_like(x) for x in jax.tree.leaves(P0)]
  decayed = kept = 0
  for k in range(steps):
    g = jax.tree.leaves(grad_np(p, k))
    new = []
    for i, (w, gi, w0, dec) in enumerate(zip(jax.tree.leaves(p), g, leaves_ref,
                                             jax.tree.leaves(DECAYED))):
      if inner == "adam":
        u, m[i], v[i] = adam_np(gi, m[i], v[i], k, lr)
      else:
        u = -lr * gi
      wt = w + u
      if dec:
        cond = -np.sum(gi * (w - w0))
        if cond < 0:
          cur, prev = np.linalg.norm(wt - w0), np.linalg.norm(w - w0)
          r = min(max((cur - prev) / cur, 0.0), 1.0) if cur > 0 else 0.0
          wt = wt - lam * r * (wt - w0)
          decayed += r > 0
        else:
          kept += 1
      new.append(wt)
    p = jax.tree.unflatten(jax.tree.structure(P0), new)
  return p, decayed, kept


@pytest.mark.parametrize("inner", ["adam", "sgd"])
def test_adam_spd_matches_numpy(inner):
  lam, steps, lr = 0.6, 12, 0.3
  want, decayed, kept = spd_np(lam, steps, lr, P0, inner)
  assert decayed > 0 and kept > 0   # both branches of the rule are exercised
  tx = (reference.adam_spd(lr, weight_decay=lam) if inner == "adam" else
        reference.selective_projection(optax.sgd(lr), lam))
  got, _ = run(tx, steps)
  close(got, want, 5e-5)


def test_spd_toward_zero_reference():
  """The PEFT form: w₀ = 0 given as a pytree."""
  zeros = jax.tree.map(np.zeros_like, P0)
  want, decayed, _ = spd_np(0.5, 10, 0.3, zeros)
  assert decayed > 0
  got, _ = run(reference.adam_spd(0.3, weight_decay=0.5, reference=zeros), 10)
  close(got, want, 5e-5)


def test_spd_zero_strength_is_inner():
  a, _ = run(reference.adam_spd(0.3, weight_decay=0.0), 5)
  b, _ = run(optax.adam(0.3), 5)
  close(a, b, 1e-6)


def test_reference_structure_is_checked():
  with pytest.raises(ValueError, match="structure"):
    reference.adamw_sp(0.1, reference={"head": {"kernel": np.zeros((3, 2))}}).init(
        jax.tree.map(jnp.asarray, P0))
  with pytest.raises(ValueError, match="shape"):
    bad = jax.tree.map(lambda x: np.zeros(x.shape + (1,)), P0)
    reference.adam_spd(0.1, reference=bad).init(jax.tree.map(jnp.asarray, P0))


def test_registered_and_nameable_from_a_config():
  assert optimizers.get("adamw_sp").hparam_names == ("b1", "b2", "eps", "learning_rate",
                                                     "weight_decay")
  for name in ("adamw_sp", "adam_spd"):
    cfg = wdjax.experiments.from_dict({
        "name": f"{name}_demo", "kind": "d2l_weight_decay", "description": name,
        "optimizer": {"name": name, "learning_rate": 1e-2},
        "sweep": {"weight_decay": {"values": [0, 0.5]}}})
    assert cfg.optimizer.name == name
  cfg = wdjax.experiments.from_dict({
      "name": "sp_demo", "kind": "d2l_weight_decay", "description": "L2-SP, c_t = s_t",
      "optimizer": {"name": "adamw_sp", "learning_rate": 1e-2, "scale_by": "schedule"},
      "sweep": {"weight_decay": {"values": [0, 3]}}})
  assert cfg.optimizer.options == {"scale_by": "schedule"}

"""Each stack's canonical training loop with a wdjax preset: Flax NNX (`nnx.Optimizer`),
Flax Linen (`TrainState` with BatchNorm), Equinox (`eqx.filter` / `eqx.filter_grad`) and
optax's wrappers (`MultiSteps`, `masked`).

The check that shows which leaves were decayed: a first step with a zero gradient. The
optimizer's own update is then exactly 0 (Adam: m = v = 0; SGD: an empty buffer), so the
step changes exactly the decayed leaves, each by the closed-form factor of its preset
(adamw: 1 − ηλ; sgd_l2 with Nesterov momentum μ: 1 − η(1 + μ)λ), and nothing else:
biases, norm scales, PReLU slopes, excluded embeddings, batch statistics, RNG state.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wdjax
from wdjax import masks

LR, LAM = 0.1, 0.5  # large, so the decay factor 1 - ηλ = 0.95 is far from rounding


def snapshot(tree: Any) -> dict[str, np.ndarray]:
  """Every leaf of `tree` by its '/'-joined path, copied to NumPy (PRNG keys as key data)."""
  leaves = jax.tree.leaves(masks.unwrap(tree))
  return {"/".join(p): np.array(jax.random.key_data(x) if jax.dtypes.issubdtype(
      x.dtype, jax.dtypes.prng_key) else x) for p, x in zip(masks.leaf_paths(tree), leaves)}


def assert_decayed_exactly(before: dict, after: dict, expected: set[str], factor: float):
  assert before.keys() == after.keys()
  changed = {p for p in before if not np.array_equal(before[p], after[p])}
  assert changed == expected, f"changed {sorted(changed)}, expected {sorted(expected)}"
  for p in expected:
    np.testing.assert_allclose(after[p], before[p] * factor, rtol=2e-6)


TOKENS = jnp.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 1, 2]])
LABELS = jnp.array([0, 1, 2, 1])


# ---- Flax NNX: nnx.Optimizer(model, tx, wrt=nnx.Param) -------------------------------------

def nnx_model():
  from flax import nnx

  class Net(nnx.Module):
    def __init__(self, rngs):
      self.embed = nnx.Embed(10, 4, rngs=rngs)
      self.dense = nnx.Linear(4, 8, rngs=rngs)
      self.bn = nnx.BatchNorm(8, rngs=rngs)
      self.norm = nnx.LayerNorm(8, rngs=rngs)
      self.rms = nnx.RMSNorm(8, rngs=rngs)
      self.drop = nnx.Dropout(0.5, rngs=rngs)
      self.head = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, tokens):
      x = self.embed(tokens).mean(1)
      x = self.rms(self.norm(self.bn(self.dense(x))))
      return self.head(self.drop(nnx.relu(x)))

  return Net(nnx.Rngs(0, dropout=1))


def test_nnx_optimizer_decays_exactly_the_weights():
  from flax import nnx
  model = nnx_model()
  optimizer = nnx.Optimizer(model, wdjax.adamw(LR, weight_decay=LAM), wrt=nnx.Param)

  @nnx.jit
  def train_step(model, optimizer, x, y, scale):
    def loss_fn(model):
      logits = model(x)
      return scale * optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  model.eval()  # the zero-gradient step: no batch-stat update, no dropout draw
  before = snapshot(nnx.state(model))
  assert {"bn/mean", "bn/var", "drop/rngs/key", "drop/rngs/count"} <= before.keys()
  train_step(model, optimizer, TOKENS, LABELS, 0.0)
  assert_decayed_exactly(before, snapshot(nnx.state(model)),
                         {"embed/embedding", "dense/kernel", "head/kernel"}, 1 - LR * LAM)

  model.train()  # then the tutorial's loop trains (batch stats and RNG state move with it)
  losses = [float(train_step(model, optimizer, TOKENS, LABELS, 1.0)) for _ in range(5)]
  assert losses[-1] < losses[0]


def test_nnx_optimizer_on_every_variable_names_wrt_param():
  from flax import nnx
  with pytest.raises(ValueError, match=r"rng state.*nnx\.Optimizer\(model, tx, wrt=nnx\.Param\)"):
    nnx.Optimizer(nnx_model(), wdjax.adamw(LR, weight_decay=LAM), wrt=nnx.Variable)


# ---- Flax Linen: TrainState with BatchNorm (the ImageNet example's shape) -----------------

def test_linen_train_state_with_batchnorm():
  import flax.linen as nn
  from flax.training import train_state

  class Net(nn.Module):
    @nn.compact
    def __call__(self, tokens, train: bool):
      x = nn.Embed(10, 4)(tokens).mean(1)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(nn.Dense(8)(x))
      return nn.Dense(3)(nn.relu(nn.LayerNorm()(x)))

  class TrainState(train_state.TrainState):
    batch_stats: Any

  model = Net()
  variables = model.init(jax.random.key(0), TOKENS, train=False)
  mu = 0.9
  state = TrainState.create(
      apply_fn=model.apply, params=variables["params"], batch_stats=variables["batch_stats"],
      tx=wdjax.sgd_l2(LR, momentum=mu, nesterov=True, weight_decay=LAM))

  @jax.jit(static_argnames="train")
  def train_step(state, x, y, scale, train=True):
    def loss_fn(params):
      logits, new_state = state.apply_fn(
          {"params": params, "batch_stats": state.batch_stats}, x, train=train,
          mutable=["batch_stats"])
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
      return scale * loss, (loss, new_state)
    grads, (loss, new_state) = jax.grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads, batch_stats=new_state["batch_stats"])
    return state, loss

  before = snapshot({"params": state.params, "batch_stats": state.batch_stats})
  new, _ = train_step(state, TOKENS, LABELS, 0.0, train=False)
  after = snapshot({"params": new.params, "batch_stats": new.batch_stats})
  # Nesterov's first step is (1 + μ)·g, and coupled L2 makes g = λw on the decayed leaves.
  assert_decayed_exactly(before, after, {"params/Embed_0/embedding", "params/Dense_0/kernel",
                                         "params/Dense_1/kernel"}, 1 - LR * (1 + mu) * LAM)

  losses = []
  for _ in range(5):
    state, loss = train_step(state, TOKENS, LABELS, 1.0)
    losses.append(float(loss))
  assert losses[-1] < losses[0]
  # What the mask would do with the whole variables dict: batch stats are never decayed.
  kinds = dict(zip(["/".join(p) for p in masks.leaf_paths(variables)], masks.kinds(variables)))
  assert kinds["batch_stats/BatchNorm_0/mean"] == kinds["batch_stats/BatchNorm_0/var"] == "batch stats"
  assert kinds["params/BatchNorm_0/scale"] == kinds["params/LayerNorm_0/scale"] == "norm scale"


# ---- Equinox: eqx.filter / eqx.filter_value_and_grad / eqx.apply_updates ------------------

def eqx_model():
  eqx = pytest.importorskip("equinox")

  class Net(eqx.Module):
    embed: Any
    layers: list

    def __init__(self, key):
      k1, k2, k3 = jax.random.split(key, 3)
      self.embed = eqx.nn.Embedding(10, 4, key=k1)
      self.layers = [eqx.nn.Linear(4, 8, key=k2), eqx.nn.LayerNorm(8), eqx.nn.PReLU(),
                     eqx.nn.GroupNorm(2, 8), eqx.nn.RMSNorm(8), eqx.nn.Linear(8, 3, key=k3)]

    def __call__(self, tokens):  # one example, as Equinox layers take it
      x = jax.vmap(self.embed)(tokens).mean(0)
      for layer in self.layers:
        x = layer(x)
      return x

  return eqx, Net(jax.random.key(0))


def test_equinox_loop_decays_exactly_the_weights_embeddings_excluded():
  eqx, model = eqx_model()
  optim = wdjax.adamw(LR, weight_decay=LAM, mask=masks.weights_only(embeddings=False))
  opt_state = optim.init(eqx.filter(model, eqx.is_array))

  def loss_fn(model, x, y, scale):
    logits = jax.vmap(model)(x)
    return scale * optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @eqx.filter_jit
  def make_step(model, opt_state, x, y, scale):
    loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y, scale)
    updates, opt_state = optim.update(grads, opt_state, eqx.filter(model, eqx.is_array))
    return eqx.apply_updates(model, updates), opt_state, loss

  before = snapshot(eqx.filter(model, eqx.is_array))
  # Equinox names norm scales `weight` and keeps layers in a list: only types tell.
  assert {"layers/1/weight", "layers/3/weight", "layers/4/weight", "layers/2/negative_slope"} <= before.keys()
  # filter_jit traces arrays and holds Python floats static: one compile for both scales.
  zero, one = jnp.float32(0.0), jnp.float32(1.0)
  new, _, _ = make_step(model, opt_state, TOKENS, LABELS, zero)
  assert_decayed_exactly(before, snapshot(eqx.filter(new, eqx.is_array)),
                         {"layers/0/weight", "layers/5/weight"}, 1 - LR * LAM)

  losses = []
  for _ in range(5):
    model, opt_state, loss = make_step(model, opt_state, TOKENS, LABELS, one)
    losses.append(float(loss))
  assert losses[-1] < losses[0]


def test_equinox_int_buffer_names_is_inexact_array():
  eqx, _ = eqx_model()

  class WithBuffer(eqx.Module):
    linear: Any
    steps: jax.Array

    def __init__(self):
      self.linear = eqx.nn.Linear(3, 2, key=jax.random.key(0))
      self.steps = jnp.zeros((), jnp.int32)

  model = WithBuffer()
  tx = wdjax.adamw(LR, weight_decay=LAM)
  with pytest.raises(TypeError, match=r"\.steps.*int32.*eqx\.filter\(model, eqx\.is_inexact_array\)"):
    tx.init(eqx.filter(model, eqx.is_array))
  params = eqx.filter(model, eqx.is_inexact_array)  # the fix the error names
  grads = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates.linear.weight, -LR * LAM * model.linear.weight, rtol=1e-6)
  np.testing.assert_array_equal(updates.linear.bias, 0.0)


# ---- plain optax: MultiSteps and masked ---------------------------------------------------

PARAMS = {"enc": {"kernel": jnp.full((3, 4), 2.0), "bias": jnp.ones(4)},
          "LayerNorm_0": {"scale": jnp.ones(4), "bias": jnp.zeros(4)},
          "head": {"kernel": jnp.full((4, 2), -1.0), "bias": jnp.ones(2)}}
ZERO = jax.tree.map(jnp.zeros_like, PARAMS)


def run(tx, steps):
  params, state = PARAMS, tx.init(PARAMS)
  for _ in range(steps):
    updates, state = tx.update(ZERO, state, params)
    params = optax.apply_updates(params, updates)
  return snapshot(params)


def test_multisteps_applies_the_decay_once_per_k_steps():
  tx = optax.MultiSteps(wdjax.adamw(LR, weight_decay=LAM), every_k_schedule=2)
  before = snapshot(PARAMS)
  assert_decayed_exactly(before, run(tx, 1), set(), 1.0)  # accumulating: no update yet
  assert_decayed_exactly(before, run(tx, 2), {"enc/kernel", "head/kernel"}, 1 - LR * LAM)


def test_masked_decays_only_inside_its_subtree():
  tx = optax.masked(wdjax.adamw(LR, weight_decay=LAM),
                    {"enc": True, "LayerNorm_0": True, "head": False})
  assert_decayed_exactly(snapshot(PARAMS), run(tx, 1), {"enc/kernel"}, 1 - LR * LAM)

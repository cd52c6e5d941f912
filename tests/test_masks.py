"""Mask builders, describe, and their errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wdjax
from wdjax import masks

PARAMS = {
    "embed": {"embedding": jnp.ones((10, 4))},
    "block": {"dense": {"kernel": jnp.ones((4, 4)), "bias": jnp.zeros(4)},
              "LayerNorm_0": {"scale": jnp.ones(4), "bias": jnp.zeros(4)},
              "ln_f": {"weight": jnp.ones(4)}},
    "w": jnp.ones(4),
    "b": jnp.zeros(()),
}


def flat(mask_tree):
  return dict(zip(["/".join(p) for p in masks.leaf_paths(PARAMS)],
                  [bool(b) for b in masks.resolve(mask_tree, PARAMS, allow_empty=True)]))


def test_weights_only_default_rule():
  assert flat(masks.weights_only) == {
      "b": False, "block/LayerNorm_0/bias": False, "block/LayerNorm_0/scale": False,
      "block/dense/bias": False, "block/dense/kernel": True, "block/ln_f/weight": False,
      "embed/embedding": True, "w": True}


def test_by_path_include_exclude():
  m = masks.by_path(include=["kernel", "embedding"], exclude="^embed/")
  assert [k for k, v in flat(m).items() if v] == ["block/dense/kernel"]


def test_by_ndim():
  assert [k for k, v in flat(masks.by_ndim(2)).items() if v] == ["block/dense/kernel", "embed/embedding"]


def test_everything():
  assert all(flat(masks.everything).values())


def test_describe_counts():
  text = masks.describe(masks.weights_only, PARAMS, print_fn=None)
  assert "decayed: 3 leaves, 60 parameters" in text
  assert "not decayed: 5 leaves, 17 parameters" in text
  assert "decayed  block/dense/kernel  (4, 4)  16" in text


def test_describe_prints(capsys):
  masks.describe(None, {"w": jnp.ones(2)})
  assert "decayed  w  (2,)  2" in capsys.readouterr().out


def test_resolve_rejects_wrong_structure():
  with pytest.raises(ValueError, match="params leaves without a mask entry"):
    masks.resolve({"w": True}, PARAMS)


def test_resolve_rejects_non_bool_leaves():
  with pytest.raises(TypeError, match="Python bools"):
    masks.resolve({"w": 1.0}, {"w": jnp.ones(2)})


def test_resolve_rejects_empty():
  with pytest.raises(ValueError, match="decays nothing"):
    masks.resolve(masks.by_path(include="nope"), PARAMS)


# ---- what each leaf is: state, module types, names ---------------------------------------

def kinds_by_path(params):
  return dict(zip(["/".join(p) for p in masks.leaf_paths(params)], masks.kinds(params)))


def test_kinds_by_name_on_plain_and_linen_params():
  params = {"params": {"Embed_0": {"embedding": jnp.ones((5, 2))},
                       "norm_proj": {"kernel": jnp.ones((2, 2))},
                       "PReLU_0": {"negative_slope": jnp.ones(())},
                       "rnn": {"bias_ih_l0": jnp.ones(2)},
                       "BatchNorm_0": {"scale": jnp.ones(2), "bias": jnp.zeros(2)}},
            "batch_stats": {"BatchNorm_0": {"mean": jnp.zeros(2), "var": jnp.ones(2)}},
            "step": jnp.zeros((), jnp.int32), "key": jax.random.key(0)}
  assert kinds_by_path(params) == {
      "batch_stats/BatchNorm_0/mean": "batch stats", "batch_stats/BatchNorm_0/var": "batch stats",
      "key": "rng state", "params/BatchNorm_0/bias": "bias",
      "params/BatchNorm_0/scale": "norm scale", "params/Embed_0/embedding": "embedding",
      "params/PReLU_0/negative_slope": "prelu slope", "params/rnn/bias_ih_l0": "bias",
      "params/norm_proj/kernel": "weight",  # no norm layer has a kernel
      "step": "not float"}


def test_embeddings_can_be_excluded():
  m = masks.weights_only(embeddings=False)
  assert [k for k, v in flat(m).items() if v] == ["block/dense/kernel", "w"]
  assert flat(masks.weights_only)["embed/embedding"]


def test_equinox_module_types_decide_not_names():
  eqx = pytest.importorskip("equinox")
  k = jax.random.key(0)

  class Net(eqx.Module):
    layers: list
    norm_proj: eqx.nn.Linear  # named like a norm, typed as a Linear
    embed: eqx.nn.Embedding

    def __init__(self):
      self.layers = [eqx.nn.Linear(2, 3, key=k), eqx.nn.LayerNorm(3), eqx.nn.PReLU(),
                     eqx.nn.GroupNorm(1, 3), eqx.nn.RMSNorm(3)]
      self.norm_proj = eqx.nn.Linear(3, 3, key=k)
      self.embed = eqx.nn.Embedding(4, 3, key=k)

  params = eqx.filter(Net(), eqx.is_array)
  decayed = [p for p, b in zip(masks.leaf_paths(params), jax.tree.leaves(masks.weights_only(params))) if b]
  assert ["/".join(p) for p in decayed] == ["layers/0/weight", "norm_proj/weight", "embed/weight"]
  kinds = kinds_by_path(params)
  assert [kinds[f"layers/{i}/weight"] for i in (1, 3, 4)] == ["norm scale"] * 3
  assert kinds["layers/2/negative_slope"] == "prelu slope"
  assert kinds["embed/weight"] == "embedding"
  # The mask is a pytree of the model's own type, as optax.masked and tx.update expect it.
  assert type(masks.weights_only(params)) is Net


def test_nnx_whole_model_and_state_agree_and_name_the_state():
  from flax import nnx

  class Net(nnx.Module):
    def __init__(self, rngs):
      self.dense = nnx.Linear(2, 3, rngs=rngs)
      self.bn = nnx.BatchNorm(3, rngs=rngs)
      self.rms = nnx.RMSNorm(3, rngs=rngs)
      self.embed = nnx.Embed(4, 3, rngs=rngs)
      self.drop = nnx.Dropout(0.5, rngs=rngs)

  model = Net(nnx.Rngs(0))
  want = {"bn/bias": "bias", "bn/mean": "batch stats", "bn/scale": "norm scale",
          "bn/var": "batch stats", "dense/bias": "bias", "dense/kernel": "weight",
          "drop/rngs/count": "rng state", "drop/rngs/key": "rng state",
          "embed/embedding": "embedding", "rms/scale": "norm scale"}
  for tree in (model, nnx.state(model), nnx.to_pure_dict(nnx.state(model))):
    assert kinds_by_path(tree) == want
  text = masks.describe(masks.weights_only, model, print_fn=None)
  assert "-------  drop/rngs/key  ()  1  rng state" in text
  assert "-------  bn/mean  (3,)  3  batch stats" in text
  assert "(bias: 2, norm scale: 2, batch stats: 2, rng state: 2)" in text
  with pytest.raises(ValueError, match=r"drop/rngs/count \(rng state\).*wrt=nnx\.Param"):
    masks.resolve(masks.weights_only, nnx.state(model))
  masks.resolve(masks.weights_only, nnx.state(model, nnx.Param))  # parameters only: fine


def test_rng_key_and_decayed_int_leaf_are_refused_outside_describe():
  with pytest.raises(ValueError, match=r"key \(rng state\).*Keep it out"):
    masks.resolve(masks.weights_only, {"w": jnp.ones((2, 2)), "key": jax.random.key(0)})
  with pytest.raises(TypeError, match=r"\['n'\] has dtype int32.*floating-point.*mask"):
    masks.resolve(None, {"w": jnp.ones(2), "n": jnp.zeros(2, jnp.int32)})
  assert masks.resolve(masks.weights_only, {"w": jnp.ones(2), "n": jnp.zeros(2, jnp.int32)}) == [False, True]
  assert "rng state" in masks.describe(None, {"key": jax.random.key(0)}, print_fn=None)


# ---- optax.flatten: one vector has no structure ------------------------------------------

@pytest.mark.parametrize("mask", [masks.weights_only, masks.by_ndim(2), masks.weights_only(embeddings=False)])
def test_structured_mask_inside_optax_flatten_is_an_error(mask):
  tx = optax.flatten(wdjax.adamw(0.1, weight_decay=0.5, mask=mask))
  with pytest.raises(ValueError, match=r"needs the params' structure.*one flat vector of 12.*optax\.flatten"):
    tx.init({"kernel": jnp.ones((2, 4)), "bias": jnp.ones(4)})


def test_bool_tree_inside_optax_flatten_names_flatten():
  tx = optax.flatten(wdjax.adamw(0.1, weight_decay=0.5, mask={"kernel": True, "bias": False}))
  with pytest.raises(ValueError, match=r"does not fit.*optax\.flatten"):
    tx.init({"kernel": jnp.ones((2, 4)), "bias": jnp.ones(4)})


def test_mask_none_inside_optax_flatten_equals_optax_adamw():
  params = {"kernel": jnp.arange(8.0).reshape(2, 4), "bias": jnp.ones(4)}
  grads = {"kernel": jnp.full((2, 4), 0.3), "bias": jnp.full(4, -0.2)}
  got, ref = (optax.flatten(t) for t in (wdjax.adamw(0.1, weight_decay=0.5, mask=None),
                                        optax.adamw(0.1, weight_decay=0.5)))
  u, _ = got.update(grads, got.init(params), params)
  r, _ = ref.update(grads, ref.init(params), params)
  for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(r)):
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_a_bare_vector_outside_flatten_is_a_weight():
  assert masks.resolve(masks.weights_only, jnp.ones(3)) == [True]


def test_import_wdjax_imports_neither_flax_nor_equinox():
  import subprocess
  import sys
  code = "import sys, wdjax; print(sorted(m for m in ('flax', 'equinox') if m in sys.modules))"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "[]"

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


# ---- mutation survivors (tools/mutation) ---------------------------------------------------
# Each test kills mutants of wdjax/masks.py and wdjax/leaf_kinds.py that survived the tests
# above (named in its docstring).

_NNX_FIX = ("With Flax NNX, optimize the parameters only: nnx.Optimizer(model, tx, "
            "wrt=nnx.Param), with nnx.grad's default (Param) gradients.")
_EQX_FIX = ("In an Equinox model, give the optimizer only the floating-point arrays: "
            "tx.init(eqx.filter(model, eqx.is_inexact_array)), and the same filter for the "
            "params passed to tx.update.")
_PLAIN_FIX = "Keep it out of the params given to the optimizer, or cast it to a float dtype."


def test_state_errors_name_the_fix_for_each_stack_whole():
  """The refusal of non-parameter state ends with the fix for the stack the params come
  from, whole: NNX for an nnx.State (of Variables or of plain arrays), a pure dict with
  `rngs/` and a dict of NNX Variables;
  Equinox for an integer buffer of an Equinox model, also inside a plain dict; the plain
  fix otherwise, with Equinox imported (its checks must not trip on leaves without owner).
  Mutmut: every text of `_stack_fix` and `_check_state`, equinox not looked up, `or` →
  `and` in the Equinox and NNX conditions, `_is_variable(None)`, the "rngs" name, the owner
  tests, `_stack_fix(None, ...)`."""
  eqx = pytest.importorskip("equinox")
  from flax import nnx

  class Net(nnx.Module):
    def __init__(self, rngs):
      self.dense = nnx.Linear(2, 3, rngs=rngs)
      self.drop = nnx.Dropout(0.5, rngs=rngs)

  model = Net(nnx.Rngs(0))
  rngs = ("non-parameter state reached a wdjax transform: drop/rngs/count (rng state), "
          "drop/rngs/key (rng state). It has no gradient and must not be decayed. ")
  variables = {"dense": {"kernel": nnx.Param(jnp.ones((2, 2)))},
               "bn": {"mean": nnx.BatchStat(jnp.zeros(2))}}
  for params, want in (
      (nnx.state(model), rngs + _NNX_FIX),
      (nnx.to_pure_dict(nnx.state(model)), rngs + _NNX_FIX),
      (variables, "non-parameter state reached a wdjax transform: bn/mean (batch stats). "
                  "It has no gradient and must not be decayed. " + _NNX_FIX),
      ({"w": jnp.ones((2, 2)), "key": jax.random.key(0)},
       "non-parameter state reached a wdjax transform: key (rng state). It has no gradient "
       "and must not be decayed. " + _PLAIN_FIX)):
    with pytest.raises(ValueError) as err:
      masks.resolve(masks.weights_only, params)
    assert str(err.value) == want

  class WithBuffer(eqx.Module):
    linear: eqx.nn.Linear
    steps: jax.Array

    def __init__(self):
      self.linear = eqx.nn.Linear(2, 2, key=jax.random.key(0))
      self.steps = jnp.zeros((), jnp.int32)

  net = eqx.filter(WithBuffer(), eqx.is_array)
  for params, where in ((net, ".steps"), ({"net": net}, "['net'].steps")):
    with pytest.raises(TypeError) as err:
      masks.resolve(masks.weights_only, params)
    assert str(err.value) == (
        f"params leaf {where} of an Equinox model has dtype int32: a buffer, not a parameter "
        "(eqx.filter_grad gives it no gradient, and optax cannot match that to the array). "
        + _EQX_FIX)
  int_leaf = ("params leaf ['n'] has dtype int32; penalties and weight decay need "
              "floating-point leaves. Exclude it with a mask (wdjax.masks.weights_only never "
              "decays it). ")
  with pytest.raises(TypeError) as err:
    masks.resolve(None, {"w": jnp.ones(2), "n": jnp.zeros(2, jnp.int32)})
  assert str(err.value) == int_leaf + _PLAIN_FIX
  # an nnx.State of plain arrays: the State itself says NNX
  with pytest.raises(TypeError) as err:
    masks.resolve(None, nnx.State({"w": jnp.ones(2), "n": jnp.zeros(2, jnp.int32)}))
  assert str(err.value) == int_leaf + _NNX_FIX
  with pytest.raises(ValueError) as err:
    masks.resolve(None, nnx.State({"w": jnp.ones(2), "key": jax.random.key(0)}))
  assert str(err.value) == ("non-parameter state reached a wdjax transform: key (rng state). "
                            "It has no gradient and must not be decayed. " + _NNX_FIX)


def test_mask_builders_names_default_ndim_describe_empty_and_select():
  """The builders' names (what errors show), by_ndim's default 2, describe of a mask that
  decays nothing (allowed: it only reports), and select: the masked leaves in
  jax.tree.leaves order, every leaf for None, a mask that decays nothing refused.
  Mutmut: by_ndim(3) by default and its name None or dropped, describe's allow_empty
  dropped/False/None, and no test calling select."""
  assert [masks.weights_only.__name__, masks.weights_only(embeddings=False).__name__,
          masks.everything.__name__, masks.by_path("a").__name__, masks.by_ndim().__name__] == [
      "weights_only", "weights_only(embeddings=False)", "everything",
      "by_path(include='a', exclude=None)", "by_ndim(2)"]
  tx = optax.flatten(wdjax.adamw(0.1, mask=masks.by_ndim()))
  with pytest.raises(ValueError, match=r"^mask 'by_ndim\(2\)' needs the params' structure"):
    tx.init({"kernel": jnp.ones((2, 4)), "bias": jnp.ones(4)})
  assert masks.by_ndim()({"a": jnp.ones((2, 2)), "b": jnp.ones(2), "c": jnp.ones((1, 2, 3))}) == {
      "a": True, "b": False, "c": True}
  text = masks.describe(masks.by_path(include="nope"), PARAMS, print_fn=None)
  assert text.endswith("decayed: 0 leaves, 0 parameters; not decayed: 8 leaves, 77 parameters "
                       "(weight: 2, embedding: 1, bias: 3, norm scale: 2)")
  leaves = jax.tree.leaves(PARAMS)
  got = masks.select(masks.weights_only, PARAMS)
  want = [leaf for leaf, k in zip(leaves, masks.kinds(PARAMS)) if k in ("weight", "embedding")]
  assert len(got) == 3 and all(a is b for a, b in zip(got, want))
  assert all(a is b for a, b in zip(masks.select(None, PARAMS), leaves))
  with pytest.raises(ValueError, match="decays nothing"):
    masks.select(masks.by_path(include="nope"), PARAMS)


def test_resolve_fit_check_and_its_messages_whole():
  """resolve's structure check: the same leaf paths in another pytree type fit (a dict
  mask for FrozenDict params); the same number of leaves under other names does not, and
  the message lists at most three missing and three extra paths, each part only when
  there is one, paths joined by "/"; inside optax.flatten the message names the mask (its
  repr when it has no __name__) and the vector's size; the errors for a non-bool mask and
  for a mask that decays nothing (at most six paths), whole.
  Mutmut: `or`/`and` and `==`/`!=` swapped in the fit test, `leaf_paths(None)`, [:4],
  [:7], the extra paths None, each part always or never, the optax.flatten advice outside
  it, the mask's name and every text of these messages."""
  import functools

  from flax.core import FrozenDict
  assert masks.resolve({"a": True, "b": False},
                       FrozenDict({"a": jnp.ones(2), "b": jnp.ones(2)})) == [True, False]
  params = {k: jnp.ones(2) for k in "abfghi"}
  head = "mask does not fit the params: the mask has "
  tail = (". Build the mask from these params (e.g. mask=wdjax.masks.weights_only, a "
          "function of the params) or give a pytree of bools with the same structure.")
  two = {"a": jnp.ones(2), "b": jnp.ones(2)}
  for mask, tree, want in (
      ({k: True for k in "abcdej"}, params,
       "6 leaves, the params 6; params leaves without a mask entry: ['f', 'g', 'h']; mask "
       "entries with no params leaf: ['c', 'd', 'e']"),
      ({"x": True, "y": False}, params,
       "2 leaves, the params 6; params leaves without a mask entry: ['a', 'b', 'f']; mask "
       "entries with no params leaf: ['x', 'y']"),
      ({"a": True, "b": True, "z": {"q": True}}, two,
       "3 leaves, the params 2; mask entries with no params leaf: ['z/q']"),
      ({"a": True}, {"a": jnp.ones(2), "enc": {"k": jnp.ones(2)}},
       "1 leaves, the params 2; params leaves without a mask entry: ['enc/k']"),
      # one flat vector outside optax.flatten: no optax.flatten advice
      ({"w": True}, jnp.ones(3),
       "1 leaves, the params 1; params leaves without a mask entry: ['']; mask entries "
       "with no params leaf: ['w']")):
    with pytest.raises(ValueError) as err:
      masks.resolve(mask, tree)
    assert str(err.value) == head + want + tail
  with pytest.raises(TypeError) as err:
    masks.resolve({"w": 1.0}, {"w": jnp.ones(2)})
  assert str(err.value) == "mask leaves must be Python bools, got float: 1.0."
  with pytest.raises(ValueError) as err:
    masks.resolve(masks.by_path(include="nope"), PARAMS)
  assert str(err.value) == (
      "mask decays nothing: every leaf is excluded, so the penalty would have no effect. "
      "Leaves: ['b', 'block/LayerNorm_0/bias', 'block/LayerNorm_0/scale', 'block/dense/bias',"
      " 'block/dense/kernel', 'block/ln_f/weight']. Check the mask's patterns, or pass "
      "mask=None to decay every leaf.")
  vector = {"kernel": jnp.ones((2, 4)), "bias": jnp.ones(4)}
  fix = masks._FLATTEN_FIX
  for mask, name in ((masks.by_ndim(), "'by_ndim(2)'"),
                     (functools.partial(masks.by_ndim(2)), None)):
    with pytest.raises(ValueError) as err:
      optax.flatten(wdjax.adamw(0.1, mask=mask)).init(vector)
    name = name or repr(mask)
    assert str(err.value) == (f"mask {name} needs the params' structure (names, shapes) but "
                              "was given one flat vector of 12 entries." + fix)


def test_builders_see_nnx_variables_and_user_masks_get_arrays():
  """The mask builders get the params as given (NNX Variables kept), so a BatchStat that
  names cannot tell from a weight (`ema`) is not decayed; a user's mask function gets
  plain arrays, also from an nnx.State (the documented contract).
  Mutmut: the `_wdjax_sees_variables` mark unset/None/False, misspelt or ignored, the
  user's function called with the Variables or with None, getattr without a default."""
  from flax import nnx

  class Model(nnx.Module):
    def __init__(self, rngs):
      self.dense = nnx.Linear(2, 2, rngs=rngs)
      self.ema = nnx.BatchStat(jnp.zeros((2, 2)))

  model = Model(nnx.Rngs(0))
  for tree in (model, nnx.state(model)):
    assert masks.describe(masks.weights_only, tree, print_fn=None) == (
        "  -------  dense/bias  (2,)  2  bias\n"
        "  decayed  dense/kernel  (2, 2)  4  weight\n"
        "  -------  ema  (2, 2)  4  batch stats\n"
        "decayed: 1 leaves, 4 parameters; not decayed: 2 leaves, 6 parameters "
        "(bias: 1, batch stats: 1)")
  seen = []

  def mine(p):
    seen.extend(type(x) for x in jax.tree.leaves(p, is_leaf=lambda x: isinstance(x, nnx.Variable)))
    return jax.tree.map(lambda x: x.ndim >= 2, p)

  assert masks.resolve(mine, nnx.state(model, nnx.Param)) == [False, True]
  assert seen and all(issubclass(t, jax.Array) for t in seen)


def test_describe_root_leaf_and_nothing_excluded_whole():
  """describe of a bare array (path "<root>") and of params with nothing excluded (no
  parenthesis after the counts), whole; weights_only(embeddings=True) decays embeddings,
  by_path with only `exclude` decays everything else; a Python int leaf, an int leaf at the
  root, an int leaf after a float one and five RNG keys are each refused (at most four
  named). Mutmut: the "<root>" texts, the `kept` parenthesis always or with "XXXX", the
  line separator, `embeddings=None` in the builder, `include` None not meaning "every
  leaf", `continue` → `break`, getattr(…, "dtype") without a default, state[:5]."""
  assert masks.describe(None, jnp.ones(3), print_fn=None) == (
      "  decayed  <root>  (3,)  3  weight\n"
      "decayed: 1 leaves, 3 parameters; not decayed: 0 leaves, 0 parameters")
  assert masks.describe(None, {"w": jnp.ones(2), "k": jnp.ones((2, 2))}, print_fn=None) == (
      "  decayed  k  (2, 2)  4  weight\n  decayed  w  (2,)  2  weight\n"
      "decayed: 2 leaves, 6 parameters; not decayed: 0 leaves, 0 parameters")
  assert masks.weights_only(embeddings=True)(PARAMS)["embed"]["embedding"] is True
  assert masks.by_path(exclude="^dense/")({"dense": {"kernel": 1.0}, "head": {"kernel": 2.0}}) == {
      "dense": {"kernel": False}, "head": {"kernel": True}}
  with pytest.raises(TypeError, match=r"^params leaf <root> has dtype int32; "):
    masks.resolve(None, jnp.zeros(2, jnp.int32))
  with pytest.raises(TypeError, match=r"^params leaf \['n'\] has dtype "):
    masks.resolve(None, {"w": jnp.ones(2), "n": 3})
  with pytest.raises(TypeError, match=r"^params leaf \['n'\] has dtype int32; "):
    masks.resolve(None, {"a": jnp.ones(2), "n": jnp.zeros(2, jnp.int32)})
  keys = {f"k{i}": jax.random.key(i) for i in range(5)}
  with pytest.raises(ValueError, match=r"^non-parameter state reached a wdjax transform: "
                     r"k0 \(rng state\), k1 \(rng state\), k2 \(rng state\), "
                     r"k3 \(rng state\)\. It has no gradient"):
    masks.resolve(masks.weights_only, {**keys, "w": jnp.ones(2)})


def test_nnx_module_types_decide_for_a_whole_model():
  """For a whole nnx.Module the layer types decide: LayerNorm, GroupNorm and InstanceNorm
  scales are norm scales, PReLU's slope a PReLU slope, and an nnx.Embed kept under a
  norm-like name (`norm_embed`) an embedding, which names alone (its nnx.State) cannot tell.
  The same kinds for the model with plain arrays (what a user's mask function receives).
  Mutmut: flax.nnx not looked up (or the test inverted), "flax" in the owner test, each
  NNX norm type's name, the PReLU type dropped (or replaced by Equinox's), the statistics
  of a library norm with array leaves."""
  from flax import nnx

  class Net(nnx.Module):
    def __init__(self, rngs):
      self.ln = nnx.LayerNorm(3, rngs=rngs)
      self.gn = nnx.GroupNorm(4, num_groups=2, rngs=rngs)
      self.inorm = nnx.InstanceNorm(3, rngs=rngs)
      self.act = nnx.PReLU()
      self.norm_embed = nnx.Embed(4, 3, rngs=rngs)

  pytest.importorskip("equinox")  # both libraries' types known at once
  model = Net(nnx.Rngs(0))
  want = {"act/negative_slope": "prelu slope", "gn/bias": "bias", "gn/scale": "norm scale",
          "inorm/bias": "bias", "inorm/scale": "norm scale", "ln/bias": "bias",
          "ln/scale": "norm scale", "norm_embed/embedding": "embedding"}
  assert kinds_by_path(model) == want
  assert kinds_by_path(nnx.state(model)) == {**want, "norm_embed/embedding": "norm scale"}
  # what a user's mask function gets (the model with plain arrays) gives the same kinds,
  # BatchNorm's statistics included
  bn = nnx.BatchNorm(3, rngs=nnx.Rngs(0))
  assert masks.kinds(masks.unwrap(bn)) == masks.kinds(bn) == [
      "bias", "batch stats", "norm scale", "batch stats"]


def test_leaf_paths_of_a_custom_key_type():
  """A pytree node registered with keys of its own type (no .key/.name/.idx) is named by
  str(key), and `kinds` walks past it (mutmut: str(None), and `return` for the `break` of
  the owner walk, survived: every test used JAX's key types)."""

  class Key:
    def __init__(self, name):
      self.label = name

    def __str__(self):
      return f"<{self.label}>"

  class Pair:
    def __init__(self, a, b):
      self.a, self.b = a, b

  jax.tree_util.register_pytree_with_keys(
      Pair, lambda p: (((Key("a"), p.a), (Key("b"), p.b)), None),
      lambda _, children: Pair(*children))
  params = {"pair": Pair({"k": jnp.ones((2, 2))}, jnp.zeros(2))}
  assert masks.leaf_paths(params) == [("pair", "<a>", "k"), ("pair", "<b>")]
  # with module types known, the owner walk meets a key it cannot follow and stops there
  from flax import nnx  # noqa: F401
  assert masks.kinds(params) == ["weight", "weight"]


def test_kinds_of_python_scalars_and_float_leaves_named_key_or_count():
  """A Python float leaf is a weight and a Python int "not float" (dtype from np.asarray);
  a float leaf named `key` or `count` outside `rngs/` is a weight, not RNG state (mutmut:
  getattr(v, "dtype") without a default, np.asarray(None), the dtype fallback skipped,
  `and` → `or` in the RNG-state test)."""
  assert masks.kinds({"w": 1.5, "n": 3}) == ["not float", "weight"]
  assert masks.kinds({"attn": {"key": jnp.ones((2, 2))}, "count": jnp.ones(2)}) == [
      "weight", "weight"]
  assert masks.kinds({"rngs": {"count": jnp.zeros((), jnp.uint32)}}) == ["rng state"]


def test_equinox_batch_norm_state_is_not_a_weight():
  """eqx.nn.BatchNorm keeps its running statistics' initial values in a StateIndex, inside
  the model that eqx.filter(model, eqx.is_inexact_array) hands to optax: they are state
  ("batch stats"), never decayed. The owner of a leaf is the innermost module on its path
  (StateIndex), also when the leaf's own parent is a tuple. Found by mutmut (`owner = None`
  in the walk survived); before, these leaves were "weight" and weights_only decayed them."""
  eqx = pytest.importorskip("equinox")

  class Net(eqx.Module):
    lin: eqx.nn.Linear
    bn: eqx.nn.BatchNorm

    def __init__(self):
      self.lin = eqx.nn.Linear(2, 3, key=jax.random.key(0))
      self.bn = eqx.nn.BatchNorm(3, axis_name="batch", mode="ema")

  params = eqx.filter(Net(), eqx.is_inexact_array)
  kinds = kinds_by_path(params)
  assert {k: v for k, v in kinds.items() if "ema" not in k} == {
      "lin/weight": "weight", "lin/bias": "bias", "bn/weight": "norm scale", "bn/bias": "bias"}
  assert {k: v for k, v in kinds.items() if "ema" in k} == {
      "bn/ema_state_index/init/0": "batch stats", "bn/ema_state_index/init/1": "batch stats"}
  assert masks.resolve(masks.weights_only, params) == [True, False, False, False, False, False]


def test_kinds_by_name_each_rule_alone():
  """Each name rule on its own, where the other evidence is absent: a leaf directly or
  deeply under `batch_stats` with a name that is no statistic; a raw uint32 PRNG key under
  `rngs/`; a slope named `negative_slope` outside a PReLU module and a PReLU module's leaf
  of another name, at any depth; `embedding`/`embeddings` outside an embedding module and
  an embedding module's leaf of another name, at any depth (mutmut: `or` → `and` in the
  PReLU and embedding rules, each name's text, path[:+1] and path[:-2] for path[:-1])."""
  x = jnp.ones((2, 2))
  params = {
      "batch_stats": {"avg": x, "EMA_0": {"avg": x}}, "state": {"batch_stats": {"avg": x}},
      "drop": {"rngs": {"key": jax.random.PRNGKey(0)}},
      "act": {"negative_slope": x}, "PReLU_0": {"alpha": x}, "block": {"PReLU_1": {"alpha": x}},
      "tok": {"embedding": x}, "wte": {"embeddings": x}, "Embed_0": {"table": x},
      "model": {"Embed_1": {"table": x}}, "proj": {"w": x}}
  assert kinds_by_path(params) == {
      "batch_stats/avg": "batch stats", "batch_stats/EMA_0/avg": "batch stats",
      "state/batch_stats/avg": "batch stats", "drop/rngs/key": "rng state",
      "act/negative_slope": "prelu slope", "PReLU_0/alpha": "prelu slope",
      "block/PReLU_1/alpha": "prelu slope", "tok/embedding": "embedding",
      "wte/embeddings": "embedding", "Embed_0/table": "embedding",
      "model/Embed_1/table": "embedding", "proj/w": "weight"}


# ---------------------------------------------------------------- found by a review (a helper
# auditing bad input the way a user gives it, 2026-11-29): each was accepted silently or
# failed only at the first update


def test_nnx_batch_statistics_are_refused_when_every_variable_is_optimized():
  # nnx.Optimizer(..., wrt=nnx.Variable) hands BatchNorm's statistics to the optimizer: the
  # mask is resolved on the variables as given (their types say "batch stats"), not after
  # unwrapping them (which decayed stats/var from 4.0 to 3.8 with zero gradients)
  from flax import nnx

  class Net(nnx.Module):
    def __init__(self, rngs):
      self.lin = nnx.Linear(2, 2, rngs=rngs)
      self.bn = nnx.BatchNorm(2, rngs=rngs)

  net = Net(nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"non-parameter state.*bn/mean \(batch stats\)"):
    nnx.Optimizer(net, wdjax.adamw(0.1, weight_decay=0.5), wrt=nnx.Variable)
  nnx.Optimizer(net, wdjax.adamw(0.1, weight_decay=0.5), wrt=nnx.Param)   # the documented form


def test_equinox_mask_of_bools_is_a_pytree_not_a_function():
  # an eqx.Module is callable: a mask built with jax.tree.map over one is still a pytree
  eqx = pytest.importorskip("equinox")
  model = eqx.nn.MLP(2, 1, 4, 1, key=jax.random.key(0))
  params = eqx.filter(model, eqx.is_inexact_array)
  mask = jax.tree.map(lambda x: x.ndim > 1, params)
  tx = wdjax.adamw(0.1, weight_decay=0.5, mask=mask)
  grads = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  for u, w, m in zip(jax.tree.leaves(updates), jax.tree.leaves(params), jax.tree.leaves(mask)):
    np.testing.assert_allclose(u, -0.1 * 0.5 * w if m else 0 * w, rtol=1e-6)


def test_zero_strength_allows_a_mask_that_selects_nothing():
  # a preset's default λ = 0 on bias-only params (fine-tuning biases, a bias partition of
  # optax.multi_transform) is no mistake; a λ > 0 there still is
  params = {"bias": jnp.ones(2)}
  for tx in (wdjax.sgd_l2(0.1), wdjax.adam_l2(0.1), wdjax.proximal_sgd(0.1),
             wdjax.adamw(0.1, weight_decay=0.0)):
    updates, _ = tx.update({"bias": jnp.ones(2)}, tx.init(params), params)
    assert np.all(np.isfinite(updates["bias"]))
  np.testing.assert_allclose(
      wdjax.sgd_l2(0.1).update({"bias": jnp.ones(2)}, wdjax.sgd_l2(0.1).init(params),
                               params)[0]["bias"], -0.1)
  with pytest.raises(ValueError, match="mask decays nothing"):
    wdjax.adamw(0.1, weight_decay=0.1).init(params)


def test_strength_values_that_cannot_mean_a_decay_are_refused_at_construction():
  with pytest.raises(TypeError, match="must be real"):
    wdjax.adamw(0.1, weight_decay=jnp.asarray(0.5j))
  with pytest.raises(TypeError, match="boolean array"):
    wdjax.sgd_l2(0.1, weight_decay=np.bool_(True))
  with pytest.raises(ValueError, match="flip the weights' sign"):
    wdjax.decoupled(2.0, scale_by="constant")
  with pytest.raises(ValueError, match="l1_ratio must be a number in \\[0, 1\\]"):
    wdjax.proximal_sgd(0.1, "elastic_net", 0.1, l1_ratio=2.0)


def test_per_group_rule_that_selects_nothing_is_named_at_init():
  # a warning by default (a rule set shared by multi_transform's partitions may miss one),
  # an error with require_match=True, nothing with False
  import warnings
  params = {"dense": {"kernel": jnp.ones((2, 2))}}
  lam = lambda **kw: wdjax.per_group({"^embed/": 0.5}, default=0.1, **kw)
  with pytest.warns(UserWarning, match="rule '\\^embed/' selects no leaf.*dense/kernel"):
    wdjax.adamw(0.1, weight_decay=lam()).init(params)
  with pytest.raises(ValueError, match="rule '\\^embed/' selects no leaf"):
    wdjax.adamw(0.1, weight_decay=lam(require_match=True)).init(params)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    wdjax.adamw(0.1, weight_decay=lam(require_match=False)).init(params)
  with pytest.raises(ValueError, match="not a regular expression"):
    wdjax.per_group({"(": 0.5})


def test_traced_negative_strength_becomes_nan_as_a_schedule_does():
  # a λ swept by vmap or injected under jit could not be checked when the transform was
  # built: a negative one reversed the decay silently; now it is NaN (SweepResult.diverged)
  params = {"w": jnp.ones((2, 2))}

  def step(lam):
    tx = wdjax.adamw(0.1, weight_decay=lam, mask=None)
    return tx.update(params, tx.init(params), params)[0]["w"]

  out = jax.jit(jax.vmap(step))(jnp.array([0.5, -1.0, jnp.nan]))
  np.testing.assert_allclose(out[0], step(0.5), rtol=1e-6)
  assert np.isnan(out[1]).all() and np.isnan(out[2]).all()


def test_linen_batch_stats_are_refused_where_the_mask_would_decay_them():
  # the whole Linen variables dict with mask=None decayed batch_stats by −η·λ·stat each step
  import flax.linen as nn

  class Net(nn.Module):
    @nn.compact
    def __call__(self, x, train=True):
      return nn.BatchNorm(use_running_average=not train)(nn.Dense(2)(x))

  variables = Net().init(jax.random.key(0), jnp.ones((3, 2)))
  with pytest.raises(ValueError, match=r"batch_stats/BatchNorm_0/mean.*variables\['params'\]"):
    wdjax.adamw(0.1, weight_decay=0.5, mask=None).init(variables)
  wdjax.adamw(0.1, weight_decay=0.5).init(variables)            # weights_only leaves them
  wdjax.adamw(0.1, weight_decay=0.5, mask=None).init(variables["params"])

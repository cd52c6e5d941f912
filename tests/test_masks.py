"""Mask builders, describe, and their errors."""

import jax.numpy as jnp
import pytest

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

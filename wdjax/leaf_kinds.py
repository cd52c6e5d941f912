"""What each leaf of a params pytree is: weight, embedding, bias, norm scale, PReLU slope,
batch statistics, RNG state or not floating point — the evidence `wdjax.masks` decides on.

Also the tree plumbing masks and transforms share: `unwrap` (NNX Variables to arrays) and
`leaf_paths` (every leaf's path as names).
"""

from __future__ import annotations

import re
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# Names that mark a leaf as a bias or a normalization parameter (Flax, PyTorch, Haiku, D2L).
_BIAS_NAMES = frozenset({"bias", "b", "beta", "offset"})
_NORM_NAMES = frozenset({"scale", "gamma", "g"})
_STAT_NAMES = frozenset({"mean", "var", "running_mean", "running_var", "moving_mean",
                         "moving_var"})
_NORM_MODULE = re.compile(r"(norm|^ln(_|\d|$)|^bn(_|\d|$)|layernorm|batchnorm|groupnorm|rmsnorm)",
                          re.IGNORECASE)
_PRELU_MODULE = re.compile(r"prelu", re.IGNORECASE)
_EMBED_MODULE = re.compile(r"embed", re.IGNORECASE)

#: What a leaf is, as `describe` prints it; `weights_only` decays the first two.
KINDS = ("weight", "embedding", "bias", "norm scale", "prelu slope", "batch stats",
         "rng state", "not float")


def _is_variable(x: Any) -> bool:
  nnx = sys.modules.get("flax.nnx")
  return nnx is not None and isinstance(x, nnx.Variable)


def unwrap(tree: Any) -> Any:
  """Replaces every Flax NNX Variable in `tree` by its array; other trees are returned as is."""
  if "flax.nnx" not in sys.modules:
    return tree
  return jax.tree.map(_value, tree, is_leaf=_is_variable)


def _value(v: Any) -> Any:
  if not _is_variable(v):
    return v
  return v.get_value()


def _key_name(k: Any) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def leaf_paths(params: Any) -> list[tuple[str, ...]]:
  """The path of every leaf of `params` as a tuple of names (NNX `.value` dropped)."""
  flat = jax.tree_util.tree_flatten_with_path(unwrap(params))[0]
  return [tuple(_key_name(k) for k in path) for path, _ in flat]


# ---- what a leaf is ----------------------------------------------------------------------
# flax and equinox are looked up in sys.modules, never imported: params can only hold their
# objects if the user imported them, and `import wdjax` stays free of both.

def _library_types() -> dict[str, tuple[type, ...]]:
  found: dict[str, list[type]] = {"norm": [], "embedding": [], "prelu slope": [], "module": [],
                                  "state": []}
  nnx, eqx = sys.modules.get("flax.nnx"), sys.modules.get("equinox")
  if nnx is not None:
    found["module"].append(nnx.Module)
    found["norm"] += [getattr(nnx, n) for n in ("LayerNorm", "BatchNorm", "RMSNorm", "GroupNorm",
                                                "InstanceNorm") if hasattr(nnx, n)]
    found["embedding"] += [nnx.Embed]
    found["prelu slope"] += [nnx.PReLU] if hasattr(nnx, "PReLU") else []
  if eqx is not None:
    found["module"].append(eqx.Module)
    found["norm"] += [getattr(eqx.nn, n) for n in ("LayerNorm", "BatchNorm", "RMSNorm",
                                                   "GroupNorm") if hasattr(eqx.nn, n)]
    found["embedding"] += [eqx.nn.Embedding]
    found["prelu slope"] += [eqx.nn.PReLU]
    # a StateIndex holds the initial value of a layer's state (BatchNorm's running statistics)
    found["state"] += [eqx.nn.StateIndex] if hasattr(eqx.nn, "StateIndex") else []
  return {k: tuple(v) for k, v in found.items()}


class _Leaf(NamedTuple):
  keypath: tuple            # JAX key path (for error messages: jax.tree_util.keystr)
  path: tuple[str, ...]     # names, as leaf_paths gives them
  value: Any                # the leaf: an array, or an NNX Variable at init
  owner: type | None        # type of the innermost module object holding it, if any


def _child(node: Any, k: Any) -> Any:
  try:
    if isinstance(k, jax.tree_util.GetAttrKey):
      return getattr(node, k.name)
    if isinstance(k, jax.tree_util.SequenceKey):
      return node[k.idx]
    if isinstance(k, jax.tree_util.DictKey):
      return node[k.key]
  except (AttributeError, IndexError, KeyError, TypeError):
    pass
  return None


def _leaves(params: Any, types: dict[str, tuple[type, ...]]) -> list[_Leaf]:
  """Every leaf of `params` (NNX Variables kept whole) with its path and owning module."""
  flat = jax.tree_util.tree_flatten_with_path(params, is_leaf=_is_variable)[0]
  out = []
  for keypath, leaf in flat:
    owner, node = None, params
    if types["module"]:  # walk down to find the innermost module object on the path
      for k in keypath[:-1]:
        if isinstance(node, types["module"]):
          owner = type(node)
        node = _child(node, k)
        if node is None:
          break
      else:
        owner = type(node) if isinstance(node, types["module"]) else owner
    out.append(_Leaf(keypath, tuple(_key_name(k) for k in keypath), leaf, owner))
  return out


def _is_bias(name: str) -> bool:
  # `bias_ih`, `bias_n` (recurrent cells: eqx.nn.GRUCell) are biases too.
  return name in _BIAS_NAMES or name.startswith("bias_")


def _kind(leaf: _Leaf, types: dict[str, tuple[type, ...]]) -> str:
  """One of KINDS for `leaf`: state first, then the owning module's type, then names."""
  v = leaf.value
  if _is_variable(v):
    nnx = sys.modules["flax.nnx"]
    if isinstance(v, nnx.RngState):
      return "rng state"
    if isinstance(v, nnx.BatchStat):
      return "batch stats"
    v = _value(v)
  dtype = getattr(v, "dtype", None)
  dtype = np.asarray(v).dtype if dtype is None else dtype
  path = leaf.path
  name = path[-1].lower() if path else ""
  if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) or (
      "rngs" in path[:-1] and name in ("key", "count")):
    return "rng state"
  if not jnp.issubdtype(dtype, jnp.inexact):
    return "not float"
  if "batch_stats" in path[:-1]:
    return "batch stats"
  owner = leaf.owner
  # A library layer's type is better evidence than the attribute name the user chose
  # (an `eqx.nn.Linear` kept as `self.norm_proj` is a weight); a user's own module falls
  # through to the name rules.
  if owner is not None and owner.__module__.split(".")[0] in ("flax", "equinox"):
    if issubclass(owner, types["state"]):
      return "batch stats"
    if issubclass(owner, types["norm"]):
      return "bias" if _is_bias(name) else "batch stats" if name in _STAT_NAMES else "norm scale"
    for kind in ("embedding", "prelu slope"):
      if issubclass(owner, types[kind]):
        return kind
    return "bias" if _is_bias(name) else "weight"
  if _is_bias(name):
    return "bias"
  if name == "kernel":  # no normalization layer has a kernel (`norm_proj/kernel` is a weight)
    return "weight"
  if any(_NORM_MODULE.search(p) for p in path[:-1]):
    return "batch stats" if name in _STAT_NAMES else "norm scale"
  if name in _NORM_NAMES:
    return "norm scale"
  if name == "negative_slope" or any(_PRELU_MODULE.search(p) for p in path[:-1]):
    return "prelu slope"
  if name in ("embedding", "embeddings") or any(_EMBED_MODULE.search(p) for p in path[:-1]):
    return "embedding"
  return "weight"


def kinds(params: Any) -> list[str]:
  """What each leaf of `params` is (one of `KINDS`), in `jax.tree.leaves` order.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from wdjax import masks
    >>> masks.kinds({"ln": {"scale": jnp.ones(2)}, "step": jnp.zeros((), jnp.int32),
    ...              "key": jax.random.key(0), "w": jnp.ones((2, 2))})
    ['rng state', 'norm scale', 'not float', 'weight']
  """
  types = _library_types()
  return [_kind(leaf, types) for leaf in _leaves(params, types)]

"""Masks: which leaves of a params pytree a penalty or decay touches.

A mask is a pytree of Python bools with the structure of the params, or a function
`params -> mask`. It is computed from names and shapes once, so it is static under `jit`.
The same mask works on plain dicts, Flax Linen params (`{'params': {...}}`) and Flax NNX
state: NNX hands `nnx.Variable` leaves to `init` and plain arrays to `update`; both give the
same mask, because a Variable counts as one leaf and its `.value` attribute is not a name.

Example:
  >>> import jax.numpy as jnp
  >>> from wdjax import masks
  >>> params = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}}
  >>> masks.weights_only(params)
  {'dense': {'bias': False, 'kernel': True}}
"""

from __future__ import annotations

import re
import sys
from typing import Any, Callable, Iterable, Union

import jax
import numpy as np

Mask = Union[Any, Callable[[Any], Any]]

# Names that mark a leaf as a bias or a normalization parameter (Flax, PyTorch, Haiku, D2L).
_BIAS_NAMES = frozenset({"bias", "b", "beta", "offset"})
_NORM_NAMES = frozenset({"scale", "gamma", "g"})
_NORM_MODULE = re.compile(r"(norm|^ln(_|\d|$)|^bn(_|\d|$)|layernorm|batchnorm|groupnorm|rmsnorm)",
                          re.IGNORECASE)


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
  # flax >= 0.12 deprecates `.value` in favour of `get_value()`.
  return v.get_value() if hasattr(v, "get_value") else v.value


def _key_name(k: Any) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def leaf_paths(params: Any) -> list[tuple[str, ...]]:
  """The path of every leaf of `params` as a tuple of names (NNX `.value` dropped)."""
  flat = jax.tree_util.tree_flatten_with_path(unwrap(params))[0]
  return [tuple(_key_name(k) for k in path) for path, _ in flat]


def _from_rule(params: Any, rule: Callable[[tuple[str, ...], Any], bool]) -> Any:
  params = unwrap(params)
  flat, treedef = jax.tree_util.tree_flatten_with_path(params)
  bools = [bool(rule(tuple(_key_name(k) for k in path), leaf)) for path, leaf in flat]
  return jax.tree_util.tree_unflatten(treedef, bools)


def _is_bias_or_norm(path: tuple[str, ...]) -> bool:
  if not path:
    return False
  name = path[-1].lower()
  if name in _BIAS_NAMES:
    return True
  in_norm_module = any(_NORM_MODULE.search(p) for p in path[:-1])
  return in_norm_module or name in _NORM_NAMES


def weights_only(params: Any) -> Any:
  """Decay kernels, embeddings and other weights; never biases or normalization parameters.

  A leaf is excluded when its own name is a bias name (`bias`, `b`, `beta`, `offset`) or a
  scale name (`scale`, `gamma`, `g`), or when a module on its path is a normalization layer
  (`LayerNorm_0`, `norm1`, `ln_f`, `bn2`, ...). Every other floating-point leaf is decayed,
  including a bare array (a linear model's `w`). The default mask of every transform.

  Args:
    params: a pytree of arrays, Flax Linen params or Flax NNX state.

  Returns:
    A pytree of bools with the structure of `params`.
  """
  return _from_rule(params, lambda path, leaf: not _is_bias_or_norm(path))


def everything(params: Any) -> Any:
  """Decay every leaf, biases and normalization parameters included."""
  return _from_rule(params, lambda path, leaf: True)


def by_path(include: str | Iterable[str] | None = None,
            exclude: str | Iterable[str] | None = None) -> Callable[[Any], Any]:
  """A mask from regular expressions on the '/'-joined path of each leaf.

  A leaf is decayed when its path matches some `include` pattern (every leaf when
  `include` is None) and no `exclude` pattern. Patterns use `re.search`.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import masks
    >>> p = {"enc": {"kernel": jnp.ones((2, 2))}, "head": {"kernel": jnp.ones((2, 1))}}
    >>> masks.by_path(exclude="^head/")(p)
    {'enc': {'kernel': True}, 'head': {'kernel': False}}
  """
  inc = [re.compile(p) for p in _as_list(include)] if include is not None else None
  exc = [re.compile(p) for p in _as_list(exclude)]

  def rule(path, leaf):
    s = "/".join(path)
    return (inc is None or any(r.search(s) for r in inc)) and not any(r.search(s) for r in exc)

  return lambda params: _from_rule(params, rule)


def by_ndim(min_ndim: int = 2) -> Callable[[Any], Any]:
  """A mask that decays leaves with at least `min_ndim` dimensions (nanoGPT's rule)."""
  return lambda params: _from_rule(params, lambda path, leaf: np.ndim(leaf) >= min_ndim)


def _as_list(x: str | Iterable[str] | None) -> list[str]:
  if x is None:
    return []
  return [x] if isinstance(x, str) else list(x)


def resolve(mask: Mask | None, params: Any, *, allow_empty: bool = False) -> list[bool]:
  """The mask as one bool per leaf of `params` (in `jax.tree.leaves` order), checked.

  Raises ValueError when the mask does not fit the params or decays nothing.
  """
  params = unwrap(params)
  n = len(jax.tree.leaves(params))
  if mask is None:
    return [True] * n
  tree = mask(params) if callable(mask) else unwrap(mask)
  bools = jax.tree.leaves(tree)
  want = leaf_paths(params)
  got = leaf_paths(tree)
  if len(bools) != n or (got != want and jax.tree.structure(tree) != jax.tree.structure(params)):
    missing = sorted(set(want) - set(got))[:3]
    extra = sorted(set(got) - set(want))[:3]
    raise ValueError(
        f"mask does not fit the params: the mask has {len(bools)} leaves, the params {n}"
        + (f"; params leaves without a mask entry: {['/'.join(p) for p in missing]}" if missing else "")
        + (f"; mask entries with no params leaf: {['/'.join(p) for p in extra]}" if extra else "")
        + ". Build the mask from these params (e.g. mask=wdjax.masks.weights_only, a function "
        "of the params) or give a pytree of bools with the same structure."
    )
  for b in bools:
    if not isinstance(b, (bool, np.bool_)):
      raise TypeError(f"mask leaves must be Python bools, got {type(b).__name__}: {b!r}.")
  bools = [bool(b) for b in bools]
  if not allow_empty and n and not any(bools):
    raise ValueError(
        "mask decays nothing: every leaf is excluded, so the penalty would have no effect. "
        f"Leaves: {['/'.join(p) for p in want][:6]}. Check the mask's patterns, or pass "
        "mask=None to decay every leaf."
    )
  return bools


def describe(mask: Mask | None, params: Any, *, print_fn: Callable[[str], None] | None = print) -> str:
  """Prints (and returns) each leaf, whether it is decayed, and the counts.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import masks
    >>> p = {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}
    >>> _ = masks.describe(masks.weights_only, p)
      -------  bias  (2,)  2
      decayed  kernel  (3, 2)  6
    decayed: 1 leaves, 6 parameters; not decayed: 1 leaves, 2 parameters
  """
  params = unwrap(params)
  bools = resolve(mask, params, allow_empty=True)
  leaves = jax.tree.leaves(params)
  lines, counts = [], {True: [0, 0], False: [0, 0]}
  for path, b, leaf in zip(leaf_paths(params), bools, leaves):
    size = int(np.size(leaf))
    counts[b][0] += 1
    counts[b][1] += size
    lines.append(f"  {'decayed' if b else '-------'}  {'/'.join(path) or '<root>'}  "
                 f"{tuple(np.shape(leaf))}  {size}")
  lines.append(f"decayed: {counts[True][0]} leaves, {counts[True][1]} parameters; "
               f"not decayed: {counts[False][0]} leaves, {counts[False][1]} parameters")
  text = "\n".join(lines)
  if print_fn is not None:
    print_fn(text)
  return text


def select(mask: Mask | None, params: Any) -> list[Any]:
  """The masked leaves of `params` as a list (what a penalty value is computed on)."""
  params = unwrap(params)
  return [leaf for leaf, b in zip(jax.tree.leaves(params), resolve(mask, params)) if b]

"""Any dynamics measure over a pytree: {leaf name: value}."""

from __future__ import annotations

from typing import Any, Callable

import jax



def leaf_name(path: tuple) -> str:
  """A leaf's path as "a/b/c" (a Flax NNX Variable's trailing ".value" dropped).

  Example:
    >>> import jax
    >>> from wdjax import dynamics
    >>> [dynamics.leaf_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(
    ...     {"Dense_0": {"kernel": 1.0}, "layers": [2.0]})[0]]
    ['Dense_0/kernel', 'layers/0']
  """
  if path and isinstance(path[-1], jax.tree_util.GetAttrKey) and path[-1].name == "value":
    path = path[:-1]
  return jax.tree_util.keystr(tuple(path), simple=True, separator="/")


def per_leaf(fn: Callable[..., Any], *trees: Any, mask: Any = None,
             **kwargs: Any) -> dict[str, Any]:
  """`fn` applied leaf by leaf to pytrees of the same structure: {leaf name: value}.

  `per_leaf(angular_update, before, after, neuron_axis=-1)` gives each leaf's per-neuron
  angles. Works on plain dicts, Flax Linen params and Flax NNX state, and inside
  `jax.jit`/`jax.vmap` (the result is a dict of arrays, itself a pytree).

  Args:
    fn: a function of one leaf of each tree (e.g. `weight_norm`, `angular_update`).
    *trees: pytrees of the structure of the first.
    mask: None (all leaves), a pytree of bools of that structure (e.g. a `wdjax.masks`
      mask: which leaves are decayed) or a function of the first tree returning one.
    **kwargs: passed to `fn` (neuron_axis=, weight_decay=, ...).

  Returns:
    A dict from leaf name (`leaf_name`) to `fn`'s value, in the trees' leaf order.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import dynamics
    >>> before = {"bias": jnp.zeros(2), "kernel": jnp.eye(2)}
    >>> after = {"bias": jnp.ones(2), "kernel": 2 * jnp.eye(2)}
    >>> dynamics.per_leaf(dynamics.relative_update, before, after,
    ...                   mask={"bias": False, "kernel": True})
    {'kernel': Array(1., dtype=float32)}
  """
  if not trees:
    raise ValueError("per_leaf needs at least one pytree.")
  flat, treedef = jax.tree_util.tree_flatten_with_path(trees[0])
  others = []
  for i, t in enumerate(trees[1:], start=1):
    if jax.tree.structure(t) != treedef:
      raise ValueError(f"tree {i} has structure {jax.tree.structure(t)}, the first "
                       f"{treedef}; per_leaf needs trees of the same structure.")
    others.append(jax.tree.leaves(t))
  if callable(mask):
    mask = mask(trees[0])
  keep = [True] * len(flat) if mask is None else [bool(m) for m in jax.tree.leaves(mask)]
  if len(keep) != len(flat):
    raise ValueError(f"mask has {len(keep)} leaves, the trees {len(flat)}; pass a mask of "
                     "the trees' structure.")
  out = {}
  for i, (path, leaf) in enumerate(flat):
    if keep[i]:
      out[leaf_name(path)] = fn(leaf, *(o[i] for o in others), **kwargs)
  return out

"""One hyperparameter value per leaf: λ (or η_t) as a pytree, or by group with `per_group`.

Every wdjax transform takes its numeric hyperparameters (λ, η_t, η_peak) in three forms:

- one value for every leaf: a float, an array (traced under `jax.vmap`) or a schedule
  `count -> value`;
- a pytree with the structure of the params, one such value per leaf (leaves are matched
  by path, so the same pytree works inside `optax.masked`, whose params lack some leaves);
- `per_group(rules, default=...)`: "λ₁ for the embeddings, λ₂ for the rest", resolved
  against the params when the transform sees them.

The choice of value per leaf is made in Python while tracing, once per compilation, so a
per-leaf λ costs the same per step as a scalar one (`benchmarks/bench_core.py`).
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from wdjax import _validate, masks


def is_single(value: Any) -> bool:
  """True for one value for every leaf: a number, an array or a schedule."""
  return callable(value) or isinstance(value, (int, float, np.ndarray, np.generic, jax.Array))


class PerLeaf:
  """Values chosen per leaf by rules `(selector, value)`; the first rule that selects a leaf
  gives its value, `default` the others. Build it with `per_group`."""

  def __init__(self, rules: tuple[tuple[Any, Any], ...], default: Any,
               require_match: bool | None = None):
    self.rules = rules
    self.require_match = require_match
    self.default = default

  def values(self) -> list[Any]:
    """Every value the rules can give (for argument checks)."""
    return [v for _, v in self.rules] + [self.default]

  def resolve(self, params: Any) -> Any:
    """A pytree with the structure of `params`: the value of each leaf."""
    params = masks.unwrap(params)
    chosen: list[Any] = [None] * len(jax.tree.leaves(params))
    for selector, value in self.rules:
      sel = masks.by_path(include=selector) if isinstance(selector, str) else selector
      if getattr(sel, "shape_only", False):
        # a rule on shapes alone (wdjax.modern.muon_leaves) is valid on optax.flatten's
        # single vector, where masks.resolve refuses rules that need names
        sel = sel(params)
      bools = masks.resolve(sel, params, allow_empty=True)
      if self.require_match is not False and not any(bools):
        paths = ["/".join(p) for p in masks.leaf_paths(params)]
        text = (f"per_group rule {selector!r} selects no leaf of the params, so its value "
                f"{value!r} is not used (a typo in the pattern?). Leaves: {paths[:8]}"
                f"{' ...' if len(paths) > 8 else ''}.")
        if self.require_match:
          raise ValueError(text)
        # (a warning, not an error, by default: one rule set shared by the partitions of
        # optax.multi_transform legitimately misses some of them)
        warnings.warn(text + " Pass require_match=True to make this an error, False to "
                      "silence it.", UserWarning, stacklevel=2)
      for i, b in enumerate(bools):
        if b and chosen[i] is None:
          chosen[i] = (value,)
    vals = [c[0] if c is not None else self.default for c in chosen]
    nested: dict[int, list[Any]] = {}  # a value that is itself per leaf gives its leaf's
    for i, v in enumerate(vals):
      if not is_single(v):
        vals[i] = nested.setdefault(id(v), raw_leaf_values(v, params, "value"))[i]
    return jax.tree.unflatten(jax.tree.structure(params), vals)

  def __repr__(self) -> str:
    rules = ", ".join(f"{s!r}: {v!r}" for s, v in self.rules)
    return f"per_group({{{rules}}}, default={self.default!r})"


def per_group(groups: Mapping[Any, Any] | Iterable[tuple[Any, Any]], *,
              default: Any = 0.0, require_match: bool | None = None) -> PerLeaf:
  """One value per group of leaves: λ₁ for these leaves, λ₂ for those.

  Each rule is `selector: value`. A selector is a regular expression on the '/'-joined
  path of a leaf (as in `wdjax.masks.by_path`), a mask function `params -> pytree of
  bools` (any of `wdjax.masks`) or a pytree of bools. A leaf takes the value of the first
  rule that selects it, or `default`. Values are floats, arrays (traced, so a sweep over
  them compiles once) or schedules. Pass the result wherever a transform takes λ or η_t;
  the groups are resolved against the params the transform is given.

  Args:
    groups: a mapping `{selector: value}`, or a sequence of `(selector, value)` pairs
      (needed when a selector is a pytree of bools, which is not hashable).
    default: the value of leaves no rule selects.
    require_match: what a rule that selects no leaf of the params (at the transform's
      init) gives: a warning naming the rule and the leaves (None, the default: a rule set
      shared by the partitions of `optax.multi_transform` may miss some), an error (True),
      or nothing (False).

  Returns:
    A `PerLeaf`; `.resolve(params)` shows the value of each leaf.

  Example:
    >>> import jax.numpy as jnp, optax, wdjax
    >>> params = {"embed": {"embedding": jnp.ones((4, 2))}, "dense": {"kernel": jnp.ones((2, 2))}}
    >>> lam = wdjax.per_group({"^embed/": 1e-4}, default=1e-2)
    >>> lam.resolve(params)
    {'dense': {'kernel': 0.01}, 'embed': {'embedding': 0.0001}}
    >>> tx = wdjax.adamw(1e-3, weight_decay=lam)   # λ₁ on embeddings, λ₂ on the rest
  """
  items = tuple(groups.items()) if isinstance(groups, Mapping) else tuple(groups)
  for item in items:
    if not (isinstance(item, tuple) and len(item) == 2):
      raise TypeError("per_group takes {selector: value} or (selector, value) pairs; got "
                      f"{item!r}.")
    if isinstance(item[0], str):
      try:
        re.compile(item[0])
      except re.error as e:
        raise ValueError(f"per_group: the pattern {item[0]!r} is not a regular expression "
                         f"({e}); it is matched against '/'-joined leaf paths such as "
                         "'dense/kernel'.") from None
  return PerLeaf(items, default, require_match)


def _real(x: Any) -> Any:
  # optax.inject_hyperparams casts hyperparameters to the params' dtype, complex included;
  # λ and η are real.
  return jnp.real(x) if jnp.iscomplexobj(x) else x


def leaf_values(value: Any, params: Any, count: jax.Array, name: str) -> list[Any]:
  """`value` at step `count` as a list with one entry per leaf of `params` (unwrapped).

  A single value is repeated (the same object, so callers can tell); a pytree is matched
  to the params leaf by leaf, by path.
  """
  if is_single(value):
    return [_real(_validate.evaluate(value, count, name))] * len(jax.tree.leaves(params))
  return [_real(_validate.evaluate(v, count, name))
          for v in raw_leaf_values(value, params, name)]


def raw_leaf_values(value: Any, params: Any, name: str) -> list[Any]:
  """`value` (single, pytree or `PerLeaf`) as one entry per leaf of `params`, unevaluated."""
  leaves = jax.tree.leaves(params)
  if isinstance(value, PerLeaf):
    value = value.resolve(params)
  if is_single(value):
    return [value] * len(leaves)
  tree = masks.unwrap(value)
  if jax.tree.structure(tree) == jax.tree.structure(params):
    vals = jax.tree.leaves(tree)
  else:
    by_path = dict(zip(masks.leaf_paths(tree), jax.tree.leaves(tree)))
    want = masks.leaf_paths(params)
    missing = ["/".join(p) for p in want if p not in by_path]
    if missing:
      raise ValueError(
          f"`{name}` is a pytree without a value for the params leaves {missing[:3]}: give "
          "a single value, one per leaf (jax.tree.map(lambda _: lam, params)) or "
          "wdjax.per_group({...}, default=...).")
    vals = [by_path[p] for p in want]
  return vals


def check_values(name: str, value: Any, *, positive: bool = False) -> None:
  """Checks every concrete value of `value` (single, pytree or `PerLeaf`): >= 0 (> 0 when
  `positive`), finite; schedules and traced values are checked when evaluated."""
  check = _validate.check_positive if positive else _validate.check_strength
  if isinstance(value, PerLeaf):
    for v in value.values():
      check_values(name, v, positive=positive)
  elif value is None or callable(value):
    check(name, value)
  elif is_single(value):
    if (_validate.is_concrete(value) and jnp.iscomplexobj(value)
        and np.any(np.imag(np.asarray(value)) != 0)):
      # (_real below is for inject_hyperparams' cast of a real value to complex params)
      raise TypeError(f"`{name}` must be real, got the complex {value!r:.40}.")
    check(name, _real(value))
  else:
    for v in jax.tree.leaves(masks.unwrap(value)):
      check(name, v if callable(v) else _real(v))


def has_schedule(value: Any) -> bool:
  """True when `value` (single, pytree or `PerLeaf`) holds a schedule."""
  if isinstance(value, PerLeaf):
    return any(has_schedule(v) for v in value.values())
  if is_single(value) or value is None:
    return callable(value)
  return any(callable(v) for v in jax.tree.leaves(masks.unwrap(value)))

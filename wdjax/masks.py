"""Masks: which leaves of a params pytree a penalty or decay touches.

A mask is a pytree of Python bools with the structure of the params, or a function
`params -> mask`. It is computed once from the params, so it is static under `jit`.

`weights_only`, the default of every transform, decides what each leaf is from what the
params carry, best evidence first:

1. non-parameter state: a PRNG key or an NNX `RngState` / `BatchStat` Variable, a leaf
   under `rngs/` or Linen's `batch_stats`, the initial state an Equinox `StateIndex` holds
   (`eqx.nn.BatchNorm`'s running statistics), an integer or bool buffer. Never decayed.
2. the type of the module holding the leaf, where the params are module objects (an
   Equinox model, which is how Equinox hands params to optax, or a whole `nnx.Module`):
   normalization layers (`LayerNorm`, `BatchNorm`, `RMSNorm`, `GroupNorm`, whatever the
   scale is called: Equinox names it `weight`), embeddings, PReLU slopes.
3. names, where there are no module objects (an NNX State, Linen params, plain dicts):
   `bias`/`b`/`beta`, `scale`/`gamma`, a module named like a norm (`LayerNorm_0`, `ln_f`,
   `norm1`, `bn2`), `negative_slope`, `embedding`.

Flax NNX hands `nnx.Variable` leaves to `init` and plain arrays to `update`; both give
the same mask, because a Variable counts as one leaf and its `.value` is not a name, and
because the Variable types that names cannot see (RNG state, batch statistics) are
refused by `resolve` before the first step, with the fix: `nnx.Optimizer(..., wrt=nnx.Param)`.

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

from wdjax.leaf_kinds import (KINDS, _is_variable, _key_name, _kind, _Leaf, _leaves,  # noqa: F401
                              _library_types, _value, kinds, leaf_paths, unwrap)

Mask = Union[Any, Callable[[Any], Any]]

# ---- mask builders -----------------------------------------------------------------------

def _from_rule(params: Any, rule: Callable[[tuple[str, ...], Any], bool]) -> Any:
  params = unwrap(params)
  flat, treedef = jax.tree_util.tree_flatten_with_path(params)
  bools = [bool(rule(tuple(_key_name(k) for k in path), leaf)) for path, leaf in flat]
  return jax.tree_util.tree_unflatten(treedef, bools)


def _sees_variables(fn: Callable, name: str | None = None) -> Callable:
  # `resolve` hands a user's mask function plain arrays (as it always has); the builders
  # here read NNX Variable types too, so they get the params as given. The name is for
  # error messages.
  fn._wdjax_sees_variables = True
  if name is not None:
    fn.__name__ = fn.__qualname__ = name
  return fn


_NO_PARAMS = object()


def weights_only(params: Any = _NO_PARAMS, *, embeddings: bool = True) -> Any:
  """Decay kernels, embeddings and other weights; never biases, normalization parameters,
  PReLU slopes or non-parameter state. The default mask of every transform.

  What each leaf is comes from `kinds` (see the module docstring): module types where the
  params are module objects (Equinox, a whole `nnx.Module`), names otherwise. A leaf is
  decayed when it is a "weight" (a kernel, a bare array such as a linear model's `w`) or,
  with `embeddings=True`, an "embedding".

  Args:
    params: a pytree of arrays, Flax Linen params, Flax NNX state or module, or an Equinox
      model. Omitted: returns the mask function with these options,
      e.g. `mask=weights_only(embeddings=False)`.
    embeddings: decay embedding tables (`nnx.Embed`, `eqx.nn.Embedding`, `embedding`).

  Returns:
    A pytree of bools with the structure of `params` (or a mask function).

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import masks
    >>> p = {"embed": {"embedding": jnp.ones((5, 2))}, "head": {"kernel": jnp.ones((2, 2))}}
    >>> masks.weights_only(embeddings=False)(p)
    {'embed': {'embedding': False}, 'head': {'kernel': True}}
  """
  if params is _NO_PARAMS:
    return _sees_variables(lambda p: weights_only(p, embeddings=embeddings),
                           f"weights_only(embeddings={embeddings})")
  keep = ("weight", "embedding") if embeddings else ("weight",)
  treedef = jax.tree.structure(unwrap(params))
  return jax.tree.unflatten(treedef, [k in keep for k in kinds(params)])


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

  return _sees_variables(lambda params: _from_rule(params, rule),
                         f"by_path(include={include!r}, exclude={exclude!r})")


def by_ndim(min_ndim: int = 2) -> Callable[[Any], Any]:
  """A mask that decays leaves with at least `min_ndim` dimensions (nanoGPT's rule)."""
  return _sees_variables(
      lambda params: _from_rule(params, lambda path, leaf: np.ndim(leaf) >= min_ndim),
      f"by_ndim({min_ndim})")


_sees_variables(weights_only)
_sees_variables(everything)


def _as_list(x: str | Iterable[str] | None) -> list[str]:
  if x is None:
    return []
  return [x] if isinstance(x, str) else list(x)


# ---- checks, with the fix that fits the stack ---------------------------------------------

def _in_optax_flatten() -> bool:
  # optax.flatten hands its inner transform one concatenated vector and leaves no mark on
  # it; a linear model's params may also be one vector, so the caller's frames decide.
  frame = sys._getframe(1)
  while frame is not None:
    if frame.f_globals.get("__name__") == "optax.transforms._layouts":
      return True
    frame = frame.f_back
  return False


_FLATTEN_FIX = (" Inside optax.flatten every leaf is concatenated into one vector, so kernels, "
                "biases and norm scales can no longer be told apart. Flatten only the base "
                "optimizer, optax.chain(optax.flatten(optax.adam(lr)), wdjax.decoupled(...)), "
                "or pass mask=None to decay every entry.")


def _stack_fix(params: Any, leaves: list[_Leaf], types: dict[str, tuple[type, ...]]) -> str:
  eqx = sys.modules.get("equinox")
  if eqx is not None and (isinstance(params, eqx.Module) or any(
      leaf.owner is not None and issubclass(leaf.owner, eqx.Module) for leaf in leaves)):
    return ("In an Equinox model, give the optimizer only the floating-point arrays: "
            "tx.init(eqx.filter(model, eqx.is_inexact_array)), and the same filter for the "
            "params passed to tx.update.")
  nnx = sys.modules.get("flax.nnx")
  if nnx is not None and (isinstance(params, (nnx.Module, nnx.State)) or any(
      _is_variable(leaf.value) or "rngs" in leaf.path for leaf in leaves)):
    return ("With Flax NNX, optimize the parameters only: nnx.Optimizer(model, tx, "
            "wrt=nnx.Param), with nnx.grad's default (Param) gradients.")
  if any(leaf.path and leaf.path[0] == "batch_stats" for leaf in leaves):
    return ("With Flax Linen, give the optimizer variables['params'], not the whole "
            "variables dict (its 'batch_stats' are updated by the model, not by gradients).")
  return "Keep it out of the params given to the optimizer, or cast it to a float dtype."


def _check_state(params: Any, bools: list[bool]) -> None:
  """Refuses RNG state, NNX batch statistics (Linen's where decayed) and decayed non-float
  leaves, naming the fix."""
  types = _library_types()
  leaves = _leaves(params, types)
  found = [(leaf, _kind(leaf, types)) for leaf in leaves]
  # NNX batch statistics are refused as such; Linen's (a "batch_stats" collection in the
  # variables dict) when the mask would decay them (mask=None on the whole variables)
  state = [(leaf, k) for (leaf, k), b in zip(found, bools) if k == "rng state" or (
      k == "batch stats" and (_is_variable(leaf.value)
                              or (b and "batch_stats" in leaf.path[:-1])))]
  if state:
    names = ", ".join(f"{'/'.join(leaf.path)} ({k})" for leaf, k in state[:4])
    raise ValueError(f"non-parameter state reached a wdjax transform: {names}. It has no "
                     f"gradient and must not be decayed. {_stack_fix(params, leaves, types)}")
  eqx = sys.modules.get("equinox")
  for (leaf, k), b in zip(found, bools):
    if k != "not float":
      continue
    where = jax.tree_util.keystr(leaf.keypath) or "<root>"
    dtype = getattr(_value(leaf.value), "dtype", None)
    if b:
      raise TypeError(
          f"params leaf {where} has dtype {dtype}; penalties and weight decay need "
          "floating-point leaves. Exclude it with a mask (wdjax.masks.weights_only never "
          f"decays it). {_stack_fix(params, leaves, types)}")
    if eqx is not None and leaf.owner is not None and issubclass(leaf.owner, eqx.Module):
      # eqx.filter_grad gives it no gradient (None), which optax's own update cannot
      # match to the array: refuse it here, at init, with Equinox's idiom.
      raise TypeError(
          f"params leaf {where} of an Equinox model has dtype {dtype}: a buffer, not a "
          "parameter (eqx.filter_grad gives it no gradient, and optax cannot match that to "
          f"the array). {_stack_fix(params, leaves, types)}")


def _all_bools(tree: Any) -> bool:
  """An Equinox module whose leaves are all bools: a mask pytree, though callable."""
  eqx = sys.modules.get("equinox")
  leaves = jax.tree.leaves(tree)
  return (eqx is not None and isinstance(tree, eqx.Module) and bool(leaves)
          and all(isinstance(b, (bool, np.bool_)) for b in leaves))


def resolve(mask: Mask | None, params: Any, *, allow_empty: bool = False,
            check: bool = True) -> list[bool]:
  """The mask as one bool per leaf of `params` (in `jax.tree.leaves` order), checked.

  Raises ValueError when the mask does not fit the params, decays nothing, or needs the
  params' structure inside `optax.flatten`; with `check`, also when non-parameter state
  (RNG keys and counters, NNX batch statistics) is among the params, and TypeError when
  the mask decays a leaf that is not floating point. Each error names the fix for the
  stack the params come from (Flax NNX, Equinox, plain pytrees).
  """
  raw, params = params, unwrap(params)
  n = len(jax.tree.leaves(params))
  if mask is None:
    bools = [True] * n
  else:
    flat_vector = jax.tree_util.treedef_is_leaf(jax.tree.structure(params)) and np.ndim(params) == 1
    if flat_vector and callable(mask) and _in_optax_flatten():
      raise ValueError(f"mask {getattr(mask, '__name__', mask)!r} needs the params' structure "
                       f"(names, shapes) but was given one flat vector of {np.size(params)} "
                       "entries." + _FLATTEN_FIX)
    # (an Equinox module of bools is callable, but is a mask's pytree, not its function)
    if callable(mask) and not _all_bools(mask):
      tree = mask(raw) if getattr(mask, "_wdjax_sees_variables", False) else mask(params)
    else:
      tree = unwrap(mask)
    bools = jax.tree.leaves(tree)
    want, got = leaf_paths(params), leaf_paths(tree)
    if len(bools) != n or (got != want and jax.tree.structure(tree) != jax.tree.structure(params)):
      missing = sorted(set(want) - set(got))[:3]
      extra = sorted(set(got) - set(want))[:3]
      raise ValueError(
          f"mask does not fit the params: the mask has {len(bools)} leaves, the params {n}"
          + (f"; params leaves without a mask entry: {['/'.join(p) for p in missing]}" if missing else "")
          + (f"; mask entries with no params leaf: {['/'.join(p) for p in extra]}" if extra else "")
          + ". Build the mask from these params (e.g. mask=wdjax.masks.weights_only, a function "
          "of the params) or give a pytree of bools with the same structure."
          + (_FLATTEN_FIX if flat_vector and _in_optax_flatten() else ""))
    for b in bools:
      if not isinstance(b, (bool, np.bool_)):
        raise TypeError(f"mask leaves must be Python bools, got {type(b).__name__}: {b!r}.")
    bools = [bool(b) for b in bools]
  if check:
    _check_state(raw, bools)
  if not allow_empty and n and not any(bools):
    raise ValueError(
        "mask decays nothing: every leaf is excluded, so the penalty would have no effect. "
        f"Leaves: {['/'.join(p) for p in leaf_paths(params)][:6]}. Check the mask's patterns, "
        "or pass mask=None to decay every leaf."
    )
  return bools


def describe(mask: Mask | None, params: Any, *, print_fn: Callable[[str], None] | None = print) -> str:
  """Prints (and returns) each leaf: decayed or not, its path, shape, size and what it is.

  What it is: one of `KINDS` ("weight", "embedding", "bias", "norm scale", "prelu slope",
  "batch stats", "rng state", "not float"), whatever the mask; so a whole NNX model or an
  Equinox model with buffers can be described, and a mask that decays a bias shows it.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import masks
    >>> p = {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}
    >>> _ = masks.describe(masks.weights_only, p)
      -------  bias  (2,)  2  bias
      decayed  kernel  (3, 2)  6  weight
    decayed: 1 leaves, 6 parameters; not decayed: 1 leaves, 2 parameters (bias: 1)
  """
  bools = resolve(mask, params, allow_empty=True, check=False)
  what = kinds(params)
  leaves = jax.tree.leaves(unwrap(params))
  lines, counts, excluded = [], {True: [0, 0], False: [0, 0]}, {}
  for path, b, leaf, k in zip(leaf_paths(params), bools, leaves, what):
    size = int(np.size(leaf))
    counts[b][0] += 1
    counts[b][1] += size
    if not b:
      excluded[k] = excluded.get(k, 0) + 1
    lines.append(f"  {'decayed' if b else '-------'}  {'/'.join(path) or '<root>'}  "
                 f"{tuple(np.shape(leaf))}  {size}  {k}")
  kept = ", ".join(f"{k}: {excluded[k]}" for k in KINDS if k in excluded)
  lines.append(f"decayed: {counts[True][0]} leaves, {counts[True][1]} parameters; "
               f"not decayed: {counts[False][0]} leaves, {counts[False][1]} parameters"
               + (f" ({kept})" if kept else ""))
  text = "\n".join(lines)
  if print_fn is not None:
    print_fn(text)
  return text


def select(mask: Mask | None, params: Any) -> list[Any]:
  """The masked leaves of `params` as a list (what a penalty value is computed on)."""
  params = unwrap(params)
  return [leaf for leaf, b in zip(jax.tree.leaves(params), resolve(mask, params)) if b]

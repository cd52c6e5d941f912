"""Masks: which leaves of a params pytree a penalty or decay touches.

A mask is a pytree of Python bools with the structure of the params, or a function
`params -> mask`. It is computed once from the params, so it is static under `jit`.

`weights_only`, the default of every transform, decides what each leaf is from what the
params carry, best evidence first:

1. non-parameter state: a PRNG key or an NNX `RngState` / `BatchStat` Variable, a leaf
   under `rngs/` or Linen's `batch_stats`, an integer or bool buffer. Never decayed.
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
from typing import Any, Callable, Iterable, NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np

Mask = Union[Any, Callable[[Any], Any]]

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
  found: dict[str, list[type]] = {"norm": [], "embedding": [], "prelu slope": [], "module": []}
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
  return "Keep it out of the params given to the optimizer, or cast it to a float dtype."


def _check_state(params: Any, bools: list[bool]) -> None:
  """Refuses RNG state, NNX batch statistics and decayed non-float leaves, naming the fix."""
  types = _library_types()
  leaves = _leaves(params, types)
  found = [(leaf, _kind(leaf, types)) for leaf in leaves]
  state = [(leaf, k) for leaf, k in found if k == "rng state" or (
      k == "batch stats" and _is_variable(leaf.value))]
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
    if callable(mask):
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

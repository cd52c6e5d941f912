"""`fused_adamw`: the AdamW step with the parameter update in the same kernel (Pallas).

`wdjax.adamw` is an Optax transformation: it returns updates u, and `optax.apply_updates`
adds them. Under `jax.jit` XLA fuses the pieces, but on an H200 its generated loops
streamed at 2.8 TB/s where torch's in-place kernels stream at 4.1 (benchmarks/README.md,
"GPU"), and the step is nothing but streaming: per element it reads p, g, m, v and writes
p, m, v (7 passes over the leaf). `fused_adamw(...).step(params, state, grads)` does that
in one Pallas (Triton) kernel per large float32 leaf,

    m ← β₁·m + (1 − β₁)·g,      v ← β₂·v + (1 − β₂)·g²,
    p ← p + (−η_t·m̂/(√(v̂ + ε_root) + ε) − c_t·λ·p),   m̂ = m/(1 − β₁ᵗ),  v̂ = v/(1 − β₂ᵗ),

with t the step count, η_t the learning rate, c_t·λ the decoupled decay (`scale_by`, as in
`wdjax.decoupled`; 0 for leaves the mask leaves out). Every other leaf, and every leaf on
a backend without the kernel, takes `wdjax.adamw`'s own update and `optax.apply_updates`.
The optimizer state is `wdjax.adamw`'s (a state from one works with the other), and the
numbers are its numbers: the same program off a GPU, and on one the same operations in
the same order, up to rounding (Triton may divide and fuse multiply-adds otherwise than
XLA; the tests allow 2e-6 relative).

The kernel runs on one device per leaf: a leaf sharded over several devices (a `jit` with
sharded inputs) has no partitioning rule for it, so XLA would gather it first; take
`kernel="xla"` there, or call the step inside `shard_map`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from wdjax import _validate
from wdjax.aliases import _DEFAULT, adamw
from wdjax.leafwise import leaf_values
from wdjax.transforms import decay_coefficients, resolve_mask

KERNELS = ("auto", "xla", "pallas")


class FusedOptimizer(NamedTuple):
  """An Optax transformation (`init`, `update`) with a fused `step` beside it.

  `init` and `update` are `wdjax.adamw`'s, so the optimizer drops into `optax.chain`,
  Flax's `nnx.Optimizer` or any loop written for Optax. `step(params, state, grads)`
  returns `(new_params, new_state)`: `update` followed by `optax.apply_updates`, in one
  kernel per large leaf on a GPU (the same numbers to rounding). Params and state come
  first and return in the same order, so `jax.jit(step, donate_argnums=(0, 1))` reuses
  each buffer for its own new value (JAX pairs donated inputs with outputs by position
  and shape: with grads first, the new params would land in m's buffer and XLA would add
  copies).
  """
  init: Callable[[Any], Any]
  update: Callable[..., Any]
  step: Callable[[Any, Any, Any], tuple[Any, Any]]  # (params, state, grads)


# The step's scalars, one (16,) float32 array per leaf (traced: a schedule, a vmapped λ or
# β₁ costs no recompilation): η_t, 1 − β₁ᵗ, 1 − β₂ᵗ, c_t·λ, β₁, 1 − β₁, β₂, 1 − β₂, ε, ε_root
_LR, _BC1, _BC2, _K, _B1, _1B1, _B2, _1B2, _EPS, _EPS_ROOT = range(10)
_H_SIZE = 16


def _kernel(h_ref, p_ref, g_ref, m_ref, v_ref, p_out, m_out, v_out, *, n: int,
            block_size: int, decay: bool) -> None:
  """One block of one leaf's n entries.

  The operations and their order are optax's (scale_by_adam, scale_by_learning_rate,
  then wdjax.decoupled and apply_updates). Loads and stores are masked to the leaf: Pallas'
  Triton lowering does not mask a partial last block by itself, and an unmasked one would
  read and write past the end of the buffers.
  """
  from jax.experimental import pallas as pl
  from jax.experimental.pallas import triton as pltriton

  inside = pl.program_id(0) * block_size + jnp.arange(block_size) < n
  load = lambda ref: pltriton.load(ref, mask=inside, other=0.0)  # noqa: E731
  g = load(g_ref)
  m = h_ref[_1B1] * g + h_ref[_B1] * load(m_ref)
  v = h_ref[_1B2] * (g * g) + h_ref[_B2] * load(v_ref)
  u = ((m / h_ref[_BC1]) / (jnp.sqrt(v / h_ref[_BC2] + h_ref[_EPS_ROOT]) + h_ref[_EPS])
       * -h_ref[_LR])
  p = load(p_ref)
  if decay:
    u = u - h_ref[_K] * p
  pltriton.store(p_out, p + u, mask=inside)
  pltriton.store(m_out, m, mask=inside)
  pltriton.store(v_out, v, mask=inside)


def _fused_leaf(h: jax.Array, p: jax.Array, g: jax.Array, m: jax.Array, v: jax.Array, *,
                interpret: bool, block_size: int, num_warps: int, decay: bool
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """p, m, v of one leaf after the step, by the Pallas kernel over its flattened entries."""
  from jax.experimental import pallas as pl  # Pallas is only needed where the kernel runs

  n = p.size
  spec = pl.BlockSpec((block_size,), lambda i: (i,))
  out = jax.ShapeDtypeStruct((n,), p.dtype)
  params = None
  if not interpret:
    from jax.experimental.pallas import triton as pltriton
    params = pltriton.CompilerParams(num_warps=num_warps, num_stages=1)
  call = pl.pallas_call(
      functools.partial(_kernel, n=n, block_size=block_size, decay=decay),
      out_shape=(out, out, out), grid=(pl.cdiv(n, block_size),),
      in_specs=[pl.BlockSpec((_H_SIZE,), lambda i: (0,)), spec, spec, spec, spec],
      out_specs=(spec, spec, spec),
      input_output_aliases={1: 0, 3: 1, 4: 2},  # p, m, v in place when the caller donates
      interpret=interpret, compiler_params=params, name="wdjax_fused_adamw")
  new = call(h, *(a.reshape(-1) for a in (p, g, m, v)))
  return tuple(a.reshape(p.shape) for a in new)


def _adam_state(state: Any) -> Any:
  """The ScaleByAdamState inside `wdjax.adamw`'s state (chain(chain(adam, lr), decay))."""
  inner = state[0][0]
  if not isinstance(inner, optax.ScaleByAdamState):
    raise TypeError("fused_adamw.step expects the state made by its own init (or by "
                    f"wdjax.adamw with the same arguments); got {type(inner).__name__} "
                    "where optax.ScaleByAdamState belongs.")
  return inner


def fused_adamw(learning_rate: optax.ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
                eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Any = None,
                weight_decay: optax.ScalarOrSchedule = 1e-4, mask: Any = _DEFAULT, *,
                nesterov: bool = False, scale_by: str = "lr",
                peak_learning_rate: float | None = None, kernel: str = "auto",
                block_size: int = 4096, num_warps: int = 8,
                min_kernel_size: int = 1 << 16) -> FusedOptimizer:
  """`wdjax.adamw` with a fused `step` that also updates the parameters (one GPU kernel).

  Arguments, positions and defaults are `wdjax.adamw`'s (so `optax.adamw`'s, except the
  default mask, `wdjax.masks.weights_only`); `init` and `update` are `wdjax.adamw`'s. The
  extra keyword-only arguments choose the kernel:

  Args:
    kernel: "auto" (Pallas on CUDA GPUs, XLA elsewhere: the choice is made when the step
      is compiled, per backend), "xla" (never the kernel: `update` + `apply_updates`) or
      "pallas" (the kernel for every leaf it takes, on any backend; off a GPU in Pallas'
      interpret mode, which is slow and meant for tests).
    block_size: entries of a leaf per kernel program (a power of 2).
    num_warps: warps per program (Triton).
    min_kernel_size: leaves with fewer entries take the XLA path (XLA can fuse many small
      loops into one launch; a kernel per small leaf would cost a launch each).

  The kernel takes the float32 leaves (params, grads, m and v all float32) of at least
  `min_kernel_size` entries; other leaves, and every leaf when `nesterov=True`, take the
  XLA path, which is `update` + `apply_updates` itself: only the speed differs.

  Returns:
    A `FusedOptimizer`: `init`, `update` (Optax) and `step(params, state, grads) ->
    (params, state)`; jit it with `donate_argnums=(0, 1)` to update in place.

  Example:
    >>> import jax, jax.numpy as jnp, optax, wdjax
    >>> opt = wdjax.kernels.fused_adamw(0.1, weight_decay=0.5, mask=None)
    >>> params = {"w": jnp.array([2.0])}
    >>> state = opt.init(params)
    >>> new, state = jax.jit(opt.step)(params, state, {"w": jnp.array([1.0])})
    >>> round(float(new["w"][0]), 4)  # 2 - 0.1·sign(g) - 0.1·0.5·2
    1.8
  """
  _validate.check_optax_order(fused_adamw, nesterov=nesterov, mu_dtype=mu_dtype, b1=b1, b2=b2)
  if kernel not in KERNELS:
    raise ValueError(f"kernel={kernel!r}: expected one of {KERNELS}.")
  for name, value in (("block_size", block_size), ("num_warps", num_warps)):
    if not isinstance(value, int) or value < 1 or value & (value - 1):
      raise ValueError(f"{name}={value!r}: the Triton kernel needs a power of 2 (e.g. "
                       "block_size=4096, num_warps=8).")
  tx = adamw(learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask,
             nesterov=nesterov, scale_by=scale_by, peak_learning_rate=peak_learning_rate)

  def plain_step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  def kernel_step(params, state, grads, *, interpret: bool):
    new_params, new_state = plain_step(params, state, grads)
    adam = _adam_state(state)
    p_leaves, treedef = jax.tree.flatten(params)
    gs, mus, nus = jax.tree.leaves(grads), jax.tree.leaves(adam.mu), jax.tree.leaves(adam.nu)
    take = [i for i, leaves in enumerate(zip(p_leaves, gs, mus, nus))
            if not nesterov and leaves[0].size >= min_kernel_size
            and all(a.dtype == jnp.float32 for a in leaves)]
    if not take:
      return new_params, new_state
    # The step's scalars, computed as optax computes them: the bias corrections at t + 1,
    # η_t at the schedule's own count, c_t·λ at the decay's
    count = optax.safe_increment(adam.count)
    lr_count = getattr(state[0][1], "count", adam.count)   # (a constant η has no state)
    lr = learning_rate(lr_count) if callable(learning_rate) else learning_rate
    decay_count = state[1].count
    decays = resolve_mask(mask, params, allow_empty=True)   # (init checked it)
    cs = decay_coefficients(learning_rate, scale_by, peak_learning_rate, params, decay_count)
    lams = leaf_values(weight_decay, params, decay_count, "strength")
    shared = [lr, 1 - b1 ** count, 1 - b2 ** count, 0.0, b1, 1 - b1, b2, 1 - b2, eps, eps_root]
    h = jnp.zeros(_H_SIZE, jnp.float32).at[:len(shared)].set(
        jnp.stack([jnp.asarray(x, jnp.float32) for x in shared]))
    out_p = jax.tree.leaves(new_params)
    out_m, out_v = jax.tree.leaves(new_state[0][0].mu), jax.tree.leaves(new_state[0][0].nu)
    for i in take:  # the plain results of these leaves are dropped, and XLA removes them
      k = jnp.asarray(cs[i] * lams[i], jnp.float32) if decays[i] else 0.0
      out_p[i], out_m[i], out_v[i] = _fused_leaf(
          h.at[_K].set(k), p_leaves[i], gs[i], mus[i], nus[i], interpret=interpret,
          block_size=block_size, num_warps=num_warps, decay=bool(decays[i]))
    adam_new = new_state[0][0]._replace(mu=jax.tree.unflatten(jax.tree.structure(adam.mu), out_m),
                                        nu=jax.tree.unflatten(jax.tree.structure(adam.nu), out_v))
    new_state = ((adam_new,) + tuple(new_state[0][1:]),) + tuple(new_state[1:])
    return jax.tree.unflatten(treedef, out_p), new_state

  def step(params, state, grads):
    """(new_params, new_state): `update` then `optax.apply_updates`, fused on a GPU."""
    if kernel == "xla":
      return plain_step(params, state, grads)
    if kernel == "pallas":
      interpret = jax.default_backend() != "gpu"
      return kernel_step(params, state, grads, interpret=interpret)
    # "auto": the branch is picked when the step is lowered, for the backend it runs on
    return jax.lax.platform_dependent(
        params, state, grads, cuda=functools.partial(kernel_step, interpret=False),
        default=plain_step)

  return FusedOptimizer(tx.init, tx.update, step)

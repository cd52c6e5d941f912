"""`wdjax.kernels.fused_adamw`: the fused step is `wdjax.adamw`'s update + apply_updates.

The reference is independent of the kernel: optax's own chain (`wdjax.adamw` is
`optax.adam` + `wdjax.decoupled`) followed by `optax.apply_updates`, jitted. The Pallas
kernel runs here in interpret mode (no GPU in CI); that it lowers to one Triton kernel per
large float32 leaf is checked by lowering the step for CUDA on this CPU machine.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wdjax
from wdjax.kernels import fused_adamw

# Leaf sizes: 1200 = 1 full block of 1024 + a partial one (the kernel's out-of-bounds
# masking); 700 < MIN (the XLA path); "bias" (the default mask's exclusion, no decay).
MIN, BLOCK = 1000, 1024
ON_GPU = jax.default_backend() == "gpu"  # where kernel="auto" takes the Pallas kernel


def _tree(seed: int, scale: float = 1.0) -> dict:
  rng = np.random.default_rng(seed)
  return {"dense": {"kernel": jnp.asarray(scale * rng.standard_normal((40, 30)), jnp.float32),
                    "bias": jnp.asarray(scale * rng.standard_normal(1200), jnp.float32)},
          "small": jnp.asarray(scale * rng.standard_normal((7, 100)), jnp.float32)}


def _reference(tx, params, grads, steps):
  @jax.jit
  def one(p, s, g):
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s
  p, s = params, tx.init(params)
  for g in grads[:steps]:
    p, s = one(p, s, g)
  return p, s


SCHED = optax.cosine_decay_schedule(1e-2, 50)
CONFIGS = {
    "scalar, default mask": dict(learning_rate=1e-2, weight_decay=0.1),
    "schedule, scale_by schedule": dict(learning_rate=SCHED, weight_decay=0.3, mask=None,
                                        scale_by="schedule", peak_learning_rate=1e-2),
    "schedule, scale_by lr": dict(learning_rate=SCHED, weight_decay=0.3, mask=None),
    "λ schedule, scale_by constant": dict(learning_rate=1e-2, scale_by="constant", mask=None,
                                          weight_decay=optax.linear_schedule(1e-2, 1e-3, 3)),
    "λ per group, eps_root": dict(learning_rate=3e-3, eps_root=1e-9, mask=None,
                                  weight_decay=wdjax.per_group({"kernel": 0.2}, default=0.05)),
    "β and ε as arrays": dict(learning_rate=1e-2, b1=jnp.array(0.8), b2=jnp.array(0.99),
                              eps=jnp.array(1e-6), weight_decay=0.1),
    # the XLA path for every leaf (the kernel has no Nesterov), or for the leaves whose m
    # is not float32: the same numbers
    "nesterov": dict(learning_rate=1e-2, weight_decay=0.1, nesterov=True),
    "mu_dtype bfloat16": dict(learning_rate=1e-2, weight_decay=0.1, mu_dtype=jnp.bfloat16),
}


@pytest.mark.parametrize("kernel", ["pallas", "auto", "xla"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_fused_step_is_adamw_update_then_apply(config, kernel):
  kw = CONFIGS[config]
  params = _tree(0)
  grads = [_tree(10 + t, scale=0.1) for t in range(3)]
  opt = fused_adamw(**kw, kernel=kernel, min_kernel_size=MIN, block_size=BLOCK)
  step = jax.jit(opt.step, donate_argnums=(0, 1))
  p, s = jax.tree.map(jnp.copy, params), opt.init(params)
  for g in grads:
    p, s = step(p, s, g)
  want_p, want_s = _reference(wdjax.adamw(**kw), params, grads, 3)
  assert jax.tree.structure(s) == jax.tree.structure(want_s)  # states interchangeable
  for got, want in zip(jax.tree.leaves((p, s)), jax.tree.leaves((want_p, want_s))):
    if kernel == "pallas" or (kernel == "auto" and ON_GPU):
      # the kernel's float32 expression (interpreted off a GPU, Triton's on one) against
      # XLA's fused loops of the same operations: a few ulps (p ~ 1, m ~ 0.1, v ~ 0.01).
      # On an H200 (2026-11-28) "auto" took the kernel: <= 2.4e-7 absolute, within this.
      np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)
    else:
      np.testing.assert_array_equal(got, want)  # "auto" off a GPU: the same XLA program


def test_fused_step_against_optax_adamw():
  """mask=None is optax.adamw; the kernel's step equals its update + apply_updates."""
  params, grads = _tree(1), [_tree(20 + t, scale=0.1) for t in range(2)]
  opt = fused_adamw(1e-2, weight_decay=0.5, mask=None, kernel="pallas", min_kernel_size=MIN,
                    block_size=BLOCK)
  p, s = params, opt.init(params)
  for g in grads:
    p, s = jax.jit(opt.step)(p, s, g)
  want, _ = _reference(optax.adamw(1e-2, weight_decay=0.5), params, grads, 2)
  for got, w in zip(jax.tree.leaves(p), jax.tree.leaves(want)):
    np.testing.assert_allclose(got, w, rtol=2e-6, atol=1e-7)


def test_other_dtypes_take_the_xla_path_with_the_same_numbers():
  params = jax.tree.map(lambda a: a.astype(jnp.bfloat16), _tree(2))
  grads = jax.tree.map(lambda a: a.astype(jnp.bfloat16), _tree(3, scale=0.1))
  opt = fused_adamw(1e-2, weight_decay=0.1, kernel="pallas", min_kernel_size=MIN,
                    block_size=BLOCK)
  p, s = jax.jit(opt.step)(params, opt.init(params), grads)
  want_p, want_s = _reference(wdjax.adamw(1e-2, weight_decay=0.1), params, [grads], 1)
  for got, want in zip(jax.tree.leaves((p, s)), jax.tree.leaves((want_p, want_s))):
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_init_and_update_are_wdjax_adamw():
  """A drop-in: init/update work in any Optax loop, as wdjax.adamw's."""
  params, g = _tree(4), _tree(5, scale=0.1)
  opt, tx = fused_adamw(1e-2, weight_decay=0.1), wdjax.adamw(1e-2, weight_decay=0.1)
  u1, _ = opt.update(g, opt.init(params), params)
  u2, _ = tx.update(g, tx.init(params), params)
  for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
    np.testing.assert_array_equal(a, b)


def test_cuda_lowering_has_one_triton_kernel_per_large_float32_leaf():
  """The "auto" step lowered for CUDA on this machine: Pallas' Triton lowering runs here
  (the PTX is built on the GPU); the CPU lowering of the same step has no kernel."""
  params, g = _tree(6), _tree(7, scale=0.1)
  opt = fused_adamw(1e-2, weight_decay=0.1, min_kernel_size=MIN, block_size=BLOCK)
  traced = jax.jit(opt.step, donate_argnums=(0, 1)).trace(params, opt.init(params), g)
  cuda = traced.lower(lowering_platforms=("cuda",)).as_text()
  assert cuda.count("xla.gpu.triton") == 2  # dense/kernel (1200) and dense/bias (1200)
  assert "xla.gpu.triton" not in traced.lower(lowering_platforms=("cpu",)).as_text()


def test_donated_buffers_are_updated_in_place():
  """(params, state, grads) in, (params, state) out: donation pairs each buffer with its
  own new value, so XLA needs no copy (grads first would pair params with m)."""
  params, g = _tree(8), _tree(9, scale=0.1)
  opt = fused_adamw(1e-2, weight_decay=0.1, kernel="xla")
  hlo = jax.jit(opt.step, donate_argnums=(0, 1)).lower(params, opt.init(params), g)
  assert " copy(" not in hlo.compile().as_text()


@pytest.mark.parametrize("kw, match", [
    (dict(kernel="triton"), "kernel='triton'"),
    (dict(block_size=1000), "power of 2"),
    (dict(num_warps=6), "num_warps=6"),
])
def test_bad_options_are_named(kw, match):
  with pytest.raises(ValueError, match=match):
    fused_adamw(1e-2, **kw)


def test_step_vmaps_over_weight_decay():
  """A sweep over λ (the library's vmapped sweeps): one compiled step for every λ, each
  run the same as stepping it alone; the kernel too (Pallas batches its grid)."""
  params, g = _tree(11), _tree(12, scale=0.1)
  lams = jnp.array([0.0, 0.1, 1.0])

  def run(lam, kernel):
    opt = fused_adamw(1e-2, weight_decay=lam, kernel=kernel, min_kernel_size=MIN,
                      block_size=BLOCK)
    p, s = params, opt.init(params)
    for _ in range(2):
      p, s = opt.step(p, s, g)
    return p

  for kernel in ("pallas", "auto"):
    swept = jax.jit(jax.vmap(lambda lam: run(lam, kernel)))(lams)
    for i, lam in enumerate(lams):
      alone = jax.jit(lambda: run(lam, "xla"))()
      for a, b in zip(jax.tree.leaves(swept), jax.tree.leaves(alone)):
        np.testing.assert_allclose(a[i], b, rtol=2e-6, atol=1e-7)


def test_triton_kernel_masks_every_block_load_and_store(monkeypatch, capfd):
  """Pallas' Triton lowering does not mask a partial last block by itself (an unmasked
  block of 1024 over a leaf of 1200 would read and write 848 entries past its end): the
  kernel's Triton IR, printed by pallas_call(debug=True), masks every block access."""
  from jax.experimental import pallas as pl
  from wdjax.kernels import adamw as ka
  call = pl.pallas_call
  monkeypatch.setattr(pl, "pallas_call", lambda *a, **k: call(*a, **dict(k, debug=True)))
  h, x = jnp.zeros(ka._H_SIZE), jnp.ones(1200)
  step = lambda *a: ka._fused_leaf(*a, interpret=False, block_size=1024, num_warps=4,
                                   decay=True)
  jax.jit(step).trace(h, x, x, x, x).lower(lowering_platforms=("cuda",))
  ir = capfd.readouterr().out
  blocks = [l for l in ir.splitlines() if ("tt.load" in l or "tt.store" in l) and "tensor<" in l]
  # p, g, m, v read and p, m, v written (the IR may be printed more than once)
  assert sum("tt.load" in l for l in blocks) >= 4 and sum("tt.store" in l for l in blocks) >= 3
  for line in blocks:   # a load: pointer, mask, other; a store: pointer, value, mask
    assert line.split(":")[0].split("tt.")[1].count("%") == 3, line


def test_state_hands_over_between_update_and_step():
  """Steps of `update` + `apply_updates` then fused steps (and back) = all of one kind."""
  params, gs = _tree(13), [_tree(14 + t, scale=0.1) for t in range(4)]
  opt = fused_adamw(1e-2, weight_decay=0.1, kernel="pallas", min_kernel_size=MIN,
                    block_size=BLOCK)
  tx = wdjax.adamw(1e-2, weight_decay=0.1)
  p, s = params, tx.init(params)
  for t, g in enumerate(gs):
    if t in (1, 2):
      p, s = jax.jit(opt.step)(p, s, g)
    else:
      u, s = jax.jit(tx.update)(g, s, p)
      p = optax.apply_updates(p, u)
  want_p, want_s = _reference(tx, params, gs, 4)
  for a, b in zip(jax.tree.leaves((p, s)), jax.tree.leaves((want_p, want_s))):
    np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7)

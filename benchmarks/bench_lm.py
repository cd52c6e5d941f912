"""Tokens per second of a language-model sweep: `wdjax.sweep.run` against hand-written JAX
and a PyTorch loop of the same model.

  python benchmarks/bench_lm.py [--quick] [--torch-path DIR]

The byte-level transformer of `wdjax.transformer` (2 layers, d = 32, 4 heads, context 32,
LayerNorm, untied head: 42,880 parameters) trained on the stdlib corpus "text" with AdamW
(η = 3e-3, decay on the kernels), batch 32, over a grid of G λ values:

1. `sweep.run(make_train_fn(...))`: the library path (one jit+vmap program over the grid);
2. a hand-written `jit(vmap(scan))`: the same model, loss, data order and `optax.adamw`,
   with none of the library (no hparam checks, no metrics but the final loss);
3. PyTorch (when importable; `--torch-path` adds a directory to sys.path): the same
   architecture in `torch.nn`, `torch.optim.AdamW`, one model after another (what a
   PyTorch user writes), on the CPU threads torch chooses.

Tokens/s counts every trained token of every grid point (G·steps·batch·context).
Compilation is excluded (each program runs once before timing). Target: the library path
within 1.2x of the hand-written one.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from wdjax import corpus, masks, optimizers, sweep, train, transformer
from _bench import record, torch_device, torch_sync

D, L, H, T, B, LR = 32, 2, 4, 32, 32, 3e-3


def library(ds, lams, epochs):
  fn = train.make_train_fn(transformer.factory(d_model=D, num_layers=L, num_heads=H, context=T),
                           ds, optimizer=optimizers.get("adamw", mask=masks.weights_only(
                               embeddings=False)),
                           epochs=epochs, batch_size=B, loss=transformer.lm_loss,
                           eval_train=False, report_mask=None)
  grid = sweep.grid(product={"learning_rate": [LR], "weight_decay": lams})
  return lambda: np.asarray(sweep.run(fn, grid, progress=False).metrics["train_loss"])


def handwritten(ds, lams, epochs):
  model = transformer.Transformer(d_model=D, num_layers=L, num_heads=H, context=T,
                                  rngs=nnx.Rngs(0))
  graphdef, _ = nnx.split(model, nnx.Param)
  mask = masks.weights_only(nnx.to_pure_dict(nnx.state(model, nnx.Param)), embeddings=False)
  x, y = ds.x_train, ds.y_train
  n = x.shape[0]
  nb = n // B

  def one(lam, key):
    k_init, k_ep = jax.random.split(key)
    params = nnx.to_pure_dict(nnx.state(transformer.Transformer(
        d_model=D, num_layers=L, num_heads=H, context=T, rngs=nnx.Rngs(k_init)), nnx.Param))
    tx = optax.adamw(LR, weight_decay=lam, mask=mask)

    def loss(p, xb, yb):
      return transformer.lm_loss(nnx.merge(graphdef, p)(xb), yb)

    def step(carry, idx):
      p, s = carry
      v, g = jax.value_and_grad(loss)(p, x[idx], y[idx])
      u, s = tx.update(g, s, p)
      return (optax.apply_updates(p, u), s), v

    def epoch(carry, k):
      idx = jax.random.permutation(k, n)[:nb * B].reshape(nb, B)
      carry, v = jax.lax.scan(step, carry, idx)
      return carry, jnp.mean(v)

    _, losses = jax.lax.scan(epoch, (params, tx.init(params)), jax.random.split(k_ep, epochs))
    return losses

  f = jax.jit(jax.vmap(one, in_axes=(0, None)))
  lam = jnp.asarray(lams, jnp.float32)
  return lambda: np.asarray(f(lam, jax.random.key(0)))


def pytorch(ds, lams, epochs):
  import torch  # noqa: PLC0415  (optional)
  from torch import nn  # noqa: PLC0415

  class Block(nn.Module):
    def __init__(self):
      super().__init__()
      self.norm1, self.norm2 = nn.LayerNorm(D), nn.LayerNorm(D)
      self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
      self.fc, self.out = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

    def forward(self, x):
      b, t, d = x.shape
      q, k, v = self.qkv(self.norm1(x)).split(d, -1)
      q, k, v = (a.view(b, t, H, d // H).transpose(1, 2) for a in (q, k, v))
      a = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
      x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
      return x + self.out(nn.functional.gelu(self.fc(self.norm2(x))))

  class GPT(nn.Module):
    def __init__(self):
      super().__init__()
      self.embed, self.pos = nn.Embedding(256, D), nn.Embedding(T, D)
      self.blocks = nn.ModuleList([Block() for _ in range(L)])
      self.norm_f, self.head = nn.LayerNorm(D), nn.Linear(D, 256, bias=False)

    def forward(self, x):
      h = self.embed(x) + self.pos(torch.arange(x.shape[1], device=x.device))
      for blk in self.blocks:
        h = blk(h)
      return self.head(self.norm_f(h))

  dev = torch_device()
  x = torch.as_tensor(np.array(ds.x_train), dtype=torch.long, device=dev)
  y = torch.as_tensor(np.array(ds.y_train), dtype=torch.long, device=dev)
  n = x.shape[0]
  nb = n // B

  def run():
    out = []
    for lam in lams:
      torch.manual_seed(0)
      m = GPT().to(dev)
      decay = [p for name, p in m.named_parameters() if p.dim() == 2 and "embed" not in name
               and "pos" not in name]
      rest = [p for name, p in m.named_parameters() if not any(p is q for q in decay)]
      opt = torch.optim.AdamW([{"params": decay, "weight_decay": float(lam)},
                               {"params": rest, "weight_decay": 0.0}], lr=LR)
      for _ in range(epochs):
        perm = torch.randperm(n, device=dev)[:nb * B].view(nb, B)
        for idx in perm:
          loss = nn.functional.cross_entropy(m(x[idx]).view(-1, 256), y[idx].view(-1))
          opt.zero_grad(set_to_none=True)
          loss.backward()
          opt.step()
      out.append(loss.item())
    torch_sync(dev)
    return np.asarray(out)

  return run, torch


def timed(fn, rounds):
  """(best of `rounds` calls, the first call: compilation included), in seconds."""
  t0 = time.perf_counter()
  fn()  # compile / warm up
  first = time.perf_counter() - t0
  best = math.inf
  for _ in range(rounds):
    t0 = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - t0)
  return best, first


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--quick", action="store_true", help="G = 4, 20k tokens, 1 round")
  ap.add_argument("--rounds", type=int, default=3)
  ap.add_argument("--torch-path", default=os.environ.get("WDJAX_TORCH_PATH"))
  args = ap.parse_args()
  if args.torch_path:
    sys.path.insert(0, args.torch_path)
  G, tokens, epochs = (4, 20_000, 1) if args.quick else (8, 60_000, 1)
  rounds = 1 if args.quick else args.rounds
  ds = corpus.lm_dataset(corpus.read("text"), T, max_tokens=tokens)
  lams = np.logspace(-2, 1, G)
  steps = epochs * (ds.x_train.shape[0] // B)
  trained = G * steps * B * T
  print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}; jax {jax.__version__} {jax.default_backend()}; "
        f"G = {G}, {steps} steps of {B}x{T} tokens")
  res, first_call = {}, {}
  for name, make in (("wdjax sweep.run", library),
                     ("hand-written jit(vmap(scan))", handwritten)):
    res[name], first_call[name] = timed(make(ds, lams, epochs), rounds)
  try:
    run, torch = pytorch(ds, lams, epochs)
    res[f"PyTorch {torch.__version__} loop on {torch_device()} "
        f"({torch.get_num_threads()} threads)"], _ = timed(run, rounds)
  except ImportError:
    print("PyTorch is not importable: no PyTorch row (pass --torch-path).")
  base = res["hand-written jit(vmap(scan))"]
  for name, t in res.items():
    print(f"  {name:45s} {t:8.2f} s  {trained / t:10.0f} tokens/s  {t / base:5.2f}x")
    record("lm", name, {"seconds": t, "tokens/s": trained / t, "vs_hand_written": t / base})
  print("  first call (compilation included): " + ", ".join(
      f"{k} {v:.2f} s" for k, v in first_call.items()))
  record("lm", "first call seconds", first_call)
  record("lm", "setup", {"G": G, "steps": steps, "tokens_trained": trained,
                         "backend": jax.default_backend()})


if __name__ == "__main__":
  main()

"""Where the CPU AdamW step loses to `torch.optim.AdamW(fused=True)`: cores or passes.

    .venv/bin/python benchmarks/bench_adamw_cores.py [--size 10000000] [--steps 40]

A CPU benchmark (on a GPU/TPU host it says so and stops). One float32 buffer of `size`
parameters, in one process each for "all cores" and "one core" (the second pinned with `os.sched_setaffinity` before JAX and torch start):

- `optax.adamw` and `wdjax.adamw` (their jitted update + `apply_updates`, buffers donated),
- the same AdamW step written by hand as one jitted function (the least XLA can be given),
- `torch.optim.AdamW(fused=True)` on the same sizes.

It prints the median step, the bytes each step must move (p, g, m, v read and p, m, v
written: 7 passes of the buffer) over the time, and, from the compiled HLO of the
hand-written step, how many loops XLA emits and how it partitions them across threads
(`outer_dimension_partitions`, XLA:CPU's parallel task assignment). The ratios to torch
are taken within a process (same cores, same moment).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np


def measure(size: int, steps: int) -> dict:
  import jax
  import jax.numpy as jnp
  import optax

  import wdjax

  def hand_step(p, m, v, g):
    b1, b2, lr, wd, eps = 0.9, 0.999, 1e-3, 1e-2, 1e-8
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    return p - lr * (m / (jnp.sqrt(v) + eps) + wd * p), m, v

  def timed(step, state):
    for _ in range(3):
      state = step(*state)
    jax.block_until_ready(state)
    ts = []
    for _ in range(steps):
      t = time.perf_counter()
      state = step(*state)
      jax.block_until_ready(state)
      ts.append(time.perf_counter() - t)
    return float(np.median(ts))

  g = jnp.full(size, 0.1, jnp.float32)
  out = {}
  hand = jax.jit(hand_step, donate_argnums=(0, 1, 2))
  out["hand-written step"] = timed(lambda p, m, v: hand(p, m, v, g),
                                   (jnp.ones(size), jnp.zeros(size), jnp.zeros(size)))
  hlo = hand.lower(jnp.ones(size), jnp.zeros(size), jnp.zeros(size), g).compile().as_text()
  loops = [line for line in hlo.splitlines() if "kind=kLoop" in line and "fusion(" in line]
  parts = sorted({m for line in loops
                  for m in re.findall(r'"outer_dimension_partitions":\[([^\]]*)\]', line)})

  for name, tx in (("optax.adamw", optax.adamw(1e-3, weight_decay=1e-2)),
                   ("wdjax.adamw", wdjax.adamw(1e-3, weight_decay=1e-2))):
    def step(p, s, g, tx=tx):
      u, s = tx.update(g, s, p)
      return optax.apply_updates(p, u), s
    jstep = jax.jit(step, donate_argnums=(0, 1))
    p = jnp.ones(size)
    out[name] = timed(lambda p, s, jstep=jstep: jstep(p, s, g), (p, tx.init(p)))

  try:
    import torch
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    tp = torch.nn.Parameter(torch.ones(size))
    tp.grad = torch.full((size,), 0.1)
    opt = torch.optim.AdamW([tp], lr=1e-3, weight_decay=1e-2, fused=True)
    for _ in range(3):
      opt.step()
    ts = []
    for _ in range(steps):
      t = time.perf_counter()
      opt.step()
      ts.append(time.perf_counter() - t)
    out["torch AdamW(fused=True)"] = float(np.median(ts))
  except ImportError:
    pass
  return dict(times=out, loops=len(loops), partitions=parts,
              cores=len(os.sched_getaffinity(0)))


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--size", type=int, default=10_000_000)
  ap.add_argument("--steps", type=int, default=40)
  ap.add_argument("--child", choices=("all", "one"), help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.child:
    if args.child == "one":
      os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(json.dumps(measure(args.size, args.steps)))
    return
  import jax
  if jax.default_backend() != "cpu":
    print(f"bench_adamw_cores.py compares CPU cores; JAX runs on {jax.default_backend()}: "
          "skipped (bench_core.py times the accelerator's step)")
    return
  bytes_moved = 7 * 4 * args.size
  print(f"AdamW step on one float32 buffer of {args.size:,} parameters; 7 passes = "
        f"{bytes_moved / 1e6:.0f} MB per step")
  for child in ("all", "one"):
    run = subprocess.run([sys.executable, __file__, "--child", child, "--size", str(args.size),
                          "--steps", str(args.steps)], capture_output=True, text=True,
                         check=True)
    r = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"\n{r['cores']} core(s): XLA emits {r['loops']} loops for the hand-written step, "
          f"outer_dimension_partitions {r['partitions']}")
    torch_t = r["times"].get("torch AdamW(fused=True)")
    for name, t in r["times"].items():
      ratio = f"{t / torch_t:5.2f}x torch" if torch_t else ""
      print(f"  {name:28s} {t * 1e3:7.2f} ms  {bytes_moved / t / 1e9:6.1f} GB/s (7 passes)  "
            f"{ratio}")


if __name__ == "__main__":
  main()

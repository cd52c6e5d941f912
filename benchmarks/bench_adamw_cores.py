"""Where the CPU AdamW step loses to `torch.optim.AdamW(fused=True)`: cores or passes.

    .venv/bin/python benchmarks/bench_adamw_cores.py [--size 10000000] [--steps 40]

A CPU benchmark (on a GPU/TPU host it says so and stops). One float32 buffer of `size`
parameters, in one process each for "all cores" and "one core" (the second pinned with
`os.sched_setaffinity` before JAX and torch start):

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

import numpy as np


def measure(size: int, steps: int) -> dict:
  # bench_core's cases (jitted update + apply_updates with donation; torch's AdamW) on one
  # buffer instead of its pytree; imported here, after the "one core" child has pinned itself
  import jax
  import jax.numpy as jnp
  import optax

  import bench_core as bc
  import wdjax

  def hand_step(p, m, v, g):
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g * g
    return p - bc.LR * (m / (jnp.sqrt(v) + 1e-8) + bc.WD * p), m, v

  p, g = np.ones(size, np.float32), np.full(size, 0.1, np.float32)
  hand = jax.jit(hand_step, donate_argnums=(0, 1, 2))
  state = [jnp.asarray(p), jnp.zeros(size), jnp.zeros(size)]
  jg = jnp.asarray(g)

  def hand_once():
    state[:] = hand(*state, jg)
    jax.block_until_ready(state)

  hand_once()  # compile
  makers = {"hand-written step": lambda: bc.Case("hand-written step", "adamw",
                                                 bc.ADAMW_PASSES, hand_once)}
  for name, tx in (("optax.adamw", optax.adamw(bc.LR, weight_decay=bc.WD)),
                   ("wdjax.adamw", wdjax.adamw(bc.LR, weight_decay=bc.WD))):
    makers[name] = lambda name=name, tx=tx: bc.jax_case(name, "adamw", bc.ADAMW_PASSES, tx,
                                                        jg, p)
  makers["torch"] = lambda: (bc.torch_cases({"p": p}, {"p": g}, kinds=("fused",))[0] or [None])[0]
  times = {}
  for make in makers.values():   # one at a time, each case's buffers freed before the next
    case = make()
    if case is not None:
      for _ in range(3):         # warm-up
        case.step()
      case.round(steps)
      times[case.name] = case.best
    del case
  hlo = hand.lower(*state, jg).compile().as_text()
  loops = [line for line in hlo.splitlines() if "kind=kLoop" in line and "fusion(" in line]
  parts = sorted({m for line in loops
                  for m in re.findall(r'"outer_dimension_partitions":\[([^\]]*)\]', line)})
  return dict(times=times, loops=len(loops), partitions=parts,
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
    torch_t = r["times"].get("torch.optim.AdamW(fused=True)")
    for name, t in r["times"].items():
      ratio = f"{t / torch_t:5.2f}x torch" if torch_t else ""
      print(f"  {name:28s} {t * 1e3:7.2f} ms  {bytes_moved / t / 1e9:6.1f} GB/s (7 passes)  "
            f"{ratio}")


if __name__ == "__main__":
  main()

"""The cost of recording training dynamics (`make_train_fn(track=...)`) in a sweep.

  python benchmarks/bench_track.py [--quick]

The digits MLP sweep of bench_sweep.py (64-128-10, AdamW with decay on the kernels, batch
64, lr 1e-3, 32 λ values, 50 epochs) run by `wdjax.sweep.run` without tracking, with the
default set (`wdjax.tracking.DEFAULT`: weight norm, angular and relative update of each
kernel) every step, once per epoch (the default interval: recorded outside the step loop)
and every 10 steps (a branch in the loop), and with the spectra (a full SVD) every 10
steps.
The programs are called in turn (best of several rounds), so load from other processes
hits them alike; the ratio to the untracked sweep is the overhead. Target: <= 1.10 with
the default set.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from wdjax import data, models, sweep, tracking, train
from _bench import record


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--quick", action="store_true", help="8 λ values, 5 epochs")
  ap.add_argument("--rounds", type=int, default=5)
  args = ap.parse_args()
  lams, epochs = (np.logspace(-4, 0, 8), 5) if args.quick else (np.logspace(-4, 0, 32), 50)
  ds = data.sklearn_dataset("digits", 0)
  model = models.for_dataset("mlp", ds, widths=(128,))
  grid = sweep.grid(product={"weight_decay": lams, "learning_rate": [1e-3]})
  variants = {
      "no tracking": {},
      "default, every step": {"track": tracking.DEFAULT, "track_every": 1},
      "default, once per epoch (default)": {"track": tracking.DEFAULT},
      "default, every 10 steps": {"track": tracking.DEFAULT, "track_every": 10},
      "spectra, every 10 steps": {"track": ("spectral_norm", "stable_rank", "effective_rank"),
                                  "track_every": 10},
  }
  fns = {k: train.make_train_fn(model, ds, optimizer="adamw", epochs=epochs, batch_size=64,
                                eval_train=False, **kw) for k, kw in variants.items()}
  runs = {k: (lambda f=f: sweep.run(f, grid, progress=False)) for k, f in fns.items()}
  first = {}
  for k, run in runs.items():
    t = time.perf_counter()
    run()
    first[k] = time.perf_counter() - t
  best = {k: float("inf") for k in runs}
  for _ in range(args.rounds):
    for k, run in runs.items():
      t = time.perf_counter()
      run()
      best[k] = min(best[k], time.perf_counter() - t)
  print(f"machine: {platform.processor() or platform.machine()}, {len(lams)} λ x {epochs} epochs")
  print(f"{'variant':34s} {'first call (s)':>15s} {'best (s)':>9s} {'ratio':>6s}")
  for k in runs:
    print(f"{k:34s} {first[k]:15.2f} {best[k]:9.3f} {best[k] / best['no tracking']:6.2f}")
    record("track", k, {"first_call_s": first[k], "best_s": best[k],
                        "vs_no_tracking": best[k] / best["no tracking"]})


if __name__ == "__main__":
  main()

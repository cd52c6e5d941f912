"""Runs one small sweep and writes its metrics to an .npz: the subprocess side of
tests/test_distributed.py (several fake CPU devices, or one process of a jax.distributed run).

  python tests/sweep_worker.py OUT.npz [--devices N] [--also-one-device]
  python tests/sweep_worker.py OUT.npz --coordinator 127.0.0.1:PORT --num-processes 2 --process-id I

XLA_FLAGS must be set before JAX is imported, hence the flag handling at the top.
"""

import argparse
import os
import sys


def main() -> int:
  parser = argparse.ArgumentParser()
  parser.add_argument("out")
  parser.add_argument("--devices", type=int, default=1, help="fake CPU devices in this process")
  parser.add_argument("--also-one-device", action="store_true",
                      help="also run on the first device only, into OUT with suffix .one.npz")
  parser.add_argument("--coordinator", default=None)
  parser.add_argument("--num-processes", type=int, default=1)
  parser.add_argument("--process-id", type=int, default=0)
  args = parser.parse_args()
  # XLA reads the flag when JAX initializes its backend: set it before importing jax.
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + f" --xla_force_host_platform_device_count={args.devices}")
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  import jax

  if args.coordinator:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=args.coordinator,
                               num_processes=args.num_processes, process_id=args.process_id,
                               initialization_timeout=60)
  import numpy as np

  from wdjax import data, models, sweep, train

  ds = data.sklearn_dataset("digits", seed=0)
  ds = ds._replace(x_train=ds.x_train[:96], y_train=ds.y_train[:96], x_val=ds.x_val[:48],
                   y_val=ds.y_val[:48])
  fn = train.make_train_fn(models.for_dataset("mlp", ds, widths=(8,)), ds, optimizer="adamw",
                           epochs=3, batch_size=32, return_params=True)
  g = sweep.grid(product={"weight_decay": [0.0, 0.1, 1.0], "seed": [0, 1, 2]},
                 zip={"learning_rate": [1e-2]})
  # Without a "seed" axis every run shares one key, passed unbatched and replicated.
  g_shared = sweep.grid(weight_decay=[0.0, 0.1, 1.0, 3.0, 10.0], learning_rate=[1e-2])
  runs = [(args.out, jax.devices())]
  if args.also_one_device:
    runs.append((args.out[:-len(".npz")] + ".one.npz", jax.devices()[:1]))
  for path, devices in runs:
    res = sweep.run(fn, g, chunk_size=4, devices=devices, progress=False)
    out = {f"m/{k}": v for k, v in res.metrics.items()}
    out["p/kernel0"] = res.params["layers"][0]["kernel"]
    shared = sweep.run(fn, g_shared, chunk_size=4, devices=devices, progress=False)
    out.update({f"m/shared_{k}": v for k, v in shared.metrics.items()})
    out["n_devices"] = np.array(len(devices))
    out["process_count"] = np.array(jax.process_count())
    out["diverged"] = res.diverged
    np.savez(path, **out)
  if args.coordinator:
    jax.distributed.shutdown()
  return 0


if __name__ == "__main__":
  sys.exit(main())

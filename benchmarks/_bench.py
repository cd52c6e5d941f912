"""Helpers shared by the benchmark scripts: the JSON of figures and the torch device.

`record(bench, key, value)` adds one figure to the JSON file named by the environment
variable `WDJAX_BENCH_JSON` (nothing happens when it is unset), as
`{bench: {key: value}}`; `benchmarks/gpu.sh` sets it so that one run of every benchmark
leaves one file of figures. Each call rewrites the file, so a benchmark that dies midway
keeps what it had measured.

`torch_device()` is where the PyTorch side of a comparison runs: on the GPU when JAX runs
on one and torch sees one (same card for both sides, with torch's float32 matmuls in TF32
as XLA's are by default there), else on the CPU. `WDJAX_TORCH_DEVICE` overrides it.
"""

from __future__ import annotations

import json
import os
from typing import Any


def record(bench: str, key: str, value: Any) -> None:
  path = os.environ.get("WDJAX_BENCH_JSON")
  if not path:
    return
  try:
    with open(path) as f:
      figures = json.load(f)
  except (OSError, ValueError):
    figures = {}
  figures.setdefault(bench, {})[key] = value
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    json.dump(figures, f, indent=1, default=float)
  os.replace(tmp, path)


def torch_device() -> str:
  import jax
  import torch
  dev = os.environ.get("WDJAX_TORCH_DEVICE") or (
      "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu")
  if dev.startswith("cuda"):
    # XLA's default float32 matmul on a GPU is TF32; torch's is full float32 unless told.
    # The same arithmetic on both sides (until 2026-11-28's run U torch had full float32).
    torch.set_float32_matmul_precision("high")
  return dev


def torch_sync(device: str) -> None:
  """Waits for the queued torch work (a no-op on the CPU, where torch runs eagerly)."""
  if device.startswith("cuda"):
    import torch
    torch.cuda.synchronize()

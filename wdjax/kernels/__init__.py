"""Hand-written kernels for the steps XLA leaves slow (Pallas, on GPUs).

Each kernel stands behind a function with the same arguments and numbers as its plain
wdjax counterpart, and falls back to that counterpart wherever the kernel does not apply
(another backend, another dtype, a leaf too small to be worth a launch), so that code
written against it runs everywhere. `fused_adamw`: the whole AdamW step, parameters
included, as one pass over memory per leaf.
"""

from wdjax.kernels.adamw import FusedOptimizer, fused_adamw

__all__ = ("FusedOptimizer", "fused_adamw")

"""Experiments: each kind is the code behind one or more configs in `experiments/*.toml`.

Each module here runs one experiment (it is named after it) and registers its `Kind` in
`wdjax.experiments.registry` (the bottom of this package; see `Kind` there): a `[params]`
dataclass, the checks its `[expected]` table may bound (each against an independent
reference or a structural fact, never a stored output), `run(cfg, ctx) -> Outcome` and
`plot(cfg, metrics, values, out_dir) -> [png paths]`. `load(path)` reads a config with
the kinds' own tables validated; `wdjax.runner.run(cfg)` runs it into a run directory.

| kind                  | reproduces                                                       |
|-----------------------|------------------------------------------------------------------|
| d2l_weight_decay      | D2L 3.7: λ=0 vs λ=3, loss vs λ over seeds, λ chosen on validation |
| bias_penalty          | should the bias be penalized (mask with/without the bias)        |
| l1_vs_l2              | sparsity, proximal vs subgradient L1, lasso path vs sklearn      |
| coupled_vs_decoupled  | Adam+L2 vs AdamW ("lr", "schedule") lr x wd grids (L&H fig. 2)   |
| bayesian              | MAP under Gaussian / Laplace priors = ridge / lasso              |
| matrices              | Frobenius = L2 on a kernel; the nuclear prox gives low rank      |
| tune_lambda           | λ by hypergradient search vs the grid's best (D2L, digits, lasso) |
| cautious_vs_adamw     | cautious weight decay vs AdamW on the digits MLP, over seeds     |
| timescale             | Wang & Aitchison's fixed-τ_epoch rule: best λ ∝ 1/N              |
| rotational_equilibrium| measured angular update and norm vs the predicted equilibria     |
| l2_vs_wd_dynamics     | coupled L2 = decoupled decay in equilibrium under SGD, not Adam  |
| implicit_bound        | AdamW and Lion drive λ‖θ‖∞ to at most 1                          |
| lm_decay_rules        | decay rules on a small transformer LM: bounds, norms, seed spread |
| width_scaling         | does the best λ transfer across width (standard vs μP rule)?     |
| finetune_toward_init  | fine-tuning with AdamW vs L2-SP vs SPD: distance and forgetting  |

Any other module dropped into this package is imported too, and registers its own kinds.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from wdjax.experiments.registry import IMPORT_ERRORS
from wdjax.experiments.registry import KINDS
from wdjax.experiments.registry import Context
from wdjax.experiments.registry import Kind
from wdjax.experiments.registry import Outcome
from wdjax.experiments.registry import from_dict
from wdjax.experiments.registry import from_resolved
from wdjax.experiments.registry import load
from wdjax.experiments.registry import register
from wdjax.experiments.registry import shrink

# Importing the kinds registers them: those of this package explicitly (an error there
# is a bug to see at once), then any other module dropped into wdjax/experiments/, whose
# import error is kept and reported when a config asks for its kind.
from wdjax.experiments import bayesian  # noqa: F401
from wdjax.experiments import bias_penalty  # noqa: F401
from wdjax.experiments import cautious_vs_adamw  # noqa: F401
from wdjax.experiments import coupled_vs_decoupled  # noqa: F401
from wdjax.experiments import d2l_weight_decay  # noqa: F401
from wdjax.experiments import finetune_toward_init  # noqa: F401
from wdjax.experiments import implicit_bound  # noqa: F401
from wdjax.experiments import l1_vs_l2  # noqa: F401
from wdjax.experiments import l2_vs_wd_dynamics  # noqa: F401
from wdjax.experiments import lm_decay_rules  # noqa: F401
from wdjax.experiments import matrices  # noqa: F401
from wdjax.experiments import rotational_equilibrium  # noqa: F401
from wdjax.experiments import timescale  # noqa: F401
from wdjax.experiments import tune_lambda  # noqa: F401
from wdjax.experiments import width_scaling  # noqa: F401

__all__ = (
    "IMPORT_ERRORS",
    "KINDS",
    "Context",
    "Kind",
    "Outcome",
    "from_dict",
    "from_resolved",
    "load",
    "register",
    "shrink",
)


def _discover() -> None:
  for mod in pkgutil.iter_modules(__path__):
    if mod.name.startswith("_") or f"{__name__}.{mod.name}" in sys.modules:
      continue
    try:
      importlib.import_module(f"{__name__}.{mod.name}")
    except Exception as e:  # noqa: BLE001 - kept, shown when the kind is asked for
      IMPORT_ERRORS[mod.name] = f"{type(e).__name__}: {e}"


_discover()

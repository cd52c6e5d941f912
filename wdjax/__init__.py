"""wdjax: weight decay and regularization for JAX, as composable Optax transformations.

Layout (each layer imports only from layers below it; `tests/test_imports.py` checks it):
`penalties` (R(w) values) and `prox` (prox operators) are pure functions; `masks` chooses
the leaves; `transforms` puts a penalty into an Optax update (coupled, decoupled,
proximal); `aliases` holds the presets and `variants` the recent decay rules;
`leafwise` gives λ per leaf or per group; `modern` composes Lion, Muon and schedule-free
AdamW with wdjax's decay (and `chain` warns about a double decay); `optimizers` is the one
registry of named optimizers. `models`, `data`, `train` and
`sweep` run vmapped hyperparameter sweeps; `path` computes full-batch regularization paths
and `tune` chooses λ by gradient; `config`, `experiments`, `runner`, `report` and `cli`
reproduce the published results from `experiments/*.toml`.

`import wdjax` loads only the transforms and what they need (jax, optax): the modules that
bring in flax, scikit-learn or matplotlib are imported when first used (`wdjax.train`).
"""

import importlib as _importlib

from wdjax import dynamics
from wdjax import masks
from wdjax import optimizers
from wdjax import penalties
from wdjax import prox
from wdjax import variants
from wdjax.aliases import adam_l2
from wdjax.aliases import adamw
from wdjax.aliases import proximal_adam
from wdjax.aliases import proximal_sgd
from wdjax.aliases import sgd_l2
from wdjax.aliases import sgdw
from wdjax.leafwise import per_group
from wdjax.modern import chain
from wdjax.modern import lion
from wdjax.modern import muon
from wdjax.modern import schedule_free_adamw
from wdjax.transforms import coupled
from wdjax.transforms import decoupled
from wdjax.transforms import proximal
from wdjax.variants import adamc
from wdjax.variants import adams
from wdjax.variants import cautious
from wdjax.variants import cautious_adamw
from wdjax.variants import corrected

__version__ = "0.1.0"

# Submodules with heavy dependencies (flax, scikit-learn, matplotlib), loaded on first use.
_LAZY = ("config", "data", "dynamics_plots", "experiments", "models", "path", "plots",
         "report", "runner", "sweep", "tracking", "train", "tune")


def __getattr__(name: str):
  if name in _LAZY:
    return _importlib.import_module(f"wdjax.{name}")
  raise AttributeError(f"module 'wdjax' has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(_LAZY))


__all__ = (
    "adam_l2",
    "adamc",
    "adams",
    "adamw",
    "cautious",
    "cautious_adamw",
    "chain",
    "corrected",
    "coupled",
    "data",
    "decoupled",
    "lion",
    "masks",
    "models",
    "muon",
    "optimizers",
    "path",
    "penalties",
    "per_group",
    "prox",
    "proximal",
    "proximal_adam",
    "proximal_sgd",
    "schedule_free_adamw",
    "sgd_l2",
    "sgdw",
    "sweep",
    "tracking",
    "train",
    "tune",
    "variants",
)

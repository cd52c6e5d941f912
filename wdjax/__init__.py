"""wdjax: weight decay and regularization for JAX, as composable Optax transformations.

Layout (each layer imports only from layers below it; `tests/test_imports.py` checks it):
`penalties` (R(w) values) and `prox` (prox operators) are pure functions; `masks` chooses
the leaves; `transforms` puts a penalty into an Optax update (coupled, decoupled,
proximal); `aliases` holds the presets and `variants` the recent decay rules;
`leafwise` gives λ per leaf or per group; `modern` composes Lion, Muon and schedule-free
AdamW with wdjax's decay (and `chain` warns about a double decay); `optimizers` is the one
registry of named optimizers; `kernels` holds hand-written (Pallas) kernels behind the
same arguments as a preset (`kernels.fused_adamw`). `models`, `data`, `train` and
`sweep` run vmapped hyperparameter sweeps; `path` computes full-batch regularization paths
and `tune` chooses λ by gradient; `config`, `experiments`, `runner`, `report` and `cli`
reproduce the published results from `experiments/*.toml`.

`import wdjax` loads only the transforms and what they need (jax, optax): the modules that
bring in flax, scikit-learn or matplotlib are imported when first used (`wdjax.train`).
"""

import importlib as _importlib
import os as _os


def _check_environment() -> None:
  # JAX reads JAX_NUM_CPU_DEVICES when it is imported and fails deep inside; say which
  # variable is wrong and how to fix it before importing it.
  value = _os.environ.get("JAX_NUM_CPU_DEVICES")
  if value is None or value.strip().isdigit():
    return
  message = (f"JAX_NUM_CPU_DEVICES={value!r} is not a non-negative integer; set it to the "
             "number of CPU devices (e.g. JAX_NUM_CPU_DEVICES=2) or unset it.")
  import sys
  if _os.path.basename(sys.argv[0]) == "wdjax" or sys.argv[:1] == ["-m"]:
    # the `wdjax` command imports this package before its own error handling runs
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
  raise ValueError(message)


_check_environment()

from wdjax import constrained
from wdjax import dynamics
from wdjax import masks
from wdjax import optimizers
from wdjax import penalties
from wdjax import prox
from wdjax import reference
from wdjax import scaling
from wdjax import variants
from wdjax.aliases import adam_l2
from wdjax.aliases import adamw
from wdjax.aliases import proximal_adam
from wdjax.aliases import proximal_sgd
from wdjax.aliases import sgd_l2
from wdjax.aliases import sgdw
from wdjax.constrained import adamcpr
from wdjax.constrained import cpr
from wdjax.leafwise import per_group
from wdjax.modern import chain
from wdjax.modern import lion
from wdjax.modern import muon
from wdjax.modern import schedule_free_adamw
from wdjax.reference import adam_spd
from wdjax.reference import adamw_sp
from wdjax.reference import selective_projection
from wdjax.reference import toward_reference
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
_LAZY = ("config", "data", "dynamics_plots", "experiments", "kernels", "models", "path", "plots",
         "report", "runner", "sweep", "tracking", "train", "tune")


def __getattr__(name: str):
  if name in _LAZY:
    return _importlib.import_module(f"wdjax.{name}")
  raise AttributeError(f"module 'wdjax' has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(_LAZY))


__all__ = (
    "adam_l2",
    "adam_spd",
    "adamc",
    "adamcpr",
    "adams",
    "adamw",
    "adamw_sp",
    "cautious",
    "cautious_adamw",
    "chain",
    "constrained",
    "corrected",
    "coupled",
    "cpr",
    "data",
    "decoupled",
    "kernels",
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
    "reference",
    "scaling",
    "schedule_free_adamw",
    "selective_projection",
    "sgd_l2",
    "sgdw",
    "sweep",
    "toward_reference",
    "tracking",
    "train",
    "tune",
    "variants",
)

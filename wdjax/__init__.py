"""wdjax: weight decay and regularization for JAX, as composable Optax transformations.

Layout: `penalties` (R(w) values) and `prox` (prox operators) are pure functions;
`transforms` puts them into Optax updates (coupled, decoupled, proximal), `aliases` holds
the presets and `variants` the recent decay rules; `masks` chooses the leaves. `models`,
`data`, `train` and `sweep` run vmapped hyperparameter sweeps; `path` computes full-batch
regularization paths and `tune` chooses λ by gradient; `config`, `report`, `experiments` and
`cli` reproduce the published results from `experiments/*.toml`.
"""

from wdjax import data
from wdjax import masks
from wdjax import models
from wdjax import path
from wdjax import penalties
from wdjax import prox
from wdjax import sweep
from wdjax import train
from wdjax import tune
from wdjax import variants
from wdjax.aliases import adam_l2
from wdjax.aliases import adamw
from wdjax.aliases import proximal_adam
from wdjax.aliases import proximal_sgd
from wdjax.aliases import sgd_l2
from wdjax.aliases import sgdw
from wdjax.transforms import coupled
from wdjax.transforms import decoupled
from wdjax.transforms import proximal
from wdjax.variants import adamc
from wdjax.variants import adams
from wdjax.variants import cautious
from wdjax.variants import corrected

__version__ = "0.1.0"

__all__ = (
    "adam_l2",
    "adamc",
    "adams",
    "adamw",
    "cautious",
    "corrected",
    "coupled",
    "data",
    "decoupled",
    "masks",
    "models",
    "path",
    "penalties",
    "prox",
    "proximal",
    "proximal_adam",
    "proximal_sgd",
    "sgd_l2",
    "sgdw",
    "sweep",
    "train",
    "tune",
    "variants",
)

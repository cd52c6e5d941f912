"""wdjax: weight decay and regularization for JAX, as composable Optax transformations."""

from wdjax import masks
from wdjax import penalties
from wdjax import prox
from wdjax.aliases import adam_l2
from wdjax.aliases import adamw
from wdjax.aliases import proximal_adam
from wdjax.aliases import proximal_sgd
from wdjax.aliases import sgd_l2
from wdjax.aliases import sgdw
from wdjax.transforms import coupled
from wdjax.transforms import decoupled
from wdjax.transforms import proximal

__version__ = "0.1.0"

__all__ = (
    "adam_l2",
    "adamw",
    "coupled",
    "decoupled",
    "masks",
    "penalties",
    "prox",
    "proximal",
    "proximal_adam",
    "proximal_sgd",
    "sgd_l2",
    "sgdw",
)

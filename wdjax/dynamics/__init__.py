"""Training dynamics under weight decay: norms, rotations, their equilibria, spectra.

Pure functions of one leaf's weights before and after a step (and optionally the update
itself), usable eagerly, under `jax.jit`/`jax.vmap`/`lax.scan`, and over pytrees through
`per_leaf`. In networks with normalization, weight decay does not shrink the function: it
sets an equilibrium weight norm, and with it the effective learning rate and the angle by
which each step rotates a neuron's weights (Kosson et al. 2024). These are the quantities
papers report; the predictions are `equilibrium_angle` and `equilibrium_norm`.

Neurons. `neuron_axis=None` treats the whole leaf as one vector (one number per leaf);
`neuron_axis=k` gives one number per index along axis k, reducing over all other axes.
A Flax kernel is (in, out) for `Dense` and (kh, kw, in, out) for `Conv`, so a neuron's
weight vector is a column: `neuron_axis=-1` (its fan-in C is the product of the other
axes). A PyTorch `Linear` weight is (out, in): `neuron_axis=0`. A 1-D leaf with
`neuron_axis=-1` gives one "neuron" per element.

Symbols: w = weights before the step, Δ = update, w' = w + Δ; η the learning rate, λ the
weight decay and s the decay per step (w ← (1 − s)w + ...): s = ηλ for the optax/PyTorch
convention (`scale_by="lr"`, c_t = η) and for coupled L2, s = λ for `scale_by="constant"`
(also `wdjax.sgdw`'s default c_t = s_t at a constant learning rate, where s_t = 1).
Quantities are computed in at least float32 (bf16 leaves are upcast).

| function                   | value                                                     |
|----------------------------|-----------------------------------------------------------|
| weight_norm                | ‖w‖                                                       |
| update_norm                | ‖Δ‖                                                       |
| relative_update            | ‖Δ‖ / ‖w‖                                                 |
| angular_update             | ∠(w, w') = arccos(⟨w, w'⟩ / (‖w‖‖w'‖)), computed by atan2 |
| radial_tangential          | (⟨Δ, ŵ⟩, ‖Δ − ⟨Δ, ŵ⟩ŵ‖), ŵ = w/‖w‖                        |
| effective_learning_rate    | η/‖w‖² (SGD) or η/‖w‖ (Adam-type)                         |
| timescale                  | τ_iter = 1/s, τ_epoch = τ_iter·B/N                        |
| equilibrium_angle, _norm   | predicted θ* and ‖w*‖ (AdamW, SGD + L2, SGDW, Lion)       |
| spectral_norm, stable_rank | σ_max, ‖W‖_F²/‖W‖₂²                                       |
| effective_rank             | exp(entropy of σ/Σσ)                                      |
| linf_bound                 | λ‖w‖∞ (≤ 1 at AdamW's and Lion's limit points)            |
| distance_to_init           | ‖w − w₀‖ (or / ‖w₀‖)                                      |
| zero_fraction              | fraction of exact zeros                                   |
| per_leaf                   | any of these over a pytree: {leaf name: value}            |

Layout: `measures` (one step), `equilibria` (predictions), `spectra` (matrices, bounds),
`trees` (`per_leaf` over a pytree).
"""

from wdjax.dynamics.equilibria import OPTIMIZERS
from wdjax.dynamics.equilibria import equilibrium_angle
from wdjax.dynamics.equilibria import equilibrium_norm
from wdjax.dynamics.measures import RadialTangential
from wdjax.dynamics.measures import angular_update
from wdjax.dynamics.measures import effective_learning_rate
from wdjax.dynamics.measures import radial_tangential
from wdjax.dynamics.measures import relative_update
from wdjax.dynamics.measures import timescale
from wdjax.dynamics.measures import update_norm
from wdjax.dynamics.measures import weight_norm
from wdjax.dynamics.spectra import distance_to_init
from wdjax.dynamics.spectra import effective_rank
from wdjax.dynamics.spectra import linf_bound
from wdjax.dynamics.spectra import singular_values
from wdjax.dynamics.spectra import spectral_norm
from wdjax.dynamics.spectra import stable_rank
from wdjax.dynamics.spectra import zero_fraction
from wdjax.dynamics.trees import leaf_name
from wdjax.dynamics.trees import per_leaf

__all__ = (
    "OPTIMIZERS",
    "RadialTangential",
    "angular_update",
    "distance_to_init",
    "effective_learning_rate",
    "effective_rank",
    "equilibrium_angle",
    "equilibrium_norm",
    "leaf_name",
    "linf_bound",
    "per_leaf",
    "radial_tangential",
    "relative_update",
    "singular_values",
    "spectral_norm",
    "stable_rank",
    "timescale",
    "update_norm",
    "weight_norm",
    "zero_fraction",
)

"""Training dynamics recorded during training: `make_train_fn(..., track=[...])`.

Every `every` optimizer steps the chosen quantities of `wdjax.dynamics` are computed for
each reported leaf (the `report_mask` of `make_train_fn`: the decayed weights by default),
from the weights before the step, the update and the weights after it. They come back as
metrics `track/<quantity>/<leaf>` of shape (steps // every,), which sweeps vmap like the
others; `TrainFn.track_steps` holds the step numbers (1-based: the step just taken).

| quantity           | per leaf (Flax kernels: neurons are the last axis)                  |
|--------------------|---------------------------------------------------------------------|
| weight_norm        | ‖w‖ after the step                                                  |
| update_norm        | ‖Δw‖                                                                |
| relative_update    | ‖Δw‖/‖w‖                                                            |
| angular_update     | RMS over neurons of the angle each neuron's weights rotate, radians |
| spectral_norm      | σ_max(W) (matrices; a full SVD: track it sparsely)                  |
| stable_rank        | ‖W‖_F²/‖W‖₂² (matrices)                                             |
| effective_rank     | exp(entropy of the normalized singular values) (matrices)           |
| linf_bound         | λ‖w‖∞, reads the "weight_decay" hyperparameter                      |
| distance_to_init   | ‖w − w₀‖                                                            |
| zero_fraction      | fraction of exact zeros                                             |

The angular update is the root mean square over neurons because the predicted equilibria
(`wdjax.dynamics.equilibrium_angle`) are RMS values. By default the record is taken at
the last step of each epoch, outside the step loop; another interval puts it under a
`lax.cond` on the step counter (the same for every run of a sweep, so it stays a branch
under `vmap`), which costs more because the branch sits in the loop.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from wdjax import dynamics

#: What `track=` does by default: norm, rotation and relative size of each step.
DEFAULT = ("weight_norm", "angular_update", "relative_update")


def _neurons(w: jax.Array) -> int | None:
  return -1 if w.ndim >= 2 else None


def _rms_angle(before, update, init, lam):
  del init, lam
  theta = dynamics.angular_update(before, update=update, neuron_axis=_neurons(before))
  return jnp.sqrt(jnp.mean(jnp.square(theta)))


def _matrix(fn: Callable[[jax.Array], jax.Array]) -> Callable[..., jax.Array]:
  def q(before, update, init, lam):
    del init, lam
    after = before + update
    return fn(after.reshape(-1, after.shape[-1]) if after.ndim >= 2 else after[:, None])
  return q


QUANTITIES: dict[str, Callable[..., jax.Array]] = {
    "weight_norm": lambda b, u, w0, lam: dynamics.weight_norm(b + u),
    "update_norm": lambda b, u, w0, lam: dynamics.update_norm(b, update=u),
    "relative_update": lambda b, u, w0, lam: dynamics.relative_update(b, update=u),
    "angular_update": _rms_angle,
    "spectral_norm": _matrix(dynamics.spectral_norm),
    "stable_rank": _matrix(dynamics.stable_rank),
    "effective_rank": _matrix(dynamics.effective_rank),
    "linf_bound": lambda b, u, w0, lam: dynamics.linf_bound(b + u, lam),
    "distance_to_init": lambda b, u, w0, lam: dynamics.distance_to_init(w0, b + u),
    "zero_fraction": lambda b, u, w0, lam: dynamics.zero_fraction(b + u),
}


class Tracker(NamedTuple):
  """Which quantities, of which leaves (indices into the params' leaves), how often."""
  quantities: tuple[str, ...]
  leaves: tuple[int, ...]
  leaf_names: tuple[str, ...]
  every: int

  @property
  def needs_weight_decay(self) -> bool:
    return "linf_bound" in self.quantities

  def keys(self) -> list[str]:
    return [f"track/{q}/{n}" for q in self.quantities for n in self.leaf_names]

  def record(self, before: Any, update: Any, init: Any, weight_decay: Any) -> dict:
    """The quantities at one step: {"track/<quantity>/<leaf>": scalar}."""
    b, u, w0 = (jax.tree.leaves(t) for t in (before, update, init))
    out = {}
    for q in self.quantities:
      fn = QUANTITIES[q]
      for i, name in zip(self.leaves, self.leaf_names):
        v = fn(b[i], u[i].astype(b[i].dtype), w0[i], weight_decay)
        out[f"track/{q}/{name}"] = jnp.asarray(v, jnp.float32)
    return out

  def blank(self) -> dict:
    """Zeros in the shape of `record` (the steps in between)."""
    return {k: jnp.zeros((), jnp.float32) for k in self.keys()}

  def steps(self, total_steps: int) -> list[int]:
    return list(range(self.every, total_steps + 1, self.every))


def make_tracker(track: Sequence[str] | None, every: int, leaf_paths: Sequence[tuple],
                 leaf_mask: Sequence[bool]) -> Tracker | None:
  """A `Tracker` for the names in `track` on the leaves `leaf_mask` selects (None: off).

  Example:
    >>> from wdjax import tracking
    >>> t = tracking.make_tracker(["weight_norm"], 2, [("dense", "bias"), ("dense", "kernel")],
    ...                           [False, True])
    >>> t.keys(), t.steps(5)
    (['track/weight_norm/dense/kernel'], [2, 4])
  """
  if not track:
    return None
  if isinstance(track, str):
    track = [track]
  unknown = sorted(set(track) - set(QUANTITIES))
  if unknown:
    raise ValueError(f"track: unknown quantit{'y' if len(unknown) == 1 else 'ies'} {unknown}; "
                     f"choose from {sorted(QUANTITIES)} (default {list(DEFAULT)}).")
  if isinstance(every, bool) or not isinstance(every, int) or every < 1:
    raise ValueError(f"track_every must be a positive int (steps), got {every!r}.")
  idx = tuple(i for i, keep in enumerate(leaf_mask) if keep)
  if not idx:
    raise ValueError("track: the report mask selects no leaf, so nothing would be tracked; "
                     "pass report_mask= (e.g. wdjax.masks.weights_only or None).")
  names = tuple("/".join(str(p) for p in leaf_paths[i]) or "<root>" for i in idx)
  return Tracker(tuple(dict.fromkeys(track)), idx, names, every)

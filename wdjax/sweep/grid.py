"""Grids: named hyperparameter axes, as a product of axes and/or one zipped group.

  grid(product={"weight_decay": λs, "seed": [0, 1, 2]}, zip={"learning_rate": ηs, "momentum": μs})

has one dimension per product axis and one for the zipped group (its axes vary together),
in that order; its points are the C-order flattening of those dimensions. "seed" is an
int axis in [0, 2³²) (each value becomes the PRNG key `jax.random.key(seed)` of its run);
every other axis is a float hyperparameter, finite and >= 0.

Example:
  >>> from wdjax import sweep
  >>> g = sweep.grid(product={"weight_decay": [0.0, 0.5]}, zip={"learning_rate": [0.1, 0.2],
  ...                                                          "momentum": [0.0, 0.9]})
  >>> g, g.shape
  (Grid(weight_decay[2] x zip(learning_rate, momentum)[2]; 4 points), (2, 2))
  >>> g.points()["momentum"].tolist()
  [0.0, 0.9, 0.0, 0.9]
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

SEED = "seed"


class Grid:
  """Named hyperparameter axes arranged in dimensions (one per product axis, one per zip group).

  Attributes:
    dims: one tuple of axis names per grid dimension (a zip group has several names).
    values: axis name -> 1-D NumPy array of its values.
    shape: the length of each dimension.
  """

  def __init__(self, dims: Sequence[tuple[str, ...]], values: Mapping[str, np.ndarray]):
    self.dims = tuple(tuple(d) for d in dims)
    self.values = dict(values)
    self.shape = tuple(len(self.values[d[0]]) for d in self.dims)

  @property
  def size(self) -> int:
    """Number of grid points (runs)."""
    return int(math.prod(self.shape))

  @property
  def names(self) -> tuple[str, ...]:
    """All axis names, in dimension order."""
    return tuple(n for d in self.dims for n in d)

  def points(self) -> dict[str, np.ndarray]:
    """Axis name -> its value at each grid point, flattened in C order (length `size`)."""
    idx = np.indices(self.shape).reshape(len(self.shape), -1)
    return {n: self.values[n][idx[i]] for i, d in enumerate(self.dims) for n in d}

  def __repr__(self) -> str:
    parts = [" x ".join(f"{n}[{len(self.values[n])}]" for n in d) if len(d) == 1
             else "zip(" + ", ".join(f"{n}" for n in d) + f")[{len(self.values[d[0]])}]"
             for d in self.dims]
    return f"Grid({' x '.join(parts)}; {self.size} points)"


def _axis_values(name: str, values: Any) -> np.ndarray:
  if not isinstance(name, str) or not name:
    raise ValueError(f"axis names must be non-empty strings, got {name!r}.")
  try:
    arr = np.asarray(values)
  except Exception as e:  # ragged lists etc.
    raise ValueError(f"axis {name!r}: values must be a 1-D list or array ({e}).") from None
  if arr.ndim == 0:
    arr = arr.reshape(1)
  if arr.ndim != 1:
    raise ValueError(f"axis {name!r}: values must be 1-D, got shape {arr.shape}.")
  if arr.size == 0:
    raise ValueError(f"axis {name!r} is empty; give at least one value.")
  if name == SEED:
    if not (np.issubdtype(arr.dtype, np.integer)
            or (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)))):
      raise ValueError(f"axis 'seed' must hold integers, got {arr.tolist()[:5]}.")
    # Compared before any cast: 2**32 must not wrap to seed 0, nor -1 to 2**32 - 1.
    if np.any(arr < 0) or np.any(arr >= 2**32):
      bad = arr[(arr < 0) | (arr >= 2**32)][0]
      raise ValueError(f"axis 'seed': {bad} is outside [0, 2**32) (a PRNG key's 32-bit seed).")
    return arr.astype(np.int64)
  if np.iscomplexobj(arr) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
    raise ValueError(f"axis {name!r}: values must be real numbers, got dtype {arr.dtype}.")
  arr = arr.astype(np.float64)
  if np.isnan(arr).any():
    raise ValueError(f"axis {name!r} contains NaN.")
  if np.isinf(arr).any():
    raise ValueError(f"axis {name!r} contains an infinite value; give finite values.")
  if (arr < 0).any():
    raise ValueError(f"axis {name!r}: {arr[arr < 0][0]} is negative; hyperparameters swept "
                     "here (λ, learning rates, momentum, ...) are >= 0.")
  return arr


def grid(product: Mapping[str, Any] | None = None, zip: Mapping[str, Any] | None = None,
         **axes: Any) -> Grid:
  """A grid: the product of the `product` axes (and keyword axes) and one zipped group.

  Args:
    product: name -> 1-D values; the grid has one dimension per name, in order.
    zip: name -> 1-D values of one common length, varied together as one dimension
      (e.g. a learning rate paired with each weight decay); it comes last.
    **axes: more product axes, after those of `product`.

  Returns:
    A `Grid`. "seed" must hold ints (each becomes `jax.random.key(seed)`).

  Raises:
    ValueError: no axes, an empty axis, zipped axes of different lengths, a name given
      twice, non-1-D or non-numeric values, NaN, infinite or negative values, seeds
      outside [0, 2**32).

  Example:
    >>> from wdjax import sweep
    >>> sweep.grid(product={"weight_decay": [0, 1e-3, 1e-2]}, seed=[0, 1])
    Grid(weight_decay[3] x seed[2]; 6 points)
  """
  product = dict(product or {})
  for k, v in axes.items():
    if k in product:
      raise ValueError(f"axis {k!r} given twice.")
    product[k] = v
  zipped = dict(zip or {})
  both = sorted(set(product) & set(zipped))
  if both:
    raise ValueError(f"axes {both} are both in product= and zip=; give each axis once.")
  if not product and not zipped:
    raise ValueError("the grid is empty: give at least one axis, e.g. "
                     "grid(product={'weight_decay': [0.0, 1e-3]}).")
  values = {k: _axis_values(k, v) for k, v in {**product, **zipped}.items()}
  if zipped:
    lengths = {k: len(values[k]) for k in zipped}
    if len(set(lengths.values())) > 1:
      raise ValueError(f"zipped axes must have the same length, got {lengths}.")
  dims = [(k,) for k in product] + ([tuple(zipped)] if zipped else [])
  return Grid(dims, values)

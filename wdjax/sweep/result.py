"""Sweep results: the metrics of every run of a grid, with named axes.

`SweepResult.metrics[name]` has shape `grid.shape + (epochs,)` (by convention the first
axis after the grid's is the epoch; a metric may have more, or none). Select by value
(`sel`) or position (`isel`), pick the best point (`best`), save to one `.npz` (`save`,
`load`), or hand the grid to the labeled-array libraries: `to_xarray()` (one variable per
metric, one dimension per grid dimension plus "epoch") and `to_dataframe()` (long format,
one row per run and epoch).

Example:
  >>> import numpy as np
  >>> from wdjax.sweep import SweepResult
  >>> loss = np.array([[[1.0, 0.5], [1.0, 0.4]], [[1.0, 0.3], [1.0, np.nan]]])  # (λ, seed, epoch)
  >>> res = SweepResult([("weight_decay",), ("seed",)],
  ...                   {"weight_decay": [0.0, 0.1], "seed": [0, 1]}, {"val_loss": loss})
  >>> res.shape, res.diverged.tolist(), res.diverged_epoch.tolist()
  ((2, 2), [[False, False], [False, True]], [[-1, -1], [-1, 1]])
  >>> res.sel(weight_decay=0.1).metrics["val_loss"][0]
  array([1. , 0.3])
  >>> res.best("val_loss")
  {'weight_decay': 0.1, 'seed': 0}
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from wdjax import _io
import wdjax.sweep.store as store
from wdjax.sweep.grid import SEED

EPOCH = "epoch"  # the dimension after the grid's, in to_xarray / to_dataframe


class SweepResult:
  """Metrics of every run of a grid, with named axes.

  Attributes:
    axes: axis name -> 1-D values (a zip group's names share one dimension).
    dims: one tuple of axis names per dimension.
    shape: the grid's shape.
    metrics: name -> array of shape `shape + (epochs,)` (or `shape + ...` in general).
    params: final params pytree with leading `shape` axes, or None.
    diverged: bool array of `shape`: a metric became NaN/inf at some epoch.
    diverged_epoch: int array of `shape`: the first such epoch (0-based), -1 if none.
  """

  def __init__(self, dims, axes, metrics, params=None):
    self.dims = tuple(tuple(d) for d in dims)
    self.axes = {k: np.asarray(v) for k, v in axes.items()}
    self.metrics = dict(metrics)
    self.params = params
    self.shape = tuple(len(self.axes[d[0]]) for d in self.dims)
    self.diverged_epoch = _diverged_epoch(self.metrics, self.shape)
    self.diverged = self.diverged_epoch >= 0

  def __repr__(self) -> str:
    d = ", ".join("+".join(x) + f"={len(self.axes[x[0]])}" for x in self.dims)
    return f"SweepResult({d}; metrics {sorted(self.metrics)}; {int(self.diverged.sum())} diverged)"

  def _dim_of(self, name: str) -> int:
    for i, d in enumerate(self.dims):
      if name in d:
        return i
    raise KeyError(f"no axis {name!r}; axes are {list(self.axes)}.")

  def index(self, **values: Any) -> dict[int, int]:
    """Dimension -> index of the grid point with the given axis values (np.isclose)."""
    out: dict[int, int] = {}
    for name, v in values.items():
      dim = self._dim_of(name)
      hits = np.flatnonzero(np.isclose(self.axes[name], v, rtol=1e-9, atol=0.0)
                            if name != SEED else self.axes[name] == v)
      if hits.size == 0:
        raise KeyError(f"{name}={v!r} is not on the grid; its values are "
                       f"{self.axes[name].tolist()}.")
      if dim in out and out[dim] != hits[0]:
        raise KeyError(f"{values} name different points of the zipped axes {self.dims[dim]}.")
      out[dim] = int(hits[0])
    return out

  def isel(self, **indices: int) -> "SweepResult":
    """Selects by position along named axes (dimension removed)."""
    return self._take({self._dim_of(k): int(i) for k, i in indices.items()})

  def sel(self, **values: Any) -> "SweepResult":
    """Selects by value along named axes (dimension removed), e.g. `sel(weight_decay=3.0)`."""
    return self._take(self.index(**values))

  def _take(self, where: dict[int, int]) -> "SweepResult":
    ix = tuple(where.get(i, slice(None)) for i in range(len(self.dims)))
    take = lambda a: np.asarray(a)[ix]
    dims = [d for i, d in enumerate(self.dims) if i not in where]
    axes = {n: self.axes[n] for d in dims for n in d}
    params = jax.tree.map(take, self.params) if self.params is not None else None
    return SweepResult(dims, axes, {k: take(v) for k, v in self.metrics.items()}, params)

  def best(self, metric: str = "val_loss", epoch: int = -1, mode: str = "min") -> dict[str, Any]:
    """Axis values of the best non-diverged point by `metric` at `epoch`."""
    if metric not in self.metrics:
      raise KeyError(f"no metric {metric!r}; metrics are {sorted(self.metrics)}.")
    if mode not in ("min", "max"):
      raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
    vals = np.asarray(self.metrics[metric])[..., epoch].astype(np.float64)
    ok = ~self.diverged & np.isfinite(vals)
    if not ok.any():
      raise ValueError(f"every point diverged or has a non-finite {metric}; nothing to pick.")
    vals = np.where(ok, vals, np.inf if mode == "min" else -np.inf)
    flat = np.argmin(vals) if mode == "min" else np.argmax(vals)
    pos = np.unravel_index(flat, self.shape)
    return {n: self.axes[n][p].item() for d, p in zip(self.dims, pos) for n in d}

  def save(self, path: str | os.PathLike) -> None:
    """Writes the result to one `.npz` file (atomically, with a checksum); read it back with
    `SweepResult.load`."""
    axes = {f"axis/{k}": v for k, v in self.axes.items()}
    store.save_tree(path, {"metrics": self.metrics, "params": self.params},
                    meta={"dims": [list(d) for d in self.dims]}, extra=axes)

  @classmethod
  def load(cls, path: str | os.PathLike) -> "SweepResult":
    """Reads a result written by `save` (its checksum checked)."""
    arrays, meta = _io.load_npz(path)
    axes = {k[5:]: v for k, v in arrays.items() if k.startswith("axis/")}
    rest = {k: v for k, v in arrays.items() if not k.startswith("axis/")}
    tree = store.unflatten_tree(rest, meta.get("keys", {}))
    return cls(meta["dims"], axes, tree.get("metrics", {}), tree.get("params"))

  def _metric_layout(self, metrics: Sequence[str] | None) -> tuple[list[str], int | None]:
    """The chosen metrics (all, sorted, by default) and their common epoch count (None
    when none of them has an epoch axis)."""
    names = sorted(self.metrics) if metrics is None else list(metrics)
    missing = [m for m in names if m not in self.metrics]
    if missing:
      raise KeyError(f"no metric(s) {missing}; metrics are {sorted(self.metrics)}.")
    n = len(self.shape)
    lengths = {m: np.shape(self.metrics[m])[n] for m in names if np.ndim(self.metrics[m]) > n}
    if len(set(lengths.values())) > 1:
      raise ValueError(f"the metrics have different epoch counts {lengths}; choose metrics of "
                       "one length with metrics=[...].")
    return names, next(iter(lengths.values()), None)

  def to_xarray(self, metrics: Sequence[str] | None = None) -> Any:
    """The metrics as an `xarray.Dataset`: one data variable per metric.

    Dimensions: one per grid dimension, named after its axis (a zipped group after its
    first axis; the group's other axes are coordinates along it), then "epoch" (0-based)
    for per-epoch metrics, then "<metric>_dim<j>" for any further axes of a metric.
    Coordinates: each axis's values. `params` and the divergence arrays are not included.

    Args:
      metrics: the metrics to include (default: all).

    Returns:
      An `xarray.Dataset`; `ds[m].values` is `self.metrics[m]`.

    Raises:
      ImportError: xarray is not installed (`pip install wdjax[xarray]`).
      ValueError: the chosen metrics have different epoch counts.

    Example:
      >>> import numpy as np
      >>> res = SweepResult([("weight_decay",)], {"weight_decay": [0.0, 0.1]},
      ...                   {"loss": np.array([[3.0, 2.0], [3.0, 1.0]])})
      >>> ds = res.to_xarray()
      >>> float(ds["loss"].sel(weight_decay=0.1, epoch=1))
      1.0
    """
    try:
      import xarray as xr
    except ImportError as e:
      raise ImportError("SweepResult.to_xarray needs xarray: pip install wdjax[xarray] "
                        "(or pip install xarray).") from e
    names, _ = self._metric_layout(metrics)
    grid_dims = [d[0] for d in self.dims]
    coords: dict[str, Any] = {}
    for d in self.dims:
      for n in d:
        coords[n] = (d[0], self.axes[n])
    data = {}
    for m in names:
      a = np.asarray(self.metrics[m])
      extra = [EPOCH] if a.ndim > len(self.shape) else []
      extra += [f"{m}_dim{j}" for j in range(1, a.ndim - len(self.shape))]
      data[m] = (grid_dims + extra, a)
      if extra:
        coords[EPOCH] = (EPOCH, np.arange(a.shape[len(self.shape)]))
    return xr.Dataset(data, coords=coords)

  def to_dataframe(self, metrics: Sequence[str] | None = None) -> Any:
    """The metrics as a long-format `pandas.DataFrame`: one row per run and epoch.

    Columns: every grid axis (zipped axes too), "epoch" (0-based; only when a metric has
    an epoch axis), then one column per metric; a metric with one value per run repeats
    it on each of the run's rows, and one with further axes gets a column per entry,
    "<metric>[i]" (or "[i,j]", ...). Rows run over the grid in C order, epochs innermost.

    Args:
      metrics: the metrics to include (default: all).

    Returns:
      A `pandas.DataFrame` with a default integer index.

    Raises:
      ImportError: pandas is not installed (`pip install pandas`).
      ValueError: the chosen metrics have different epoch counts.

    Example:
      >>> import numpy as np
      >>> res = SweepResult([("weight_decay",)], {"weight_decay": [0.0, 0.1]},
      ...                   {"loss": np.array([[3.0, 2.0], [3.0, 1.0]])})
      >>> res.to_dataframe()
         weight_decay  epoch  loss
      0           0.0      0   3.0
      1           0.0      1   2.0
      2           0.1      0   3.0
      3           0.1      1   1.0
    """
    try:
      import pandas as pd
    except ImportError as e:
      raise ImportError("SweepResult.to_dataframe needs pandas: pip install pandas "
                        "(or pip install wdjax[xarray]).") from e
    names, epochs = self._metric_layout(metrics)
    runs = int(np.prod(self.shape, dtype=np.int64))
    reps = epochs or 1
    idx = np.indices(self.shape).reshape(len(self.shape), runs)
    columns: dict[str, np.ndarray] = {}
    for i, d in enumerate(self.dims):
      for n in d:
        columns[n] = np.repeat(self.axes[n][idx[i]], reps)
    if epochs is not None:
      columns[EPOCH] = np.tile(np.arange(epochs), runs)
    for m in names:
      trailing = np.shape(self.metrics[m])[len(self.shape):]
      a = np.asarray(self.metrics[m]).reshape(runs * (reps if trailing else 1), -1)
      if not trailing:  # one value per run: on each of its rows
        columns[m] = np.repeat(a[:, 0], reps)
      elif len(trailing) == 1:
        columns[m] = a[:, 0]
      else:
        for j, pos in enumerate(np.ndindex(*trailing[1:])):
          columns[f"{m}[{','.join(map(str, pos))}]"] = a[:, j]
    return pd.DataFrame(columns)


def _diverged_epoch(metrics: Mapping[str, Any], shape: tuple[int, ...]) -> np.ndarray:
  first = np.full(shape, -1, dtype=np.int64)
  # the all-finite shortcut below sums each metric: a sum that overflows (or meets both
  # infinities) only sends that metric to the exact search, silently
  with np.errstate(over="ignore", invalid="ignore"):
    for v in metrics.values():
      a = np.asarray(v)
      if a.dtype.kind != "f" or a.shape[:len(shape)] != shape:  # (kind: issubdtype's speed)
        continue
      # all finite, the common case: no search for the first bad epoch (a finite sum
      # proves it in one pass)
      if np.isfinite(np.add.reduce(a, axis=None)):
        continue
      bad = ~np.isfinite(a)
      if not bad.any():
        continue
      if a.ndim == len(shape):  # one value per run: "epoch" 0
        bad = bad[..., None]
      elif a.ndim > len(shape) + 1:  # per-epoch arrays: any bad entry marks the epoch
        bad = bad.any(axis=tuple(range(len(shape) + 1, a.ndim)))
      e = np.where(bad.any(-1), bad.argmax(-1), -1)
      first = np.where((first < 0) | ((e >= 0) & (e < first)), np.where(e >= 0, e, first),
                       first)
  return first

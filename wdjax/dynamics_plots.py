"""Figures of training dynamics: tracked quantities against step and against λ.

The plots researchers draw by hand for weight decay in normalized networks (Kosson et al.
2024, Fig. 1; Wan et al. 2021): each layer's weight norm and angular update against step,
with the predicted equilibrium (`wdjax.dynamics.equilibrium_angle`/`equilibrium_norm`)
drawn in; and the equilibrium values against λ across a sweep, with the prediction as a
curve (on log-log axes a √λ law is a line of slope ½).

Inputs are plain arrays, so these work for any run that tracked the quantities, whatever
stored them: `{leaf name: values over steps}` for one quantity, `{quantity: {leaf name:
values}}` for several. matplotlib is imported inside the functions, when a plot is drawn.
New figures are `matplotlib.figure.Figure` objects, made without pyplot: no backend is
switched and nothing global is touched, so they work headless; PNG files are written
atomically (`wdjax._io`).
"""

from __future__ import annotations

import io
import os
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from wdjax import _io

#: Axis labels of the quantities `wdjax.dynamics` measures (by function name).
LABELS: dict[str, str] = {
    "weight_norm": "weight norm ‖w‖",
    "update_norm": "update norm ‖Δw‖",
    "relative_update": "relative update ‖Δw‖/‖w‖",
    "angular_update": "angular update θ (rad/step)",
    "effective_learning_rate": "effective learning rate",
    "spectral_norm": "σ_max",
    "stable_rank": "stable rank",
    "effective_rank": "effective rank",
    "linf_bound": "λ‖w‖∞",
    "distance_to_init": "‖w − w₀‖",
    "zero_fraction": "fraction of exact zeros",
}


def _new_axes(nrows: int = 1, figsize: tuple[float, float] = (6.0, 4.0)) -> tuple[Any, list]:
  from matplotlib.figure import Figure  # optional and heavy: imported when a plot is drawn
  fig = Figure(figsize=figsize)
  axes = fig.subplots(nrows, 1, sharex=True, squeeze=False)[:, 0]
  return fig, list(axes)


def _write(fig: Any, filename: str | os.PathLike | None) -> None:
  if filename is None:
    return
  # Through _io (atomic) and without closing the figure: the caller keeps it.
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=120)
  _io.write_bytes(filename, buf.getvalue())


def _series(values: Any, name: str) -> tuple[np.ndarray, np.ndarray | None]:
  """(line, band): a 1-D series as is; a 2-D (steps, neurons) one as its mean over
  neurons and the 10th-90th percentile band."""
  v = np.asarray(values, dtype=np.float64)
  if v.ndim == 1:
    return v, None
  if v.ndim == 2:
    return v.mean(axis=1), np.percentile(v, [10, 90], axis=1)
  raise ValueError(f"{name}: expected values of shape (steps,) or (steps, neurons), got "
                   f"{v.shape}; reduce other axes (seeds, sweep points) first.")


def plot_over_steps(series: Mapping[str, Any], steps: Any = None, *,
                    predicted: float | Mapping[str, float] | None = None,
                    quantity: str | None = None, logy: bool = False, ax: Any = None,
                    title: str | None = None,
                    filename: str | os.PathLike | None = None) -> Any:
  """One tracked quantity against step, one line per leaf, with its predicted equilibrium.

  Args:
    series: {leaf name: values}, values of shape (steps,) or (steps, neurons) (drawn as
      the mean over neurons with a 10th-90th percentile band).
    steps: the step of each value (default 0, 1, ...), shared by all leaves.
    predicted: the equilibrium to draw as a dashed line: one number for all leaves, or
      {leaf name: number}, drawn in that leaf's colour.
    quantity: the `wdjax.dynamics` function measured (sets the y label), or any label.
    logy: a logarithmic y axis.
    ax: matplotlib Axes to draw into; default a new figure.
    title: the Axes title.
    filename: the PNG to write (atomically); None: do not write.

  Returns:
    The matplotlib Axes.

  Example:
    >>> import numpy as np
    >>> from wdjax import dynamics_plots
    >>> theta = {"Dense_0/kernel": 0.02 + 0.1 * np.exp(-np.arange(50) / 10),
    ...          "Dense_1/kernel": np.full((50, 8), 0.02)}
    >>> ax = dynamics_plots.plot_over_steps(theta, predicted=0.02, quantity="angular_update")
    >>> len(ax.lines), ax.get_ylabel()   # two leaves and the prediction
    (3, 'angular update θ (rad/step)')
  """
  if not series:
    raise ValueError("series is empty: pass {leaf name: values over steps}.")
  if ax is None:
    _, (ax,) = _new_axes()
  for name, values in series.items():
    line, band = _series(values, name)
    x = np.arange(len(line)) if steps is None else np.asarray(steps)
    if x.shape != line.shape:
      raise ValueError(f"{name}: {line.shape[0]} values for {x.shape} steps.")
    (ln,) = ax.plot(x, line, lw=1.2, label=name)
    if band is not None:
      ax.fill_between(x, band[0], band[1], color=ln.get_color(), alpha=0.2, lw=0)
    if isinstance(predicted, Mapping) and name in predicted:
      ax.axhline(float(predicted[name]), color=ln.get_color(), ls="--", lw=1)
  if predicted is not None and not isinstance(predicted, Mapping):
    ax.axhline(float(predicted), color="k", ls="--", lw=1, label="predicted")
  if logy:
    ax.set_yscale("log")
  ax.set_xlabel("step")
  if quantity:
    ax.set_ylabel(LABELS.get(quantity, quantity))
  if title:
    ax.set_title(title)
  ax.legend(fontsize="small")
  _write(ax.figure, filename)
  return ax


def plot_dynamics(tracked: Mapping[str, Mapping[str, Any]], steps: Any = None, *,
                  predicted: Mapping[str, float | Mapping[str, float]] | None = None,
                  logy: bool | Iterable[str] = False, title: str | None = None,
                  filename: str | os.PathLike | None = None) -> Any:
  """Several tracked quantities against step, one panel each (shared step axis).

  Args:
    tracked: {quantity: {leaf name: values}} (see `plot_over_steps`), e.g.
      {"weight_norm": ..., "angular_update": ...}; panels in this order.
    steps: the step of each value (default 0, 1, ...).
    predicted: {quantity: equilibrium} for the quantities that have one (a number or
      {leaf name: number}).
    logy: True (all panels), False, or the quantities to draw on a log scale.
    title: the figure's title.
    filename: the PNG to write (atomically); None: do not write.

  Returns:
    The matplotlib Figure.

  Example:
    >>> import numpy as np
    >>> from wdjax import dynamics_plots
    >>> tracked = {"weight_norm": {"kernel": np.linspace(1.0, 0.6, 20)},
    ...            "angular_update": {"kernel": np.full(20, 0.03)}}
    >>> fig = dynamics_plots.plot_dynamics(tracked, predicted={"angular_update": 0.03})
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['weight norm ‖w‖', 'angular update θ (rad/step)']
  """
  if not tracked:
    raise ValueError("tracked is empty: pass {quantity: {leaf name: values over steps}}.")
  predicted = predicted or {}
  logs = set(tracked) if logy is True else set() if logy is False else set(logy)
  fig, axes = _new_axes(len(tracked), figsize=(6.0, 2.6 * len(tracked) + 0.6))
  for ax, (quantity, series) in zip(axes, tracked.items()):
    plot_over_steps(series, steps, predicted=predicted.get(quantity), quantity=quantity,
                    logy=quantity in logs, ax=ax)
    ax.set_xlabel("")
  axes[-1].set_xlabel("step")
  if title:
    fig.suptitle(title)
  _write(fig, filename)
  return fig


def plot_against_lambda(weight_decays: Any, values: Mapping[str, Any] | Any, *,
                        predicted: Callable[[np.ndarray], Any] | Any = None,
                        quantity: str | None = None, loglog: bool = True, ax: Any = None,
                        title: str | None = None,
                        filename: str | os.PathLike | None = None) -> Any:
  """Equilibrium values against λ across a sweep, with the predicted curve.

  Args:
    weight_decays: the swept λ, shape (L,).
    values: {label: values} or one array; values of shape (L,) or (L, seeds) (drawn as
      the mean with error bars of one standard deviation across seeds).
    predicted: the prediction, a function λ -> value (drawn on a fine grid, e.g.
      `lambda lam: dynamics.equilibrium_angle("adamw", 1e-3, lam)`) or values at
      `weight_decays`.
    quantity: the `wdjax.dynamics` function measured (sets the y label), or any label.
    loglog: logarithmic axes (default; a power law is a line).
    ax: matplotlib Axes to draw into; default a new figure.
    title: the Axes title.
    filename: the PNG to write (atomically); None: do not write.

  Returns:
    The matplotlib Axes.

  Example:
    >>> import numpy as np
    >>> from wdjax import dynamics, dynamics_plots
    >>> lams = np.array([1e-3, 1e-2, 1e-1])
    >>> pred = lambda lam: dynamics.equilibrium_angle("adamw", 1e-3, lam, b1=0.0)
    >>> measured = {"Dense_0/kernel": 1.02 * pred(lams)}
    >>> ax = dynamics_plots.plot_against_lambda(lams, measured, predicted=pred,
    ...                                         quantity="angular_update")
    >>> len(ax.lines)   # the predicted curve and the measured points
    2
  """
  lams = np.asarray(weight_decays, dtype=np.float64)
  if lams.ndim != 1:
    raise ValueError(f"weight_decays must be 1-D, got shape {lams.shape}.")
  if not isinstance(values, Mapping):
    values = {quantity or "measured": values}
  if ax is None:
    _, (ax,) = _new_axes()
  if predicted is not None:
    if callable(predicted):
      lo, hi = lams.min(), lams.max()
      grid = np.geomspace(lo, hi, 200) if loglog and lo > 0 else np.linspace(lo, hi, 200)
      ax.plot(grid, np.asarray(predicted(grid), dtype=np.float64), "k--", lw=1,
              label="predicted")
    else:
      ax.plot(lams, np.asarray(predicted, dtype=np.float64), "k--", lw=1, label="predicted")
  for name, v in values.items():
    v = np.asarray(v, dtype=np.float64)
    if v.shape[:1] != lams.shape or v.ndim > 2:
      raise ValueError(f"{name}: values of shape {v.shape}; expected ({lams.size},) or "
                       f"({lams.size}, seeds).")
    err = v.std(axis=1) if v.ndim == 2 else None
    mean = v.mean(axis=1) if v.ndim == 2 else v
    ax.errorbar(lams, mean, yerr=err, fmt="o-", ms=4, lw=1, capsize=2, label=name)
  if loglog:
    ax.set_xscale("log")
    ax.set_yscale("log")
  ax.set_xlabel("weight decay λ")
  if quantity:
    ax.set_ylabel(LABELS.get(quantity, quantity))
  if title:
    ax.set_title(title)
  ax.legend(fontsize="small")
  _write(ax.figure, filename)
  return ax

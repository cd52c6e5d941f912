"""Figures: a regularization path, and the plots of a run.

matplotlib is an optional, heavy dependency: it is imported inside the functions that
draw, when they are first called, never when `wdjax` is imported. Figures are drawn with
the Agg backend when these functions create them, so they run headless, and PNG files are
written atomically (`wdjax._io`).
"""

from __future__ import annotations

import io
import os
from typing import Any, Mapping

import numpy as np

from wdjax import _io
from wdjax import config as _config
from wdjax import experiments
from wdjax.path import PathResult


def plot_path(result: PathResult, filename: str | os.PathLike | None = None, *,
              ax: Any = None, title: str | None = None) -> Any:
  """Plots each coefficient of a `wdjax.path` result against log10 λ (glmnet style), with
  the count of non-zero coefficients on the top axis; writes a PNG when `filename` given.

  Args:
    result: a `PathResult` (`wdjax.path.lasso_path`, `enet_path`, `group_lasso_path`).
    filename: the PNG to write (atomically); None: do not write.
    ax: matplotlib Axes to draw into; default a new figure (Agg backend, headless).
    title: the Axes title.

  Returns:
    The matplotlib Axes.

  Example:
    >>> import numpy as np
    >>> from wdjax import path, plots
    >>> X = np.eye(3); y = np.array([3.0, 1.0, 0.0])
    >>> ax = plots.plot_path(path.lasso_path(X, y, n_lambdas=5), title="X = I")
    >>> len(ax.lines)  # one per coefficient, and the zero line
    4
  """
  import matplotlib  # optional and heavy: imported when a plot is drawn
  if ax is None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
  else:
    fig = ax.figure
  x = np.log10(result.lambdas)
  ax.plot(x, result.coefs, lw=1)
  ax.invert_xaxis()
  ax.axhline(0.0, color="k", lw=0.5)
  ax.set_xlabel("log10 λ")
  ax.set_ylabel("coefficient")
  nz = (result.coefs != 0).sum(axis=1)
  top = ax.secondary_xaxis("top")
  top.set_xticks(x[:: max(1, len(x) // 6)])
  top.set_xticklabels([str(k) for k in nz[:: max(1, len(x) // 6)]])
  top.set_xlabel("non-zero coefficients")
  if title:
    ax.set_title(title)
  if filename is not None:
    # Written through _io (atomic) without closing the figure: the caller keeps the Axes.
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    _io.write_bytes(filename, buf.getvalue())
  return ax


def make_plots(cfg: _config.Config, metrics: Mapping[str, np.ndarray],
               values: Mapping[str, float], out_dir: str) -> list[str]:
  """The PNG plots of a run of `cfg` (its kind's `plot`), written into `out_dir`.

  Args:
    cfg: the run's config.
    metrics: its metric arrays (metrics.npz).
    values: its named numbers (summary.json's "values").
    out_dir: where the PNGs go (the run directory).

  Returns:
    The paths of the PNG files.
  """
  import matplotlib  # optional and heavy: imported when a plot is drawn
  matplotlib.use("Agg")
  return experiments.KINDS[cfg.kind].plot(cfg, metrics, values, out_dir)

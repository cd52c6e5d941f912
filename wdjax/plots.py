"""Figures: a regularization path, and the plots of a run.

matplotlib is an optional, heavy dependency: it is imported inside the functions that
draw, when they are first called, never when `wdjax` is imported. Figures are drawn with
the Agg backend when these functions create them, so they run headless, and PNG files are
written atomically (`wdjax._io`).
"""

from __future__ import annotations

import io
import os
import re
from typing import Any, Mapping

import numpy as np

from wdjax import _io, dynamics_plots
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
  """The PNG plots of a run of `cfg` (its kind's `plot`), written into `out_dir`, and, for
  a run whose metrics hold tracked dynamics, their figures (`plot_tracked`).

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
  out = list(experiments.KINDS[cfg.kind].plot(cfg, metrics, values, out_dir))
  return out + plot_tracked(metrics, out_dir)


_TRACK = re.compile(r"^(?:(?P<prefix>.+)/)?track/(?P<quantity>[^/]+)/(?P<leaf>.+)$")


def tracked_groups(metrics: Mapping[str, Any]) -> dict[str, dict[str, dict[str, np.ndarray]]]:
  """The tracked dynamics in a run's metrics: {prefix: {quantity: {leaf: array}}}.

  Tracked series are the metrics named `[<prefix>/]track/<quantity>/<leaf>` (what
  `make_train_fn(track=...)` returns, under a variant's prefix in experiments), arrays
  whose last axis is the record; `<prefix>/track_steps`, `<prefix>/weight_decay` (the λ
  of the first axis) and `<prefix>/predicted/<quantity>/<leaf>` (the prediction per λ,
  or one number) are read when present.

  Example:
    >>> import numpy as np
    >>> from wdjax import plots
    >>> g = plots.tracked_groups({"adamw/track/weight_norm/Dense_0/kernel": np.ones((2, 5)),
    ...                           "val_loss": np.ones(3)})
    >>> {p: {q: list(v) for q, v in d.items()} for p, d in g.items()}
    {'adamw': {'weight_norm': ['Dense_0/kernel']}}
  """
  out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
  for key, value in metrics.items():
    hit = _TRACK.match(key)
    if hit and "/predicted/" not in f"/{key}":
      out.setdefault(hit["prefix"] or "", {}).setdefault(hit["quantity"], {})[hit["leaf"]] = (
          np.asarray(value))
  return out


def plot_tracked(metrics: Mapping[str, Any], out_dir: str, *, tail: float = 0.2) -> list[str]:
  """Figures of every tracked quantity of a run, whatever its kind (`tracked_groups`).

  Per prefix: `dynamics[-<prefix>].png`, each quantity against step, one line per leaf
  (and per λ when `<prefix>/weight_decay` labels the first axis; other leading axes,
  e.g. seeds, are averaged), with the predicted equilibrium dashed; and, when there are
  several λ, `dynamics_vs_lambda[-<prefix>].png`: each quantity's mean over the last
  `tail` of the run (RMS for angles) against λ, with the prediction when all leaves share it
  (`wdjax.dynamics_plots`).

  Args:
    metrics: a run's metric arrays (metrics.npz).
    out_dir: where the PNGs go.
    tail: the fraction of the records averaged for the against-λ figure.

  Returns:
    The paths of the PNG files (none when nothing was tracked).
  """
  files = []
  for prefix, quantities in tracked_groups(metrics).items():
    pre = f"{prefix}/" if prefix else ""
    name = f"-{prefix.replace('/', '_')}" if prefix else ""
    steps = metrics.get(f"{pre}track_steps")
    lams = metrics.get(f"{pre}weight_decay")
    lams = None if lams is None else np.atleast_1d(np.asarray(lams, np.float64))
    tracked, predicted, against, pred_of = {}, {}, {}, {}
    for q, leaves in quantities.items():
      tracked[q], predicted[q], against[q] = {}, {}, {}
      for leaf, v in leaves.items():
        pred = metrics.get(f"{pre}predicted/{q}/{leaf}")
        per_lam = lams is not None and v.ndim >= 2 and v.shape[0] == lams.size
        rows = [(f"λ={lam:.3g} ", r) for lam, r in zip(lams, v)] if per_lam else [("", v)]
        preds = (np.broadcast_to(np.asarray(pred, np.float64), (len(rows),))
                 if pred is not None else [np.nan] * len(rows))
        for (label, r), pv in zip(rows, preds):
          series = r.reshape(-1, r.shape[-1]).mean(axis=0) if r.ndim > 1 else r
          tracked[q][label + leaf] = series
          if np.isfinite(pv):
            predicted[q][label + leaf] = float(pv)
        if per_lam and lams.size > 1:
          t = v.shape[-1]
          last = v[..., t - max(1, int(round(tail * t))):].reshape(lams.size, -1)
          # angles as RMS, like their predicted equilibria; other quantities as means
          against[q][leaf] = (np.sqrt(np.mean(np.square(last), axis=1))
                              if q == "angular_update" else last.mean(axis=1))
          pred_of.setdefault(q, []).append(np.asarray(preds, np.float64))
    x = None if steps is None else np.asarray(steps)
    fig = dynamics_plots.plot_dynamics(
        tracked, x, predicted={q: p for q, p in predicted.items() if p},
        logy=[q for q in tracked if q in ("weight_norm", "angular_update", "relative_update")],
        title=prefix or None)
    files.append(_io.save_figure(fig, os.path.join(out_dir, f"dynamics{name}.png")))
    if any(against.values()):
      from matplotlib.figure import Figure
      qs = [q for q in against if against[q]]
      fig = Figure(figsize=(5.5 * len(qs), 4.0))
      for ax, q in zip(fig.subplots(1, len(qs), squeeze=False)[0], qs):
        # one predicted curve when the leaves share it (an angle); none when they do not
        p = pred_of[q]
        same = all(np.array_equal(p[0], o) for o in p) and np.all(np.isfinite(p[0]))
        dynamics_plots.plot_against_lambda(
            lams, against[q], predicted=p[0] if same else None,
            quantity=q, ax=ax, title=prefix or None)
      files.append(_io.save_figure(fig, os.path.join(out_dir, f"dynamics_vs_lambda{name}.png")))
  return files

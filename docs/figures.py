"""Draws the figures of docs/guide.md: `python docs/figures.py NAME` writes docs/figures/NAME.png.

A figure is drawn from the variables of its guide section's snippet: the script runs that
`python` block of guide.md as it is (the code `tests/test_guide.py` checks), then plots
from its namespace, so a figure cannot drift from the tested code. `tests/test_guide.py`
calls the same plot functions on the namespaces of the snippets it runs.

Usage:
  python docs/figures.py NAME [NAME ...] [--out DIR]     # NAME in FIGURES, or "all"
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any, Callable

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GUIDE = os.path.join(HERE, "guide.md")


def sections(text: str) -> dict[int, list[str]]:
  """Guide section number -> its fenced ```python blocks, in order."""
  out: dict[int, list[str]] = {}
  parts = re.split(r"^## (\d+)\. .*$", text, flags=re.M)
  for num, body in zip(parts[1::2], parts[2::2]):
    out[int(num)] = re.findall(r"^```python\n(.*?)^```", body, flags=re.S | re.M)
  return out


def run_section(number: int) -> dict[str, Any]:
  """Runs the first python block of guide section `number`; returns its namespace."""
  with open(GUIDE) as f:
    code = sections(f.read())[number][0]
  ns: dict[str, Any] = {"__name__": f"guide_section_{number}"}
  exec(compile(code, f"{GUIDE}:section{number}", "exec"), ns)
  return ns


def _fig(ncols: int = 1, width: float = 4.0, height: float = 3.4):
  import matplotlib.pyplot as plt
  return plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)


def _save(fig: Any, path: str) -> None:
  import matplotlib.pyplot as plt
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def norm_balls(ns: dict[str, Any], path: str) -> None:
  """Unit balls of L1, L2 and L∞ in 2-D, with a one-entry and a spread vector of L2 norm 1."""
  del ns
  fig, ax = _fig(width=3.8, height=3.6)
  ax = ax[0, 0]
  t = np.linspace(0, 2 * np.pi, 400)
  ax.plot(np.cos(t), np.sin(t), label="‖w‖₂ = 1")
  ax.plot([1, 0, -1, 0, 1], [0, 1, 0, -1, 0], label="‖w‖₁ = 1")
  ax.plot([1, -1, -1, 1, 1], [1, 1, -1, -1, 1], label="‖w‖∞ = 1")
  ax.scatter([1, 2 ** -0.5], [0, 2 ** -0.5], color="k", zorder=3)
  ax.annotate("one entry: 1, 1, 1", (1, 0), (0.25, -0.35), fontsize=8)
  ax.annotate("spread: √2, 1, 1/√2", (2 ** -0.5, 2 ** -0.5), (-0.2, 1.12), fontsize=8)
  ax.set_aspect("equal")
  ax.set_xlim(-1.3, 1.3)
  ax.set_ylim(-1.3, 1.3)
  ax.set_xlabel("w₁")
  ax.set_ylabel("w₂")
  ax.legend(fontsize=7, loc="lower left")
  ax.set_title("unit balls (L1, L2, L∞ of the two dots)", fontsize=9)
  _save(fig, path)


def bias_share(ns: dict[str, Any], path: str) -> None:
  """b's share of the penalty against d (closed form and fits); a large-mean target."""
  fig, axes = _fig(2)
  a, b = axes[0]
  d = np.logspace(0, 3, 100)
  a.semilogx(d, 0.05 ** 2 / (0.05 ** 2 + d * 0.01 ** 2), label="b*²/(b*² + ‖w*‖²)")
  dims, pen, shrink = np.array(ns["table"]).T
  a.scatter(dims, pen, color="k", zorder=3, label="penalty share (fit)")
  a.scatter(dims, shrink, marker="x", color="C3", zorder=3, label="shrinkage share (fit)")
  a.set_xlabel("number of weights d")
  a.set_ylabel("share falling on b")
  a.set_title("D2L truth: w_i = 0.01, b* = 0.05, λ = 1", fontsize=9)
  a.legend(fontsize=7)
  ds, res = ns["ds"], ns["res"]
  x, y = np.asarray(ds.x_val), np.asarray(ds.y_val)
  order = np.argsort(y)
  b.plot(y[order], y[order], "k--", lw=1, label="y = target")
  for i, name in enumerate(("bias free", "bias decayed")):
    w = np.asarray(res.params["linear"]["kernel"][i, :, 0])
    bias = float(res.params["linear"]["bias"][i, 0])
    b.scatter(y, x @ w + bias, s=6, label=f"{name}: b = {bias:.2f}")
  b.set_xlabel("target y (mean 10)")
  b.set_ylabel("prediction")
  b.set_title("large mean, λ = 1: the decayed bias loses the offset", fontsize=9)
  b.legend(fontsize=7)
  _save(fig, path)


def lr_lambda(ns: dict[str, Any], path: str) -> None:
  """Validation loss over the η × λ grid of the D2L experiment, with lines of constant ηλ."""
  import matplotlib.colors as mcolors
  fig, ax = _fig(width=5.0, height=3.8)
  ax = ax[0, 0]
  etas, lams, val = np.asarray(ns["etas"]), np.asarray(ns["lams"]), np.asarray(ns["val"])
  im = ax.imshow(val.T, origin="lower", aspect="auto", cmap="viridis",
                 norm=mcolors.LogNorm(vmin=val.min(), vmax=min(val.max(), 0.05)))
  for i in range(len(etas)):
    for j in range(len(lams)):
      ax.text(i, j, f"{val[i, j]:.4f}" if val[i, j] < 0.1 else f"{val[i, j]:.2f}",
              ha="center", va="center", fontsize=6, color="w")
  # Lines of constant ηλ (the decay per step), drawn in grid coordinates.
  li, lj = np.log(etas), np.log(np.where(lams > 0, lams, np.nan))
  for c in (0.003, 0.03, 0.3):
    e = np.geomspace(etas[0], etas[-1], 50)
    ax.plot(np.interp(np.log(e), li, np.arange(len(etas))),
            np.interp(np.log(c / e), lj[1:], np.arange(1, len(lams)), left=np.nan, right=np.nan),
            "w:", lw=1)
  ax.set_xticks(range(len(etas)), [f"{e:g}" for e in etas])
  ax.set_yticks(range(len(lams)), [f"{v:g}" for v in lams])
  ax.set_xlabel("learning rate η")
  ax.set_ylabel("λ (coupled L2)")
  ax.set_title("D2L, 10 epochs SGD: validation loss (dotted: ηλ = const)", fontsize=9)
  fig.colorbar(im, ax=ax)
  _save(fig, path)


def l1_at_zero(ns: dict[str, Any], path: str) -> None:
  """Iterates of subgradient L1 and proximal L1 on a problem whose minimizer is 0."""
  fig, ax = _fig(width=5.0, height=3.0)
  ax = ax[0, 0]
  ax.plot(ns["sub"], lw=1, label="coupled (subgradient, 0 at 0)")
  ax.plot(ns["prox"], lw=2, label="proximal (soft-threshold)")
  band = ns["eta"] * (ns["lam"] + ns["a"])
  ax.axhspan(-band, band, color="0.9", zorder=0, label="±η(λ + |a|)")
  ax.set_xlabel("step")
  ax.set_ylabel("w")
  ax.set_title("min ½(w − 0.3)² + |w| (answer: w = 0), started at 0", fontsize=9)
  ax.legend(fontsize=7)
  _save(fig, path)


def d2l_seeds(ns: dict[str, Any], path: str) -> None:
  """The book's runs over 20 data seeds: ‖w‖₂ and validation loss per run."""
  fig, axes = _fig(2, width=4.4)
  a, b = axes[0]
  names = [n.split(" (")[0] for n in ns["runs"]]
  for ax, vals, label in ((a, ns["norm"], "‖w‖₂ after 10 epochs"),
                          (b, ns["val_l"], "validation loss")):
    vals = np.asarray(vals)
    for i in range(len(names)):
      ax.scatter(vals[i], np.full(vals.shape[1], i) + np.linspace(-0.15, 0.15, vals.shape[1]), s=8)
      ax.plot([np.median(vals[i])] * 2, [i - 0.3, i + 0.3], "k")
    ax.set_yticks(range(len(names)), names if ax is a else [""] * len(names), fontsize=7)
    ax.set_xlabel(label)
  a.set_title("20 draws of the book's data (bar: median)", fontsize=9)
  _save(fig, path)


def normalized_equilibrium(ns: dict[str, Any], path: str) -> None:
  """Angle per step of the normalized hidden neurons against the step, prediction dashed."""
  fig, ax = _fig(width=5.0)
  ax = ax[0, 0]
  for i, lam in enumerate(ns["lams"]):
    line, = ax.plot(ns["steps"], ns["angle"][i], label=f"λ = {lam:g}")
    ax.axhline(ns["predicted"][i], color=line.get_color(), ls="--", lw=1)
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("angular update (rad, RMS over neurons)")
  ax.set_title("AdamW on a normalized MLP: measured vs √(2ηλ(1−β₁)/(1+β₁))", fontsize=8)
  ax.legend(fontsize=8)
  _save(fig, path)


#: Figure name -> (guide section whose snippet it plots, or None; plot function).
FIGURES: dict[str, tuple[int | None, Callable[[dict[str, Any], str], None]]] = {
    "norm_balls": (None, norm_balls),
    "bias_share": (9, bias_share),
    "lr_lambda": (10, lr_lambda),
    "l1_at_zero": (11, l1_at_zero),
    "d2l_seeds": (12, d2l_seeds),
    "normalized_equilibrium": (14, normalized_equilibrium),
}


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("names", nargs="+", help=f"figures: {', '.join(FIGURES)} or all")
  parser.add_argument("--out", default=os.path.join(HERE, "figures"), help="output folder")
  args = parser.parse_args(argv)
  names = list(FIGURES) if args.names == ["all"] else args.names
  unknown = sorted(set(names) - set(FIGURES))
  if unknown:
    parser.error(f"unknown figure(s) {unknown}; choose from {sorted(FIGURES)}")
  import matplotlib
  matplotlib.use("Agg")
  os.makedirs(args.out, exist_ok=True)
  for name in names:
    section, plot = FIGURES[name]
    out = os.path.join(args.out, f"{name}.png")
    plot(run_section(section) if section is not None else {}, out)
    print(out)


if __name__ == "__main__":
  main()

"""L1 against L2: sparsity, proximal against subgradient L1, and the lasso path.

On scikit-learn's diabetes data (10 standardized features, standardized target), a linear
model is trained full batch across λ three ways: proximal L1 (ISTA, `wdjax.proximal` with
`prox.l1`), subgradient L1 (`wdjax.coupled(penalties.l1)`, what "just add λ‖w‖₁ to the
loss" gives) and coupled L2. The fraction of exact zeros shows the difference: the prox
sets weights to 0.0 exactly, the subgradient makes them oscillate around 0 and never lands
there, L2 shrinks without zeros.

The L1 regularization path (λ from λ_max = ‖Xᵀy‖∞/n down to eps·λ_max, centered data)
is solved by `wdjax.path.lasso_path` in float64 (warm-started FISTA to a duality gap of
1e-10·‖y‖²/n, see `wdjax.path`) and compared with `sklearn.linear_model.lasso_path`
(coordinate descent at a tight tol).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wdjax import _io, models, path
from wdjax.config import Config, ConfigError, bounds
import wdjax.experiments._common as _common
from wdjax.experiments.registry import Kind, Outcome, register


@dataclass(frozen=True)
class L1L2Params:
  """[params] of l1_vs_l2."""
  path_points: int = field(default=30, **bounds(2, 10**4))
  path_eps: float = field(default=1e-3, **bounds(0, 1, strict_lo=True))
  path_max_iter: int = field(default=20000, **bounds(10, 10**8))   # FISTA iterations allowed per λ


CHECKS = {
    "subgradient_zero_fraction": "largest fraction of exact zeros of subgradient L1 over λ",
    "prox_all_zero_above_lambda_max": "fraction of λ ≥ λ_max where proximal L1 gives w = 0",
    "path_vs_sklearn": "max |wdjax.path.lasso_path − sklearn lasso_path| over λ and "
                       "coefficients",
}


def _validate(cfg: Config) -> None:
  _common.allowed_axes(cfg, ("weight_decay",))
  if "weight_decay" not in cfg.sweep.axes:
    raise ConfigError("sweep.weight_decay: missing; l1_vs_l2 sweeps λ.")
  if cfg.data.source not in ("sklearn", "npz") or cfg.model.name != "linear":
    raise ConfigError("data/model: l1_vs_l2 fits a linear model to a regression dataset "
                      "(data.source = 'sklearn' with name = 'diabetes', or an .npz).")


def run(cfg: Config, ctx) -> Outcome:
  p = cfg.params
  ds = _common.dataset(cfg)
  if ds.task != "regression" or np.ndim(ds.y_train) != 1:
    # (integer labels read as classes would train a softmax model beside a lasso path on
    # the same labels as numbers; a 2-D target failed deep in the path's reshape)
    raise ConfigError(f"data: l1_vs_l2 fits a linear model to one regression target, but "
                      f"{cfg.data.path or cfg.data.name!r} gives a {ds.task} task with "
                      f"y_train of shape {np.shape(ds.y_train)}; store a 1-D float target "
                      "(integer labels are read as classes).")
  lams = cfg.sweep.axes["weight_decay"].values()
  model = models.for_dataset("linear", ds, init_std=0.0)
  x = np.asarray(ds.x_train, np.float64)
  y = np.asarray(ds.y_train, np.float64).reshape(len(x))
  xc, yc = x - x.mean(0), y - y.mean()
  lam_max = path.lambda_max(x, y, fit_intercept=True)
  metrics, values, table = {"lambdas": lams}, {"lambda_max": lam_max}, []
  for name, opt in cfg.variants.items():
    res = _common.sweep_variant(ctx, cfg, opt, ds, model,
                                {"weight_decay": lams, "learning_rate": [opt.learning_rate]}, name)
    zf = np.asarray(res.metrics["zero_fraction"])[:, 0, -1]
    vl = np.asarray(res.metrics["val_loss"])[:, 0, -1]
    metrics[f"{name}/zero_fraction"], metrics[f"{name}/val_loss"] = zf, vl
    metrics[f"{name}/weight_norm"] = np.asarray(res.metrics["decayed_norm"])[:, 0, -1]
    if opt.penalty == "l1" and opt.coupling == "coupled":
      values["subgradient_zero_fraction"] = float(zf.max())
    if opt.penalty == "l1" and opt.coupling == "proximal":
      above = lams >= lam_max
      values["prox_all_zero_above_lambda_max"] = (float(np.mean(zf[above] == 1.0))
                                                  if above.any() else float("nan"))
    best = int(np.argmin(vl))
    table.append((f"{name} ({opt.coupling} {opt.penalty}): zeros at λ={lams[len(lams) // 2]:.3g}"
                  f" / best val loss (λ={lams[best]:.3g})",
                  f"{zf[len(lams) // 2]:.0%} / {vl[best]:.4g}"))
  # The path, against scikit-learn (optional and heavy: imported when it is needed).
  from sklearn.linear_model import lasso_path
  path_lams = path.lambda_grid(lam_max, p.path_points, p.path_eps)
  with ctx.timed("path"):
    ours = path.lasso_path(xc, yc, lambdas=path_lams, max_iter=p.path_max_iter,
                           tol=1e-10, dtype=np.float64).coefs
  with ctx.timed("reference"):
    _, sk, _ = lasso_path(xc, yc, alphas=path_lams, tol=1e-12, max_iter=1_000_000)
  values["path_vs_sklearn"] = float(np.max(np.abs(ours - sk.T)))
  metrics["path/lambdas"], metrics["path/ours"], metrics["path/sklearn"] = path_lams, ours, sk.T
  table += [("λ_max = ‖Xᵀy‖∞/n", f"{lam_max:.4g}"),
            (f"lasso path ({p.path_points} λ): max |wdjax.path − sklearn lasso_path|",
             f"{values['path_vs_sklearn']:.2g}")]
  return Outcome(metrics, values, table)


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt  # optional and heavy: imported when a plot is drawn
  lams = m["lambdas"]
  fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
  for name in cfg.variants:
    a1.semilogx(lams, m[f"{name}/zero_fraction"], marker=".", label=name)
    a2.loglog(lams, m[f"{name}/val_loss"], label=name)
  a1.axvline(values["lambda_max"], color="gray", ls="--", lw=0.8, label="λ_max")
  a1.set_xlabel("λ")
  a1.set_ylabel("fraction of exact zeros")
  a1.legend(fontsize=8)
  a2.set_xlabel("λ")
  a2.set_ylabel("validation loss")
  a2.legend(fontsize=8)
  out = [_io.save_figure(fig, f"{out_dir}/l1_vs_l2.png")]
  fig, ax = plt.subplots(figsize=(6, 4))
  pl = m["path/lambdas"]
  for j in range(m["path/ours"].shape[1]):
    ax.semilogx(pl, m["path/ours"][:, j], color=f"C{j % 10}")
    ax.semilogx(pl, m["path/sklearn"][:, j], "o", ms=3, mfc="none", color=f"C{j % 10}")
  ax.invert_xaxis()
  ax.set_xlabel("λ")
  ax.set_ylabel("coefficient")
  ax.set_title(f"lasso path: lines wdjax.path, circles sklearn "
               f"(max gap {values['path_vs_sklearn']:.1g})", fontsize=9)
  out.append(_io.save_figure(fig, f"{out_dir}/lasso_path.png"))
  return out


KIND = register(Kind("l1_vs_l2", L1L2Params, CHECKS, run, plot, _validate,
                     sections=("data", "model", "optimizer", "variants", "train", "sweep")))

"""Should the bias be penalized? The D2L data with and without the bias in the mask.

A linear model ŷ = x·w + b on the D2L synthetic data (true b* = 0.05) is trained to
convergence by full-batch proximal gradient with the L2 prox (stable for any λ), across
λ, with two masks: `weights_only` (wdjax's default: decay w, never b) and `everything`
(decay b too). Each solution is checked against the exact minimizer of
mean ½(xw + b − y)² + (λ/2)(‖w‖² [+ b²]) solved by NumPy. With a huge λ the weights go to
0 in both cases; the undecayed bias then equals mean(y), the model keeps its offset,
while the decayed bias is mean(y)/(1 + λ) → 0: the model loses its offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wdjax import _io, data, models
from wdjax.config import Config, ConfigError, bounds
import wdjax.experiments._common as _common
from wdjax.experiments.registry import Kind, Outcome, register


@dataclass(frozen=True)
class BiasParams:
  """[params] of bias_penalty."""
  data_seed: int = field(default=0, **bounds(0, 2**31 - 1))


CHECKS = {
    "solution_vs_closed_form": "max |(w, b) − exact minimizer| over λ and both masks",
    "decayed_bias_at_max_lambda": "|b| at the largest λ with the bias decayed (true b = 0.05)",
    "undecayed_bias_offset_error": "|b − mean(y_train)| at the largest λ, bias not decayed",
}


def _validate(cfg: Config) -> None:
  _common.allowed_axes(cfg, ("weight_decay",))
  if "weight_decay" not in cfg.sweep.axes:
    raise ConfigError("sweep.weight_decay: missing; bias_penalty sweeps λ.")
  if cfg.data.source != "d2l":
    raise ConfigError("data.source: bias_penalty uses the D2L data (source = 'd2l').")
  if not cfg.variants:
    raise ConfigError("variants: give the masks to compare, e.g. weights_only = "
                      "{mask = 'weights_only'} and decay_bias = {mask = 'everything'}.")


def exact(x: np.ndarray, y: np.ndarray, lam: float, decay_bias: bool) -> np.ndarray:
  """The minimizer [w, b] of mean ½(xw + b − y)² + (λ/2)(‖w‖² + [b²]), in float64."""
  n, d = x.shape
  a = np.hstack([x, np.ones((n, 1))])
  reg = np.full(d + 1, lam)
  if not decay_bias:
    reg[-1] = 0.0
  return np.linalg.solve(a.T @ a / n + np.diag(reg), a.T @ y / n)


def run(cfg: Config, ctx) -> Outcome:
  d = cfg.data
  ds = data.d2l_synthetic(cfg.params.data_seed, d.n_train, d.n_val, d.dim, noise=d.noise)
  lams = cfg.sweep.axes["weight_decay"].values()
  # Zero init keeps full-batch iterates in the row space of X, where the problem is
  # well conditioned (n = 20 < d = 200), so a few hundred steps reach the minimizer.
  model = models.for_dataset("linear", ds, init_std=0.0)
  x, y = np.asarray(ds.x_train, np.float64), np.asarray(ds.y_train, np.float64)
  metrics, values, table = {"lambdas": lams}, {}, []
  gap = 0.0
  # The checks read the largest λ by value: the axis may be given in any order.
  top = int(np.argmax(lams))
  for name, opt in cfg.variants.items():
    res = _common.sweep_variant(ctx, cfg, opt, ds, model,
                                {"weight_decay": lams, "learning_rate": [opt.learning_rate]}, name,
                                return_params=True, batch_size=0)
    p = res.params["linear"]
    w, b = np.asarray(p["kernel"])[:, 0, :, 0], np.asarray(p["bias"])[:, 0, 0]
    decay_bias = opt.mask == "everything"
    ref = np.array([exact(x, y, lam, decay_bias) for lam in lams])
    gap = max(gap, float(np.max(np.abs(np.column_stack([w, b]) - ref))))
    metrics[f"{name}/bias"], metrics[f"{name}/weight_norm"] = b, np.linalg.norm(w, axis=1)
    metrics[f"{name}/val_loss"] = np.asarray(res.metrics["val_loss"])[:, 0, -1]
    metrics[f"{name}/train_loss"] = np.asarray(res.metrics["train_loss"])[:, 0, -1]
    metrics[f"{name}/exact_bias"] = ref[:, -1]
    if decay_bias:
      values["decayed_bias_at_max_lambda"] = float(abs(b[top]))
    else:
      values["undecayed_bias_offset_error"] = float(abs(b[top] - y.mean()))
    best = int(np.argmin(metrics[f"{name}/val_loss"]))
    table += [(f"{name} (mask {opt.mask}): bias at λ={lams[top]:g} (true 0.05, mean y "
               f"{y.mean():.3f})", f"{b[top]:.4g}"),
              (f"{name}: best validation loss (at λ={lams[best]:.3g})",
               f"{metrics[f'{name}/val_loss'][best]:.4g}")]
  values["solution_vs_closed_form"] = gap
  table.append(("max |solution − exact minimizer| (all λ, both masks)", f"{gap:.2g}"))
  return Outcome(metrics, values, table)


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt  # optional and heavy: imported when a plot is drawn
  lams = m["lambdas"]
  fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
  for name in cfg.variants:
    a1.semilogx(lams, m[f"{name}/bias"], label=f"{name}")
    a1.semilogx(lams, m[f"{name}/exact_bias"], "k:", lw=0.8)
    a2.loglog(lams, m[f"{name}/val_loss"], label=name)
  a1.axhline(0.05, color="gray", ls="--", lw=0.8, label="true b = 0.05")
  a1.set_xlabel("λ")
  a1.set_ylabel("learned bias b (dotted: exact)")
  a1.legend(fontsize=8)
  a2.set_xlabel("λ")
  a2.set_ylabel("validation loss")
  a2.legend(fontsize=8)
  fig.suptitle("Should the bias be penalized?")
  out = [_io.save_figure(fig, f"{out_dir}/bias_penalty.png")]
  return out


KIND = register(Kind("bias_penalty", BiasParams, CHECKS, run, plot, _validate,
                     sections=("data", "optimizer", "variants", "train", "sweep")))

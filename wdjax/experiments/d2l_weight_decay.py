"""D2L "Weight Decay" (section 3.7) and its exercises 1-2, as one vmapped program.

Data: y = x·w* + b* + ε with w* = 0.01·1_200, b* = 0.05, ε ~ N(0, 0.01²), 20 training and
100 validation examples per seed (`wdjax.data.d2l_synthetic`); a linear model trained by
minibatch SGD (batch 5, η = 0.01, 10 epochs) on ½(ŷ − y)² + (λ/2)‖w‖², the bias not decayed.

- The figure: λ = 0 against λ = 3, train and validation loss per epoch, and the weights'
  size. D2L prints `l2_penalty(w) = ‖w‖²/2` and calls it "L2 norm of w"; both ‖w‖₂ and
  ‖w‖²/2 are reported here under their own names.
- Exercise 1: final train/validation loss against 64 values of λ, over 20 seeds (one
  compiled program: vmap over seeds of vmap over λ of the `lax.scan` training).
- Exercise 2: λ chosen on the 100 validation examples against the λ that is best on a
  large held-out set, and against the λ that minimizes the population risk of the exact
  ridge solution. Since x ~ N(0, I), the population risk of (w, b) has the closed form
  ½(‖w − w*‖² + (b − b*)² + σ²), an independent check of the held-out estimate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from wdjax import _io, data, models, optimizers, train
from wdjax.config import Config, ConfigError, bounds
import wdjax.experiments._common as _common
from wdjax.experiments.registry import Kind, Outcome, register

W_TRUE, B_TRUE = 0.01, 0.05


@dataclass(frozen=True)
class D2LParams:
  """[params] of d2l_weight_decay."""
  compare: tuple[float, ...] = field(default=(0.0, 3.0), **bounds(0, 1e6))  # D2L's figure's λ
  heldout_seed: int = field(default=10_000, **bounds(0, 2**31 - 1))  # the held-out set's key
  ridge_points: int = field(default=801, **bounds(2, 10**6))  # λ grid of the exact optimum


CHECKS = {
    "norm_ratio": "‖w‖ at the 2nd `compare` λ over ‖w‖ at the 1st (seed-median): decay shrinks w",
    "val_loss_ratio": "validation loss at the 2nd `compare` λ over the 1st (seed-median)",
    "heldout_vs_population": "max relative gap, held-out loss vs closed-form population risk",
    "ridge_vs_sklearn": "max |closed-form ridge − sklearn Ridge(alpha=nλ)| (weights)",
    "val_choice_factor": "median over seeds of the factor between λ chosen on validation and "
                         "the held-out best λ",
    "val_choice_regret": "median over seeds of held-out loss at the validation λ over the "
                         "held-out best, minus 1",
}


def _validate(cfg: Config) -> None:
  _common.allowed_axes(cfg, ("weight_decay", "seed"))
  if cfg.data.source != "d2l":
    raise ConfigError(f"data.source = {cfg.data.source!r}: d2l_weight_decay uses the D2L "
                      "synthetic data (source = 'd2l').")
  if "weight_decay" not in cfg.sweep.axes:
    raise ConfigError("sweep.weight_decay: missing; d2l_weight_decay sweeps λ, e.g. "
                      "weight_decay = {logspace = [-3, 2, 64]}.")
  if len(cfg.params.compare) != 2 or min(cfg.params.compare) < 0:
    raise ConfigError(f"params.compare = {list(cfg.params.compare)}: give two λ >= 0 "
                      "(D2L: [0, 3]).")
  if cfg.train.batch_size > cfg.data.n_train:
    raise ConfigError(f"train.batch_size = {cfg.train.batch_size} exceeds data.n_train = "
                      f"{cfg.data.n_train}; use 0 for full batch.")


def _program(cfg: Config):
  d = cfg.data
  batch = cfg.train.batch_size or None
  opt = cfg.optimizer
  steps = cfg.train.epochs * (1 if batch is None else d.n_train // batch)
  build = _common.optimizer_builder(opt, steps)

  def one_seed(seed, lams, x_ho, y_ho):
    ds = data.d2l_synthetic(seed, d.n_train, d.n_val, d.dim, w=W_TRUE, b=B_TRUE, noise=d.noise)
    fn = train.make_train_fn(models.for_dataset("linear", ds), ds, optimizer=build,
                             epochs=cfg.train.epochs, batch_size=batch,
                             report_mask=optimizers.MASKS[opt.mask], return_params=True)
    key = jax.random.fold_in(jax.random.key(cfg.seed), seed)

    def one(lam):
      m = fn({"learning_rate": jnp.float32(opt.learning_rate), "weight_decay": lam}, key)
      p = m.pop("params")["linear"]
      w, b = p["kernel"][:, 0], p["bias"][0]
      m["w"], m["b"] = w, b
      m["heldout_loss"] = 0.5 * jnp.mean(jnp.square(x_ho @ w + b - y_ho))
      return m

    out = jax.vmap(one)(lams)
    out["x_train"], out["y_train"] = ds.x_train, ds.y_train
    return out

  def program(seeds, lams):
    # The held-out set is drawn inside the compiled program (once, outside the vmap).
    x_ho, y_ho = _heldout_arrays((max(d.n_heldout, 1), d.dim), cfg.params.heldout_seed, d.noise)
    return jax.vmap(one_seed, in_axes=(0, None, None, None))(seeds, lams, x_ho, y_ho)

  return program


def _heldout_arrays(shape, seed, noise):
  """A large held-out set from the data distribution, independent of every training set."""
  kx, kn = jax.random.split(jax.random.key(seed))
  x = jax.random.normal(kx, shape)
  y = x @ jnp.full((shape[1],), W_TRUE) + B_TRUE + noise * jax.random.normal(kn, (shape[0],))
  return x, y


def _ridge(x: np.ndarray, y: np.ndarray, lams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Exact minimizers of mean ½(xw + b − y)² + (λ/2)‖w‖² (b free), for every λ at once.

  With centered Xc, yc: w = Xcᵀ(XcXcᵀ/n + λI)⁻¹ yc / n (the n x n dual form, n < d).
  """
  n = x.shape[0]
  xm, ym = x.mean(0), y.mean()
  xc, yc = x - xm, y - ym
  evals, evecs = np.linalg.eigh(xc @ xc.T / n)
  proj = evecs.T @ yc
  coef = proj[None, :] / (evals[None, :] + lams[:, None])          # (L, n)
  w = (coef @ evecs.T) @ xc / n                                     # (L, d)
  b = ym - w @ xm
  return w, b


def _population_risk(w: np.ndarray, b: np.ndarray, noise: float) -> np.ndarray:
  return 0.5 * (np.sum(np.square(w - W_TRUE), -1) + np.square(b - B_TRUE) + noise ** 2)


def run(cfg: Config, ctx) -> Outcome:
  p = cfg.params
  grid = cfg.sweep.axes["weight_decay"].values()
  seeds = _common.axis(cfg, "seed", cfg.seed).astype(np.int32)
  lams = np.concatenate([np.asarray(p.compare), grid]).astype(np.float32)
  program = _program(cfg)
  per_chunk = len(seeds)
  if cfg.sweep.chunk_size:
    per_chunk = max(1, cfg.sweep.chunk_size // len(lams))
  chunks = [seeds[i:i + per_chunk] for i in range(0, len(seeds), per_chunk)]
  compiled = None
  parts = []
  t0 = time.perf_counter()
  for i, chunk in enumerate(chunks):
    def compute(chunk=chunk):
      nonlocal compiled
      padded = np.concatenate([chunk, np.repeat(chunk[-1:], per_chunk - len(chunk))])
      args = (jnp.asarray(padded), jnp.asarray(lams))
      if compiled is None:
        compiled = _common.compile_fn(ctx, cfg, program, *args)
      with ctx.timed("run"):
        out = jax.block_until_ready(compiled(*args))
      return {k: np.asarray(v)[:len(chunk)] for k, v in out.items()}
    parts.append(ctx.cached(f"seeds_{i:04d}", compute))
    if len(chunks) > 1:
      _common.log_progress(ctx, "seed chunks", i + 1, len(chunks), t0)
  m = {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}

  with ctx.timed("reference"):
    values, table, extra = _analyse(cfg, m, grid, seeds)
  x_train, y_train = m.pop("x_train"), m.pop("y_train")
  del x_train, y_train
  m.update(extra)
  m["lambdas"], m["grid"], m["seeds"] = lams, grid, seeds
  return Outcome(m, values, table)


def _analyse(cfg: Config, m: dict, grid: np.ndarray, seeds: np.ndarray):
  p, noise = cfg.params, cfg.data.noise
  nc = len(p.compare)
  w_norm = np.linalg.norm(m["w"], axis=-1)                       # (S, L)
  val_final = m["val_loss"][:, :, -1]
  ho = m["heldout_loss"]
  pop = _population_risk(m["w"].astype(np.float64), m["b"].astype(np.float64), noise)
  # Exact ridge on every seed's training set: on the config's grid and on a fine grid.
  fine = np.logspace(np.log10(max(grid.min(), 1e-6)) - 1, np.log10(grid.max()) + 1, p.ridge_points)
  ridge_grid_risk, ridge_fine_risk = [], []
  for s in range(len(seeds)):
    x, y = m["x_train"][s].astype(np.float64), m["y_train"][s].astype(np.float64)
    ridge_grid_risk.append(_population_risk(*_ridge(x, y, grid), noise))
    ridge_fine_risk.append(_population_risk(*_ridge(x, y, fine), noise))
  ridge_grid_risk, ridge_fine_risk = np.array(ridge_grid_risk), np.array(ridge_fine_risk)
  lam_ridge = fine[np.argmin(ridge_fine_risk, axis=1)]
  # Independent reference for the closed form: scikit-learn's Ridge, alpha = n·λ.
  from sklearn.linear_model import Ridge  # optional and heavy: the reference
  x0, y0 = m["x_train"][0].astype(np.float64), m["y_train"][0].astype(np.float64)
  probe = grid[[0, len(grid) // 2, -1]]
  w_cf, b_cf = _ridge(x0, y0, probe)
  gap = 0.0
  for lam, wc, bc in zip(probe, w_cf, b_cf):
    sk = Ridge(alpha=len(y0) * lam, fit_intercept=True, solver="svd").fit(x0, y0)
    gap = max(gap, np.max(np.abs(sk.coef_ - wc)), abs(sk.intercept_ - bc))
  # Exercise 2: choose λ on validation, compare with the held-out best.
  sgd_val, sgd_ho = val_final[:, nc:], ho[:, nc:]
  i_val, i_ho = np.argmin(sgd_val, axis=1), np.argmin(sgd_ho, axis=1)
  lam_val, lam_ho = grid[i_val], grid[i_ho]
  rows = np.arange(len(seeds))
  factor = np.maximum(lam_val / lam_ho, lam_ho / lam_val)
  regret = sgd_ho[rows, i_val] / sgd_ho[rows, i_ho] - 1
  med = lambda a: float(np.median(a))
  values = {
      "norm_ratio": med(w_norm[:, 1] / w_norm[:, 0]),
      "val_loss_ratio": med(val_final[:, 1] / val_final[:, 0]),
      "heldout_vs_population": float(np.max(np.abs(ho / pop - 1))),
      "ridge_vs_sklearn": float(gap),
      "val_choice_factor": med(factor),
      "val_choice_regret": med(regret),
      "lambda_val_median": med(lam_val),
      "lambda_heldout_median": med(lam_ho),
      "lambda_ridge_median": med(lam_ridge),
      "heldout_best_median": med(sgd_ho[rows, i_ho]),
      "ridge_best_risk_median": med(ridge_fine_risk.min(axis=1)),
  }
  for j, lam in enumerate(p.compare):
    tag = f"{lam:g}"
    values[f"norm_w_lambda_{tag}"] = med(w_norm[:, j])
    values[f"half_sq_norm_lambda_{tag}"] = med(0.5 * w_norm[:, j] ** 2)
    values[f"train_loss_lambda_{tag}"] = med(m["train_loss"][:, j, -1])
    values[f"val_loss_lambda_{tag}"] = med(val_final[:, j])
  S = len(seeds)
  table = []
  for j, lam in enumerate(p.compare):
    tag = f"{lam:g}"
    table += [
        (f"λ={tag}: train / validation loss (median of {S} seeds)",
         f"{values[f'train_loss_lambda_{tag}']:.3g} / {values[f'val_loss_lambda_{tag}']:.3g}"),
        (f"λ={tag}: ‖w‖₂ / ‖w‖²/2 (D2L prints the latter as 'L2 norm')",
         f"{values[f'norm_w_lambda_{tag}']:.4g} / {values[f'half_sq_norm_lambda_{tag}']:.3g}"),
    ]
  table += [
      (f"λ chosen on validation (median of {S} seeds)", f"{values['lambda_val_median']:.3g}"),
      ("best λ on the held-out set (SGD, 10k examples)", f"{values['lambda_heldout_median']:.3g}"),
      ("λ minimizing the exact ridge population risk", f"{values['lambda_ridge_median']:.3g}"),
      ("held-out loss: at the validation λ, regret vs best", f"{100 * values['val_choice_regret']:.2g}%"),
      ("population risk: best SGD (10 epochs) / exact ridge optimum",
       f"{values['heldout_best_median']:.4g} / {values['ridge_best_risk_median']:.4g}"),
      (f"grid: {len(grid)} λ x {S} seeds = runs", f"{len(grid) * S}"),
  ]
  extra = {"population_risk": pop, "ridge_grid_risk": ridge_grid_risk, "ridge_fine": fine,
           "ridge_fine_risk": ridge_fine_risk, "lambda_val": lam_val, "lambda_heldout": lam_ho,
           "lambda_ridge": lam_ridge}
  return values, table, extra


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt  # optional and heavy: imported when a plot is drawn
  out = []
  nc = len(cfg.params.compare)
  fig, axes = plt.subplots(1, nc, figsize=(4.2 * nc, 3.2), sharey=True)
  epochs = np.arange(1, m["train_loss"].shape[-1] + 1)
  for j, ax in enumerate(np.atleast_1d(axes)):
    ax.semilogy(epochs, m["train_loss"][0, j], label="train")
    ax.semilogy(epochs, m["val_loss"][0, j], "--", label="validation")
    ax.set_title(f"λ = {cfg.params.compare[j]:g}: ‖w‖ = {np.linalg.norm(m['w'][0, j]):.3g}")
    ax.set_xlabel("epoch")
    ax.legend()
  np.atleast_1d(axes)[0].set_ylabel("loss")
  out.append(_io.save_figure(fig, f"{out_dir}/d2l_curves.png"))

  grid = m["grid"]
  fig, ax = plt.subplots(figsize=(6, 4))
  for key, label, style in (("train_loss", "train", "-"), ("val_loss", "validation", "-"),
                            ("heldout_loss", "held-out (10k)", "-")):
    a = m[key][:, nc:, -1] if m[key].ndim == 3 else m[key][:, nc:]
    med = np.median(a, axis=0)
    ax.loglog(grid, med, style, label=f"SGD {label}")
    ax.fill_between(grid, np.quantile(a, 0.25, axis=0), np.quantile(a, 0.75, axis=0), alpha=0.2)
  ax.loglog(m["ridge_fine"], np.median(m["ridge_fine_risk"], axis=0), "k:",
            label="exact ridge, population risk")
  for key, c, lab in (("lambda_val_median", "C1", "λ on validation"),
                      ("lambda_heldout_median", "C2", "held-out best λ"),
                      ("lambda_ridge_median", "k", "ridge optimum λ")):
    ax.axvline(values[key], color=c, ls="--", lw=0.8, label=lab)
  ax.set_xlabel("λ (weight decay)")
  ax.set_ylabel(f"loss after {m['train_loss'].shape[-1]} epochs (median, IQR)")
  ax.set_title(f"D2L weight decay: {len(grid)} λ x {m['train_loss'].shape[0]} seeds")
  ax.legend(fontsize=7)
  out.append(_io.save_figure(fig, f"{out_dir}/d2l_lambda.png"))
  return out


KIND = register(Kind("d2l_weight_decay", D2LParams, CHECKS, run, plot, _validate,
                     sections=("data", "optimizer", "train", "sweep")))

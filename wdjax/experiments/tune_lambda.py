"""Choosing λ by gradient against the best λ of a grid (issue 5, part 3).

Two problems, each trained by a pure `wdjax.train` function with one fixed PRNG key, so
that the validation loss V(λ) after training is a deterministic function of λ:

- *D2L*: the linear model of D2L section 3.7 (20 training examples, d = 200) trained by
  minibatch SGD on ½(ŷ − y)² + (λ/2)‖w‖² (coupled L2, bias not decayed);
- *digits*: a small MLP on a subset of scikit-learn's digits, trained by AdamW
  (u ← u − η·λ·w after Adam, c_t = η as in optax/PyTorch).

For each, `wdjax.tune.search` runs Adam on log λ with dV/d log λ taken through the
unrolled training (`jax.grad` through the `lax.scan`), and a `wdjax.sweep` grid over λ (one
compiled program) gives the grid's best λ on the *same* validation set. Both λ are then
judged on a held-out test set neither method saw. The hypergradient at the λ the search
chose is compared with central finite differences of V from the grid program
(V(λe^ε) − V(λe^−ε))/(2ε), ε in log λ; the FD points ride along in the same sweep.
With ReLU the trained network, hence V(λ), is only piecewise smooth in λ (a kink wherever
an activation changes sign somewhere along training), so the autodiff value is the
derivative of the local piece: it matches a central difference at ε = 1e-5 (float64),
while one at ε = 0.1 (also reported) averages the slopes across many kinks.

Third, the full-batch lasso on diabetes: `wdjax.tune.lasso_hypergradient` (implicit
differentiation of the optimality condition) against central differences of V computed
with scikit-learn's `LassoLars`, an exact homotopy solver (independent of wdjax's
solver). On a fixed support w(λ) is affine in λ, so V is quadratic there and the
central difference is exact up to rounding.

Adam's √v̂ has an infinite derivative at v̂ = 0 (coordinates whose gradient is always 0:
digits' constant border pixels, dead ReLU units), which makes the hypergradient NaN; the
digits optimizer therefore uses `optax.adam(..., eps_root=1e-8)` (√(v̂ + eps_root), the
fix optax documents for meta-gradients through Adam).

References:
  Maclaurin et al, Gradient-based Hyperparameter Optimization through Reversible
  Learning, 2015. https://arxiv.org/abs/1502.03492
  Bertrand et al, Implicit differentiation of Lasso-type models for hyperparameter
  optimization, 2020. https://arxiv.org/abs/2002.08943
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from wdjax import _io, data, masks, models, optimizers, sweep, train, tune
from wdjax.config import Config, ConfigError, bounds
from wdjax.experiments.registry import Kind, Outcome, register


@dataclass(frozen=True)
class D2LProblem:
  """[params.d2l]: D2L's linear model, SGD with coupled L2 (D2L's defaults)."""
  n_train: int = field(default=20, **bounds(1, 10**6))
  n_val: int = field(default=100, **bounds(1, 10**6))
  n_test: int = field(default=2000, **bounds(1, 10**6))  # held out, seen by neither method
  dim: int = field(default=200, **bounds(1, 10**5))
  noise: float = field(default=0.01, **bounds(0, 1e6))
  learning_rate: float = field(default=0.01, **bounds(0, strict_lo=True))
  epochs: int = field(default=10, **bounds(1, 10**6))
  batch_size: int = field(default=5, **bounds(1, 10**6))
  grid: tuple[float, ...] = (-3.0, 2.0, 26.0)   # log10(λ) start, stop, count
  start: float = field(default=0.1, **bounds(0, strict_lo=True))  # the search's first λ


@dataclass(frozen=True)
class DigitsProblem:
  """[params.digits]: an MLP on a digits subset, AdamW (c_t = η)."""
  # training examples (a subset, so that λ matters)
  n_train: int = field(default=300, **bounds(1, 10**6))
  val_fraction: float = field(default=0.2, **bounds(0, 0.9))
  test_fraction: float = field(default=0.2, **bounds(0, 0.9))
  widths: tuple[int, ...] = field(default=(64,), **bounds(1, 10**5))
  learning_rate: float = field(default=3e-3, **bounds(0, strict_lo=True))
  epochs: int = field(default=30, **bounds(1, 10**6))
  batch_size: int = field(default=32, **bounds(1, 10**6))
  # √(v̂ + eps_root): finite hypergradients through Adam
  eps_root: float = field(default=1e-8, **bounds(0))
  grid: tuple[float, ...] = (-3.0, 1.0, 17.0)
  start: float = field(default=1e-2, **bounds(0, strict_lo=True))


@dataclass(frozen=True)
class LassoProblem:
  """[params.lasso]: full-batch lasso on diabetes, implicit hypergradient vs exact FD."""
  lambdas: tuple[float, ...] = field(default=(0.005, 0.02, 0.05, 0.2),
                                     **bounds(0, strict_lo=True))
  val_fraction: float = field(default=0.3, **bounds(0, 0.9, strict_lo=True))
  fd_step: float = 1e-3       # relative step of the central difference in λ


@dataclass(frozen=True)
class TuneParams:
  """[params] of tune_lambda."""
  d2l: D2LProblem = field(default_factory=D2LProblem)
  digits: DigitsProblem = field(default_factory=DigitsProblem)
  lasso: LassoProblem = field(default_factory=LassoProblem)
  search_steps: int = field(default=30, **bounds(1, 10**5))  # Adam steps on log λ
  search_lr: float = 0.5      # Adam's step size in log λ
  # central-difference step in log λ. Small: with ReLU, V(λ) is only piecewise smooth
  # (each kink is an activation changing sign somewhere in training), so a wide step
  # averages slopes across kinks; float64 keeps the rounding error ~1e-11 at this step.
  fd_eps: float = 1e-5
  fd_coarse_eps: float = 0.1  # a wide central difference, reported (the trend across kinks)
  # |g − fd| / (|fd| + fd_floor·V): the floor keeps the relative error meaningful at a
  # stationary point, where the search tends to stop (g ≈ 0)
  fd_floor: float = 1e-4


CHECKS = {
    "d2l_test_gap": "D2L: test loss at the searched λ over test loss at the grid's best λ, "
                    "minus 1",
    "d2l_val_gap": "D2L: validation loss at the searched λ over the grid's best, minus 1",
    "d2l_hypergrad_vs_fd": "D2L: |dV/dlogλ − central FD| / (|FD| + floor·V) at the searched λ",
    "digits_test_gap": "digits: test loss at the searched λ over that at the grid's best, "
                       "minus 1",
    "digits_val_gap": "digits: validation loss at the searched λ over the grid's best, minus 1",
    "digits_hypergrad_vs_fd": "digits: |dV/dlogλ − central FD| / (|FD| + floor·V) at the "
                              "searched λ",
    "d2l_search_value_consistency": "D2L: |V from the search's gradient program / V from "
                                    "the vmapped sweep − 1| at the searched λ (same function)",
    "digits_search_value_consistency": "digits: the same consistency for the digits MLP",
    "lasso_hypergrad_vs_fd": "lasso: max relative error of the implicit dV/dλ against "
                             "central FD of exact LassoLars solutions",
    "lasso_solution_vs_lars": "lasso: max |w (wdjax) − w (sklearn LassoLars)|",
}


def _grid(spec: tuple[float, ...], path: str) -> np.ndarray:
  if (len(spec) != 3 or spec[2] != int(spec[2]) or not 2 <= spec[2] <= 10**4
      or spec[0] >= spec[1] or max(abs(spec[0]), abs(spec[1])) > 300):
    raise ConfigError(f"{path} = {list(spec)}: expected [log10 start, log10 stop, count] "
                      "with -300 <= start < stop <= 300 and an integer count in [2, 10000], "
                      "e.g. [-3, 2, 26].")
  return np.logspace(spec[0], spec[1], int(spec[2]))


def _validate(cfg: Config) -> None:
  if cfg.sweep.axes or cfg.variants:
    raise ConfigError("sweep / variants: tune_lambda builds its own grids and optimizers "
                      "from [params.d2l] and [params.digits] (grid = [lo, hi, count]); "
                      "remove the [sweep] axes and [variants].")
  p = cfg.params
  for name in ("d2l", "digits"):
    q = getattr(p, name)
    _grid(q.grid, f"params.{name}.grid")
    for k in ("learning_rate", "start", "n_train", "epochs", "batch_size"):
      if getattr(q, k) <= 0:
        raise ConfigError(f"params.{name}.{k} = {getattr(q, k)}: must be > 0.")
    if q.batch_size > q.n_train:
      raise ConfigError(f"params.{name}.batch_size = {q.batch_size} exceeds params.{name}."
                        f"n_train = {q.n_train}.")
  if not p.lasso.lambdas or min(p.lasso.lambdas) <= 0:
    raise ConfigError(f"params.lasso.lambdas = {list(p.lasso.lambdas)}: give λ values > 0.")
  if not 0 < p.lasso.fd_step < 0.1:
    raise ConfigError(f"params.lasso.fd_step = {p.lasso.fd_step}: must be in (0, 0.1).")
  if (p.search_steps <= 0 or p.search_lr <= 0 or p.fd_eps <= 0 or p.fd_coarse_eps <= 0
      or p.fd_floor < 0):
    raise ConfigError("params.search_steps, search_lr, fd_eps and fd_coarse_eps must be > 0 "
                      "(fd_floor >= 0).")
  vf, tf = p.digits.val_fraction, p.digits.test_fraction
  if not (vf > 0 and tf > 0 and vf + tf < 1):
    raise ConfigError(f"params.digits.val_fraction = {vf}, params.digits.test_fraction = {tf}: "
                      "need both > 0 (a validation set and a held-out test set) and their sum "
                      "< 1 (some data left to train on); e.g. val_fraction = 0.2, "
                      "test_fraction = 0.2.")


# ----------------------------------------------------------------------------- problems


def _d2l(cfg: Config):
  q = cfg.params.d2l
  full = data.d2l_synthetic(cfg.seed, q.n_train, q.n_val + q.n_test, q.dim, noise=q.noise)
  ds = full._replace(x_val=full.x_val[:q.n_val], y_val=full.y_val[:q.n_val],
                     x_test=full.x_val[q.n_val:], y_test=full.y_val[q.n_val:])
  batch = None if q.batch_size >= q.n_train else q.batch_size
  fn = train.make_train_fn(models.for_dataset("linear", ds), ds, optimizer="sgd_l2",
                           epochs=q.epochs, batch_size=batch, eval_train=False)
  return fn, {"learning_rate": q.learning_rate}


def _digits(cfg: Config):
  q = cfg.params.digits
  ds = data.sklearn_dataset("digits", cfg.seed, val_fraction=q.val_fraction,
                            test_fraction=q.test_fraction)
  n = int(ds.x_train.shape[0])
  if q.n_train > n:
    raise ConfigError(f"params.digits.n_train = {q.n_train}: the training split has only {n} "
                      "examples.")
  ds = ds._replace(x_train=ds.x_train[:q.n_train], y_train=ds.y_train[:q.n_train])
  # AdamW as optax has it (c_t = η), biases not decayed; eps_root keeps hypergradients finite.
  adamw = optimizers.get("adamw", eps_root=q.eps_root, mask=masks.weights_only)

  batch = None if q.batch_size >= q.n_train else q.batch_size
  fn = train.make_train_fn(models.for_dataset("mlp", ds, widths=q.widths), ds, optimizer=adamw,
                           epochs=q.epochs, batch_size=batch, eval_train=False)
  return fn, {"learning_rate": q.learning_rate}


def _compare(ctx, cfg: Config, name: str, fn, fixed: dict, grid: np.ndarray, start: float):
  """Gradient search, hypergradient at its λ, and one sweep (grid + FD points)."""
  p = cfg.params
  key = jax.random.key(cfg.seed)
  with ctx.timed(f"{name}: gradient search"):
    res = tune.search(fn, {**fixed, "weight_decay": start}, key, wrt=("weight_decay",),
                      steps=p.search_steps, learning_rate=p.search_lr)
  lam_s = float(res.best["weight_decay"])
  with ctx.timed(f"{name}: hypergradient"):
    v_hg, g = tune.hypergradient(fn, {**fixed, "weight_decay": lam_s}, key,
                                 wrt=("weight_decay",))
  g = float(g["weight_decay"])
  extra = lam_s * np.exp([0.0, p.fd_eps, -p.fd_eps, p.fd_coarse_eps, -p.fd_coarse_eps])
  lams = np.concatenate([grid, extra])
  d = ctx.chunk_dir()
  with ctx.timed(f"{name}: grid sweep (compile + run)"):
    sw = sweep.run(fn, sweep.grid(product={"weight_decay": lams,
                                           "learning_rate": [fixed["learning_rate"]]}),
                   progress=False, seed=cfg.seed,
                   checkpoint_dir=None if d is None else f"{d}/{name}")
  val = np.asarray(sw.metrics["val_loss"], np.float64)[:, 0, -1]
  test = np.asarray(sw.metrics["test_loss"], np.float64)[:, 0, -1]
  acc = np.asarray(sw.metrics["test_acc"])[:, 0, -1] if "test_acc" in sw.metrics else None
  ng = len(grid)
  finite = np.isfinite(val[:ng])
  i = int(np.argmin(np.where(finite, val[:ng], np.inf)))
  fd = (val[ng + 1] - val[ng + 2]) / (2 * p.fd_eps)
  fd_coarse = (val[ng + 3] - val[ng + 4]) / (2 * p.fd_coarse_eps)
  v_s = val[ng]
  out = {
      "lambda_search": lam_s, "lambda_grid": float(grid[i]),
      "val_search": float(v_s), "val_grid": float(val[i]),
      "test_search": float(test[ng]), "test_grid": float(test[i]),
      "test_gap": float(test[ng] / test[i] - 1), "val_gap": float(v_s / val[i] - 1),
      "hypergrad": g, "hypergrad_fd": float(fd), "hypergrad_fd_coarse": float(fd_coarse),
      "hypergrad_vs_fd": float(abs(g - fd) / (abs(fd) + p.fd_floor * abs(v_s))),
      "search_value_consistency": float(abs(res.best_value / v_s - 1)),
      "hypergrad_value_consistency": float(abs(float(v_hg) / v_s - 1)),
  }
  if acc is not None:
    out["test_acc_search"], out["test_acc_grid"] = float(acc[ng]), float(acc[i])
  arrays = {f"{name}/grid": grid, f"{name}/val": val[:ng], f"{name}/test": test[:ng],
            f"{name}/search_lambda": res.trajectory["weight_decay"],
            f"{name}/search_val": res.values}
  return out, arrays


def _lasso(cfg: Config, ctx):
  """Implicit lasso hypergradient against central FD of exact LassoLars solutions."""
  from sklearn.linear_model import LassoLars  # optional and heavy: the reference
  q = cfg.params.lasso
  with jax.enable_x64(True):
    ds = data.sklearn_dataset("diabetes", cfg.seed, val_fraction=q.val_fraction,
                              standardize_target=True, dtype=jnp.float64)
  X, y, Xv, yv = (np.asarray(a, np.float64) for a in (ds.x_train, ds.y_train, ds.x_val, ds.y_val))

  def lars(lam):
    w = LassoLars(alpha=lam, fit_intercept=False).fit(X, y).coef_
    r = yv - Xv @ w
    return 0.5 * float(r @ r) / len(yv), w

  rows, errs, sol = [], [], []
  with ctx.timed("lasso"):
    for lam in q.lambdas:
      v, g, w = tune.lasso_hypergradient(X, y, Xv, yv, lam)
      h = q.fd_step * lam
      fd = (lars(lam + h)[0] - lars(lam - h)[0]) / (2 * h)
      errs.append(abs(g - fd) / max(abs(fd), 1e-300) if g != fd else 0.0)
      sol.append(float(np.max(np.abs(w - lars(lam)[1]))))
      rows.append((lam, v, g, fd, int(np.count_nonzero(w))))
    fine = np.logspace(np.log10(min(q.lambdas)) - 0.5, np.log10(max(q.lambdas)) + 0.3, 60)
    curve = np.array([lars(l)[0] for l in fine])
  arrays = {"lasso/lambdas": np.asarray(q.lambdas), "lasso/val": np.array([r[1] for r in rows]),
            "lasso/grad": np.array([r[2] for r in rows]), "lasso/fd": np.array([r[3] for r in rows]),
            "lasso/fine": fine, "lasso/fine_val": curve}
  return rows, float(max(errs)), float(max(sol)), arrays


def run(cfg: Config, ctx) -> Outcome:
  p = cfg.params
  metrics, values, table = {}, {}, []
  with jax.enable_x64(cfg.train.x64):
    for name, make, q in (("d2l", _d2l, p.d2l), ("digits", _digits, p.digits)):
      fn, fixed = make(cfg)
      out, arrays = _compare(ctx, cfg, name, fn, fixed, _grid(q.grid, f"params.{name}.grid"),
                             q.start)
      metrics.update(arrays)
      values.update({f"{name}_{k}": v for k, v in out.items()})
      label = ("D2L linear, SGD + coupled L2" if name == "d2l" else
               f"digits MLP {list(q.widths)}, AdamW, {q.n_train} examples")
      table += [
          (f"{label}: λ by gradient search / grid's best λ ({len(metrics[f'{name}/grid'])} "
           "values)", f"{out['lambda_search']:.3g} / {out['lambda_grid']:.3g}"),
          (f"{label}: validation loss, search / grid",
           f"{out['val_search']:.4g} / {out['val_grid']:.4g}"),
          (f"{label}: test loss, search / grid ({100 * out['test_gap']:+.2f}%)",
           f"{out['test_search']:.4g} / {out['test_grid']:.4g}"),
          (f"{label}: dV/dlogλ at the searched λ, autodiff / central FD (ε={p.fd_eps:g}) "
           f"/ FD (ε={p.fd_coarse_eps:g})",
           f"{out['hypergrad']:.4g} / {out['hypergrad_fd']:.4g} / "
           f"{out['hypergrad_fd_coarse']:.4g}"),
      ]
      if "test_acc_search" in out:
        table.append((f"{label}: test accuracy, search / grid",
                      f"{out['test_acc_search']:.2%} / {out['test_acc_grid']:.2%}"))
    rows, err, sol, arrays = _lasso(cfg, ctx)
  metrics.update(arrays)
  values["lasso_hypergrad_vs_fd"], values["lasso_solution_vs_lars"] = err, sol
  for lam, v, g, fd, nnz in rows:
    table.append((f"lasso (diabetes) λ={lam:g}, {nnz} nonzeros: dV/dλ implicit / FD (LassoLars)",
                  f"{g:.6g} / {fd:.6g}"))
  return Outcome(metrics, values, table)


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt  # optional and heavy: imported when a plot is drawn
  fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
  for ax, name, title in ((axes[0], "d2l", "D2L linear (SGD + L2)"),
                          (axes[1], "digits", "digits MLP (AdamW)")):
    grid = m[f"{name}/grid"]
    ax.loglog(grid, m[f"{name}/val"], "o-", ms=3, label="validation (grid)")
    ax.loglog(grid, m[f"{name}/test"], "s-", ms=3, label="test (grid)")
    ax.loglog(m[f"{name}/search_lambda"], m[f"{name}/search_val"], "x", color="C3", ms=5,
              label="search iterates (validation)")
    ax.axvline(values[f"{name}_lambda_grid"], color="C1", ls="--", lw=0.8, label="grid's best λ")
    ax.axvline(values[f"{name}_lambda_search"], color="C3", ls=":", lw=1.2,
               label="searched λ")
    ax.set_xlabel("λ")
    ax.set_ylabel("loss after training")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
  ax = axes[2]
  ax.semilogx(m["lasso/fine"], m["lasso/fine_val"], "k-", lw=1, label="V(λ), LassoLars")
  for lam, v, g in zip(m["lasso/lambdas"], m["lasso/val"], m["lasso/grad"]):
    t = lam * np.array([0.8, 1.25])
    ax.semilogx(t, v + g * (t - lam), "C3-", lw=2)
  ax.plot([], [], "C3-", label="implicit dV/dλ (tangents)")
  ax.set_xlabel("λ")
  ax.set_ylabel("validation loss")
  ax.set_title("lasso on diabetes: implicit hypergradient", fontsize=9)
  ax.legend(fontsize=7)
  out = [_io.save_figure(fig, f"{out_dir}/tune_lambda.png")]
  return out


def shrink(cfg: Config) -> Config:
  """`wdjax.experiments.shrink`'s hook: 3 search steps, 3-point grids, a small digits
  problem, one lasso λ (the six compiled programs stay: two problems x search,
  hypergradient, sweep)."""
  p = cfg.params
  grid3 = lambda g: (g[0], g[1], 3.0)
  return dataclasses.replace(cfg, params=dataclasses.replace(
      p, search_steps=3,
      d2l=dataclasses.replace(p.d2l, grid=grid3(p.d2l.grid), epochs=min(p.d2l.epochs, 2)),
      digits=dataclasses.replace(p.digits, grid=grid3(p.digits.grid), widths=(8,),
                                 epochs=min(p.digits.epochs, 2),
                                 n_train=max(p.digits.batch_size, 64)),
      lasso=dataclasses.replace(p.lasso, lambdas=p.lasso.lambdas[:1])))


KIND = register(Kind("tune_lambda", TuneParams, CHECKS, run, plot, _validate, shrink=shrink,
                     sections=("train",)))

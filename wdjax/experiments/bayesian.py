"""The Bayesian reading of a penalty (D2L exercise 6): MAP under a prior is the penalized fit.

With y = Xw + ε, ε ~ N(0, σ²) and n examples, −log p(w | data) = Σᵢ (yᵢ − xᵢw)²/(2σ²)
− log p(w) + const. Multiplied by σ²/n this is the mean loss ½(ŷ − y)² plus

- Gaussian prior w ~ N(0, τ²I):  (σ²/(2nτ²))‖w‖²  — ridge with λ = σ²/(nτ²), τ² = σ²/(nλ);
- Laplace prior p(w) ∝ exp(−|w|/s):  (σ²/(ns))‖w‖₁  — the lasso with λ = σ²/(ns).

Shown numerically on data drawn from the model: the MAP is found from the log densities
alone (`jax.scipy.stats`, Newton's method via `jax.hessian` for the Gaussian prior) and
compared with scikit-learn's `Ridge(alpha=nλ)` and with wdjax's coupled-L2 training; for
the Laplace prior wdjax's proximal L1 solution is compared with `Lasso(alpha=λ)` and checked
to be a maximum of the log posterior (no direction increases it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
from jax.scipy import stats
import numpy as np
import optax

from wdjax import _io, aliases, penalties, prox, transforms
from wdjax.config import Config, ConfigError, bounds
import wdjax.experiments._common as _common
from wdjax.experiments.registry import Kind, Outcome, register


@dataclass(frozen=True)
class BayesParams:
  """[params] of bayesian: prior scales and solver steps."""
  prior_stds: tuple[float, ...] = field(default=(0.05, 0.2, 1.0), **bounds(0, 1e6, strict_lo=True))
  laplace_scales: tuple[float, ...] = field(default=(0.01, 0.05, 0.2),
                                            **bounds(0, 1e6, strict_lo=True))
  steps: int = field(default=5000, **bounds(1, 10**7))


CHECKS = {
    "gaussian_map_vs_ridge": "max |Gaussian-prior MAP − sklearn Ridge(alpha=n·σ²/(nτ²))|",
    "gaussian_map_vs_wdjax": "max |Gaussian-prior MAP − wdjax coupled-L2 solution|",
    "laplace_map_vs_lasso": "max |wdjax proximal-L1 MAP − sklearn Lasso(alpha=σ²/(ns))|",
    "laplace_kkt_violation": "largest rate of increase of the log posterior at the MAP",
}


def _validate(cfg: Config) -> None:
  if cfg.sweep.axes:
    raise ConfigError("sweep: bayesian sweeps the prior scales in [params], not [sweep].")
  if cfg.data.noise <= 0:
    raise ConfigError("data.noise: the Bayesian reading needs a noise level σ > 0.")


def _neg_log_post(w, x, y, sigma, prior):
  lik = jnp.sum(stats.norm.logpdf(y, x @ w, sigma))
  return -(lik + jnp.sum(prior(w)))


@jax.jit(static_argnums=(4, 5))
def _fit(q, c, lam, eta, steps, mode):
  """Full-batch wdjax training on the Gram form: coupled L2 or proximal L1, step η = 1/L."""
  if mode == "l2":
    tx = optax.chain(transforms.coupled(penalties.l2, lam, mask=None), optax.sgd(eta))
  else:
    tx = aliases.proximal_sgd(eta, prox.l1, lam, mask=None)
  return _common.full_batch(tx, lambda w: q @ w - c, jnp.zeros_like(c), steps)


def run(cfg: Config, ctx) -> Outcome:
  from sklearn.linear_model import Lasso, Ridge  # optional and heavy: the references
  p, d = cfg.params, cfg.data
  n, dim, sigma = d.n_train, d.dim, d.noise
  rng = np.random.default_rng(cfg.seed)
  x = rng.standard_normal((n, dim))
  w_true = rng.laplace(0.0, 0.05, dim) * (rng.random(dim) < 0.5)
  y = x @ w_true + sigma * rng.standard_normal(n)
  metrics, values, table = {"w_true": w_true}, {}, []
  gap_ridge = gap_wd = gap_lasso = kkt = 0.0
  with jax.enable_x64(True), ctx.timed("run"):
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    q, c = xj.T @ xj / n, xj.T @ yj / n
    eta = 1.0 / float(jnp.linalg.eigvalsh(q).max())

    # Compiled once each, the prior scale (τ or s) a traced argument.
    @jax.jit
    def newton(w, tau):
      # The posterior is Gaussian: one Newton step from anywhere lands on its mode.
      f = lambda w: _neg_log_post(w, xj, yj, sigma, lambda v: stats.norm.logpdf(v, 0.0, tau))
      return w - jnp.linalg.solve(jax.hessian(f)(w), jax.grad(f)(w))

    # One-sided directional derivatives of −log posterior along ±e_j (finite differences,
    # float64): all >= 0 at a minimum.
    h = 1e-7

    @jax.jit
    def directional(w, s):
      f = lambda w: _neg_log_post(w, xj, yj, sigma, lambda v: stats.laplace.logpdf(v, 0.0, s))
      eye = jnp.eye(dim)
      return jnp.stack([(jax.vmap(f)(w[None, :] + sign * h * eye) - f(w)) / h
                        for sign in (1, -1)])

    for tau in p.prior_stds:
      lam = sigma ** 2 / (n * tau ** 2)
      w_map = np.asarray(newton(jnp.zeros(dim), tau))
      ridge = Ridge(alpha=n * lam, fit_intercept=False, solver="svd").fit(x, y).coef_
      ours = np.asarray(_fit(q, c, lam, eta, p.steps, "l2"))
      gap_ridge = max(gap_ridge, float(np.max(np.abs(w_map - ridge))))
      gap_wd = max(gap_wd, float(np.max(np.abs(w_map - ours))))
      metrics[f"gaussian/tau_{tau:g}"] = w_map
      table.append((f"Gaussian prior τ={tau:g} → ridge λ=σ²/(nτ²)={lam:.3g}: exact zeros in MAP",
                    f"{int(np.sum(w_map == 0))}/{dim}"))
    for s in p.laplace_scales:
      lam = sigma ** 2 / (n * s)
      ours = np.asarray(_fit(q, c, lam, eta, p.steps, "l1"))
      lasso = Lasso(alpha=lam, fit_intercept=False, tol=1e-14, max_iter=1_000_000).fit(x, y).coef_
      gap_lasso = max(gap_lasso, float(np.max(np.abs(ours - lasso))))
      dd = directional(jnp.asarray(ours), s)
      # Scaled by σ²/n to the units of the mean loss.
      kkt = max(kkt, float(-jnp.min(dd)) * sigma ** 2 / n)
      metrics[f"laplace/scale_{s:g}"] = ours
      table.append((f"Laplace prior s={s:g} → lasso λ=σ²/(ns)={lam:.3g}: exact zeros in MAP",
                    f"{int(np.sum(ours == 0))}/{dim}"))
  values.update(gaussian_map_vs_ridge=gap_ridge, gaussian_map_vs_wdjax=gap_wd,
                laplace_map_vs_lasso=gap_lasso, laplace_kkt_violation=kkt)
  table += [("max |Gaussian MAP − sklearn Ridge| / − wdjax coupled L2",
             f"{gap_ridge:.2g} / {gap_wd:.2g}"),
            ("max |Laplace MAP (wdjax prox L1) − sklearn Lasso|", f"{gap_lasso:.2g}")]
  return Outcome(metrics, values, table)


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt  # optional and heavy: imported when a plot is drawn
  fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
  idx = np.arange(len(m["w_true"]))
  for ax, prefix, title in ((a1, "gaussian/tau_", "Gaussian prior (ridge)"),
                            (a2, "laplace/scale_", "Laplace prior (lasso)")):
    ax.plot(idx, m["w_true"], "k.", label="true w")
    for k in sorted(k for k in m if k.startswith(prefix)):
      ax.plot(idx, m[k], marker="o", ms=3, lw=0.8, label=k.split("/")[1])
    ax.set_title(title)
    ax.set_xlabel("coefficient index")
    ax.legend(fontsize=7)
  a1.set_ylabel("MAP estimate")
  out = [_io.save_figure(fig, f"{out_dir}/bayesian_map.png")]
  return out


KIND = register(Kind("bayesian", BayesParams, CHECKS, run, plot, _validate, sections=("data",)))

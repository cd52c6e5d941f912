"""Penalties on matrices (D2L exercise 4): Frobenius is L2 on a kernel; nuclear gives low rank.

Multi-output regression Y = XW* + E with a rank-r W* (d_in x k). The squared Frobenius
norm ‖W‖_F² = Σ_ij W_ij² is the squared L2 norm of vec(W): `penalties.frobenius` equals
`penalties.l2` on the same kernel, and training with either (coupled) gives the same
network. The nuclear norm ‖W‖_* = Σσ_i(W) is to singular values what L1 is to entries:
full-batch proximal gradient with `prox.nuclear` (singular-value soft-thresholding) gives
exactly low-rank solutions, while the Frobenius/ridge solution keeps full rank for every λ.
Each nuclear solution is checked against the optimality conditions of
min_W ½·mean‖Y − XW‖² + λ‖W‖_*:  −∇L(W)/λ = UVᵀ + Z with UᵀZ = 0, ZV = 0, ‖Z‖₂ ≤ 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wdjax import _io, aliases, masks, penalties, prox, transforms
from wdjax.config import Config, ConfigError, bounds
import wdjax.experiments._common as _common
from wdjax.experiments.registry import Kind, Outcome, register


@dataclass(frozen=True)
class MatricesParams:
  """[params] of matrices."""
  steps: int = field(default=3000, **bounds(1, 10**7))
  rank_tol: float = field(default=1e-6, **bounds(0, 1, strict_lo=True))  # relative to σ_max(W*)


CHECKS = {
    "frobenius_vs_l2_value": "|frobenius(W) − l2(W)| and vs NumPy ½λΣW², max",
    "frobenius_vs_l2_training": "max |W trained with coupled frobenius − with coupled l2|",
    "nuclear_optimality": "max optimality-condition residual of the nuclear-norm solutions",
    "true_rank_on_path": "1 if some λ of the grid gives W of exactly the true rank",
    "ridge_min_rank": "lowest rank of the Frobenius (ridge) solutions over λ",
}


def _validate(cfg: Config) -> None:
  _common.allowed_axes(cfg, ("weight_decay",))
  if "weight_decay" not in cfg.sweep.axes:
    raise ConfigError("sweep.weight_decay: missing; matrices sweeps λ.")
  if cfg.data.source != "lowrank":
    raise ConfigError("data.source: matrices draws its own low-rank problem (source = 'lowrank').")
  if cfg.data.rank > min(cfg.data.dim, cfg.data.outputs):
    raise ConfigError(f"data.rank = {cfg.data.rank}: at most min(dim, outputs) = "
                      f"{min(cfg.data.dim, cfg.data.outputs)}.")


def _problem(cfg: Config):
  d = cfg.data
  rng = np.random.default_rng(cfg.seed)
  w = rng.standard_normal((d.dim, d.rank)) @ rng.standard_normal((d.rank, d.outputs)) / np.sqrt(d.rank)
  x = rng.standard_normal((d.n_train + d.n_val, d.dim))
  y = x @ w + d.noise * rng.standard_normal((len(x), d.outputs))
  return w, x[:d.n_train], y[:d.n_train], x[d.n_train:], y[d.n_train:]


@jax.jit(static_argnums=(4, 5))
def _train(q, c, lam, eta, steps, mode):
  """Full-batch training of W on ½·mean‖Y − XW‖² (gradient QW − C) with wdjax transforms."""
  params = {"kernel": jnp.zeros_like(c)}
  if mode == "nuclear":
    tx = aliases.proximal_sgd(eta, prox.nuclear, lam, mask=masks.weights_only)
  else:
    pen = penalties.frobenius if mode == "frobenius" else penalties.l2
    tx = optax.chain(transforms.coupled(pen, lam, mask=masks.weights_only), optax.sgd(eta))

  p = _common.full_batch(tx, lambda p: {"kernel": q @ p["kernel"] - c}, params, steps)
  return p["kernel"]


def _kkt(w, g, lam, tol):
  """Residual of −g/λ ∈ ∂‖W‖_* at W (see the module docstring)."""
  m = -g / lam
  u, s, vt = np.linalg.svd(w, full_matrices=False)
  r = int(np.sum(s > tol))
  u, v = u[:, :r], vt[:r].T
  pu, pv = np.eye(w.shape[0]) - u @ u.T, np.eye(w.shape[1]) - v @ v.T
  z = pu @ m @ pv
  res = np.max(np.abs(m - u @ v.T - z)) if r else 0.0
  return max(float(res), float(np.linalg.norm(z, 2) - 1.0), 0.0)


def run(cfg: Config, ctx) -> Outcome:
  p = cfg.params
  w_true, x, y, xv, yv = _problem(cfg)
  lams = cfg.sweep.axes["weight_decay"].values()
  n = len(x)
  tol = p.rank_tol * np.linalg.norm(w_true, 2)
  metrics = {"lambdas": lams, "w_true_singular_values": np.linalg.svd(w_true, compute_uv=False)}
  values, table = {}, []
  with jax.enable_x64(True), ctx.timed("run"):
    q, c = jnp.asarray(x.T @ x / n), jnp.asarray(x.T @ y / n)
    lip = float(np.linalg.eigvalsh(x.T @ x / n).max())
    # 1) the value: Frobenius = L2 on the kernel = ½λΣW² in NumPy.
    lam0 = float(lams[len(lams) // 2])
    fro = float(penalties.frobenius({"kernel": jnp.asarray(w_true)}, lam0))
    l2 = float(penalties.l2({"kernel": jnp.asarray(w_true)}, lam0))
    values["frobenius_vs_l2_value"] = max(abs(fro - l2), abs(fro - 0.5 * lam0 * np.sum(w_true ** 2)))
    # 2) training with either gives the same kernel.
    diff = 0.0
    ranks = {"nuclear": [], "frobenius": []}
    val = {"nuclear": [], "frobenius": []}
    kkt = 0.0
    for lam in lams:
      # Coupled steps must stay below 2/(L + λ); the prox step only below 2/L.
      eta_c = 1.0 / (lip + lam)
      w_f = np.asarray(_train(q, c, lam, eta_c, p.steps, "frobenius"))
      w_l = np.asarray(_train(q, c, lam, eta_c, p.steps, "l2"))
      w_n = np.asarray(_train(q, c, lam, 1.0 / lip, p.steps, "nuclear"))
      diff = max(diff, float(np.max(np.abs(w_f - w_l))))
      for name, w in (("nuclear", w_n), ("frobenius", w_f)):
        ranks[name].append(int(np.sum(np.linalg.svd(w, compute_uv=False) > tol)))
        val[name].append(0.5 * np.mean(np.sum((xv @ w - yv) ** 2, axis=1)))
      kkt = max(kkt, _kkt(w_n, x.T @ (x @ w_n - y) / n, lam, tol))
  values["frobenius_vs_l2_training"] = diff
  values["nuclear_optimality"] = kkt
  best = int(np.argmin(val["nuclear"]))
  values["true_rank_on_path"] = float(cfg.data.rank in ranks["nuclear"])
  values["rank_at_validation_best"] = float(ranks["nuclear"][best])
  values["ridge_min_rank"] = float(min(ranks["frobenius"]))
  for name in ranks:
    metrics[f"{name}/rank"], metrics[f"{name}/val_loss"] = np.array(ranks[name]), np.array(val[name])
  table += [("Frobenius vs L2 on a kernel: |value gap| / max |trained W gap|",
             f"{values['frobenius_vs_l2_value']:.2g} / {diff:.2g}"),
            (f"nuclear: rank at the validation-best λ={lams[best]:.3g} (true rank {cfg.data.rank})",
             f"{ranks['nuclear'][best]}"),
            ("nuclear: ranks across λ (small → large)", " ".join(map(str, ranks["nuclear"]))),
            ("Frobenius (ridge): ranks across λ", " ".join(map(str, ranks["frobenius"]))),
            ("best validation loss: nuclear / Frobenius",
             f"{min(val['nuclear']):.4g} / {min(val['frobenius']):.4g}"),
            ("max optimality residual of the nuclear solutions", f"{kkt:.2g}")]
  return Outcome(metrics, values, table)


def plot(cfg: Config, m: dict, values: dict, out_dir: str) -> list[str]:
  import matplotlib.pyplot as plt  # optional and heavy: imported when a plot is drawn
  lams = m["lambdas"]
  fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
  for name in ("nuclear", "frobenius"):
    a1.semilogx(lams, m[f"{name}/rank"], marker=".", label=name)
    a2.loglog(lams, m[f"{name}/val_loss"], label=name)
  a1.axhline(cfg.data.rank, color="gray", ls="--", lw=0.8, label="true rank")
  a1.set_xlabel("λ")
  a1.set_ylabel("rank of W")
  a1.legend(fontsize=8)
  a2.set_xlabel("λ")
  a2.set_ylabel("validation loss")
  a2.legend(fontsize=8)
  fig.suptitle("nuclear norm vs Frobenius (L2) on a weight matrix")
  out = [_io.save_figure(fig, f"{out_dir}/matrices_rank.png")]
  return out


KIND = register(Kind("matrices", MatricesParams, CHECKS, run, plot, _validate,
                     sections=("data", "sweep")))

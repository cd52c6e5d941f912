"""Regularization paths for least squares: lasso, elastic net and group lasso, full batch.

Objective (sklearn's `Lasso`/`ElasticNet`, DESIGN.md), for each λ of a decreasing grid:

  P_λ(w) = 1/(2n)·‖y − Xw‖² + λ·R(w),
  R(w) = ‖w‖₁ (lasso),  α‖w‖₁ + (1−α)/2·‖w‖² (elastic net, α = l1_ratio),
  R(w) = Σ_g ‖w_g‖₂ (group lasso, no √size weights).

λ_max, the smallest λ with w = 0, is max_j |x_jᵀy|/(n·α) (max_g ‖X_gᵀy‖₂/n for groups);
the default grid is 100 values log-spaced from λ_max down to eps·λ_max (eps = 1e-3), as
`sklearn.linear_model.lasso_path` and glmnet. With `fit_intercept=True`, X and y are
centered first and the (unpenalized) intercept is ȳ − x̄ᵀw, as in sklearn's `Lasso`.

The solver is FISTA (accelerated proximal gradient, Beck & Teboulle 2009) with the
gradient adaptive restart of O'Donoghue & Candès (2015), run on the Gram matrix
Q = XᵀX/n inside a `lax.while_loop` that stops on the duality gap — the same gap and the
same tolerance convention as sklearn's coordinate descent, gap ≤ tol·‖y‖²/n — or at
`max_iter` (then `converged` is False and a `PathConvergenceWarning` is issued). Four
accelerations, none of which changes the answer (the stopping test is the gap of the full
problem):

- warm starts: λ_k starts from the solution at λ_{k−1};
- working sets (l1/elastic net, wide X): FISTA runs on the support of the warm start plus
  the features that violate the optimality condition |x_jᵀr|/n <= λα there, the most
  violated first, growing by at most max(32, |support|/2) features a round (the strategy
  of celer/skglm); the full gap is then checked and violators are added until it is below
  tol. `screening="strong"` seeds the set with the sequential strong rule of Tibshirani
  et al (2012) instead, |x_jᵀr|/n >= α(2λ_k − λ_{k−1});
- support polishing (l1/elastic net): once the support and signs stop changing, the
  optimality conditions restricted to the support are a linear system,
  (Q_SS + λ(1−α)I)·w_S = Xᵀ_S y/n − λα·sign(w_S), solved exactly; the candidate is kept
  only if its signs agree and its gap is smaller;
- mixed precision (float64, with polishing): the FISTA steps, which only have to find the
  support and signs, multiply by a float32 copy of Q; gaps and the polishing solve are
  float64, and the steps go back to float64 after two polishing attempts that did not
  finish (float32 gradients alone cannot take the gap below ~1e-7·‖y‖²/n).

`method="vmap"` instead solves every λ at once (cold starts, `jax.vmap` over λ), which is
the form that pays off on an accelerator.

References:
  Beck & Teboulle, A Fast Iterative Shrinkage-Thresholding Algorithm for Linear Inverse
  Problems, 2009. https://doi.org/10.1137/080716542
  O'Donoghue & Candès, Adaptive Restart for Accelerated Gradient Schemes, 2015.
  https://arxiv.org/abs/1204.3982
  Tibshirani et al, Strong rules for discarding predictors in lasso-type problems, 2012.
  https://arxiv.org/abs/1011.2234
  Friedman, Hastie & Tibshirani, Regularization Paths for Generalized Linear Models via
  Coordinate Descent (glmnet), 2010. https://doi.org/10.18637/jss.v033.i01
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from wdjax import prox as _prox

KINDS = ("l1", "enet", "group")


class PathConvergenceWarning(UserWarning):
  """Some λ of a path (or a single solve) stopped at max_iter above the gap tolerance."""


class PathResult(NamedTuple):
  """A regularization path: row k of `coefs` solves the problem at `lambdas[k]`."""
  lambdas: np.ndarray     # (n_lambdas,), decreasing
  coefs: np.ndarray       # (n_lambdas, d)
  intercepts: np.ndarray  # (n_lambdas,), zeros without fit_intercept
  gaps: np.ndarray        # (n_lambdas,), duality gap of the returned coefs
  n_iter: np.ndarray      # (n_lambdas,), FISTA iterations spent at each λ
  converged: np.ndarray   # (n_lambdas,) bool, gap <= tol·‖y‖²/n


class Solution(NamedTuple):
  """One solved problem."""
  coef: np.ndarray
  intercept: float
  gap: float
  n_iter: int
  converged: bool


# ----------------------------------------------------------------------------- checks


def _check_eps(eps: float) -> None:
  if not (isinstance(eps, (int, float, np.floating)) and 0.0 < float(eps) < 1.0):
    raise ValueError(f"eps must be in (0, 1) (the smallest λ is eps·λ_max), got {eps!r}; "
                     "the default is 1e-3.")


def _check_lambdas(lambdas: Any) -> np.ndarray:
  lam = np.asarray(lambdas, dtype=np.float64)
  if lam.ndim != 1 or lam.size == 0:
    raise ValueError(f"lambdas must be a non-empty 1-D array, got shape {lam.shape}.")
  if not np.all(np.isfinite(lam)) or np.any(lam <= 0):
    raise ValueError("lambdas must be finite and > 0 (λ = 0 is unregularized least squares, "
                     f"which has no unique solution when d > n); got {lam}.")
  if lam.size > 1 and np.any(np.diff(lam) >= 0):
    raise ValueError("lambdas must be strictly decreasing (a path goes from λ_max down, "
                     "so that each λ is warm-started from the previous one); sort them "
                     "with np.sort(lambdas)[::-1] and drop duplicates.")
  return lam


def _as_data(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
  X = np.asarray(X, dtype=np.float64)
  y = np.asarray(y, dtype=np.float64)
  if X.ndim != 2:
    raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}.")
  if y.ndim != 1 or y.shape[0] != X.shape[0]:
    raise ValueError(f"y must be 1-D with one entry per row of X ({X.shape[0]}); got shape "
                     f"{y.shape}. For several targets, solve one path per column.")
  if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
    raise ValueError("X and y must be finite (found NaN or inf); impute or drop those rows.")
  return X, y


def _group_index(groups: Any, d: int) -> np.ndarray:
  """(n_groups, max_size) feature indices, padded with d (a slot that always holds 0)."""
  if groups is None:
    raise ValueError("the group lasso needs groups=: one group id per feature (length d).")
  g = np.asarray(groups)
  if g.shape != (d,) or not np.issubdtype(g.dtype, np.integer):
    raise ValueError(f"groups must be an integer array of length d={d} (the group id of "
                     f"each feature), got {g.dtype} array of shape {g.shape}.")
  ids = np.unique(g)
  members = [np.flatnonzero(g == i) for i in ids]
  width = max(len(m) for m in members)
  out = np.full((len(ids), width), d, dtype=np.int32)
  for k, m in enumerate(members):
    out[k, :len(m)] = m
  return out


def _float_dtype(dtype: Any) -> Any:
  if dtype is None:
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
  dt = jnp.dtype(dtype)
  if dt not in (jnp.float32, jnp.float64):
    raise ValueError(f"dtype must be float32 or float64, got {dtype!r}.")
  return dt.type


def _x64_scope(dtype: Any):
  # float64 when asked: run in an x64 scope instead of asking for a global config flag.
  return jax.enable_x64(True) if dtype == jnp.float64 else contextlib.nullcontext()


# ----------------------------------------------------------------------------- λ grid


def _center(X, y, fit_intercept):
  if not fit_intercept:
    return X, y, np.zeros(X.shape[1]), 0.0
  xm, ym = X.mean(axis=0), y.mean()
  return X - xm, y - ym, xm, ym


def lambda_max(X: Any, y: Any, *, l1_ratio: float = 1.0, groups: Any = None,
               fit_intercept: bool = False) -> float:
  """The smallest λ whose solution is w = 0: max_j |x_jᵀy|/(n·α), or max_g ‖X_gᵀy‖₂/n.

  Example:
    >>> import numpy as np
    >>> from wdjax import path
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]]); y = np.array([1.0, 1.0])
    >>> path.lambda_max(X, y)  # max(|1|, |2|)/2
    1.0
  """
  X, y = _as_data(X, y)
  X, y, _, _ = _center(X, y, fit_intercept)
  gidx = None if groups is None else _group_index(groups, X.shape[1])
  return _lambda_max_of(X.T @ y / X.shape[0], l1_ratio, gidx)


def _lambda_max_of(c: np.ndarray, l1_ratio: float, gidx: np.ndarray | None) -> float:
  """λ_max from c = Xᵀy/n (centered data) and the group index (None: l1/elastic net)."""
  if gidx is not None:
    ce = np.append(c, 0.0)
    return float(np.max(np.sqrt(np.sum(ce[gidx] ** 2, axis=1))))
  if not 0.0 < l1_ratio <= 1.0:
    raise ValueError(f"l1_ratio must be in (0, 1] for a path (λ_max = ∞ at 0), got {l1_ratio}.")
  return float(np.max(np.abs(c)) / l1_ratio)


def lambda_grid(lam_max: float, n_lambdas: int = 100, eps: float = 1e-3) -> np.ndarray:
  """`n_lambdas` values log-spaced from λ_max down to eps·λ_max (sklearn's and glmnet's grid).

  Example:
    >>> from wdjax import path
    >>> path.lambda_grid(1.0, 3, eps=0.01)
    array([1.  , 0.1 , 0.01])
  """
  _check_eps(eps)
  if not (isinstance(n_lambdas, (int, np.integer)) and n_lambdas >= 1):
    raise ValueError(f"n_lambdas must be a positive integer, got {n_lambdas!r}.")
  if not (np.isfinite(lam_max) and lam_max > 0):
    raise ValueError(f"lambda_max must be finite and > 0, got {lam_max} (is y constant, or "
                     "uncorrelated with every column of X?).")
  return np.geomspace(lam_max, lam_max * eps, num=n_lambdas)


# ------------------------------------------------------------------- the FISTA kernel


def _prox_step(kind, z, thr, l1_ratio, gidx):
  if kind == "l1":
    return _prox.l1(z, thr)
  if kind == "enet":
    return _prox.elastic_net(z, thr, 1.0, l1_ratio=l1_ratio)
  d = z.shape[0]
  ze = jnp.concatenate([z, jnp.zeros(1, z.dtype)])
  blocks = _prox.group_lasso(ze[gidx], thr, 1.0, group_axis=0)
  return jnp.zeros(d + 1, z.dtype).at[gidx].set(blocks)[:d]


def _omega_and_dual_norm(kind, w, rho, gidx):
  """Ω(w) (the part of R scaled by λα) and its dual norm at ρ."""
  if kind != "group":
    return jnp.sum(jnp.abs(w)), jnp.max(jnp.abs(rho))
  pad = lambda v: jnp.concatenate([v, jnp.zeros(1, v.dtype)])[gidx]
  norms = lambda v: jnp.sqrt(jnp.sum(jnp.square(pad(v)), axis=1))
  return jnp.sum(norms(w)), jnp.max(norms(rho))


def _gap(kind, w, c, bw, yy, lam1, lam2, gidx):
  """Duality gap at w given c = Xᵀ(y − Xw)/n and bw = yᵀXw/n (sklearn's dual point).

  With ρ = c − λ(1−α)w and κ = min(1, λα/Ω*(ρ)) the dual point is κ·r, and
    gap = ½‖r‖²/n·(1+κ²) + λα·Ω(w) − κ·rᵀy/n + ½λ(1−α)(1+κ²)‖w‖²,
  with ‖r‖²/n = yy − bw − wᵀc and rᵀy/n = yy − bw. It is >= 0 and 0 at the optimum.
  """
  omega, dn = _omega_and_dual_norm(kind, w, c - lam2 * w, gidx)
  kappa = jnp.where(dn > lam1, lam1 / jnp.where(dn > 0, dn, 1), 1.0)
  r2 = yy - bw - jnp.vdot(w, c)
  ry = yy - bw
  k2 = 1 + kappa * kappa
  return 0.5 * r2 * k2 + lam1 * omega - kappa * ry + 0.5 * lam2 * k2 * jnp.vdot(w, w)


def _lipschitz(Q):
  """λ_max(Q) by 24 power iterations from a fixed random start, times 1.05 for safety."""
  v = jax.random.normal(jax.random.key(0), (Q.shape[0],), Q.dtype)
  v = jax.lax.fori_loop(0, 24, lambda _, v: (lambda u: u / jnp.maximum(jnp.linalg.norm(u), 1e-30))(Q @ v),
                        v / jnp.linalg.norm(v))
  return 1.05 * jnp.maximum(jnp.vdot(v, Q @ v), jnp.finfo(Q.dtype).tiny)


def _fista(Q, b, yy, lam, l1_ratio, gidx, w0, tol_abs, *, kind, max_iter, check_every,
           polish, mixed=True):
  """FISTA with gradient restart on ½wᵀQw − bᵀw + yy/2 + λR(w); stops on the gap.

  Returns (w, gap, n_iter). `Q` may have zero rows/columns (padding): those coordinates
  keep w = 0.
  """
  dt = Q.dtype
  lam = jnp.asarray(lam, dt)
  alpha = jnp.asarray(l1_ratio if kind == "enet" else 1.0, dt)
  lam1, lam2 = lam * alpha, lam * (1 - alpha)

  def gap_of(w):
    c = b - Q @ w
    return _gap(kind, w, c, jnp.vdot(b, w), yy, lam1, lam2, gidx)

  def fista_step(matvec, carry):
    w, z, t = carry
    w_new = _prox_step(kind, z - (matvec(z) - b) / L, lam / L, l1_ratio, gidx)
    restart = jnp.vdot(z - w_new, w_new - w) > 0
    t_new = (1 + jnp.sqrt(1 + 4 * t * t)) / 2
    z_new = jnp.where(restart, w_new, w_new + ((t - 1) / t_new) * (w_new - w))
    return w_new, z_new, jnp.where(restart, jnp.ones_like(t), t_new)

  # Mixed precision (float64 with polishing): the FISTA steps only have to find the support
  # and signs, which the float64 polishing solve then turns into the exact solution, so they
  # multiply by a float32 copy of Q (4-5x faster on a CPU: half the bytes, twice the lanes).
  # Gaps, polishing and the stopping test stay in float64; after two polishing attempts
  # that did not finish the job, the steps switch to float64 (float32 gradients alone
  # cannot bring the gap below ~1e-7·‖y‖²/n).
  # (Not under vmap, where lax.cond runs both branches: `mixed=False` there.)
  mixed = mixed and polish and dt == jnp.float64
  Q32 = Q.astype(jnp.float32) if mixed else None
  # (float32 overflows past 3.4e38: such a Q stays in float64 throughout)
  q32_ok = jnp.all(jnp.isfinite(Q32)) if mixed else jnp.asarray(False)
  # L in float32 when there is a float32 Q: its 24 matrix-vector products are the fixed cost
  # of a call, and 5% of headroom dwarfs float32's rounding.
  L = (jax.lax.cond(q32_ok, lambda: _lipschitz(Q32).astype(dt), lambda: _lipschitz(Q))
       if mixed else _lipschitz(Q))

  def steps(matvec):
    return lambda carry: jax.lax.fori_loop(0, check_every,
                                           lambda _, c: fista_step(matvec, c), carry)

  steps64 = steps(lambda v: Q @ v)
  steps32 = steps(lambda v: (Q32 @ v.astype(jnp.float32)).astype(dt))

  def solve_on(s):
    on = (s != 0).astype(dt)
    a = Q * on[:, None] * on[None, :] + jnp.diag(1 - on + lam2 * on)
    # symmetric positive definite when X_S has full column rank; NaN (rejected) otherwise
    wp = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(a), on * (b - lam1 * s)) * on
    return wp, jnp.all(jnp.sign(wp) == s) & jnp.all(jnp.isfinite(wp))

  def try_polish(w):
    s = jnp.sign(w)
    wp, ok = solve_on(s)
    # one correction: coordinates whose sign flipped leave the support, solve again
    wp, ok = jax.lax.cond(ok, lambda: (wp, ok),
                          lambda: solve_on(jnp.where(jnp.sign(wp) == s, s, 0)))
    wp = jnp.where(ok, wp, w)
    return wp, jnp.where(ok, gap_of(wp), jnp.inf)

  def no_polish(w):
    return w, jnp.asarray(jnp.inf, dt)

  def cond(st):
    return (st["gap"] > tol_abs) & (st["it"] < max_iter)

  spacing = max(check_every, Q.shape[0] // 6)

  def body(st):
    carry = (st["w"], st["z"], st["t"])
    if mixed:
      # float64 after two unfinished polishes, or after a quarter of max_iter (signs that
      # never settle in float32 would never trigger a polish)
      use64 = (st["fails"] >= 2) | (st["it"] >= max_iter // 4) | ~q32_ok
      w, z, t = jax.lax.cond(use64, steps64, steps32, carry)
    else:
      w, z, t = steps64(carry)
    it = st["it"] + check_every
    gap = gap_of(w)
    new = dict(st, w=w, z=z, t=t, it=it, gap=gap)
    if polish:
      sign = jnp.sign(w)
      attempt = jnp.all(sign == st["sign"]) & (it >= st["next_try"]) & (gap > tol_abs)
      wp, gp = jax.lax.cond(attempt, try_polish, no_polish, w)
      accept = attempt & (gp < gap)
      new.update(
          w=jnp.where(accept, wp, w), z=jnp.where(accept, wp, z),
          t=jnp.where(accept, jnp.ones_like(t), t), gap=jnp.where(accept, gp, gap),
          sign=sign, exact=accept,
          # back off exponentially after a polish that did not finish the job
          fails=st["fails"] + (attempt & (jnp.where(accept, gp, gap) > tol_abs)),
          # a solve costs ~K/6 FISTA steps (K³/3 vs 2K² flops): space attempts by that
          next_try=jnp.where(attempt, it + spacing * 2 ** jnp.minimum(st["fails"], 10),
                             st["next_try"]))
    return new

  w0 = w0.astype(dt)
  st = dict(w=w0, z=w0, t=jnp.ones([], dt), it=jnp.zeros([], jnp.int32), gap=gap_of(w0),
            sign=jnp.sign(w0), fails=jnp.zeros([], jnp.int32), next_try=jnp.zeros([], jnp.int32),
            exact=jnp.zeros([], bool))
  st = jax.lax.while_loop(cond, body, st)
  w, gap = st["w"], st["gap"]
  if mixed:
    # The gap is quadratic in the error, so float32 steps can meet the tolerance with
    # coefficients good to float32's ~1e-7 only: finish with the exact solve on their support.
    wp, gp = jax.lax.cond(st["exact"] | ~jnp.any(w != 0), no_polish, try_polish, w)
    better = gp <= jnp.maximum(gap, tol_abs)
    w, gap = jnp.where(better, wp, w), jnp.where(better, gp, gap)
  return w, gap, st["it"]


_STATIC = ("kind", "max_iter", "check_every", "polish", "mixed")


@functools.partial(jax.jit, static_argnames=_STATIC)
def _solve_full(Q, b, yy, lam, l1_ratio, gidx, w0, tol_abs, **kw):
  return _fista(Q, b, yy, lam, l1_ratio, gidx, w0, tol_abs, **kw)


@functools.partial(jax.jit, static_argnames=_STATIC)
def _path_scan(Q, b, yy, lams, l1_ratio, gidx, tol_abs, **kw):
  def step(w, lam):
    w, gap, it = _fista(Q, b, yy, lam, l1_ratio, gidx, w, tol_abs, **kw)
    return w, (w, gap, it)
  _, out = jax.lax.scan(step, jnp.zeros_like(b), lams)
  return out


@functools.partial(jax.jit, static_argnames=_STATIC)
def _path_vmap(Q, b, yy, lams, l1_ratio, gidx, tol_abs, **kw):
  solve = lambda lam: _fista(Q, b, yy, lam, l1_ratio, gidx, jnp.zeros_like(b), tol_abs,
                            mixed=False, **kw)
  return jax.vmap(solve)(lams)


@functools.partial(jax.jit, static_argnames=_STATIC)
def _solve_working_set(Q, b, yy, lam, l1_ratio, idx, valid, w_ws, tol_abs, **kw):
  """FISTA on the working set idx (padded; `valid` marks real entries), then the full check.

  Returns (w_ws, n_iter, full gap, c) with c = Xᵀr/n over all features.
  """
  v = valid.astype(Q.dtype)
  Qw = Q[idx][:, idx] * v[:, None] * v[None, :]
  bw = b[idx] * v
  w_ws, _, it = _fista(Qw, bw, yy, lam, l1_ratio, None, w_ws * v, tol_abs, **kw)
  # Q is symmetric (up to rounding): rows idx, transposed, are its columns idx; a row
  # gather reads contiguous memory (0.7 ms against 3.7 ms for Q[:, idx], 2000 x 512, 1 core)
  c = b - Q[idx].T @ w_ws
  alpha = l1_ratio if kw["kind"] == "enet" else 1.0
  # the gap of the full problem (w is zero off the working set; padded slots of idx point
  # at feature 0 and hold w = 0, hence .add)
  w = jnp.zeros_like(b).at[idx].add(w_ws)
  gap = _gap(kw["kind"], w, c, jnp.vdot(bw, w_ws), yy, lam * alpha, lam * (1 - alpha), None)
  return w_ws, it, gap, c


def _bucket(k: int, d: int) -> int:
  """Padded working-set size (one compilation each): 32, 64, 128, then steps of 64/128."""
  if k <= 128:
    size = 32
    while size < k:
      size *= 2
  else:
    step = 64 if k <= 512 else 128
    size = -(-k // step) * step
  return min(size, d)


def _top(candidates: np.ndarray, score: np.ndarray, cap: int) -> np.ndarray:
  """The `cap` candidates with the largest score (all of them when fewer)."""
  if candidates.size <= cap:
    return candidates
  return candidates[np.argsort(-score[candidates], kind="stable")[:cap]]


def _grow(ws: np.ndarray, c: np.ndarray, thr: float, n_support: int) -> np.ndarray:
  """ws ∪ the features outside it with |c_j| > thr, the most violated first, at most
  max(32, n_support/2) of them (as skglm/celer): a small set keeps FISTA and the polishing
  solve cheap."""
  outside = np.ones(c.size, bool)
  outside[ws] = False
  score = np.abs(c)
  return np.union1d(ws, _top(np.flatnonzero(outside & (score > thr)), score,
                             max(32, n_support // 2)))


def _path_working_sets(Q, b, yy, lams, l1_ratio, lam_max, tol_abs, kw, strong_rule=False):
  d = Q.shape[0]
  alpha = l1_ratio if kw["kind"] == "enet" else 1.0
  w = np.zeros(d)
  c = np.asarray(b)
  coefs, gaps, iters = [], [], []
  lam_prev = lam_max
  for lam in lams:
    # support ∪ the features whose optimality condition |x_jᵀr|/n <= λα fails at the
    # warm start; `strong_rule` adds those with |x_jᵀr|/n >= α(2λ_k − λ_{k−1}).
    thr = alpha * (2 * lam - lam_prev) if strong_rule else alpha * lam
    support = np.flatnonzero(w != 0)
    ws = _grow(support, c, thr, support.size)
    total_it, tol_ws, retries = 0, tol_abs, 0
    while True:
      k = _bucket(max(len(ws), 1), d)
      idx = np.zeros(k, np.int32)
      idx[:len(ws)] = ws
      valid = np.arange(k) < len(ws)
      w_ws, it, gap, c_dev = _solve_working_set(
          Q, b, yy, lam, l1_ratio, jnp.asarray(idx), jnp.asarray(valid),
          jnp.asarray(w[idx] * valid, Q.dtype), tol_ws, **kw)
      total_it += int(it)
      c = np.asarray(c_dev, dtype=np.float64)
      w = np.zeros(d)
      w[ws] = np.asarray(w_ws, dtype=np.float64)[:len(ws)]
      gap = float(gap)
      if gap <= tol_abs or total_it >= kw["max_iter"]:
        break
      grown = _grow(ws, c, alpha * lam, int(np.sum(w != 0)))
      if grown.size == ws.size:
        # no violators, yet the full gap is above tol: the working-set solve stopped on its
        # own gap, which rounds differently (float32 near its floor). Tighten its
        # tolerance and go on, at most 3 times (then reported as not converged).
        if retries == 3:
          break
        tol_ws, retries = 0.1 * tol_ws, retries + 1
        continue
      ws = grown
    coefs.append(w)
    gaps.append(gap)
    iters.append(total_it)
    lam_prev = lam
  return np.stack(coefs), np.array(gaps), np.array(iters)


# ----------------------------------------------------------------------------- public


def _prepare(X, y, fit_intercept, dtype):
  X, y = _as_data(X, y)
  Xc, yc, xm, ym = _center(X, y, fit_intercept)
  n = X.shape[0]
  Q = Xc.T @ Xc / n
  b = Xc.T @ yc / n
  yy = float(yc @ yc / n)
  return Xc, yc, xm, ym, Q, b, yy


def _default_tol(dtype):
  # float32 cannot resolve a gap much below ~1e-6·‖y‖²/n (it is a difference of O(‖y‖²) terms)
  return 1e-10 if dtype == jnp.float64 else 1e-5


def _path(X, y, *, kind, l1_ratio=1.0, groups=None, lambdas=None, n_lambdas=100, eps=1e-3,
          fit_intercept=False, tol=None, max_iter=20_000, method="warm", screening="auto",
          polish=True, dtype=None, check_every=10):
  if method not in ("warm", "vmap"):
    raise ValueError(f"method must be 'warm' (sequential, warm-started) or 'vmap' (all λ at "
                     f"once), got {method!r}.")
  _check_eps(eps)
  dt = _float_dtype(dtype)
  tol = _default_tol(dt) if tol is None else float(tol)
  if not tol > 0:
    raise ValueError(f"tol must be > 0, got {tol}.")
  if not (isinstance(max_iter, (int, np.integer)) and max_iter >= check_every):
    raise ValueError(f"max_iter must be an integer >= {check_every}, got {max_iter!r}.")
  if screening not in ("auto", "kkt", "strong", True, False):
    raise ValueError(f"screening must be 'auto', 'kkt' (True), 'strong' or False, got "
                     f"{screening!r}.")
  # the arguments are checked before the d x d Gram matrix is built
  _, _, xm, ym, Q, b, yy = _prepare(X, y, fit_intercept, dt)
  d = Q.shape[0]
  gidx = _group_index(groups, d) if kind == "group" else None
  lam_max = _lambda_max_of(b, l1_ratio, gidx)
  lams = lambda_grid(lam_max, n_lambdas, eps) if lambdas is None else _check_lambdas(lambdas)
  tol_abs = tol * yy
  kw = dict(kind=kind, max_iter=int(max_iter), check_every=check_every,
            polish=bool(polish) and kind != "group")
  use_ws = method == "warm" and kind != "group" and (
      screening in (True, "kkt", "strong") or (screening == "auto" and d > 64))
  with _x64_scope(dt):
    Qj, bj = jnp.asarray(Q, dt), jnp.asarray(b, dt)
    g = None if gidx is None else jnp.asarray(gidx)
    if use_ws:
      coefs, gaps, iters = _path_working_sets(Qj, bj, yy, lams, l1_ratio, lam_max, tol_abs, kw,
                                              strong_rule=screening == "strong")
    else:
      fn = _path_scan if method == "warm" else _path_vmap
      coefs, gaps, iters = (np.asarray(a) for a in
                            fn(Qj, bj, yy, jnp.asarray(lams, dt), l1_ratio, g, tol_abs, **kw))
  coefs = np.asarray(coefs, np.float64)
  gaps = np.asarray(gaps, np.float64)
  converged = gaps <= tol_abs
  if not converged.all():
    bad = np.flatnonzero(~converged)
    warnings.warn(
        f"{bad.size} of {lams.size} λ did not reach gap <= tol·‖y‖²/n = {tol_abs:.3g} within "
        f"max_iter={max_iter} (first: λ[{bad[0]}] = {lams[bad[0]]:.4g}, gap {gaps[bad[0]]:.3g}). "
        "Raise max_iter, loosen tol, or use dtype=float64.", PathConvergenceWarning,
        stacklevel=3)
  intercepts = ym - coefs @ xm if fit_intercept else np.zeros(lams.size)
  return PathResult(lams, coefs, intercepts, gaps, np.asarray(iters), converged)


_PATH_ARGS = """
  Args:
    X: (n, d) design matrix; y: (n,) targets.
    lambdas: a strictly decreasing grid; default `lambda_grid(lambda_max(X, y), n_lambdas, eps)`.
    n_lambdas: number of grid values (default 100).
    eps: the grid ends at eps·λ_max, 0 < eps < 1 (default 1e-3).
    fit_intercept: center X and y and return an unpenalized intercept (like sklearn's Lasso).
    tol: stop when the duality gap is <= tol·‖y‖²/n (sklearn's convention); default 1e-10
      in float64, 1e-5 in float32.
    max_iter: FISTA iterations allowed per λ (a safety cap; non-convergence warns).
    method: "warm" (sequential with warm starts) or "vmap" (all λ at once, cold starts).
    screening: working sets (method="warm", l1/elastic net): "kkt" or True (grown from the
      violators of the optimality conditions), "strong" (seeded by the strong rule),
      False (none), or "auto" ("kkt" when d > 64).
    polish: try the exact solve on a stable support (l1/elastic net).
    dtype: float32 or float64 (run in an x64 scope); default float64 if x64 is enabled.

  Returns:
    A `PathResult(lambdas, coefs, intercepts, gaps, n_iter, converged)` of NumPy arrays.
"""


def lasso_path(X: Any, y: Any, **kwargs: Any) -> PathResult:
  """Lasso path: argmin 1/(2n)‖y − Xw‖² + λ‖w‖₁ for each λ (sklearn `lasso_path`).
  {args}
  Example:
    >>> import numpy as np
    >>> from wdjax import path
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 5)); y = X @ np.array([2.0, 0, 0, -1.0, 0])
    >>> res = path.lasso_path(X, y, n_lambdas=10)
    >>> res.coefs.shape, bool(res.converged.all())
    ((10, 5), True)
    >>> [int(k) for k in (res.coefs != 0).sum(axis=1)[[0, -1]]]  # 0 at λ_max, then the 2 true
    [0, 2]
  """
  return _path(X, y, kind="l1", **kwargs)


def enet_path(X: Any, y: Any, *, l1_ratio: float = 0.5, **kwargs: Any) -> PathResult:
  """Elastic-net path: 1/(2n)‖y − Xw‖² + λ(α‖w‖₁ + (1−α)/2‖w‖²), α = l1_ratio (sklearn).

  l1_ratio must be in (0, 1] (λ_max is infinite for the ridge); other arguments as
  `lasso_path`.

  Example:
    >>> import numpy as np
    >>> from wdjax import path
    >>> X = np.eye(3); y = np.array([3.0, 1.0, 0.0])
    >>> # X = I, n = 3: w = soft(y/3, λα)/(1/3 + λ(1−α)) = (1 − 0.5)/(1/3 + 0.5) = 0.6
    >>> np.round(path.enet_path(X, y, l1_ratio=0.5, lambdas=[1.0]).coefs, 6)
    array([[0.6, 0. , 0. ]])
  """
  if not 0.0 < float(l1_ratio) <= 1.0:
    raise ValueError(f"l1_ratio must be in (0, 1], got {l1_ratio}; for l1_ratio=0 (ridge) "
                     "use a closed form or sklearn.linear_model.Ridge.")
  return _path(X, y, kind="enet", l1_ratio=float(l1_ratio), **kwargs)


def group_lasso_path(X: Any, y: Any, groups: Sequence[int], **kwargs: Any) -> PathResult:
  """Group-lasso path: 1/(2n)‖y − Xw‖² + λΣ_g‖w_g‖₂; `groups[j]` is feature j's group id.

  λ_max = max_g ‖X_gᵀy‖₂/n. No working sets or polishing (plain warm-started FISTA);
  other arguments as `lasso_path`.

  Example:
    >>> import numpy as np
    >>> from wdjax import path
    >>> X = np.eye(4); y = np.array([3.0, 4.0, 0.3, 0.4])
    >>> res = path.group_lasso_path(X, y, [0, 0, 1, 1], lambdas=[0.5])
    >>> # X = I, n = 4, b = y/4: ‖b_1‖ = 1.25 > λ, ‖b_2‖ = 0.125 < λ; w_1 = 4(1 − λ/1.25)·b_1
    >>> np.round(res.coefs, 6)
    array([[1.8, 2.4, 0. , 0. ]])
  """
  return _path(X, y, kind="group", groups=groups, **kwargs)


lasso_path.__doc__ = lasso_path.__doc__.replace("{args}", _PATH_ARGS)


def fista(X: Any, y: Any, lam: float, *, penalty: str = "l1", l1_ratio: float = 1.0,
          groups: Any = None, w0: Any = None, fit_intercept: bool = False, tol: float | None = None,
          max_iter: int = 20_000, polish: bool = True, dtype: Any = None) -> Solution:
  """One problem 1/(2n)‖y − Xw‖² + λR(w) by FISTA with adaptive restart, to a gap tolerance.

  penalty "l1" (R = ‖w‖₁), "enet" (α‖w‖₁ + (1−α)/2‖w‖², α = l1_ratio) or "group"
  (Σ_g‖w_g‖₂ with `groups`). The accelerated counterpart of `wdjax.proximal_sgd` on a
  full batch: the same prox operators (`wdjax.prox`), momentum t_{k+1} = (1+√(1+4t_k²))/2,
  and a restart (t = 1) whenever (z_k − w_{k+1})ᵀ(w_{k+1} − w_k) > 0.

  Args:
    X, y: the data, (n, d) and (n,).
    lam: λ > 0.
    penalty: "l1", "enet" or "group".
    l1_ratio: α of the elastic net.
    groups: one group id per feature, for "group".
    w0: a warm start (default 0).
    fit_intercept: center X and y; the intercept is ȳ − x̄ᵀw.
    tol: stop when the duality gap is <= tol·‖y‖²/n (default 1e-10 in float64, 1e-5 in
      float32).
    max_iter: the iteration cap (non-convergence warns with `PathConvergenceWarning`).
    polish: try the exact solve on a stable support (l1/elastic net).
    dtype: float32 or float64.

  Returns:
    `Solution(coef, intercept, gap, n_iter, converged)`.

  Example:
    >>> import numpy as np
    >>> from wdjax import path
    >>> sol = path.fista(np.eye(2), np.array([2.0, 0.2]), 0.5)  # X = I, n = 2: w = n·soft(y/n, λ)
    >>> sol.coef, sol.converged
    (array([1., 0.]), True)
  """
  if penalty not in KINDS:
    raise ValueError(f"penalty must be one of {KINDS}, got {penalty!r}.")
  lam = float(_check_lambdas([lam])[0])
  dt = _float_dtype(dtype)
  _, _, xm, ym, Q, b, yy = _prepare(X, y, fit_intercept, dt)
  gidx = _group_index(groups, Q.shape[0]) if penalty == "group" else None
  tol = _default_tol(dt) if tol is None else float(tol)
  w0 = np.zeros(Q.shape[0]) if w0 is None else np.asarray(w0, np.float64)
  with _x64_scope(dt):
    w, gap, it = _solve_full(
        jnp.asarray(Q, dt), jnp.asarray(b, dt), yy, lam, l1_ratio,
        None if gidx is None else jnp.asarray(gidx), jnp.asarray(w0, dt), tol * yy,
        kind=penalty, max_iter=int(max_iter), check_every=10,
        polish=bool(polish) and penalty != "group")
  w = np.asarray(w, np.float64)
  converged = bool(float(gap) <= tol * yy)
  if not converged:
    warnings.warn(f"fista stopped at max_iter={max_iter} with gap {float(gap):.3g} > "
                  f"tol·‖y‖²/n = {tol * yy:.3g}.", PathConvergenceWarning, stacklevel=2)
  intercept = float(ym - xm @ w) if fit_intercept else 0.0
  return Solution(w, intercept, float(gap), int(it), converged)


def solve_lasso(X: Any, y: Any, lam: float, **kwargs: Any) -> Solution:
  """`fista(X, y, lam, penalty="l1", ...)`: argmin 1/(2n)‖y − Xw‖² + λ‖w‖₁."""
  return fista(X, y, lam, penalty="l1", **kwargs)


def plot_path(result: PathResult, filename: str | None = None, *, ax: Any = None,
              title: str | None = None) -> Any:
  """Plots each coefficient against log10 λ (glmnet style); saves a PNG when `filename` given.

  Uses matplotlib's Agg backend when it creates the figure, so it runs headless.

  Returns:
    The matplotlib Axes.
  """
  import matplotlib
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
    fig.tight_layout()
    fig.savefig(filename, dpi=120)
  return ax

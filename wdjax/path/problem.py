"""The problem of `wdjax.path`: argument checks, the data in Gram form, λ_max and the λ grid,
and the result types."""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


KINDS = ("l1", "elastic_net", "group_lasso")   # the names of wdjax.penalties


class PathConvergenceWarning(UserWarning):
  """Some λ of a path (or a single solve) stopped at max_iter above the gap tolerance."""


class PathResult(NamedTuple):
  """A regularization path: row k of `coefs` solves the problem at `lambdas[k]`."""
  lambdas: np.ndarray     # (n_lambdas,), decreasing
  coefs: np.ndarray       # (n_lambdas, d)
  intercepts: np.ndarray  # (n_lambdas,), zeros without fit_intercept
  gaps: np.ndarray        # (n_lambdas,), duality gap of the returned coefs
  n_iter: np.ndarray      # (n_lambdas,), FISTA steps or CD epochs spent at each λ
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
  if X.shape[0] == 0 or X.shape[1] == 0:
    raise ValueError(f"X has shape {X.shape}: a path needs at least one sample and one "
                     "feature.")
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
  # one stable sort, not a scan of all d features per group (O(d·groups), seconds at
  # d = 1e5 with 1e4 groups): row k lists group k's features in increasing order
  _, row, sizes = np.unique(g, return_inverse=True, return_counts=True)
  order = np.argsort(row, kind="stable")
  start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
  out = np.full((sizes.size, int(sizes.max())), d, dtype=np.int32)
  out[row[order], np.arange(d) - start[row[order]]] = order
  return out


# dtype=None picks float32 (unless x64 is on) only down to this gap tolerance: below it
# float32's rounding keeps a solver from certifying the gap (tol 1e-7: 43% of the 500 x
# 2000 elastic-net path's λ and 55-58% on 2000 x 300 converged in float32, at 5-40x the
# time of their float64 solve, max_iter reached), so float64 is used, as sklearn would on
# float64 input. (1e-6 converged on every benchmark problem and penalty in float32.)
FLOAT32_MIN_TOL = 1e-6


def _float_dtype(dtype: Any, tol: float | None = None, kkt_tol: float | None = None) -> Any:
  """The solve's dtype: `dtype` if given (float32 or float64), else float64 when x64 is on
  or when `tol` or `kkt_tol` is below FLOAT32_MIN_TOL, float32 otherwise."""
  if dtype is None:
    tight = any(t is not None and t < FLOAT32_MIN_TOL for t in (tol, kkt_tol))
    return jnp.float64 if jax.config.jax_enable_x64 or tight else jnp.float32
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


def _centered(X, y, fit_intercept):
  """The checked, centered data of every solver: (Xc, yc, x̄, ȳ, b = Xcᵀyc/n, ‖yc‖²/n);
  b and yy in float64 (they set λ_max and the gap's scale)."""
  X, y = _as_data(X, y)
  Xc, yc, xm, ym = _center(X, y, fit_intercept)
  n = X.shape[0]
  # einsum, not `Xc.T @ yc`: a BLAS matrix-vector product wakes OpenBLAS's thread pool,
  # whose threads then spin through the whole (single-threaded) CD path, doubling its CPU
  # time (0.3 ms here instead of 0.15)
  return Xc, yc, xm, ym, np.einsum("ij,i->j", Xc, yc) / n, float(yc @ yc / n)


def _prepare(X, y, fit_intercept, dtype):
  Xc, yc, xm, ym, b, yy = _centered(X, y, fit_intercept)
  return Xc, yc, xm, ym, _gram(Xc, dtype), b, yy


def _gram(Xc, dtype):
  """XᵀX/n, whole (the working-set paths form only the rows they reach: `_GramRows`)."""
  # The d x d Gram matrix is the largest fixed cost of a path (2 GFLOP at 500 x 2000); a
  # float32 solve rounds it to float32 anyway, so it is formed in float32 (half the time).
  Xg = Xc.astype(np.float32) if dtype == jnp.float32 else Xc
  d = Xg.shape[1]
  Q = _aligned_empty((d, d), Xg.dtype)
  np.matmul(Xg.T, Xg, out=Q)
  Q /= Xc.shape[0]
  return Q


def _aligned_empty(shape, dtype, align: int = 64) -> np.ndarray:
  """np.empty, with its data at a multiple of `align` bytes: on a CPU, `jax.device_put`
  then aliases it instead of copying (`_gram_on_device`)."""
  nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
  raw = np.empty(nbytes + align, np.uint8)
  start = -raw.ctypes.data % align
  return raw[start:start + nbytes].view(dtype).reshape(shape)


def _gram_on_device(Q: np.ndarray) -> jax.Array:
  """`_prepare`'s Gram matrix (already in the solve's dtype) as a JAX array; call it in
  `_x64_scope(dtype)` (outside it a float64 Q would become float32). On a CPU,
  `jax.device_put` of the aligned buffer aliases it (nothing writes Q after `_prepare`): a
  copy of 32 MB at 500 x 2000 cost 11-38 ms with its page faults, against 0.4-8 ms
  (benchmarks/README.md, run U); `jnp.asarray` copies."""
  return jax.device_put(Q)


def _grid(lam_max, lambdas, n_lambdas, eps):
  """The user's λ (checked) or the default grid from λ_max."""
  return lambda_grid(lam_max, n_lambdas, eps) if lambdas is None else _check_lambdas(lambdas)


def _default_tol(dtype):
  # float32 cannot resolve a gap much below ~1e-6·‖y‖²/n (it is a difference of O(‖y‖²) terms)
  return 1e-10 if dtype == jnp.float64 else 1e-5

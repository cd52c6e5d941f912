"""scikit-learn's `lasso_path` and `enet_path`, argument for argument, solved by `wdjax.path`.

For code written against `sklearn.linear_model` (scikit-learn 1.9's signatures):

    from wdjax.path.sklearn_api import enet_path, lasso_path   # for sklearn.linear_model's
    alphas, coefs, dual_gaps = lasso_path(X, y, alphas=50, tol=1e-8)

keeps its meaning: the same arguments, in the same order, with the same defaults, and the
same return value, `(alphas, coefs, dual_gaps)` (and `n_iters` with `return_n_iter=True`):

- `alphas`: an integer (that many values from alpha_max down to eps·alpha_max, log-spaced:
  sklearn's grid, the same values), an array (sorted decreasing, as sklearn does;
  repeated values allowed), or None / unset (100 values); `n_alphas` (deprecated by
  sklearn 1.9, without its FutureWarning here) sets the count.
- `coefs` is (n_features, n_alphas), in X's dtype; `dual_gaps` are the duality gaps of
  the objective as written (1/(2n)-scaled), as sklearn reports them (its solver's gap
  of the n-scaled problem, divided by n) and as `wdjax.path` computes them (`gaps`).
- It computes in X's dtype as sklearn does: float32 X in float32, anything else in
  float64; `tol` (default 1e-4: `dual_gaps` <= tol·‖y‖²/n, sklearn's criterion) and
  `max_iter` come through `**params` as sklearn's.

Differences, all loud:
- `max_iter` counts wdjax's steps (FISTA steps, coordinate-descent epochs of a working
  set), not sklearn's epochs over all features; its default is wdjax's 20000, not 1000,
  and it must be at least 10 (a float such as 1e5 is taken as the integer). `n_iters` are
  wdjax's counts likewise (a repeated alpha: 0, as sklearn's warm start).
- `positive=True`, sparse X and a 2-D y (sklearn's multi-task path) raise
  `NotImplementedError` (sklearn solves those).
- Errors where sklearn returns something: an alpha of 0 (unpenalized least squares),
  `l1_ratio=0` (the ridge: use `sklearn.linear_model.Ridge(alpha=n·α)`), tol <= 0, a y
  of zeros (alpha_max = 0, where sklearn returns alphas of 1e-15 and zero coefficients),
  eps outside (0, 1) with a generated grid. Each names the value and the fix.
- Accepted and without effect on the result (they steer how sklearn's coordinate descent
  reaches the same solution): `precompute`, `Xy`, `copy_X` (wdjax never writes to X),
  `coef_init` (every path starts from 0), `verbose`, `check_input`, `selection`,
  `random_state`, `do_screening`; and `sample_weight`, `X_offset`, `X_scale`, which
  sklearn's path reads for sparse X only.
- No FutureWarning for `alphas=None` or `n_alphas` (sklearn 1.9 deprecates them).

Everything else (the solver chosen, its accuracy at a tol) is `wdjax.path.enet_path`'s.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np

from wdjax.path import enet_path as _enet_path
from wdjax.path import lasso_path as _lasso_path

# sklearn's own **params that only steer its solver (the solution is the same), and those
# its enet_path reads for sparse X only (ElasticNet.fit has applied them to dense X)
_NO_EFFECT = ("selection", "random_state", "do_screening")
_DENSE_NO_EFFECT = ("sample_weight", "X_offset", "X_scale")


def lasso_path(X: Any, y: Any, *, eps: float = 1e-3, n_alphas: Any = "deprecated",
               alphas: Any = "warn", precompute: Any = "auto", Xy: Any = None,
               copy_X: bool = True, coef_init: Any = None, verbose: Any = False,
               return_n_iter: bool = False, positive: bool = False, **params: Any) -> tuple:
  """`sklearn.linear_model.lasso_path`: argmin 1/(2n)‖y − Xw‖² + α‖w‖₁ for each alpha.

  Returns `(alphas, coefs, dual_gaps)`, coefs of shape (n_features, n_alphas)
  (`+ (n_iters,)` with `return_n_iter`). See the module docstring for what differs.

  Example:
    >>> import numpy as np
    >>> from wdjax.path.sklearn_api import lasso_path
    >>> X = np.eye(3); y = np.array([3.0, 1.0, 0.0])
    >>> # X = I, n = 3: w_j = n·soft(y_j/n, α): α = 0.5 leaves (1 − 0.5)·3 = 1.5
    >>> alphas, coefs, gaps = lasso_path(X, y, alphas=[0.5, 0.1], tol=1e-10)
    >>> alphas, np.round(coefs, 8)
    (array([0.5, 0.1]), array([[1.5, 2.7],
           [0. , 0.7],
           [0. , 0. ]]))
  """
  return enet_path(X, y, l1_ratio=1.0, eps=eps, n_alphas=n_alphas, alphas=alphas,
                   precompute=precompute, Xy=Xy, copy_X=copy_X, coef_init=coef_init,
                   verbose=verbose, return_n_iter=return_n_iter, positive=positive,
                   **params)


def enet_path(X: Any, y: Any, *, l1_ratio: float = 0.5, eps: float = 1e-3,
              n_alphas: Any = "deprecated", alphas: Any = "warn", precompute: Any = "auto",
              Xy: Any = None, copy_X: bool = True, coef_init: Any = None, verbose: Any = False,
              return_n_iter: bool = False, positive: bool = False, check_input: bool = True,
              **params: Any) -> tuple:
  """`sklearn.linear_model.enet_path`: argmin 1/(2n)‖y − Xw‖² + α·l1_ratio·‖w‖₁ +
  ½α(1 − l1_ratio)‖w‖² for each alpha.

  Returns `(alphas, coefs, dual_gaps)`, coefs of shape (n_features, n_alphas)
  (`+ (n_iters,)` with `return_n_iter`). See the module docstring for what differs.
  """
  del precompute, Xy, copy_X, coef_init, verbose, check_input   # (no effect: module docstring)
  if positive:
    raise NotImplementedError("positive=True (non-negative coefficients) is not solved by "
                              "wdjax.path; use sklearn.linear_model.enet_path/lasso_path.")
  tol = params.pop("tol", 1e-4)
  max_iter = params.pop("max_iter", None)
  if params.get("selection", "cyclic") not in ("random", "cyclic"):
    raise ValueError("selection should be either random or cyclic.")   # (sklearn's words)
  for k in _NO_EFFECT + _DENSE_NO_EFFECT:
    params.pop(k, None)
  if params:
    # sklearn's own message for this case
    raise ValueError("Unexpected parameters in params", params.keys())
  if hasattr(X, "tocsc") or hasattr(y, "tocsc"):
    raise NotImplementedError("sparse X or y: wdjax.path solves dense problems; pass "
                              "X.toarray() or use sklearn.linear_model.")
  X = np.asarray(X)
  y = np.asarray(y)
  if y.ndim != 1:
    raise NotImplementedError(f"y of shape {y.shape}: sklearn's multi-task path (2-D y) is "
                              "not solved by wdjax.path; pass one target at a time.")
  dtype = np.float32 if X.dtype == np.float32 else np.float64
  kw: dict[str, Any] = dict(tol=tol, dtype=dtype)
  if max_iter is not None:
    kw["max_iter"] = max_iter   # (wdjax.path takes 1e5 as sklearn code writes it)
  pick = None
  if isinstance(alphas, str) and alphas == "warn" or alphas is None:   # sklearn's defaults
    n = 100 if n_alphas == "deprecated" else n_alphas
    if not isinstance(n, Integral) or n < 1:
      raise ValueError(f"n_alphas must be a positive integer, got {n!r}.")
    kw.update(n_lambdas=int(n), eps=eps)
  elif isinstance(alphas, Integral):
    if alphas < 1:
      raise ValueError(f"alphas as an integer is their number, >= 1; got {alphas}.")
    kw.update(n_lambdas=int(alphas), eps=eps)
  else:
    if isinstance(alphas, str) or np.ndim(alphas) != 1 or np.size(alphas) == 0:
      raise ValueError(f"alphas must be an integer (their number), a non-empty 1-D array "
                       f"of values or None, got {alphas!r}.")
    wanted = np.sort(np.asarray(alphas, dtype=np.float64))[::-1]
    if not (np.all(np.isfinite(wanted)) and wanted[-1] > 0):
      raise ValueError(f"every alpha must be finite and > 0 here, got {alphas!r} (sklearn "
                       "also solves alpha = 0, the unpenalized least squares; wdjax.path "
                       "does not).")
    # sklearn sorts them decreasing and solves each, repeats too: the distinct values are
    # solved (wdjax's grids are strictly decreasing) and handed back in sklearn's order,
    # a repeat with 0 iterations (sklearn's warm start finds it solved)
    unique = np.unique(wanted)
    kw["lambdas"] = unique[::-1]
    pick = unique.size - 1 - np.searchsorted(unique, wanted)
  if float(l1_ratio) == 1.0:   # (sklearn's enet_path at l1_ratio 1 is its lasso path)
    res = _lasso_path(X, y, **kw)
  else:
    res = _enet_path(X, y, l1_ratio=l1_ratio, **kw)
  lams, coefs, gaps, iters = res.lambdas, res.coefs, res.gaps, res.n_iter
  if pick is not None:
    lams, coefs, gaps, iters = lams[pick], coefs[pick], gaps[pick], iters[pick]
    iters = np.where(np.r_[False, pick[1:] == pick[:-1]], 0, iters)
  out = (np.asarray(lams), np.asarray(coefs.T, dtype=dtype), np.asarray(gaps))
  return out + (list(int(i) for i in iters),) if return_n_iter else out

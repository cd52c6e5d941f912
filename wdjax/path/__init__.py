"""Regularization paths for least squares: lasso, elastic net and group lasso, full batch.

Objective (sklearn's `Lasso`/`ElasticNet`, DESIGN.md), for each λ of a decreasing grid:

  P_λ(w) = 1/(2n)·‖y − Xw‖² + λ·R(w),
  R(w) = ‖w‖₁ (lasso),  α‖w‖₁ + (1−α)/2·‖w‖² (elastic net, α = l1_ratio),
  R(w) = Σ_g ‖w_g‖₂ (group lasso, no √size weights).

λ_max, the smallest λ with w = 0, is max_j |x_jᵀy|/(n·α) (max_g ‖X_gᵀy‖₂/n for groups);
the default grid is 100 values log-spaced from λ_max down to eps·λ_max (eps = 1e-3), as
`sklearn.linear_model.lasso_path` and glmnet. With `fit_intercept=True`, X and y are
centered first and the (unpenalized) intercept is ȳ − x̄ᵀw, as in sklearn's `Lasso`.

Four solvers (`solver=`):

- the homotopy (`solver="homotopy"`, `wdjax.path.homotopy`; the lasso only): the lasso's
  solution path is piecewise linear in λ, and the homotopy (LARS with the lasso
  modification) walks it breakpoint to breakpoint and reads every grid λ off its segment:
  exact to rounding whatever `tol` asks, at a cost set by the number of breakpoints
  (~1-2 per min(n, d)), not by the accuracy. The default on a CPU, at every tol, for the
  lasso with method="warm", a wide X (more than 64 features), at most 128 samples
  (`HOMOTOPY_MAX_N`; below tol 5e-5, where FISTA is the alternative, up to 1000 samples
  fewer than features, `HOMOTOPY_MAX_N_TIGHT`) and screening/polish at their defaults.
  Every grid λ is certified from products with X: its gap in [−1e-12, tol]·‖y‖²/n and,
  whatever tol, its optimality conditions to 1e-9·λ_max; if one is not (collinear columns,
  a degenerate path, the step cap) "auto" solves the path again by the solver it would
  otherwise pick, and solver="homotopy" warns and marks it unconverged.
  `use_loop_kernels()` (an opt-in, process-wide XLA option, `wdjax.path.loop_kernels`)
  compiles its loop into one kernel: 1.5x faster on the correlated benchmark problem.
- the active-set solver (`solver="active_set"`, `wdjax.path.active_set`; the elastic net
  with 0 < l1_ratio < 1): on a fixed support and signs the elastic net's optimality
  conditions are a linear system, solved exactly (in n-space, through the Woodbury
  identity), and feature-sign search finds each grid λ's support from the previous one's,
  a few steps per λ: exact to rounding whatever `tol` asks. The default on a CPU, at every
  tol, for the elastic net with method="warm", a wide X, at most 200 samples and fewer
  than features (`ACTIVE_SET_MAX_N`) and screening/polish at their defaults; certified
  and falling back as the homotopy (also when the support outgrows 4n features). `enet_path` with
  l1_ratio=1 is the lasso, and takes the homotopy on the same terms.
- coordinate descent (`solver="cd"`, `wdjax.path.coordinate_descent`): cyclic updates on
  working sets in residual form, X never turned into a Gram matrix, the whole path one
  `lax.scan` compiled once per (n, d, number of λ); for the group lasso, block
  coordinate descent (one proximal step per group). The default on a CPU when X has more
  than 64 features: for the lasso and elastic net (when the homotopy or the active-set
  solver is not taken) at the default tolerance (sklearn's 1e-4), for the group lasso at
  every tolerance.
- FISTA (`solver="fista"`, the default at tol < 5e-5 for the elastic net and the lasso
  when neither exact solver is taken, for d <= 64, and on an accelerator with
  `device="default"`: by default a warm path runs on the host CPU), below.

CD and FISTA stop on the duality gap of the full problem.

The FISTA solver is accelerated proximal gradient (Beck & Teboulle 2009) with the
gradient adaptive restart of O'Donoghue & Candès (2015), run on the Gram matrix
Q = XᵀX/n inside a `lax.while_loop` that stops on the duality gap — the same gap and the
same tolerance convention as sklearn's coordinate descent, gap ≤ tol·‖y‖²/n — or at
`max_iter` (then `converged` is False and a `PathConvergenceWarning` is issued). The step
size 1/L starts from 24 power iterations on Q (times 1.05), an estimate of λ_max(Q), not a
bound; every step is checked against the majorization ½dᵀQd <= ½L‖d‖² it relies on
(d = w⁺ − z, Beck & Teboulle's backtracking test for a quadratic), and a step that breaks
it by more than the rounding of its products is redone with L raised to 1.1·dᵀQd/‖d‖²,
capped at ‖Q‖_F >= λ_max (where the check stops). Four accelerations, none of which
changes the answer (the stopping test is the gap of the full problem):

- warm starts: λ_k starts from the solution at λ_{k−1};
- working sets (l1/elastic net, wide X): FISTA runs on the support of the warm start plus
  the features that violate the optimality condition |x_jᵀr|/n <= λα there, the most
  violated first, growing by at most max(32, |support|/2) features a round (the strategy
  of celer/skglm); the full gap is then checked and violators are added until it is below
  tol. `screening="strong"` seeds the set with the sequential strong rule of Tibshirani
  et al (2012) instead, |x_jᵀr|/n >= α(2λ_k − λ_{k−1}). Q's rows are formed as working
  sets first reach them (at least 64 a product: the ones needed, and beside them the
  features with the largest |x_jᵀr|/n), not d x d at the start: a path reaches a fraction
  of the features;
- support polishing (l1/elastic net): once the support and signs stop changing, the
  optimality conditions restricted to the support are a linear system,
  (Q_SS + λ(1−α)I)·w_S = Xᵀ_S y/n − λα·sign(w_S), solved exactly by a Cholesky
  factorization (of k − 64 coordinates, the support gathered into them, when it fits
  there and k >= 256, k the size of Q: the working set's padded size, or d without
  working sets; not under method="vmap"; else of all k in place). The solve repairs the support, up to three solves (two under
  vmap): coordinates whose sign flipped leave it, and coordinates off it that violate
  |c_j| <= λα at the solution join it at the sign of c_j. The candidate is kept only if
  its signs agree and its gap is smaller;
- mixed precision (float64, with polishing): the FISTA steps, which only have to find the
  support and signs, multiply by a float32 copy of Q; gaps and the polishing solve are
  float64, and the steps go back to float64 after two polishing attempts that did not
  finish (float32 gradients alone cannot take the gap below ~1e-7·‖y‖²/n).

`method="vmap"` instead solves every λ at once (cold starts, `jax.vmap` over λ), which is
the form that pays off on an accelerator.

`dtype=None` is float32 down to tol (and kkt_tol) 1e-6 and float64 below it, where float32
cannot certify them, or whenever JAX's x64 is on. Code written against `sklearn.linear_model.lasso_path`/`enet_path` keeps its
meaning with `wdjax.path.sklearn_api` (sklearn's arguments, defaults and return value);
sklearn's argument names given to the functions here are an error naming wdjax's.

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
import inspect
import warnings
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from wdjax.path.active_set import active_set_path, slots
from wdjax.path.compiled import platform as _platform
from wdjax.path.coordinate_descent import REFINE_EPOCHS, REFINES, cd_path
from wdjax.path.homotopy import homotopy_path
from wdjax.path.loop_kernels import use_loop_kernels

from wdjax.path.problem import (KINDS, PathConvergenceWarning, PathResult, Solution,
                                _centered, _check_eps, _check_lambdas, _default_tol,
                                _float_dtype, _gram, _gram_on_device, _grid, _group_index,
                                _lambda_max_of, _prepare, _x64_scope, lambda_grid, lambda_max)
from wdjax.path.solver import _path_scan, _path_vmap, _solve_full
from wdjax.path.working_set import _GramRows, _path_working_sets

__all__ = ("KINDS", "PathConvergenceWarning", "PathResult", "Solution", "enet_path", "fista",
           "group_lasso_path", "lambda_grid", "lambda_max", "lasso_path", "solve_lasso",
           "use_loop_kernels")

# sklearn's default tolerance of lasso_path / Lasso (a gap of 1e-4·‖y‖²/n)
PATH_TOL = 1e-4
# `solver="auto"` runs coordinate descent down to this tolerance and FISTA below it: on the
# benchmark problems CD is 2x faster at 1e-4, FISTA with its exact support solve 2x faster
# at 1e-5 and 3-10x at 1e-10 (benchmarks/README.md, run I)
_CD_MIN_TOL = 5e-5
# FISTA's steps between gap checks (and support-solve attempts), unless a path is small
_CHECK_EVERY = 10
# a kkt_tol below this asks more of the CD solver's float32 X than its rounding allows
_FLOAT32_KKT = 1e-6
# ... and below this one more than float64's (the CD solver clamps its target there)
_MIN_KKT = 1e-13
# working-set rounds per λ of the CD solver (each one pass over X); a safety cap
CD_MAX_ROUNDS = 100
# sweeps over the working set's non-zero members after each sweep over the whole set (CD):
# 5 at tol >= 5e-5 (default-tol paths, 5 against 3, same accuracy: lasso 500 x 2000 46
# against 56 ms, correlated 100 x 2000 43 against 47-49; elastic net 4-7%, group lasso
# 1-4% faster), 3 when refining at tighter ones (the group path at tol 1e-8: 2.7 s
# against 3.3 s with 5). Run L, `benchmarks/README.md`
CD_ACTIVE_EPOCHS = 5
CD_ACTIVE_EPOCHS_REFINING = 3
# `solver="auto"` follows the lasso's exact path (`homotopy`) for a wide X (d > 64) with
# at most this many samples: its steps grow with n, each costs one or two passes over X
# and O(n²). CD's time at the default tol over the homotopy's (exact, where CD is ~1e-2 off),
# correlated designs with d = 2000 (2-core Xeon, run L, `bench_path.py --crossover`):
# n = 100, 2.0-2.4x; 150, 1.4-1.5x; 200, 0.83-0.84x; 300, 0.8-0.9x (runs L and M: CD with 3
# and with 5 active sweeps); 500 x 2000: 0.08x. For
# n > d its passes over X (one or two a step) cost more in all than FISTA's whole solve on
# the d x d Gram matrix (20000 x 50: 81 against 5 ms)
HOMOTOPY_MAX_N = 128
# ... and, below CD's tolerances (where FISTA is the alternative), for a wide X (n < d)
# with at most this many samples: exact, and faster than FISTA on the working sets. Time
# at tol 1e-10, d = 2000, random X (2-core AMD EPYC, run Q, warm, `bench_path.py
# --crossover-tight`): n = 200, 40 against 113 ms; 350, 95 / 168; 500, 217 / 257; 800,
# 402 / 407; 1200, 1150 / 547; with c carried between grid λ (run R, one pass over X on
# most steps): 200, 35 / 98; 350, 81 / 165; 500, 168 / 201; 800, 337 / 422; 1200,
# 792 / 514; with the drift check (2a03560): 800, 353 / 419; 1000, 692 / 776; 1200,
# 1172 (819-852 alone) / 561. Cold, it compiles once per (n, d, grid size), two loops
# from min(n, d) = 256 (~1.5-2 s): 2.25 s for the first 500 x 2000 path at tol 1e-10
# against FISTA's 10.9 s (one kernel per working-set size)
HOMOTOPY_MAX_N_TIGHT = 1000
# a cap on the homotopy's steps, per min(n, d) (171 for 100 on the correlated benchmark
# problem, 12 for 10 on diabetes); past it the path falls back as above
HOMOTOPY_MAX_STEPS_PER_K = 16
# `solver="auto"` solves the elastic net exactly (`active_set`, 0 < l1_ratio < 1) for a wide
# X with at most this many samples: each step factors an n x n matrix and passes over X
# once. Its time over CD's at the default tol (exact, where CD is ~1e-2 off), correlated
# designs with d = 2000, l1_ratio 0.5 (2-core Xeon, run N): n = 100, 0.42x (30 against 72
# ms); 150, 0.68x; 200, 0.75x; 250, 1.19x; 300, 1.5x
ACTIVE_SET_MAX_N = 200
# the exact solvers (homotopy, active set) certify a λ only when its optimality conditions
# hold to this fraction of λ_max, whatever tol
EXACT_KKT_TOL = 1e-9
# a cap on the active-set solver's steps for the whole path, per λ (1.5 on the correlated
# benchmark problem), plus one per slot (a grid that starts far below λ_max fills the
# support in its first λ); past it the path falls back as the homotopy's does
ACTIVE_SET_MAX_STEPS_PER_LAMBDA = 20


DEVICES = ("auto", "cpu", "default")


def _host_device(method: str, device: str) -> Any:
  """The CPU device a path runs on, or None for JAX's default device.

  "auto": a sequential path (method="warm") runs on the host CPU when JAX's default
  device is an accelerator. Its solvers are chains of small dependent steps (coordinate
  updates, breakpoints, working sets), which a GPU launches one kernel at a time: on one
  H200 the default call on 500 x 2000 took 396 ms warm and 25 s cold (FISTA, the CPU-only
  solvers being off there), against 25-46 ms and 1.3-1.9 s on a 2-core CPU
  (benchmarks/README.md). The results are NumPy arrays either way.
  """
  if device not in DEVICES:
    raise ValueError(f"device must be one of {DEVICES} ('auto': the host CPU for "
                     f"method='warm' on an accelerator machine), got {device!r}.")
  want_cpu = device == "cpu" or (device == "auto" and method == "warm")
  if not want_cpu or _platform() == "cpu":
    return None
  try:
    return jax.devices("cpu")[0]
  except RuntimeError:   # JAX_PLATFORMS without "cpu": stay where JAX computes
    if device == "cpu":
      raise ValueError("device='cpu' but JAX has no CPU backend (JAX_PLATFORMS excludes "
                       "it); add 'cpu' to JAX_PLATFORMS or pass device='default'.") from None
    return None


# sklearn's arguments of its lasso_path/enet_path, for code swapped over from
# sklearn.linear_model: wdjax's name where it has one
_SKLEARN_ARGS = {"alphas": "lambdas= (an array of λ) or n_lambdas= (their number)",
                 "n_alphas": "n_lambdas=", "precompute": None, "Xy": None, "copy_X": None,
                 "coef_init": None, "verbose": None, "return_n_iter": None, "positive": None,
                 "check_input": None}
_NAMES = {"l1": "lasso_path", "elastic_net": "enet_path", "group_lasso": "group_lasso_path"}


@functools.cache
def _keywords() -> frozenset:
  """The keywords a user passes to every path function (once: a short path takes ~1 ms)."""
  return frozenset(inspect.signature(_path_here).parameters) - {"X", "y", "kind", "l1_ratio",
                                                                "groups"}


def _check_names(kwargs):
  """A TypeError naming the public function and the fix for an unknown keyword (sklearn's
  names get wdjax's, and `sklearn_api`), not Python's about `_path_here`."""
  kind = kwargs["kind"]
  fn = _NAMES[kind]
  # (kind, l1_ratio and groups are passed by the public functions, each where it means
  # something; lasso_path's l1_ratio has its own error in _path_here)
  own = {"elastic_net": {"l1_ratio"}, "group_lasso": {"groups"}}.get(kind, set())
  known = _keywords()
  for name in kwargs:
    if name in known or name in own or name in ("kind", "l1_ratio"):
      continue
    if name == "groups":
      raise TypeError(f"{fn}() has no groups; for the group lasso use "
                      "group_lasso_path(X, y, groups).")
    if name in _SKLEARN_ARGS:
      alt = _SKLEARN_ARGS[name]
      hint = (f"wdjax.path names it {alt}" if alt else "wdjax.path has no such argument")
      face = ("; for sklearn's arguments and its (alphas, coefs, dual_gaps), use "
              "wdjax.path.sklearn_api.lasso_path/enet_path" if kind != "group_lasso"
              else " (sklearn has no group lasso)")
      raise TypeError(
          f"{fn}() got sklearn's argument {name!r}: {hint}. wdjax.path.{fn} returns a "
          "PathResult (coefs of shape (n_lambdas, n_features), the transpose of sklearn's; "
          f"n_iter, gaps and converged per λ){face}.")
    raise TypeError(f"{fn}() got an unexpected keyword argument {name!r}; its arguments: "
                    f"{', '.join(sorted(known | own | {'device'}))}.")


def _path(X, y, *, device="auto", **kwargs):
  _check_names(kwargs)
  host = _host_device(kwargs.get("method", "warm"), device)
  # (the solvers take X and y as NumPy arrays: they are on the host already)
  with contextlib.nullcontext() if host is None else jax.default_device(host):
    return _path_here(X, y, **kwargs)


def _check_max_iter(max_iter, min_iter):
  """max_iter as an int (1e5 as sklearn code writes it is 100000), checked."""
  if isinstance(max_iter, (float, np.floating)) and float(max_iter).is_integer():
    max_iter = int(max_iter)
  # (the solvers count in int32: a larger cap would wrap and stop every λ at once)
  if not (isinstance(max_iter, (int, np.integer)) and not isinstance(max_iter, bool)
          and min_iter <= max_iter < 2 ** 31):
    raise ValueError(f"max_iter must be an integer in [{min_iter}, 2**31 - 1], got "
                     f"{max_iter!r}.")
  return int(max_iter)


def _path_here(X, y, *, kind, l1_ratio=1.0, groups=None, lambdas=None, n_lambdas=100, eps=1e-3,
               fit_intercept=False, tol=PATH_TOL, max_iter=20_000, method="warm",
               solver="auto", screening="auto", polish=True, dtype=None, check_every=None,
               kkt_tol=None):
  if method not in ("warm", "vmap"):
    raise ValueError(f"method must be 'warm' (sequential, warm-started) or 'vmap' (all λ at "
                     f"once), got {method!r}.")
  if solver not in ("auto", "cd", "fista", "homotopy", "active_set"):
    raise ValueError(f"solver must be 'auto', 'homotopy' (the exact lasso path), "
                     f"'active_set' (the exact elastic-net path), 'cd' (coordinate descent) "
                     f"or 'fista', got {solver!r}.")
  if solver == "homotopy" and kind != "l1":
    raise ValueError("solver='homotopy' follows the lasso's path, which is piecewise linear "
                     "in λ; the elastic net's and the group lasso's are not: use "
                     "solver='active_set' for the elastic net, 'cd' or 'fista' (or 'auto').")
  if solver == "active_set" and not (kind == "elastic_net" and l1_ratio < 1.0):
    raise ValueError("solver='active_set' solves the elastic net with 0 < l1_ratio < 1 "
                     "(its ridge term keeps the n-space system invertible); for the lasso use "
                     "solver='homotopy', for the group lasso 'cd' (or 'auto').")
  if kind in ("l1", "group_lasso") and l1_ratio != 1.0:
    name = "lasso_path" if kind == "l1" else "group_lasso_path"
    raise ValueError(f"{name} has no l1_ratio (got {l1_ratio}); use enet_path(X, y, "
                     "l1_ratio=...) for the elastic net.")
  if solver in ("cd", "homotopy", "active_set") and method == "vmap":
    raise ValueError(f"solver={solver!r} solves the path with method='warm'; use "
                     "solver='fista' (or 'auto') with method='vmap'.")
  _check_eps(eps)
  _float_dtype(dtype)   # (a bad dtype is named before anything else is)
  tol = PATH_TOL if tol is None else float(tol)
  if not tol > 0:
    raise ValueError(f"tol must be > 0, got {tol}.")
  max_iter = _check_max_iter(max_iter, _CHECK_EVERY if check_every is None else check_every)
  if np.ndim(X) != 2:   # (before the solver choice reads its shape)
    raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape "
                     f"{np.shape(X)}.")
  if kkt_tol is not None:
    if not (isinstance(kkt_tol, (int, float, np.integer, np.floating))
            and not isinstance(kkt_tol, bool) and np.isfinite(kkt_tol)
            and kkt_tol >= _MIN_KKT):
      raise ValueError(f"kkt_tol must be a finite number >= {_MIN_KKT:g} (the CD solver's "
                       f"target for each λ's optimality conditions, relative to α·λ_max; "
                       f"float64 resolves them to about that), got {kkt_tol!r}; leave it "
                       f"None for the default (tol below 5e-5, none at or above).")
    kkt_tol = float(kkt_tol)
    if solver == "fista" or method == "vmap":
      raise ValueError("kkt_tol is the coordinate-descent solver's option (it sweeps each "
                       "λ's support until its optimality conditions hold to "
                       "kkt_tol·α·λ_max); FISTA stops at the gap alone: use solver='cd' "
                       "(or 'auto') with method='warm', or leave kkt_tol None.")
  # whether the exact solvers' certificates (EXACT_KKT_TOL·λ_max) meet the caller's target
  exact_meets_kkt = kkt_tol is None or kkt_tol * l1_ratio >= EXACT_KKT_TOL
  if solver in ("homotopy", "active_set") and not exact_meets_kkt:
    raise ValueError(f"solver={solver!r} certifies each λ's optimality conditions to "
                     f"{EXACT_KKT_TOL:g}·λ_max, looser than kkt_tol={kkt_tol:g} asks: use "
                     f"solver='cd' (or 'auto', which picks it) for a tighter target.")
  # float64 where float32 could not certify the tolerances asked (dtype=None)
  dt = _float_dtype(dtype, tol, kkt_tol)
  if screening not in ("auto", "kkt", "strong", True, False):
    raise ValueError(f"screening must be 'auto', 'kkt' (True), 'strong' or False, got "
                     f"{screening!r}.")
  gidx = None   # the group lasso's (groups, width) feature index, built once
  if solver == "auto":
    # (few features: FISTA on the small Gram matrix beats CD's per-update loop overhead,
    # 1.4 against 11.6 ms on diabetes's d = 10)
    wide = len(np.shape(X)) == 2 and np.shape(X)[1] > 64
    # screening/polish set away from their defaults are FISTA options of the lasso and
    # elastic net: honour them (the group-lasso FISTA has neither)
    fista_options = kind != "group_lasso" and (screening != "auto" or polish is not True)
    # on an accelerator every step of CD's scalar loop is a kernel launch (µs each), while
    # FISTA's steps are matrix products: CD is a CPU solver
    on_cpu = _platform() == "cpu"
    # (the group lasso: block CD at every tol, FISTA has no working sets for it and was
    # 14-38x slower at 1e-4 and 3-26x at 1e-8 on the benchmark problems, run K)
    loose = tol >= _CD_MIN_TOL or kind == "group_lasso"
    # block CD pads every group to the widest one: with very uneven groups (say one of 1000
    # features among singletons) that multiplies X's copy and each update's work, so it is
    # taken only while the padding at most doubles X
    compact = True
    if kind == "group_lasso" and wide:
      gidx = _group_index(groups, np.shape(X)[1])
      compact = gidx.size <= 2 * np.shape(X)[1]
    solver = ("cd" if method == "warm" and loose and wide and compact and not fista_options
              and on_cpu else "fista")
    if kkt_tol is not None:
      # a target for the optimality conditions is CD's to meet (FISTA stops at the gap),
      # wherever it runs; the exact solvers below certify theirs to EXACT_KKT_TOL·λ_max and
      # are kept when that is as tight
      if fista_options:
        raise ValueError("screening and polish are FISTA's options and kkt_tol is the CD "
                         "solver's: with kkt_tol, leave screening='auto' and polish=True.")
      if not compact:
        raise ValueError(f"kkt_tol is the CD solver's option, and these groups are too uneven "
                         f"for it under solver='auto': block CD pads every group to the "
                         f"widest, {gidx.size / np.shape(X)[1]:.1f}x X's size here; pass "
                         f"solver='cd' to accept that, or leave kkt_tol None (FISTA).")
      solver = "cd"
    # the exact solvers for few samples and many features (the lasso's homotopy, the
    # elastic net's active set); a λ either cannot certify sends the path to `solver`
    n_samples = np.shape(X)[0]
    fewer_samples = n_samples < np.shape(X)[1]
    exact = None
    if method == "warm" and on_cpu and not fista_options and wide and exact_meets_kkt:
      if ((kind == "l1" or (kind == "elastic_net" and l1_ratio == 1.0))
          and (n_samples <= HOMOTOPY_MAX_N
               or (not loose and n_samples <= HOMOTOPY_MAX_N_TIGHT and fewer_samples))):
        exact = "homotopy"
      elif kind == "elastic_net" and n_samples <= ACTIVE_SET_MAX_N and fewer_samples:
        exact = "active_set"
    if exact is not None:
      res = _exact(exact, X, y, l1_ratio=l1_ratio, lambdas=lambdas, n_lambdas=n_lambdas,
                   eps=eps, fit_intercept=fit_intercept, tol=tol, warn=False)
      if res is not None:
        return res
  if solver in ("homotopy", "active_set"):   # (uncertified λ warn and are marked)
    return _exact(solver, X, y, l1_ratio=l1_ratio, lambdas=lambdas, n_lambdas=n_lambdas,
                  eps=eps, fit_intercept=fit_intercept, tol=tol, warn=True)
  if solver == "cd":
    return _cd(X, y, l1_ratio=l1_ratio, lambdas=lambdas, n_lambdas=n_lambdas, eps=eps,
               fit_intercept=fit_intercept, tol=tol, max_iter=max_iter, dtype=dt,
               groups=groups if kind == "group_lasso" else None, gidx=gidx, kkt_tol=kkt_tol)
  # the arguments are checked before the d x d Gram matrix is built (on working sets, only
  # the rows they reach, as they reach them)
  Xc, _, xm, ym, b, yy = _centered(X, y, fit_intercept)
  d = Xc.shape[1]
  use_ws = method == "warm" and kind != "group_lasso" and (
      screening in (True, "kkt", "strong") or (screening == "auto" and d > 64))
  if kind == "group_lasso" and gidx is None:
    gidx = _group_index(groups, d)
  lam_max = _lambda_max_of(b, l1_ratio, gidx)
  lams = _grid(lam_max, lambdas, n_lambdas, eps)
  tol_abs = tol * yy
  if check_every is None:
    # FISTA checks the gap (and tries the support solve) every 10 steps; below CD's
    # tolerances, on the warm path on <= 64 features (no working sets), when it polishes,
    # every 2: a check costs about a step there, and a warm-started λ is mostly done by
    # its first solve (diabetes's elastic-net path 0.82 against 1.11 ms; on the 500 x 2000
    # working sets 5 steps was slower than 10, 217 against 197 ms: benchmarks/README.md,
    # run Y). (At looser tolerances a λ stops at its first check under tol, and 2 steps
    # would hand back coarser coefficients than the 10 of before, for no time worth
    # having.)
    small = method == "warm" and not use_ws and d <= 64 and tol < _CD_MIN_TOL
    check_every = 2 if small and polish and kind != "group_lasso" else _CHECK_EVERY
  kw = dict(kind=kind, max_iter=int(max_iter), check_every=check_every,
            polish=bool(polish) and kind != "group_lasso")
  with _x64_scope(dt):
    bj = jnp.asarray(b, dt)
    if use_ws:
      coefs, gaps, iters = _path_working_sets(_GramRows(Xc, dt), bj, yy, lams, l1_ratio,
                                              lam_max, tol_abs, kw,
                                              strong_rule=screening == "strong")
    else:
      Qj = _gram_on_device(_gram(Xc, dt))
      g = None if gidx is None else jnp.asarray(gidx)
      fn = _path_scan if method == "warm" else _path_vmap
      coefs, gaps, iters = (np.asarray(a) for a in
                            fn(Qj, bj, yy, jnp.asarray(lams, dt), l1_ratio, g, tol_abs, **kw))
  # (stacklevel 5: _result, here, _path, lasso_path and the like, the caller)
  return _result(lams, coefs, gaps, iters, tol_abs, max_iter, fit_intercept, xm, ym, 5)


def _residual_form(X, y, *, fit_intercept, l1_ratio, lambdas, n_lambdas, eps, dtype,
                   groups=None, gidx=None):
  """What the solvers that keep X as is (CD, the homotopy) start from: (Xᵀ as a contiguous
  (d, n) array in `dtype`, so that a feature's column is a row; the centered y; x̄, ȳ;
  ‖y‖²/n; λ_max; the grid; the group index, built from `groups` unless given)."""
  Xc, yc, xm, ym, b, yy = _centered(X, y, fit_intercept)   # (checks the data first)
  if groups is not None and gidx is None:
    gidx = _group_index(groups, Xc.shape[1])
  lam_max = _lambda_max_of(b, l1_ratio, gidx)
  lams = _grid(lam_max, lambdas, n_lambdas, eps)
  return np.ascontiguousarray(Xc.T, dtype=dtype), yc, xm, ym, yy, lam_max, lams, gidx


def _cd(X, y, *, l1_ratio, lambdas, n_lambdas, eps, fit_intercept, tol, max_iter, dtype,
        groups=None, gidx=None, kkt_tol=None):
  """The path by `coordinate_descent.cd_path`: no Gram matrix, X transposed (and, with
  `groups`, its columns gathered into zero-padded blocks of the widest group's size for
  block coordinate descent: the group lasso; `gidx`, their index if already built)."""
  # X transposed in the asked dtype, one block of rows per group (a group narrower than
  # the widest is padded with zero rows); the residual, the coefficients and their gaps in
  # float64, whatever the dtype (see cd_path)
  Xt, yc, xm, ym, yy, _, lams, gidx = _residual_form(
      X, y, fit_intercept=fit_intercept, l1_ratio=l1_ratio, lambdas=lambdas,
      n_lambdas=n_lambdas, eps=eps, dtype=dtype, groups=groups, gidx=gidx)
  d = Xt.shape[0]
  tol_abs = tol * yy
  # each λ's support swept towards its optimality conditions: below tol 5e-5 by default
  # (to tol·α·λ_max), at any tol when the caller names the target (and then a λ converges
  # only where they hold)
  named = kkt_tol is not None
  refine = named or tol < _CD_MIN_TOL
  kkt_tol = kkt_tol if named else tol
  single = np.dtype(dtype) == np.float32
  if named and single and kkt_tol < _FLOAT32_KKT:
    warnings.warn(f"kkt_tol={kkt_tol:g} with dtype=float32: the CD solver checks the "
                  "optimality conditions against X rounded to float32, which moves them by "
                  f"~1e-8 to 1e-7 of λ_max; use dtype='float64' for kkt_tol < "
                  f"{_FLOAT32_KKT:g}.", UserWarning, stacklevel=5)
  Xb = (Xt[:, None, :] if gidx is None
        else np.concatenate([Xt, np.zeros((1, Xt.shape[1]), Xt.dtype)])[gidx])
  with jax.enable_x64(True):
    blocks, gaps, iters, rounds, met = (np.asarray(a) for a in cd_path(
        Xb, yc, lams, l1_ratio, tol_abs, max_epochs=int(max_iter), max_outer=CD_MAX_ROUNDS,
        active_epochs=CD_ACTIVE_EPOCHS_REFINING if refine else CD_ACTIVE_EPOCHS,
        refine=refine, kkt_tol=max(kkt_tol, _MIN_KKT),
        # a named target is held to max_iter alone (by default a refinement stops after
        # REFINE_EPOCHS sweeps: an accuracy bonus, not a criterion)
        refine_epochs=int(max_iter) if named else REFINE_EPOCHS,
        refines=CD_MAX_ROUNDS if named else REFINES))
  if gidx is None:
    coefs = blocks[:, :, 0]
  else:   # blocks back to features (the padding slots, index d, dropped)
    coefs = np.zeros((lams.size, d + 1))
    coefs[:, gidx.reshape(-1)] = blocks.reshape(lams.size, -1)
    coefs = coefs[:, :d]
  limit = None
  if np.any((gaps > tol_abs) & (rounds >= CD_MAX_ROUNDS) & (iters < max_iter)):
    limit = (f"{CD_MAX_ROUNDS} working-set rounds (the gap is near its floor: float32 X "
             "resolves about 1e-9·‖y‖²/n)")
  res = _result(lams, coefs, gaps, iters, tol_abs, max_iter, fit_intercept, xm, ym, 6, limit)
  if not named:
    return res
  off = res.converged & ~met
  if off.any():
    bad = np.flatnonzero(off)
    warnings.warn(
        f"{bad.size} of {lams.size} λ reached the gap tolerance but not optimality conditions "
        f"within kkt_tol = {kkt_tol:.3g} (of α·λ_max) in max_iter={max_iter} epochs or "
        f"{CD_MAX_ROUNDS} refinements (first: λ[{bad[0]}] = "
        f"{lams[bad[0]]:.4g}). Raise max_iter or loosen kkt_tol"
        + (", or use dtype=float64 (float32 X resolves the conditions to about 1e-7·λ_max)."
           if single else "."), PathConvergenceWarning, stacklevel=5)
  return res._replace(converged=res.converged & met)


def _exact(solver, X, y, *, l1_ratio, **kwargs):
  """The path by one of the exact solvers, "homotopy" (the lasso) or "active_set"."""
  if solver == "homotopy":
    return _homotopy(X, y, **kwargs)
  return _active_set(X, y, l1_ratio=l1_ratio, **kwargs)


def _homotopy(X, y, *, lambdas, n_lambdas, eps, fit_intercept, tol, warn):
  """The lasso path by `homotopy.homotopy_path` (float64 whatever the dtype: it is exact),
  or None if a λ is not certified and not `warn` (then the caller solves the path another
  way). Certified: its duality gap is in [−1e-12, tol]·‖y‖²/n and, whatever tol, the
  optimality conditions hold to 1e-9·λ_max (|x_jᵀr/n| <= λ, coefficients of their
  correlation's sign). max_iter does not reach it: its cap is HOMOTOPY_MAX_STEPS_PER_K."""
  Xt, yc, xm, ym, yy, lam_max, lams, _ = _residual_form(
      X, y, fit_intercept=fit_intercept, l1_ratio=1.0, lambdas=lambdas, n_lambdas=n_lambdas,
      eps=eps, dtype=np.float64)
  d, n = Xt.shape
  with jax.enable_x64(True):
    w, feat, gaps, viol, steps = (np.asarray(a) for a in homotopy_path(
        Xt, np.asarray(yc, np.float64), lams, lam_max,
        np.int32(HOMOTOPY_MAX_STEPS_PER_K * min(n, d) + 64)))
  return _certified(lams, w, feat, d, gaps, viol, steps, yy, lam_max, tol, warn,
                    fit_intercept, xm, ym,
                    limit=f"{HOMOTOPY_MAX_STEPS_PER_K}·min(n, d) + 64 homotopy steps, or with "
                    "its optimality conditions off by more than 1e-9·λ_max",
                    advice="Collinear features or a degenerate path: solver='cd' or 'fista' "
                    "(or 'auto', which falls back to one of them) solves it another way.")


def _active_set(X, y, *, l1_ratio, lambdas, n_lambdas, eps, fit_intercept, tol, warn):
  """The elastic-net path by `active_set.active_set_path` (float64 whatever the dtype: it
  is exact), or None if a λ is not certified and not `warn`, as `_homotopy`. Certified:
  its duality gap is in [−1e-12, tol]·‖y‖²/n and, whatever tol, the optimality conditions
  hold to 1e-9·λ_max. max_iter does not reach it: its cap is
  ACTIVE_SET_MAX_STEPS_PER_LAMBDA steps per λ plus one per slot, for the whole path."""
  Xt, yc, xm, ym, yy, lam_max, lams, _ = _residual_form(
      X, y, fit_intercept=fit_intercept, l1_ratio=l1_ratio, lambdas=lambdas,
      n_lambdas=n_lambdas, eps=eps, dtype=np.float64)
  d, n = Xt.shape
  # λ more than 10% apart (from λ_max to the first, or between two of the grid) are
  # bridged by λ log-spaced 10% apart, dropped from the result (their steps counted in the
  # next λ's): from a point far from the solution, feature-sign search meets so many wrong
  # signs that it ran out of steps (the correlated benchmark problem at a single
  # λ = 1e-3·λ_max: 420 steps uncertified; bridged, 120 steps in all)
  grid, keep, prev = [], [], lam_max
  for lam in lams:
    if lam < 0.9 * prev:
      bridge = prev * np.geomspace(1.0, lam / prev,
                                   int(np.ceil(np.log(lam / prev) / np.log(0.9))) + 1)[1:-1]
      grid.extend(bridge)
      keep.extend([False] * bridge.size)
    grid.append(lam)
    keep.append(True)
    prev = min(lam, lam_max)
  grid, keep = np.asarray(grid, np.float64), np.asarray(keep)
  with jax.enable_x64(True):
    w, feat, gaps, viol, steps = (np.asarray(a) for a in active_set_path(
        Xt, np.asarray(yc, np.float64), grid, l1_ratio, lam_max,
        np.int32(ACTIVE_SET_MAX_STEPS_PER_LAMBDA * grid.size + slots(n, d))))
  steps = np.add.reduceat(steps, np.flatnonzero(np.r_[True, keep[:-1]]))   # (bridges in)
  w, feat, gaps, viol = (a[keep] for a in (w, feat, gaps, viol))
  return _certified(lams, w, feat, d, gaps, viol, steps, yy, lam_max, tol, warn,
                    fit_intercept, xm, ym,
                    limit=f"{ACTIVE_SET_MAX_STEPS_PER_LAMBDA} active-set steps per λ (+ "
                    f"{slots(n, d)}), a support of at most {slots(n, d)} features, or with its "
                    "optimality conditions off by more than 1e-9·λ_max",
                    advice="Collinear features, l1_ratio near 1 or a support larger than 4n: "
                    "solver='cd' (or 'auto', which falls back to it) solves it another way.")


def _certified(lams, w, feat, d, gaps, viol, steps, yy, lam_max, tol, warn, fit_intercept,
               xm, ym, limit, advice):
  """The result of an exact solver (the homotopy, the active set): slot coefficients `w`
  of features `feat` (index d, the number of features: an empty slot) per λ. A λ is
  certified when its gap is in [−1e-12, tol]·‖y‖²/n (below, rounding gone wrong, not a
  better point) and its optimality conditions hold to 1e-9·λ_max, whatever tol; None if
  one is not and not `warn` (the caller then solves the path another way), else the
  unconverged ones are warned about."""
  tol_abs = tol * yy
  certified = (gaps <= tol_abs) & (gaps >= -1e-12 * yy) & (viol <= EXACT_KKT_TOL * lam_max)
  if not (certified.all() or warn):
    return None
  coefs = np.zeros((lams.size, d + 1))
  np.put_along_axis(coefs, feat, w, axis=1)   # (empty slots write column d, dropped)
  # (stacklevel 8: _result, here, _homotopy or _active_set, _exact, _path_here, _path,
  # lasso_path and the like, the caller)
  return _result(lams, coefs[:, :d], gaps, steps, tol_abs, 0, fit_intercept, xm, ym, 8,
                 limit=limit, converged=certified, advice=advice)


def _result(lams, coefs, gaps, iters, tol_abs, max_iter, fit_intercept, xm, ym, stacklevel,
            limit=None, converged=None,
            advice="Raise max_iter, loosen tol, or use dtype=float64."):
  coefs = np.asarray(coefs, np.float64)
  gaps = np.asarray(gaps, np.float64)
  converged = gaps <= tol_abs if converged is None else converged
  if not converged.all():
    bad = np.flatnonzero(~converged)
    warnings.warn(
        f"{bad.size} of {lams.size} λ did not reach gap <= tol·‖y‖²/n = {tol_abs:.3g} within "
        f"{limit or f'max_iter={max_iter}'} (first: λ[{bad[0]}] = {lams[bad[0]]:.4g}, gap "
        f"{gaps[bad[0]]:.3g}). {advice}",
        PathConvergenceWarning, stacklevel=stacklevel)
  intercepts = ym - coefs @ xm if fit_intercept else np.zeros(lams.size)
  return PathResult(lams, coefs, intercepts, gaps, np.asarray(iters), converged)


_PATH_ARGS = """
  Args:
    X: (n, d) design matrix; y: (n,) targets.
    lambdas: a strictly decreasing grid; default `lambda_grid(lambda_max(X, y), n_lambdas, eps)`.
    n_lambdas: number of grid values (default 100).
    eps: the grid ends at eps·λ_max, 0 < eps < 1 (default 1e-3).
    fit_intercept: center X and y and return an unpenalized intercept (like sklearn's Lasso).
    tol: stop when the duality gap is <= tol·‖y‖²/n (sklearn's convention and sklearn's
      default, 1e-4: about 1e-2 relative error in the coefficients on a wide problem); ask
      tol=1e-10 with dtype="float64" for lasso/elastic-net coefficients exact to ~1e-11
      (FISTA's support solve). Below 5e-5 the CD solver (any penalty) also sweeps
      each λ's support, up to 100 times, towards its optimality conditions holding to
      tol·α·λ_max: the gap alone, read from objective values, lets the coefficients sit
      ~√gap away (on the 500 x 2000 benchmark's group path at tol 1e-8: 1.3e-5 of the
      largest coefficient unrefined, 3e-7 refined). Until 2026-11-27 the default was 1e-10
      in float64, 1e-5 in float32.
    kkt_tol: a target for the optimality conditions, relative to α·λ_max (the CD solver;
      default None: tol below 5e-5, none at or above). Each λ's support is then swept until
      ‖X_gᵀr/n − λ(1−α)w_g − λα·w_g/‖w_g‖‖ <= kkt_tol·α·λ_max on it, and a block off it
      with ‖X_gᵀr/n‖ > λα + kkt_tol·α·λ_max sends the λ back to working-set rounds; a λ
      counts as converged when these hold as well as the gap, within max_iter (a
      `PathConvergenceWarning` names those that do not). The conditions bound the
      coefficients' error more cheaply than the gap does: pair a loose tol (1e-2) with
      kkt_tol for a given accuracy (group lasso 500 x 2000: kkt_tol=1e-8 reaches 8e-7 of
      the largest coefficient in 0.78 s where tol=1e-8 alone takes 1.4 s to 3e-7;
      benchmarks run S). solver="auto" then runs CD (wherever it runs: on an accelerator
      too with device="default"), or an exact solver where its certificates (1e-9·λ_max)
      are as tight; solver="fista", method="vmap", screening/polish away from their
      defaults, an exact solver asked for a tighter target than its certificates and
      kkt_tol < 1e-13 are errors; below 1e-6 the default dtype is float64 (an explicit
      float32 X resolves the conditions to ~1e-7 only, and warns).
    max_iter: iterations allowed per λ, FISTA steps or coordinate-descent epochs (passes
      over the working set of the moment or its support); a safety cap, non-convergence
      warns. The CD solver also stops a λ after 100 working-set rounds (`CD_MAX_ROUNDS`).
      The homotopy ignores it: its cap is 16·min(n, d) + 64 steps for the whole path
      (`HOMOTOPY_MAX_STEPS_PER_K`), and its `n_iter` are the steps since the previous λ
      (breakpoints, one per feature when several tie, and features set aside); so does
      the active-set solver (20 steps per λ plus min(d, 4n) for the whole path,
      `ACTIVE_SET_MAX_STEPS_PER_LAMBDA`; `n_iter`: its steps at each λ).
    method: "warm" (sequential with warm starts) or "vmap" (all λ at once, cold starts).
    solver: "homotopy" (the lasso's exact path, breakpoint to breakpoint, in float64
      whatever dtype says: a λ counts as converged when its gap is in [−1e-12, tol]·‖y‖²/n
      and, whatever tol, its optimality conditions hold to 1e-9·λ_max; fastest for few
      samples and many features, n up to ~150 at d = 2000; with few features FISTA on
      the Gram matrix is faster),
      "active_set" (the elastic net's exact path for 0 < l1_ratio < 1, feature-sign
      search with the support's system solved in n-space, float64 and certified as the
      homotopy; fastest for few samples and many features, n up to ~200 at d = 2000; its
      support may hold at most 4n features),
      "cd" (coordinate descent on working sets, the whole path one
      compiled program: fastest at loose tolerances, and about 1 s to compile), "fista"
      (FISTA on the Gram matrix with working sets and an exact support solve: fastest at
      tight tolerances, compiled once per working-set size), or "auto" (on a CPU with
      method="warm": "homotopy" for the lasso with more than 64 features and at most
      128 samples, or below tol 5e-5 at most 1000 and fewer than features, "active_set"
      for the elastic net with at most 200 (and n < d), both with screening/polish at
      their defaults and falling back to the next choice if a λ is not certified; "cd"
      with more than 64 features, for lasso and elastic net at tol >= 5e-5 and for the
      group lasso at every tol while padding every group to the widest at most doubles X;
      else "fista").
    screening: working sets of the FISTA solver (method="warm", l1/elastic net): "kkt" or
      True (grown from the violators of the optimality conditions), "strong" (seeded by
      the strong rule), False (none), or "auto" ("kkt" when d > 64). The CD solver always
      grows its working sets from the violators; for lasso and elastic net a value other
      than "auto" makes solver="auto" pick FISTA (the group lasso ignores it).
    polish: FISTA: try the exact solve on a stable support (l1/elastic net); False makes
      solver="auto" pick FISTA for lasso and elastic net (the group lasso ignores it).
    dtype: float32 or float64 (run in an x64 scope); default (None) float64 if x64 is
      enabled or if tol or kkt_tol is below 1e-6, where float32 could not certify them,
      float32 otherwise (faster; sklearn computes in X's dtype). The CD solver keeps
      X in this dtype and its residual, coefficients and gaps in float64; the homotopy and
      the active-set solver run in float64 whatever it says.
    device: "auto" (default: method="warm" runs on the host CPU when JAX's default device
      is anything else, a GPU or TPU, where its chain of small steps is slower and compiles
      longer, or stays there if JAX has no CPU backend, e.g. JAX_PLATFORMS=cuda;
      method="vmap" on JAX's default device), "cpu" (both methods on the host CPU; an
      error without a CPU backend), or "default" (JAX's default device, and solver="auto"
      then picks as on that device: FISTA on an accelerator). `fista` and `solve_lasso`
      (one λ) run where JAX computes: wrap them in `jax.default_device(jax.devices("cpu")[0])`.

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
    >>> # a loose gap and a target for the optimality conditions (the CD solver): at every λ
    >>> # |x_jᵀr/n − λ·sign(w_j)| on the support and |x_jᵀr/n| − λ off it <= kkt_tol·λ_max
    >>> res = path.lasso_path(X, y, n_lambdas=10, tol=1e-2, kkt_tol=1e-10, dtype="float64")
    >>> c = (y - res.coefs @ X.T) @ X / len(y)
    >>> lam, w = res.lambdas[:, None], res.coefs
    >>> off = np.where(w != 0, np.abs(c - lam * np.sign(w)), np.maximum(np.abs(c) - lam, 0))
    >>> bool(res.converged.all()), bool(off.max() <= 1e-10 * res.lambdas[0])
    (True, True)
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
    >>> # the exact solver (the default for a wide X with few samples) agrees to rounding
    >>> res = path.enet_path(X, y, l1_ratio=0.5, lambdas=[1.0], solver="active_set")
    >>> np.round(res.coefs, 12), bool(res.converged.all())
    (array([[0.6, 0. , 0. ]]), True)
  """
  if not 0.0 < float(l1_ratio) <= 1.0:
    raise ValueError(f"l1_ratio must be in (0, 1], got {l1_ratio}; for l1_ratio=0 (ridge) "
                     "use a closed form or sklearn.linear_model.Ridge(alpha=n·λ) (it "
                     "minimizes ‖y − Xw‖² + alpha·‖w‖², not scaled by 1/(2n)).")
  return _path(X, y, kind="elastic_net", l1_ratio=float(l1_ratio), **kwargs)


def group_lasso_path(X: Any, y: Any, groups: Sequence[int], **kwargs: Any) -> PathResult:
  """Group-lasso path: 1/(2n)‖y − Xw‖² + λΣ_g‖w_g‖₂; `groups[j]` is feature j's group id.

  λ_max = max_g ‖X_gᵀy‖₂/n. On a CPU with more than 64 features: block coordinate descent
  on working sets of groups (`solver="cd"`; a group's step is the proximal step of its
  quadratic majorant, L_g = ‖X_g‖₂²/n, as skglm's GroupBCD), at every tolerance; else
  plain warm-started FISTA on the Gram matrix (no working sets or polishing). Other
  arguments as `lasso_path`.

  Example:
    >>> import numpy as np
    >>> from wdjax import path
    >>> X = np.eye(4); y = np.array([3.0, 4.0, 0.3, 0.4])
    >>> res = path.group_lasso_path(X, y, [0, 0, 1, 1], lambdas=[0.5])
    >>> # X = I, n = 4, b = y/4: ‖b_1‖ = 1.25 > λ, ‖b_2‖ = 0.125 < λ; w_1 = 4(1 − λ/1.25)·b_1
    >>> np.round(res.coefs, 6)
    array([[1.8, 2.4, 0. , 0. ]])
  """
  return _path(X, y, kind="group_lasso", groups=groups, **kwargs)


lasso_path.__doc__ = lasso_path.__doc__.replace("{args}", _PATH_ARGS)


def fista(X: Any, y: Any, strength: float, *, penalty: str = "l1", l1_ratio: float = 1.0,
          groups: Any = None, w0: Any = None, fit_intercept: bool = False, tol: float | None = None,
          max_iter: int = 20_000, polish: bool = True, dtype: Any = None) -> Solution:
  """One problem 1/(2n)‖y − Xw‖² + λR(w) by FISTA with adaptive restart, to a gap tolerance.

  penalty "l1" (R = ‖w‖₁), "elastic_net" (α‖w‖₁ + (1−α)/2‖w‖², α = l1_ratio) or
  "group_lasso" (Σ_g‖w_g‖₂ with `groups`). The accelerated counterpart of `wdjax.proximal_sgd` on a
  full batch: the same prox operators (`wdjax.prox`), momentum t_{k+1} = (1+√(1+4t_k²))/2,
  and a restart (t = 1) whenever (z_k − w_{k+1})ᵀ(w_{k+1} − w_k) > 0.

  Args:
    X, y: the data, (n, d) and (n,).
    strength: λ > 0.
    penalty: "l1", "elastic_net" or "group_lasso" (the names of `wdjax.penalties`).
    l1_ratio: α of the elastic net.
    groups: one group id per feature, for "group_lasso".
    w0: a warm start (default 0).
    fit_intercept: center X and y; the intercept is ȳ − x̄ᵀw.
    tol: stop when the duality gap is <= tol·‖y‖²/n (default 1e-10 in float64, 1e-5 in
      float32: one problem is solved to the end, unlike the paths' sklearn default 1e-4).
      A tol below 1e-6 with dtype None runs in float64.
    max_iter: the iteration cap (non-convergence warns with `PathConvergenceWarning`).
    polish: try the exact solve on a stable support (l1/elastic net).
    dtype: float32 or float64; default (None) float64 if x64 is enabled or tol < 1e-6,
      else float32.

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
  lam = float(_check_lambdas([strength])[0])
  tol = None if tol is None else float(tol)
  if tol is not None and not tol > 0:
    raise ValueError(f"tol must be > 0, got {tol}.")
  max_iter = _check_max_iter(max_iter, 1)
  dt = _float_dtype(dtype, tol)
  _, _, xm, ym, Q, b, yy = _prepare(X, y, fit_intercept, dt)
  gidx = _group_index(groups, Q.shape[0]) if penalty == "group_lasso" else None
  tol = _default_tol(dt) if tol is None else tol
  w0 = np.zeros(Q.shape[0]) if w0 is None else np.asarray(w0, np.float64)
  with _x64_scope(dt):
    w, gap, it = _solve_full(
        _gram_on_device(Q), jnp.asarray(b, dt), yy, lam, l1_ratio,
        None if gidx is None else jnp.asarray(gidx), jnp.asarray(w0, dt), tol * yy,
        kind=penalty, max_iter=int(max_iter), check_every=_CHECK_EVERY,
        polish=bool(polish) and penalty != "group_lasso")
  w = np.asarray(w, np.float64)
  converged = bool(float(gap) <= tol * yy)
  if not converged:
    warnings.warn(f"fista stopped at max_iter={max_iter} with gap {float(gap):.3g} > "
                  f"tol·‖y‖²/n = {tol * yy:.3g}.", PathConvergenceWarning, stacklevel=2)
  intercept = float(ym - xm @ w) if fit_intercept else 0.0
  return Solution(w, intercept, float(gap), int(it), converged)


def solve_lasso(X: Any, y: Any, strength: float, **kwargs: Any) -> Solution:
  """`fista(X, y, strength, penalty="l1", ...)`: argmin 1/(2n)‖y − Xw‖² + λ‖w‖₁."""
  return fista(X, y, strength, penalty="l1", **kwargs)

"""Paths at equal error: wdjax.path (lasso, enet, group lasso) vs sklearn, skglm, celer, glum.

    .venv/bin/python benchmarks/bench_path.py [--problems diabetes synthetic] [--out results.json]
    .venv/bin/python benchmarks/bench_path.py --penalties enet group --problems synthetic correlated

`--penalties enet group` adds the elastic net (l1_ratio 0.5: sklearn's `enet_path`, celer,
skglm's `L1_plus_L2`, glum) and the group lasso Σ_g‖w_g‖₂ with groups of 5 consecutive
features (celer's group lasso, skglm's `GroupBCD` warm-started λ by λ; sklearn has none,
and the reference is celer at tol 1e-14) on the same designs and 100-λ grids from each
penalty's own λ_max.

Problem: the lasso 1/(2n)‖y − Xw‖² + λ‖w‖₁ on a grid of 100 λ from λ_max down to
1e-3·λ_max (sklearn's default grid, the same grid for every solver), no intercept
(`lasso_path` has none; y is centered), on
  - diabetes: sklearn's `load_diabetes()` (n=442, d=10, its default scaled X);
  - synthetic: n=500, d=2000, X ~ N(0, 1), 20 non-zero true coefficients ~ N(0, 4),
    noise sd 0.5 (seed 0), the problem of tests/test_path.py;
  - correlated: p >> n as in gene-expression data, n=100, d=2000, each row an AR(1)
    sequence over the features (corr(x_i, x_j) = 0.6^|i-j|, the simulated design of
    skglm's `make_correlated_data` and benchopt's Lasso benchmark), 20 true coefficients
    ~ N(0, 1) at random positions, noise at signal-to-noise ratio 3 (seed 0). No registry
    package ships a real gene-expression matrix for offline use (sklearn's, celer's and
    libsvm's loaders download), so the structure that makes such data hard (neighbouring
    features correlated, far fewer samples than features) is generated.

Error: max over the path of ‖w_k − w_ref,k‖∞ / max_{k,j} |w_ref,k,j|, where the reference
is the exact lasso path of sklearn's `lars_path(method="lasso")`, interpolated linearly
between its breakpoints at the grid (the lasso path is piecewise linear; until run L the
reference was `lasso_path` at tol 1e-13, which is 1.2e-9 off on the correlated problem and
took ~25 s there), `enet_path` at tol 1e-13 for the elastic net, celer at tol 1e-14 for the
group lasso; independent of wdjax. sklearn's `lars_path` is also an anchor of the lasso
(column "lars"): the exact path, like wdjax's homotopy. Every solver is run over a
sweep of its own tolerance; "at equal error" compares, for a target error E, the fastest
setting of each solver whose error is <= E. Times are CPU seconds of one thread (see
below), the minimum over repeats, after one warm-up run (JAX compilation, numba compilation for skglm);
the wdjax cold time (first call, compilation included) is printed separately, and so is
the first call of a fresh Python process (import, compilation and the solve; no
persistent compilation cache), what a user calling `lasso_path` once in a notebook feels.
Repeats are interleaved round-robin across solvers so that drifting machine load hits
all alike. On a GPU machine wdjax's warm rows run on the host CPU (`device="auto"`,
the library's default) and rows "wdjax on the gpu (device='default')" time the default
and a tight call left on the GPU. With JAX on a GPU the time column is wall time (the
CPU time of a process waiting on the GPU measures its polling, not the solve).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
import warnings

# Every solver on one thread (the coordinate-descent solvers of sklearn and skglm use one
# core; XLA and BLAS are pinned to one too), timed in CPU seconds of this process
# (time.process_time): on a machine shared with other jobs, wall time measures the load.
# Set before numpy is imported: OpenBLAS sizes its thread pool when it loads, and until
# 2026-11-27 (run J) it loaded first, with a thread per core whose spinning after every
# BLAS call of a solver's set-up doubled the CPU time of the CD path.
# (until 2026-11-28 XLA_FLAGS also held "intra_op_parallelism_threads=1", not an XLA flag:
# XLA stops reading the variable at a word that does not start with "-", so it did
# nothing, and hid any flag after it)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
  os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402  (after the thread settings above)


def correlated_design(n, d, rho=0.6, k=20, snr=3.0, seed=0):
  """X with AR(1) rows (corr(x_i, x_j) = rho^|i-j|), k random true features, y at the SNR."""
  rng = np.random.default_rng(seed)
  X = np.empty((n, d))
  X[:, 0] = rng.normal(size=n)
  noise = rng.normal(size=(n, d))
  for j in range(1, d):
    X[:, j] = rho * X[:, j - 1] + np.sqrt(1 - rho ** 2) * noise[:, j]
  w = np.zeros(d)
  w[rng.choice(d, k, replace=False)] = rng.normal(size=k)
  signal = X @ w
  y = signal + rng.normal(size=n) * np.std(signal) / snr
  return X, y


def load(name):
  if name == "diabetes":
    from sklearn.datasets import load_diabetes
    X, y = load_diabetes(return_X_y=True)
  elif name == "correlated":
    X, y = correlated_design(100, 2000)
  else:
    X, y = synthetic_design(500, 2000)
  return np.asfortranarray(X), y - y.mean()


def synthetic_design(n, d, k=20, seed=0):
  """X ~ N(0, 1) (n, d), k random true coefficients ~ N(0, 4), y with noise sd 0.5."""
  rng = np.random.default_rng(seed)
  X = rng.normal(size=(n, d))
  w = np.zeros(d)
  w[rng.choice(d, k, replace=False)] = 2 * rng.normal(size=k)
  return X, X @ w + 0.5 * rng.normal(size=n)


def _clock():
  """CPU time of this process on a CPU backend (robust to other jobs' load), wall time
  when JAX runs on an accelerator."""
  import jax
  return time.process_time if jax.default_backend() == "cpu" else time.perf_counter


def time_interleaved(configs, repeats):
  """{name: (min seconds, output)}: every repeat runs each config once, round-robin, so a
  change of machine load hits all of them alike; the minimum is reported."""
  best = {}
  clock = _clock()
  for r in range(repeats):
    for name, fn in configs.items():
      t, w = clock(), time.perf_counter()
      out = fn()
      dt, dw = clock() - t, time.perf_counter() - w
      if name not in best or dt < best[name][0]:
        best[name] = (dt, dw, out)
    print(f"  ... repeat {r + 1}/{repeats} done", flush=True)
  return best


def lars_reference(X, y, lams):
  """The lasso path at `lams` from sklearn's `lars_path(method="lasso")`: exact at its
  breakpoints and linear between them."""
  from sklearn.linear_model import lars_path
  alphas, _, coefs = lars_path(X, y, method="lasso", alpha_min=lams[-1], max_iter=100_000)
  # the segment [alphas[i], alphas[i - 1]] holding each λ, and its weight (alphas decrease)
  i = np.clip(np.searchsorted(-alphas, -lams), 1, alphas.size - 1)
  t = np.clip((alphas[i - 1] - lams) / (alphas[i - 1] - alphas[i]), 0, 1)
  return (coefs[:, i - 1] * (1 - t) + coefs[:, i] * t).T


def rel_error(coefs, ref):
  return float(np.max(np.abs(coefs - ref)) / np.max(np.abs(ref)))


# the other two penalties' problems (--penalties): the elastic net at l1_ratio 0.5, and the
# group lasso with groups of GROUP_SIZE consecutive features (neighbours are the correlated
# ones in the "correlated" design, the setting group penalties are meant for)
L1_RATIO = 0.5
GROUP_SIZE = 5

# wdjax's settings per penalty: (solver, dtype, tolerances)
_LOOSE_CD = ("cd", "float32", [1e-3, 5e-4, 2e-4, 1e-4, 1e-5, 1e-6])
WDJAX_SETTINGS = {
    "lasso": [("homotopy", "float64", [1e-10]), _LOOSE_CD, ("cd", "float64", [1e-4, 1e-8]),
              ("fista", "float64", [1e-8, 1e-10, 1e-12]), ("fista", "float32", [1e-4, 1e-5])],
    "enet": [("active_set", "float64", [1e-10]), _LOOSE_CD,
             ("cd", "float64", [1e-4, 1e-6, 1e-7, 1e-8, 1e-10]),
             ("fista", "float32", [1e-5]), ("fista", "float64", [1e-8, 1e-10, 1e-12])],
    "group": [("cd", "float32", [1e-3, 5e-4, 2e-4, 1e-4, 5e-5, 2e-5, 1e-5]),
              ("cd", "float64", [1e-4, 1e-5, 5e-6, 2e-6, 1e-6, 5e-7, 2e-7, 1e-7, 1e-8, 1e-10,
                                 1e-11])],
}
# ... and CD with a target for the optimality conditions (`kkt_tol`), which decide when each
# λ is done, beside a loose gap (KKT_GAP_TOL): (dtype, kkt tolerances). The lasso's and the
# elastic net's at the default level only (below it their exact solvers are faster)
KKT_GAP_TOL = 1e-2
_KKT_LOOSE = ("float32", [2e-3, 1e-3, 5e-4])
WDJAX_KKT_SETTINGS = {
    "lasso": [_KKT_LOOSE], "enet": [_KKT_LOOSE],
    "group": [("float32", [1e-3, 5e-4, 2e-4, 1e-4, 5e-5, 2e-5, 1e-5]),
              ("float64", [5e-6, 2e-6, 1e-6, 5e-7, 2e-7, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11])],
}
# The group paths' tolerances step 1-2-5 from 1e-3 to 1e-7 for wdjax and celer alike: a
# "fastest setting reaching E" table reads each solver's error-time curve at its grid's
# points, so a coarser grid for one solver loses it the levels between them (with celer at
# 1e-5/2e-6/1e-7 and wdjax without 5e-5/2e-5/5e-7, wdjax lost 3 levels that the
# interpolated curves say it wins). skglm keeps its decades plus 1e-11: 3-14x slower than
# celer down to 1e-8, it matters at the tight end, where wdjax has the same tolerances.
GROUP_ANCHOR_TOLS = {"skglm": [1e-4, 1e-6, 1e-8, 1e-10, 1e-11],
                     "celer": [1e-2, 1e-3, 5e-4, 2e-4, 1e-4, 5e-5, 2e-5, 1e-5, 5e-6, 2e-6,
                               1e-6, 5e-7, 2e-7, 1e-7, 1e-8, 1e-10]}


def grid(X, y, penalty):
  """The 100-λ grid of `penalty`, from its own λ_max (computed here, not by wdjax)."""
  n = len(y)
  c = X.T @ y / n
  if penalty == "group":
    lam_max = np.max(np.linalg.norm(c.reshape(-1, GROUP_SIZE), axis=1))
  else:
    lam_max = np.max(np.abs(c)) / (L1_RATIO if penalty == "enet" else 1.0)
  return np.geomspace(lam_max, 1e-3 * lam_max, 100)


def run(name, penalty="lasso", repeats=3, vmap=True, skip=()):
  from sklearn.linear_model import enet_path, lasso_path
  from wdjax import path

  X, y = load(name)
  lams = grid(X, y, penalty)
  groups = np.arange(X.shape[1]) // GROUP_SIZE
  l1_ratio = L1_RATIO if penalty == "enet" else 1.0
  sk_path = lasso_path if penalty == "lasso" else functools.partial(enet_path, l1_ratio=L1_RATIO)
  t = time.perf_counter()
  if penalty == "group":  # sklearn has no group lasso: celer at its tightest is the reference
    from celer import celer_path
    ref = celer_path(X, y, "grouplasso", alphas=lams, groups=GROUP_SIZE, tol=1e-14,
                     max_iter=1000, max_epochs=10_000_000)[1].T
    what = "celer tol=1e-14"
  elif penalty == "lasso":
    ref = lars_reference(X, y, lams)
    what = "sklearn lars_path (exact)"
  else:
    ref = sk_path(X, y, alphas=lams, tol=1e-13, max_iter=10_000_000)[1].T
    what = "sklearn tol=1e-13"
  t_ref = time.perf_counter() - t
  label = name if penalty == "lasso" else f"{name}, {penalty}"
  print(f"{label}: X {X.shape}, reference {what} in {t_ref:.2f} s", flush=True)

  configs, labels = {}, {}

  def add(solver, setting, fn, note=""):
    key = f"{solver} {setting}"
    configs[key], labels[key] = fn, (solver, setting, note)

  def add_compiled(solver, setting, fn, note=""):
    # `add`, after a first call that compiles, its time in the note
    t = time.perf_counter()
    fn()
    add(solver, setting, fn, f"({note}first call {time.perf_counter() - t:.1f} s)")

  # finer steps between 1e-8 and 1e-9, where the error 1e-6 falls on the synthetic problem;
  # on the correlated problem coordinate descent needs minutes at tight tolerances: fewer
  fine = name != "correlated" and penalty == "lasso"
  if penalty != "group":
    for tol in ([1e-4, 1e-6, 1e-8, 5e-9, 3e-9, 2e-9, 1e-9, 1e-10, 1e-11, 1e-12] if fine
                else [1e-4, 1e-6, 1e-8, 1e-10]):
      add(f"sklearn {'lasso_path' if penalty == 'lasso' else 'enet_path'}", f"tol={tol:g}",
          lambda tol=tol: sk_path(X, y, alphas=lams, tol=tol, max_iter=10_000_000)[1].T,
          "(default tol)" if tol == 1e-4 else "")

  if penalty == "lasso":   # the other exact path: one setting, no tolerance
    add("lars (sklearn lars_path)", "exact", lambda: lars_reference(X, y, lams))

  def anchor(key, solver, make, tols):
    """Adds `solver` at each tol, `make()` importing it and returning fn(tol) -> coefs."""
    if key in skip:
      print(f"  {key}: skipped (--skip)")
      return
    try:
      fn = make()
    except ImportError:
      print(f"  {key} not installed (pip install {key}): skipped")
      return
    except LookupError as e:   # installed, but without this penalty
      print(f"  {key}: skipped ({e})")
      return
    fn(tols[0])  # warm-up (numba compilation for skglm)
    for tol in tols:
      add(solver, f"tol={tol:g}", lambda tol=tol: fn(tol))

  def make_skglm():
    from skglm.datafits import Quadratic, QuadraticGroup
    from skglm.penalties import L1, L1_plus_L2, WeightedGroupL2
    from skglm.solvers import AndersonCD, GroupBCD
    if penalty != "group":
      pen = L1(alpha=1.0) if penalty == "lasso" else L1_plus_L2(alpha=1.0, l1_ratio=L1_RATIO)
      return lambda tol: AndersonCD(tol=tol, fit_intercept=False, max_iter=1000,
                                    max_epochs=100_000).path(X, y, Quadratic(), pen,
                                                             alphas=lams)[1].T
    from skglm.utils.data import grp_converter
    indices, ptr = grp_converter(GROUP_SIZE, X.shape[1])
    datafit = QuadraticGroup(ptr, indices)

    def fn(tol):  # GroupBCD has no path method: warm starts by hand, as its path would
      solver = GroupBCD(tol=tol, max_iter=1000, max_epochs=100_000, fit_intercept=False)
      w, out = None, []
      for lam in lams:
        pen = WeightedGroupL2(alpha=lam, weights=np.ones(len(ptr) - 1), grp_ptr=ptr,
                              grp_indices=indices)
        w = solver.solve(X, y, datafit, pen, w_init=w,
                         Xw_init=None if w is None else X @ w)[0]
        out.append(w.copy())
      return np.array(out)
    return fn

  def make_celer():
    from celer import celer_path
    if penalty == "group":
      return lambda tol: celer_path(X, y, "grouplasso", alphas=lams, groups=GROUP_SIZE, tol=tol,
                                    max_iter=100, max_epochs=100_000)[1].T
    return lambda tol: celer_path(X, y, "lasso", alphas=lams, l1_ratio=l1_ratio, tol=tol,
                                  max_iter=100, max_epochs=100_000)[1].T

  def make_glum():
    import glum
    if penalty == "group":
      raise LookupError("glum has no group lasso")

    def fn(tol):
      # glum's Gaussian objective is sklearn's (1/(2n)‖y − Xw‖² + α‖w‖₁: checked, error
      # 8e-12 on diabetes at gradient_tol 1e-12); its path is `alpha_search` over `alphas`
      model = glum.GeneralizedLinearRegressor(
          family="normal", l1_ratio=l1_ratio, fit_intercept=False, alpha_search=True,
          alphas=lams, gradient_tol=tol, max_iter=100_000)
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(model.fit(X, y).coef_path_)
    return fn

  if penalty == "group":
    tols = dict(GROUP_ANCHOR_TOLS, glum=[])   # (glum has no group lasso: skipped)
  else:
    decades = [1e-4, 1e-6, 1e-8, 1e-10] + ([1e-12] if fine else [])
    tols = {"skglm": decades, "celer": [1e-2] + decades,
            "glum": [1e-4, 1e-6, 1e-8, 1e-10] if fine else [1e-4, 1e-8]}
  anchor("skglm", "skglm " + ("GroupBCD" if penalty == "group" else "AndersonCD"), make_skglm,
         tols["skglm"])
  anchor("celer", "celer celer_path", make_celer, tols["celer"])
  anchor("glum", "glum GLM path", make_glum, tols["glum"])

  # the solvers of wdjax.path: the homotopy (lasso), coordinate descent and FISTA, over
  # their tolerances
  wd = {"lasso": lambda **kw: path.lasso_path(X, y, lambdas=lams, **kw),
        "enet": lambda **kw: path.enet_path(X, y, l1_ratio=L1_RATIO, lambdas=lams, **kw),
        "group": lambda **kw: path.group_lasso_path(X, y, groups, lambdas=lams, **kw)}[penalty]
  for solver, dtype, tols in WDJAX_SETTINGS[penalty]:
    for tol in tols:
      add_compiled(f"wdjax {solver} {dtype}", f"tol={tol:g}",
                   lambda tol=tol, dtype=dtype, solver=solver: wd(tol=tol, dtype=dtype,
                                                                  solver=solver).coefs)
  for dtype, kkts in WDJAX_KKT_SETTINGS[penalty]:
    for kkt in kkts:
      add_compiled(f"wdjax cd+kkt {dtype}", f"kkt_tol={kkt:g}",
                   lambda kkt=kkt, dtype=dtype: wd(tol=KKT_GAP_TOL, kkt_tol=kkt, dtype=dtype,
                                                   solver="cd").coefs,
                   f"tol={KKT_GAP_TOL:g}; ")
  import jax
  backend = jax.default_backend()
  if backend != "cpu":
    # wdjax.path runs a warm path on the host CPU by default (device="auto"); the same
    # default call and a tight one left on the accelerator, for comparison
    for dtype, tol in (("float32", 1e-4), ("float64", 1e-10)):
      add_compiled(f"wdjax on the {backend} (device='default') {dtype}", f"tol={tol:g}",
                   lambda tol=tol, dtype=dtype: wd(tol=tol, dtype=dtype,
                                                   device="default").coefs)
  if penalty != "lasso":
    return _timed_rows(label, X, ref, t_ref, configs, labels, repeats, fresh={})
  if vmap:
    for dtype, tol in (("float64", 1e-10), ("float32", 1e-5)):
      fn = lambda tol=tol, dtype=dtype: path.lasso_path(X, y, lambdas=lams, tol=tol, dtype=dtype,
                                                        method="vmap").coefs
      fn()
      add(f"wdjax vmap {dtype}", f"tol={tol:g}", fn)

  fresh = fresh_process_first_call(name)
  for call, f in fresh.items():
    print(f"  wdjax lasso_path first call in a fresh process ({call}): "
          f"{f['total']:.2f} s, of which import {f['import']:.2f} s and first call "
          f"{f['first_call']:.2f} s = compilation ~{f['first_call'] - f['second_call']:.2f} s + "
          f"solve {f['second_call']:.3f} s (the second call)", flush=True)
  return _timed_rows(name, X, ref, t_ref, configs, labels, repeats, fresh)


def _timed_rows(label, X, ref, t_ref, configs, labels, repeats, fresh):
  """Times `configs` interleaved and prints and returns their rows (time, error vs ref)."""
  rows = []
  for key, (seconds, wall, coefs) in time_interleaved(configs, repeats).items():
    solver, setting, note = labels[key]
    rows.append(dict(solver=solver, setting=setting, seconds=seconds, wall_seconds=wall,
                     error=rel_error(np.asarray(coefs), ref), note=note))
    r = rows[-1]
    print(f"  {solver:24s} {setting:10s} cpu {seconds * 1e3:9.1f} ms  (wall {wall * 1e3:9.1f} ms)"
          f"  error {r['error']:.2e} {note}")
  return dict(problem=label, shape=list(X.shape), reference_seconds=t_ref, rows=rows,
              fresh_process=fresh)


_FRESH = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {bench!r})
from bench_path import load
from wdjax import path
X, y = load({name!r})
t1 = time.perf_counter()
kw = {kwargs}
path.lasso_path(X, y, **kw).coefs
t2 = time.perf_counter()
path.lasso_path(X, y, **kw).coefs
t3 = time.perf_counter()
print(json.dumps(dict(total=t2 - t0, first_call=t2 - t1, second_call=t3 - t2, **{{"import": t1 - t0}})))
"""


# what a notebook user calls: the defaults (float32 without x64, tol 1e-4: coordinate
# descent; the homotopy on correlated, n <= 128 < d; FISTA on diabetes, d <= 64), and
# float64 at the tight tolerance (FISTA, one compilation per working-set size; the
# homotopy again on correlated)
FRESH_CALLS = {"defaults: lasso_path(X, y)": {},
               "dtype float64, tol 1e-10": {"dtype": "float64", "tol": 1e-10}}


def fresh_process_first_call(name):
  """{label: seconds} of a new interpreter per call of FRESH_CALLS: import (wdjax, jax, the
  data), the first `lasso_path` (compilation included) and a second call, with no
  compilation cache."""
  env = dict(os.environ, WDJAX_CACHE="off", JAX_ENABLE_COMPILATION_CACHE="false")
  out = {}
  for label, kwargs in FRESH_CALLS.items():
    code = _FRESH.format(bench=os.path.dirname(os.path.abspath(__file__)), name=name,
                         kwargs=repr(kwargs))
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    out[label] = json.loads(run.stdout.strip().splitlines()[-1])
  return out


def homotopy_crossover():
  """The default lasso call by the homotopy against CD at the default tol (wall ms, the
  best of 3 interleaved repeats after a warm-up) as n grows on correlated designs with
  d = 2000: where `wdjax.path`'s HOMOTOPY_MAX_N comes from."""
  from wdjax import path
  for n in (100, 150, 200, 300):
    X, y = correlated_design(n, 2000)
    y = y - y.mean()
    configs = {solver: (lambda solver=solver: path.lasso_path(X, y, solver=solver))
               for solver in ("homotopy", "cd")}
    for fn in configs.values():
      fn()   # compilation
    best = {k: v[1] * 1e3 for k, v in time_interleaved(configs, 3).items()}   # (wall)
    print(f"  n = {n}, d = 2000: homotopy {best['homotopy']:.1f} ms (exact), cd at tol 1e-4 "
          f"{best['cd']:.1f} ms: cd / homotopy {best['cd'] / best['homotopy']:.2f}", flush=True)


def homotopy_crossover_tight(sizes=(200, 350, 500, 800, 1000, 1200)):
  """The lasso path at tol 1e-10 (float64) by the homotopy against FISTA on its working
  sets, beside sklearn's exact `lars_path` (wall ms, the best of 3 interleaved repeats
  after a warm-up), as n grows on random designs like the synthetic problem's (X ~ N(0, 1),
  20 true coefficients, d = 2000): where `wdjax.path`'s HOMOTOPY_MAX_N_TIGHT comes from."""
  from sklearn.linear_model import lars_path
  from wdjax import path
  for n in sizes:
    X, y = synthetic_design(n, 2000)
    y = y - y.mean()
    lam_min = 1e-3 * path.lambda_max(X, y)   # (the end of lasso_path's default grid)
    configs = {solver: (lambda solver=solver: path.lasso_path(X, y, solver=solver,
                                                              dtype="float64", tol=1e-10))
               for solver in ("homotopy", "fista")}
    configs["lars"] = lambda: lars_path(X, y, method="lasso", alpha_min=lam_min,
                                        max_iter=100_000)
    for fn in configs.values():
      fn()   # compilation
    best = {k: v[1] * 1e3 for k, v in time_interleaved(configs, 3).items()}   # (wall)
    print(f"  n = {n}, d = 2000, tol 1e-10: homotopy {best['homotopy']:.0f} ms, fista "
          f"{best['fista']:.0f} ms, sklearn lars_path {best['lars']:.0f} ms: fista / homotopy "
          f"{best['fista'] / best['homotopy']:.2f}", flush=True)


def equal_error_table(result, clock="seconds"):
  """Markdown: per target error, each solver's fastest setting by `clock` ("seconds", the
  CPU time of the process, or "wall_seconds")."""
  rows = result["rows"]
  ours = [r for r in rows if r["solver"].startswith("wdjax")]
  sk = [r for r in rows if r["solver"].startswith("sklearn")]
  # targets: each wdjax setting's error, each anchor's within the range 1e-2..1e-10,
  # sklearn's default's, and 1e-6
  targets = sorted({r["error"] for r in ours}
                   | {r["error"] for r in rows if 1e-10 <= r["error"] <= 1e-2}
                   | ({sk[0]["error"]} if sk else set()) | {1e-6}, reverse=True)
  lines = ["| target error E | " + " | ".join(
      [sk[0]["solver"] if sk else "sklearn (none)", "lars", "skglm", "celer", "glum",
       "wdjax (best)", "speed-up vs sklearn", "wdjax vs fastest other"]) + " |",
           "|---|---|---|---|---|---|---|---|---|"]
  for E in targets:
    cells = []
    best = {}
    for key in ("sklearn", "lars", "skglm", "celer", "glum", "wdjax"):
      ok = [r for r in rows if r["solver"].startswith(key) and r["error"] <= E * (1 + 1e-9)]
      r = min(ok, key=lambda r: r[clock]) if ok else None
      best[key] = r
      prec = f"{r['solver'][6:]}, " if r and key == "wdjax" else ""
      cells.append(f"{r[clock] * 1e3:.1f} ms ({prec}{r['setting']})" if r else "not reached")
    speed = (f"{best['sklearn'][clock] / best['wdjax'][clock]:.1f}x"
             if best["sklearn"] and best["wdjax"] else "-")
    others = [best[k][clock] for k in ("sklearn", "lars", "skglm", "celer", "glum") if best[k]]
    vs = (f"{min(others) / best['wdjax'][clock]:.2f}x" if others and best["wdjax"] else "-")
    lines.append(f"| {E:.1e} | " + " | ".join(cells) + f" | {speed} | {vs} |")
  return "\n".join(lines)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--problems", nargs="+", default=["diabetes", "synthetic", "correlated"],
                  choices=["diabetes", "synthetic", "correlated"])
  ap.add_argument("--penalties", nargs="+", default=["lasso"], choices=["lasso", "enet", "group"],
                  help="which paths: the lasso (default), the elastic net at l1_ratio 0.5, the "
                  "group lasso with groups of 5 consecutive features (the group problems run "
                  "on synthetic and correlated only, and need celer for their reference)")
  ap.add_argument("--out", default=None, help="write the results as JSON here")
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--vmap-wide", action="store_true",
                  help="also time the vmapped solver (cold starts, full d×d Gram for all 100 λ "
                  "at once) on the wide problem: minutes on a CPU, meant for accelerators")
  ap.add_argument("--skip", nargs="+", default=[], choices=["skglm", "celer", "glum"],
                  help="leave these anchors out (glum alone takes minutes: 27-39 s a path)")
  ap.add_argument("--one-core", action="store_true",
                  help="pin the process to one CPU core before JAX starts: every solver then "
                  "runs on one core and its CPU time is at most its wall time (XLA compiles "
                  "more slowly on one core: the first-call figures grow)")
  ap.add_argument("--loop-kernels", action="store_true",
                  help="call wdjax.path.use_loop_kernels() before JAX starts: XLA compiles "
                  "small while loops (the homotopy's) into one kernel each, process-wide "
                  "(a user's opt-in; the default run measures wdjax without it)")
  ap.add_argument("--crossover", action="store_true",
                  help="only time the homotopy against CD as n grows (HOMOTOPY_MAX_N)")
  ap.add_argument("--crossover-tight", action="store_true",
                  help="only time the homotopy against FISTA at tol 1e-10 as n grows "
                  "(HOMOTOPY_MAX_N_TIGHT)")
  args = ap.parse_args()
  if args.crossover:
    return homotopy_crossover()
  if args.crossover_tight:
    return homotopy_crossover_tight()
  if args.one_core:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
  if args.loop_kernels:   # (before JAX starts its backend; the fresh-process runs inherit it)
    from wdjax.path import use_loop_kernels
    use_loop_kernels()
  import jax
  import sklearn
  machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible"
             f"{', pinned to one (--one-core)' if args.one_core else ''}"
             f"{', whole-loop kernels (--loop-kernels)' if args.loop_kernels else ''}, "
             f"jax {jax.__version__} ({jax.default_backend()}), sklearn {sklearn.__version__}, "
             f"load average {os.getloadavg()[0]:.1f}")
  print(machine)
  from _bench import record
  record("path", "machine", machine)
  results = [run(p, pen, args.repeats, vmap=p == "diabetes" or args.vmap_wide, skip=args.skip)
             for pen in args.penalties for p in args.problems
             if not (pen == "group" and p == "diabetes")]
  # on a CPU both clocks: XLA may use a second core for some operations (CPU time counts
  # it, wall time does not; the other solvers are single-threaded); on an accelerator the
  # "seconds" column is already wall time (`_clock`)
  clocks = ([("seconds", "CPU time of the process"), ("wall_seconds", "wall time")]
            if jax.default_backend() == "cpu" else [("seconds", "wall time")])
  for r in results:
    for clock, what in clocks:
      print(f"\n### {r['problem']} {tuple(r['shape'])}: fastest setting reaching error <= E "
            f"({what})\n")
      print(equal_error_table(r, clock))
    record("path", r["problem"], r)
  if args.out:
    with open(args.out, "w") as f:
      json.dump(dict(machine=machine, results=results), f, indent=1)


if __name__ == "__main__":
  main()

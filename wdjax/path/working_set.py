"""Working sets for wide problems (celer/skglm's strategy): which features FISTA runs on,
and how the set grows until the full duality gap is below tolerance."""

from __future__ import annotations


import numpy as np

from wdjax.path.solver import _solve_working_set

def _bucket(k: int, d: int) -> int:
  """Padded working-set size (one compilation each): 32, 64, 128, then steps of 64 up to
  1024 (a 544-feature set factors 576 x 576, not 640 x 640: benchmarks/README.md, run T),
  of 128 above."""
  if k <= 128:
    size = 32
    while size < k:
      size *= 2
  else:
    step = 64 if k <= 1024 else 128
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
  alpha = l1_ratio if kw["kind"] == "elastic_net" else 1.0
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
      # NumPy arguments go to the device with the call; jnp.asarray would dispatch an eager
      # op each (a third of the host time of a loose-tolerance path)
      w_ws, it, gap, c_dev = _solve_working_set(
          Q, b, yy, lam, l1_ratio, idx, valid, np.asarray(w[idx] * valid, Q.dtype), tol_ws,
          **kw)
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

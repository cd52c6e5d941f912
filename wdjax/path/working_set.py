"""Working sets for wide problems (celer/skglm's strategy): which features FISTA runs on,
and how the set grows until the full duality gap is below tolerance."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from wdjax.path.solver import _solve_working_set


@functools.partial(jax.jit, donate_argnums=0)
def _set_rows(Q, xt, rows):
  """Q with rows `rows` set to xtᵀ's Gram rows x_rᵀX/n (xt is Xᵀ, d x n); Q is donated
  (updated in place). A repeated index writes the same row twice. At full precision: a
  GPU's default float32 product (TF32) would round Q to ~1e-3, and the gaps with it."""
  rows_x = jnp.matmul(xt[rows], xt.T, precision=jax.lax.Precision.HIGHEST)
  return Q.at[rows].set(rows_x / xt.shape[1])


class _GramRows:
  """The Gram matrix XᵀX/n of a working-set path, formed row by row as working sets first
  reach a feature: `gram(ws, score)` returns a d x d matrix whose rows `ws` (and every row
  asked before) are XᵀX/n's; the other rows are zeros, which `_solve_working_set` never
  reads: it reads rows of its working set only (`Q[idx, idx]`, `Q[idx]`), never columns,
  which hold XᵀX/n's values only in formed rows. (Rows formed in different products may
  round differently: Q is symmetric only to rounding, as the Cholesky factorization,
  which reads one triangle, allows.) The union of a path's working sets is a fraction of
  the features (628 of 2000 on the 500 x 2000 elastic-net benchmark), so this is a
  fraction of the full product, and an XLA product at that: 15 ms in 13 products there,
  against 37-40 ms for NumPy's syrk of the whole matrix (benchmarks/README.md, run Y)."""

  def __init__(self, Xc: np.ndarray, dtype):
    d = Xc.shape[1]
    self._xt = jax.device_put(np.ascontiguousarray(Xc.T, dtype=dtype))
    self._q = jnp.zeros((d, d), dtype)
    self._have = np.zeros(d, bool)

  def __call__(self, ws: np.ndarray, score: np.ndarray) -> jax.Array:
    """The matrix with rows ws; when some are missing, they are formed with the
    highest-`score` missing features beside them (those the next working sets are
    likeliest to reach), 64 rows at least, so that a path forms its rows in a few
    products, not one per λ (on the benchmark path 90 products of 32 rows or more took 74
    ms; 8 of 128 rows and 13 of 64, 832 rows for the 628 needed, 15 ms each way: run
    Y)."""
    have = self._have
    new = ws[~have[ws]]
    if new.size:
      # a power of two from 64 (one compilation each), at most d
      size = min(max(64, 1 << (new.size - 1).bit_length()), have.size)
      have[new] = True
      rows = np.concatenate([new, _top(np.flatnonzero(~have), score, size - new.size)])
      # padded to the size with the first new row repeated
      rows = np.concatenate([rows, np.full(size - rows.size, new[0], rows.dtype)])
      self._q = _set_rows(self._q, self._xt, rows.astype(np.int32))
      have[rows] = True
    return self._q


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


def _path_working_sets(gram, b, yy, lams, l1_ratio, lam_max, tol_abs, kw, strong_rule=False):
  """The warm-started path on working sets; `gram(ws, score)` gives a d x d matrix holding
  XᵀX/n's rows ws (a `_GramRows`)."""
  d = b.shape[0]
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
          gram(ws, np.abs(c)), b, yy, lam, l1_ratio, idx, valid,
          np.asarray(w[idx] * valid, b.dtype), tol_ws, **kw)
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

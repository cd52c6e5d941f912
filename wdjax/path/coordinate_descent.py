"""The whole lasso / elastic-net / group-lasso path as one compiled program: (block)
coordinate descent on working sets, in residual form (no Gram matrix).

The lasso and elastic net are the case of blocks of one feature; the group lasso's blocks
are its groups (`cd_path`: X as (blocks, width, n), groups narrower than the widest padded
with zero rows, and every |·| below the Euclidean norm of a block). Said for features:

For each λ of the grid (a `lax.scan`, warm-started from the previous λ):

  c = Xᵀr/n over every feature and the duality gap of the full problem (one pass over X);
  while gap > tol_abs (at most `max_outer` working-set rounds):
    working set = the support plus the features closest to violating |c_j| <= λα, ranked
      by (λα − |c_j − λ(1−α)w_j|)/‖x_j‖ (celer's rule), of size max(p0, 2·|support|)
      (`_smallest`: a threshold by bisection, not a sort);
    coordinate descent on the working set until the gap of the problem restricted to it
      is <= 0.7·gap, checked after each inner iteration: one sweep over
      the set, then 5 over its non-zero members (3 when refining; glmnet's active-set
      cycling; 15-30% less time on the benchmark problems than sweeping the whole set each
      time, and 5 rather than 3 another 4-19% at the default tol), then, after
      6 iterations and every 5 after, an Anderson extrapolation of the last 6 iterates
      (skglm's AndersonCD; kept when it lowers the objective). Sweeps are loops of dynamic
      length, so a set of 10 features costs 10 updates whatever d is;
    c = Xᵀr/n and the full gap again (the stopping test is always the gap of the full
      problem at the returned w); the last c of a λ is the first of the next;
  at tight tolerances (`refine=True`, what `wdjax.path` asks below tol 5e-5): sweeps over
    the support until its optimality conditions hold to kkt_tol·α·λ_max (a point δ from
    the solution has a gap of only ~δ², so the gap alone left the group lasso's optimality
    conditions 1.4e-5·λ_max off near λ_max at tol 1e-10), at most 100 sweeps, Anderson-
    extrapolated like the rounds' (every 5 sweeps) and checked every 3rd (group lasso
    500 x 2000, float32 X, tol 1e-6: 1.12 -> 0.92-1.05 s; tol 1e-5: 0.53 -> 0.39-0.44 s);
    then working-set rounds again if that raised the gap above tol or left a block off the
    support violating its condition by more than kkt_tol·α·λ_max (‖c_g‖ > λα + that:
    without this check the groups a loose gap left out stayed out, 6.9e-5 of the largest
    coefficient off on the 500 x 2000 group path whatever kkt_tol); at most 4 refinements
    (`refines`), each at most 100 sweeps (`refine_epochs`; `wdjax.path` lifts both to
    max_iter and 100 rounds when the caller names kkt_tol, and then reports a λ whose
    conditions still do not hold: the returned `met`).

celer's inner ratio is 0.3; 0.7 (more working-set rounds, each solved less far) gave the
same coefficients at the default tol in 0.8x the time on the 500 x 2000 benchmark problem
(67 -> 55 ms) and the same time on the correlated 100 x 2000 one (0.5: 60 ms).

A coordinate update keeps r = y − Xw current:
  g = x_kᵀr/n,  w_k' = soft(L_k·w_k + g, λα) / (L_k + λ(1−α)),  r −= (w_k' − w_k)·x_k,
with L_k = ‖x_k‖²/n (a zero column keeps w_k = 0); a group's update is the same step with
the block soft threshold, w_g' = max(0, 1 − λα/‖z‖)·z/(L_g + λ(1−α)), z = L_g·w_g + X_gᵀr/n,
L_g = ‖X_g‖₂²/n (the proximal step of the block's quadratic majorant, as skglm's GroupBCD;
5-wide groups cost ~0.35 µs a feature per update at n = 500). Every shape in the
program is fixed by (blocks, width, n, number of λ), so one compilation (about 1.4 s)
serves the whole path whatever the working sets do; the FISTA working-set solver compiles
once per padded set size (10 sizes and 11-28 s on the 500 x 2000 benchmark problem).

Measured and left out: celer's dual extrapolation (a better dual point from the residuals
of the last epochs) did not lower the epochs needed on the benchmark problems; a working
set of the support plus the violators only (instead of 2·|support|) neither. Each update
costs ~0.5 µs at n = 500 (0.3 at n = 100), mostly the per-kernel overhead of the compiled
loop on a CPU (4 kernels per update: the product, its partial and final sums, the axpy;
celer's Cython ~0.2 µs), which is why this solver pays off at loose and moderate
tolerances and, for lasso and elastic net, the FISTA solver with its exact support solve
wins at tight ones (`lasso_path(solver="auto")`; for groups block CD is the faster at every
tol, benchmarks/README.md run K). Measured and dropped too: the 4 coordinates of a step
updated from their products with r and with each other (x_uᵀx_v/n, so that one fused
product and one axpy serve all 4, exactly sequential CD): 2.5-3.5x slower. What a
compiled loop on a CPU punishes, and this program avoids: writing one entry of w at a time
(XLA copied all of w before each write: 0.83 -> 0.52 µs per update once a step's 4
entries are gathered and scattered together), and a `top_k`/`argsort` per working set (a
sort of all d scores, ~0.3 ms, whatever the size).

The gap is sklearn's (`solver._gap`) written with the residual:
  ρ = c − λ(1−α)w, κ = min(1, λα/‖ρ‖∞),
  gap = ½‖r‖²/n·(1+κ²) + λα‖w‖₁ − κ·rᵀy/n + ½λ(1−α)(1+κ²)‖w‖²;
for groups ‖ρ‖∞ is max_g ‖ρ_g‖₂ and ‖w‖₁ is Σ_g‖w_g‖₂ (κr/n is then dual feasible: the
conjugate of λα·Σ_g‖w_g‖₂ is the indicator of max_g ‖v_g‖₂ <= λα).

References: Friedman, Hastie & Tibshirani (2010), glmnet's coordinate descent; Massias,
Gramfort & Salmon, Celer: a Fast Solver for the Lasso with Dual Extrapolation, ICML 2018,
https://arxiv.org/abs/1802.07481 (working sets and their ranking).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from wdjax.path.compiled import cpu_jit

# Coordinates updated per iteration of the compiled loop, their w read by one gather and
# written by one scatter: 0.52 µs per update at 4, 0.45 at 8, 0.43 at 16 (n = 500, 2-core
# Xeon), but each doubling adds ~0.15 s of compilation to the path's ~1.2 s.
_UNROLL = 4

# Halvings of the threshold search of `_smallest` (2^-40 of the score range: below float64's
# resolution of the scores' spread, so exact up to ties).
_BISECT = 40

# Sweeps over the support after a λ has converged, at most, with `cd_path(refine=True)`.
REFINE_EPOCHS = 100
REFINES = 4

# Iterates between Anderson extrapolations, which combine the last _K + 1 of them
# (skglm's default). An iterate is an inner iteration of a working-set round (1 +
# active_epochs sweeps), or one sweep of the support refinement.
_K = 5

# Sweeps over the support between two checks of its optimality conditions when refining
# (a check reads X_gᵀr for every member, ~half a sweep's work). Group lasso 500 x 2000,
# checking after every sweep / every 3rd, two processes each: float32 at tol 1e-5 427-447
# / 395-401 ms, float64 at 1e-6 1009 / 922-947 ms (float32 at 1e-6: within the noise).
_KKT_EVERY = 3


def _block_norms(v):
  """‖v_g‖₂ of each row (block) of a (G, W) array: |v| for width-1 blocks (the lasso)."""
  return jnp.abs(v[:, 0]) if v.shape[1] == 1 else jnp.sqrt(jnp.sum(v * v, axis=1))


def _correlations(Xb, r, dt):
  """X_gᵀr/n, (G, W), in dtype dt: one pass over X, a product in X's dtype."""
  return (Xb @ r.astype(Xb.dtype)).astype(dt) / jnp.asarray(Xb.shape[2], dt)


def _correlation_rounding(norms, r, W, L_max, eps):
  """A margin for the rounding of each block's ‖X_gᵀr/n‖ (`norms`) as `_correlations`
  computes it in a dtype with machine epsilon `eps`:

    2·eps·(√(W·L_max)·‖r‖/√n + √n/16·‖X_gᵀr/n‖).

  The first term is the rounding of r and of a product whose terms cancel (|X_gᵀr| well
  below ‖X_g‖‖r‖); the second that of a sum whose terms share a sign (uncentred positive
  data), which grows with √n: without it a float32 product over 10⁵ positive samples
  rounds 5x past the first term alone. Measured against float64 on Gaussian, Cauchy,
  sparse-binary and positive designs, n = 200–10⁵, the rounding stays below a third of
  the margin (tests/test_path.py).
  """
  root_n = r.shape[0] ** 0.5
  return 2 * eps * (jnp.sqrt(W * L_max) * jnp.linalg.norm(r) / root_n + root_n / 16 * norms)


def _gap(dual_norm, w, r, y, n, lam1, lam2):
  """The duality gap of ½‖y − Xw‖²/n + λ1·Σ_g‖w_g‖₂ + ½λ2‖w‖² (w: (G + 1, W) blocks, the
  last one the padding; width 1: the elastic net) from r = y − Xw and the dual norm
  max_g ‖X_gᵀr/n − λ2·w_g‖₂ (over a subset of blocks: the gap of the problem restricted
  to it)."""
  kappa = jnp.where(dual_norm > lam1, lam1 / jnp.where(dual_norm > 0, dual_norm, 1), 1.0)
  k2 = 1 + kappa * kappa
  return (0.5 * jnp.vdot(r, r) / n * k2 + lam1 * jnp.sum(_block_norms(w))
          - kappa * jnp.vdot(r, y) / n + 0.5 * lam2 * k2 * jnp.vdot(w, w))


def _pack(values, keep, out, offset=0, limit=None):
  """`out` with values[keep], in their order, written at out[offset], out[offset + 1], …
  (slots at or past `limit` dropped): the compaction of the working sets."""
  slot = offset + jnp.cumsum(keep) - 1
  ok = keep if limit is None else keep & (slot < limit)
  return out.at[jnp.where(ok, slot, out.shape[0])].set(values, mode="drop")


def _smallest(score, size):
  """Indices of the (at most) `size` smallest scores, then the padding index d: the -inf
  scores (the support) first, then the finite ones at or under a threshold found by
  bisection (_BISECT halvings of the range of the finite scores, each one fused
  compare-and-count over the d scores), both in index order. +inf scores (zero columns,
  whose coefficient cannot leave 0) and NaN are never taken, so fewer than `size` real
  indices may come back. Finite scores closer than the bisection's resolution (2^-_BISECT
  of their range, or float32's 2^-24) are ties, broken by index. A sort, which `top_k` and
  `argsort` become inside a compiled loop on a CPU, cost ~0.3 ms per working set whatever
  its size (a third of the correlated benchmark path's time); this costs ~0.07 ms."""
  d = score.shape[0]
  support = score == -jnp.inf
  n_support = jnp.sum(support, dtype=jnp.int32)
  want = jnp.maximum(size - n_support, 0)          # how many others to take
  finite = jnp.isfinite(score)
  lo = jnp.min(jnp.where(finite, score, jnp.inf))
  hi = jnp.max(jnp.where(finite, score, -jnp.inf))
  lo = lo - (jnp.abs(lo) + 1)                      # count(score <= lo) = 0 < want

  def halve(_, bounds):                            # count(score <= hi) >= want throughout
    lo, hi = bounds
    mid = 0.5 * (lo + hi)
    enough = jnp.sum(finite & (score <= mid), dtype=jnp.int32) >= want
    return jnp.where(enough, lo, mid), jnp.where(enough, mid, hi)
  lo, hi = jax.lax.fori_loop(0, _BISECT, halve, (lo, hi))
  n_finite = jnp.sum(finite, dtype=jnp.int32)
  threshold = jnp.where(want == 0, -jnp.inf, jnp.where(n_finite < want, jnp.inf, hi))
  taken = finite & (score <= threshold)
  index = jnp.arange(d, dtype=jnp.int32)
  out = _pack(index, support, jnp.full(d + _UNROLL, d, jnp.int32), limit=size)
  return _pack(index, taken, out, offset=n_support, limit=size)


def _oldest_first(ring, newest):
  """The rows of a ring buffer (row i written at step ≡ i mod its length) from the oldest
  to the newest, `newest` being the row written last."""
  return jnp.roll(ring, -((newest + 1) % ring.shape[0]), axis=0)


def _anderson(H):
  """Weights c (Σc = 1) of the affine combination Σ c_i H[i+1] that minimizes
  ‖Σ c_i (H[i+1] − H[i])‖ (Anderson extrapolation of the sequence of rows of H)."""
  U = jnp.diff(H, axis=0)
  G = U @ U.T
  G = G + 1e-10 * jnp.trace(G) * jnp.eye(G.shape[0], dtype=G.dtype)
  z = jnp.linalg.solve(G, jnp.ones(G.shape[0], G.dtype))
  return z / jnp.sum(z)


def _norm(v):
  """‖v‖₂ of one block (W,): |v| for width 1, as `_block_norms` row by row."""
  return jnp.abs(v[0]) if v.shape[0] == 1 else jnp.sqrt(jnp.vdot(v, v))


def _rows_dot_r(x, r):
  """x @ r for one block's rows x (W, n). For W > 1 as a fused multiply-and-sum: as a
  matrix product it was a separate library call per update, which XLA's executor ran
  beside the next update's block read on a second thread, leaving the idle thread spinning
  (the group path's CPU time 2.6x its wall time, and slower than on one core: 1.16 s wall
  on 2 cores, 0.88 s on 1, 0.78 s now, CPU = wall)."""
  return x @ r if x.shape[0] == 1 else jnp.sum(x * r[None, :], axis=1)


def _minus_rows(r, x, v):
  """r − xᵀv for one block's rows x (W, n) and v (W,): the residual after the block's
  coefficients change by v, as a fused multiply-and-sum (see `_rows_dot_r`)."""
  return r - jnp.sum(v[:, None] * x, axis=0)


def _lipschitz(Xb, dt):
  """‖X_g‖₂²/n of each block of Xb (G, W, n): the squared norm of a column for width 1, the
  largest eigenvalue of X_g X_gᵀ (W x W) for a group."""
  n = Xb.shape[2]
  if Xb.shape[1] == 1:
    return jnp.sum(jnp.square(Xb[:, 0].astype(dt)), axis=1) / n
  gram = jnp.einsum("gwn,gvn->gwv", Xb.astype(dt), Xb.astype(dt))
  return jnp.linalg.eigvalsh(gram)[:, -1] / n


@cpu_jit(static_argnames=("max_outer", "p0", "active_epochs", "refine"))
def cd_path(Xb, y, lams, l1_ratio, tol_abs, *, max_epochs, max_outer=100, p0=10,
            active_epochs=3, refine=False, kkt_tol=1e-12, refine_epochs=REFINE_EPOCHS,
            refines=REFINES):
  """(Block) coordinate-descent path. Xb is (G, W, n): block g's W columns of X as
  contiguous rows (the lasso and elastic net: Xᵀ reshaped to (d, 1, n); the group lasso:
  each group's columns, zero rows padding groups narrower than W); lams decreasing.

  The penalty is λα·Σ_g‖w_g‖₂ + ½λ(1−α)‖w‖² (width 1: the elastic net; α = 1 and width
  W: the group lasso). A block update is the proximal step of the block's quadratic
  majorant with L_g = ‖X_g‖₂²/n (exact minimization for width 1; skglm's GroupBCD):
    z = L_g·w_g + X_gᵀr/n,  w_g' = max(0, 1 − λα/‖z‖)·z / (L_g + λ(1−α)),
    r −= X_g(w_g' − w_g).

  X stays in its dtype (float32 halves the bytes of every pass); the residual, the
  coefficients and the gaps are in y's dtype (float64 under x64): r is updated in place
  by every coordinate step, and in float32 its rounding would build up to ~1e-5 of ‖y‖
  over a path, a third of sklearn's default tolerance.

  Returns (coefs (m, G, W), gaps (m,), epochs (m,), outer iterations (m,), met (m,)); met:
  the last refinement found every condition within kkt_tol·α·λ_max (False without
  `refine`); an epoch is one sweep over the working set of the moment or over its non-zero
  members (or, refining, over the support), `max_epochs` caps them per λ and `max_outer`
  the working-set rounds per λ. Each inner iteration is one sweep over the working set and
  `active_epochs` sweeps over its non-zero members. With `refine` (static), once a λ's gap
  is below tol_abs its support is swept (Anderson-extrapolated every _K sweeps) until the
  optimality conditions on it, checked every _KKT_EVERY sweeps, hold to
  kkt_tol·max_g‖X_gᵀy/n‖ (= kkt_tol·α·λ_max), at most `refine_epochs` sweeps and `refines`
  times per λ, within `max_epochs`; a block off the support that violates its condition by
  more than that (and c's rounding) sends the λ back to working-set rounds.
  """
  G, W, n = Xb.shape
  xdt, dt = Xb.dtype, y.dtype
  nf = jnp.asarray(n, dt)
  # Index G pads the working sets. Its L is 0 and its w stays 0, so an update of it changes
  # nothing whatever rows it reads: reading Xb[G] is clamped to Xb[G−1] (XLA clamps dynamic
  # slices), which spares a padded copy of X per call.
  L = jnp.concatenate([_lipschitz(Xb, dt), jnp.zeros(1, dt)])   # and 0 at G
  safe_L = jnp.where(L > 0, L, 1)
  inv_norm = jnp.where(L > 0, jax.lax.rsqrt(safe_L), 0)[:G]
  L_max, eps_x = jnp.max(L), jnp.finfo(xdt).eps
  alpha = jnp.asarray(l1_ratio, dt)
  tol_abs = jnp.asarray(tol_abs, dt)
  kkt_tol = jnp.asarray(kkt_tol, dt)
  max_epochs = jnp.asarray(max_epochs, jnp.int32)   # traced: a new cap does not recompile
  refine_epochs = jnp.asarray(refine_epochs, jnp.int32)
  max_refines = jnp.asarray(refines, jnp.int32)
  y = jnp.asarray(y, dt)
  # a λ's refinement state before (or undone after) a check of its conditions: no zero block
  # found violating its own, the conditions not met
  unchecked = dict(outside=jnp.zeros([], dt), met=jnp.asarray(False))

  def members(idx, on):
    # idx[on] compacted to the front of a sweep's index array (padded with the index G),
    # and how many
    return _pack(idx, on, jnp.full(G + _UNROLL, G, jnp.int32)), jnp.sum(on, dtype=jnp.int32)

  def correlations(r):
    return _correlations(Xb, r, dt)

  def solve_one(carry, lam):
    w, r, c = carry
    lam = lam.astype(dt)
    lam1, lam2 = lam * alpha, lam * (1 - alpha)

    def rows(k):
      # block k's rows of X (W, n) in the working dtype (k = G, the padding, reads the
      # clamped rows Xb[G−1])
      return jax.lax.dynamic_index_in_dim(Xb, k, keepdims=False).astype(dt)

    def dual_block(k, w, r):
      # X_kᵀr/n − λ(1−α)w_k at the current r: the gap's dual norm and the refinement's
      # optimality conditions read it
      return _rows_dot_r(rows(k), r) / nf - lam2 * w[k]

    def update(k, old, r):
      # one block: its new value and the residual after it
      x = rows(k)
      z = L[k] * old + _rows_dot_r(x, r) / nf
      if W == 1:   # the scalar soft threshold, bit for bit what the lasso solver always did
        new = jnp.sign(z) * jnp.maximum(jnp.abs(z) - lam1, 0)
      else:        # the block soft threshold
        nz = _norm(z)
        new = z * (jnp.maximum(nz - lam1, 0) / jnp.where(nz > 0, nz, 1))
      new = jnp.where(L[k] > 0, new / (safe_L[k] + lam2), 0)
      return new, _minus_rows(r, x, new - old)

    def penalty(w):
      return lam1 * jnp.sum(_block_norms(w)) + 0.5 * lam2 * jnp.vdot(w, w)

    def primal(w, r):
      return 0.5 * jnp.vdot(r, r) / nf + penalty(w)

    def gap_of(c, w, r):
      return _gap(jnp.max(_block_norms(c - lam2 * w[:G])), w, r, y, nf, lam1, lam2)

    def full_check(w, r):
      c = correlations(r)
      return c, gap_of(c, w, r)

    def sweep(idx, count, carry):
      # one epoch over idx[:count] (padded with the index G), _UNROLL updates a step.
      # The members of a step are distinct (or the padding row, whose value stays 0), so
      # their w are read in one gather and written in one scatter: updating w one entry
      # at a time made XLA copy all of w before each write (0.83 -> 0.52 µs per update)
      def block(b, carry):
        w, r = carry
        ks = jax.lax.dynamic_slice_in_dim(idx, b * _UNROLL, _UNROLL)
        olds, news = w[ks], []
        for u in range(_UNROLL):
          new, r = update(ks[u], olds[u], r)
          news.append(new)
        return w.at[ks].set(jnp.stack(news)), r
      return jax.lax.fori_loop(0, (count + _UNROLL - 1) // _UNROLL, block, carry)

    def full_residual(w_acc, w, r):
      # y − X·w_acc formed afresh (one pass over X, in X's dtype): the same combination
      # of the stored residuals would carry their rounding times |c_i|, which can be large
      del w, r
      return y - (w_acc[:G].reshape(-1).astype(xdt) @ Xb.reshape(G * W, n)).astype(dt)

    def accelerate(w, r, ring, count, residual):
      # Anderson extrapolation of the last K+1 iterates (skglm's AndersonCD): the
      # affine combination Σc_i w_i minimizing ‖Σc_i Δw_i‖, its residual from
      # `residual(w_acc, w, r)`, kept only if it lowers the objective
      hw = _oldest_first(ring, count % (_K + 1))
      coef = _anderson(hw)
      w_acc = (coef @ hw[1:]).reshape(G + 1, W)
      r_acc = residual(w_acc, w, r)
      ok = jnp.all(jnp.isfinite(w_acc)) & (primal(w_acc, r_acc) < primal(w, r))
      return jnp.where(ok, w_acc, w), jnp.where(ok, r_acc, r)

    # the ring of the last K+1 iterates, flattened, before the first
    empty_ring = jnp.zeros((_K + 1, (G + 1) * W), dt)

    def extrapolated(w, r, ring, count, residual=full_residual):
      # the iterate `count` into the ring of the last K+1 (row count mod K+1, written in
      # place; rolled into order only when extrapolating), and Anderson's combination of
      # them first after K+1 iterates, then every K. The history is kept across an
      # accepted jump (restarting it after each, as skglm does, was 0.8-1.4x as fast here,
      # within the noise): a combination is only ever taken when it lowers the objective.
      ring = ring.at[count % (_K + 1)].set(w.reshape(-1))
      due = (count > _K) & ((count - _K - 1) % _K == 0)
      w, r = jax.lax.cond(due, functools.partial(accelerate, residual=residual),
                          lambda w, r, *_: (w, r), w, r, ring, count)
      return w, r, ring

    def working_set_round(st):
      w, r, c, gap = st["w"], st["r"], st["c"], st["gap"]
      support = jnp.any(w[:G] != 0, axis=1)
      score = jnp.where(support, -jnp.inf,
                        jnp.where(inv_norm > 0,
                                  (lam1 - _block_norms(c - lam2 * w[:G])) * inv_norm,
                                  jnp.inf))   # (a zero block can never enter)
      size = jnp.minimum(jnp.maximum(p0, 2 * jnp.sum(support)), G).astype(jnp.int32)
      ws = _smallest(score, size)
      tol_in = 0.7 * gap   # (celer: 0.3; see the module docstring)

      def active(w):
        # the members of the working set that are non-zero
        return members(ws, jnp.any(w[ws] != 0, axis=1) & (jnp.arange(G + _UNROLL) < size))

      def inner_cond(s):
        return (s["gap"] > tol_in) & (s["epochs"] < max_epochs)

      def inner_body(s):
        # one sweep over the working set, then `active_epochs` over its non-zero members
        # (glmnet's active-set cycling: a zero that stays zero costs an update like any
        # other; the next full sweep and the gap catch the ones that should enter). One
        # loop for both, so that the sweep is compiled once (0.4 s less compilation).
        def epoch(i, c):
          w, r, idx, cnt = c
          w, r = sweep(idx, cnt, (w, r))
          idx, cnt = jax.lax.cond(i == 0, lambda: active(w), lambda: (idx, cnt))
          return w, r, idx, cnt
        w, r, _, _ = jax.lax.fori_loop(0, 1 + active_epochs, epoch, (s["w"], s["r"], ws, size))
        count = s["count"] + 1
        w, r, hw = extrapolated(w, r, s["hw"], count)

        # the gap restricted to the working set, at the current r (one product per member;
        # the gradients read during the epoch are stale and cost 1.5x the epochs)
        def dots(j, dn):
          k = ws[j]
          # (the padding index G, where a set has fewer real members than `size`, reads
          # the clamped rows Xb[G−1]: it must not count)
          return jnp.where(k < G, jnp.maximum(dn, _norm(dual_block(k, w, r))), dn)
        dn = jax.lax.fori_loop(0, size, dots, jnp.zeros([], dt))
        return dict(w=w, r=r, hw=hw, count=count, epochs=s["epochs"] + 1 + active_epochs,
                    gap=_gap(dn, w, r, y, nf, lam1, lam2))

      s = jax.lax.while_loop(inner_cond, inner_body, dict(
          w=w, r=r, hw=empty_ring,
          count=jnp.zeros([], jnp.int32), epochs=st["epochs"], gap=jnp.asarray(jnp.inf, dt)))
      w, r = s["w"], s["r"]
      c, gap = full_check(w, r)
      return dict(st, w=w, r=r, c=c, gap=gap, outer=st["outer"] + 1, epochs=s["epochs"],
                  fresh=True, **unchecked)

    def refine_support(st):
      # Tight tolerances: sweeps over the support until its optimality conditions hold to
      # kkt_tol·λ_max·α (distance of X_gᵀr/n − λ(1−α)w_g to λα·∂‖w_g‖; at most
      # REFINE_EPOCHS sweeps). The gap is read from objective values, which a point at
      # distance δ from the solution misses by only ~δ²: a gap of 1e-10·‖y‖²/n left the
      # group lasso's coefficients 1e-5 off near λ_max, where the support is a group or
      # two and more sweeps cost next to nothing. The conditions are in the gradient: ~δ.
      w, r = st["w"], st["r"]
      idx, count = members(jnp.arange(G, dtype=jnp.int32), jnp.any(w[:G] != 0, axis=1))

      def kkt(w, r):
        def member(j, worst):
          k = idx[j]
          v = dual_block(k, w, r)
          nw = _norm(w[k])
          off = jnp.where(nw > 0, _norm(v - lam1 * w[k] / jnp.where(nw > 0, nw, 1)),
                          jnp.maximum(_norm(v) - lam1, 0))
          return jnp.maximum(worst, off)
        return jax.lax.fori_loop(0, count, member, jnp.zeros([], dt))

      budget = jnp.minimum(refine_epochs, max_epochs - st["epochs"])   # (max_iter holds)

      def cond(s):
        return (s["kkt"] > kkt_abs) & (s["sweeps"] < budget)

      def support_residual(w_acc, w, r):
        # r − X(w_acc − w) over the support's blocks only (every iterate is 0 off it), in
        # the working dtype: no pass over all of X, and no float32 product's rounding in a
        # residual that the conditions are then checked against
        def block(j, r):
          k = idx[j]
          return _minus_rows(r, rows(k), w_acc[k] - w[k])
        return jax.lax.fori_loop(0, count, block, r)

      def body(s):
        w, r = sweep(idx, count, (s["w"], s["r"]))
        sweeps = s["sweeps"] + 1
        # Anderson extrapolation, each sweep an iterate (in the rounds an iterate is
        # 1 + active_epochs sweeps)
        w, r, ring = extrapolated(w, r, s["ring"], sweeps, support_residual)
        due = sweeps % _KKT_EVERY == 0
        return dict(w=w, r=r, ring=ring, sweeps=sweeps,
                    kkt=jax.lax.cond(due, kkt, lambda *_: s["kkt"], w, r))
      s = jax.lax.while_loop(cond, body, dict(w=w, r=r, ring=empty_ring, kkt=kkt(w, r),
                                              sweeps=jnp.zeros([], jnp.int32)))
      w, r, sweeps = s["w"], s["r"], s["sweeps"]
      c, gap = full_check(w, r)
      # the conditions off the support, from the same c: a zero block with
      # ‖X_gᵀr/n‖ > λα + kkt_abs belongs in it (the gap can be below tol with one there).
      # c is a product in X's dtype: less its rounding (`_correlation_rounding`; next to
      # nothing in float64)
      zero = ~jnp.any(w[:G] != 0, axis=1)
      norms = _block_norms(c)
      excess = norms - lam1 - _correlation_rounding(norms, r, W, L_max, eps_x)
      outside = jnp.maximum(jnp.max(jnp.where(zero, excess, 0.0)), 0)
      out = dict(st, w=w, r=r, c=c, gap=gap, epochs=st["epochs"] + sweeps,
                 refines=st["refines"] + 1, fresh=False, outside=outside,
                 met=(s["kkt"] <= kkt_abs) & (outside <= kkt_abs))
      # a refinement that raised the gap above tol with no epochs left to bring it down
      # again is undone: the λ had converged before it
      undo = (gap > tol_abs) & (out["epochs"] >= max_epochs)
      return jax.tree.map(lambda a, b: jnp.where(undo, a, b),
                          dict(out, w=st["w"], r=st["r"], c=st["c"], gap=st["gap"],
                               **unchecked), out)

    # A refined support can leave a zero block violating its condition (the gap then rises
    # above tol again): working-set rounds resume, and the support is refined again after
    # them, at most REFINES times per λ.
    def outer_cond(st):
      unfinished = st["gap"] > tol_abs
      if refine:
        unfinished = unfinished | ((st["fresh"] | (st["outside"] > kkt_abs))
                                   & (st["refines"] < max_refines))
      return unfinished & (st["outer"] < max_outer) & (st["epochs"] < max_epochs)

    def outer_body(st):
      if not refine:
        return working_set_round(st)
      return jax.lax.cond((st["gap"] > tol_abs) | (st["outside"] > kkt_abs),
                          working_set_round, refine_support, st)

    # c = X_gᵀr/n at the warm start is the previous λ's last full check (same w and r):
    # only the gap changes with λ, which saves one pass over X per λ (~10% of a path)
    st = dict(w=w, r=r, c=c, gap=gap_of(c, w, r), outer=jnp.zeros([], jnp.int32),
              epochs=jnp.zeros([], jnp.int32), refines=jnp.zeros([], jnp.int32),
              fresh=jnp.asarray(True), **unchecked)
    st = jax.lax.while_loop(outer_cond, outer_body, st)
    return ((st["w"], st["r"], st["c"]),
            (st["w"][:G], st["gap"], st["epochs"], st["outer"], st["met"]))

  c0 = correlations(y)
  if refine:
    # the conditions' scale: λ_max·α = max_g ‖X_gᵀy/n‖, the same for every λ of the path
    # (a bound relative to each λ made the small λ's, with the largest supports, sweep
    # longest)
    kkt_abs = kkt_tol * jnp.max(_block_norms(c0))
  _, out = jax.lax.scan(solve_one, (jnp.zeros((G + 1, W), dt), y, c0), lams)
  return out

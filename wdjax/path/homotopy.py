"""The exact lasso path by homotopy (LARS with the lasso modification), one compiled loop.

On a fixed support A with fixed signs s_A, the optimality conditions of
P_λ(w) = ½‖y − Xw‖²/n + λ‖w‖₁,

  Q_AA·w_A = b_A − λ·s_A,   |c_j| <= λ off A   (Q = XᵀX/n, b = Xᵀy/n, c = Xᵀr/n),

make w_A affine in λ: as λ falls by Δ, w_A grows by Δ·δ with δ = Q_AA⁻¹s_A, and every
correlation moves as c_j −= Δ·a_j with a = XᵀX_Aδ/n. The solution path is therefore
piecewise linear, and the homotopy walks it from λ_max (w = 0) breakpoint to breakpoint
(Osborne, Presnell & Turlach 2000; Efron et al. 2004, LARS "lasso"): the next breakpoint is
the smallest Δ > 0 at which

  an outside feature's correlation reaches the boundary, c_j − Δa_j = ±(λ − Δ)
    (it enters A with that sign), or
  an active coefficient reaches zero, w_i + Δδ_i = 0 (it leaves A).

The coefficients at each λ of the grid are read off the segment that contains it, so the
whole grid costs as many steps as the path has breakpoints, whatever the tolerance: on
the 100 x 2000 correlated benchmark problem 171 steps to 1e-3·λ_max, each one product
with X (a; c = Xᵀr/n too on a segment that holds a grid λ) and O(K²) for the K slots of
Q_AA⁻¹ (below) to keep it current (a rank-one update when a feature enters, the Schur
complement of its slot when one leaves). That is why it is the solver for few samples and many features (the number of
breakpoints grows with min(n, d), and |A| <= min(n, d)): the path of a p ≫ n problem in
~n·(1-2) steps, exact to rounding. (With few features and many samples, FISTA on the
d x d Gram matrix is faster: each step here passes over all of X.)
Features that tie (enter or leave at the same λ) are taken one step each, at Δ = 0.

Numerics: Q_AA⁻¹ is kept by updates (no refactorization), and Newton steps against the
exact conditions keep rounding from drifting along the path: every step corrects δ,
δ += Q_AA⁻¹(s_A − Q_AAδ) with Q_AAδ = X_Aᵀ(X_Aδ)/n, and u = X_Aδ and a are then fresh
products. The correlations c are carried from step to step along the segment (c − Δ·a;
the Newton corrections of w_A and the zeroing of a leaving coefficient, rounding-sized,
are not in it) and taken afresh from X (c = Xᵀr/n, r = y − X_Aw_A) only for a segment
that holds a grid λ, whose certificates read them: one pass over X a step instead of two
on the other steps (500 x 2000: 607 steps, 100 grid λ; ~15% faster). w_A is corrected,
w_A += Q_AA⁻¹(c_A − λs_A) with c_A moved along the segment (on A, c_A − Δ·s_A), only after
a step whose c was fresh: corrections read off carried correlations compounded (1e-15 to
1e-8 of ‖c‖ in 80 steps). The carried c drifts by rounding, ~2e-15 of λ_max between
fresh products on well-conditioned supports, but an ill-conditioned Q_AA (near-duplicate
columns) amplifies it, to 1e-8 and past the certificates' 1e-9: at every grid λ the
carried c is compared with the fresh one, and once they differ by more than 1e-13·λ_max
(`_DRIFT`) c is taken afresh at every step for the rest of the path, as before 2026-11-28.
A feature whose column is (numerically) in the span of the active ones cannot enter (its
Schur complement is <= 1e-10 of its squared norm ‖x_j‖²/n); it is set aside until the
next exit. At every grid λ the duality gap and the optimality conditions (max_j |c_j| − λ,
and the signs of w) are evaluated from the c, a, r and u of its segment, each a fresh
product with X at the segment's start, moved linearly along it (exactly how they move);
if one is off, `wdjax.path` with solver="auto" solves the path again by the solver it
would otherwise pick (coordinate descent or FISTA), and with solver="homotopy" warns and
marks those λ unconverged.

Slots: Q_AA⁻¹ and X_A are (K, K) and (K, n) arrays of slots, and a step costs their size,
not |A|'s. K = k = min(n, d), except that from k = 256 the loop runs in two stages
(`_stages`): K = k/2 slots until they are full, then k (on 500 x 2000, 607 steps, |A| is
below 250 for 45% of them), at the price of a second compiled loop (~1 s). X_A's row and
Q_AA⁻¹'s rank-one update of an event are applied at the start of the next step
(read-only until then): as the last writes of a step that had read X_A, they made XLA
copy X_A twice a step. Timings in benchmarks/README.md, run Q.

Cost on a CPU (the 100 x 2000 correlated problem, 171 steps, 2-core Xeon, before run Q's
changes): ~16 ms on one core, ~21 ms on two (XLA's executor hands a step's independent
small products to the second thread, which costs more than it saves). Per step, the two
products with X took ~45 µs (one on most steps since c is carried) and the rest is the
overhead of ~50 small kernels, which the loop compiled as one kernel does not pay: ~14 ms
with `wdjax.path.use_loop_kernels()` (an opt-in, process-wide XLA option;
`loop_kernels.py`). Measured and dropped: the k x k and k x n products as fused
multiply-and-sums (1.5x slower), w_A and δ corrected side by side with (2, k) products
(1.1x slower; XLA:CPU's products with a second dimension of 2 are slow, and Xᵀ[r, u] took
1.9x two products; c and a as one (2, n) x (n, d) product: 55 against 96 µs alone at
500 x 2000, but the path 1.3-1.5x slower), Q_AAδ read off the uncorrected a = XᵀX_Aδ/n
(one product fewer, but a, the breakpoints and the certificates then carry δ's
first-order error), the grid λ recorded before w_A's correction (the random 30 x 30 paths
of the tests failed their conditions near 1e-6·λ_max), `argmin` as a min and an integer
max (no faster), a `lax.cond` or `lax.switch` per event (~20 µs a step of state copies).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from wdjax.path.compiled import cpu_jit
from wdjax.path.coordinate_descent import _gap

# a denominator 1 ± a_j below this means the feature's correlation moves (numerically) in
# step with λ: it never reaches the boundary
_TINY = 1e-12
# two breakpoints closer than this fraction of λ are one (the feature that just changed
# sides is on its boundary)
_SAME = 1e-10
# c = Xᵀr/n is carried along the path while, at every grid λ, it is within this fraction
# of λ_max of a fresh product (rounding alone: ~2e-15 on well-conditioned supports; an
# ill-conditioned Q_AA amplifies the drift, and from then on c is taken afresh every step)
_DRIFT = 1e-13
# a feature enters only if its Schur complement against the active set is above this
# fraction of its own squared norm (else it is numerically in their span)
_COLLINEAR = 1e-10


def _stages(k):
  """The slot capacities of the loop's stages: its k x k products (Q_AA⁻¹, X_A) cost as
  many slots as the stage holds, not as the active set; a stage ends when its slots are
  full. One stage below 256 slots (each stage is another compiled loop)."""
  return (k,) if k < 256 else (k // 2, k)


def _grow(st, K, d):
  """The loop state with its slot arrays padded to K slots (empty: feature d, zeros)."""
  K0 = st["feat"].shape[0]
  rows = lambda v, fill=0: jnp.pad(v, [(0, K - K0)] + [(0, 0)] * (v.ndim - 1),
                                   constant_values=fill)
  return dict(st, M=jnp.pad(st["M"], (0, K - K0)), XA=rows(st["XA"]), wa=rows(st["wa"]),
              sgn=rows(st["sgn"]), cA=rows(st["cA"]), feat=rows(st["feat"], d),
              update=dict(st["update"], col=rows(st["update"]["col"])),
              # (the "none" sentinel of the slot filled last is the slot count)
              fresh=jnp.where(st["fresh"] == K0, K, st["fresh"]).astype(jnp.int32))


@cpu_jit
def homotopy_path(Xt, y, lams, lam_max, max_steps):
  """The lasso path at `lams` (decreasing) from Xt = Xᵀ (d, n) and y, float64, starting
  at λ_max = max_j |x_jᵀy|/n as the caller computed it (the one its grid starts from: a
  λ_max recomputed here can differ in the last bit and leave a 1e-17 coefficient at
  the grid's first λ, where the solution is exactly 0).

  Returns (slot coefficients (m, k), slot features (m, k), gaps (m,), violations (m,),
  steps (m,)), k = min(n, d): row i of the first two says w at lams[i] (feature index d
  marks an empty slot); gaps are the duality gaps of the full problem, violations
  max(max_j |x_jᵀr/n| − λ, 0) (+inf if a coefficient has the wrong sign), both +inf where
  `max_steps` (traced) steps ran out before the grid did; steps, the steps (breakpoints,
  and features set aside) taken since the previous λ.
  """
  d, n = Xt.shape
  m = lams.shape[0]
  k = min(n, d)
  dt = Xt.dtype
  nf = jnp.asarray(n, dt)
  inf = jnp.asarray(jnp.inf, dt)

  def record(out, lam, wa, da, feat, sgn, r, u, c, a, lam_next, step, fresh, leaving):
    # every grid λ in [lam_next, lam] not yet recorded, read off this segment. A grid λ on
    # a breakpoint gets an exact 0 for the coefficient that enters (`fresh`) or leaves
    # there (`leaving`), not the ±1e-17 of rounding (of either sign); their residual is
    # left as is (the difference is of that size)
    def cond(o):
      i = o["i"]
      return (i < m) & (lams[jnp.minimum(i, m - 1)] >= lam_next)

    def body(o):
      i = o["i"]
      t = lam - lams[i]   # (< 0 for grid values above λ_max: then wa = da = 0)
      w = wa + t * da
      w = jnp.where((leaving & (lams[i] - lam_next <= _SAME * lam))
                    | (fresh & (t <= _SAME * lam)), 0, w)
      ri = r - t * u
      dual_norm = jnp.max(jnp.abs(c - t * a))   # ‖Xᵀr/n‖∞ at lams[i]
      # the optimality conditions, apart from the gap (which a loose tol lets through):
      # |c_j| <= λ everywhere (c_j = λ·s_j on A holds by construction) and w_j·s_j >= 0
      viol = jnp.maximum(dual_norm - lams[i], 0)
      viol = jnp.where(jnp.any(w * sgn < -_SAME * jnp.max(jnp.abs(w))), inf, viol)
      # (sklearn's gap written with the residual, CD's: no ridge term, blocks of width 1)
      gap = _gap(dual_norm, w[:, None], ri, y, nf, lams[i], 0.0)
      K = w.shape[0]
      return {"i": i + 1, "w": o["w"].at[i, :K].set(w), "feat": o["feat"].at[i, :K].set(feat),
              "gap": o["gap"].at[i].set(gap),
              "viol": o["viol"].at[i].set(viol),
              "steps": o["steps"].at[i].set(step - o["mark"]), "mark": step}
    return jax.lax.while_loop(cond, body, out)

  def step(st):
    feat, sgn, XA, lam = st["feat"], st["sgn"], st["XA"], st["lam"]
    K = feat.shape[0]   # the slots of this stage (see _stages)
    slots = jnp.arange(K)
    # the previous event's update of M (see below), applied here, across the loop's
    # boundary: in the same step XLA fused the event's scalar logic and the column read of
    # M into the k x k update and recomputed them for every entry (70 µs a step at k = 100)
    up = st["update"]
    M = st["M"] + up["scale"] * jnp.outer(up["col"], up["col"])
    M = M.at[up["slot"]].multiply(up["on"]).at[:, up["slot"]].multiply(up["on"])
    # (X_A's new row likewise: written at the end of the step that read X_A, it cost XLA two
    # copies of X_A a step)
    XA = XA.at[up["slot"]].set(up["row"])
    occupied = feat < d
    fresh = slots == st["fresh"]   # the slot of a feature that entered at the last step
    # Newton corrections against the exact conditions on A (see the module docstring): w_A
    # from the correlations predicted for this λ (only after a step whose c was a fresh
    # product), δ from Q_AAδ = X_Aᵀu/n; then u and a are fresh products from the corrected δ
    wa = st["wa"] + jnp.where(st["c_fresh"],
                              M @ jnp.where(occupied, st["cA"] - lam * sgn, 0), 0)
    r = y - wa @ XA
    da = M @ sgn
    u = da @ XA                                     # X_A·δ
    dd = M @ jnp.where(occupied, sgn - XA @ u / nf, 0)
    da = da + dd
    u = u + dd @ XA
    # c, every correlation at this λ, carried along the last segment (c − Δ·a) or, once it
    # has drifted (see _DRIFT), taken afresh; a afresh (δ changes with A)
    carry = st["carry"]
    c = jax.lax.cond(carry, lambda: st["c"], lambda: Xt @ r / nf)
    a = Xt @ u / nf
    fa = jnp.minimum(feat, d - 1)

    # the next breakpoint: a feature entering ...
    up, down = 1 - a, 1 + a
    d_up = jnp.where(up > _TINY, (lam - c) / jnp.where(up > _TINY, up, 1), inf)
    d_down = jnp.where(down > _TINY, (lam + c) / jnp.where(down > _TINY, down, 1), inf)
    d_in = jnp.maximum(jnp.minimum(d_up, d_down), 0)
    # (the feature that just left is on its boundary: it may come back, but not at once)
    d_in = jnp.where(st["outside"] & ((jnp.arange(d) != st["left"]) | (d_in > _SAME * lam)),
                     d_in, inf)
    j_in = jnp.argmin(d_in)
    delta_in = jnp.where(jnp.all(occupied), inf, d_in[j_in])   # (|A| = k: nothing enters)
    # ... or an active coefficient moving against its sign reaching zero (decided by the
    # sign, not by w: features that enter at one λ have w = ±1e-17 there; clamped at 0 as
    # the entries are), not the one that just entered at once
    leaving = occupied & (sgn * da < 0)
    d_out = jnp.where(leaving, jnp.maximum(-wa / jnp.where(leaving, da, 1), 0), inf)
    d_out = jnp.where(fresh & (d_out <= _SAME * lam), inf, d_out)
    s_out = jnp.argmin(d_out)
    delta_out = d_out[s_out]
    # ... or the end of the grid (landed on exactly: λ − (λ − λ_end) can round above it)
    delta_end = jnp.maximum(lam - lams[m - 1], 0)
    delta = jnp.minimum(jnp.minimum(delta_in, delta_out), delta_end)
    stop = delta_end <= jnp.minimum(delta_in, delta_out)
    leave = ~stop & (delta_out < delta_in)
    lam_next = jnp.where(stop, lams[m - 1], lam - delta)
    i = st["out"]["i"]
    # a segment that holds a grid λ: its certificates read c, so a carried c is taken
    # afresh here, and how far it had drifted decides whether to go on carrying it
    graded = (i < m) & (lams[jnp.minimum(i, m - 1)] >= lam_next)

    def refresh():
      fresh = Xt @ r / nf
      return fresh, jnp.max(jnp.abs(fresh - c))
    c, drift = jax.lax.cond(carry & graded, refresh, lambda: (c, jnp.zeros((), dt)))
    carry = carry & (drift <= _DRIFT * lam_max)
    out = record(st["out"], lam, wa, da, feat, sgn, r, u, c, a, lam_next, st["step"], fresh,
                 (slots == s_out) & (delta_out <= delta))
    wa = wa + delta * da

    # the event, branch-free (a `lax.cond` per step cost ~20 µs in copies of the state):
    # entering, Q_AA⁻¹ grows by the block-inverse formula, a rank-one update with
    # col = [Q_AA⁻¹q; −1] in slot order (q = X_Aᵀx_j/n, σ = x_jᵀx_j/n − qᵀQ_AA⁻¹q, the Schur
    # complement); leaving slot s, it shrinks by the Schur complement of s,
    # M − M[:, s]M[s, :]/M[s, s], with row and column s then zero
    x = Xt[j_in]
    q = XA @ x / nf
    v = M @ q
    xx = jnp.vdot(x, x) / nf
    schur = xx - jnp.vdot(q, v)
    enter = ~stop & ~leave & (schur > _COLLINEAR * xx)
    collinear = ~stop & ~leave & ~enter
    s = jnp.where(leave, s_out, jnp.argmin(occupied)).astype(jnp.int32)   # (first free: v[s] = 0)
    e = slots == s
    col = jnp.where(leave, M[:, s], v - e)
    scale = jnp.where(enter, 1 / jnp.where(enter, schur, 1),
                      jnp.where(leave, -1 / M[s, s], 0))
    update = {"col": col, "scale": scale, "slot": s, "on": jnp.where(leave, 0.0, 1.0).astype(dt),
              "row": jnp.where(enter, x, jnp.where(leave, 0, XA[s]))}
    sign = jnp.where(d_up[j_in] <= d_down[j_in], 1.0, -1.0).astype(dt)
    j = jnp.where(leave, feat[s], j_in).astype(jnp.int32)
    # a feature in the span of the active ones is set aside until the next exit (which
    # may take it out of the span)
    outside = jnp.where(leave, st["outside"] | st["aside"], st["outside"])
    outside = outside.at[j].set(jnp.where(enter | collinear, False, outside[j] | leave))
    aside = jnp.where(leave, False, st["aside"]).at[j].set(collinear | (st["aside"][j] & ~leave))
    feat_next = feat.at[s].set(jnp.where(enter, j, jnp.where(leave, d, feat[s])))
    # the correlations each slot will have at λ − Δ, for the next step's correction (on A,
    # a_A = s_A; the entering feature's from its own a_j; free slots' are never read). (The
    # same (c − Δ·a) gather for every slot measured ~5% slower on one core: not taken)
    c_all = c - delta * a
    c_next = jnp.where(occupied & (slots != s), c[fa] - delta * sgn,
                       c_all[jnp.minimum(feat_next, d - 1)])
    return {"lam": lam_next, "M": M, "update": update, "XA": XA, "cA": c_next, "c": c_all,
            "c_fresh": graded | ~st["carry"], "carry": carry,
            "wa": wa.at[s].set(jnp.where(enter | leave, 0, wa[s])),
            "sgn": sgn.at[s].set(jnp.where(enter, sign, jnp.where(leave, 0, sgn[s]))),
            "feat": feat_next,
            "outside": outside, "aside": aside,
            "left": jnp.where(leave, j, d).astype(jnp.int32),
            "fresh": jnp.where(enter, s, K).astype(jnp.int32),
            "step": st["step"] + 1, "out": out}

  def cond(st):
    return (st["out"]["i"] < m) & (st["step"] < max_steps)

  def room(st):   # a stage ends when its slots are full (the last one when the path does)
    return cond(st) & (jnp.sum(st["feat"] < d) < st["feat"].shape[0])

  K = _stages(k)[0]
  zero_w = jnp.zeros(K, dt)
  zero = jnp.asarray(0, jnp.int32)
  out = {"i": zero, "w": jnp.zeros((m, k), dt), "feat": jnp.full((m, k), d, jnp.int32),
         "gap": jnp.full(m, jnp.inf, dt), "viol": jnp.full(m, jnp.inf, dt),
         "steps": jnp.zeros(m, jnp.int32), "mark": zero}
  # (outside: may enter, i.e. neither active nor set aside as collinear; left: the feature
  # that left at the last step, d for none; fresh: the slot filled at the last step, K for
  # none; cA: each slot's correlation x_jᵀr/n predicted at the current λ; c: every
  # feature's, c_fresh: whether c was a fresh product at the last step)
  st = {"lam": jnp.asarray(lam_max, dt), "wa": zero_w, "sgn": zero_w, "cA": zero_w,
        "c": Xt @ y / nf, "c_fresh": jnp.asarray(True), "carry": jnp.asarray(True),
        "feat": jnp.full(K, d, jnp.int32), "XA": jnp.zeros((K, n), dt),
        "M": jnp.zeros((K, K), dt), "outside": jnp.ones(d, bool), "aside": jnp.zeros(d, bool),
        "update": {"col": zero_w, "scale": jnp.zeros((), dt), "slot": zero,
                   "on": jnp.ones((), dt), "row": jnp.zeros(n, dt)},
        "left": jnp.asarray(d, jnp.int32), "fresh": jnp.asarray(K, jnp.int32), "step": zero,
        "out": out}
  stages = _stages(k)
  for K_next in stages[1:]:
    st = _grow(jax.lax.while_loop(room, step, st), K_next, d)
  out = jax.lax.while_loop(cond, step, st)["out"]
  return out["w"], out["feat"], out["gap"], out["viol"], out["steps"]

"""The exact elastic-net path for few samples: an active-set method (feature-sign search).

On a fixed support A with fixed signs s_A, the elastic net's optimality conditions,

  (Q_AA + μI)·w_A = b_A − λα·s_A,   |c_j| <= λα off A,
  (Q = XᵀX/n, b = Xᵀy/n, c = Xᵀr/n, μ = λ(1−α), α = l1_ratio),

are a linear system, so the solution at λ is found exactly once its support and signs are:
no tolerance, no iterations towards it. Unlike the lasso's (`homotopy.py`) the path is
not piecewise linear in λ (μ moves with λ), so this solver does not follow it between
grid values; it finds each grid λ's support from the previous one's by feature-sign search
(Lee, Battle, Raina & Ng 2007), a step at a time:

  solve the system on (A, s) for the candidate w*;
  if a coefficient of w* has the wrong sign: step from w towards w* up to the first zero
    crossing (the objective with the signs fixed is a convex quadratic falling all along
    the segment, so this lowers the true objective) and drop the features that reach zero
    there;
  else take w*; if features off A violate |c_j| <= λα, they enter with the sign of c_j
    (the worst and up to 7 more within half its violation; one alone at a point that is
    optimal on A gets a candidate value of that sign:
    w*_j = (|c_j| − λα)·((Q_BB + μI)⁻¹)_jj·s_j, B = A ∪ {j}); else λ is solved.

The grid's λ should be close (`wdjax.path` bridges λ more than 10% apart with λ 10% apart,
dropped from its result: from far away, as w = 0 at a single λ = 1e-3·λ_max, the search
met so many wrong signs that it ran out of steps). Before a λ's first solve, the
support is guessed from the last two solutions, extrapolated linearly in λ: the features
whose correlation passes λα enter, and the members whose coefficient changes sign leave.
The features that reach zero at exactly the same point of a step's segment leave at once
(up to _ENTER_MAX a step, the rest set to zero and leaving at the next step), so the wrong
guesses (all at t = 0: they entered with w = 0) cost one step together, and most λ take a
single step. Each step is one solve and one pass over X, whatever the tolerance: the path
of the 100 x 2000 correlated benchmark problem (l1_ratio 0.5, the benchmark's 100 λ)
takes 133 steps and ~27 ms on the 2-core Xeon (204 steps and 41 ms without the guesses and
with up to 4 entries a step; 155 steps with the entries guessed, each wrong one leaving at
a step of its own, and no leaves predicted; celer at sklearn's default tolerance 33 ms,
~7e-3 off).

The system in n-space. For n ≪ d the support outgrows n (the elastic net selects up to d
features), so the solve goes through the Woodbury identity instead of the |A| x |A|
matrix:

  (X_AᵀX_A/n + μI)⁻¹ = (1/μ)·(I − X_Aᵀ(nμI + K)⁻¹X_A),   K = X_AX_Aᵀ (n x n),
  w*_A = (b_A − λα·s_A − X_Aᵀz)/μ,   z = (nμI + K)⁻¹X_A(b_A − λα·s_A).

X_A is kept in slots (at most 4n features: `slots`; a support that outgrows them is not
certified), K by updates of rank <= 8 as features enter and leave, and nμI + K is factored
afresh each step (Cholesky, n x n, ~30 µs at n = 100). The residual r = y − X_Aw*_A is a
product with the slots, and the step's only pass over X is c = Xᵀr/n (the violators).
What each step costs besides (~200 µs in all at n = 100) is ~70 small kernels of the
compiled loop; measured and kept: the support's change applied at the next step (in the
same step XLA fused its scalar logic into the n x n update, 53 -> 41 ms), the violators'
selection and the updates of K and X_A under `lax.cond` (most steps change nothing), the rows of X
read by dynamic slices (a gather of 8 rows took ~25 µs); dropped: a guess from the strong
rule (|c_j| >= α(2λ − λ_prev): many wrong guesses, 541 steps), guesses with a margin.

Numerics: float64. The subtraction in w*_A loses about ‖X_A‖²/(nμ) in relative accuracy
(μ = λ(1−α) small: l1_ratio near 1, λ far below λ_max), and K's updates add their rounding
along the path, so every grid λ is certified from fresh products with X at its returned
coefficients, r = y − X_Aw_A and c = Xᵀr/n: its duality gap, and its optimality conditions
(|c_j − μw_j − λα·s_j| on A, |c_j| − λα off it; a coefficient of the wrong sign: +inf).
`wdjax.path` with solver="auto" solves the path another way if one is off; with
solver="active_set" it warns and marks those λ unconverged. The same when the step cap runs
out (a cycle of rounding between a feature's entry and exit) or the slots do.

Reference: Lee, Battle, Raina & Ng, Efficient sparse coding algorithms, NeurIPS 2007
(feature-sign search), https://papers.nips.cc/paper/2979.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from wdjax.path.compiled import cpu_jit
from wdjax.path.coordinate_descent import _gap

# a feature off the support enters only if |c_j| − λα exceeds this fraction of λ_max·α (a
# violation of rounding size would enter and leave again)
_ENTER = 1e-11
# slot writes per step at most: features entering, or leaving (at a step's zero crossing,
# or predicted before a λ's first solve, together with the guessed entries). The 100 x 2000
# correlated path with one feature leaving a step and no predicted leaves: 204 steps with 4
# entries, 183 with 8, 155 with 8 and the guessed entries; 12 or 16 no fewer
_ENTER_MAX = 8
# ... the worst, and those within this fraction of its violation (the first by index: far
# from the solution, as a grid that starts far below λ_max, the first 8 violators by
# index entered and left again without end)
_ENTER_FRACTION = 0.5


def _first(mask, size, fill):
  """The indices of the first `size` True entries of `mask` (int32), `fill` past them."""
  return jnp.nonzero(mask, size=size, fill_value=fill)[0].astype(jnp.int32)


@cpu_jit
def active_set_path(Xt, y, lams, l1_ratio, lam_max, max_steps):
  """The elastic-net path at `lams` (decreasing, from `lam_max`, the caller's λ_max) for
  Xt = Xᵀ (d, n) and y, float64, 0 < l1_ratio < 1.

  Returns (slot coefficients (m, k), slot features (m, k), gaps (m,), violations (m,),
  steps (m,)), k = `slots(n, d)`: row i of the first two says w at lams[i] (feature index
  d marks an empty slot); the duality gaps of the full problem and the largest violation
  of the optimality conditions, from fresh products with X (+inf where `max_steps`, traced,
  the steps of the whole path, ran out before the λ was solved, or a feature had no free
  slot), and the steps taken at each λ.
  """
  d, n = Xt.shape
  k = slots(n, d)
  dt = Xt.dtype
  nf = jnp.asarray(n, dt)
  inf = jnp.asarray(jnp.inf, dt)
  alpha = jnp.asarray(l1_ratio, dt)
  b = Xt @ y / nf
  diag = jnp.eye(n, dtype=bool)
  enter_tol = _ENTER * alpha * lam_max

  def off_support(v, feat):
    return v.at[feat].set(-inf, mode="drop")   # (empty slots, index d, dropped)

  def admit(score, on, fraction):
    # features to enter: the highest score, and those within `fraction` of it (the first
    # by index), at most _ENTER_MAX, all with score > enter_tol; and the first free slots
    # for them
    score = jnp.where(jnp.isnan(score), -inf, score)

    def pick(score, on):
      best = jnp.argmax(score).astype(jnp.int32)
      cut = jnp.maximum(enter_tol, fraction * score[best])
      more = _first((score >= cut) & (jnp.arange(d) != best), _ENTER_MAX - 1, d)
      return jnp.concatenate([best[None], more]), _first(~on, _ENTER_MAX, k)

    # (a `lax.cond`: most steps admit none, and the two `nonzero` are ~25 small kernels)
    js, ss = jax.lax.cond(jnp.any(score > enter_tol), pick, lambda *_: (
        jnp.full(_ENTER_MAX, d, jnp.int32), jnp.full(_ENTER_MAX, k, jnp.int32)), score, on)
    return js, ss, (js < d) & (ss < k)

  def change(wa, sa, feat, slot, src, grow, sign):
    # slot writes (index k: none): slot[i] takes feature src[i] with sign[i] and w = 0
    # (grow[i] = 1) or is emptied of it (grow[i] = −1); K and X_A change by that feature's
    # row of Xᵀ at the next step (the pending `update`)
    # (the barrier makes these few indices an array of their own: fused into the row
    # gather, their logic was recomputed for every element, 30 µs a step)
    slot, src, grow = jax.lax.optimization_barrier((slot, src, grow))
    # (rows by dynamic slices: a gather of these few rows took ~25 µs on XLA:CPU)
    x = jnp.stack([jax.lax.dynamic_index_in_dim(Xt, jnp.minimum(src[i], d - 1), keepdims=False)
                   for i in range(_ENTER_MAX)]) * (src < d)[:, None]
    return (wa.at[slot].set(0, mode="drop"), sa.at[slot].set(sign, mode="drop"),
            feat.at[slot].set(jnp.where(grow > 0, src, d), mode="drop"),
            {"grow": grow, "x": x, "slot": slot, "row": x * (grow > 0)[:, None]})

  def solve_one(carry, lam):
    mu, l1 = lam * (1 - alpha), lam * alpha

    def cond(st):
      return ~st["done"] & (st["steps_left"] > 0)

    def body(st):
      wa, sa, feat = st["wa"], st["sa"], st["feat"]
      # the previous step's change of the support applied here, across the loop's
      # boundary (in the same step XLA fused the step's scalar logic into the n x n update
      # and copied X_A: 52.7 -> 40.9 ms on the correlated benchmark path); K's and X_A's
      # under a `lax.cond`, since most steps change nothing
      up = st["update"]
      K, XA = jax.lax.cond(
          jnp.any(up["grow"] != 0),
          lambda K, XA, up: (K + (up["grow"][:, None] * up["x"]).T @ up["x"],
                             XA.at[up["slot"]].set(up["row"], mode="drop")),
          lambda K, XA, up: (K, XA), st["K"], st["XA"], up)
      on = sa != 0
      ba = jnp.where(on, b[jnp.minimum(feat, d - 1)] - l1 * sa, 0)
      # the candidate w* on (A, s), in n-space (module docstring)
      # (K is symmetric by construction: no symmetrizing pass, as jnp.linalg.cholesky makes;
      # nμ added on the diagonal by a select, in the copy to LAPACK's layout that XLA makes
      # anyway: K + nμ·I materialized nμ·I and copied it per λ; 29.6 -> 26.5 ms on the
      # correlated benchmark path)
      chol = jax.lax.linalg.cholesky(jnp.where(diag, K + nf * mu, K), symmetrize_input=False)
      z = jax.scipy.linalg.cho_solve((chol, True), ba @ XA)
      ws = jnp.where(on, (ba - XA @ z) / mu, 0)
      r = y - ws @ XA
      c = Xt @ r / nf
      # a wrong sign: step to the first zero crossing and drop the features that reach it
      bad = on & (ws * sa <= 0)
      drop = jnp.any(bad)
      # (a feature that entered at this step and has w* = 0 leaves at t = 0)
      step = wa - ws
      t = jnp.where(bad, jnp.where(step != 0, wa / jnp.where(step != 0, step, 1), 0), inf)
      s_out = jnp.argmin(t).astype(jnp.int32)
      # every feature that reaches zero at that same t leaves together: most often the
      # wrong guesses of this λ, all at t = 0 (w = 0 since they entered), one step for all
      # (s_out always: t may be NaN once w is); past _ENTER_MAX of them they are set to 0
      # here and leave at the next step, at t = 0
      at_zero = (t <= t[s_out]) | (jnp.arange(k) == s_out)
      wa = jnp.where(drop, jnp.where(at_zero, 0, wa + t[s_out] * (ws - wa)), ws)
      outs = jax.lax.cond(drop, lambda: _first(at_zero, _ENTER_MAX, k),
                          lambda: jnp.full(_ENTER_MAX, k, jnp.int32))
      # else the violators off A enter
      viol = off_support(jnp.abs(c) - l1, feat)
      worst = jnp.max(viol)
      js, ss, ok = admit(viol, on, _ENTER_FRACTION)
      ok = ~drop & ok
      # (a violator with no free slot left: the support outgrew them)
      full = ~drop & (worst > enter_tol) & (ss[0] == k)
      # the drops as the slot writes, or else the entries
      gone = outs < k
      wa, sa, feat, update = change(
          wa, sa, feat, jnp.where(drop, outs, jnp.where(ok, ss, k)),
          jnp.where(drop, jnp.where(gone, feat[jnp.minimum(outs, k - 1)], d),
                    jnp.where(ok, js, d)),
          jnp.where(drop, -gone.astype(dt), ok.astype(dt)),
          jnp.where(ok, jnp.sign(c[js]), 0))
      return dict(st, wa=wa, sa=sa, feat=feat, XA=XA, K=K, update=update, r=r, c=c,
                  done=~drop & ~ok[0], full=full, steps=st["steps"] + 1,
                  steps_left=jnp.where(full, 0, st["steps_left"] - 1))

    # features predicted to enter between the previous λ and this one enter before the
    # first solve: c extrapolated linearly in λ from the last two solutions, |c_j| > λα
    # (the wrong guesses, all at w = 0, leave together at the first step's t = 0)
    wa, sa, feat, c = carry["wa"], carry["sa"], carry["feat"], carry["c"]
    # v(λ) ≈ v + ratio·(v − v_prev), ratio = (λ − λ_last)/(λ_last − λ_prev) (at the first
    # two λ the last two solutions are one: no extrapolation)
    dlam = carry["lam"] - carry["lam_prev"]
    ratio = jnp.where(dlam != 0, (lam - carry["lam"]) / jnp.where(dlam != 0, dlam, 1), 0)
    guess = c + ratio * (c - carry["c_prev"])
    js, ss, ok = admit(off_support(jnp.abs(guess) - l1, feat), sa != 0, 0.0)
    slot, src = jnp.where(ok, ss, k), jnp.where(ok, js, d)
    grow, sign = ok.astype(dt), jnp.where(ok, jnp.sign(guess[js]), 0)
    # ... and the members whose coefficient, extrapolated the same way (in the slots that
    # held the same feature at the last two λ), changes sign leave; not when the
    # extrapolation reaches more than twice the last two λ's distance (a grid with a jump,
    # where a wrong leave costs a step to come back)
    stay = (feat == carry["feat_prev"]) & (sa != 0) & (ratio <= 2)
    leave = stay & ((wa + ratio * (wa - carry["wa_prev"])) * sa < 0)

    def with_leaves(slot, src, grow, sign):
      # the slot writes of the leaving members first, then the entries': the first
      # _ENTER_MAX of both (index 2·_ENTER_MAX picks the no-op write appended to each)
      outs = _first(leave, _ENTER_MAX, k)
      gone = outs < k
      writes = ((outs, slot, k),
                (jnp.where(gone, feat[jnp.minimum(outs, k - 1)], d), src, d),
                (-gone.astype(dt), grow, 0), (jnp.zeros(_ENTER_MAX, dt), sign, 0))
      pick = _first(jnp.concatenate([outs, slot]) < k, _ENTER_MAX, 2 * _ENTER_MAX)
      return tuple(jnp.concatenate([a, b, jnp.full(1, none, b.dtype)])[pick]
                   for a, b, none in writes)
    slot, src, grow, sign = jax.lax.cond(jnp.any(leave), with_leaves, lambda *a: a,
                                         slot, src, grow, sign)
    wa, sa, feat, update = change(wa, sa, feat, slot, src, grow, sign)
    last = {"wa_prev": carry["wa"], "feat_prev": carry["feat"]}
    carry = dict(carry, wa=wa, sa=sa, feat=feat, update=update)
    st = jax.lax.while_loop(cond, body, dict(
        carry, r=y, done=jnp.asarray(False), full=jnp.asarray(False),
        steps=jnp.asarray(0, jnp.int32)))
    # (the last step's update is pending: there is none when the λ was solved; when the
    # steps ran out mid-λ it is lost, and K and X_A no longer match the slots, which is
    # safe only because `steps_left` counts for the whole path: no later λ takes a step,
    # and all are uncertified)
    solved = st["done"] & ~st["full"]
    carry = dict({key: st[key] for key in carry}, lam=lam, lam_prev=carry["lam"],
                 c_prev=carry["c"], **last)
    return carry, (st["wa"], st["sa"], st["feat"], st["r"], st["c"], solved, st["steps"])

  init = {"wa": jnp.zeros(k, dt), "sa": jnp.zeros(k, dt), "feat": jnp.full(k, d, jnp.int32),
          "XA": jnp.zeros((k, n), dt), "K": jnp.zeros((n, n), dt),
          "update": {"grow": jnp.zeros(_ENTER_MAX, dt), "x": jnp.zeros((_ENTER_MAX, n), dt),
                     "slot": jnp.full(_ENTER_MAX, k, jnp.int32),
                     "row": jnp.zeros((_ENTER_MAX, n), dt)},
          "steps_left": jnp.asarray(max_steps, jnp.int32), "c": b, "c_prev": b,
          "wa_prev": jnp.zeros(k, dt), "feat_prev": jnp.full(k, d, jnp.int32),
          "lam": jnp.asarray(lam_max, dt), "lam_prev": jnp.asarray(lam_max, dt)}
  lams = jnp.asarray(lams, dt)
  _, (wa, sa, feat, r, c, solved, steps) = jax.lax.scan(solve_one, init, lams)

  # Every λ certified from its last step's r = y − X_Aw_A and c = Xᵀr/n, fresh products
  # with X at the returned coefficients (the solve's rounding, and K's, is not in them);
  # after the loop, for all λ at once (inside it, these ~80 small kernels a λ cost more than
  # the steps' own work)
  l1, mu = (lams * alpha)[:, None], (lams * (1 - alpha))[:, None]
  on = sa != 0
  rows = jnp.arange(lams.size)[:, None]
  outside = jnp.ones((lams.size, d + 1), bool).at[rows, feat].set(False)[:, :d]
  # (on the support ρ = c − μw, which the conditions want at λα·s)
  rho = jnp.take_along_axis(c, jnp.minimum(feat, d - 1), axis=1) - mu * wa
  viol = jnp.maximum(jnp.max(jnp.where(outside, jnp.abs(c) - l1, 0), axis=1),
                     jnp.max(jnp.where(on, jnp.abs(rho - l1 * sa), 0), axis=1))
  solved = solved & ~jnp.any(on & (wa * sa <= 0), axis=1)
  dual_norm = jnp.maximum(jnp.max(jnp.where(outside, jnp.abs(c), 0), axis=1),
                          jnp.max(jnp.where(on, jnp.abs(rho), 0), axis=1))
  gap = jax.vmap(lambda dn, w, r, l1, mu: _gap(dn, w[:, None], r, y, nf, l1, mu))(
      dual_norm, wa, r, l1[:, 0], mu[:, 0])
  return (wa, feat, jnp.where(solved, gap, inf), jnp.where(solved, viol, inf), steps)


def slots(n, d):
  """How many features the support may hold: min(d, 4n) (the elastic net's support can
  outgrow n; past 4n the path is not certified and `wdjax.path` falls back)."""
  return min(d, 4 * n)

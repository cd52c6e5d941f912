"""The scaling rules for λ: each is tested on the scaling it claims."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wdjax
from wdjax import dynamics, scaling

WIDTHS = (128, 256, 512, 1024)


def test_sqrt_width_rule():
  """Fan et al: η ∝ 1/d, λ ∝ √d, so λ(2d)/λ(d) = √2 and their observed top singular value
  √(η/λ)·d^0.75 is the same at every width; the per-step shrink ηλ falls as 1/√d."""
  rules = [scaling.width_scaled(1e-3, 0.1, width=d, base_width=128, rule="sqrt_width")
           for d in WIDTHS]
  for a, b in zip(rules, rules[1:]):
    np.testing.assert_allclose(b.weight_decay / a.weight_decay, np.sqrt(2), rtol=1e-12)
    np.testing.assert_allclose(b.learning_rate / a.learning_rate, 0.5, rtol=1e-12)
  sigma = [np.sqrt(r.learning_rate / r.weight_decay) * d ** 0.75 for r, d in zip(rules, WIDTHS)]
  np.testing.assert_allclose(sigma, sigma[0], rtol=1e-12)
  shrink = [scaling.per_step_decay(r.learning_rate, r.weight_decay) for r in rules]
  np.testing.assert_allclose(np.array(shrink) * np.sqrt(WIDTHS), shrink[0] * np.sqrt(128),
                             rtol=1e-12)
  assert {r.scale_by for r in rules} == {"lr"}


def test_independent_rule_keeps_the_shrink_and_the_equilibrium_angle():
  """μP with independent decay: the shrink s_t·λ, and with it AdamW's equilibrium angular
  update √(2s) (Kosson et al's rotational equilibrium), do not change with width; with
  the standard c_t = η they fall as 1/d and 1/√d."""
  ind = [scaling.width_scaled(1e-3, 0.1, width=d, base_width=128) for d in WIDTHS]
  std = [scaling.width_scaled(1e-3, 0.1, width=d, base_width=128, rule="standard")
         for d in WIDTHS]
  s_ind = [scaling.per_step_decay(r.learning_rate, r.weight_decay, r.scale_by) for r in ind]
  s_std = [scaling.per_step_decay(r.learning_rate, r.weight_decay, r.scale_by) for r in std]
  np.testing.assert_allclose(s_ind, 0.1, rtol=1e-12)
  np.testing.assert_allclose(np.array(s_std) * WIDTHS, 1e-3 * 0.1 * 128, rtol=1e-12)
  ang_ind = [dynamics.equilibrium_angle("adamw", 1.0, s, b1=0.0, scale_by="lr") for s in s_ind]
  ang_std = [dynamics.equilibrium_angle("adamw", 1.0, s, b1=0.0, scale_by="lr") for s in s_std]
  np.testing.assert_allclose(ang_ind, ang_ind[0], rtol=1e-12)
  np.testing.assert_allclose(np.array(ang_std) * np.sqrt(WIDTHS), ang_std[0] * np.sqrt(128),
                             rtol=1e-12)
  assert {r.scale_by for r in ind} == {"schedule"}


def test_independent_rule_in_the_transform():
  """The rule's output, given to wdjax.adamw, shrinks w by the same s_t·λ at two widths."""
  for d in (128, 1024):
    r = scaling.width_scaled(1e-3, 0.1, width=d, base_width=128)
    sched = optax.cosine_decay_schedule(r.learning_rate, 10)
    tx = wdjax.adamw(sched, weight_decay=r.weight_decay, scale_by=r.scale_by,
                     peak_learning_rate=r.learning_rate, mask=None)
    p = {"w": jnp.ones(3)}
    u, _ = tx.update({"w": jnp.zeros(3)}, tx.init(p), p)   # g = 0: only the decay
    np.testing.assert_allclose(u["w"], -0.1, rtol=1e-6)


def test_batch_size_rule_holds_the_timescale():
  """Power Lines: λ ∝ B at fixed η and D, so τ = B/(ηλD) is unchanged."""
  lam = [scaling.batch_size_rule(0.1, batch_size=b, base_batch_size=64) for b in (64, 128, 256)]
  np.testing.assert_allclose(lam, [0.1, 0.2, 0.4], rtol=1e-12)
  taus = [scaling.ema_timescale(batch_size=b, learning_rate=1e-3, weight_decay=l,
                                dataset_size=1e6) for b, l in zip((64, 128, 256), lam)]
  np.testing.assert_allclose(taus, taus[0], rtol=1e-12)
  # with a learning rate that changes too: still τ fixed
  lam2 = scaling.batch_size_rule(0.1, batch_size=256, base_batch_size=64, learning_rate=2e-3,
                                 base_learning_rate=1e-3)
  np.testing.assert_allclose(scaling.ema_timescale(batch_size=256, learning_rate=2e-3,
                                                   weight_decay=lam2, dataset_size=1e6),
                             taus[0], rtol=1e-12)
  # the same τ as wdjax.variants.timescale's τ_epoch
  np.testing.assert_allclose(wdjax.variants.timescale(weight_decay=0.1, learning_rate=1e-3,
                                                      batch_size=64, dataset_size=1e6)[1],
                             taus[0], rtol=1e-12)


def test_power_lines_law():
  """λ_opt = B/(η·D·c·(D/N)^m): its τ is the power law; λ ∝ B; at fixed N, doubling D
  multiplies λ by 2^(−1−m)."""
  kw = dict(learning_rate=1e-3, num_params=1e8, coefficient=0.7, exponent=-0.5)
  lam = scaling.power_lines_weight_decay(batch_size=512, dataset_size=2e9, **kw)
  tau = scaling.ema_timescale(batch_size=512, learning_rate=1e-3, weight_decay=lam,
                              dataset_size=2e9)
  np.testing.assert_allclose(tau, 0.7 * 20 ** -0.5, rtol=1e-12)
  lam_2b = scaling.power_lines_weight_decay(batch_size=1024, dataset_size=2e9, **kw)
  lam_2d = scaling.power_lines_weight_decay(batch_size=512, dataset_size=4e9, **kw)
  np.testing.assert_allclose(lam_2b / lam, 2.0, rtol=1e-12)
  np.testing.assert_allclose(lam_2d / lam, 2.0 ** (-1 + 0.5), rtol=1e-12)


def test_lr_squared_decay_equilibrium_norm_does_not_depend_on_eta():
  """Chou: with updates independent of w (a random walk of step η·ξ, E‖ξ‖² = C), the
  shrink η²λ̂ gives E‖w‖² ≈ C/(2λ̂) at every η, AdamW's ηλ gives ηC/(2λ). Simulated in
  NumPy, compared with the exact AR(1) variance η²C/(1 − (1 − s)²)."""
  rng = np.random.default_rng(0)
  c_dim, lam_hat, lam = 4000, 50.0, 0.5
  steady = {}
  for eta in (0.01, 0.04):
    for rule in ("lr_squared", "lr"):
      wd = scaling.lr_squared_weight_decay(lam_hat, eta) if rule == "lr_squared" else lam
      s = scaling.per_step_decay(eta, wd)
      w = np.zeros(c_dim)
      norms = []
      for t in range(int(12 / s) + 400):
        w = (1 - s) * w + eta * rng.normal(size=c_dim)
        if t >= int(10 / s):
          norms.append(w @ w)
      steady[rule, eta] = np.mean(norms)
      np.testing.assert_allclose(steady[rule, eta], eta ** 2 * c_dim / (1 - (1 - s) ** 2),
                                 rtol=0.03)
  np.testing.assert_allclose(steady["lr_squared", 0.04], steady["lr_squared", 0.01], rtol=0.05)
  np.testing.assert_allclose(steady["lr_squared", 0.01], c_dim / (2 * lam_hat), rtol=0.05)
  np.testing.assert_allclose(steady["lr", 0.04] / steady["lr", 0.01], 4.0, rtol=0.1)
  # and the library's own equilibrium formula agrees: √(ηC/(2λ)) with λ = λ̂η
  norms = [dynamics.equilibrium_norm("adamw", eta, scaling.lr_squared_weight_decay(lam_hat, eta),
                                     fan_in=c_dim) for eta in (1e-4, 1e-3, 1e-2)]
  np.testing.assert_allclose(norms, np.sqrt(c_dim / (2 * lam_hat)), rtol=1e-12)


def test_lr_squared_with_a_schedule_in_adamw():
  """With a schedule η_t, AdamW (c_t = η_t) removes η_t²·λ̂·w at every step."""
  sched = optax.linear_schedule(0.1, 0.05, 4)
  tx = wdjax.adamw(sched, weight_decay=scaling.lr_squared_weight_decay(2.0, sched), mask=None)
  p = {"w": jnp.ones(2)}
  state = tx.init(p)
  for t in range(3):
    u, state = tx.update({"w": jnp.zeros(2)}, state, p)
    np.testing.assert_allclose(u["w"], -float(sched(t)) ** 2 * 2.0, rtol=1e-6)


def test_rules_are_vmappable_and_checked():
  out = jax.vmap(lambda d: scaling.width_scaled(1e-3, 0.1, width=d, base_width=128.0,
                                                rule="sqrt_width").weight_decay)(
      jnp.array([128.0, 512.0]))
  np.testing.assert_allclose(out, [0.1, 0.2], rtol=1e-6)
  with pytest.raises(ValueError, match="rule"):
    scaling.width_scaled(1e-3, 0.1, width=256, base_width=128, rule="mup")
  with pytest.raises(ValueError, match="both"):
    scaling.batch_size_rule(0.1, batch_size=2, base_batch_size=1, learning_rate=1e-3)

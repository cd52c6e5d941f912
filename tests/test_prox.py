"""Prox operators against NumPy references, their optimality conditions and properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from wdjax import penalties, prox

# ---- independent NumPy references (DESIGN.md table) -------------------------------------


def np_soft(z, thr):
  return np.sign(z) * np.maximum(np.abs(z) - thr, 0.0)


def np_group(z, thr, group_axis=-1):
  axes = tuple(i for i in range(z.ndim) if i != group_axis % z.ndim)
  n = np.sqrt((z ** 2).sum(axis=axes, keepdims=True))
  with np.errstate(divide="ignore", invalid="ignore"):
    factor = np.where(n > 0, np.maximum(0.0, 1 - thr / np.where(n > 0, n, 1.0)), 0.0)
  return factor * z


def np_nuclear(z, thr):
  u, s, vt = np.linalg.svd(z, full_matrices=False)
  return (u * np.maximum(s - thr, 0)) @ vt


NP_REF = {
    "l2": lambda z, lam, t: z / (1 + t * lam),
    "l1": lambda z, lam, t: np_soft(z, t * lam),
    "elastic_net": lambda z, lam, t: np_soft(z, t * lam * 0.3) / (1 + t * lam * 0.7),
    "group_lasso": lambda z, lam, t: np_group(z, t * lam),
    "nuclear": lambda z, lam, t: np_nuclear(z, t * lam),
    "frobenius": lambda z, lam, t: z / (1 + t * lam),
}


def _enet_prox(z, s, t=1.0):
  return prox.elastic_net(z, s, t, l1_ratio=0.3)


def _enet_pen(w, s):
  return penalties.elastic_net(w, s, l1_ratio=0.3)


OPS = {
    "l2": (prox.l2, penalties.l2),
    "l1": (prox.l1, penalties.l1),
    "elastic_net": (_enet_prox, _enet_pen),
    "group_lasso": (prox.group_lasso, penalties.group_lasso),
    "nuclear": (prox.nuclear, penalties.nuclear),
    "frobenius": (prox.frobenius, penalties.frobenius),
}


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("lam,t", [(0.0, 1.0), (0.3, 1.0), (1.0, 0.5), (5.0, 2.0)])
def test_prox_matches_numpy_reference(name, lam, t, x64, strict_dtypes):
  z = np.random.default_rng(0).normal(size=(5, 4))
  got = np.asarray(OPS[name][0](jnp.asarray(z), lam, t))
  np.testing.assert_allclose(got, NP_REF[name](z, lam, t), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(OPS))
def test_prox_minimizes_its_objective(name, x64):
  """z⁺ = prox_{tR}(z) minimizes ½‖w − z‖² + tR(w): no perturbation does better."""
  op, pen = OPS[name]
  rng = np.random.default_rng(1)
  z, lam, t = jnp.asarray(rng.normal(size=(5, 4))), 0.7, 0.8
  obj = lambda w: 0.5 * jnp.sum((w - z) ** 2) + t * pen(w, lam)
  w_star = op(z, lam, t)
  best = obj(w_star)
  for scale in (1e-1, 1e-3, 1e-5):
    for _ in range(20):
      pert = w_star + scale * jnp.asarray(rng.normal(size=z.shape))
      assert obj(pert) >= best - 1e-12


def test_l1_prox_satisfies_subgradient_condition(x64):
  """(z − z⁺)/t ∈ λ∂‖z⁺‖₁: equals λ·sign where z⁺ ≠ 0, bounded by λ where z⁺ = 0."""
  rng = np.random.default_rng(2)
  z, lam, t = rng.normal(size=200), 0.5, 0.9
  zp = np.asarray(prox.l1(jnp.asarray(z), lam, t))
  g = (z - zp) / t
  nz = zp != 0
  np.testing.assert_allclose(g[nz], lam * np.sign(zp[nz]), rtol=1e-12)
  assert np.all(np.abs(g[~nz]) <= lam + 1e-12)
  assert (~nz).sum() > 0 and nz.sum() > 0


def test_l2_prox_gradient_is_zero(x64):
  """Smooth case: ∇_w [½‖w − z‖² + t(λ/2)‖w‖²] vanishes at prox_{tR}(z), via jax.grad."""
  z = jnp.asarray(np.random.default_rng(3).normal(size=(4, 3)))
  obj = lambda w: 0.5 * jnp.sum((w - z) ** 2) + 0.4 * penalties.l2(w, 1.5)
  np.testing.assert_allclose(jax.grad(obj)(prox.l2(z, 1.5, 0.4)), 0.0, atol=1e-12)


def test_group_lasso_prox_subgradient_condition(x64):
  rng = np.random.default_rng(4)
  z = rng.normal(size=(6, 8)) * np.array([0.1] * 4 + [2.0] * 4)  # 4 small, 4 large columns
  lam, t = 0.6, 1.0
  zp = np.asarray(prox.group_lasso(jnp.asarray(z), lam, t))
  g = (z - zp) / t
  norms = np.linalg.norm(zp, axis=0)
  for j in range(8):
    if norms[j] > 0:
      np.testing.assert_allclose(g[:, j], lam * zp[:, j] / norms[j], rtol=1e-10)
    else:
      assert np.linalg.norm(g[:, j]) <= lam + 1e-12
  assert (norms == 0).sum() == 4


def test_nuclear_prox_lowers_rank(x64):
  rng = np.random.default_rng(5)
  z = rng.normal(size=(8, 6))
  s = np.linalg.svd(z, compute_uv=False)
  thr = float(s[2])  # keeps exactly the two largest singular values
  zp = np.asarray(prox.nuclear(jnp.asarray(z), thr, 1.0))
  assert np.linalg.matrix_rank(zp, tol=1e-9) == 2


def test_per_leaf_strength_and_per_coordinate_scaling(x64):
  z = {"a": jnp.array([1.0, -3.0]), "b": jnp.array([0.5, 2.0])}
  out = prox.l1(z, {"a": 0.5, "b": 1.0}, {"a": jnp.array([1.0, 2.0]), "b": jnp.array([1.0, 1.0])})
  np.testing.assert_allclose(out["a"], [0.5, -2.0])
  np.testing.assert_allclose(out["b"], [0.0, 1.0])


def test_non_separable_prox_rejects_per_coordinate_scaling():
  with pytest.raises(ValueError, match="not separable"):
    prox.group_lasso(jnp.ones((2, 2)), 1.0, jnp.ones((2, 2)))


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_bad_strength_is_named(bad):
  with pytest.raises(ValueError, match="strength"):
    prox.l1(jnp.ones(3), bad)


def test_matrix_prox_rejects_vectors():
  with pytest.raises(ValueError, match="matrices"):
    prox.nuclear(jnp.ones(3), 1.0)


def test_prox_vmaps_over_strength():
  z = jnp.array([0.5, -2.0, 1.0])
  lams = jnp.array([0.0, 0.6, 3.0])
  got = jax.vmap(lambda lam: prox.l1(z, lam, 1.0))(lams)
  want = jnp.stack([prox.l1(z, float(l), 1.0) for l in lams])
  np.testing.assert_allclose(got, want, rtol=1e-6)


# ---- properties (hypothesis) ------------------------------------------------------------

# Normal floats only: XLA on GPUs flushes subnormals (|x| < 2.2e-308) to zero, so an
# identity such as x = prox(x) + (x - prox(x)) cannot hold there for x = 1e-313.
_mat = hnp.arrays(np.float64, (4, 3),
                  elements=st.floats(-10, 10, allow_nan=False, allow_subnormal=False))
_lam = st.floats(0.0, 5.0)
_t = st.floats(0.01, 3.0)


@settings(max_examples=40, deadline=None)
@given(x=_mat, y=_mat, lam=_lam, t=_t, name=st.sampled_from(sorted(OPS)))
def test_prox_is_non_expansive(x, y, lam, t, name):
  with jax.enable_x64(True):
    op = OPS[name][0]
    d = np.linalg.norm(np.asarray(op(jnp.asarray(x), lam, t)) - np.asarray(op(jnp.asarray(y), lam, t)))
    assert d <= np.linalg.norm(x - y) * (1 + 1e-9) + 1e-9


@settings(max_examples=30, deadline=None)
@given(x=_mat, t=_t, name=st.sampled_from(sorted(OPS)))
def test_zero_strength_is_identity(x, t, name):
  with jax.enable_x64(True):
    np.testing.assert_allclose(np.asarray(OPS[name][0](jnp.asarray(x), 0.0, t)), x, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(x=hnp.arrays(np.float32, 16, elements=st.floats(-2, 2, width=32)), lam=st.floats(0.01, 3.0))
def test_l1_gives_exact_zeros_below_threshold(x, lam):
  out = np.asarray(prox.l1(jnp.asarray(x), lam, 1.0))
  below = np.abs(x) <= lam
  assert np.all(out[below] == 0.0)
  assert np.all(out[~below] != 0.0)


@settings(max_examples=40, deadline=None)
@given(x=_mat, lam=_lam, t=_t)
def test_moreau_decomposition(x, lam, t):
  """z = prox_{tR}(z) + t·prox_{R*/t}(z/t); for norms, R* is the indicator of the dual ball."""
  with jax.enable_x64(True):
    z = jnp.asarray(x)
    r = t * lam
    # l1: dual ball is the ℓ∞ box of radius λ.
    np.testing.assert_allclose(prox.l1(z, lam, t) + np.clip(x, -r, r), x, atol=1e-9)
    # group lasso: dual ball is the ℓ2 ball of radius λ per group.
    n = np.linalg.norm(x, axis=0, keepdims=True)
    proj = x * np.minimum(1.0, r / np.where(n > 0, n, 1.0))
    np.testing.assert_allclose(prox.group_lasso(z, lam, t) + proj, x, atol=1e-9)
    # nuclear: dual ball is the spectral-norm ball of radius λ.
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(prox.nuclear(z, lam, t) + (u * np.minimum(s, r)) @ vt, x, atol=1e-8)
    # l2: R* = ‖y‖²/(2λ), whose scaled prox gives z·tλ/(1 + tλ).
    np.testing.assert_allclose(prox.l2(z, lam, t) + x * r / (1 + r), x, atol=1e-9)


# ---- complex leaves: the prox acts on the modulus ----------------------------------------

def np_complex_soft(z, thr):
  r = np.abs(z)
  return z * np.maximum(0.0, 1 - thr / np.where(r > 0, r, 1.0))


NP_COMPLEX_REF = {
    "l2": lambda z, lam, t: z / (1 + t * lam),
    "l1": lambda z, lam, t: np_complex_soft(z, t * lam),
    "elastic_net": lambda z, lam, t: np_complex_soft(z, t * lam * 0.3) / (1 + t * lam * 0.7),
    "group_lasso": lambda z, lam, t: z * np.maximum(
        0.0, 1 - t * lam / np.sqrt((np.abs(z) ** 2).sum(axis=0, keepdims=True))),
    "nuclear": lambda z, lam, t: np_nuclear(z, t * lam),
    "frobenius": lambda z, lam, t: z / (1 + t * lam),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_complex_prox_matches_numpy(name, x64, strict_dtypes):
  rng = np.random.default_rng(3)
  z = rng.normal(size=(4, 3)) + 1j * rng.normal(size=(4, 3))
  z[0, 0] = 0.05 + 0.05j  # below the l1 threshold: an exact zero
  got = OPS[name][0](jnp.asarray(z), 0.8, 0.5)
  assert got.dtype == jnp.complex128
  np.testing.assert_allclose(got, NP_COMPLEX_REF[name](z, 0.8, 0.5), rtol=1e-10, atol=1e-12)
  if name == "l1":
    assert got[0, 0] == 0


def test_complex_l1_prox_is_the_minimizer(x64):
  """w = prox(z) satisfies 0 = w − z + tλ·w/|w| where w ≠ 0, and |z| ≤ tλ where w = 0."""
  rng = np.random.default_rng(4)
  z = rng.normal(size=50) + 1j * rng.normal(size=50)
  w = np.asarray(prox.l1(jnp.asarray(z), 0.6, 1.5))
  nz = w != 0
  np.testing.assert_allclose(w[nz] - z[nz] + 0.9 * w[nz] / np.abs(w[nz]), 0, atol=1e-12)
  assert np.all(np.abs(z[~nz]) <= 0.9) and (~nz).any()


def test_complex64_prox_keeps_dtype_with_per_coordinate_scaling():
  z = jnp.asarray([1.0 + 1.0j, -0.1j], jnp.complex64)
  out = prox.l1(z, 1.0, jnp.asarray([0.5, 0.5], jnp.float32))
  assert out.dtype == jnp.complex64
  np.testing.assert_allclose(out, np_complex_soft(np.asarray(z), 0.5), rtol=1e-6)

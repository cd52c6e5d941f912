"""Penalty values against NumPy, their gradients, and behaviour under jit/vmap/grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wdjax import masks, penalties

RNG = np.random.default_rng(0)
PARAMS = {"dense": {"kernel": RNG.normal(size=(4, 3)), "bias": RNG.normal(size=3)},
          "out": {"kernel": RNG.normal(size=(3, 2))}}
MATS = {"a": RNG.normal(size=(4, 3)), "b": RNG.normal(size=(3, 5))}


def _np_leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


NP_VALUE = {
    "l2": lambda ls, lam: lam / 2 * sum((x ** 2).sum() for x in ls),
    "l1": lambda ls, lam: lam * sum(np.abs(x).sum() for x in ls),
    "elastic_net": lambda ls, lam: lam * sum(0.3 * np.abs(x).sum() + 0.7 / 2 * (x ** 2).sum() for x in ls),
    "group_lasso": lambda ls, lam: lam * sum(np.linalg.norm(x.reshape(-1, x.shape[-1]), axis=0).sum()
                                             for x in ls),
    "nuclear": lambda ls, lam: lam * sum(np.linalg.svd(x, compute_uv=False).sum() for x in ls),
    "frobenius": lambda ls, lam: lam / 2 * sum(np.linalg.norm(x, "fro") ** 2 for x in ls),
}
FNS = {
    "l2": penalties.l2, "l1": penalties.l1,
    "elastic_net": lambda p, s: penalties.elastic_net(p, s, l1_ratio=0.3),
    "group_lasso": penalties.group_lasso, "nuclear": penalties.nuclear,
    "frobenius": penalties.frobenius,
}


@pytest.mark.parametrize("name", sorted(FNS))
def test_value_matches_numpy(name, x64, strict_dtypes):
  tree = MATS if name in ("nuclear", "frobenius") else PARAMS
  got = FNS[name](jax.tree.map(jnp.asarray, tree), 0.37)
  np.testing.assert_allclose(got, NP_VALUE[name](_np_leaves(tree), 0.37), rtol=1e-12)


def test_gradients_are_the_documented_ones(x64):
  w = jnp.array([-2.0, 0.0, 3.0])
  np.testing.assert_allclose(jax.grad(penalties.l2)(w, 0.5), 0.5 * w)
  np.testing.assert_allclose(jax.grad(penalties.l1)(w, 0.5), [-0.5, 0.0, 0.5])  # 0 at 0
  k = jnp.array([[3.0, 0.0], [4.0, 0.0]])
  g = jax.grad(penalties.group_lasso)(k, 1.0)  # zero column: subgradient 0, not NaN
  np.testing.assert_allclose(g, [[0.6, 0.0], [0.8, 0.0]])


def test_frobenius_is_l2_on_a_kernel(x64):
  np.testing.assert_allclose(penalties.frobenius(MATS, 0.2), penalties.l2(MATS, 0.2), rtol=1e-14)


def test_per_leaf_strength(x64):
  tree = {"a": jnp.array([1.0, 2.0]), "b": jnp.array([3.0])}
  got = penalties.l2(tree, {"a": 1.0, "b": 0.0})
  np.testing.assert_allclose(got, 2.5)
  with pytest.raises(ValueError, match="structure of params"):
    penalties.l2(tree, {"a": 1.0})


def test_masked_selection_excludes_bias(x64):
  p = jax.tree.map(jnp.asarray, PARAMS)
  got = penalties.l2(masks.select(masks.weights_only, p), 1.0)
  want = 0.5 * ((PARAMS["dense"]["kernel"] ** 2).sum() + (PARAMS["out"]["kernel"] ** 2).sum())
  np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(FNS))
def test_jit_vmap_grad_over_strength(name):
  tree = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), MATS)
  fn = FNS[name]
  lams = jnp.array([0.0, 0.5, 2.0], jnp.float32)
  got = jax.jit(jax.vmap(lambda lam: fn(tree, lam)))(lams)
  want = np.array([float(fn(tree, float(l))) for l in lams])
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # R is linear in λ, so dR/dλ = R(w, 1).
  np.testing.assert_allclose(jax.grad(lambda lam: fn(tree, lam))(0.3), fn(tree, 1.0), rtol=1e-5)


def test_bfloat16_params_accumulate_in_float32():
  w = jnp.full((1000,), 0.01, jnp.bfloat16)
  v = penalties.l2(w, 1.0)
  assert v.dtype == jnp.float32
  np.testing.assert_allclose(v, 0.5 * 1000 * float(jnp.bfloat16(0.01)) ** 2, rtol=1e-3)


@pytest.mark.parametrize("bad,match", [(-0.1, ">= 0"), (float("nan"), "NaN"), (float("inf"), "infinite")])
def test_bad_strength(bad, match):
  with pytest.raises(ValueError, match=match):
    penalties.l2(jnp.ones(2), bad)


def test_l1_ratio_out_of_range():
  with pytest.raises(ValueError, match="l1_ratio"):
    penalties.elastic_net(jnp.ones(2), 1.0, l1_ratio=1.5)


# ---- complex parameters: real values, gradients in the real inner product ---------------

CPLX = {"a": RNG.normal(size=(4, 3)) + 1j * RNG.normal(size=(4, 3)),
        "b": RNG.normal(size=(3, 5)) + 1j * RNG.normal(size=(3, 5))}
NP_COMPLEX_VALUE = {  # |w| is the modulus; ‖W‖_* the sum of the singular values
    "l2": lambda ls, lam: lam / 2 * sum((np.abs(x) ** 2).sum() for x in ls),
    "l1": lambda ls, lam: lam * sum(np.abs(x).sum() for x in ls),
    "elastic_net": lambda ls, lam: lam * sum(0.3 * np.abs(x).sum() + 0.35 * (np.abs(x) ** 2).sum()
                                             for x in ls),
    "group_lasso": lambda ls, lam: lam * sum(np.sqrt((np.abs(x) ** 2).sum(axis=0)).sum() for x in ls),
    "nuclear": lambda ls, lam: lam * sum(np.linalg.svd(x, compute_uv=False).sum() for x in ls),
    "frobenius": lambda ls, lam: lam / 2 * sum(np.linalg.norm(x, "fro") ** 2 for x in ls),
}


@pytest.mark.parametrize("name", sorted(FNS))
def test_complex_value_is_real_and_matches_numpy(name, x64, strict_dtypes):
  got = FNS[name](jax.tree.map(jnp.asarray, CPLX), 0.37)
  assert not jnp.iscomplexobj(got)
  np.testing.assert_allclose(got, NP_COMPLEX_VALUE[name](list(CPLX.values()), 0.37), rtol=1e-10)


def test_complex_gradient_is_the_real_inner_product_one(x64):
  """conj(jax.grad R) (the update direction optax adds) against closed forms in NumPy:
  ∇ of (λ/2)|w|² is λw, of λ|w| is λw/|w|, of λ‖w_g‖ is λw/‖w_g‖."""
  w, lam = CPLX["a"], 0.3
  grad = lambda f: np.conj(np.asarray(jax.grad(lambda x: f(x, lam))(jnp.asarray(w))))
  np.testing.assert_allclose(grad(penalties.l2), lam * w, rtol=1e-12)
  np.testing.assert_allclose(grad(penalties.l1), lam * w / np.abs(w), rtol=1e-12)
  np.testing.assert_allclose(grad(penalties.group_lasso),
                             lam * w / np.sqrt((np.abs(w) ** 2).sum(axis=0)), rtol=1e-12)
  # the directional derivative of R along d equals Re⟨∇R, d⟩ (finite differences)
  d = RNG.normal(size=w.shape) + 1j * RNG.normal(size=w.shape)
  for f in (penalties.l2, penalties.l1, penalties.group_lasso, penalties.nuclear):
    fd = (float(f(jnp.asarray(w + 1e-6 * d), lam)) - float(f(jnp.asarray(w - 1e-6 * d), lam))) / 2e-6
    np.testing.assert_allclose(np.real(np.vdot(grad(f), d)), fd, rtol=1e-5)

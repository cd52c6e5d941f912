"""Models: shapes, parameter names under the default mask, dropout, dtypes, bad arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from wdjax import data, masks, models


def _params(m):
  return nnx.to_pure_dict(nnx.state(m, nnx.Param))


def _decayed(m):
  params = _params(m)
  return {"/".join(p): b for p, b in zip(masks.leaf_paths(params),
                                         jax.tree.leaves(masks.weights_only(params)))}


ALL = {
    "linear": lambda: models.LinearRegression(6, rngs=nnx.Rngs(0)),
    "softmax": lambda: models.SoftmaxRegression(6, 3, rngs=nnx.Rngs(0)),
    "mlp": lambda: models.MLP(6, (5, 4), 3, layernorm=True, dropout=0.2, rngs=nnx.Rngs(0)),
    "cnn": lambda: models.CNN((4, 4), 3, features=(2, 3), dense=5, rngs=nnx.Rngs(0)),
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_weights_only_decays_kernels_never_biases_or_norms(name):
  dec = _decayed(ALL[name]())
  kernels = [p for p in dec if p.endswith("kernel")]
  others = [p for p in dec if not p.endswith("kernel")]
  assert kernels and others
  assert all(dec[p] for p in kernels)
  assert not any(dec[p] for p in others)
  if name == "mlp":
    assert {"norms/0/scale", "norms/0/bias", "norms/1/scale"} <= set(others)


@pytest.mark.parametrize("name", sorted(ALL))
def test_output_shapes(name):
  out = ALL[name]()(jnp.ones((7, 16)) if name == "cnn" else jnp.ones((7, 6)))
  assert out.shape == (7, 1 if name == "linear" else 3)


def test_cnn_fits_digits_and_28x28():
  assert models.CNN((8, 8), 10, rngs=nnx.Rngs(0))(jnp.ones((2, 64))).shape == (2, 10)
  m = models.CNN((28, 28, 1), 10, rngs=nnx.Rngs(0))
  assert m(jnp.ones((2, 28, 28))).shape == (2, 10)
  assert m(jnp.ones((2, 28, 28, 1))).shape == (2, 10)
  assert m(jnp.ones((2, 784))).shape == (2, 10)


def test_dropout_only_in_training_and_keyed():
  m = models.MLP(6, (64,), 2, dropout=0.5, rngs=nnx.Rngs(0))
  x = jnp.ones((3, 6))
  np.testing.assert_array_equal(m(x), m(x, train=False, rngs=jax.random.key(1)))
  a = m(x, train=True, rngs=jax.random.key(1))
  np.testing.assert_array_equal(a, m(x, train=True, rngs=jax.random.key(1)))
  assert not np.allclose(a, m(x, train=True, rngs=jax.random.key(2)))
  assert not np.allclose(a, m(x))
  with pytest.raises(ValueError, match="rngs"):
    m(x, train=True)


def test_linear_init_matches_d2l():
  k = _params(models.LinearRegression(200, rngs=nnx.Rngs(0)))["linear"]
  assert float(jnp.std(k["kernel"])) == pytest.approx(0.01, rel=0.15)
  np.testing.assert_array_equal(k["bias"], 0.0)


def test_param_dtype_follows_x64(x64):
  del x64
  for m in (models.MLP(3, (4,), 2, layernorm=True, rngs=nnx.Rngs(0)),
            models.CNN((4, 4), 2, rngs=nnx.Rngs(0))):
    assert {l.dtype for l in jax.tree.leaves(_params(m))} == {jnp.dtype("float64")}
  m = models.LinearRegression(3, param_dtype=jnp.float32, rngs=nnx.Rngs(0))
  assert {l.dtype for l in jax.tree.leaves(_params(m))} == {jnp.dtype("float32")}


@pytest.mark.parametrize("make, match", [
    (lambda: models.MLP(3, (4,), 2, activation="swishy", rngs=nnx.Rngs(0)), "activation"),
    (lambda: models.MLP(3, (4,), 2, dropout=1.0, rngs=nnx.Rngs(0)), "dropout"),
    (lambda: models.MLP(3, (0,), 2, rngs=nnx.Rngs(0)), "widths"),
    (lambda: models.LinearRegression(0, rngs=nnx.Rngs(0)), "in_features"),
    (lambda: models.CNN((8,), 10, rngs=nnx.Rngs(0)), "image_shape"),
    (lambda: models.SoftmaxRegression(3, 0, rngs=nnx.Rngs(0)), "num_classes"),
])
def test_bad_arguments(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_for_dataset_fills_sizes():
  ds = data.sklearn_dataset("digits")
  m = models.for_dataset("mlp", ds, widths=(7,))(rngs=nnx.Rngs(0))
  assert m(ds.x_val[:2]).shape == (2, 10)
  assert models.for_dataset("cnn", ds)(rngs=nnx.Rngs(0))(ds.x_val[:2]).shape == (2, 10)
  reg = data.sklearn_dataset("diabetes")
  assert models.for_dataset("linear", reg)(rngs=nnx.Rngs(0))(reg.x_val).shape == (reg.x_val.shape[0], 1)
  with pytest.raises(ValueError, match="unknown model"):
    models.for_dataset("resnet", ds)


# ---- scale-invariant models (normalize=) -------------------------------------------------


def _loss_of(m, x):
  return float(jnp.sum(m(x) ** 2))


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("normalize", ["layer", "neuron"])
def test_hidden_kernels_are_scale_invariant_and_the_head_is_not(kind, normalize):
  make = ((lambda: models.MLP(6, (5, 4), 3, normalize=normalize, rngs=nnx.Rngs(0)))
          if kind == "mlp" else
          (lambda: models.CNN((4, 4), 3, features=(2, 3), dense=5, normalize=normalize,
                              rngs=nnx.Rngs(0))))
  x = jax.random.normal(jax.random.key(1), (7, 6 if kind == "mlp" else 16))
  m = make()
  params = _params(m)
  graphdef = nnx.split(m, nnx.Param, ...)[0]
  base = _loss_of(m, x)
  flat = {"/".join(p): leaf for p, leaf in zip(masks.leaf_paths(params), jax.tree.leaves(params))}
  head = "layers/2/kernel" if kind == "mlp" else "head/kernel"
  hidden = [k for k in flat if k.endswith("kernel") and k != head]
  assert hidden
  for name in hidden + [head]:
    # scale the whole kernel, and ("neuron") each neuron by its own factor
    c = (jnp.linspace(0.5, 3.0, flat[name].shape[-1]) if normalize == "neuron"
         else jnp.asarray(2.5))
    scaled = jax.tree_util.tree_map_with_path(
        lambda p, l: l * jnp.broadcast_to(c, l.shape) if "/".join(str(getattr(k, "key", k)) for k in p) == name else l,
        params)
    got = _loss_of(nnx.merge(graphdef, scaled), x)
    if name == head:
      assert not np.isclose(got, base, rtol=1e-3)
    else:
      # "neuron" is exact up to float32 rounding. "layer" is invariant up to LayerNorm's
      # ε/var(h), and the CNN normalizes over only 2-3 channels, where var(h) can be ~1e-3
      # at some positions: hence its looser bound (the head's change is ~100%).
      np.testing.assert_allclose(got, base, rtol=1e-4 if normalize == "neuron" else 3e-3)
  # no bias before a "layer" normalization (it would not scale with the kernel)
  if normalize == "layer":
    assert not any(k.endswith("bias") and k != head.replace("kernel", "bias") for k in flat)


def test_neuron_normalized_gradient_is_orthogonal_to_each_neuron():
  m = models.MLP(6, (5,), 3, normalize="neuron", rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(m, nnx.Param)
  x = jax.random.normal(jax.random.key(2), (9, 6))
  g = jax.grad(lambda p: jnp.sum(nnx.merge(graphdef, p)(x) ** 2))(params)
  w = np.asarray(params["layers"][0]["kernel"][...])
  gw = np.asarray(g["layers"][0]["kernel"][...])
  # ⟨∇_{w_j} L, w_j⟩ = 0 for every neuron (column): NumPy reference
  np.testing.assert_allclose(np.sum(gw * w, axis=0), 0.0, atol=1e-5 * np.abs(gw).max())


def test_normalize_default_is_unchanged_and_bad_values_fail():
  a = _params(models.MLP(6, (5,), 3, rngs=nnx.Rngs(0)))
  b = _params(models.MLP(6, (5,), 3, normalize=None, rngs=nnx.Rngs(0)))
  assert jax.tree.structure(a) == jax.tree.structure(b)
  with pytest.raises(ValueError, match="normalize"):
    models.MLP(6, (5,), 3, normalize="batch", rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="layernorm"):
    models.MLP(6, (5,), 3, normalize="layer", layernorm=True, rngs=nnx.Rngs(0))


# ------------------------------------------------ conv_as_matmul (the CNN's convolution)

_NHWC = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize("kernel,padding", [((3, 3), "SAME"), ((3, 3), "VALID"),
                                            ((2, 3), "SAME"), ((2, 3), "SAME_LOWER"),
                                            ((3, 1), ((1, 2), (0, 1)))])
def test_conv_as_matmul_matches_lax_conv_values_and_grads(kernel, padding):
  # the reference is XLA's own convolution, in float64 so that only the summation order
  # differs (1e-12); gradients through both, and under vmap with a batched kernel (the
  # sweep's case, where lax's version becomes a grouped convolution)
  from wdjax.layers import conv_as_matmul
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, 5, 6, 2)))
    k = jnp.asarray(rng.normal(size=kernel + (2, 4)))

    def f(conv, x, k):
      return jnp.sum(jnp.sin(conv(x, k, (1, 1), padding, dimension_numbers=_NHWC)))

    for conv_x_k in (lambda c: c(x, k, (1, 1), padding, dimension_numbers=_NHWC),
                     lambda c: jax.grad(f, argnums=(1, 2))(c, x, k)):
      ours, ref = conv_x_k(conv_as_matmul), conv_x_k(jax.lax.conv_general_dilated)
      for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    ks = jnp.stack([k, 2 * k, -k])
    ours = jax.vmap(lambda k: conv_as_matmul(x, k, (1, 1), padding, dimension_numbers=_NHWC))(ks)
    ref = jax.vmap(lambda k: jax.lax.conv_general_dilated(x, k, (1, 1), padding,
                                                          dimension_numbers=_NHWC))(ks)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_conv_as_matmul_hands_other_convolutions_to_lax():
  # strides, dilation, groups and other layouts are not its case: lax computes them
  from wdjax.layers import conv_as_matmul
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(2, 7, 7, 4)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(3, 3, 4, 4)), jnp.float32)
  xb, kb = jnp.concatenate([x, x]), k[:, :, :, :2]        # batch groups: 2 x 2 channels
  x1, k1 = x[:, :, 0, :], k[:, 0]                           # 1-D: (N, W, C), (W, I, O)
  xn = jnp.transpose(x, (0, 3, 1, 2))
  cases = [
      (x, k, (2, 2), "SAME", _NHWC, {}),
      (x, k, (1, 1), "SAME", _NHWC, dict(rhs_dilation=(2, 2))),
      (x, k[:, :, :2], (1, 1), "SAME", _NHWC, dict(feature_group_count=2)),
      (x, k, (1, 1), ((-1, 1), (1, 1)), _NHWC, {}),                # a negative pad crops
      (xb, kb, (1, 1), "SAME", _NHWC, dict(batch_group_count=2)),
      (x1, k1, (1,), "SAME", ("NWC", "WIO", "NWC"), {}),
      (xn, k, (1, 1), "SAME", ("NCHW", "HWIO", "NCHW"), {})]
  for lhs, rhs, strides, padding, dims, kw in cases:
    np.testing.assert_array_equal(
        conv_as_matmul(lhs, rhs, strides, padding, dimension_numbers=dims, **kw),
        jax.lax.conv_general_dilated(lhs, rhs, strides, padding, dimension_numbers=dims, **kw))


def test_cnn_uses_conv_as_matmul_and_keeps_nnx_conv_names():
  # the CNN's layers stay nnx.Conv (the default mask and checkpoints see the same
  # module types and parameter names); only the convolution routine is ours
  from wdjax.layers import conv_as_matmul
  m = models.CNN((8, 8), 10, rngs=nnx.Rngs(0))
  assert all(type(c) is nnx.Conv and c.conv_general_dilated is conv_as_matmul for c in m.convs)
  # and flax's call (ConvDimensionNumbers, unit dilations, out_sharding=None) takes the
  # matrix-product path, not the fallback
  def no_lax(*a, **k):
    raise AssertionError("conv_as_matmul fell back to lax.conv_general_dilated")
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(jax.lax, "conv_general_dilated", no_lax)
    assert m(jnp.ones((2, 64))).shape == (2, 10)
  x = jnp.asarray(np.random.default_rng(2).normal(size=(4, 64)), jnp.float32)
  ref_convs = [nnx.Conv(c.in_features, c.out_features, kernel_size=(3, 3), padding="SAME",
                        rngs=nnx.Rngs(0)) for c in m.convs]
  for r, c in zip(ref_convs, m.convs):
    r.kernel, r.bias = nnx.Param(c.kernel[...]), nnx.Param(c.bias[...])
  h = x.reshape(4, 8, 8, 1)
  np.testing.assert_allclose(m.convs[0](h), ref_convs[0](h), rtol=1e-5, atol=1e-5)


def test_conv_as_matmul_leaves_accelerators_to_xla(monkeypatch):
  # on a GPU/TPU the convolution stays XLA's (cuDNN), the measured path there
  from wdjax import layers
  calls = []
  monkeypatch.setattr(layers.jax, "default_backend", lambda: "gpu")
  monkeypatch.setattr(layers.jax.lax, "conv_general_dilated",
                      lambda *a, **k: calls.append(a) or "lax")
  assert layers.conv_as_matmul(jnp.ones((1, 4, 4, 1)), jnp.ones((3, 3, 1, 2)), (1, 1), "SAME",
                               dimension_numbers=_NHWC) == "lax"
  assert len(calls) == 1

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

"""Layers of `wdjax.models`: weight-normalized layers (each neuron computes
x·(w_j/‖w_j‖) + b_j, so its incoming weights are scale-invariant: the setting of the
equilibrium predictions in `wdjax.dynamics`; `wdjax.models.MLP` and `CNN` use them with
`normalize="neuron"`), and `conv_as_matmul`, the convolution of `models.CNN`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

def _dtype(param_dtype: Any) -> Any:
  """`param_dtype`, or JAX's default float (float32, float64 under x64) for None."""
  return jnp.dtype(param_dtype) if param_dtype is not None else jnp.zeros(()).dtype


#: The values of `normalize` (see the module docstring's table).
NORMALIZE = (None, "layer", "neuron")


def _check_normalize(normalize: Any) -> None:
  if normalize not in NORMALIZE:
    raise ValueError(f"normalize must be one of {NORMALIZE} (None: no scale-invariant "
                     f"weights), got {normalize!r}.")


def conv_as_matmul(lhs: jax.Array, rhs: jax.Array, window_strides: Any, padding: Any,
                   lhs_dilation: Any = None, rhs_dilation: Any = None,
                   dimension_numbers: Any = None, feature_group_count: int = 1,
                   precision: Any = None, preferred_element_type: Any = None,
                   **kwargs: Any) -> jax.Array:
  """`jax.lax.conv_general_dilated` for a 2-D NHWC/HWIO convolution with unit strides, as
  one matrix product of the image patches (im2col) with the kernel; any other convolution
  goes to `jax.lax.conv_general_dilated` unchanged. A drop-in for nnx.Conv's
  `conv_general_dilated=` argument:

    y[b, i, j, o] = Σ_{di, dj, c} x_pad[b, i + di, j + dj, c] · k[di, dj, c, o]

  Why: a sweep vmaps the model over the grid, and `vmap` of a convolution whose kernel is
  batched becomes one grouped convolution, which XLA:CPU runs far below its matrix-product
  rate; `vmap` of this function is a batched matrix product instead (the digits CNN sweep
  of `benchmarks/bench_sweep.py`: see benchmarks/README.md). The patches are 9 shifted
  slices of the padded input for a 3x3 kernel (kh·kw slices in general), concatenated on
  the channel axis in (di, dj, c) order, which is the kernel's own memory order. On a
  GPU or TPU (`jax.default_backend()`) it hands every convolution to XLA, whose cuDNN
  path ran the same sweep 10x faster than PyTorch's ensemble on an H200; the matmul form
  has not been measured there.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
    >>> k = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
    >>> ref = jax.lax.conv_general_dilated(x, k, (1, 1), "SAME",
    ...                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))
    >>> bool(jnp.allclose(conv_as_matmul(x, k, (1, 1), "SAME", dimension_numbers=(
    ...     "NHWC", "HWIO", "NHWC")), ref, atol=1e-5))
    True
  """
  def general():
    return jax.lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count, precision=precision,
        preferred_element_type=preferred_element_type, **kwargs)

  # its case: CPU backend, 2-D NHWC/HWIO, unit strides and dilations, no groups, no
  # sharding or batch groups, and a padding type or non-negative pairs
  if jax.default_backend() != "cpu" or lhs.ndim != 4 or rhs.ndim != 4:
    return general()
  try:
    dims = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
  except (TypeError, ValueError):
    return general()
  nhwc = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
  extra_ok = all((k == "out_sharding" and v is None) or (k == "batch_group_count" and v == 1)
                 for k, v in kwargs.items())
  if (dims != nhwc or feature_group_count != 1 or not extra_ok
      or any(s != 1 for s in window_strides)
      or any(v is not None and any(e != 1 for e in v) for v in (lhs_dilation, rhs_dilation))):
    return general()
  kh, kw, cin, cout = rhs.shape
  if isinstance(padding, str):   # "SAME", "SAME_LOWER", "VALID": lax's own pads
    try:
      pads = tuple(jax.lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), (1, 1), padding))
    except (RuntimeError, ValueError):
      return general()
  else:
    pads = tuple(tuple(p) for p in padding)
    if len(pads) != 2 or any(len(p) != 2 or min(p) < 0 for p in pads):
      return general()                              # (negative pads crop: lax's case)
  x = jnp.pad(lhs, ((0, 0),) + pads + ((0, 0),))
  h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  cols = jnp.concatenate([x[:, i:i + h, j:j + w, :] for i in range(kh) for j in range(kw)],
                         axis=-1)
  return jax.lax.dot_general(cols, rhs.reshape(kh * kw * cin, cout), (((3,), (0,)), ((), ())),
                             precision=precision, preferred_element_type=preferred_element_type)


def _unit_columns(kernel: jax.Array) -> jax.Array:
  """The kernel with each neuron's weights (the last axis indexes neurons) scaled to unit
  norm: w_j/‖w_j‖ for ‖w_j‖ ≥ 1e-10, w_j·1e10 below. A dead ReLU neuron gets no gradient
  and weight decay shrinks it geometrically; without the floor its norm underflows and
  the gradient of w/‖w‖ becomes inf·0 = NaN."""
  sq = jnp.sum(jnp.square(kernel), axis=tuple(range(kernel.ndim - 1)), keepdims=True)
  return kernel * jax.lax.rsqrt(jnp.maximum(sq, jnp.asarray(1e-20, kernel.dtype)))


class NormalizedLinear(nnx.Module):
  """A dense layer with per-neuron normalized weights: y_j = ⟨x, w_j/‖w_j‖⟩ + b_j.

  The output does not change when a column w_j of `kernel` (in, out) is scaled by c > 0,
  so ∇_{w_j}L ⊥ w_j: every neuron is scale-invariant. Parameters are named `kernel` and
  `bias` like `nnx.Linear`'s, so `wdjax.masks.weights_only` decays the kernel only.

  Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from wdjax import models
    >>> layer = models.NormalizedLinear(3, 2, rngs=nnx.Rngs(0))
    >>> x = jnp.ones((4, 3))
    >>> y = layer(x)
    >>> layer.kernel[...] = layer.kernel[...] * jnp.array([[2.0, 5.0]])  # scale each neuron
    >>> bool(jnp.allclose(layer(x), y, atol=1e-6))
    True
  """

  def __init__(self, in_features: int, out_features: int, *, param_dtype: Any = None,
               rngs: nnx.Rngs):
    dt = _dtype(param_dtype)
    init = nnx.initializers.lecun_normal()
    self.kernel = nnx.Param(init(rngs.params(), (in_features, out_features), dt))
    self.bias = nnx.Param(jnp.zeros((out_features,), dt))

  def __call__(self, x: jax.Array) -> jax.Array:
    y = x @ _unit_columns(self.kernel[...])
    return y + self.bias[...].reshape((1,) * (y.ndim - 1) + (-1,))


class NormalizedConv(nnx.Module):
  """A 3x3 "SAME" convolution with per-output-channel normalized kernels (unit norm over
  (kh, kw, in)) and a bias: each output channel's weights are scale-invariant.

  Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from wdjax import models
    >>> models.NormalizedConv(1, 4, rngs=nnx.Rngs(0))(jnp.ones((2, 8, 8, 1))).shape
    (2, 8, 8, 4)
  """

  def __init__(self, in_features: int, out_features: int, *, param_dtype: Any = None,
               rngs: nnx.Rngs):
    dt = _dtype(param_dtype)
    init = nnx.initializers.lecun_normal()
    self.kernel = nnx.Param(init(rngs.params(), (3, 3, in_features, out_features), dt))
    self.bias = nnx.Param(jnp.zeros((out_features,), dt))

  def __call__(self, x: jax.Array) -> jax.Array:
    y = conv_as_matmul(x, _unit_columns(self.kernel[...]), (1, 1), "SAME",
                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + self.bias[...].reshape(1, 1, 1, -1)

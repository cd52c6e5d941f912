"""Weight-normalized layers: each neuron computes x·(w_j/‖w_j‖) + b_j, so its incoming
weights are scale-invariant (the setting of the equilibrium predictions in
`wdjax.dynamics`). `wdjax.models.MLP` and `CNN` use them with `normalize="neuron"`.
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
    y = jax.lax.conv_general_dilated(x, _unit_columns(self.kernel[...]), (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + self.bias[...].reshape(1, 1, 1, -1)

"""Small Flax NNX models for regularization experiments: linear, softmax, MLP, CNN.

Every model is an `nnx.Module` called as `model(x, train=False, rngs=None)`: `train=True`
turns dropout on, with its randomness taken from `rngs` (an `nnx.Rngs` or a key) so that
training stays a pure function of (params, key). Parameters are named like Flax's own
layers (`kernel`, `bias`, `scale`) and normalization layers live under `norms`, so the
default mask `wdjax.masks.weights_only` decays every kernel and never a bias or a
LayerNorm parameter:

  >>> from flax import nnx
  >>> from wdjax import masks, models
  >>> model = models.MLP(4, (8,), 3, layernorm=True, rngs=nnx.Rngs(0))
  >>> params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  >>> _ = masks.describe(masks.weights_only, params)
    -------  layers/0/bias  (8,)  8  bias
    decayed  layers/0/kernel  (4, 8)  32  weight
    -------  layers/1/bias  (3,)  3  bias
    decayed  layers/1/kernel  (8, 3)  24  weight
    -------  norms/0/bias  (8,)  8  bias
    -------  norms/0/scale  (8,)  8  norm scale
  decayed: 2 leaves, 56 parameters; not decayed: 4 leaves, 27 parameters (bias: 3, norm scale: 1)

`param_dtype=None` (the default) means JAX's default float: float32, or float64 inside
`jax.enable_x64(True)` (what exact comparisons with scikit-learn need).

Scale-invariant models. `MLP(..., normalize=...)` and `CNN(..., normalize=...)` place a
normalization so that the hidden weights are scale-invariant: the loss does not change
when they are multiplied by c > 0, their gradient is orthogonal to them, and weight decay
then sets their norm and the angle each step rotates them, not the function (the
setting of `wdjax.dynamics.equilibrium_angle`). Which leaves are scale-invariant:

| normalize | hidden layer                                   | scale-invariant leaves          |
|-----------|------------------------------------------------|---------------------------------|
| None      | Linear/Conv with bias (→ LayerNorm if asked)   | none                            |
| "layer"   | Linear/Conv without bias → LayerNorm without   | each hidden kernel as a whole   |
|           | scale or bias (no parameters)                  | (not each neuron)               |
| "neuron"  | x·(w_j/‖w_j‖) + b_j: each neuron's weight      | each neuron (column, while      |
|           | vector normalized in the forward pass          | ‖w_j‖ ≥ 1e-10) of each hidden   |
|           |                                                | kernel, hence the whole kernel  |

The head (the last Linear) is never scale-invariant: the size of the logits matters.
Biases are not either, and are not decayed. "neuron" is weight normalization without its
gain (Salimans & Kingma 2016): the per-neuron angles and norms of `wdjax.tracking` then
follow the per-neuron predictions exactly; with "layer" only the whole kernel's do.

`MODELS` maps a name ("linear", "softmax", "mlp", "cnn") to its class, for configs.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from wdjax._validate import positive_int as _positive_int
from wdjax.layers import NORMALIZE  # noqa: F401  (the values of `normalize`, documented here)
from wdjax.layers import (NormalizedConv, NormalizedLinear, _check_normalize, _dtype,
                          conv_as_matmul)

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "silu": jax.nn.silu,
    "elu": jax.nn.elu,
    "identity": lambda x: x,
}


def _activation(activation: str | Callable[[jax.Array], jax.Array]) -> Callable:
  if callable(activation):
    return activation
  if activation not in ACTIVATIONS:
    raise ValueError(f"unknown activation {activation!r}; use one of {sorted(ACTIVATIONS)} "
                     "or pass a function.")
  return ACTIVATIONS[activation]


def _flat(x: jax.Array) -> jax.Array:
  return x.reshape(x.shape[0], -1)


class _Affine(nnx.Module):
  """flat(x)·W + b held as `self.linear` (params linear/kernel, linear/bias): the body of
  LinearRegression and SoftmaxRegression, which differ in the kernel's initialization."""

  def __init__(self, in_features: int, out_features: int, out_name: str, kernel_init: Any,
               param_dtype: Any, rngs: nnx.Rngs):
    _positive_int("in_features", in_features)
    _positive_int(out_name, out_features)
    self.linear = nnx.Linear(in_features, out_features, kernel_init=kernel_init,
                             param_dtype=_dtype(param_dtype), rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool = False, rngs: Any = None) -> jax.Array:
    del train, rngs
    return self.linear(_flat(x))


class LinearRegression(_Affine):
  """Linear regression ŷ = x·w + b (the D2L model: w ~ N(0, σ²), b = 0 at init).

  Args:
    in_features: number of input features (inputs of any shape are flattened).
    out_features: number of targets (1 for scalar regression).
    init_std: σ of the normal initialization of the kernel (D2L uses 0.01).
    param_dtype: dtype of the parameters (None: JAX's default float).
    rngs: `nnx.Rngs` for the initialization.

  Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from wdjax import models
    >>> models.LinearRegression(3, rngs=nnx.Rngs(0))(jnp.ones((2, 3))).shape
    (2, 1)
  """

  def __init__(self, in_features: int, out_features: int = 1, *, init_std: float = 0.01,
               param_dtype: Any = None, rngs: nnx.Rngs):
    super().__init__(in_features, out_features, "out_features",
                     nnx.initializers.normal(init_std), param_dtype, rngs)


class SoftmaxRegression(_Affine):
  """Multinomial logistic regression: logits = x·W + b (2 classes: logistic regression).

  Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from wdjax import models
    >>> models.SoftmaxRegression(64, 10, rngs=nnx.Rngs(0))(jnp.ones((5, 64))).shape
    (5, 10)
  """

  def __init__(self, in_features: int, num_classes: int, *, param_dtype: Any = None,
               rngs: nnx.Rngs):
    super().__init__(in_features, num_classes, "num_classes", nnx.initializers.zeros,
                     param_dtype, rngs)


class MLP(nnx.Module):
  """A multilayer perceptron: [Linear → (LayerNorm) → activation → (Dropout)]* → Linear.

  Args:
    in_features: input size (inputs of any shape are flattened).
    widths: hidden layer widths, e.g. (128,) or (256, 256); () is a linear model.
    out_features: output size (classes or targets).
    activation: a name in `ACTIVATIONS` or a function.
    layernorm: apply LayerNorm after each hidden Linear (its scale/bias are not decayed).
    dropout: dropout rate after each hidden activation, active only with `train=True`.
    normalize: None, "layer" (hidden Linear without bias → LayerNorm without scale or
      bias: each hidden kernel is scale-invariant as a whole) or "neuron"
      (`NormalizedLinear`: each neuron of each hidden kernel is scale-invariant); see the
      module docstring. Not combined with `layernorm`.
    param_dtype: dtype of the parameters (None: JAX's default float).
    rngs: `nnx.Rngs` for the initialization.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from flax import nnx
    >>> from wdjax import models
    >>> m = models.MLP(64, (16,), 10, dropout=0.5, rngs=nnx.Rngs(0))
    >>> m(jnp.ones((2, 64)), train=True, rngs=jax.random.key(1)).shape
    (2, 10)
    >>> si = models.MLP(64, (16,), 10, normalize="neuron", rngs=nnx.Rngs(0))
    >>> sorted(nnx.to_pure_dict(nnx.state(si, nnx.Param))["layers"][0])
    ['bias', 'kernel']
  """

  def __init__(self, in_features: int, widths: Sequence[int], out_features: int, *,
               activation: str | Callable[[jax.Array], jax.Array] = "relu",
               layernorm: bool = False, dropout: float = 0.0,
               normalize: str | None = None, param_dtype: Any = None, rngs: nnx.Rngs):
    _positive_int("in_features", in_features)
    _positive_int("out_features", out_features)
    widths = tuple(widths)
    for w in widths:
      _positive_int("each of widths", w)
    if not 0.0 <= dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    _check_normalize(normalize)
    if normalize and layernorm:
      raise ValueError("normalize= places its own normalization; drop layernorm=True (its "
                       "learnable scale and the Linear's bias would undo the invariance).")
    dt = _dtype(param_dtype)
    sizes = (in_features,) + widths + (out_features,)
    self.activation = _activation(activation)
    hidden = list(zip(sizes[:-2], sizes[1:-1]))
    if normalize == "neuron":
      layers = [NormalizedLinear(a, b, param_dtype=dt, rngs=rngs) for a, b in hidden]
    else:  # "layer": no bias, or a bias would not scale with the kernel
      layers = [nnx.Linear(a, b, use_bias=normalize is None, param_dtype=dt, rngs=rngs)
                for a, b in hidden]
    self.layers = nnx.List(layers + [nnx.Linear(sizes[-2], sizes[-1], param_dtype=dt,
                                                rngs=rngs)])
    if normalize == "layer":
      norms = [nnx.LayerNorm(w, use_scale=False, use_bias=False, param_dtype=dt, rngs=rngs)
               for w in widths]
    else:
      norms = [nnx.LayerNorm(w, param_dtype=dt, rngs=rngs) for w in widths] if layernorm else []
    self.norms = nnx.List(norms)
    self.dropout = nnx.Dropout(dropout) if dropout > 0 else None

  def __call__(self, x: jax.Array, *, train: bool = False, rngs: Any = None) -> jax.Array:
    h = _flat(x)
    for i, layer in enumerate(self.layers[:-1]):
      h = layer(h)
      if len(self.norms):  # layernorm=True, or normalize="layer" (LayerNorm, no parameters)
        h = self.norms[i](h)
      h = self.activation(h)
      if self.dropout is not None:
        h = self.dropout(h, deterministic=not train, rngs=_dropout_rngs(rngs, train, i))
    return self.layers[-1](h)


def _dropout_rngs(rngs: Any, train: bool, i: int) -> Any:
  if not train:
    return None
  if rngs is None:
    raise ValueError("dropout with train=True needs rngs= (an nnx.Rngs or a PRNG key).")
  if isinstance(rngs, nnx.Rngs):
    return rngs
  return jax.random.fold_in(rngs, i)


class CNN(nnx.Module):
  """A small convolutional classifier: [Conv 3x3 → ReLU → AvgPool 2x2]* → Linear.

  Inputs of shape (batch, H·W·C), (batch, H, W) or (batch, H, W, C) are reshaped to
  `image_shape`, so flattened 8x8 digits and 28x28 images both work.

  Args:
    image_shape: (H, W) or (H, W, C) of one example, e.g. (8, 8) or (28, 28, 1).
    num_classes: number of output classes.
    features: channels of each conv layer; each layer halves H and W (rounded up).
    dense: width of a hidden dense layer before the head (0: none).
    normalize: None, "layer" (conv/dense without bias → LayerNorm over channels without
      scale or bias: each hidden kernel scale-invariant as a whole) or "neuron"
      (`NormalizedConv`/`NormalizedLinear`: each output channel's weights
      scale-invariant); the head is not. See the module docstring.
    param_dtype: dtype of the parameters (None: JAX's default float).
    rngs: `nnx.Rngs` for the initialization.

  Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from wdjax import models
    >>> models.CNN((8, 8), 10, rngs=nnx.Rngs(0))(jnp.ones((2, 64))).shape
    (2, 10)
    >>> models.CNN((8, 8), 10, normalize="layer", rngs=nnx.Rngs(0))(jnp.ones((2, 64))).shape
    (2, 10)
    >>> models.CNN((28, 28, 1), 10, rngs=nnx.Rngs(0))(jnp.ones((2, 28, 28))).shape
    (2, 10)
  """

  def __init__(self, image_shape: Sequence[int], num_classes: int, *,
               features: Sequence[int] = (8, 16), dense: int = 0,
               normalize: str | None = None, param_dtype: Any = None, rngs: nnx.Rngs):
    image_shape = tuple(image_shape)
    if len(image_shape) == 2:
      image_shape = image_shape + (1,)
    if len(image_shape) != 3:
      raise ValueError(f"image_shape must be (H, W) or (H, W, C), got {image_shape}.")
    for s in image_shape:
      _positive_int("each of image_shape", s)
    _positive_int("num_classes", num_classes)
    _check_normalize(normalize)
    dt = _dtype(param_dtype)
    self.image_shape = image_shape
    self.normalize = normalize
    chans = (image_shape[2],) + tuple(features)
    pairs = list(zip(chans[:-1], chans[1:]))
    if normalize == "neuron":
      self.convs = nnx.List([NormalizedConv(a, b, param_dtype=dt, rngs=rngs) for a, b in pairs])
    else:
      # conv_as_matmul: vmapped over a sweep's grid, a batched matrix product rather
      # than XLA's grouped convolution (the digits CNN sweep 5x faster on a CPU)
      self.convs = nnx.List([nnx.Conv(a, b, kernel_size=(3, 3), padding="SAME",
                                      use_bias=normalize is None, param_dtype=dt,
                                      conv_general_dilated=conv_as_matmul, rngs=rngs)
                             for a, b in pairs])
    h, w = image_shape[:2]
    for _ in features:
      h, w = math.ceil(h / 2), math.ceil(w / 2)
    flat = h * w * chans[-1]
    if not dense:
      self.hidden = None
    elif normalize == "neuron":
      self.hidden = NormalizedLinear(flat, dense, param_dtype=dt, rngs=rngs)
    else:
      self.hidden = nnx.Linear(flat, dense, use_bias=normalize is None, param_dtype=dt,
                               rngs=rngs)
    self.head = nnx.Linear(dense or flat, num_classes, param_dtype=dt, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool = False, rngs: Any = None) -> jax.Array:
    del train, rngs
    h = x.reshape((x.shape[0],) + self.image_shape)
    for conv in self.convs:
      h = jax.nn.relu(self._norm(conv(h)))
      h = nnx.avg_pool(h, window_shape=(2, 2), strides=(2, 2), padding="SAME")
    h = _flat(h)
    if self.hidden is not None:
      h = jax.nn.relu(self._norm(self.hidden(h)))
    return self.head(h)

  def _norm(self, h: jax.Array) -> jax.Array:
    # "layer": LayerNorm over the channels (last axis) without scale or bias, so scaling
    # a kernel by c scales its outputs by c and the normalization removes it.
    if self.normalize != "layer":
      return h
    mu = jnp.mean(h, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(h - mu), axis=-1, keepdims=True)
    return (h - mu) * jax.lax.rsqrt(var + 1e-6)


MODELS: dict[str, type] = {
    "linear": LinearRegression,
    "softmax": SoftmaxRegression,
    "mlp": MLP,
    "cnn": CNN,
}


def for_dataset(name: str, dataset: Any, **kwargs: Any) -> Callable[..., nnx.Module]:
  """A factory `rngs -> model` for `dataset`, with input and output sizes filled in.

  `name` is a key of `MODELS`; `kwargs` are the model's other arguments (e.g.
  `widths=(128,)` for "mlp", `image_shape=(8, 8)` for "cnn"). Pass the factory as the
  `model` of `wdjax.train.make_train_fn` so each seed of a sweep gets its own init.

  Example:
    >>> from flax import nnx
    >>> from wdjax import data, models
    >>> ds = data.d2l_synthetic(dim=5)
    >>> make = models.for_dataset("linear", ds)
    >>> make(rngs=nnx.Rngs(0)).linear.kernel.shape
    (5, 1)
  """
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; use one of {sorted(MODELS)}.")
  in_features = int(math.prod(dataset.x_train.shape[1:]))
  if dataset.task == "classification":
    out = int(dataset.num_classes)
  else:
    out = 1 if dataset.y_train.ndim == 1 else int(dataset.y_train.shape[1])
  cls = MODELS[name]
  if name in ("linear", "softmax"):
    return lambda *, rngs: cls(in_features, out, rngs=rngs, **kwargs)
  if name == "mlp":
    kw = dict(kwargs)
    widths = kw.pop("widths", (128,))
    return lambda *, rngs: cls(in_features, widths, out, rngs=rngs, **kw)
  kw = dict(kwargs)
  shape = kw.pop("image_shape", None) or tuple(dataset.x_train.shape[1:])
  if len(shape) == 1:
    side = math.isqrt(shape[0])
    if side * side != shape[0]:
      raise ValueError(f"cnn needs image_shape= for inputs of shape {shape} (not square).")
    shape = (side, side)
  return lambda *, rngs: cls(shape, out, rngs=rngs, **kw)

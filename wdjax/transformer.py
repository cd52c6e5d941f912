"""A small decoder-only transformer (Flax NNX) for weight-decay studies on language models.

`Transformer(vocab_size, context, d_model, num_layers, num_heads, ...)` maps int tokens
(batch, T) to next-token logits (batch, T, vocab): token + learned position embeddings,
`num_layers` pre-norm blocks x ← x + Attn(Norm(x)), x ← x + MLP(Norm(x)) with causal
multi-head self-attention, a final norm and a head (or the token embedding transposed,
`tie_embeddings=True`). It is sized for CPUs: the default (d=32, 2 layers, T=32, bytes)
has ~43k parameters and trains on two cores in seconds to minutes.

Parameters are named as researchers' masks expect (GPT-2 / nanoGPT): kernels `kernel`,
biases `bias`, normalization parameters `scale`/`bias` under modules named `norm*`, and
embedding tables `embedding`, so `wdjax.masks.weights_only` decays the kernels and the
embeddings and never a bias or a norm parameter, and `weights_only(embeddings=False)`
leaves the embeddings out too (nanoGPT decays its 2-D tensors only: the kernels and the
embeddings):

  >>> from flax import nnx
  >>> from wdjax import masks, transformer
  >>> model = transformer.Transformer(num_layers=1, d_model=8, num_heads=2, context=4,
  ...                                 rngs=nnx.Rngs(0))
  >>> params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  >>> _ = masks.describe(masks.weights_only(embeddings=False), params)  # doctest: +ELLIPSIS
    -------  blocks/0/attn/proj/bias  (8,)  8  bias
    decayed  blocks/0/attn/proj/kernel  (8, 8)  64  weight
  ...
    -------  embed/embedding  (256, 8)  2048  embedding
  ...
    -------  norm_f/scale  (8,)  8  norm scale
    -------  pos_embed/embedding  (4, 8)  32  embedding
  decayed: 5 leaves, ...

The model is called as `model(tokens, train=False, rngs=None)` like `wdjax.models` (no
dropout: training stays a pure function of the params), so `wdjax.train.make_train_fn`
trains it; its loss is `lm_loss`, the per-token cross-entropy (pass `loss=lm_loss`).

References:
  Radford et al, Language Models are Unsupervised Multitask Learners (GPT-2), 2019.
  Karpathy, nanoGPT, 2023. https://github.com/karpathy/nanoGPT
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from wdjax._validate import positive_int

NORMS = ("layer", "rms")


def _dtype(param_dtype: Any) -> Any:
  return jnp.dtype(param_dtype) if param_dtype is not None else jnp.zeros(()).dtype


def _norm(kind: str, d: int, dtype: Any, rngs: nnx.Rngs) -> nnx.Module:
  if kind == "layer":
    return nnx.LayerNorm(d, param_dtype=dtype, dtype=dtype, rngs=rngs)
  return nnx.RMSNorm(d, param_dtype=dtype, dtype=dtype, rngs=rngs)


def _linear(d_in: int, d_out: int, use_bias: bool, dtype: Any, rngs: nnx.Rngs,
            std: float = 0.02) -> nnx.Linear:
  # GPT-2's initialization: N(0, 0.02²) kernels, zero biases.
  return nnx.Linear(d_in, d_out, use_bias=use_bias, param_dtype=dtype, dtype=dtype,
                    kernel_init=nnx.initializers.normal(std), rngs=rngs)


def causal_mask(t: int) -> jax.Array:
  """(t, t) bools: position i may attend to j iff j ≤ i.

  Example:
    >>> from wdjax import transformer
    >>> transformer.causal_mask(3).astype(int).tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
  """
  return jnp.tril(jnp.ones((t, t), bool))


class CausalSelfAttention(nnx.Module):
  """Multi-head self-attention where position t sees positions ≤ t.

  softmax(Q Kᵀ/√d_head + M) V per head, M = −∞ above the diagonal; Q, K, V from one
  fused (d, 3d) kernel `qkv`, the heads recombined by `proj`.
  """

  def __init__(self, d_model: int, num_heads: int, *, use_bias: bool = True,
               param_dtype: Any = None, proj_std: float = 0.02, rngs: nnx.Rngs):
    if d_model % num_heads:
      raise ValueError(f"d_model={d_model} must be a multiple of num_heads={num_heads}.")
    dt = _dtype(param_dtype)
    self.num_heads = num_heads
    self.qkv = _linear(d_model, 3 * d_model, use_bias, dt, rngs)
    self.proj = _linear(d_model, d_model, use_bias, dt, rngs, proj_std)

  def __call__(self, x: jax.Array) -> jax.Array:
    b, t, d = x.shape
    h = self.num_heads
    q, k, v = jnp.split(self.qkv(x), 3, axis=-1)
    q, k, v = (a.reshape(b, t, h, d // h) for a in (q, k, v))
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.asarray(d // h, x.dtype))
    scores = jnp.where(causal_mask(t)[None, None], scores, jnp.finfo(scores.dtype).min)
    att = jax.nn.softmax(scores, axis=-1)
    return self.proj(jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, t, d))


class MLP(nnx.Module):
  """GELU(x W_fc + b_fc) W_proj + b_proj, hidden width `mlp_ratio`·d."""

  def __init__(self, d_model: int, hidden: int, *, use_bias: bool = True,
               param_dtype: Any = None, proj_std: float = 0.02, rngs: nnx.Rngs):
    dt = _dtype(param_dtype)
    self.fc = _linear(d_model, hidden, use_bias, dt, rngs)
    self.proj = _linear(hidden, d_model, use_bias, dt, rngs, proj_std)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.proj(jax.nn.gelu(self.fc(x)))


class Block(nnx.Module):
  """Pre-norm residual block: x + Attn(norm1(x)), then + MLP(norm2(·))."""

  def __init__(self, d_model: int, num_heads: int, mlp_ratio: int, norm: str, *,
               use_bias: bool = True, param_dtype: Any = None, proj_std: float = 0.02,
               rngs: nnx.Rngs):
    dt = _dtype(param_dtype)
    self.norm1 = _norm(norm, d_model, dt, rngs)
    self.attn = CausalSelfAttention(d_model, num_heads, use_bias=use_bias, param_dtype=dt,
                                    proj_std=proj_std, rngs=rngs)
    self.norm2 = _norm(norm, d_model, dt, rngs)
    self.mlp = MLP(d_model, mlp_ratio * d_model, use_bias=use_bias, param_dtype=dt,
                   proj_std=proj_std, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x + self.attn(self.norm1(x))
    return x + self.mlp(self.norm2(x))


class Transformer(nnx.Module):
  """A decoder-only (GPT-style) transformer: tokens (batch, T) -> logits (batch, T, vocab).

  logits = head(norm_f(blocks(E[tokens] + P[0..T-1]))), head = Eᵀ with tied embeddings.
  The residual projections start at N(0, (0.02/√(2L))²), GPT-2's scaling.

  Args:
    vocab_size: number of token ids (256 for bytes).
    context: the longest sequence T (the size of the position table).
    d_model: width d of the residual stream.
    num_layers: number of blocks L.
    num_heads: attention heads (d must be a multiple).
    mlp_ratio: MLP hidden width / d.
    norm: "layer" (LayerNorm: scale and bias) or "rms" (RMSNorm: scale only).
    tie_embeddings: the head is the token embedding transposed (no `head` kernel).
    use_bias: biases in the linear layers.
    param_dtype: float dtype of the parameters (None: JAX's default float).
    rngs: `nnx.Rngs` for the initialization.

  Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from wdjax import transformer
    >>> m = transformer.Transformer(num_layers=1, d_model=16, context=8, rngs=nnx.Rngs(0))
    >>> m(jnp.zeros((2, 8), jnp.int32)).shape
    (2, 8, 256)
  """

  def __init__(self, vocab_size: int = 256, context: int = 32, d_model: int = 32,
               num_layers: int = 2, num_heads: int = 4, mlp_ratio: int = 4,
               norm: str = "layer", tie_embeddings: bool = False, use_bias: bool = True,
               param_dtype: Any = None, *, rngs: nnx.Rngs):
    for name, v in (("vocab_size", vocab_size), ("context", context), ("d_model", d_model),
                    ("num_layers", num_layers), ("num_heads", num_heads),
                    ("mlp_ratio", mlp_ratio)):
      positive_int(name, v)
    if norm not in NORMS:
      raise ValueError(f"norm must be one of {NORMS}, got {norm!r}.")
    dt = _dtype(param_dtype)
    self.context = context
    self.tie_embeddings = tie_embeddings
    init = nnx.initializers.normal(0.02)
    self.embed = nnx.Embed(vocab_size, d_model, param_dtype=dt, dtype=dt,
                           embedding_init=init, rngs=rngs)
    self.pos_embed = nnx.Embed(context, d_model, param_dtype=dt, dtype=dt,
                               embedding_init=init, rngs=rngs)
    proj_std = 0.02 / math.sqrt(2 * num_layers)
    self.blocks = nnx.List([Block(d_model, num_heads, mlp_ratio, norm, use_bias=use_bias,
                                  param_dtype=dt, proj_std=proj_std, rngs=rngs)
                            for _ in range(num_layers)])
    self.norm_f = _norm(norm, d_model, dt, rngs)
    if not tie_embeddings:
      self.head = _linear(d_model, vocab_size, False, dt, rngs)

  def __call__(self, tokens: jax.Array, train: bool = False, rngs: Any = None) -> jax.Array:
    del train, rngs  # no dropout: the signature of wdjax.models
    t = tokens.shape[-1]
    if t > self.context:
      raise ValueError(f"sequence length {t} exceeds the context {self.context}.")
    pos = self.pos_embed(jnp.arange(t)).reshape((1,) * (tokens.ndim - 1) + (t, -1))
    x = self.embed(tokens) + pos
    for block in self.blocks:
      x = block(x)
    x = self.norm_f(x)
    return self.embed.attend(x) if self.tie_embeddings else self.head(x)


def lm_loss(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean over batch and positions of the next-token cross-entropy, in nats per token.

  L = −(1/(B·T)) Σ_{b,t} log softmax(logits[b, t])[targets[b, t]]; ln 256 ≈ 5.545 for a
  uniform guess over bytes. Pass it as `make_train_fn(..., loss=lm_loss)`.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import transformer
    >>> round(float(transformer.lm_loss(jnp.zeros((1, 3, 256)), jnp.zeros((1, 3), jnp.int32))), 3)
    5.545
  """
  if logits.shape[:-1] != targets.shape:
    raise ValueError(f"logits {logits.shape} do not match targets {targets.shape} "
                     "(expected (..., vocab) and (...)).")
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, targets))


def factory(**kwargs: Any):
  """`rngs -> Transformer(**kwargs, rngs=rngs)`: each key of a sweep its own initialization.

  Example:
    >>> from flax import nnx
    >>> from wdjax import transformer
    >>> make = transformer.factory(d_model=8, num_layers=1, num_heads=2, context=4)
    >>> make(rngs=nnx.Rngs(0)).context
    4
  """
  def make(rngs: nnx.Rngs) -> Transformer:
    return Transformer(**kwargs, rngs=rngs)
  return make


def hidden_matrices(params: Any) -> Any:
  """The mask of the blocks' kernels (attention and MLP), not the embeddings or the head.

  The leaves Muon orthogonalizes in nanoGPT speedruns and whose width scaling μP
  prescribes as "hidden"; pass it as `wdjax.muon(..., muon_weight_dimension_numbers=...)`
  through `muon_dimension_numbers`.

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import transformer
    >>> p = {"blocks": {"0": {"mlp": {"fc": {"kernel": jnp.ones((2, 8)), "bias": jnp.ones(8)}}}},
    ...      "embed": {"embedding": jnp.ones((5, 2))}}
    >>> transformer.hidden_matrices(p)
    {'blocks': {'0': {'mlp': {'fc': {'bias': False, 'kernel': True}}}}, 'embed': {'embedding': False}}
  """
  flat, treedef = jax.tree_util.tree_flatten_with_path(params)
  keep = []
  for path, leaf in flat:
    names = [str(getattr(k, "key", getattr(k, "idx", k))) for k in path]
    keep.append(bool(names and names[0] == "blocks" and names[-1] == "kernel"
                     and jnp.ndim(leaf) == 2))
  return jax.tree_util.tree_unflatten(treedef, keep)


def muon_dimension_numbers(params: Any) -> Any:
  """`optax.contrib.MuonDimensionNumbers()` on `hidden_matrices`, None elsewhere (Adam).

  Example:
    >>> import jax.numpy as jnp
    >>> from wdjax import transformer
    >>> d = transformer.muon_dimension_numbers({"blocks": {"k": {"kernel": jnp.ones((2, 2))}},
    ...                                         "head": {"kernel": jnp.ones((2, 3))}})
    >>> d["head"]["kernel"] is None, d["blocks"]["k"]["kernel"] is not None
    (True, True)
  """
  return jax.tree.map(lambda m: optax.contrib.MuonDimensionNumbers() if m else None,
                      hidden_matrices(params))


def num_params(model: nnx.Module) -> int:
  """The number of trainable parameters.

  Example:
    >>> from flax import nnx
    >>> from wdjax import transformer
    >>> transformer.num_params(transformer.Transformer(rngs=nnx.Rngs(0)))
    42880
  """
  return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))

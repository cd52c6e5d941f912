"""The byte-level transformer and the stdlib corpus: causality, shapes, masks, the corpus
digest, and a tiny training run through make_train_fn / sweep.run that lowers the loss."""

from __future__ import annotations

import hashlib
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from wdjax import corpus, masks, optimizers, sweep, train, transformer

TINY = dict(context=8, d_model=16, num_layers=2, num_heads=2)


@pytest.fixture(scope="module")
def model():
  return transformer.Transformer(**TINY, rngs=nnx.Rngs(0))


def test_shapes_and_tied_head():
  m = transformer.Transformer(**TINY, tie_embeddings=True, norm="rms", rngs=nnx.Rngs(1))
  x = jnp.zeros((3, 5), jnp.int32)
  assert m(x).shape == (3, 5, 256)
  params = nnx.to_pure_dict(nnx.state(m, nnx.Param))
  assert "head" not in params
  # tied: the logits are the final features times the embedding table transposed
  with pytest.raises(ValueError, match="exceeds the context"):
    m(jnp.zeros((1, 9), jnp.int32))


@pytest.mark.parametrize("t", [0, 3, 7])
def test_causal_output_at_t_ignores_later_tokens(model, t):
  key = jax.random.key(0)
  x = jax.random.randint(key, (2, 8), 0, 256)
  y = x.at[:, t + 1:].set((x[:, t + 1:] + 17) % 256)  # change every token after t
  a, b = model(x), model(y)
  np.testing.assert_array_equal(np.asarray(a[:, :t + 1]), np.asarray(b[:, :t + 1]))
  if t < 7:  # and the later positions do see the change
    assert np.max(np.abs(np.asarray(a[:, t + 1:] - b[:, t + 1:]))) > 1e-6


def test_attention_matches_numpy(model):
  """One attention layer against a NumPy softmax(QKᵀ/√d_h + mask)V."""
  attn = model.blocks[0].attn
  x = np.asarray(jax.random.normal(jax.random.key(2), (1, 8, 16)))
  qkv = x @ np.asarray(attn.qkv.kernel[...]) + np.asarray(attn.qkv.bias[...])
  q, k, v = np.split(qkv[0], 3, axis=-1)
  out = []
  for h in range(2):
    sl = slice(8 * h, 8 * h + 8)
    s = q[:, sl] @ k[:, sl].T / math.sqrt(8)
    s = np.where(np.tril(np.ones((8, 8), bool)), s, -np.inf)
    p = np.exp(s - s.max(1, keepdims=True))
    out.append((p / p.sum(1, keepdims=True)) @ v[:, sl])
  ref = (np.concatenate(out, -1) @ np.asarray(attn.proj.kernel[...])
         + np.asarray(attn.proj.bias[...]))
  np.testing.assert_allclose(np.asarray(attn(jnp.asarray(x)))[0], ref, rtol=2e-4, atol=1e-6)


def test_masks_decay_kernels_never_norms_or_biases(model):
  params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  names = ["/".join(p) for p in masks.leaf_paths(params)]
  for emb in (True, False):
    decayed = dict(zip(names, jax.tree.leaves(masks.weights_only(params, embeddings=emb))))
    for n, d in decayed.items():
      leaf = n.split("/")[-1]
      if leaf == "kernel":
        assert d, n
      elif leaf == "embedding":
        assert d == emb, n
      else:  # biases, norm scales and biases
        assert leaf in ("bias", "scale") and not d, n
  hidden = dict(zip(names, jax.tree.leaves(transformer.hidden_matrices(params))))
  assert {n for n, h in hidden.items() if h} == {
      n for n in names if n.startswith("blocks/") and n.endswith("kernel")}


def test_corpus_digest_is_the_recorded_one():
  for part, files in corpus.PARTS.items():
    c = corpus.read(part)
    blob = b"".join(pathlib.Path(corpus.stdlib_dir(), f).read_bytes() for f in files)
    assert c.sha256 == hashlib.sha256(blob).hexdigest()
    assert bytes(c.tokens) == blob
    sha, n, python = corpus.RECORDED[part]
    if corpus.python_version() == python:  # the Python the digests were recorded on
      assert (c.sha256, len(c.tokens), c.matches_recorded) == (sha, n, True)
    else:
      assert "DIFFERS" in c.provenance() or c.matches_recorded


def test_corpus_says_when_it_differs(tmp_path):
  for f in corpus.PARTS["numeric"]:
    (tmp_path / f).write_bytes(b"x = 1\n")
  c = corpus.read("numeric", root=str(tmp_path))
  assert c.matches_recorded is False and "DIFFERS from the recorded corpus" in c.provenance()
  with pytest.raises(FileNotFoundError, match="textwrap.py"):
    corpus.read("text", root=str(tmp_path))


def test_windows_and_split_cover_every_target_once():
  tokens = np.arange(1000) % 251
  x, y = corpus.windows(tokens, 10)
  np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
  np.testing.assert_array_equal(y.reshape(-1), tokens[1:1 + y.size])
  held = corpus.split_mask(len(x), 0.25)
  assert 0 < held.sum() < len(x)
  ds = corpus.lm_dataset(corpus.read("text"), 16, max_tokens=5000, val_fraction=0.25)
  assert ds.x_train.shape[0] + ds.x_val.shape[0] == (5000 - 1) // 16
  assert ds.y_train.dtype == jnp.int32 and ds.x_train.shape[1:] == (16,)


def test_lm_loss_matches_numpy():
  logits = jax.random.normal(jax.random.key(3), (2, 4, 256))
  y = jax.random.randint(jax.random.key(4), (2, 4), 0, 256)
  lg = np.asarray(logits, np.float64)
  lse = np.log(np.exp(lg).sum(-1))
  ref = np.mean(lse - np.take_along_axis(lg, np.asarray(y)[..., None], -1)[..., 0])
  np.testing.assert_allclose(float(transformer.lm_loss(logits, y)), ref, rtol=1e-5)


def test_tiny_training_lowers_the_loss_in_a_sweep():
  ds = corpus.lm_dataset(corpus.read("text"), 8, max_tokens=6000)
  fn = train.make_train_fn(
      transformer.factory(**TINY), ds,
      optimizer=optimizers.get("adamw", mask=masks.weights_only(embeddings=False)),
      epochs=2, batch_size=32, loss=transformer.lm_loss, eval_train=False,
      report_mask=masks.weights_only(embeddings=False), track=["weight_norm"])
  res = sweep.run(fn, sweep.grid(product={"learning_rate": [1e-2],
                                          "weight_decay": [0.0, 1.0], "seed": [0]}),
                  progress=False)
  val = res.metrics["val_loss"][0, :, 0]              # (λ, epochs)
  assert np.all(val[:, -1] < math.log(256) - 1.0)     # far below a uniform guess
  assert np.all(val[:, -1] < val[:, 0])
  norm = res.metrics["decayed_norm"][0, :, 0, -1]
  assert norm[1] < norm[0]                            # decay shrinks the weights

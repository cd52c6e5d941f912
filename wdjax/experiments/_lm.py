"""Pieces the language-model experiments share: corpus, model, optimizer and one sweep.

The LM kinds (`lm_decay_rules`, `width_scaling`, `finetune_toward_init`) train
`wdjax.transformer.Transformer` on byte windows of `wdjax.corpus` with
`loss=wdjax.transformer.lm_loss`. Their model and corpus knobs live in `[params]` (the
generic `[data]` and `[model]` tables name scikit-learn data and the MLP/CNN models), so
their `Kind.sections` leave `data` and `model` out; the optimizer tables are the generic
ones, with two LM-specific options filled in here: the decay mask (`decay_embeddings`)
and, for Muon, which leaves it orthogonalizes (the blocks' kernels,
`wdjax.transformer.muon_dimension_numbers`; embeddings and head go to its Adam branch).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from wdjax import corpus, masks, optimizers, sweep, train, transformer
from wdjax.config import Config, ConfigError, OptimizerConfig, bounds, build_optimizer

LN_VOCAB = math.log(corpus.VOCAB_SIZE)   # nats/token of a uniform guess over bytes


@dataclass(frozen=True)
class LMParams:
  """The [params] every LM kind has: the corpus part and the model (kinds subclass it)."""
  part: str = "text"                     # a part of wdjax.corpus.PARTS
  max_tokens: int = field(default=0, **bounds(0, 10**8))      # 0: the whole part
  context: int = field(default=32, **bounds(2, 4096))
  val_fraction: float = field(default=0.1, **bounds(0.01, 0.5))
  d_model: int = field(default=32, **bounds(1, 4096))
  num_layers: int = field(default=2, **bounds(1, 64))
  num_heads: int = field(default=4, **bounds(1, 64))
  norm: str = "layer"                    # "layer" or "rms"
  tie_embeddings: bool = False
  decay_embeddings: bool = False         # masks.weights_only(embeddings=...)
  # Minibatch size in windows (0: full batch). Here and not train.batch_size, which the
  # generic schema checks against [data] n_train, a table these kinds do not read.
  batch_size: int = field(default=32, **bounds(0, 10**7))


def check_params(cfg: Config) -> None:
  """Refuses LM [params] the model or corpus cannot take, before anything is compiled."""
  p = cfg.params
  if p.part not in corpus.PARTS:
    raise ConfigError(f"params.part = {p.part!r}: choose one of {sorted(corpus.PARTS)}.")
  if p.norm not in transformer.NORMS:
    raise ConfigError(f"params.norm = {p.norm!r}: choose one of {transformer.NORMS}.")
  if p.d_model % p.num_heads:
    raise ConfigError(f"params.d_model = {p.d_model} must be a multiple of params.num_heads "
                      f"= {p.num_heads}.")


def read(cfg: Config, part: str | None = None) -> corpus.Corpus:
  """The corpus part, logged with its provenance (and a loud line when it differs)."""
  return corpus.read(part or cfg.params.part)


def dataset(cfg: Config, c: corpus.Corpus, *, test: corpus.Corpus | None = None) -> Any:
  p = cfg.params
  return corpus.lm_dataset(c, p.context, val_fraction=p.val_fraction,
                           max_tokens=p.max_tokens or None, test=test,
                           max_test_tokens=p.max_tokens or None)


def model(cfg: Config, d_model: int | None = None, num_heads: int | None = None) -> Any:
  p = cfg.params
  return transformer.factory(context=p.context, d_model=d_model or p.d_model,
                             num_layers=p.num_layers, num_heads=num_heads or p.num_heads,
                             norm=p.norm, tie_embeddings=p.tie_embeddings)


def builder(cfg: Config, opt: OptimizerConfig, total_steps: int,
            swept: tuple[str, ...]) -> optimizers.Builder:
  """`build_optimizer` with the LM mask (`decay_embeddings`) and Muon's hidden matrices."""
  b = build_optimizer(opt, total_steps, swept)
  extra: dict[str, Any] = {}
  if "mask" in b.spec.parameters:
    extra["mask"] = (masks.weights_only(embeddings=cfg.params.decay_embeddings)
                     if opt.mask == "weights_only" else optimizers.MASKS[opt.mask])
  if "muon_weight_dimension_numbers" in b.spec.parameters:
    extra["muon_weight_dimension_numbers"] = transformer.muon_dimension_numbers
  return dataclasses.replace(b, options={**b.options, **extra})


def steps(cfg: Config, ds: Any) -> int:
  n = int(ds.x_train.shape[0])
  bs = cfg.params.batch_size
  if bs > n:
    raise ConfigError(f"params.batch_size = {bs} exceeds the {n} training windows.")
  return cfg.train.epochs * (1 if bs in (0, n) else n // bs)


def run_sweep(ctx: Any, cfg: Config, opt: OptimizerConfig, ds: Any, make_model: Any,
              axes: dict, name: str, *, track: tuple[str, ...] = (),
              track_every: int | None = None, return_params: bool = False,
              init: Any = None) -> Any:
  """`sweep.run` of `make_train_fn(model, ds, loss=lm_loss)` over `axes` (product).

  `init`: an `nnx.Module` to start every run from (fine-tuning) instead of the factory.
  The validation loss is evaluated after every epoch; the training loss is the mean of
  the epoch's minibatch losses (evaluating the whole training set costs an epoch).
  """
  bs = cfg.params.batch_size
  n = int(ds.x_train.shape[0])
  swept = tuple(k for k in axes if k != "seed")
  fn = train.make_train_fn(
      make_model if init is None else init, ds,
      optimizer=builder(cfg, opt, steps(cfg, ds), swept), epochs=cfg.train.epochs,
      batch_size=None if bs in (0, n) else bs, loss=transformer.lm_loss, eval_train=False,
      report_mask=masks.weights_only(embeddings=cfg.params.decay_embeddings),
      return_params=return_params, track=list(track) or None, track_every=track_every)
  d = ctx.chunk_dir()
  fixed_lr = "learning_rate" not in axes   # the table's η, as a 1-value axis (dropped below)
  grid = sweep.grid(product={"learning_rate": [opt.learning_rate], **axes} if fixed_lr
                    else axes)
  with ctx.timed(f"sweep {name} (compile + run)"):
    res = sweep.run(fn, grid, chunk_size=cfg.sweep.chunk_size or None, progress=False,
                    seed=cfg.seed, checkpoint_dir=None if d is None else f"{d}/{name}")
  return (res.isel(learning_rate=0) if fixed_lr else res), fn


def leaves(params: Any) -> dict[str, np.ndarray]:
  """{"a/b/kernel": array} of a (batched) params dict, names as `wdjax.tracking` gives them."""
  paths = masks.leaf_paths(params)
  return {"/".join(p): np.asarray(v) for p, v in zip(paths, jax.tree.leaves(params))}


def schedule_sum(opt: OptimizerConfig, total_steps: int) -> float:
  """Σ_t η_t/η_peak over the run: total_steps for a constant schedule, ≈ T/2 for cosine."""
  if opt.schedule == "cosine":
    t = np.arange(total_steps)
    return float(np.sum(0.5 * (1 + np.cos(np.pi * t / total_steps))))
  return float(total_steps)


def decayed_names(cfg: Config, params: Any) -> list[str]:
  """Names (as `leaves` gives them) of the leaves the decay mask of `cfg` selects."""
  mask = masks.weights_only(params, embeddings=cfg.params.decay_embeddings)
  return [n for n, b in zip(leaves(params), jax.tree.leaves(mask)) if b]


def peak_multiplier(opt: OptimizerConfig) -> float:
  """c with s = c·λ, the per-step shrink at the peak learning rate η: 1 for decays not
  multiplied by η (scale_by "schedule"/"constant", SPD's projection), η otherwise
  (c_t = η_t: AdamW, Lion, Muon, cautious, L2-SP; AdamC's η_t²/η_peak at the peak).

  Example:
    >>> from wdjax.config import OptimizerConfig
    >>> from wdjax.experiments import _lm
    >>> _lm.peak_multiplier(OptimizerConfig(name="adamw", learning_rate=0.01))
    0.01
  """
  if opt.name == "adam_spd" or opt.option("scale_by") in ("schedule", "constant"):
    return 1.0
  return float(opt.learning_rate)

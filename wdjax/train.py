"""Pure training: `make_train_fn(model, data, ...)` gives `train_fn(hparams, key) -> metrics`.

`train_fn` is a pure function of a dict of hyperparameters (traced scalars such as
{"learning_rate": η, "weight_decay": λ}) and a PRNG key, so `jax.jit`, `jax.vmap` and
`wdjax.sweep.run` apply to it and a grid over λ, η and the seed compiles once. Inside, the
Flax NNX model is split once into a static graph and a params pytree (a plain nested
dict); epochs and minibatches run under `lax.scan`; the Optax transform is rebuilt from
the traced hyperparameters by `optimizer(hparams)`.

The objective minimized is  L(w) + R(w)  with L the batch mean of per-example losses:
½(ŷ − y)² (summed over targets) for regression, softmax cross-entropy for
classification, and R whatever the optimizer adds (coupled, decoupled or proximal).
Reported losses are L alone, without the penalty.

`optimizer` is a name from `wdjax.optimizers` (the one registry: the same names as the
Python presets, e.g. "sgd_l2", "adamw", "sgdw", "proximal_sgd"), a builder
`wdjax.optimizers.get(name, **static_options)`, or your own function
`hparams -> optax.GradientTransformation`. The hyperparameters a named optimizer reads
("learning_rate", "weight_decay", "momentum", ...) are declared by its registry entry, so
a misspelt or missing one is an error before anything is compiled.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from wdjax import data, models, train
  >>> ds = data.d2l_synthetic(dim=5)
  >>> fn = train.make_train_fn(models.for_dataset("linear", ds), ds,
  ...                          optimizer="sgd_l2", epochs=3, batch_size=5)
  >>> fn.hparam_names
  ('learning_rate', 'momentum', 'weight_decay')
  >>> m = jax.jit(fn)({"learning_rate": 0.01, "weight_decay": 1.0}, jax.random.key(0))
  >>> m["train_loss"].shape
  (3,)
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import re
import uuid
import warnings
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from wdjax import _io, masks, optimizers, tracking
from wdjax import data as _data
from wdjax._validate import positive_int

Builder = Callable[[dict], optax.GradientTransformation]
_UNSET: Any = object()

# ----------------------------------------------------------------------------- losses


def squared_loss(pred: jax.Array, y: jax.Array) -> jax.Array:
  """Batch mean of ½‖ŷ − y‖² (a (n, 1) prediction is matched to (n,) targets)."""
  if y.ndim == 1 and pred.ndim == 2 and pred.shape[1] == 1:
    pred = pred[:, 0]
  if pred.shape != y.shape:
    raise ValueError(f"regression prediction shape {pred.shape} does not match targets {y.shape}.")
  r = (pred - y.astype(pred.dtype)).reshape(y.shape[0], -1)
  return 0.5 * jnp.mean(jnp.sum(r * r, axis=1))


def cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
  """Batch mean of the softmax cross-entropy with integer labels."""
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def accuracy(logits: jax.Array, y: jax.Array) -> jax.Array:
  """Fraction of examples whose arg-max logit is the label."""
  return jnp.mean((jnp.argmax(logits, axis=-1) == y).astype(logits.dtype))


# ----------------------------------------------------------------------------- model plumbing


def _uses_dropout(module: nnx.Module) -> bool:
  return any(isinstance(m, nnx.Dropout) and m.rate > 0 for _, m in nnx.iter_modules(module))


def _split_model(model: Any) -> tuple[Any, Callable[[jax.Array], Any], bool]:
  """(graphdef, init(key) -> params dict, whether the model has dropout)."""
  if isinstance(model, nnx.Module):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    _check_rest(rest)
    fixed = nnx.to_pure_dict(params)
    return graphdef, lambda key: fixed, _uses_dropout(model)
  if not callable(model):
    raise TypeError("model must be an nnx.Module or a factory `rngs -> nnx.Module` (e.g. "
                    f"wdjax.models.for_dataset(...)); got {type(model).__name__}.")
  abstract = nnx.eval_shape(lambda: model(rngs=nnx.Rngs(0)))
  if not isinstance(abstract, nnx.Module):
    raise TypeError(f"the model factory returned {type(abstract).__name__}, not an nnx.Module.")
  graphdef, _, rest = nnx.split(abstract, nnx.Param, ...)
  _check_rest(rest)

  def init(key):
    return nnx.to_pure_dict(nnx.state(model(rngs=nnx.Rngs(key)), nnx.Param))

  return graphdef, init, _uses_dropout(abstract)


def _check_rest(rest: Any) -> None:
  if jax.tree.leaves(rest):
    raise ValueError("make_train_fn trains models whose state is only nnx.Param; this model "
                     "also holds other state (BatchNorm statistics, stored Rngs). Create "
                     "dropout without rngs= and pass randomness at call time.")


def _caller(graphdef: Any) -> Callable[..., jax.Array]:
  """`apply(params, x, train, rng)`: merges graph and params, calls the module."""
  def apply(params, x, train=False, rng=None):
    m = nnx.merge(graphdef, params)
    sig = inspect.signature(type(m).__call__).parameters
    if "train" in sig and "rngs" in sig:
      return m(x, train=train, rngs=rng)
    return m(x)

  return apply


# ----------------------------------------------------------------------------- training


SMALL_SHUFFLE = 128


def permutation(key: jax.Array, n: int) -> jax.Array:
  """A uniformly random permutation of 0..n-1 (the per-epoch shuffle).

  For n <= SMALL_SHUFFLE it is the rank of each of n random 32-bit words (ties broken by
  position): an O(n²) vectorized comparison instead of a sort. The ranks of i.i.d. draws
  are a uniform permutation, and XLA's CPU sort costs ~1 µs per small row, which made
  `jax.random.permutation` the largest cost of a D2L sweep (n = 20: 7x faster). Larger n
  use `jax.random.permutation`.

  Example:
    >>> import jax
    >>> from wdjax import train
    >>> sorted(train.permutation(jax.random.key(0), 5).tolist())
    [0, 1, 2, 3, 4]
  """
  if n > SMALL_SHUFFLE:
    return jax.random.permutation(key, n)
  u = jax.random.bits(key, (n,))
  i = jnp.arange(n)
  before = (u[None, :] < u[:, None]) | ((u[None, :] == u[:, None]) & (i[None, :] < i[:, None]))
  return jnp.sum(before, axis=1, dtype=jnp.int32)


def _tree_stats(leaves: list[jax.Array]) -> tuple[jax.Array, jax.Array]:
  if not leaves:
    return jnp.zeros(()), jnp.zeros(())
  sq = sum(jnp.sum(jnp.square(l)) for l in leaves)
  zeros = sum(jnp.sum(l == 0) for l in leaves)
  size = sum(l.size for l in leaves)
  return jnp.sqrt(sq), zeros.astype(sq.dtype) / size


@dataclasses.dataclass(frozen=True, eq=False)
class TrainFn:
  """A declared training function: what `make_train_fn` returns.

  Calling it, `train_fn(hparams, key, data=None) -> metrics`, runs `fn`, the pure function
  that `jax.jit`, `jax.vmap` and `wdjax.sweep.run` transform.

  Attributes:
    fn: the pure function `(hparams, key, data) -> metrics`.
    data: the dataset's arrays {"train": (x, y), "val": (x, y)[, "test": (x, y)]}, passed
      as an argument (not baked into the compiled program as a constant).
    hparam_names: the hyperparameter names `fn` accepts (None: not declared, e.g. a user's
      own optimizer function, whose names are then not checked).
    required_hparams: the names without a default.
    epochs: number of epochs.
    steps_per_epoch: optimizer steps per epoch (for schedules).
    track_steps: the optimizer steps at which `track=` quantities were recorded.
    fingerprint: a string that changes with everything that determines the results
      (optimizer and options, model shapes, data shapes, epochs, batch size, loss, ...);
      sweep checkpoints refuse chunks of another fingerprint.
    cache: compiled programs of this function (filled by `wdjax.sweep.run`).
  """
  fn: Callable[..., dict]
  data: dict
  hparam_names: tuple[str, ...] | None
  required_hparams: tuple[str, ...]
  epochs: int
  steps_per_epoch: int
  fingerprint: str
  track_steps: tuple[int, ...] = ()
  cache: dict = dataclasses.field(default_factory=dict, repr=False)

  def __call__(self, hparams: dict, key: jax.Array, data: dict | None = None) -> dict:
    return self.fn(hparams, key, data)


def _not_a_mean_over_examples(loss: Callable, apply: Callable, abstract_params: Any,
                              train: tuple) -> str | None:
  """Why `loss` is not a mean over examples (its value on two examples is not the mean of
  its values on each: a sum, say), or None. The chunked evaluation needs one. Random
  predictions of the model's output shape; no verdict where the loss is not finite."""
  x, y = train
  if x.shape[0] < 2:
    return None
  pred = jax.eval_shape(apply, abstract_params, jnp.asarray(x[:2]))
  p = jax.random.normal(jax.random.key(0), pred.shape, jnp.float32).astype(pred.dtype)
  y2 = jnp.asarray(y[:2])
  both, one, two = (float(loss(p[s], y2[s])) for s in (slice(0, 2), slice(0, 1), slice(1, 2)))
  mean = (one + two) / 2
  if all(map(math.isfinite, (both, one, two))) and abs(both - mean) > 1e-6 + 1e-3 * abs(mean):
    return (f"loss on two examples ({both:.6g}) is not the mean of its values on each "
            f"({one:.6g}, {two:.6g}), which the per-epoch evaluation in chunks of "
            "eval_batch_size examples needs")
  return None


def make_train_fn(model: Any, dataset: _data.Dataset, *, optimizer: str | Builder,
                  epochs: int, batch_size: int | None = None,
                  loss: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
                  report_mask: masks.Mask | None = masks.weights_only,
                  return_params: bool = False, eval_train: bool = True, shuffle: bool = True,
                  track: Sequence[str] | None = None, track_every: int | None = None,
                  unroll: int | bool = 1, eval_batch_size: int | str | None = "auto",
                  mask: Any = _UNSET) -> TrainFn:
  """Builds the pure training function `train_fn(hparams, key) -> metrics`.

  Each epoch shuffles the training set with a key drawn from `key`, takes
  ⌊n/batch_size⌋ minibatch steps (the remainder is dropped; batch_size=None is full-batch
  gradient descent, one step per epoch) and then evaluates.

  Args:
    model: an `nnx.Module` (every run starts from its params) or a factory
      `rngs -> nnx.Module` such as `wdjax.models.for_dataset(...)` (each key gets its
      own initialization). Its state must be only `nnx.Param`s.
    dataset: a `wdjax.data.Dataset`.
    optimizer: a name in `wdjax.optimizers.names()`, a builder
      `wdjax.optimizers.get(name, mask=..., **options)`, or a function
      `hparams -> optax.GradientTransformation`.
    epochs: number of epochs (> 0).
    batch_size: minibatch size, or None for full batch.
    loss: `(prediction, y) -> scalar batch mean`, a mean of per-example values (not a sum,
      not a mean over masked entries: the chunked evaluation, `eval_batch_size`, relies on
      it); default `squared_loss` for regression and `cross_entropy` for classification.
    report_mask: the leaves whose norm and exact zeros are reported (default: the
      weights). Which leaves are *regularized* is the optimizer's `mask` option.
    return_params: also return the final params (a nested dict) as metrics["params"].
    eval_train: report the loss on the whole training set after each epoch (True) or
      the mean of the minibatch losses during the epoch (False, cheaper).
    shuffle: reshuffle the training set every epoch.
    eval_batch_size: the per-epoch evaluation runs over each split in chunks of this many
      examples; None: the whole split at once; "auto" (the default): 256 when JAX's
      default backend is a CPU, None on a GPU or TPU (a chunk is a loop trip there, and
      the figures of those machines were taken with whole splits). On a CPU a chunk's
      activations stay in cache, and a sweep's do not otherwise: the digits MLP sweep
      (32 runs, 1437 training examples, 50 epochs) took 0.90-0.95x as long in chunks of
      64 to 512 on a 2-core CPU, the CNN sweep 0.82-0.83x, and one evaluation alone 5.1
      against 19.3 ms (benchmarks/README.md, "Run X: the per-epoch evaluation in
      chunks"). The chunks' means are combined weighted by their sizes, in float32 or
      wider, which is exact for a loss that is a mean over examples (the contract of
      `loss`, and of every loss wdjax ships). A custom `loss` is checked on two random
      examples when chunks apply: one that is not a mean (a sum, RMSE, a masked mean) is
      refused with an int size, and evaluated on whole splits with a warning under
      "auto". Results agree with None to float rounding, so the size is part of the
      fingerprint sweep checkpoints check whenever an evaluated split is larger; under
      "auto" that makes a sweep directory written on a GPU one that a CPU refuses to
      resume, and the reverse.
    track: quantities of `wdjax.tracking.QUANTITIES` to record every `track_every` steps
      for each leaf of `report_mask` (e.g. `wdjax.tracking.DEFAULT`: weight norm, angular
      and relative update), as metrics "track/<quantity>/<leaf>" of shape
      (steps // track_every,); `TrainFn.track_steps` lists the steps.
    track_every: the recording interval in optimizer steps. The default, once per epoch
      (at its last step), is recorded outside the step loop and costs ~5% of the digits
      MLP sweep with the default set; any other interval puts a branch in the loop and
      costs ~15-20% whatever is recorded (benchmarks/bench_track.py).
    unroll: `lax.scan`'s `unroll` for the epoch loop and the minibatch loop (1: loops;
      True: straight-line code, compile time growing with the steps). Unrolling is for
      repeated sweeps of tiny models on accelerators, where a loop trip is a few kernel
      launches plus XLA's loop-condition check; it costs compile time. On one H200 (run
      W, benchmarks/README.md "GPU") the D2L sweep took 1.08 ms with `unroll=4` (a loop
      trip per 4 steps and per 4 epochs; first call 2.4 s), 1.09 ms with True (6.4 s)
      and 1.64 ms with loops (1.3 s); the digits MLP and CNN sweeps gained 7% and 5%
      with 4 for a first call 3.8-4.8x longer (10.4 and 8.5 s against 2.2 s), which is why
      loops stay the default there too. On a CPU loops are fastest (1.18 ms; 4: 1.32 ms;
      True: 2.09 ms and 10x the compile). Results agree to rounding (unrolled steps may
      fuse differently), so `unroll` is part of the fingerprint sweep checkpoints check.

  Returns:
    A `TrainFn`, called as `train_fn(hparams, key, data=None)`: hparams is a dict
    name -> scalar (traced under vmap), key a PRNG key (typed or raw uint32); `data`
    defaults to `train_fn.data`. It returns a dict of arrays of shape (epochs,):
    train_loss, val_loss, test_loss (with a test split), train_acc/val_acc/test_acc
    (classification), decayed_norm (‖leaves of report_mask‖₂), zero_fraction (exact
    zeros among them); plus "params" with `return_params`.

  Raises:
    ValueError: on bad arguments, and (when called) on unknown or missing hparams.
  """
  unroll = 1 if unroll is False else unroll  # lax.scan reads False as 1
  if not isinstance(unroll, (bool, numbers.Integral)) or (
      not isinstance(unroll, bool) and unroll < 1):
    raise ValueError(f"unroll={unroll!r}: give a positive int (iterations per loop trip) "
                     "or True (no loops).")
  unroll = unroll if isinstance(unroll, bool) else int(unroll)   # (a NumPy integer too)
  if mask is not _UNSET:
    raise TypeError("make_train_fn(mask=) was split in two: the leaves the optimizer "
                    "regularizes are its own option (optimizer=wdjax.optimizers.get(name, "
                    "mask=...)), the leaves whose norm is reported are report_mask=.")
  _data.check(dataset)
  positive_int("epochs", epochs)
  n = int(dataset.x_train.shape[0])
  positive_int("batch_size", batch_size, none_ok=True)
  auto_chunks = isinstance(eval_batch_size, str)
  if auto_chunks:
    if eval_batch_size != "auto":
      raise ValueError(f"eval_batch_size={eval_batch_size!r}: give a positive int, None "
                       "(the whole split) or 'auto'.")
    eval_batch_size = 256 if jax.default_backend() == "cpu" else None
  positive_int("eval_batch_size", eval_batch_size, none_ok=True)
  if batch_size is not None and batch_size > n:
    raise ValueError(f"batch_size={batch_size} exceeds the {n} training examples; use "
                     "batch_size=None for full batch.")
  full_batch = batch_size is None or batch_size == n
  builder = optimizers.resolve(optimizer)
  accepted = getattr(builder, "hparam_names", None)
  required = tuple(getattr(builder, "required_hparams", ()))
  classification = dataset.task == "classification"
  loss_fn = loss or (cross_entropy if classification else squared_loss)
  graphdef, init_params, dropout = _split_model(model)
  apply = _caller(graphdef)
  default_data = {k: tuple(v) for k, v in dataset.splits().items()}
  abstract_params = jax.eval_shape(init_params, jax.random.key(0))
  evaluated = lambda split: eval_train or split != "train"   # the splits `evaluate` reads
  chunks_apply = eval_batch_size is not None and any(
      x.shape[0] > eval_batch_size for name, (x, _) in default_data.items() if evaluated(name))
  why = (_not_a_mean_over_examples(loss, apply, abstract_params, default_data["train"])
         if chunks_apply and loss is not None else None)
  if why and not auto_chunks:
    raise ValueError(f"{why}. Make the loss a mean over examples, or pass "
                     "eval_batch_size=None (the whole split at once).")
  if why:   # the default: keep working as before, on whole splits, and say why
    warnings.warn(f"{why}: evaluating whole splits instead. Pass eval_batch_size=None to "
                  "silence this, or make the loss a mean over examples.", stacklevel=2)
    eval_batch_size, chunks_apply = None, False
  metric_mask = masks.resolve(report_mask, abstract_params, allow_empty=True)
  nb = 1 if full_batch else n // batch_size
  if track_every is None:
    track_every = nb  # once per epoch, at its last step: the cheap path (see `epoch`)
  tracker = tracking.make_tracker(track, track_every, masks.leaf_paths(abstract_params),
                                  metric_mask)
  per_epoch = tracker is not None and tracker.every == nb
  if tracker is not None and tracker.every > epochs * nb:
    raise ValueError(f"track_every={track_every} exceeds the {epochs * nb} optimizer steps of "
                     "the run: nothing would be recorded.")

  def objective(params, x, y, rng):
    return loss_fn(apply(params, x, train=True, rng=rng if dropout else None), y)

  def split_metrics(params, x, y):
    """(loss, accuracy) of one split, or (loss,), in chunks of eval_batch_size examples."""
    def of(xc, yc):
      pred = apply(params, xc)
      return (loss_fn(pred, yc),) + ((accuracy(pred, yc),) if classification else ())

    size = x.shape[0]   # (of this split; `n` is the training set's)
    if eval_batch_size is None or size <= eval_batch_size:
      return of(x, y)
    cs, m = eval_batch_size, size // eval_batch_size * eval_batch_size
    chunked = lambda a: a[:m].reshape(m // cs, cs, *a.shape[1:])
    means = jax.lax.map(lambda c: of(*c), (chunked(x), chunked(y)))
    rest = of(x[m:], y[m:]) if m < size else (None,) * len(means)
    # every chunk's mean weighted by its size (exact for a loss that is a mean over
    # examples), in float32 at least: a float16 sum of n losses overflows past 65504
    def combine(v, r):
      wide = jnp.promote_types(v.dtype, jnp.float32)
      total = jnp.mean(v.astype(wide)) * (m / size)
      if r is not None:
        total = total + r.astype(wide) * ((size - m) / size)
      return total.astype(v.dtype)
    return tuple(combine(v, r) for v, r in zip(means, rest))

  def evaluate(params, splits) -> dict:
    out = {}
    for name, (x, y) in splits.items():
      if not evaluated(name):
        continue
      values = split_metrics(params, x, y)
      out[f"{name}_loss"] = values[0]
      if classification:
        out[f"{name}_acc"] = values[1]
    leaves = [l for l, b in zip(jax.tree.leaves(params), metric_mask) if b]
    out["decayed_norm"], out["zero_fraction"] = _tree_stats(leaves)
    return out

  def train_fn(hparams: dict, key: jax.Array, data: dict | None = None) -> dict:
    """Trains once from `key` with `hparams`; see `make_train_fn`."""
    _check_hparams(hparams, accepted, required)
    splits = default_data if data is None else data
    x_tr, y_tr = splits["train"]
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
      key = jax.random.wrap_key_data(key)
    k_init, k_epochs = jax.random.split(key)
    params = init_params(k_init)
    tx = builder(dict(hparams))
    opt_state = tx.init(params)
    if tracker is not None and tracker.needs_weight_decay and "weight_decay" not in hparams:
      raise ValueError("track=['linf_bound'] reads the 'weight_decay' hyperparameter; pass it.")
    params0, lam = params, hparams.get("weight_decay", 0.0)

    def sgd_step(params, opt_state, batch):
      idx, rng = batch
      # Gathering each minibatch inside the step (not the whole epoch up front) lets XLA
      # fuse the gather into the first matmul: measurably faster on CPU.
      xb, yb = (x_tr, y_tr) if full_batch else (x_tr[idx], y_tr[idx])
      value, grads = jax.value_and_grad(objective)(params, xb, yb, rng)
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, updates, value

    def step(carry, batch):
      params, opt_state = carry[:2]
      new, opt_state, updates, value = sgd_step(params, opt_state, batch)
      if tracker is None or per_epoch:
        return (new, opt_state) + carry[2:], value
      count = carry[2] + 1  # the same for every run of a sweep: a real branch under vmap
      rec = jax.lax.cond(count % tracker.every == 0,
                         lambda: tracker.record(params, updates, params0, lam), tracker.blank)
      return (new, opt_state, count), (value, rec)

    def epoch(carry, k):
      if dropout:
        k_perm, k_drop = jax.random.split(k)
        rngs = jax.random.split(k_drop, nb)
      else:  # no randomness in the forward pass: skip generating per-step keys
        k_perm, rngs = k, jnp.zeros((nb,), jnp.uint32)
      if full_batch:
        batches = (jnp.zeros((1,), jnp.int32), rngs)
      else:
        idx = (permutation(k_perm, n) if shuffle else jnp.arange(n))[:nb * batch_size]
        batches = (idx.reshape(nb, batch_size), rngs)
      out = {}
      if per_epoch:
        # Recorded at the epoch's last step, taken outside the scan: no branch in the loop
        # (a lax.cond per step costs ~15% of a small MLP sweep on CPU, whatever it records).
        carry, losses = jax.lax.scan(step, carry, jax.tree.map(lambda b: b[:-1], batches),
                                     unroll=unroll)
        params = carry[0]
        new, opt_state, updates, last = sgd_step(params, carry[1],
                                                 jax.tree.map(lambda b: b[-1], batches))
        out["_track"] = tracker.record(params, updates, params0, lam)
        carry, losses = (new, opt_state), jnp.concatenate([losses, last[None]])
      else:
        carry, losses = jax.lax.scan(step, carry, batches, unroll=unroll)
        if tracker is not None:
          losses, out["_track"] = losses
      out.update(evaluate(carry[0], splits))
      if not eval_train:
        out["train_loss"] = jnp.mean(losses)
      return carry, out

    init = (params, opt_state) if tracker is None or per_epoch else (params, opt_state,
                                                                     jnp.int32(0))
    carry, metrics = jax.lax.scan(epoch, init, jax.random.split(k_epochs, epochs),
                                  unroll=unroll)
    params = carry[0]
    if tracker is not None:  # (epochs[, steps per epoch]) -> every `track_every`-th step
      for k, v in metrics.pop("_track").items():
        metrics[k] = v if per_epoch else v.reshape(-1)[tracker.every - 1::tracker.every]
    if return_params:
      metrics["params"] = params
    return metrics

  # Everything that determines the results (sweep checkpoints refuse another's chunks).
  shapes = jax.tree.map(lambda a: (a.shape, str(a.dtype)), abstract_params)
  fingerprint = repr((
      "make_train_fn", _describe(builder), describe_model(graphdef), epochs, batch_size,
      _describe(loss_fn), eval_train,
      shuffle, return_params, metric_mask, dropout, shapes, dataset.task, dataset.num_classes,
      None if tracker is None else (tracker.quantities, tracker.every),
      jax.tree.map(lambda a: (a.shape, str(a.dtype)), default_data)))
  if unroll is True or unroll != 1:  # unrolled loops may fuse and round differently
    fingerprint += f"|unroll={unroll!r}"  # (appended: unroll=1 keeps older fingerprints)
  if chunks_apply:
    fingerprint += f"|eval_batch_size={eval_batch_size}"  # (chunks sum in another order)
  return TrainFn(fn=train_fn, data=default_data, hparam_names=accepted,
                 required_hparams=required, epochs=epochs, steps_per_epoch=nb,
                 fingerprint=fingerprint,
                 track_steps=() if tracker is None else tuple(tracker.steps(epochs * nb)))


def _describe(obj: Any) -> str:
  """A description of an optimizer or loss that is stable across processes."""
  if isinstance(obj, optimizers.Builder):
    return obj.describe()
  return optimizers.describe_value(obj) + "#" + _code_token(obj)


# --- fingerprint helpers (issue 10: a checkpoint is reused only for the same numbers) ----


def _code_token(obj: Any) -> str:
  """`wdjax._io.code_digest(obj)` (a user function's code and closure values), or a fresh
  random token when it cannot be hashed: then nothing computed with `obj` is reused."""
  digest = _io.code_digest(obj)
  return digest if digest is not None else "unhashable-" + uuid.uuid4().hex


def describe_model(graphdef: Any) -> str:
  """The model definition as a string stable across processes: the NNX graph (module
  types, static fields such as widths, dtypes and the activation function's name, without
  memory addresses) and a digest of the code of every function-valued static field (a
  user's activation lambda)."""
  text = re.sub(r" at 0x[0-9a-fA-F]+", "", repr(graphdef))
  funcs = [f"{name}={_code_token(getattr(attr.value, '__wrapped__', attr.value))}"
           for name, attr in getattr(graphdef, "attributes", ())
           if callable(getattr(attr, "value", None))]
  return text + "|" + ",".join(funcs)


def _check_hparams(hparams: Any, accepted: tuple[str, ...] | None,
                   required: tuple[str, ...]) -> None:
  if not isinstance(hparams, dict):
    raise TypeError(f"hparams must be a dict name -> value, got {type(hparams).__name__}.")
  if accepted is None:  # the optimizer reads its hparams dynamically: nothing to check
    return
  unknown = sorted(set(hparams) - set(accepted))
  if unknown:
    raise ValueError(f"unknown hyperparameter(s) {unknown}: this training function reads "
                     f"{list(accepted)}. Check the spelling or the optimizer.")
  missing = sorted(set(required) - set(hparams))
  if missing:
    raise ValueError(f"missing hyperparameter(s) {missing}: the optimizer reads them "
                     f"(accepted: {list(accepted)}).")

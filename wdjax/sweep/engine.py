"""The sweep engine: one jit+vmap program over a grid, chunked and sharded over devices.

`run(train_fn, grid)` flattens the grid into points, splits them into chunks of
`chunk_size` points, pads each chunk to one size, a multiple of the device count (with
copies of its last point, so every chunk reuses the same compiled function; the padding is
dropped again), shards each chunk's points over the devices of a 1-D mesh
(`jax.sharding.NamedSharding`, axis "grid"), and gathers the metrics into a `SweepResult`.

One host with several CPU cores: call `use_cpu_cores()` right after `import jax` to give
each core a device of its own (XLA:CPU runs a sweep's small operations on about one core
otherwise). Many hosts: start every process with `jax.distributed.initialize(...)` and call
`run` with the same arguments in each; `jax.devices()` then spans all hosts and every
process receives the full result. Resuming: with `checkpoint_dir=`, finished chunks go to a
`wdjax.sweep.store.ChunkStore` and a rerun of the same call skips them.

What `run` reads from the training function, each optional (a plain
`(hparams, key) -> dict` function has none of them): `data` (passed as a third argument,
replicated, not compiled in), `hparam_names` / `required_hparams` (the grid's axes are
checked against them), `fingerprint` (or an older `signature`), `epochs` and `data` (they
identify the sweep in a checkpoint), and `cache`, a dict in which the compiled programs are
kept (otherwise they go in the function's `__dict__`).
"""

from __future__ import annotations

import collections
import math
import os
import re
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from wdjax import _progress
from wdjax._validate import positive_int
import wdjax.sweep.store as _store
from wdjax.sweep.grid import SEED, Grid
from wdjax.sweep.result import SweepResult

_MESH_AXIS = "grid"


# Each CPU device holds its own copy of the training data and chunks are padded to a
# multiple of the device count, so the default stops at 8 devices; pass n for more.
_MAX_DEFAULT_CPU_DEVICES = 8


def _usable_cores() -> int:
  """Cores this process may run on (its CPU affinity, which containers narrow)."""
  try:
    return len(os.sched_getaffinity(0)) or 1
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


def use_cpu_cores(n: int | None = None) -> int:
  """Presents this host's CPU cores to JAX as `n` CPU devices, so `run` shards across them.

  XLA:CPU gives one program's many small operations (a sweep's per-run matrix products,
  optimizer updates and loop bookkeeping) to essentially one core: on 2 cores the digits
  MLP sweep of `benchmarks/bench_sweep.py` took the same time with one XLA thread as with
  two. With a device per core, `run` gives each core its own shard of the grid: 1.5-1.7x
  faster on 2 cores (benchmarks/README.md). A computation on one device still uses every
  core for its large operations (a 2048x2048 matmul ran at the same rate).

  Sets `jax.config.jax_num_cpu_devices`; call it right after `import jax`, before the
  first JAX computation (the `wdjax` command does). Only the CPU backend is affected: on a
  GPU or TPU host `run` shards over the accelerators as before.

  Args:
    n: number of CPU devices. Default: the count already chosen by the user
      (`JAX_NUM_CPU_DEVICES`, or `--xla_force_host_platform_device_count` in XLA_FLAGS),
      which is then kept and nothing is set; otherwise the cores this process may use,
      at most 8 (each device holds its own copy of the training data, and chunks are
      padded to a multiple of the device count).

  Returns:
    The number of CPU devices JAX will create.

  Raises:
    ValueError: `n` is not a positive int.
    RuntimeError: JAX has already run a computation (its devices are fixed by then) and
      a count had to be set.
  """
  positive_int("n", n, none_ok=True)
  if n is None:
    chosen = jax.config.jax_num_cpu_devices
    if chosen > 0:
      return chosen
    flags = re.findall(r"xla_force_host_platform_device_count=(\d+)",
                       os.environ.get("XLA_FLAGS", ""))
    if flags:  # the user's XLA flag decides (the last one, as XLA reads them)
      return int(flags[-1])
    n = min(_usable_cores(), _MAX_DEFAULT_CPU_DEVICES)
  try:
    jax.config.update("jax_num_cpu_devices", n)
  except RuntimeError as e:
    raise RuntimeError(
        "wdjax.sweep.use_cpu_cores must be called before JAX runs its first computation "
        "(JAX fixes its devices then): call it right after `import jax`, or set "
        f"JAX_NUM_CPU_DEVICES={n} in the environment before starting Python.") from e
  return n


_COMPILED: dict[Any, Callable] = {}  # for callables that take no attributes
_seed_keys = jax.jit(jax.vmap(lambda s: jax.random.key_data(jax.random.key(s))))


def _keys(seeds: np.ndarray) -> np.ndarray:
  """The raw key data of `jax.random.key(seed)` for each seed, shape (n, 2) for threefry."""
  seeds = seeds.astype(np.uint32)
  if jax.config.jax_default_prng_impl == "threefry2x32":
    # threefry's key(s) is [0, s] for a 32-bit seed: built on the host, no device round
    # trip (which was most of sweep.run's fixed cost). tests/test_sweep.py checks it.
    return np.stack([np.zeros_like(seeds), seeds], axis=-1)
  return np.asarray(_seed_keys(seeds))


def _program_cache(train_fn: Callable) -> dict:
  """Where `train_fn`'s compiled programs are kept: its own `cache` dict when it has one (a
  `wdjax.train.TrainFn`), else its `__dict__` (a plain function), else a module dict."""
  own = getattr(train_fn, "cache", None)
  if isinstance(own, dict):
    return own
  attrs = getattr(train_fn, "__dict__", None)
  return _COMPILED if attrs is None else attrs.setdefault("_wdjax_compiled", {})


# A chunk's outputs up to this size come back as one array per dtype (one device-to-host
# copy instead of one per metric); larger ones (e.g. every run's parameters) are not
# concatenated on the device, which would hold them twice.
_PACK_MAX_BYTES = 64 << 20

# The memory the program writes its outputs to. "auto": pinned host memory on GPUs, in a
# single process; the devices' own memory elsewhere (on CPUs the two are the same; TPUs
# were never measured; across processes the outputs are all-gathered on the devices, a
# path not tried from host memory). None: always the devices' own. With "pinned_host" XLA
# copies the results back as the program's last step, instead of a separate
# device-to-host transfer after it: on one H200 the D2L sweep took 1.08 instead of 1.21 ms
# in `run` (benchmarks/README.md, run W).
_OUTPUT_MEMORY_KIND: str | None = "auto"


def _output_memory(sharding: NamedSharding) -> str | None:
  """The memory kind `sharding`'s programs write their outputs to (`_OUTPUT_MEMORY_KIND`
  resolved for its devices)."""
  kind = _OUTPUT_MEMORY_KIND
  if kind != "auto":
    return kind
  device = sharding.mesh.devices.flat[0]
  if device.platform != "gpu" or jax.process_count() > 1:
    return None
  try:
    kinds = {m.kind for m in device.addressable_memories()}
  except Exception:  # a backend without memory kinds  # pragma: no cover
    return None
  return "pinned_host" if "pinned_host" in kinds else None


def _compiled(train_fn: Callable, names: tuple[str, ...], sharding: NamedSharding,
              replicated: NamedSharding, with_data: bool,
              shared_key: bool) -> tuple[Callable, dict]:
  """jit(vmap(train_fn)) with the grid axis sharded (`sharding`) and the data, when given as
  a third argument, replicated; cached per (fn, mesh, ...) on the function itself
  (`_program_cache`), so a compiled program lives as long as its function (a process-wide
  cache would keep every swept function, and the data it holds, alive).

  Returns `(program, layouts)`. The program takes the chunk's hyperparameters as one
  (runs, len(names)) matrix, column j being `names[j]`, and returns the outputs packed
  into one (runs, ...) array per dtype, or as they are above `_PACK_MAX_BYTES` (`_pack`).
  Each trace records how to undo it in `layouts[_signature(*args)]`, for
  `_unpack(layouts[...], outputs)`. One transfer each way instead of one per
  hyperparameter and per metric: on a GPU each small transfer costs 0.05-0.13 ms, as much
  as a small sweep's training (benchmarks/README.md, run V).

  With `shared_key` (a grid without a "seed" axis) every run gets the same key, so the key
  is passed once, unbatched: whatever depends only on it (initial parameters, shuffles,
  minibatch gathers) is computed once for the whole chunk instead of once per run, and a
  minibatch shared by all runs meets the runs' stacked weights as one matrix product.
  Same results, 1.2-2.3x faster on the benchmark sweeps.
  """
  cache = _program_cache(train_fn)
  # train_fn is part of the key: bound methods of different objects share one __dict__, and
  # functools.wraps copies a wrapped object's attributes (its `cache` too) to the wrapper.
  try:
    hash(train_fn)
    fn_key = train_fn
  except TypeError:  # e.g. a dataclass: its own cache holds its programs only
    fn_key = None
    if cache is _COMPILED:
      cache = {}  # no place to keep it: compile for this call only
  out_memory = _output_memory(sharding)
  key = ("wdjax.sweep.run", fn_key, names, sharding.mesh, with_data, shared_key, out_memory)
  if key not in cache:
    key_axis, key_sharding = (None, replicated) if shared_key else (0, sharding)
    in_axes, in_shardings = (0, key_axis), (sharding, key_sharding)
    if with_data:
      in_axes, in_shardings = in_axes + (None,), in_shardings + (replicated,)
    vmapped = jax.vmap(train_fn, in_axes=in_axes)
    layouts: dict = {}

    def program(hp_matrix, key, *data):
      out = vmapped({n: hp_matrix[:, j] for j, n in enumerate(names)}, key, *data)
      return _pack(out, hp_matrix.shape[0], layouts, _signature(hp_matrix, key, *data))

    out_sharding = sharding if out_memory is None else sharding.with_memory_kind(out_memory)
    cache[key] = (jax.jit(program, in_shardings=in_shardings, out_shardings=out_sharding),
                  layouts)
  return cache[key]


def _signature(*args: Any) -> tuple:
  """The shapes and dtypes of a program call's arguments: what a trace depends on, and so
  which of its traces' layouts describes a call's outputs (jit reuses an older trace
  when a chunk size, the x64 mode or the data's shapes come back)."""
  return tuple((tuple(a.shape), np.dtype(a.dtype)) for a in jax.tree.leaves(args))


def _pack(out: Any, runs: int, layouts: dict, signature: tuple) -> tuple:
  """At trace time: `out`'s leaves, (runs, ...) each (vmap's output axis), as one (runs, n)
  array per dtype when the chunk's outputs (all devices together) fit `_PACK_MAX_BYTES`,
  else as they are; records in `layouts[signature]` how to undo it."""
  leaves, treedef = jax.tree.flatten(out)
  dtypes = list(dict.fromkeys(a.dtype for a in leaves))
  packed = sum(a.size * a.dtype.itemsize for a in leaves) <= _PACK_MAX_BYTES
  # per leaf: (its dtype's array, first column, last column + 1, trailing shape)
  cols, slices = dict.fromkeys(dtypes, 0), []
  for a in leaves:
    width = math.prod(a.shape[1:])
    slices.append((dtypes.index(a.dtype), cols[a.dtype], cols[a.dtype] + width, a.shape[1:]))
    cols[a.dtype] += width
  layouts[signature] = {"treedef": treedef, "packed": packed, "slices": slices}
  if not packed:
    return tuple(leaves)
  return tuple(jnp.concatenate([a.reshape(runs, math.prod(a.shape[1:])) for a in leaves
                                if a.dtype == dt], axis=1) for dt in dtypes)


def _unpack(layout: dict, arrays: Sequence[np.ndarray]) -> list:
  """The output leaves (in `layout["treedef"]`'s order) from `_pack`'s arrays (host
  copies): views, no copy."""
  if not layout["packed"]:
    return list(arrays)
  return [arrays[g][:, start:stop].reshape((arrays[g].shape[0],) + shape)
          for g, start, stop, shape in layout["slices"]]


_SHARDINGS: dict[tuple, tuple[NamedSharding, NamedSharding]] = {}


def _shardings(devices: tuple) -> tuple[NamedSharding, NamedSharding]:
  """(grid axis sharded, replicated) over a 1-D mesh of `devices`, made once per device
  tuple (building them was ~18 µs of a 1 ms sweep.run)."""
  if devices not in _SHARDINGS:
    mesh = Mesh(np.array(devices), (_MESH_AXIS,))
    _SHARDINGS[devices] = (NamedSharding(mesh, PartitionSpec(_MESH_AXIS)),
                           NamedSharding(mesh, PartitionSpec()))
  return _SHARDINGS[devices]


_SHARED_KEYS: dict[tuple, Any] = {}


def _shared_key(seed: int, replicated: NamedSharding) -> Any:
  """The key of every run of a grid without a "seed" axis, placed on the mesh once per
  (seed, mesh, PRNG implementation) rather than transferred with every call."""
  k = (int(seed), replicated.mesh, jax.config.jax_default_prng_impl)
  placed = _SHARED_KEYS.get(k)
  if placed is None:
    if len(_SHARED_KEYS) >= 256:  # a loop over many seeds: keep the cache small
      _SHARED_KEYS.clear()
    host = _keys(np.asarray([seed]))[0]
    placed = _SHARED_KEYS[k] = (jax.device_put(host, replicated) if jax.process_count() == 1
                                else _put(host, replicated))
  return placed


def _put(tree: Any, sharding: NamedSharding) -> Any:
  """A pytree of host arrays ready to pass to a jitted function with `sharding`: on one
  host the arrays themselves (jit's C++ dispatch transfers them, ~0.2 ms faster per call
  than `jax.device_put`); on several hosts each process supplies its own shards from its
  full host copy."""
  if jax.process_count() == 1:
    return tree

  def put(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

  return jax.tree.map(put, tree)


# Small hyperparameter matrices already placed, by content (bytes, shape, dtype, sharding),
# most recently used last: a sweep repeated over the same grid, or several training
# functions swept over one grid, transfers each chunk's matrix once. On a GPU each transfer
# of a small array costs ~0.07 ms, 5% of a 64-run D2L sweep (benchmarks/README.md, run V).
_PLACED_POINTS: collections.OrderedDict = collections.OrderedDict()
_PLACED_POINTS_MAX = 32
_PLACED_POINTS_MAX_BYTES = 1 << 20


def _put_points(matrix: np.ndarray, sharding: NamedSharding) -> Any:
  """A chunk's (runs, hyperparameters) matrix for the program: placed once per content
  when small (one process), else handed to `_put`."""
  if jax.process_count() != 1 or matrix.nbytes > _PLACED_POINTS_MAX_BYTES:
    return _put(matrix, sharding)
  k = (matrix.tobytes(), matrix.shape, matrix.dtype.str, sharding)
  # pop and re-insert (most recent last): single dict operations, safe between threads
  placed = _PLACED_POINTS.pop(k, None)
  if placed is None:
    placed = jax.device_put(matrix, sharding)
  _PLACED_POINTS[k] = placed
  while len(_PLACED_POINTS) > _PLACED_POINTS_MAX:
    try:
      _PLACED_POINTS.popitem(last=False)
    except KeyError:  # emptied by another thread meanwhile
      break
  return placed


# One slot per mesh: the last training data placed there, as (its host leaves, its tree
# structure, the placed copy). A new dataset replaces it, so device memory holds one copy
# per mesh, not one per training function (an experiment builds one function per
# optimizer, all on one dataset).
_PLACED: dict[Mesh, tuple[list, Any, Any]] = {}


def _placed_data(data: Any, replicated: NamedSharding) -> Any:
  """The training data on every device of the mesh, transferred when the data (its leaves,
  by identity) change rather than once per call (a dataset can be hundreds of MB). Arrays
  modified in place keep their identity: pass new arrays to train on new data."""
  leaves, treedef = jax.tree.flatten(data)
  slot = _PLACED.get(replicated.mesh)
  if (slot is None or slot[1] != treedef or len(slot[0]) != len(leaves)
      or any(a is not b for a, b in zip(slot[0], leaves))):
    placed = (jax.device_put(data, replicated) if jax.process_count() == 1
              else _put(data, replicated))
    slot = _PLACED[replicated.mesh] = (leaves, treedef, placed)
  return slot[2]


def _get(arrays: tuple) -> list:
  """The program's output arrays on the host (every process gets all of them)."""
  if jax.process_count() == 1:
    for a in arrays:  # all copies started before waiting for the first (jax.device_get's
      a.copy_to_host_async()  # order, without its pytree traversal)
    return [np.asarray(a) for a in arrays]
  from jax.experimental import multihost_utils
  return [np.asarray(a) for a in multihost_utils.process_allgather(arrays, tiled=True)]


def _check_names(train_fn: Callable, grid: Grid) -> None:
  names = set(grid.names) - {SEED}
  accepted = getattr(train_fn, "hparam_names", None)
  if accepted is not None:
    unknown = sorted(names - set(accepted))
    if unknown:
      raise ValueError(f"unknown hyperparameter(s) {unknown} in the grid: the training "
                       f"function reads {list(accepted)} (plus 'seed').")
  required = getattr(train_fn, "required_hparams", None)
  if required is not None:
    missing = sorted(set(required) - names)
    if missing:
      raise ValueError(f"the grid lacks hyperparameter(s) {missing} that the training "
                       "function needs; add them as axes (a 1-value axis fixes one).")


def run(train_fn: Callable[[dict, jax.Array], Any], grid: Grid, *,
        chunk_size: int | None = None, progress: bool = True,
        devices: Sequence[jax.Device] | None = None, seed: int = 0,
        checkpoint_dir: str | os.PathLike | None = None,
        on_chunk: Callable[[int, int, dict], None] | None = None) -> SweepResult:
  """Runs `train_fn` at every grid point as one jit+vmap program; returns a SweepResult.

  Args:
    train_fn: `(hparams, key) -> dict of arrays` (e.g. from `wdjax.train.make_train_fn`);
      "params" in its output goes to `SweepResult.params`. When it has a `data`
      attribute (a pytree of arrays) it is called as `train_fn(hparams, key, data)`,
      with the data replicated on every device rather than compiled in as a constant.
    grid: a `Grid` from `grid(...)`.
    chunk_size: grid points per chunk (bounds memory); None: the whole grid at once.
      Each compiled call is padded to a multiple of the number of devices, so the chunks
      (and a checkpoint of them) do not depend on the device count.
    progress: print per-chunk progress and time left on stderr once the sweep has run
      for more than 2 seconds (process 0 only).
    devices: devices of the 1-D mesh the runs are sharded over (default `jax.devices()`:
      every local device, and with `jax.distributed` every device of every host).
    seed: the key of every run when the grid has no "seed" axis.
    checkpoint_dir: store each finished chunk there atomically and skip chunks already
      stored by an identical earlier call (same grid, chunk size and seed, and for a
      function that declares a `fingerprint`, such as `make_train_fn`'s, the same setup
      and data; other functions by a digest of their code, see
      `wdjax.sweep.store.fingerprint`). Each chunk file carries a checksum and the sweep's
      fingerprint; a damaged chunk, or one of another sweep, is recomputed with a
      `wdjax.sweep.store.ChunkWarning` naming its file. With several processes it must be
      a shared directory; process 0 writes.
    on_chunk: called as `on_chunk(index, n_chunks, outputs)` after each computed chunk
      (not for chunks read back from `checkpoint_dir`), with the chunk's outputs as NumPy
      arrays (its grid points only, no padding).

  Returns:
    A `SweepResult` whose metrics have shape `grid.shape + (epochs,)`.

  Raises:
    ValueError: chunk_size <= 0, hyperparameters the training function does not read
      (when it has `hparam_names`), or a checkpoint directory of another sweep.
  """
  if not isinstance(grid, Grid):
    raise TypeError(f"grid must be a wdjax.sweep.Grid from sweep.grid(...), got "
                    f"{type(grid).__name__}.")
  positive_int("chunk_size", chunk_size, none_ok=True)
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
    raise ValueError(f"seed must be an int in [0, 2**32) (a PRNG key's 32-bit seed), got "
                     f"{seed!r}.")
  _check_names(train_fn, grid)
  devices = tuple(devices) if devices is not None else tuple(jax.devices())
  if not devices:
    raise ValueError("devices is empty.")
  sharding, replicated = _shardings(devices)
  nd = len(devices)
  total = grid.size
  # The chunk layout (which grid points each stored chunk holds) depends on the grid and
  # chunk_size only, so a run resumes on another number of devices; each call is padded
  # to a multiple of the device count (with copies of the chunk's last point) and the
  # padding dropped again before the chunk is stored.
  chunk = min(chunk_size or total, total)
  n_chunks = -(-total // chunk)
  per_call = -(-chunk // nd) * nd

  pts = grid.points()
  float_dtype = jax.dtypes.canonicalize_dtype(jnp.float64)  # float32 unless x64
  names = tuple(k for k in pts if k != SEED)
  # every hyperparameter as one (points, len(names)) matrix: one transfer per chunk
  hp_all = np.empty((total, len(names)), float_dtype)
  for j, k in enumerate(names):
    hp_all[:, j] = pts[k]
  shared_key = SEED not in pts
  keys_all = _shared_key(seed, replicated) if shared_key else _keys(pts[SEED])
  # Data given as an argument (train_fn.data, from make_train_fn) is passed replicated
  # instead of being closed over, so it is not baked into the program as a constant.
  data = getattr(train_fn, "data", None)
  fn, layouts = _compiled(train_fn, names, sharding, replicated, data is not None, shared_key)
  extra = () if data is None else (_placed_data(data, replicated),)
  signature = None  # of the calls' arguments (the same for every chunk): their layout's key

  writer = jax.process_index() == 0
  ckpt = None
  if checkpoint_dir is not None:
    ckpt = _store.ChunkStore(
        checkpoint_dir, _store.fingerprint(grid, chunk, seed, train_fn),
        {"grid": repr(grid), "chunk_size": chunk, "n_chunks": n_chunks}, writer=writer)
  bar = _progress.Progress(n_chunks, total, enabled=progress and writer)

  # a computed chunk: its output leaves (a list, in the layout's order); a stored one: a tree
  outs: list[Any] = [None] * n_chunks
  pending: tuple[int, Any] | None = None

  def size(i: int) -> int:
    return min(chunk, total - i * chunk)

  def finish(i: int, out: Any) -> None:
    with bar.waiting(i):
      leaves = _unpack(layouts[signature], _get(out))
    leaves = outs[i] = [a[:size(i)] for a in leaves]  # (host arrays already)
    if ckpt is not None or on_chunk is not None:
      tree = jax.tree.unflatten(layouts[signature]["treedef"], leaves)
      if ckpt is not None:
        ckpt.write(i, tree)
      if on_chunk is not None:
        on_chunk(i, n_chunks, tree)
    bar.update(i + 1, min((i + 1) * chunk, total))

  for i in range(n_chunks):
    stored = ckpt.read(i) if ckpt is not None else None
    if stored is not None:
      outs[i] = stored
      bar.update(i + 1, min((i + 1) * chunk, total), computed=False)
      continue
    idx = i * chunk + np.minimum(np.arange(per_call), size(i) - 1)
    # Dispatch chunk i before fetching chunk i-1, so the host copy overlaps the compute.
    args = (_put_points(hp_all[idx], sharding),
            keys_all if shared_key else _put(keys_all[idx], sharding), *extra)
    if signature is None:
      signature = _signature(*args)
    out = fn(*args)
    if pending is not None:
      finish(*pending)
    pending = (i, out)
  if pending is not None:
    finish(*pending)

  # Chunks read back (trees, their keys as stored) merge as leaf lists too, in the same
  # sorted-key order; the structure is the program's, or a stored chunk's when every chunk
  # was read back. One chunk: a copy, not a concatenation (device_get's arrays are
  # read-only, and a result's arrays are the user's to modify, whatever the chunk count).
  treedef = (layouts[signature]["treedef"] if signature is not None
             else jax.tree.structure(outs[0]))
  outs = [o if isinstance(o, list) else jax.tree.leaves(o) for o in outs]
  leaves = ([np.array(a) for a in outs[0]] if n_chunks == 1
            else [np.concatenate(xs, axis=0) for xs in zip(*outs)])
  merged = jax.tree.unflatten(treedef, [a.reshape(grid.shape + a.shape[1:]) for a in leaves])
  if not isinstance(merged, dict):
    raise TypeError(f"train_fn must return a dict of arrays, got {type(merged).__name__}.")
  params = merged.pop("params", None)
  return SweepResult(grid.dims, grid.values, merged, params)

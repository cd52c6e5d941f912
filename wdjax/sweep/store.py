"""Sweeps on disk: pytrees of arrays as `.npz` files, and the checkpoint store of a run.

A pytree (nested dicts of arrays, e.g. a run's metrics and final params) is stored flat:
one entry per leaf, named by its key path joined with "/" ("params/layers/0/kernel"), and
the key path itself (ints kept as ints) in the JSON metadata under "keys", so it loads back
as the same nested dicts. Files are written by `wdjax._io.write_npz`: atomically and with a
SHA-256 checksum that loading checks.

A checkpoint store is a folder holding `sweep.json` (the sweep's fingerprint: grid, chunk
size, seed, training setup, data) and one `chunk_00003.npz` per finished chunk; a rerun of
the same sweep reads the chunks back instead of computing them, and a store holding
another sweep is refused rather than mixed in.

Example:
  >>> import os, tempfile, numpy as np
  >>> from wdjax.sweep import store
  >>> p = os.path.join(tempfile.mkdtemp(), "t.npz")
  >>> store.save_tree(p, {"metrics": {"loss": np.zeros(2)}, "params": {"w": {0: np.ones(1)}}})
  >>> tree, meta = store.load_tree(p)
  >>> tree["params"]["w"][0]
  array([1.])
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from typing import Any, Callable, Mapping

import jax
import numpy as np

from wdjax import _io
from wdjax.sweep.grid import Grid

MANIFEST = "sweep.json"


# ----------------------------------------------------------------------------- pytrees


def flatten_tree(tree: Any) -> tuple[dict[str, np.ndarray], dict[str, list]]:
  """Flattens a pytree into ({"a/b/0": array}, {"a/b/0": ["a", "b", 0]}): the leaves by
  flat name, and each flat name's key path with its key types (for `unflatten_tree`)."""
  arrays, keys = {}, {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    flat = "/".join(str(getattr(k, "key", k)) for k in path)
    arrays[flat] = np.asarray(leaf)
    keys[flat] = [getattr(k, "key", str(k)) for k in path]
  return arrays, keys


def unflatten_tree(arrays: Mapping[str, np.ndarray], keys: Mapping[str, list]) -> dict:
  """Nested dicts from flat arrays and key paths (a name without a key path is split on "/")."""
  root: dict = {}
  for flat, arr in arrays.items():
    path = keys.get(flat, flat.split("/"))
    node = root
    for k in path[:-1]:
      node = node.setdefault(k, {})
    node[path[-1]] = arr
  return root


def save_tree(path: str | os.PathLike, tree: Any, meta: Mapping[str, Any] | None = None,
              extra: Mapping[str, np.ndarray] | None = None) -> None:
  """Writes a pytree of arrays (plus flat `extra` arrays and `meta`) to one `.npz`, atomically."""
  arrays, keys = flatten_tree(tree)
  both = sorted(set(arrays) & set(extra or {}))
  if both:
    raise ValueError(f"entries {both} are both in the tree and in extra.")
  _io.write_npz(path, {**(extra or {}), **arrays}, {**(meta or {}), "keys": keys})


def load_tree(path: str | os.PathLike) -> tuple[dict, dict]:
  """Reads what `save_tree` wrote: (nested dicts of every entry, metadata); the checksum is
  checked (`wdjax._io.ChecksumError` if it fails)."""
  arrays, meta = _io.load_npz(path)
  return unflatten_tree(arrays, meta.get("keys", {})), meta


# ----------------------------------------------------------------------------- checkpoints


class ChunkWarning(UserWarning):
  """A stored chunk could not be used (damaged, or of another sweep) and is recomputed."""


def _setup_fingerprint(train_fn: Callable) -> str:
  """What identifies the training function's results: its declared `fingerprint` (a
  `wdjax.train.TrainFn`), else an older `signature`, else a digest of its code and the
  values it closes over (`wdjax._io.code_digest`). A function whose closure cannot be
  hashed gets a fresh random token: its chunks are never reused (give it a string
  `fingerprint` attribute to opt in)."""
  for attr in ("fingerprint", "signature"):
    value = getattr(train_fn, attr, None)
    if value is not None:
      return str(value)
  digest = _io.code_digest(train_fn)
  return f"code:{digest}" if digest is not None else f"unhashable:{uuid.uuid4().hex}"


def fingerprint(grid: Grid, chunk: int, seed: int, train_fn: Callable) -> str:
  """A 16-hex-digit hash of everything that determines a sweep's chunks.

  Covered: the grid's axes and values, the chunk size (in grid points, independent of the
  device count), the seed, the float width (x64) and PRNG implementation, the training
  function's qualified name, hyperparameter names and epochs, its declared fingerprint
  (`make_train_fn`'s covers the optimizer and its options, the model definition, the loss,
  batch size and shapes) or else a digest of its code (`_setup_fingerprint`), and the bytes
  of its `data` (the same model on other data is another sweep)."""
  h = hashlib.sha256()
  h.update(json.dumps({"dims": grid.dims, "chunk": chunk, "seed": seed,
                       "fn": getattr(train_fn, "__qualname__", repr(type(train_fn))),
                       "fingerprint": _setup_fingerprint(train_fn),
                       "hparams": list(getattr(train_fn, "hparam_names", None) or ()),
                       "epochs": getattr(train_fn, "epochs", None),
                       "x64": bool(jax.config.jax_enable_x64),
                       "prng": str(jax.config.jax_default_prng_impl)}).encode())
  for n in grid.names:
    h.update(n.encode())
    h.update(np.ascontiguousarray(grid.values[n]).tobytes())
  for leaf in jax.tree.leaves(getattr(train_fn, "data", None)):
    leaf = np.asarray(leaf)
    h.update(f"{leaf.shape}{leaf.dtype}".encode())
    h.update(np.ascontiguousarray(leaf).tobytes())
  return h.hexdigest()[:16]


class ChunkStore:
  """The finished chunks of one sweep in a folder, for resuming an interrupted run.

  Opening checks the folder's `sweep.json` against `fingerprint` (and writes it when the
  folder is new, or when it is unreadable, and `writer`). Each chunk file carries the
  fingerprint and its index in its metadata and a SHA-256 of its content
  (`wdjax._io.write_npz`); `read` returns None, with a `ChunkWarning` naming the file,
  for a chunk that is damaged or not this sweep's, so the caller recomputes it. A chunk
  is thus reused only when it provably belongs to this sweep, whatever happened to
  `sweep.json`.

  Args:
    folder: the checkpoint folder (created when needed).
    fingerprint: from `fingerprint(...)`.
    info: a readable description stored beside it ("grid", "chunk_size", "n_chunks").
    writer: whether this process writes (process 0 of a multi-host run); the others only
      read, so the folder must be shared between hosts.

  Raises:
    ValueError: the folder holds another sweep (its `sweep.json` names another
      fingerprint).
  """

  def __init__(self, folder: str | os.PathLike, fingerprint: str, info: Mapping[str, Any],
               writer: bool = True):
    self.folder, self.writer, self.fingerprint = os.fspath(folder), writer, fingerprint
    manifest = os.path.join(self.folder, MANIFEST)
    old = None
    if os.path.exists(manifest):
      try:
        with open(manifest, encoding="utf-8") as f:
          old = json.load(f)
        if not isinstance(old, dict):
          raise ValueError("not a JSON object")
      except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError included
        warnings.warn(f"{manifest}: unreadable ({e}); rewriting it. Each chunk is checked "
                      "against this sweep's fingerprint on its own.", ChunkWarning,
                      stacklevel=3)
        old = None
    if old is not None:
      if old.get("fingerprint") != fingerprint:
        raise ValueError(f"checkpoint_dir {self.folder!r} holds another sweep "
                         f"({old.get('grid')}, chunk_size {old.get('chunk_size')}); use a new "
                         "directory or delete it.")
    elif writer:
      _io.write_json(manifest, {"fingerprint": fingerprint, **info})

  def path(self, i: int) -> str:
    """The file of chunk `i`."""
    return os.path.join(self.folder, f"chunk_{i:05d}.npz")

  def has(self, i: int) -> bool:
    """Whether chunk `i` is stored."""
    return os.path.exists(self.path(i))

  def read(self, i: int) -> dict | None:
    """Chunk `i`'s outputs (nested dicts of arrays), or None with a `ChunkWarning` when
    the file is missing, damaged (checksum) or holds another sweep's chunk."""
    path = self.path(i)
    if not os.path.exists(path):
      return None
    try:
      tree, meta = load_tree(path)
    except (OSError, ValueError) as e:  # _io.ChecksumError is a ValueError
      warnings.warn(f"{path}: damaged chunk, recomputing it ({e})", ChunkWarning, stacklevel=3)
      return None
    if meta.get("fingerprint") != self.fingerprint or meta.get("index") != i:
      warnings.warn(f"{path}: chunk of another sweep or position (fingerprint "
                    f"{meta.get('fingerprint')}, index {meta.get('index')}; this sweep: "
                    f"{self.fingerprint}, {i}); recomputing it.", ChunkWarning, stacklevel=3)
      return None
    return tree

  def write(self, i: int, outputs: Any) -> None:
    """Stores chunk `i`'s outputs atomically, with the fingerprint and index (nothing on a
    non-writer process)."""
    if self.writer:
      save_tree(self.path(i), outputs, meta={"fingerprint": self.fingerprint, "index": i})

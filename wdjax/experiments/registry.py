"""The experiment registry: what a kind declares, the per-run services it gets, and the
config loaders that validate a kind's own tables.

It sits at the bottom of `wdjax.experiments`: every experiment module imports `Kind`,
`Outcome` and `register` from here and registers itself on import; `wdjax.config` knows
no kind (it validates the generic schema), so `load`, `from_dict` and `from_resolved`
below pass it `KINDS`, from which it takes the kind's `[params]` dataclass, the names of
its `[expected]` checks and its `validate`.

Example:
  >>> import wdjax.experiments  # registers the kinds of this package
  >>> from wdjax.experiments import registry
  >>> cfg = registry.from_dict({"name": "demo", "kind": "matrices", "description": "d",
  ...                           "data": {"source": "lowrank", "outputs": 3},
  ...                           "sweep": {"weight_decay": {"values": [0.1, 1.0]}}})
  >>> type(cfg.params).__name__, cfg.params.steps
  ('MatricesParams', 3000)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import typing
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from wdjax import _io
from wdjax import config as _config
from wdjax.sweep.store import ChunkWarning


class Outcome(NamedTuple):
  """What an experiment returns: arrays, named numbers (checks among them), result rows."""
  metrics: dict[str, np.ndarray]
  values: dict[str, float]
  table: list[tuple[str, str]]


@dataclass(frozen=True)
class Kind:
  """An experiment kind: its parameters, its checks and its run/plot functions.

  - `params`: a frozen dataclass of its own knobs (the config's `[params]` table),
  - `checks`: the names of the numbers its `[expected]` table may bound (with what each
    measures), each checked against an independent reference or a structural fact,
  - `run(cfg, ctx) -> Outcome` and `plot(cfg, metrics, values, out_dir) -> [png paths]`,
  - `validate(cfg)`: raises `ConfigError` on what the generic schema cannot see,
  - `shrink(cfg)`: a smaller config for smoke tests (see `shrink`),
  - `sections`: the config tables its run reads, among "data", "model", "optimizer",
    "train", "sweep", "variants" ("params" and "expected" always are); a config that sets
    another one is refused (it would be ignored). None: every table.
  """
  name: str
  params: type
  checks: Mapping[str, str]
  run: Callable[..., Outcome]
  plot: Callable[..., list[str]]
  validate: Callable[[Any], None] = lambda cfg: None
  shrink: Callable[[Any], Any] | None = None
  sections: tuple[str, ...] | None = None


KINDS: dict[str, Kind] = {}
# Modules of wdjax/experiments/ that failed to import (name -> error), shown when a config
# asks for a kind that is not registered.
IMPORT_ERRORS: dict[str, str] = {}


def register(kind: Kind) -> Kind:
  """Adds `kind` to `KINDS` (a module registers its kinds when it is imported)."""
  KINDS[kind.name] = kind
  return kind


class Context:
  """Per-run services for an experiment: logging, timings and resumable pieces.

  `ctx.cached(name, fn)` returns the dict of arrays `fn()` computes, saved atomically
  under `<run_dir>/chunks/<name>.npz` with a checksum and the run's config hash
  (`fingerprint`); a rerun of the same config loads finished pieces instead of
  recomputing them, so an interrupted run resumes. A piece that is damaged or holds
  another fingerprint is recomputed, with a `ChunkWarning` naming its file.
  """

  def __init__(self, run_dir: str | None = None, log: Callable[[str], None] | None = print,
               fingerprint: str = ""):
    self.run_dir = run_dir
    self.log = log or (lambda s: None)
    self.fingerprint = fingerprint
    self.timings: dict[str, float] = {}
    self.resumed: list[str] = []

  @contextlib.contextmanager
  def timed(self, name: str):
    t0 = time.perf_counter()
    try:
      yield
    finally:
      self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0

  def chunk_dir(self) -> str | None:
    if self.run_dir is None:
      return None
    path = os.path.join(self.run_dir, "chunks")
    os.makedirs(path, exist_ok=True)
    return path

  def cached(self, name: str, fn: Callable[[], Mapping[str, Any]]) -> dict[str, np.ndarray]:
    d = self.chunk_dir()
    path = os.path.join(d, f"{name}.npz") if d else None
    meta_want = {"fingerprint": self.fingerprint, "name": name}
    if path and os.path.exists(path):
      try:
        out, meta = _io.load_npz(path)
      except (OSError, ValueError) as e:  # _io.ChecksumError is a ValueError
        warnings.warn(f"{path}: damaged chunk, recomputing it ({e})", ChunkWarning,
                      stacklevel=2)
      else:
        if meta == meta_want:
          self.resumed.append(name)
          self.log(f"  resumed {name} from {path}")
          return out
        warnings.warn(f"{path}: a chunk of another run ({meta}); recomputing it.",
                      ChunkWarning, stacklevel=2)
    out = {k: np.asarray(v) for k, v in fn().items()}
    if path:
      _io.write_npz(path, out, meta=meta_want)
    return out


# --- configs with their kind's tables validated ------------------------------------------


def _known_kind(raw: Any) -> None:
  """An unknown kind, when some module of the package failed to import, says which."""
  kind = raw.get("kind") if isinstance(raw, Mapping) else None
  if isinstance(kind, str) and kind not in KINDS and IMPORT_ERRORS:
    raise _config.ConfigError(
        f"kind = {kind}: unknown kind; valid kinds: {', '.join(sorted(KINDS))} (modules of "
        f"wdjax/experiments that failed to import: {IMPORT_ERRORS})")


def from_dict(raw: Mapping[str, Any], *, quick: bool = False,
              overrides: typing.Sequence[str | Mapping[str, Any]] = (),
              source: str = "") -> _config.Config:
  """`wdjax.config.from_dict` with the registered kinds: `[params]` becomes the kind's
  dataclass, `[expected]` names are checked against its checks, its `validate` runs."""
  _known_kind(raw)
  return _config.from_dict(raw, quick=quick, overrides=overrides, source=source, kinds=KINDS)


def load(path: str | os.PathLike, *, quick: bool = False,
         overrides: typing.Sequence[str | Mapping[str, Any]] = ()) -> _config.Config:
  """Reads and validates a TOML config with the registered kinds (see `from_dict`).

  Errors name the file: `<path>: <key path>: <what is wrong>`."""
  path = os.fspath(path)
  raw = _config.read_toml(path)
  try:
    return from_dict(raw, quick=quick, overrides=overrides, source=path)
  except _config.ConfigError as e:
    raise _config.ConfigError(f"{path}: {e}") from None


def from_resolved(table: Mapping[str, Any]) -> _config.Config:
  """Rebuilds a `Config` from a run directory's config.json, with the registered kinds."""
  _known_kind(table)
  return _config.from_resolved(table, kinds=KINDS)


def shrink(cfg: _config.Config) -> _config.Config:
  """A smaller version of a (quick) config for smoke tests: every sweep axis cut to its
  first and last value, epochs to at most 2, the kind's own `shrink` applied."""
  axes = {}
  for name, axis in cfg.sweep.axes.items():
    v = axis.values()
    vals = [v[0], v[-1]] if len(v) > 1 else [v[0]]
    axes[name] = (_config.Axis("range", (min(len(v), 2),)) if axis.kind == "range"
                  else _config.Axis("values", tuple(float(x) for x in vals)))
  train = dataclasses.replace(cfg.train, epochs=min(cfg.train.epochs, 2))
  shrunk = dataclasses.replace(cfg, sweep=dataclasses.replace(cfg.sweep, axes=axes), train=train)
  fn = KINDS[cfg.kind].shrink
  return fn(shrunk) if fn else shrunk

"""Config fuzzing (issue 10): mutations of every experiments/*.toml that make it invalid
(unknown keys, wrong types, non-finite and out-of-range numbers, huge axes, malformed
TOML, bad bytes) are all rejected by the loader with a ConfigError naming the key, each in
under a second. The mutations are derived from each file's own keys and from the schema
(a field's type and declared bounds), so a new config or field is fuzzed too.
"""

import copy
import dataclasses
import glob
import math
import os
import time
import tomllib
import typing

import pytest

from wdjax import config, experiments
from wdjax.config import ConfigError
from wdjax.config.schema import _Top

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "experiments", "*.toml")))
SECTION_CLASSES = {"data": config.DataConfig, "model": config.ModelConfig,
                   "train": config.TrainConfig, "optimizer": config.OptimizerConfig}
SLOW_S = 1.0


def _leaves(table, prefix=()):
  """(key path, value) of every scalar or list in a raw table (descriptions left out)."""
  for k, v in table.items():
    if isinstance(v, dict):
      yield from _leaves(v, prefix + (k,))
    elif k != "description":
      yield prefix + (k,), v


def _tables(table, prefix=()):
  yield prefix, table
  for k, v in table.items():
    if isinstance(v, dict) and not (prefix[:1] == ("sweep",) or prefix[:1] == ("expected",)):
      yield from _tables(v, prefix + (k,))


def _field(kind, path):
  """(type hint, metadata) of the schema field at `path`, or None when it is not a field
  of a dataclass (optimizer options, sweep axes, checks, quick overrides)."""
  head, rest = path[0], list(path[1:])
  if len(path) == 1:
    cls, rest = _Top, [head]
  elif head in SECTION_CLASSES:
    cls = SECTION_CLASSES[head]
  elif head == "variants" and len(path) == 3:
    cls, rest = config.OptimizerConfig, [path[2]]
  elif head == "params":
    cls = experiments.KINDS[kind].params
  else:
    return None
  for i, name in enumerate(rest):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
      return None
    hint = typing.get_type_hints(cls)[name]
    if i == len(rest) - 1:
      return hint, fields[name].metadata
    cls = hint
  return None


def _set(raw, path, value):
  out = copy.deepcopy(raw)
  node = out
  for k in path[:-1]:
    node = node[k]
  node[path[-1]] = value
  return out


def _mutations(raw):
  """(description, mutated table, words one of which the error must contain)."""
  kind = raw["kind"]
  for path, value in _leaves({k: v for k, v in raw.items() if k != "quick"}):
    key = path[-1]
    axis = path[0] == "sweep" and len(path) == 3
    name = ".".join(path[:2]) if axis else key
    if isinstance(value, str):
      yield f"{path} = 12345", _set(raw, path, 12345), [name]
    else:
      yield f"{path} = 'text'", _set(raw, path, "text"), [name]
    yield f"{path} = table", _set(raw, path, {"bogus": 1}), [name, path[-2] if axis else name]
    numbers = [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []
    if isinstance(value, list) and value and isinstance(value[0], (int, float)):
      for bad in (math.nan, math.inf, -math.inf):
        yield f"{path}[0] = {bad}", _set(raw, path, [bad] + value[1:]), [name]
    for bad in (math.nan, math.inf, -math.inf) if numbers else ():
      yield f"{path} = {bad}", _set(raw, path, bad), [name]
    field = _field(kind, path)
    if field is not None and numbers:
      hint, meta = field
      if hint is int:
        yield f"{path} = 10**12", _set(raw, path, 10**12), [name]
      if meta.get("lo") is not None and meta["lo"] >= 0:
        yield f"{path} = -1", _set(raw, path, -1), [name]
  for prefix, table in _tables({k: v for k, v in raw.items() if k != "quick"}):
    where = ".".join(prefix)
    yield f"unknown key in [{where}]", _set(raw, prefix + ("bogus_key",), 1) if prefix else {
        **raw, "bogus_key": 1}, ["bogus_key"]
  for axis in raw.get("sweep", {}):
    if axis == "chunk_size":
      continue
    for huge in ({"range": 10**8}, {"logspace": [-3, 1, 10**9]}, {"values": [-1.0]},
                 {"linspace": [0, 1, 0]}):
      yield f"sweep.{axis} = {huge}", _set(raw, ("sweep", axis), huge), [f"sweep.{axis}"]
  yield "kind = ['x']", {**raw, "kind": ["x"]}, ["kind"]
  yield "name with a slash", {**raw, "name": "a/b"}, ["name"]
  yield "quick = 3", {**raw, "quick": 3}, ["quick"]
  yield "unknown section in [quick]", _set(raw, ("quick", "bogus_section"), {"x": 1}), ["bogus_section"]


def _load_raw(raw, tmp_path, name):
  path = tmp_path / f"{name}.toml"
  path.write_text(_dumps(raw))
  return experiments.load(str(path))


def _dumps(raw):
  """A minimal TOML writer for the mutated tables (inline tables, floats with nan/inf)."""
  def value(v):
    if isinstance(v, bool):
      return "true" if v else "false"
    if isinstance(v, float):
      return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
      return str(v)
    if isinstance(v, str):
      return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, list):
      return "[" + ", ".join(value(x) for x in v) + "]"
    return "{" + ", ".join(f'"{k}" = {value(x)}' for k, x in v.items()) + "}"
  return "\n".join(f'"{k}" = {value(v)}' for k, v in raw.items()) + "\n"


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_every_invalid_mutation_is_rejected_naming_the_key(path, tmp_path):
  with open(path, "rb") as f:
    raw = tomllib.load(f)
  assert _load_raw(raw, tmp_path, "original").name == raw["name"]  # the writer round-trips
  accepted, unnamed, slow = [], [], []
  n = 0
  for what, mutated, words in _mutations(raw):
    n += 1
    t0 = time.perf_counter()
    try:
      _load_raw(mutated, tmp_path, "mutated")
    except ConfigError as e:
      if not any(w in str(e) for w in words):
        unnamed.append((what, str(e)[:200]))
    else:
      accepted.append(what)
    if time.perf_counter() - t0 > SLOW_S:
      slow.append((what, time.perf_counter() - t0))
  assert n > 30
  assert not accepted, f"accepted invalid mutations: {accepted}"
  assert not unnamed, f"errors not naming the key: {unnamed}"
  assert not slow, f"mutations taking > {SLOW_S} s: {slow}"


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_malformed_toml_and_bad_bytes_name_the_file(path, tmp_path):
  with open(path, "rb") as f:
    blob = f.read()
  cases = {"truncated": blob[: len(blob) // 2] + b"\n[broken", "bad bytes": b"\xff\xfe" + blob,
           "nul": blob.replace(b"=", b"\x00", 1), "empty": b""}
  for what, content in cases.items():
    p = tmp_path / "c.toml"
    p.write_bytes(content)
    with pytest.raises(ConfigError) as e:
      experiments.load(str(p))
    assert str(p) in str(e.value), (what, str(e.value))

"""Reading, merging, overriding and validating whole configs; their JSON form and hash."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
import tomllib
import typing
from typing import Any, Mapping

from wdjax.data import SKLEARN_DATASETS
from wdjax.config.fields import _build, _check, _sweep, _type_name, _unknown
from wdjax.config.optimizer import _optimizer
from wdjax.config.schema import (_TOP_KEYS, AXIS_KINDS, NAME_PATTERN, SECTIONS, Config,
                                 ConfigError, DataConfig, KindSchema, ModelConfig, TrainConfig,
                                 _Top)


def _is_axis_spec(x: Any) -> bool:
  return isinstance(x, Mapping) and len(x) == 1 and next(iter(x)) in AXIS_KINDS


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict:
  """Deep merge of two raw tables; a sweep-axis spec or a list is replaced whole."""
  out = copy.deepcopy(dict(base))
  for k, v in over.items():
    if (isinstance(v, Mapping) and isinstance(out.get(k), Mapping)
        and not _is_axis_spec(v) and not _is_axis_spec(out[k])):
      out[k] = merge(out[k], v)
    else:
      out[k] = copy.deepcopy(v)
  return out


def parse_override(text: str) -> dict:
  """`"optimizer.learning_rate=0.1"` -> `{"optimizer": {"lr": 0.1}}`; the value is parsed as TOML
  (so `0.1`, `true`, `[1, 2]`, `{values = [0, 3]}`), else taken as a string."""
  if "=" not in text:
    raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set optimizer.learning_rate=0.1.")
  key, value = text.split("=", 1)
  key = key.strip()
  if not key or any(not p for p in key.split(".")):
    raise ConfigError(f"--set {text!r}: empty key; expected e.g. optimizer.learning_rate=0.1.")
  try:
    parsed = tomllib.loads(f"v = {value.strip()}")["v"]
  except tomllib.TOMLDecodeError:
    parsed = value.strip()
  out: dict = {}
  node = out
  parts = key.split(".")
  for p in parts[:-1]:
    node = node.setdefault(p, {})
  node[parts[-1]] = parsed
  return out


def from_dict(raw: Mapping[str, Any], *, quick: bool = False,
              overrides: typing.Sequence[str | Mapping[str, Any]] = (),
              source: str = "", kinds: Mapping[str, KindSchema] | None = None) -> Config:
  """Validates a raw config table (as read from TOML) into a `Config`.

  Args:
    raw: the table.
    quick: apply the config's `[quick]` overrides.
    overrides: `"key.path=value"` strings or raw tables, applied last.
    source: the file name, kept for messages and provenance.
    kinds: the experiment kinds by name (`wdjax.experiments.KINDS`): `kind` must be one of
      them, `[params]` becomes its dataclass, `[expected]` may name only its checks, and
      its `validate` runs last. None: any kind, `params` kept as a plain table.

  Returns:
    A frozen `Config`.

  Raises:
    ConfigError: naming the offending key path and what would be valid.
  """
  if not isinstance(raw, Mapping):
    raise ConfigError(f"config: expected a table, got {_type_name(raw)}.")
  raw = dict(raw)
  for key in raw:
    if key not in _TOP_KEYS:
      raise _unknown(str(key), _TOP_KEYS, "")
  quick_table = raw.get("quick", {})
  if not isinstance(quick_table, Mapping):
    raise ConfigError(f"quick: expected a table of overrides, got {_type_name(quick_table)}.")
  # The [quick] table must always apply cleanly, so a quick run cannot drift from the config.
  layers = [quick_table] if quick else []
  layers += [parse_override(o) if isinstance(o, str) else o for o in overrides]
  resolved = raw
  for layer in layers:
    for key in layer:
      if key in ("quick",) or key not in _TOP_KEYS:
        raise _unknown(str(key), [k for k in _TOP_KEYS if k != "quick"], "override ")
    resolved = merge(resolved, layer)
  for name in ("name", "kind", "description"):
    if name not in resolved:
      raise ConfigError(f"{name}: missing; every config needs name, kind and description.")
  # The kind is read after the overrides: `--set kind=...` selects another kind (or fails).
  kind = resolved["kind"]
  if not isinstance(kind, str):
    raise ConfigError(f"kind: expected a string (an experiment kind), got "
                      f"{_type_name(kind)} ({kind!r:.60}).")
  if kinds is not None and kind not in kinds:
    raise _unknown(kind, kinds, "kind = ")
  spec = None if kinds is None else kinds[kind]
  _check_sections(spec, kind, resolved, quick_table)
  if not quick and quick_table:
    from_dict(raw, quick=True, overrides=overrides, source=source, kinds=kinds)  # [quick] too
  top = {k: v for k, v in resolved.items() if k in ("name", "kind", "description", "seed")}
  cfg_top = _build(_Top, top, "")
  optimizer = _optimizer(resolved.get("optimizer", {}), "optimizer.")
  variants_raw = resolved.get("variants", {})
  if not isinstance(variants_raw, Mapping):
    raise ConfigError("variants: expected a table of name = {optimizer overrides}.")
  base_opt = resolved.get("optimizer", {})
  variants = {name: _optimizer(merge(base_opt, v) if isinstance(v, Mapping) else v,
                           f"variants.{name}.")
              for name, v in variants_raw.items()}
  expected_raw = resolved.get("expected", {})
  if not isinstance(expected_raw, Mapping):
    raise ConfigError("expected: expected a table of check = {max|min|value = ...}.")
  data = _build(DataConfig, resolved.get("data", {}), "data.")
  if data.source == "npz":
    if not data.path:
      raise ConfigError("data.path: missing; source = 'npz' needs the path of a .npz file.")
    path = data.path
    if source and not os.path.isabs(path) and not os.path.exists(path):
      path = os.path.join(os.path.dirname(source), path)
    if not os.path.isfile(path):
      raise ConfigError(f"data.path = {data.path!r}: no such file. Give the path of a .npz "
                        "with x_train, y_train, x_val, y_val (relative to the working "
                        "directory or to the config file).")
    data = dataclasses.replace(data, path=os.path.abspath(path))
  if data.source == "sklearn" and data.name not in SKLEARN_DATASETS:
    close = difflib.get_close_matches(data.name, SKLEARN_DATASETS, n=1)
    raise ConfigError(f"data.name = {data.name!r}: not a scikit-learn dataset wdjax ships; "
                      + (f"did you mean {close[0]!r}? " if close else "")
                      + "choose digits, diabetes or breast_cancer.")
  cfg = Config(
      name=cfg_top.name, kind=kind, description=cfg_top.description, seed=cfg_top.seed,
      data=data,
      model=_build(ModelConfig, resolved.get("model", {}), "model."),
      optimizer=optimizer,
      train=_build(TrainConfig, resolved.get("train", {}), "train."),
      sweep=_sweep(resolved.get("sweep", {})),
      variants=variants,
      params=_params(spec, resolved.get("params", {})),
      expected={k: _check(k, v, None if spec is None else spec.checks)
                for k, v in expected_raw.items()},
      quick=dict(quick_table), source=source, is_quick=quick)
  if not re.fullmatch(NAME_PATTERN, cfg.name):
    raise ConfigError(f"name = {cfg.name!r:.60}: must be a plain file name of 1-100 letters, "
                      "digits, '.', '_' or '-', starting with a letter or digit (it names the "
                      "run directory).")
  for vname in variants:
    if not re.fullmatch(NAME_PATTERN, vname):
      raise ConfigError(f"variants.{vname!r:.60}: a variant's name must be 1-100 letters, "
                        "digits, '.', '_' or '-', starting with a letter or digit (it names "
                        "a folder of the run).")
  if (cfg.data.source in ("d2l", "lowrank")
      and cfg.train.batch_size > cfg.data.n_train):
    raise ConfigError(f"train.batch_size = {cfg.train.batch_size} exceeds data.n_train = "
                      f"{cfg.data.n_train}; use 0 (or n_train) for full batch.")
  if cfg.data.source == "sklearn" and cfg.data.val_fraction + cfg.data.test_fraction >= 1:
    raise ConfigError(f"data.val_fraction + data.test_fraction = "
                      f"{cfg.data.val_fraction + cfg.data.test_fraction:g}: must be < 1 (some "
                      "data must be left to train on).")
  if spec is not None:
    spec.validate(cfg)
  return cfg


def _check_sections(spec: KindSchema | None, kind: str, resolved: Mapping[str, Any],
                    quick_table: Mapping[str, Any]) -> None:
  """A table the kind does not read (`Kind.sections`) is an error, not silently ignored."""
  reads = getattr(spec, "sections", None)
  if reads is None:
    return
  for where, table in (("", resolved), ("quick.", quick_table)):
    for key in table:
      if key in SECTIONS and key not in reads:
        raise ConfigError(
            f"{where}{key}: experiment kind {kind!r} does not read [{key}] (it reads "
            f"{', '.join(f'[{k}]' for k in (*reads, 'params', 'expected'))}); remove it.")


def _params(spec: KindSchema | None, raw: Any) -> Any:
  """The `[params]` table as the kind's dataclass (a plain table when no kind is given)."""
  if spec is not None:
    return _build(spec.params, raw, "params.")
  if not isinstance(raw, Mapping):
    raise ConfigError(f"params: expected a table, got {_type_name(raw)} ({raw!r}).")
  return copy.deepcopy(dict(raw))


def read_toml(path: str | os.PathLike) -> dict:
  """The raw table of a TOML config file (ConfigError when missing or not TOML)."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ConfigError(f"{path}: no such config file. `wdjax list` shows the experiments.")
  try:
    with open(path, "rb") as f:
      blob = f.read()
  except OSError as e:
    raise ConfigError(f"{path}: cannot read it ({e.strerror or e}).") from None
  try:
    text = blob.decode("utf-8")
  except UnicodeDecodeError as e:
    raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}: {blob[e.start:e.start + 1]!r})"
                      "; a config is a UTF-8 TOML file.") from None
  try:
    return tomllib.loads(text)
  except tomllib.TOMLDecodeError as e:
    raise ConfigError(f"{path}: not valid TOML: {e}") from None


def load(path: str | os.PathLike, *, quick: bool = False,
         overrides: typing.Sequence[str | Mapping[str, Any]] = (),
         kinds: Mapping[str, KindSchema] | None = None) -> Config:
  """Reads and validates a TOML config (see `from_dict`); errors name the file.

  `wdjax.experiments.load(path)` is this with the registered kinds."""
  path = os.fspath(path)
  raw = read_toml(path)
  try:
    return from_dict(raw, quick=quick, overrides=overrides, source=path, kinds=kinds)
  except ConfigError as e:
    raise ConfigError(f"{path}: {e}") from None


def from_resolved(table: Mapping[str, Any],
                  kinds: Mapping[str, KindSchema] | None = None) -> Config:
  """Rebuilds a `Config` from `to_dict`'s output (a run directory's config.json); `kinds`
  as in `from_dict`."""
  table = dict(table)
  source, is_quick = table.pop("source", ""), table.pop("is_quick", False)
  # to_dict writes every table, with defaults; those the kind does not read are dropped
  # here (the config's hash is computed from the resolved Config, so it is unchanged).
  spec = (kinds or {}).get(table.get("kind")) if isinstance(table.get("kind"), str) else None
  reads = getattr(spec, "sections", None)
  if reads is not None:
    table = {k: v for k, v in table.items() if k not in SECTIONS or k in reads}
  # Variants were stored fully resolved; merging them over the optimizer again is a no-op.
  cfg = from_dict(table, source="", kinds=kinds)
  return dataclasses.replace(cfg, source=source, is_quick=is_quick)

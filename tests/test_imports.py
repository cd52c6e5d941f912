"""Imports point one way: no cycle among wdjax's modules, and nothing imports upward.

Every module of the package is parsed with `ast` (nothing is imported); every `import` and
`from ... import` statement counts, at module level and inside functions alike, so a cycle
cannot hide in a function-level import. An import of a package's submodule counts as an
edge to that submodule only (Python also runs the parent's `__init__`, but counting that
would make every `from wdjax.experiments.registry import ...` a cycle with the package
that imports its own modules).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "wdjax"

# Layers, bottom to top (docs/conventions.md, "Shape of the code"): a module may import
# its own layer and the ones below, never one above. The longest matching prefix decides;
# a module that matches none fails the test, so a new module must be placed here.
LAYERS: dict[str, int] = {
    "wdjax._io": 0,
    "wdjax._validate": 0,
    "wdjax._progress": 0,
    "wdjax.conftest": 0,
    "wdjax.penalties": 1,
    "wdjax.prox": 1,
    "wdjax.dynamics": 1,
    "wdjax.leaf_kinds": 2,
    "wdjax.masks": 2,
    "wdjax.leafwise": 2,
    "wdjax.transforms": 3,
    "wdjax.aliases": 4,
    "wdjax.variants": 4,
    "wdjax.modern": 4,
    "wdjax.reference": 4,
    "wdjax.constrained": 4,
    "wdjax.scaling": 1,
    "wdjax.optimizers": 5,
    "wdjax.path": 5,
    "wdjax.kernels": 5,                 # fused steps over the presets (aliases)
    "wdjax.tune": 5,
    "wdjax.layers": 5,
    "wdjax.models": 6,
    "wdjax.data": 6,
    "wdjax.tracking": 6,
    "wdjax.transformer": 6,
    "wdjax.corpus": 6,
    "wdjax.train": 7,
    "wdjax.sweep": 8,
    "wdjax": 9,                          # the package itself: the library's public names
    "wdjax.config": 10,
    "wdjax.experiments.registry": 11,
    "wdjax.experiments._common": 12,
    "wdjax.experiments._digits": 13,
    # figures of dynamics from plain arrays (numpy, _io): below the experiments that draw them
    "wdjax.dynamics_plots": 13,
    "wdjax.experiments.": 14,            # one module per experiment
    "wdjax.experiments": 15,             # the package: imports (registers) them all
    "wdjax.report": 16,
    "wdjax.plots": 16,
    "wdjax.runner": 17,
    "wdjax.cli": 18,
    "wdjax.__main__": 19,
}


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(PKG.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, pathlib.Path]:
  out: dict[str, pathlib.Path] = {}
  for p in sorted(PKG.rglob("*.py")):
    name = _module_name(p)
    # a module next to a package of the same name is shadowed by it: one of them is stale
    assert name not in out, f"{name} is both {out[name]} and {p}"
    out[name] = p
  return out


MODULES = _modules()


def _is_package(name: str) -> bool:
  return MODULES.get(name, pathlib.Path()).name == "__init__.py"


def _resolve(name: str, level: int, importer: str) -> str:
  """The absolute module name of a (possibly relative) `from` target."""
  if level == 0:
    return name
  base = importer.split(".")
  if not _is_package(importer):
    base = base[:-1]
  base = base[:len(base) - (level - 1)]
  return ".".join(base + ([name] if name else []))


def _known(name: str) -> str | None:
  """`name` if it is a wdjax module, else its longest prefix that is one."""
  parts = name.split(".")
  for k in range(len(parts), 0, -1):
    cand = ".".join(parts[:k])
    if cand in MODULES:
      return cand
  return None


def imports_of(name: str) -> set[str]:
  """The wdjax modules `name` imports anywhere in its source (module level or in a
  function), by `import a.b`, `from a import b` (b a submodule or a name) or a relative
  import."""
  tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      targets = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = _resolve(node.module or "", node.level, name)
      # `from mod import x` imports the module. `from pkg import sub` imports the
      # submodule, and reads it off the package: an edge to the package too, so a module
      # inside a subpackage must name its sibling as `import pkg.sub as sub` (or
      # `from pkg.sub import x`), never through the package that imports it. The root
      # package `wdjax` only re-exports and is exempt.
      targets = []
      for a in node.names:
        if f"{base}.{a.name}" in MODULES:
          targets.append(f"{base}.{a.name}")
          if base != "wdjax":
            targets.append(base)
        else:
          targets.append(base)
    else:
      continue
    for t in targets:
      mod = _known(t)
      if mod is not None and mod != name:
        out.add(mod)
  return out


GRAPH = {name: imports_of(name) for name in MODULES}


def _matches(prefix: str, name: str) -> bool:
  """"a.b" matches a.b and its submodules, "a.b." only the submodules; the root package
  "wdjax" only itself (so that an undeclared module fails instead of landing there)."""
  if prefix.endswith("."):
    return name.startswith(prefix)
  if prefix == PKG.name:
    return name == prefix
  return name == prefix or name.startswith(prefix + ".")


def layer(name: str) -> int:
  """The layer of the longest entry of LAYERS that matches `name`."""
  hits = [p for p in LAYERS if _matches(p, name)]
  if not hits:
    raise KeyError(f"{name}: no layer declared; add it to LAYERS in {__file__}.")
  return LAYERS[max(hits, key=len)]


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One cycle of `graph` as [a, b, ..., a], or None (iterative depth-first search)."""
  color = dict.fromkeys(graph, 0)  # 0 new, 1 on the stack, 2 done
  for root in sorted(graph):
    if color[root]:
      continue
    stack = [(root, iter(sorted(graph[root])))]
    path = [root]
    color[root] = 1
    while stack:
      node, it = stack[-1]
      nxt = next(it, None)
      if nxt is None:
        color[node] = 2
        stack.pop()
        path.pop()
      elif color.get(nxt, 2) == 1:
        return path[path.index(nxt):] + [nxt]
      elif color.get(nxt, 2) == 0:
        color[nxt] = 1
        stack.append((nxt, iter(sorted(graph[nxt]))))
        path.append(nxt)
  return None


def test_the_parser_sees_the_imports():
  # Structural facts of the package: the experiments import their registry, the package
  # imports the experiments, the command line imports the runner.
  assert len(MODULES) > 20
  assert "wdjax.experiments.registry" in GRAPH["wdjax.experiments.matrices"]
  assert "wdjax.experiments.matrices" in GRAPH["wdjax.experiments"]
  assert "wdjax.runner" in GRAPH["wdjax.cli"]
  assert "wdjax.config" in GRAPH["wdjax.experiments.registry"]


def test_the_cycle_finder_finds_cycles():
  assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
  assert _find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_relative_imports_resolve():
  assert _resolve("registry", 1, "wdjax.experiments.matrices") == "wdjax.experiments.registry"
  assert _resolve("", 1, "wdjax.experiments") == "wdjax.experiments"
  assert _resolve("config", 2, "wdjax.experiments.matrices") == "wdjax.config"


def test_no_import_cycle():
  cycle = _find_cycle(GRAPH)
  assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_has_a_layer():
  missing = [m for m in MODULES if not any(_matches(p, m) for p in LAYERS)]
  assert not missing, f"declare a layer for {missing} in LAYERS"
  assert layer("wdjax.experiments.matrices") == LAYERS["wdjax.experiments."]
  assert layer("wdjax.experiments") == LAYERS["wdjax.experiments"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_nothing_imports_upward(name):
  up = sorted(f"{t} (layer {layer(t)})" for t in GRAPH[name] if layer(t) > layer(name))
  assert not up, f"{name} (layer {layer(name)}) imports upward: {', '.join(up)}"

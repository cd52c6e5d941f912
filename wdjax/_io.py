"""Atomic files: bytes, text, JSON, `.npz` archives with a checksum, and figures.

Every writer in wdjax goes through `write_bytes`: the content goes to a temporary file in
the destination's folder, which then replaces the destination with `os.replace` (atomic on
POSIX and Windows within one file system). An interrupted write leaves the old file or
none, never half of one. The file gets the mode a plain `open(path, "w")` would give it
(0o666 minus the umask), not the 0o600 of `tempfile.mkstemp`.

An `.npz` written by `write_npz` is a plain NumPy archive (`np.load` reads it and sees
exactly the arrays given, plus a `__meta__` entry when metadata is given); the SHA-256 of
its entries is kept in the zip archive's comment, where `np.load` ignores it and
`load_npz` checks it:

  checksum = SHA-256 over the entries in name order of (len(name), name, len(data), data),
  data being each entry's `.npy` bytes.

Example:
  >>> import os, tempfile, numpy as np
  >>> from wdjax import _io
  >>> path = os.path.join(tempfile.mkdtemp(), "m.npz")
  >>> _io.write_npz(path, {"loss": np.arange(3.0)}, meta={"epochs": 3})
  >>> arrays, meta = _io.load_npz(path)
  >>> arrays["loss"], meta
  (array([0., 1., 2.]), {'epochs': 3})
  >>> with np.load(path) as f:  # a plain npz for everyone else
  ...   sorted(f.files)
  ['__meta__', 'loss']
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import zipfile
from typing import Any, Mapping

import numpy as np

META = "__meta__"  # the npz entry holding the JSON metadata
_CHECKSUM_PREFIX = b"wdjax-sha256:"


class ChecksumError(ValueError):
  """A file's content does not match the checksum stored with it (corrupted or edited)."""


def _umask() -> int:
  """The process umask, read without changing it where the OS allows (Linux), since
  `os.umask` can only be read by setting it, which races with other threads' file creation."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("Umask:"):
          return int(line.split()[1], 8)
  except (OSError, ValueError, IndexError):
    pass
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """Writes `data` to `path` atomically, creating its folder.

  A temporary file in the same folder is written, given mode 0o666 & ~umask and moved to
  `path` with `os.replace`; on any error it is removed and `path` is left as it was.

  Args:
    path: destination file.
    data: the whole content.

  Example:
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp(), "sub", "x.bin")
    >>> write_bytes(p, b"abc"); p.read_bytes()
    b'abc'
  """
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path))
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes `text` (UTF-8) to `path` atomically; see `write_bytes`."""
  write_bytes(path, text.encode("utf-8"))


def json_default(x: Any) -> Any:
  """JSON for NumPy scalars and arrays (as numbers and lists); `str(x)` for anything else."""
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  return str(x)


def write_json(path: str | os.PathLike, obj: Any) -> None:
  """Writes `obj` as indented JSON with sorted keys (NumPy values as numbers/lists),
  atomically.

  Example:
    >>> import pathlib, tempfile, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp(), "s.json")
    >>> write_json(p, {"b": np.float32(0.5), "a": np.arange(2)}); print(p.read_text(), end="")
    {
      "a": [
        0,
        1
      ],
      "b": 0.5
    }
  """
  write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n")


def _digest(entries: Mapping[str, bytes]) -> str:
  h = hashlib.sha256()
  for name in sorted(entries):
    raw = name.encode("utf-8")
    h.update(len(raw).to_bytes(8, "little") + raw)
    h.update(len(entries[name]).to_bytes(8, "little"))
    h.update(entries[name])
  return h.hexdigest()


def write_npz(path: str | os.PathLike, arrays: Mapping[str, Any],
              meta: Mapping[str, Any] | None = None) -> None:
  """Writes a dict of arrays (and optional JSON metadata) to an `.npz`, with a checksum,
  atomically.

  Args:
    path: destination file (conventionally ending in ".npz").
    arrays: name -> array-like (no object arrays: the archive loads without pickle).
    meta: JSON-serializable metadata, stored as the `__meta__` entry.

  Raises:
    ValueError: an array is named `__meta__`.
  """
  if META in arrays:
    raise ValueError(f"{META!r} is reserved for the metadata; rename that array.")
  entries = {k: np.asarray(v) for k, v in arrays.items()}
  if meta is not None:
    entries[META] = np.asarray(json.dumps(meta, default=json_default))
  buf = io.BytesIO()
  np.savez(buf, **entries)
  with zipfile.ZipFile(buf, "a") as zf:
    digest = _digest({n: zf.read(n) for n in zf.namelist()})
    zf.comment = _CHECKSUM_PREFIX + digest.encode("ascii")
  write_bytes(path, buf.getvalue())


def load_npz(path: str | os.PathLike, *, verify: bool = True
             ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
  """Reads an `.npz`: its arrays and its metadata (`{}` when it has none).

  The checksum written by `write_npz` is checked when `verify`; an archive without one
  (written by `np.savez`) is read as it is.

  Args:
    path: the file.
    verify: check the stored checksum.

  Returns:
    (name -> array, metadata dict).

  Raises:
    ChecksumError: the content does not match its checksum, or the archive is damaged;
      the message names the file.
  """
  path = os.fspath(path)
  with open(path, "rb") as f:
    blob = f.read()
  try:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
      raw = {n: zf.read(n) for n in zf.namelist()}  # zipfile checks each entry's CRC-32
      comment = zf.comment
  except (zipfile.BadZipFile, EOFError, OSError) as e:
    raise ChecksumError(f"{path}: not a readable .npz archive ({e}); the file is damaged "
                        "or was not written completely. Delete it and write it again.") from None
  if verify and comment.startswith(_CHECKSUM_PREFIX):
    want = comment[len(_CHECKSUM_PREFIX):].decode("ascii", "replace")
    got = _digest(raw)
    if got != want:
      raise ChecksumError(f"{path}: checksum mismatch (stored sha256 {want[:16]}..., content "
                          f"{got[:16]}...): the file was modified or damaged. Delete it and "
                          "write it again.")
  arrays = {}
  for name, data in raw.items():
    key = name[:-4] if name.endswith(".npy") else name
    arrays[key] = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
  meta_arr = arrays.pop(META, None)
  meta = json.loads(str(meta_arr)) if meta_arr is not None else {}
  return arrays, meta


# --- stable digests of code -------------------------------------------------------------

_SIMPLE = (bool, int, float, complex, str, bytes, type(None))


def code_digest(obj: Any, _depth: int = 0) -> str | None:
  """A SHA-256 (16 hex digits) of what a Python callable computes, stable across processes;
  None when it cannot be told (then nothing computed with it may be reused).

  Hashed: the bytecode, constants and names of a function (nested code included), its
  defaults and the values in its closure and the globals it reads, when these are numbers,
  strings, NumPy arrays, tuples/lists/dicts of them or again functions (described the same
  way, to a depth of 4; wdjax's own functions too, since a working tree changes without a
  version); a module or a function of an installed package (site-packages) by its name; a
  `functools.partial` by its function and arguments; an object with a string
  `fingerprint` attribute (an explicit opt-in, e.g. for a callable class) by that string.
  Anything else (a closure over an arbitrary object) gives None.

  Args:
    obj: a callable or a value.

  Returns:
    16 hex digits, or None.

  Example:
    >>> f = lambda hp: hp["learning_rate"] * 2
    >>> g = lambda hp: hp["learning_rate"] * 3
    >>> code_digest(f) == code_digest(lambda hp: hp["learning_rate"] * 2), code_digest(f) == code_digest(g)
    (True, False)
  """
  desc = _describe_code(obj, _depth)
  return None if desc is None else hashlib.sha256(desc.encode()).hexdigest()[:16]


def _describe_code(obj: Any, depth: int) -> str | None:
  import functools
  import types
  if depth > 4:
    return None
  rec = lambda x: _describe_code(x, depth + 1)
  if isinstance(obj, _SIMPLE):
    return repr(obj)
  if isinstance(obj, np.ndarray) or isinstance(obj, np.generic):
    arr = np.asarray(obj)
    if arr.dtype == object:
      return None
    return f"array{arr.shape}{arr.dtype}:{hashlib.sha256(arr.tobytes()).hexdigest()}"
  if isinstance(obj, (tuple, list)):
    parts = [rec(x) for x in obj]
    return None if None in parts else f"{type(obj).__name__}({','.join(parts)})"
  if isinstance(obj, dict):
    items = [(repr(k), rec(v)) for k, v in obj.items()]
    return None if any(v is None for _, v in items) else "{" + ",".join(
        f"{k}:{v}" for k, v in sorted(items)) + "}"
  fp = getattr(obj, "fingerprint", None)
  if isinstance(fp, str):
    return f"fingerprint:{fp}"
  if isinstance(obj, types.ModuleType):
    return f"module:{obj.__name__}"
  if isinstance(obj, functools.partial):
    parts = [rec(obj.func), rec(obj.args), rec(dict(obj.keywords))]
    return None if None in parts else f"partial({','.join(parts)})"
  if isinstance(obj, types.MethodType):
    inner = rec(obj.__func__)
    owner = rec(obj.__self__)
    return None if inner is None or owner is None else f"method({inner},{owner})"
  if isinstance(obj, types.FunctionType):
    module = getattr(obj, "__module__", "") or ""
    if _installed(module):  # a library function: its name and version identify it
      return f"fn:{module}.{obj.__qualname__}"
    code = _describe_codeobj(obj.__code__)
    parts = [code, rec(obj.__defaults__), rec(obj.__kwdefaults__)]
    cells = [rec(c.cell_contents) if _cell_full(c) else "empty"
             for c in (obj.__closure__ or ())]
    names = [n for n in sorted(_global_names(obj.__code__))
             if n in obj.__globals__ and obj.__globals__[n] is not obj]
    globs = [rec(obj.__globals__[n]) for n in names]
    if None in parts or None in cells or None in globs:
      return None
    globs = [f"{n}={g}" for n, g in zip(names, globs)]
    return f"fn:{obj.__qualname__}[{';'.join(parts)}|{';'.join(cells)}|{';'.join(globs)}]"
  if isinstance(obj, type) or callable(obj) and hasattr(obj, "__qualname__"):
    module = getattr(obj, "__module__", "") or ""
    if _installed(module) or module == "builtins":
      return f"obj:{module}.{obj.__qualname__}"
  return None


def _cell_full(cell: Any) -> bool:
  try:
    cell.cell_contents
  except ValueError:
    return False
  return True


def _describe_codeobj(code: Any) -> str:
  import types
  consts = [(_describe_codeobj(c) if isinstance(c, types.CodeType) else repr(c))
            for c in code.co_consts]
  return f"{hashlib.sha256(code.co_code).hexdigest()}:{consts}:{code.co_names}"


def _global_names(code: Any) -> set:
  import types
  names = set(code.co_names)
  for c in code.co_consts:
    if isinstance(c, types.CodeType):
      names |= _global_names(c)
  return names


def _installed(module: str) -> bool:
  """Whether `module` belongs to an installed package (in site-packages), whose functions
  are identified by name (the package versions are recorded with each run)."""
  mod = sys.modules.get(module.split(".")[0])
  path = getattr(mod, "__file__", None) or ""
  return module == "builtins" or "site-packages" in path or "dist-packages" in path


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = 100) -> str:
  """Lays out a matplotlib figure, writes it atomically to `path` as a PNG and closes it.

  Args:
    fig: a `matplotlib.figure.Figure`.
    path: destination file.
    dpi: resolution.

  Returns:
    `path`, as a string.
  """
  path = os.fspath(path)
  buf = io.BytesIO()
  fig.tight_layout()
  fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
  # A figure is registered with pyplot only if pyplot made it, i.e. pyplot is loaded: no
  # need to import it (and matplotlib's backend) just to close.
  plt = sys.modules.get("matplotlib.pyplot")
  if plt is not None:
    plt.close(fig)
  write_bytes(path, buf.getvalue())
  return path

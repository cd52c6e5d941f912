"""Sharding across devices and hosts gives the results of one device.

Each check runs tests/sweep_worker.py in subprocesses: XLA_FLAGS (fake CPU devices) must
be set before JAX starts, and `jax.distributed` needs one process per host. Every
subprocess is bounded by a timeout.
"""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(__file__), "sweep_worker.py")
TIMEOUT = 240
# Tolerance: the per-device vmap batch differs between 1 and 4 devices (4 runs vs 1 per
# device), and XLA:CPU may then vectorize the loss reductions differently; the float32
# losses then differ in the last bit or two (observed 2.4e-7 on losses of ~2), never more.
RTOL, ATOL = 1e-5, 1e-6


def _env():
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  env["JAX_PLATFORMS"] = "cpu"
  return env


def _run(args):
  return subprocess.run([sys.executable, WORKER, *args], env=_env(), capture_output=True,
                        text=True, timeout=TIMEOUT)


def _assert_same(a, b):
  keys = [k for k in a.files if k.startswith(("m/", "p/")) or k == "diverged"]
  assert keys and set(keys) <= set(b.files)
  for k in keys:
    np.testing.assert_allclose(b[k], a[k], rtol=RTOL, atol=ATOL, err_msg=k)


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("four") / "four.npz")
  proc = _run([out, "--devices", "4", "--also-one-device"])
  assert proc.returncode == 0, proc.stderr[-3000:]
  return np.load(out), np.load(out[:-4] + ".one.npz")


def test_four_devices_equal_one(four_devices):
  four, one = four_devices
  assert int(four["n_devices"]) == 4 and int(one["n_devices"]) == 1
  _assert_same(one, four)


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_equal_one(four_devices, tmp_path):
  _, one = four_devices
  port = _free_port()
  outs = [str(tmp_path / f"p{i}.npz") for i in range(2)]
  # Logs go to files, not pipes: a process blocked on a full pipe would stall its peer.
  logs = [open(tmp_path / f"p{i}.log", "w+") for i in range(2)]
  procs = [subprocess.Popen([sys.executable, WORKER, outs[i], "--coordinator",
                             f"127.0.0.1:{port}", "--num-processes", "2", "--process-id",
                             str(i)], env=_env(), stdout=logs[i], stderr=subprocess.STDOUT)
           for i in range(2)]
  try:
    for p in procs:
      p.wait(timeout=TIMEOUT)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  for p, log in zip(procs, logs):
    log.seek(0)
    assert p.returncode == 0, log.read()[-3000:]
    log.close()
  for path in outs:
    res = np.load(path)
    assert int(res["process_count"]) == 2 and int(res["n_devices"]) == 2
    _assert_same(one, res)


def test_use_cpu_cores_makes_a_device_per_core_and_sweeps_shard_over_them():
  code = ("import jax\nfrom wdjax import sweep\n"
          "n = sweep.use_cpu_cores(3)\n"
          "g = sweep.grid(weight_decay=[0.0, 1.0])\n"
          "res = sweep.run(lambda h, k: {'loss': h['weight_decay'][None] * 2.0}, g, progress=False)\n"
          "print(n, len(jax.devices()), res.metrics['loss'].ravel().tolist())\n"
          "try:\n  sweep.use_cpu_cores(2)\nexcept RuntimeError as e:\n  print('late:', e)\n")
  proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                        text=True, timeout=TIMEOUT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  first, late = proc.stdout.splitlines()[:2]
  assert first == "3 3 [0.0, 2.0]"
  assert "right after `import jax`" in late


@pytest.mark.parametrize("env, want", [({"JAX_NUM_CPU_DEVICES": "3"}, "3 3"),
                                       ({"XLA_FLAGS": "--xla_force_host_platform_device_count=2 "
                                                      "--xla_force_host_platform_device_count=3"},
                                        "3 3")])
def test_use_cpu_cores_keeps_the_users_count(env, want):
  code = "import jax\nfrom wdjax import sweep\nprint(sweep.use_cpu_cores(), len(jax.devices()))\n"
  proc = subprocess.run([sys.executable, "-c", code], env={**_env(), **env},
                        capture_output=True, text=True, timeout=TIMEOUT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip() == want


def test_use_cpu_cores_rejects_bad_counts_and_late_calls():
  from wdjax import sweep
  for bad in (0, -2, 1.5, True):
    with pytest.raises(ValueError, match="positive int"):
      sweep.use_cpu_cores(bad)
  import jax
  import jax.numpy as jnp
  jnp.ones(1).block_until_ready()  # JAX is running in this process: too late
  # a count other than the current one (JAX accepts setting the current value again)
  with pytest.raises(RuntimeError, match="before JAX runs its first computation"):
    sweep.use_cpu_cores(max(jax.config.jax_num_cpu_devices, 1) + 7)

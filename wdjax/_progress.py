"""Per-chunk progress with an estimate of the time left, on stderr, for long sweeps."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Iterator, TextIO


def _fmt(seconds: float) -> str:
  if seconds < 60:
    return f"{seconds:.1f}s"
  m, s = divmod(int(round(seconds)), 60)
  return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


class Progress:
  """Prints `chunk i/n, runs, elapsed, time left` once a sweep has run `after` seconds.

  Nothing is printed for a sweep shorter than `after` seconds, so short sweeps and
  benchmarks stay silent; the cost is one `time.perf_counter()` per chunk. The estimate
  uses the chunks after the first, whose time includes compilation.
  """

  def __init__(self, n_chunks: int, n_runs: int, *, enabled: bool = True, after: float = 2.0,
               stream: TextIO | None = None, label: str = "wdjax.sweep",
               heartbeat: float = 10.0):
    self.n_chunks, self.n_runs, self.enabled, self.after = n_chunks, n_runs, enabled, after
    self.stream, self.label = stream, label
    self.start = time.perf_counter()
    self.first_done: float | None = None
    self.timed = 0  # chunks computed after the first (for the rate)
    self.printed = False
    self.heartbeat = heartbeat
    self._last_print = 0.0

  def _print(self, msg: str) -> None:
    print(msg, file=self.stream or sys.stderr, flush=True)
    self.printed = True
    self._last_print = time.perf_counter()

  @contextlib.contextmanager
  def waiting(self, chunk: int) -> Iterator[None]:
    """While the host waits for chunk `chunk` (0-based), prints a line every `heartbeat`
    seconds once the sweep is past `after` seconds: a one-chunk sweep shows it is alive."""
    if not self.enabled:
      yield
      return
    done = threading.Event()

    def beat():
      while not done.wait(0.5):
        now = time.perf_counter()
        if now - self.start >= self.after and now - max(self._last_print, self.start) >= self.heartbeat:
          self._print(f"{self.label}: chunk {chunk + 1}/{self.n_chunks} running, "
                      f"{_fmt(now - self.start)} elapsed")

    t = threading.Thread(target=beat, daemon=True)
    t.start()
    try:
      yield
    finally:
      done.set()
      t.join()

  def update(self, chunks_done: int, runs_done: int, computed: bool = True) -> None:
    """Reports that `chunks_done` chunks (`runs_done` runs) are finished."""
    now = time.perf_counter()
    if computed:
      if self.first_done is None:
        self.first_done = now
      else:
        self.timed += 1
    if not self.enabled:
      return
    elapsed = now - self.start
    if elapsed < self.after and not self.printed:
      return
    left = self.n_chunks - chunks_done
    if self.timed and self.first_done is not None:
      eta = (now - self.first_done) / self.timed * left
    elif chunks_done:
      eta = elapsed / chunks_done * left
    else:
      eta = float("nan")
    msg = (f"{self.label}: chunk {chunks_done}/{self.n_chunks}, {runs_done}/{self.n_runs} runs, "
           f"{_fmt(elapsed)} elapsed" + (f", ~{_fmt(eta)} left" if left and eta == eta else ""))
    self._print(msg)

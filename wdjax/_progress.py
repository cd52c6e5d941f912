"""Per-chunk progress with an estimate of the time left, on stderr, for long sweeps."""

from __future__ import annotations

import sys
import time
from typing import TextIO


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
               stream: TextIO | None = None, label: str = "wdjax.sweep"):
    self.n_chunks, self.n_runs, self.enabled, self.after = n_chunks, n_runs, enabled, after
    self.stream, self.label = stream, label
    self.start = time.perf_counter()
    self.first_done: float | None = None
    self.timed = 0  # chunks computed after the first (for the rate)
    self.printed = False

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
    stream = self.stream or sys.stderr
    print(msg, file=stream, flush=True)
    self.printed = True

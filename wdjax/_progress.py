"""Progress with an estimate of the time left: the one implementation in wdjax.

`status` formats one line, "done/total done, elapsed, ~left", for any loop that knows its
count; `Progress` prints per-chunk lines for a sweep (on stderr, only once it has run a
while, with a heartbeat while one long chunk runs).

Example:
  >>> status(3, 10, 6.0)
  '3/10 done, 6.0s elapsed, ~14.0s left'
  >>> status(10, 10, 75.0)
  '10/10 done, 1m15s elapsed'
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Iterator, TextIO


def format_time(seconds: float) -> str:
  """A duration for people: "4.2s", "3m07s", "2h05m".

  Example:
    >>> format_time(4.24), format_time(187), format_time(7500)
    ('4.2s', '3m07s', '2h05m')
  """
  if seconds < 60:
    return f"{seconds:.1f}s"
  m, s = divmod(int(round(seconds)), 60)
  return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


def time_left(done: int, total: int, elapsed: float) -> float:
  """Seconds left at the average rate so far: elapsed/done·(total − done); NaN before the
  first item is done.

  Example:
    >>> time_left(2, 8, 5.0)
    15.0
  """
  if done <= 0:
    return float("nan")
  return elapsed / done * max(total - done, 0)


def status(done: int, total: int, elapsed: float, left: float | None = None,
           unit: str = "done") -> str:
  """One progress line: "done/total <unit>, elapsed, ~left" (no time left once finished or
  while unknown).

  Args:
    done: items finished.
    total: items in all.
    elapsed: seconds since the start.
    left: seconds left; default `time_left(done, total, elapsed)`.
    unit: the word after the count ("done", "runs", ...).

  Returns:
    e.g. "3/10 done, 6.0s elapsed, ~14.0s left".
  """
  if left is None:
    left = time_left(done, total, elapsed)
  msg = f"{done}/{total} {unit}, {format_time(elapsed)} elapsed"
  if done < total and left == left:  # left == left: not NaN
    msg += f", ~{format_time(left)} left"
  return msg


class Progress:
  """Prints "chunk i/n, r/R runs, elapsed, ~left" once a sweep has run `after` seconds.

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
                      f"{format_time(now - self.start)} elapsed")

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
    else:
      eta = time_left(chunks_done, self.n_chunks, elapsed)
    self._print(f"{self.label}: chunk {chunks_done}/{self.n_chunks}, "
                + status(runs_done, self.n_runs, elapsed, eta, unit="runs"))

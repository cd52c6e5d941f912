"""docs/guide.md: every fenced ```python block runs as written (each in a fresh namespace)."""

import os
import re

import matplotlib
import pytest

matplotlib.use("Agg")

GUIDE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "guide.md")


def _blocks():
  with open(GUIDE) as f:
    text = f.read()
  return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_guide_has_one_snippet_per_question():
  assert len(_blocks()) >= 6


@pytest.mark.parametrize("i", range(len(_blocks())))
def test_snippet_runs(i, capsys):
  code = _blocks()[i]
  exec(compile(code, f"{GUIDE}:block{i}", "exec"), {"__name__": f"guide_block_{i}"})

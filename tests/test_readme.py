"""Every ```python block of the README runs as written (the README cannot drift from the code)."""

import pathlib
import re
import textwrap

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_block_runs(i):
  # (dedented: a block inside a list item is indented with it)
  exec(compile(textwrap.dedent(BLOCKS[i]), f"README.md[python block {i}]", "exec"), {})


def test_readme_has_python_blocks():
  assert len(BLOCKS) >= 2

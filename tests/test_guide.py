"""docs/guide.md: every fenced ```python block runs as written (each in a fresh namespace).

The snippets assert their own numbers against closed forms and independent references.
Here: every numbered question has a snippet, every figure the guide shows has its PNG and
the command that draws it, and each figure's plot function runs on the namespace of the
snippet it plots (docs/figures.py draws the committed PNGs from the same namespaces).
"""

import importlib.util
import os
import re

import matplotlib
import pytest

matplotlib.use("Agg")

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
GUIDE = os.path.join(DOCS, "guide.md")


def _load_figures():
  spec = importlib.util.spec_from_file_location("guide_figures", os.path.join(DOCS, "figures.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


figures = _load_figures()


def _text():
  with open(GUIDE) as f:
    return f.read()


def _blocks():
  return re.findall(r"^```python\n(.*?)^```", _text(), flags=re.S | re.M)


def _section_of_block():
  """Block index -> the number of the guide section it is in (None outside numbered ones)."""
  out, sections = [], figures.sections(_text())
  for block in _blocks():
    out.append(next((n for n, bs in sections.items() if block in bs), None))
  return out


def test_guide_has_one_snippet_per_question():
  sections = figures.sections(_text())
  assert sorted(sections) == list(range(1, len(sections) + 1)) and len(sections) >= 12
  assert all(sections.values()), [n for n, b in sections.items() if not b]


def test_every_figure_has_its_png_and_command():
  text = _text()
  shown = re.findall(r"!\[[^\]]*\]\(figures/([a-z0-9_]+)\.png\)", text)
  assert sorted(shown) == sorted(figures.FIGURES)
  for name in shown:
    assert os.path.isfile(os.path.join(DOCS, "figures", f"{name}.png")), name
    assert f"`python docs/figures.py {name}`" in text, name
    section = figures.FIGURES[name][0]
    if section is not None:  # the figure is shown in the section whose snippet it plots
      body = re.split(r"^## \d+\. .*$", text, flags=re.M)[section]
      assert f"figures/{name}.png" in body, (name, section)


def test_figure_without_snippet(tmp_path):
  for name, (section, plot) in figures.FIGURES.items():
    if section is None:
      plot({}, str(tmp_path / f"{name}.png"))
      assert (tmp_path / f"{name}.png").stat().st_size > 0


@pytest.mark.parametrize("i", range(len(_blocks())))
def test_snippet_runs(i, tmp_path):
  code = _blocks()[i]
  ns = {"__name__": f"guide_block_{i}"}
  exec(compile(code, f"{GUIDE}:block{i}", "exec"), ns)
  section = _section_of_block()[i]
  for name, (fig_section, plot) in figures.FIGURES.items():
    if fig_section is not None and fig_section == section and code == figures.sections(_text())[section][0]:
      plot(ns, str(tmp_path / f"{name}.png"))
      assert (tmp_path / f"{name}.png").stat().st_size > 0

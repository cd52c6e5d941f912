"""docs/*.md (other than the guide, which tests/test_guide.py runs): every ```python block
runs as written, each in a fresh namespace, and asserts what its text claims."""

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
BLOCKS = [(p.name, i, code) for p in sorted(DOCS.glob("*.md")) if p.name != "guide.md"
          for i, code in enumerate(re.findall(r"^```python\n(.*?)^```", p.read_text(),
                                              flags=re.S | re.M))]


@pytest.mark.parametrize("name,i,code", BLOCKS, ids=[f"{n}[{i}]" for n, i, _ in BLOCKS])
def test_doc_block_runs(name, i, code):
  exec(compile(code, f"docs/{name}[python block {i}]", "exec"), {"__name__": f"doc_{i}"})


def test_docs_link_only_to_files_in_the_repository():
  root = DOCS.parent
  for page in [root / "README.md", *DOCS.glob("*.md")]:
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
      if "://" in target:
        continue
      assert (page.parent / target).resolve().exists(), f"{page.name}: broken link {target}"
      assert root in (page.parent / target).resolve().parents, f"{page.name}: {target} is outside"

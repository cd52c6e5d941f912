"""Package hygiene: the public API, CITATION.cff, the README's two commands and .ci/run."""

import datetime
import pathlib
import re

import yaml

import wdjax

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_public_api_is_exported_one_name_per_line():
  for name in wdjax.__all__:
    assert hasattr(wdjax, name), name
  assert list(wdjax.__all__) == sorted(wdjax.__all__)


def test_citation_cff_is_valid_1_2_0():
  cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
  assert cff["cff-version"] == "1.2.0"
  for key in ("message", "title", "authors"):  # required by the CFF 1.2.0 schema
    assert cff.get(key), key
  assert all(isinstance(a, dict) and ("name" in a or "family-names" in a) for a in cff["authors"])
  assert cff["type"] in ("software", "dataset")
  datetime.date.fromisoformat(str(cff["date-released"]))
  assert str(cff["version"]) == wdjax.__version__
  allowed = {"cff-version", "message", "title", "authors", "version", "date-released", "license",
             "keywords", "abstract", "type", "repository-code", "url", "doi", "identifiers",
             "preferred-citation", "references", "contact", "commit", "license-url"}
  assert set(cff) <= allowed, set(cff) - allowed


def _quick_start_commands():
  text = (ROOT / "README.md").read_text()
  section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
  return [b.strip() for b in re.findall(r"```(?:bash|sh)?\n(.*?)```", section, re.S)]


def test_readme_quick_start_has_exactly_two_commands():
  blocks = _quick_start_commands()
  assert len(blocks) == 2, blocks
  assert "wdjax run" in blocks[0] or "wdjax reproduce" in blocks[0]
  assert "pytest" in blocks[1]


def test_ci_runs_the_readme_test_command():
  ci = (ROOT / ".ci" / "run").read_text()
  assert _quick_start_commands()[1] in ci


def test_gpu_script_names_files_and_options_that_exist():
  """benchmarks/gpu.sh runs on a lent GPU machine, once, with no second chance: every test
  file, benchmark script and benchmark option it names must exist here."""
  import subprocess
  script = ROOT / "benchmarks" / "gpu.sh"
  assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
  text = script.read_text()
  for path in set(re.findall(r"(tests/\w+\.py|benchmarks/\w+\.py)", text)):
    assert (ROOT / path).is_file(), path
  for bench, opts in re.findall(r"benchmarks/(bench_\w+\.py)([^\n]*)", text):
    source = (ROOT / "benchmarks" / bench).read_text()
    for opt in re.findall(r"--[\w-]+", opts):
      assert f'"{opt}"' in source, f"{bench} has no option {opt}"
  # one device call is at most 600 s: every step's limit plus the 10 s `timeout -k` gives
  # it to die must fit, with 10 s left for the card's query and the figures' notes
  limits = re.findall(r"^\s*(?:\w+=\S+\s+)*step\s+(\S+)\s+(\S+)", text, re.M)
  assert len(limits) >= 7 and all(s.isdigit() for _, s in limits), limits
  assert sum(int(s) for _, s in limits) + 10 * len(limits) <= 590, limits

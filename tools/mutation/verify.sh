#!/usr/bin/env bash
# Run chosen tests against one mutant of a finished (or stopped) run, by hand.
#
#   tools/mutation/verify.sh RUN_DIR MUTANT_NAME [PYTEST ARGS ...]
#   e.g. tools/mutation/verify.sh /tmp/wdjax-mut.abc123 wdjax.prox.x__separable__mutmut_1 \
#          tests/test_pinned.py -k separable
#
# For two cases mutmut's own verdict is not the last word:
# - a "survived" mutant in code that runs at import time (decorators such as
#   prox._separable, module constants): mutmut runs only the tests it saw calling the
#   function, which for import-time code is whichever test happened to import the module
#   first. Rerun it here with the test that pins the behaviour.
# - a "timeout": rerun it here and see whether the tests fail, pass, or really hang.
# The test exit status is the verdict: 1 (a test failed) = killed, 0 = survived.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
run="$1"; mutant="$2"; shift 2
cd "$run/mutants"
MUTANT_UNDER_TEST="$mutant" PYTHONPATH="${MUT_TOOLS:-/tmp/wdjax-mutmut-3.8.1}:." \
  exec nice -n 19 timeout 600 "${MUT_PYTHON:-$repo/.venv/bin/python}" -m pytest -q -x \
  -p no:cacheprovider "$@"

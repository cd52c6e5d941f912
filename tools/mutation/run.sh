#!/usr/bin/env bash
# Mutation testing of wdjax's math modules with mutmut (not in CI; see README.md here).
#
#   tools/mutation/run.sh [MODULE.py ...]       default: penalties, prox, transforms
#
# Copies the working tree (tracked and untracked files, not .venv or .git) to a fresh
# temporary directory, appends the [tool.mutmut] of mutmut.toml to the copy's
# pyproject.toml, installs mutmut into a --target directory outside the repository, runs
# it at the lowest CPU priority, and prints the score per module. The repository itself
# is never modified. Environment:
#   MUT_PYTHON     the Python with wdjax's dependencies      (default: <repo>/.venv/bin/python)
#   MUT_TESTS      the fast test subset, space-separated     (default: below)
#   MUT_CHILDREN   mutants tested at once                    (default: 2)
#   MUT_MINUTES    stop after this much wall time; mutants not reached count "not checked",
#                  and `mutmut run` in the run directory resumes them  (default: 45)
#   MUT_RUN_DIR    where to copy the repository               (default: a new /tmp/wdjax-mut.*)
#   MUT_TOOLS      where mutmut is installed                  (default: /tmp/wdjax-mutmut-3.8.1)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${MUT_PYTHON:-$repo/.venv/bin/python}"
tools="${MUT_TOOLS:-/tmp/wdjax-mutmut-3.8.1}"
children="${MUT_CHILDREN:-2}"
minutes="${MUT_MINUTES:-45}"
tests="${MUT_TESTS:-tests/test_penalties.py tests/test_prox.py tests/test_transforms.py tests/test_pinned.py}"
if [ "$#" -eq 0 ]; then set -- penalties.py prox.py transforms.py; fi

# mutmut and its dependencies go outside the repository and the venv: the venv stays as
# the project pinned it, and the run directory's copy carries nothing of mutmut's.
if ! PYTHONPATH="$tools" "$python" -c "import mutmut" 2>/dev/null; then
  "$python" -m pip install --quiet --target "$tools" "mutmut==3.8.1"
fi

run="${MUT_RUN_DIR:-$(mktemp -d /tmp/wdjax-mut.XXXXXX)}"
mkdir -p "$run"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard \
  | grep -zv -e '^\.venv/' -e '^mutants/' \
  | tar -cf - --null --files-from=- --ignore-failed-read 2>/dev/null) | tar -xf - -C "$run"

quote() { local out="" x; for x in "$@"; do out="$out${out:+, }\"$x\""; done; echo "$out"; }
mods=(); for m in "$@"; do mods+=("wdjax/${m#wdjax/}"); done
# shellcheck disable=SC2086
sed -e "s|@ONLY_MUTATE@|$(quote "${mods[@]}")|" -e "s|@TESTS@|$(quote $tests)|" \
    -e "s|@PRELOAD@|$here/preload_modules.txt|" "$here/mutmut.toml" >> "$run/pyproject.toml"

echo "run directory: $run"
echo "mutating: ${mods[*]}"
echo "tests: $tests"
cd "$run"
# JAX's persistent compilation cache: a worker's unmutated programs compile once per run, not
# once per mutant. It is keyed by the compiled program, so a mutated program misses it.
export JAX_COMPILATION_CACHE_DIR="$run/.jax_cache"
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
export JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0
export PYTHONPATH="$tools"
mutmut=("$python" -c 'import sys; from mutmut.__main__ import cli; sys.argv[0] = "mutmut"; sys.exit(cli())')
# SIGINT at the deadline: mutmut stops its workers and keeps every verdict so far.
status=0
timeout --signal=INT --kill-after=60 "$((minutes * 60))" \
  nice -n 19 "${mutmut[@]}" run --max-children "$children" > "$run/mutmut-run.log" 2>&1 \
  || status=$?
if [ "$status" -eq 124 ]; then echo "stopped after $minutes minutes (partial results)"; fi
"$python" "$here/summarize.py" "$run" | tee "$run/summary.txt"
echo "details: cd $run && PYTHONPATH=$tools $python -c 'from mutmut.__main__ import cli; cli()' show NAME"

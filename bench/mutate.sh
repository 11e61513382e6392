#!/usr/bin/env bash
# Mutation testing (mutmut 3), one module of hw3 at a time, against that module's fast test file:
#
#   bash bench/mutate.sh backprop [cache data train bonus ...]
#
# Each module is mutated in a copy of the checkout under $MUTATE_DIR (default /tmp/hw3-mutate/<module>), so
# the working tree gets no mutants/ folder and no config; a [mutmut] section in the copy's setup.cfg names
# the module and its tests. Prints mutmut's per-mutant status (killed, survived, timeout, ...), then a
# count per status; `cd $MUTATE_DIR/<module> && mutmut show <name>` shows a mutant's diff.
# Needs `pip install mutmut` (3.x). JOBS (default 2) mutants run at once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=${MUTATE_DIR:-/tmp/hw3-mutate}
declare -A TESTS=([backprop]=tests/test_backprop.py [cache]=tests/test_cache.py [data]=tests/test_data.py
                  [train]=tests/test_engine.py [bonus]=tests/test_bonus.py [checks]=tests/test_backprop.py
                  [evidence]=tests/test_engine.py)
# Tests left out: the cache-key tests that compute keys in another process. mutmut picks the tests to run
# against a mutant by the calls it saw in its own process, so they could never kill one; and their child
# process fails under mutmut's stats collection, which then stops.
declare -A DESELECT=([cache]="not across_processes and not gives_it_a_new_key and not comment_only_edit")
[ $# -gt 0 ] || { echo "usage: $0 MODULE... (one of: ${!TESTS[*]})" >&2; exit 2; }
mutmut --version >/dev/null 2>&1 || python -c "import mutmut" || { echo "pip install mutmut" >&2; exit 2; }
for module in "$@"; do
  tests=${TESTS[$module]:-}
  [ -n "$tests" ] || { echo "unknown module $module (one of: ${!TESTS[*]})" >&2; exit 2; }
  work="$base/$module"
  rm -rf "$work" && mkdir -p "$work"
  (cd "$root" && tar --exclude=__pycache__ -cf - hw3 tests pyproject.toml) | (cd "$work" && tar -xf -)
  cat > "$work/setup.cfg" <<CFG
[mutmut]
source_paths = hw3
only_mutate = hw3/$module.py
pytest_add_cli_args_test_selection =
    $tests${DESELECT[$module]:+
    -k
    ${DESELECT[$module]}}
timeout_constant = ${MUTATE_TIMEOUT_S:-1}
CFG
  echo "== $module.py against $tests (in $work)"
  # one OpenMP/MKL thread: mutmut forks a worker per mutant, and a child forked from a process whose torch
  # thread pool was started can hang until mutmut reports it as a timeout
  (cd "$work" && OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 mutmut run --max-children "${JOBS:-2}" >"$work/run.log" 2>&1) || { tail -30 "$work/run.log"; exit 1; }
  (cd "$work" && mutmut results --all true | tee "$work/results.txt" | grep -v ": killed$" || true)
  echo "-- $module: $(cd "$work" && mutmut results --all true | awk -F': ' '{print $NF}' | sort | uniq -c | tr '\n' ' ')"
done

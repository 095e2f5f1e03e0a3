#!/usr/bin/env bash
# Runs ctest several times in a row while busy loops keep every core loaded: the suite must pass
# on a machine that is slow and busy, not only on an idle one.
#   scripts/stress_test.sh [-n RUNS] [-b BUSY_LOOPS] [-d BUILD_DIR] [ctest args...]
#   scripts/stress_test.sh                 3 runs of the whole suite, one busy loop per core
#   scripts/stress_test.sh -n 1 -L unit    one run of the unit tests
# Prints the failures of each run and a summary; exits 1 if any run failed. The busy loops end
# with the script (a trap kills them on exit, Ctrl-C included).
set -uo pipefail
cd "$(dirname "$0")/.."

runs=3
busy=$(nproc 2>/dev/null || echo 2)
build=build
# Our options come first; the first argument that is not one of them starts ctest's.
while [ $# -gt 0 ]; do
  case $1 in
    -n) runs=${2:-}; shift 2 || exit 2 ;;
    -b) busy=${2:-}; shift 2 || exit 2 ;;
    -d) build=${2:-}; shift 2 || exit 2 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "stress_test.sh: -n must be a positive integer, got '$runs'" >&2; exit 2; }
[[ $busy =~ ^[0-9]+$ ]] || { echo "stress_test.sh: -b must be a number, got '$busy'" >&2; exit 2; }
[ -f "$build/CTestTestfile.cmake" ] || { echo "stress_test.sh: $build/CTestTestfile.cmake not found: build first" >&2; exit 2; }

pids=()
stop_load() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  pids=()
}
trap stop_load EXIT
trap 'exit 130' INT TERM
for ((i = 0; i < busy; i++)); do
  (while :; do :; done) &
  pids+=($!)
done
echo "stress_test.sh: $busy busy loop(s) running; $runs run(s) of ctest $*"

logdir=$(mktemp -d "${TMPDIR:-/tmp}/spikeflow_stress.XXXXXX")
failed_runs=0
for ((r = 1; r <= runs; r++)); do
  log="$logdir/run$r.log"
  ctest --test-dir "$build" --output-on-failure "$@" >"$log" 2>&1
  rc=$?
  summary=$(grep -E '^[0-9]+% tests passed' "$log" || echo "no summary (ctest exit $rc)")
  echo "run $r/$runs: $summary"
  if [ $rc -ne 0 ]; then
    failed_runs=$((failed_runs + 1))
    # ctest's list of failures: the lines after "The following tests FAILED:".
    sed -n '/The following tests FAILED:/,$p' "$log" | sed '1d' | grep -v '^Errors while running CTest' |
      sed 's/^[[:space:]]*/    /'
    echo "    full log: $log"
  fi
done
if [ $failed_runs -eq 0 ]; then
  rm -rf "$logdir"
  echo "stress_test.sh: all $runs run(s) passed"
  exit 0
fi
echo "stress_test.sh: $failed_runs of $runs run(s) had failures (logs in $logdir)"
exit 1

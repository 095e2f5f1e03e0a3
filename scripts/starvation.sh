#!/usr/bin/env bash
# The starvation scenario of issue 11: the pipeline at nice 19, pinned to one core where busy
# loops also run, under 10x the spike rate. The subscriber (`spikeflow listen --check`) checks
# the live contract; late chunks must be flagged and none duplicated.
#   scripts/starvation.sh [-s SECONDS] [-b BUSY_LOOPS] [-c CORE] [-u UNITS] [-k RATE_X] [-d BUILD_DIR]
#   defaults: 60 s, 2 busy loops on core 0, 96 units, 10x rate, build/
# Prints the subscriber's contract summary and the pipeline's exit report; exits with listen's
# code (4 = a contract violation). Busy loops and children end with the script (trap).
set -uo pipefail
cd "$(dirname "$0")/.."
secs=60 busy=2 core=0 units=96 ratex=10 build=build
while [ $# -gt 0 ]; do
  case $1 in
    -s) secs=$2; shift 2 ;;
    -b) busy=$2; shift 2 ;;
    -c) core=$2; shift 2 ;;
    -u) units=$2; shift 2 ;;
    -k) ratex=$2; shift 2 ;;
    -d) build=$2; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "starvation.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
exe=$build/cli/spikeflow
[ -x "$exe" ] || { echo "starvation.sh: $exe not found: build first" >&2; exit 2; }
command -v taskset >/dev/null || { echo "starvation.sh: taskset not found (util-linux)" >&2; exit 2; }
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

"$exe" synth -o "$dir/s.sfs" --units "$units" --duration-s "$secs" --seed 5 >/dev/null || exit 1
# A barely trained model of the right size: starvation does not depend on the weights.
"$exe" train -s "$dir/s.sfs" -o "$dir/m.ckpt" --epochs 1 --max-seconds 10 --no-baselines --no-progress \
  >"$dir/train.log" 2>&1 || { echo "starvation.sh: cannot make a checkpoint:"; cat "$dir/train.log"; exit 1; }
nice -n 19 taskset -c "$core" "$exe" run --checkpoint "$dir/m.ckpt" --port 0 --publish tcp://127.0.0.1:* \
  >"$dir/run.log" 2>&1 & run=$!; pids+=($run)
for _ in $(seq 1200); do grep -q "run: decoder" "$dir/run.log" && break; sleep 0.1; done
port=$(grep -o 'udp [0-9.]*:[0-9]*' "$dir/run.log" | head -1 | sed 's/.*://')
endpoint=$(grep -o 'publish [^ ]*' "$dir/run.log" | head -1 | sed 's/publish //')
[ -n "$port" ] && [ -n "$endpoint" ] || { echo "starvation.sh: pipeline not ready:"; cat "$dir/run.log"; exit 1; }
# The busy loops start once the pipeline is up: starved at nice 19, its start-up alone (loading
# LibTorch) can take minutes.
for _ in $(seq "$busy"); do taskset -c "$core" sh -c 'while :; do :; done' & pids+=($!); done
"$exe" listen -e "$endpoint" --check -q --idle-timeout-s 3 --timeout-s $((secs + 60)) >"$dir/listen.log" 2>&1 &
listen=$!; pids+=($listen)
"$exe" send -s "$dir/s.sfs" --port "$port" -q --rate-multiplier "$ratex" >"$dir/send.log" 2>&1
kill -TERM "$run"; wait "$run"
wait "$listen"; rc=$?
grep -E "^(listen: (received|flags|contract)|contract:)" "$dir/listen.log"
grep -iE "predictions|late|clock|epoch|resync" "$dir/run.log" | tail -n 15
exit $rc

#!/usr/bin/env bash
# Crash safety of `spikeflow run --record`: N times (default 100), start the live pipeline with a
# recording, feed it with `spikeflow send`, SIGKILL it at a random moment, then check that
#   (a) the recording reads back up to its last complete record: `spikeflow replay --recording`
#       reads as many EVENTS / PREDICTION records and reports as many bytes lost after them as an
#       independent frame walk (python, below) finds, and says the file was not closed cleanly;
#   (b) the exact replay of what was read is bit-identical (exit 0): for a torn recording, the
#       predictions before the last recorded decoder call (see pipeline::check_replay).
# One trial in ten kills during start-up instead (0-600 ms after spawn): then there may be no
# file or an empty one yet (the recorder creates it, then writes header, config, model and units
# in one write), which the reader must refuse with a one-line error naming the file.
#
# Usage: scripts/kill9_recording.sh [N]   env: SPIKEFLOW_KILL9_SEED (default 1) picks the kill
# moments; SPIKEFLOW_EXE (default build/cli/spikeflow); SPIKEFLOW_KILL9_DIR keeps the files there
# (default: a temporary folder, removed unless a trial failed). Prints one line per failing trial
# and a summary; exits 1 if any trial failed. A failing trial replays with the same seed and N.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
seed=${SPIKEFLOW_KILL9_SEED:-1}
exe=${SPIKEFLOW_EXE:-$PWD/build/cli/spikeflow}
[[ -x "$exe" ]] || { echo "kill9: $exe: not built (cmake --build build --target spikeflow)" >&2; exit 2; }
if [[ -n "${SPIKEFLOW_KILL9_DIR:-}" ]]; then dir=$SPIKEFLOW_KILL9_DIR; mkdir -p "$dir"; keep=1
else dir=$(mktemp -d -t spikeflow-kill9.XXXXXX); keep=0; fi

run_pid=""; send_pid=""
cleanup() {
  for p in $run_pid $send_pid; do kill -9 "$p" 2>/dev/null || true; done
  if [[ $keep == 0 ]]; then rm -rf "$dir"; fi
}
trap cleanup EXIT

# Independent reader: walks the frames (RECORDING_FORMAT.md) and prints
# "<events records> <prediction records> <bytes after the last complete, CRC-valid record>".
frames() {
  python3 - "$1" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
off, counts = 40, {4: 0, 5: 0, 7: 0}  # 5: PREDICTION (old files), 7: PREDICTION v2
while off + 12 <= len(data):
    typ, length = struct.unpack_from("<II", data, off)
    end = off + 12 + length
    if end > len(data) or struct.unpack_from("<I", data, end - 4)[0] != zlib.crc32(data[off:end - 4]):
        break
    counts[typ] = counts.get(typ, 0) + 1
    off = end
print(counts[4], counts[5] + counts[7], len(data) - off)
PY
}

echo "kill9: $n trials, seed $seed, in $dir"
"$exe" synth -o "$dir/s.sfs" --units 32 --duration-s 60 --seed 3 >"$dir/synth.log" 2>&1
"$exe" train -s "$dir/s.sfs" -o "$dir/m.ckpt" --epochs 1 --no-baselines --no-progress >"$dir/train.log" 2>&1

RANDOM=$seed
failures=0; startup=0; torn=0; compared=0
for ((i = 1; i <= n; i++)); do
  rec="$dir/r$i.sfrec"; log="$dir/run$i.log"
  rm -f "$rec"
  : >"$log"  # exists before the child opens it, for the readiness grep
  during_startup=$((RANDOM % 10 == 0))
  delay_ms=$((during_startup ? RANDOM % 600 : RANDOM % 3000))
  "$exe" run --checkpoint "$dir/m.ckpt" --port 0 --publish tcp://127.0.0.1:0 --record "$rec" >"$log" 2>&1 &
  run_pid=$!
  if ((!during_startup)); then
    for ((w = 0; w < 600; w++)); do  # ready: it logs its ingest port (30 s deadline)
      grep -q "run: decoder" "$log" && break
      kill -0 "$run_pid" 2>/dev/null || break
      sleep 0.05
    done
    port=$(grep -o "udp 127.0.0.1:[0-9]*" "$log" | cut -d: -f2 || true)
    if [[ -z "$port" ]]; then
      echo "kill9: trial $i: the pipeline did not start: $(tail -n 3 "$log")"; failures=$((failures + 1))
      kill -9 "$run_pid" 2>/dev/null || true; wait "$run_pid" 2>/dev/null || true; run_pid=""; continue
    fi
    "$exe" send -s "$dir/s.sfs" --port "$port" --speed 4 -q >"$dir/send$i.log" 2>&1 &
    send_pid=$!
  fi
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  if ! kill -9 "$run_pid" 2>/dev/null; then  # it must still be running to be killed
    wait "$run_pid" 2>/dev/null || true; run_pid=""
    [[ -n "$send_pid" ]] && { kill "$send_pid" 2>/dev/null || true; wait "$send_pid" 2>/dev/null || true; send_pid=""; }
    echo "kill9: trial $i: the run exited before the kill: $(grep -v '^\[' "$log" | tail -n 5 | tr '\n' ' ')"
    failures=$((failures + 1)); continue
  fi
  wait "$run_pid" 2>/dev/null || true
  run_pid=""
  if [[ -n "$send_pid" ]]; then kill "$send_pid" 2>/dev/null || true; wait "$send_pid" 2>/dev/null || true; send_pid=""; fi

  out="$dir/replay$i.log"
  if [[ ! -s "$rec" ]]; then
    if ((during_startup)); then
      startup=$((startup + 1))
      if [[ -e "$rec" ]] && "$exe" replay --recording "$rec" >"$out" 2>&1; then
        echo "kill9: trial $i: an empty recording replayed without an error"; failures=$((failures + 1))
      fi
      continue
    fi
    echo "kill9: trial $i (kill at ${delay_ms} ms after the sender started): no recording header"
    failures=$((failures + 1)); continue
  fi
  if ! "$exe" replay --recording "$rec" >"$out" 2>&1; then
    echo "kill9: trial $i (kill at ${delay_ms} ms): replay failed: $(grep -v '^\[' "$out" | tail -n 3 | tr '\n' ' ')"
    failures=$((failures + 1)); continue
  fi
  read -r ev pr lost < <(frames "$rec")
  # EVENTS records = packets + tick markers; the replay line counts both.
  if ! grep -q "replay: $ev records of packets and deadline ticks, $pr recorded predictions" "$out" ||
     ! grep -q "not closed cleanly ($lost bytes lost)" "$out"; then
    echo "kill9: trial $i: reader disagrees with the frame walk ($ev events, $pr predictions, $lost bytes lost):"
    grep "^replay" "$out" | sed 's/^/    /'
    failures=$((failures + 1)); continue
  fi
  ((lost > 0)) && torn=$((torn + 1))
  c=$(sed -n 's/^replay: bit-identical \([0-9]*\) of .*/\1/p' "$out")
  compared=$((compared + ${c:-0}))
  if ((!keep)); then rm -f "$rec" "$log" "$out" "$dir/send$i.log"; fi
done
echo "kill9: $n trials, $failures failed; $startup killed during start-up before the header;" \
     "$torn with a torn last record; $compared predictions compared bit-identical in all"
if ((failures > 0)); then keep=1; echo "kill9: files kept in $dir"; exit 1; fi

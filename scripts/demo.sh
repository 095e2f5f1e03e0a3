#!/usr/bin/env bash
# The main job on the embedded default: set up, build, synthesize a session, train a decoder on
# its first part, then run the live pipeline and play the held-out part into it over UDP at
# real-time pace from a separate sender process while a separate ZeroMQ subscriber records the
# predictions; finally score them. About two minutes on 2 cores after the first build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh

out=out/demo
bin=build/cli/spikeflow
ingest_port=${SPIKEFLOW_DEMO_PORT:-47000}
publish=${SPIKEFLOW_DEMO_PUBLISH:-tcp://127.0.0.1:47001}
train_seconds=${SPIKEFLOW_DEMO_TRAIN_SECONDS:-45}
mkdir -p "$out"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== 1/5 synthesize: 96 cosine-tuned Poisson units, 5 min of center-out reaches"
"$bin" synth -o "$out/session.sfs" --units 96 --duration-s 300 --seed 1

echo "== 2/5 train the POSSM-style decoder on the first 70% (validation: next 10%), ${train_seconds}s budget"
"$bin" train -s "$out/session.sfs" -o "$out/model.ckpt" --max-seconds "$train_seconds" --seed 1

echo "== 3/5 start the live pipeline (UDP :$ingest_port -> ZeroMQ $publish)"
"$bin" run -c configs/live_native.yaml --checkpoint "$out/model.ckpt" --port "$ingest_port" \
  --publish "$publish" >"$out/run.log" 2>&1 &
run_pid=$!
pids+=("$run_pid")
for _ in $(seq 1 300); do
  grep -q "run: decoder" "$out/run.log" && break
  kill -0 "$run_pid" 2>/dev/null || { cat "$out/run.log"; echo "demo: the pipeline failed to start"; exit 1; }
  sleep 0.1
done

echo "== 4/5 subscriber process records predictions; sender process plays the held-out 20% in real time"
: >"$out/listen.log"
"$bin" listen -e "$publish" -o "$out/predictions.csv" --idle-timeout-s 2 >"$out/listen.log" 2>&1 &
listen_pid=$!
pids+=("$listen_pid")
tail -f "$out/listen.log" --pid "$listen_pid" &
pids+=($!)
sleep 0.3  # let the subscription reach the publisher before the first chunk closes
"$bin" send -s "$out/session.sfs" --part test --port "$ingest_port" -q

kill -INT "$run_pid"
wait "$run_pid"
wait "$listen_pid"
sleep 0.2

echo "== 5/5 score the live predictions against the true velocity"
"$bin" eval -s "$out/session.sfs" -p "$out/predictions.csv" --part test \
  --report "$out/report.html" --csv "$out/eval.csv" | tee "$out/eval.log"

echo
echo "================ demo summary ================"
grep -E "^decoder:" "$out/run.log" | sed 's/^/pipeline  /'
grep -E "^(ingest|binner|publisher):" "$out/run.log" | sed 's/^/pipeline  /'
grep -E "^latency (decode|total)" "$out/run.log" | sed 's/^/pipeline  /'
grep -E "^listen: (received|latency closing packet arrival -> received)" "$out/listen.log"
grep -E "^(chunks|R2|Pearson)" "$out/eval.log" | sed 's/^/eval      /'
echo "report    $out/report.html"

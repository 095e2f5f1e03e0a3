#!/usr/bin/env bash
# Leave-one-session-out transfer on the synthetic corpus: synthesizes N sessions
# (`spikeflow synth --sessions N`, default 8) and, for each held-out session, pretrains one model
# on the other N-1 within a fixed wall-clock budget, calibrates it on the held-out session's first
# 60 s, and trains from scratch on all of the held-out session's training part. Every figure is
# the mean held-out R2 on the same part: the held-out session's last 20 %.
#
# Prints one row per held-out session and the mean:
#   session  calibrated-60s  scratch-60s  ridge-60s  scratch-all
# (the first three from `spikeflow calibrate`, the last from `spikeflow train` with the first
# 70 % for training and the next 10 % for early stopping).
#
# Usage: scripts/loso.sh [N]
# env: SPIKEFLOW_EXE (default build/cli/spikeflow); LOSO_DIR keeps the corpus, checkpoints and
# logs there (default: a temporary folder, removed at the end); LOSO_PRETRAIN_S (default 120),
# LOSO_CALIBRATE_S (default 30, per calibration stage and for the scratch comparison),
# LOSO_TRAIN_S (default 60): wall-clock budgets; LOSO_CAL_S (default 60): calibration block;
# LOSO_THREADS (default 2): torch threads. Budgets are wall-clock: a loaded machine gets fewer
# epochs, so say what the machine was doing next to any figure.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8}
exe=${SPIKEFLOW_EXE:-$PWD/build/cli/spikeflow}
pre_s=${LOSO_PRETRAIN_S:-120}
calib_s=${LOSO_CALIBRATE_S:-30}
train_s=${LOSO_TRAIN_S:-60}
cal_block=${LOSO_CAL_S:-60}
threads=${LOSO_THREADS:-2}
[[ -x "$exe" ]] || { echo "loso: $exe: not built (cmake --build build --target spikeflow)" >&2; exit 2; }
(( n >= 2 )) || { echo "loso: N must be >= 2, got $n" >&2; exit 2; }
if [[ -n "${LOSO_DIR:-}" ]]; then dir=$LOSO_DIR; mkdir -p "$dir"; keep=1
else dir=$(mktemp -d -t spikeflow-loso.XXXXXX); keep=0; fi
cleanup() { if [[ $keep == 0 ]]; then rm -rf "$dir"; fi; }
trap cleanup EXIT

"$exe" synth --sessions "$n" -o "$dir/corpus" > "$dir/synth.log"
mapfile -t sessions < <(ls "$dir"/corpus/*.sfs | sort)
(( ${#sessions[@]} == n )) || { echo "loso: expected $n sessions in $dir/corpus" >&2; exit 1; }

# "  NAME  R2 mean  0.123  per dim ..." -> 0.123
r2_of() { awk -v name="$2" 'index($0, "  " name " ") == 1 && /R2 mean/ {
  for (i = 1; i <= NF; ++i) if ($i == "mean") { print $(i + 1); exit } }' "$1"; }

printf '%-12s %14s %12s %10s %12s\n' session calibrated-60s scratch-60s ridge-60s scratch-all
sum_c=0; sum_s=0; sum_r=0; sum_a=0
for held in "${sessions[@]}"; do
  name=$(basename "$held" .sfs)
  args=()
  for s in "${sessions[@]}"; do [[ $s == "$held" ]] || args+=(-s "$s"); done
  "$exe" pretrain "${args[@]}" -o "$dir/base_$name.ckpt" --max-seconds "$pre_s" --epochs 100000 \
    --threads "$threads" --no-progress > "$dir/pretrain_$name.log" 2>&1 ||
    { echo "loso: pretrain without $name failed, see $dir/pretrain_$name.log" >&2; keep=1; exit 1; }
  "$exe" calibrate --base "$dir/base_$name.ckpt" -s "$held" -o "$dir/cal_$name.ckpt" \
    --calibration-s "$cal_block" --test-fraction 0.2 --max-seconds "$calib_s" \
    --threads "$threads" --no-progress > "$dir/calibrate_$name.log" 2>&1 ||
    { echo "loso: calibrate $name failed, see $dir/calibrate_$name.log" >&2; keep=1; exit 1; }
  "$exe" train -s "$held" -o "$dir/all_$name.ckpt" --train-fraction 0.7 --val-fraction 0.1 \
    --max-seconds "$train_s" --threads "$threads" --no-baselines --no-progress \
    > "$dir/train_$name.log" 2>&1 ||
    { echo "loso: train $name failed, see $dir/train_$name.log" >&2; keep=1; exit 1; }
  c=$(r2_of "$dir/calibrate_$name.log" calibrated)
  s=$(r2_of "$dir/calibrate_$name.log" scratch)
  r=$(r2_of "$dir/calibrate_$name.log" "ridge (250 ms)")
  a=$(r2_of "$dir/train_$name.log" possm)
  [[ -n $c && -n $s && -n $r && -n $a ]] ||
    { echo "loso: cannot read the R2 figures for $name from $dir/*_$name.log" >&2; keep=1; exit 1; }
  printf '%-12s %14s %12s %10s %12s\n' "$name" "$c" "$s" "$r" "$a"
  sum_c=$(awk -v x="$sum_c" -v y="$c" 'BEGIN { print x + y }')
  sum_s=$(awk -v x="$sum_s" -v y="$s" 'BEGIN { print x + y }')
  sum_r=$(awk -v x="$sum_r" -v y="$r" 'BEGIN { print x + y }')
  sum_a=$(awk -v x="$sum_a" -v y="$a" 'BEGIN { print x + y }')
done
awk -v n="$n" -v c="$sum_c" -v s="$sum_s" -v r="$sum_r" -v a="$sum_a" \
  'BEGIN { printf "%-12s %14.3f %12.3f %10.3f %12.3f\n", "mean", c / n, s / n, r / n, a / n }'
echo "loso: pretrain ${pre_s} s, calibrate ${calib_s} s per stage, train ${train_s} s (wall clock)"

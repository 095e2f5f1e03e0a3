#!/usr/bin/env bash
# Data-parallel training throughput: `spikeflow pretrain` on a small synthetic corpus with 1 rank
# and with 2 local ranks (--ranks 2, c10d Gloo over localhost), one torch thread per rank, the
# same global batch. Each setting runs R times (default 5) for E epochs (default 2); the figure is
# the median of pretrain's own "throughput N windows/s" line (training steps only, all ranks
# together, validation and start-up excluded). Prints both medians and the ratio 2-rank / 1-rank.
# On a machine with fewer free cores than ranks the ratio says more about the load than about
# the all-reduce: say what else was running next to any figure.
#
# Usage: bench/dist_train_bench.sh [R] [E]
# env: SPIKEFLOW_EXE (default build/cli/spikeflow); BENCH_SESSIONS (default 4), BENCH_DURATION_S
# (default 120): the corpus; BENCH_BATCH (default 32): global batch; BENCH_ARGS: more pretrain
# flags (e.g. "--dim 32 --rnn-hidden 128" for a smaller model than the default).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
epochs=${2:-2}
exe=${SPIKEFLOW_EXE:-$PWD/build/cli/spikeflow}
[[ -x "$exe" ]] || { echo "dist_train_bench: $exe: not built" >&2; exit 2; }
dir=$(mktemp -d -t spikeflow-dist-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$exe" synth --sessions "${BENCH_SESSIONS:-4}" --duration-s "${BENCH_DURATION_S:-120}" \
  -o "$dir/corpus" > /dev/null

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
  else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A med
for ranks in 1 2; do
  : > "$dir/figures"
  for ((r = 0; r < runs; ++r)); do
    "$exe" pretrain --sessions "$dir/corpus" -o "$dir/b.ckpt" --ranks "$ranks" --threads 1 \
      --epochs "$epochs" --patience 1000 --batch "${BENCH_BATCH:-32}" --seed "$r" --no-progress \
      ${BENCH_ARGS:-} > "$dir/log" 2>&1 || { cat "$dir/log" >&2; exit 1; }
    rm -f "$dir/b.ckpt" "$dir/b.ckpt.resume"
    sed -n 's/.*throughput \([0-9.]*\) windows\/s.*/\1/p' "$dir/log" >> "$dir/figures"
  done
  med[$ranks]=$(median < "$dir/figures")
  printf 'ranks %d: median %8.1f windows/s over %d runs of %d epochs (runs: %s)\n' "$ranks" \
    "${med[$ranks]}" "$runs" "$epochs" "$(tr '\n' ' ' < "$dir/figures")"
done
awk -v a="${med[1]}" -v b="${med[2]}" 'BEGIN { printf "ratio 2-rank / 1-rank: %.2f\n", b / a }'

#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan; a separate tree, build-fuzz/) and runs each
# one in turn, then prints target / executions / crashes. Exits non-zero if any target crashed
# (crash, leak, UB, timeout or out-of-memory).
#
#   scripts/fuzz.sh                  every target for 20 s
#   scripts/fuzz.sh 60               every target for 60 s
#   scripts/fuzz.sh --runs 10000000  every target for 10 M executions (hours for the file readers)
#   FUZZ_SEED=1 scripts/fuzz.sh --runs 2000   the same mutations every time (CI: a fixed, short run)
#   scripts/fuzz.sh 60 native_packet_fuzz config_reader_fuzz    only these targets
#   scripts/fuzz.sh --ignore-library-crashes 20    crashes inside libhdf5 / libmatio are reported
#                                                  but do not fail the run (see tests/fuzz/known/)
#
# Seeds come from tests/fuzz/corpus/<target>/ (committed, read only); what the fuzzer finds goes
# to build-fuzz/fuzz/corpus/<target>/ and is reused by the next run. A crashing input is saved
# as build-fuzz/fuzz/artifacts/<target>/crash-* (or leak-, timeout-, oom-); the log of each run
# is build-fuzz/fuzz/logs/<target>.log. Reproduce one: build-fuzz/tests/fuzz/<target> <input>.
# Needs clang and libFuzzer (scripts/setup.sh installs them); installs nothing itself.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=(-max_total_time=20)
what="20 s"
ignore_library=0
if [[ $# -gt 0 && "$1" == --ignore-library-crashes ]]; then ignore_library=1; shift; fi
if [[ $# -gt 0 ]]; then
  case "$1" in
    --runs)
      [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --runs needs a number" >&2; exit 2; }
      limit=(-runs="$2"); what="$2 runs"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *)
      [[ "$1" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: expected seconds per target or --runs N, got '$1'" >&2; exit 2; }
      limit=(-max_total_time="$1"); what="$1 s"; shift ;;
  esac
fi

for tool in clang clang++; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found; run scripts/setup.sh" >&2; exit 2; }
done

build=build-fuzz
if [[ ! -f $build/CMakeCache.txt ]]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DSPIKEFLOW_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}"
fi
cmake --build "$build" -j"$(nproc)"

mapfile -t targets < "$build/fuzz_targets.txt"
if [[ $# -gt 0 ]]; then targets=("$@"); fi

out=$build/fuzz
# allocator_may_return_null + max_allocation_size_mb: a hostile file can make libmatio malloc many
# GB; in production such a malloc fails and the library reports an error, so let it fail here
# too. Our own code allocates with new, which ASan still reports as a crash.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:max_allocation_size_mb=2048}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# Where a crash happened: the first stack frame of the report that is neither the sanitizer and
# libFuzzer runtime nor libc / libstdc++. Prints "library" when that frame is in libhdf5 or libmatio
# (their bugs on hostile files are not ours to fix: tests/fuzz/known/), else "ours".
crash_site() {
  local frame
  frame=$(sed -n '/ERROR: \|runtime error: \|fuzz invariant failed/,$p' "$1" | grep -E '^ *#[0-9]+ 0x' |
    grep -vE ' in (__interceptor_|__asan|__sanitizer|__lsan|__ubsan|fuzzer::|malloc|calloc|realloc|free|operator new|operator delete|raise|abort|__pthread|__libc)|/libc\.so|libstdc\+\+' |
    head -1)
  if [[ "$frame" =~ libhdf5|libmatio ]]; then echo library; else echo ours; fi
}

declare -A execs crashes libcrashes
failed=0
for t in "${targets[@]}"; do
  [[ -x $build/tests/fuzz/$t ]] || { echo "fuzz.sh: no target $t" >&2; exit 2; }
  seeds=tests/fuzz/corpus/$t
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t" "$out/logs"
  before=$(find "$out/artifacts/$t" -type f | wc -l)
  echo "fuzz.sh: $t for $what"
  rc=0
  "$build/tests/fuzz/$t" "${limit[@]}" -seed="${FUZZ_SEED:-0}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$t/" "$out/corpus/$t" "$seeds" \
    > "$out/logs/$t.log" 2>&1 || rc=$?
  after=$(find "$out/artifacts/$t" -type f | wc -l)
  execs[$t]=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/logs/$t.log" | tail -1 | grep -o '[0-9]*$' || true)
  execs[$t]=${execs[$t]:-?}
  crashes[$t]=$((after - before))
  if [[ $rc -ne 0 && ${crashes[$t]} -eq 0 ]]; then crashes[$t]=1; fi
  libcrashes[$t]=0
  if [[ ${crashes[$t]} -ne 0 ]]; then
    site=$(crash_site "$out/logs/$t.log")
    if [[ $site == library ]]; then libcrashes[$t]=${crashes[$t]}; crashes[$t]=0; fi
    if [[ $site == ours || $ignore_library -eq 0 ]]; then failed=1; fi
    echo "fuzz.sh: $t FAILED (exit $rc, crash in $site code); end of $out/logs/$t.log:"
    tail -n 40 "$out/logs/$t.log"
  fi
done

printf '\n%-32s %14s %8s %18s\n' target executions crashes "library crashes"
for t in "${targets[@]}"; do
  printf '%-32s %14s %8s %18s\n' "$t" "${execs[$t]}" "${crashes[$t]}" "${libcrashes[$t]}"
done
exit $failed

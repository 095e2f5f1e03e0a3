#!/usr/bin/env bash
# Sanitizer run: `scripts/sanitize.sh asan` builds build-asan/ with AddressSanitizer +
# UndefinedBehaviorSanitizer (LeakSanitizer included) and runs the suite under it;
# `scripts/sanitize.sh tsan` builds build-tsan/ with ThreadSanitizer and runs the threaded
# pipeline tests. Any report fails the run (halt_on_error, UB is not recoverable).
#
# Only our targets are instrumented (CMake option SPIKEFLOW_SANITIZE); LibTorch, oneTBB, libzmq,
# OpenBLAS are Debian's prebuilt libraries. tests/{lsan,ubsan,tsan}.supp hold suppressions
# for frames inside those libraries only, each with its reason; never add one of our functions.
#
# Environment: SPIKEFLOW_SANITIZE_LABELS overrides the ctest label regex (e.g. "unit").
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-asan}
root=$PWD
exclude='_NOT_BUILT$'

case "$kind" in
  asan)
    sanitize="address,undefined"
    dir=build-asan
    # The whole suite (~7.5 min on a loaded 2-core machine, kill9_recording included). To trim,
    # SPIKEFLOW_SANITIZE_LABELS=unit (TrainerTest, the CLI and kill9 are integration).
    labels=${SPIKEFLOW_SANITIZE_LABELS:-"unit|integration|realtime"}
    targets=(spikeflow core_test replay_test models_test stages_test pipeline_test cli_test
             profile_test calibrate_live_test)
    ;;
  tsan)
    sanitize="thread"
    dir=build-tsan
    labels=${SPIKEFLOW_SANITIZE_LABELS:-""}
    # Our own threads: the ingest io thread, the ZeroMQ publisher thread, the recorder thread, the
    # decoder inbox, the pacer. The suites that run the TBB flow graph are left out: libtbb is not
    # instrumented, so TSan cannot see its hand-offs and reports every one (tests/tsan.supp says why).
    targets=(pipeline_test)
    exclude+='|^(LivePipelineTest|RecordingPipelineTest|BacklogTest|TapTest|DecoderErrorTest|SlowSubscriberTest|Formats/FormatPipelineTest|SessionReplayTest|RealtimeWarmupTest)\.'
    ;;
  *)
    echo "usage: scripts/sanitize.sh asan|tsan" >&2
    exit 2
    ;;
esac
# sim_test is left out of the TSan run: it is single-threaded (nothing for TSan to see) and runs
# ten times slower under it; ASan+UBSan runs it.

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
if [[ ! -f $dir/CMakeCache.txt ]]; then
  # -O1 -g: stack traces that mean something, at a fraction of -O0's cost. Asserts stay on.
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" \
    -DSPIKEFLOW_SANITIZE="$sanitize" -DSPIKEFLOW_BUILD_BENCH=OFF -DSPIKEFLOW_BUILD_PYTHON=OFF "${launcher[@]}"
fi
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}"

# Reports go to stderr (ctest prints it on failure) and abort the test process.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1:detect_odr_violation=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/tests/ubsan.supp"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp:print_suppressions=0"
# Child processes (cli_test runs the spikeflow executable) inherit these.

# Binaries not built here (tsan builds only its targets) register as <name>_NOT_BUILT: skipped.
ctest_args=(--test-dir "$dir" --output-on-failure --timeout 1800 -E "$exclude")
if [[ -n "$labels" ]]; then ctest_args+=(-L "$labels"); fi
ctest "${ctest_args[@]}"

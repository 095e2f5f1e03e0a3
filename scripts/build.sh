#!/usr/bin/env bash
# Configures and builds spikeflow (Release) into build/. Incremental after the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
build_type=${SPIKEFLOW_BUILD_TYPE:-Release}
launcher=()
# ccache, when installed, makes rebuilds of unchanged files free (not required).
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
if [[ ! -f build/CMakeCache.txt ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "${launcher[@]}"
fi
cmake --build build -j"$(nproc)"

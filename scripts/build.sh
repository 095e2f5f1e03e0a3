#!/usr/bin/env bash
# Configures and builds spikeflow (Release) into build/. Incremental after the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
build_type=${SPIKEFLOW_BUILD_TYPE:-Release}
if [[ ! -f build/CMakeCache.txt ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$build_type"
fi
cmake --build build -j"$(nproc)"

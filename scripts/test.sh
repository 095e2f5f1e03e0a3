#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
# Sequential on purpose: several tests run real-time pipelines with deadlines, and these
# machines have two cores.
ctest --test-dir build --output-on-failure --timeout 600

#!/usr/bin/env bash
# Installs every system package spikeflow needs, from Debian's archive only.
# Idempotent: when everything is already installed it only runs dpkg-query (well under a second).
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libtorch-dev libopenblas0-pthread libgloo-dev
  libtbb-dev
  libboost-dev libboost-system-dev libboost-program-options-dev
  libzmq3-dev cppzmq-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  libhdf5-dev libmatio-dev zlib1g-dev
  python3 python3-zmq python3-numpy python3-h5py
  pybind11-dev python3-dev python3-pytest
  clang libfuzzer-14-dev libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"

#!/bin/sh
# Builds the two .debs with CPack from the build tree (CMakeLists.txt, "cpack -G DEB") and checks
# them without root (dpkg-deb -x):
#   spikeflow      Depends on the runtime libraries; holds bin/spikeflow (its --version runs from
#                  the unpacked tree), the example configs and, when built, the Python module
#                  (imported from the unpacked tree); no headers, no static libraries.
#   spikeflow-dev  Depends on spikeflow of the same version and on the -dev package behind every
#                  find_dependency of spikeflowConfig.cmake; holds the headers, static libraries
#                  and the CMake package config; no executable.
# Prints each package's Depends line. Run by ctest (tests/install/CMakeLists.txt):
#   check_deb.sh BUILD_DIR WORK_DIR VERSION PYTHON(ON|OFF) [PYTHON_EXE]
set -eu
build=$1 work=$2 version=$3 python=${4:-OFF} python_exe=${5:-/usr/bin/python3}
rm -rf "$work"
mkdir -p "$work"
cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work" > "$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; exit 1; }
fail() { echo "$*" >&2; exit 1; }
rt=$(ls "$work"/spikeflow_*.deb) || fail "no runtime package (spikeflow_*.deb) in $work"
dev=$(ls "$work"/spikeflow-dev_*.deb) || fail "no -dev package (spikeflow-dev_*.deb) in $work"

# Runtime package.
echo "package: $rt ($(stat -c %s "$rt") bytes)"
depends=$(dpkg-deb -f "$rt" Depends)
echo "Depends: $depends"
for lib in libtorch libtbb libzmq libyaml-cpp libhdf5 libmatio; do
  case "$depends" in *"$lib"*) ;; *) fail "spikeflow Depends lacks $lib" ;; esac
done
case "$depends" in *-dev*) fail "spikeflow Depends on a -dev package: $depends" ;; esac
dpkg-deb -x "$rt" "$work/runtime"
test -f "$work/runtime/usr/share/spikeflow/configs/live_native.yaml" || fail "configs missing from spikeflow"
test ! -e "$work/runtime/usr/include" || fail "headers in the runtime package"
! find "$work/runtime" -name '*.a' | grep -q . || fail "static libraries in the runtime package"
got=$("$work/runtime/usr/bin/spikeflow" --version)
echo "$got"
[ "$got" = "spikeflow $version" ] || fail "expected 'spikeflow $version'"
if [ "$python" = ON ]; then
  ls "$work"/runtime/usr/lib/python3/dist-packages/spikeflow/_spikeflow*.so > /dev/null ||
    fail "the Python module is missing from lib/python3/dist-packages/spikeflow"
  mod=$(PYTHONPATH="$work/runtime/usr/lib/python3/dist-packages" "$python_exe" -c \
        'import spikeflow; print(spikeflow.__file__)')
  echo "python: import spikeflow -> $mod"
  case "$mod" in "$work/runtime/"*) ;; *) fail "imported spikeflow from $mod, not the package" ;; esac
fi

# -dev package.
echo "package: $dev ($(stat -c %s "$dev") bytes)"
ddepends=$(dpkg-deb -f "$dev" Depends)
echo "Depends: $ddepends"
for pkg in "spikeflow (= $version)" libtorch-dev libtbb-dev libzmq3-dev cppzmq-dev libboost-system-dev \
           libyaml-cpp-dev libspdlog-dev libfmt-dev libhdf5-dev libmatio-dev zlib1g-dev pkg-config; do
  case "$ddepends" in *"$pkg"*) ;; *) fail "spikeflow-dev Depends lacks $pkg" ;; esac
done
dpkg-deb -x "$dev" "$work/dev"
for f in include/spikeflow/core/prediction.h include/spikeflow/pipeline/embedded_pipeline.h \
         include/spikeflow/pipeline/training_run.h lib/cmake/spikeflow/spikeflowConfig.cmake \
         lib/cmake/spikeflow/spikeflowTargets.cmake; do
  test -f "$work/dev/usr/$f" || fail "$f missing from spikeflow-dev"
done
for lib in core replay models models_torch stages pipeline; do
  find "$work/dev/usr" -name "libspikeflow_$lib.a" | grep -q . || fail "libspikeflow_$lib.a missing from spikeflow-dev"
done
test ! -e "$work/dev/usr/bin" || fail "the executable is in spikeflow-dev"
test ! -e "$work/dev/usr/lib/python3" || fail "the Python module is in spikeflow-dev"
echo "debs ok: $(basename "$rt") $(basename "$dev")"

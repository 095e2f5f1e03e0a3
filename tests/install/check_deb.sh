#!/bin/sh
# Builds the .deb with CPack from the build tree, unpacks it (dpkg-deb -x, no root needed) and runs
# the packaged spikeflow --version. Prints the package's Depends line. Run by ctest
# (tests/install/CMakeLists.txt): check_deb.sh BUILD_DIR WORK_DIR VERSION
set -eu
build=$1 work=$2 version=$3
rm -rf "$work"
mkdir -p "$work"
cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work" > "$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/*.deb)
echo "package: $deb ($(stat -c %s "$deb") bytes)"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for lib in libtorch libtbb libzmq libyaml-cpp libhdf5 libmatio; do
  case "$depends" in
    *"$lib"*) ;;
    *) echo "Depends lacks $lib" >&2; exit 1 ;;
  esac
done
dpkg-deb -x "$deb" "$work/root"
test -f "$work/root/usr/include/spikeflow/core/prediction.h" || { echo "headers missing from the package" >&2; exit 1; }
got=$("$work/root/usr/bin/spikeflow" --version)
echo "$got"
[ "$got" = "spikeflow $version" ] || { echo "expected 'spikeflow $version'" >&2; exit 1; }

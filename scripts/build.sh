#!/usr/bin/env bash
# Configures and builds zarr-parallel into build/ (or $BUILD_DIR), reusing the folder and ccache so
# that rebuilds are incremental. ZP_SANITIZE=1 builds with AddressSanitizer + UBSan; ZP_FUZZ=1
# (with CC=clang CXX=clang++) adds the libFuzzer harnesses.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
SANITIZE=${ZP_SANITIZE:-0}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
FUZZ=${ZP_FUZZ:-0}
san=OFF
python=ON
fuzz=OFF
[ "$FUZZ" = "1" ] && fuzz=ON
# An ASan-instrumented module cannot be loaded into an uninstrumented python: skip it there.
[ "$SANITIZE" = "1" ] && san=ON && python=OFF
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DZP_SANITIZE="$san" -DZP_PYTHON="$python" -DZP_FUZZ="$fuzz" > "$BUILD_DIR.cmake.log" 2>&1 \
  || { cat "$BUILD_DIR.cmake.log"; exit 1; }
rm -f "$BUILD_DIR.cmake.log"
cmake --build "$BUILD_DIR" -j "$(nproc)"

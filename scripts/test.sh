#!/usr/bin/env bash
# Installs dependencies (the build's and the tests': SLURM, nginx, valgrind, CDO/NCO, npm servers),
# builds, and runs every test (GoogleTest unit tests and the end-to-end tests that open our stores
# with xarray) through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" "$@"

#!/usr/bin/env bash
# Quick start: install what building and running need (scripts/setup.sh; the tests' packages are
# scripts/test.sh's), build, make a small ERA5-like sample with the project's own
# generator, and cache it with examples/era5_sample.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
rm -rf sample
./build/bin/zp-make-sample --out sample --files 4 > /dev/null
echo "sample data: $(ls sample/*.nc | wc -l) files in sample/"
./build/bin/zarr-parallel cache examples/era5_sample.yaml --log-level 1

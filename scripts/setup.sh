#!/usr/bin/env bash
# Installs every Debian package zarr-parallel needs to build, test and benchmark. Idempotent:
# packages already present are skipped, so a second run costs a dpkg query and no network.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config clang-format clang libclang-rt-14-dev
  libhdf5-dev libnetcdf-dev netcdf-bin
  libblosc-dev libzstd-dev liblz4-dev libdeflate-dev libisal-dev zlib1g-dev libssl-dev libbz2-dev liblzma-dev libaec-dev
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libfmt-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev googletest
  libopenmpi-dev openmpi-bin nco cdo librsvg2-bin libncarg-data
  slurmctld slurmd slurm-client munge
  pybind11-dev python3-dev
  python3 python3-numpy python3-xarray python3-zarr python3-netcdf4 python3-pytest python3-seccomp python3-h5py
  python3-dask python3-distributed python3-numcodecs
  nginx-light python3-boto3 python3-botocore python3-fsspec python3-aiohttp python3-requests
  iproute2 python3-pip python3-setuptools python3-wheel python3-venv
  valgrind
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# node and npm run the tests' local S3 server (s3rver); the machine image may bring its own node.
if ! command -v npm > /dev/null; then missing+=(npm); fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages the tests use, in a project-local folder (never global): s3rver, a local S3;
# zarrita and its file system store, an independent Zarr v3 reader.
TOOLS="$(cd "$(dirname "$0")/.." && pwd)/.tools/node"
if [ ! -f "$TOOLS/node_modules/s3rver/package.json" ] || [ ! -f "$TOOLS/node_modules/zarrita/package.json" ] \
   || [ ! -f "$TOOLS/node_modules/@zarrita/storage/package.json" ]; then
  echo "setup: installing s3rver and zarrita into $TOOLS"
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error s3rver@3.7.1 zarrita@0.7.5 \
    @zarrita/storage@0.2.0
fi

# The second real-world sweep's files (tests/e2e/test_fidelity.py): the NetCDF files R packages ship
# for their examples and tests (ncmeta: SeaWiFS L3, gridMET, Daymet, groups; stars: CMIP, TRMM,
# Stage IV, Lambert conformal...), 4 MB of .debs unpacked into a project-local folder, not installed.
SAMPLES="$(cd "$(dirname "$0")/.." && pwd)/.tools/debian-samples"
if [ ! -f "$SAMPLES/.complete" ]; then
  echo "setup: unpacking r-cran-ncmeta and r-cran-stars into $SAMPLES"
  rm -rf "$SAMPLES" && mkdir -p "$SAMPLES/debs"
  (cd "$SAMPLES/debs" && { apt-get download -q r-cran-ncmeta r-cran-stars \
    || { $SUDO apt-get update -qq && apt-get download -q r-cran-ncmeta r-cran-stars; }; })
  for deb in "$SAMPLES"/debs/*.deb; do dpkg-deb -x "$deb" "$SAMPLES/files"; done
  rm -rf "$SAMPLES/debs"
  touch "$SAMPLES/.complete"
fi

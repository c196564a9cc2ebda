#!/usr/bin/env bash
# Installs the Debian packages zarr-parallel needs. Idempotent: packages already present are
# skipped, so a second run costs a dpkg query and no network.
#   scripts/setup.sh           what building and running need (scripts/quickstart.sh)
#   scripts/setup.sh --tests   that, and what the test suite needs (scripts/test.sh): SLURM and
#                              munge, nginx, valgrind, clang, pmccabe (check_function_sizes.sh),
#                              CDO/NCO, NCL's sample data, and the npm servers in the project's
#                              .tools/node, and the second sweep's sample files (two R packages'
#                              .debs unpacked into .tools/, not installed), ecCodes' tools and
#                              cfgrib, the GRIB tests' oracle (its .debs unpacked into .tools/cfgrib)
#   scripts/setup.sh ... PKG   also these packages (bench/setup.sh's baselines)
# It never removes a package: apt-get simulates the install first, and if that would remove
# anything (a conflict with something installed here) it stops and names the packages.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_AND_RUN=(
  build-essential cmake ninja-build ccache pkg-config
  libhdf5-dev libnetcdf-dev
  libblosc-dev libzstd-dev liblz4-dev libdeflate-dev libisal-dev zlib1g-dev libssl-dev libbz2-dev liblzma-dev libaec-dev libeccodes-dev
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libfmt-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev googletest
  libopenmpi-dev openmpi-bin
  pybind11-dev python3-dev
  python3 python3-numpy python3-xarray python3-zarr python3-numcodecs python3-dask python3-distributed
  python3-pip python3-setuptools python3-wheel python3-venv
)
TESTS_ONLY=(
  clang-format clang libclang-rt-14-dev netcdf-bin nco cdo librsvg2-bin libncarg-data
  slurmctld slurmd slurm-client munge
  python3-netcdf4 python3-pytest python3-seccomp python3-h5py
  nginx-light python3-boto3 python3-botocore python3-fsspec python3-aiohttp python3-requests
  iproute2 valgrind
  libeccodes-tools python3-cffi python3-attr python3-click python3-pandas
  pmccabe
)

tests=0
extra=()
for arg in "$@"; do
  case "$arg" in
    --tests) tests=1 ;;
    -*) echo "usage: scripts/setup.sh [--tests] [PACKAGE...]" >&2; exit 2 ;;
    *) extra+=("$arg") ;;  # more packages, installed the same way (bench/setup.sh's baselines)
  esac
done
PACKAGES=("${BUILD_AND_RUN[@]}" "${extra[@]}")
[ "$tests" = 1 ] && PACKAGES+=("${TESTS_ONLY[@]}")

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# Any libcurl development package builds us (we use OpenSSL's libcrypto directly, not curl's TLS):
# keep the one a machine has (the GRIB stack brings libcurl4-gnutls-dev), never swap it.
for variant in libcurl4-gnutls-dev libcurl4-nss-dev; do
  if installed "$variant"; then
    for i in "${!PACKAGES[@]}"; do
      [ "${PACKAGES[$i]}" = libcurl4-openssl-dev ] && PACKAGES[$i]="$variant"
    done
    break
  fi
done

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done
# node and npm run the tests' local S3 server (s3rver); the machine image may bring its own node.
if [ "$tests" = 1 ] && ! command -v npm > /dev/null; then missing+=(npm); fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
else
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # The simulation lists what the install would do; "Remv" lines are packages it would remove.
  plan=$(apt-get -s install --no-install-recommends "${missing[@]}" 2>&1) || {
    echo "setup: apt-get cannot install ${missing[*]}:" >&2
    echo "$plan" | tail -n 20 >&2
    exit 1
  }
  removed=$(echo "$plan" | awk '$1 == "Remv" { print $2 }' | sort -u | tr '\n' ' ')
  if [ -n "$removed" ]; then
    echo "setup: stopped, nothing installed or removed: installing ${missing[*]}" >&2
    echo "setup: would REMOVE these installed packages (they conflict): ${removed% }" >&2
    echo "setup: remove or replace them yourself if you mean to, or install the packages above by hand" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}"
fi

# npm packages the tests use, in a project-local folder (never global): s3rver, a local S3;
# zarrita and its file system store, an independent Zarr v3 reader.
TOOLS="$PWD/.tools/node"
if [ "$tests" = 1 ] && { [ ! -f "$TOOLS/node_modules/s3rver/package.json" ] \
   || [ ! -f "$TOOLS/node_modules/zarrita/package.json" ] \
   || [ ! -f "$TOOLS/node_modules/@zarrita/storage/package.json" ]; }; then
  echo "setup: installing s3rver and zarrita into $TOOLS"
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error s3rver@3.7.1 zarrita@0.7.5 \
    @zarrita/storage@0.2.0
fi

# Unpacks Debian packages into a project-local folder DIR (DIR/files), never installing them:
# unpack_debs DIR COUNT PKG...; COUNT .debs must arrive. DIR/.complete marks it done.
unpack_debs() {
  local dir=$1 count=$2; shift 2
  rm -rf "$dir" && mkdir -p "$dir/debs"
  (cd "$dir/debs" && { apt-get download -q "$@" \
    || { $SUDO apt-get update -qq && apt-get download -q "$@"; }; })
  shopt -s nullglob
  local debs=("$dir"/debs/*.deb)
  if [ ${#debs[@]} -ne "$count" ]; then
    echo "setup: apt-get download fetched ${#debs[@]} of $count .debs ($*)" >&2; exit 1
  fi
  for deb in "${debs[@]}"; do dpkg-deb -x "$deb" "$dir/files"; done
  rm -rf "$dir/debs"
  touch "$dir/.complete"
}

# The second real-world sweep's files (tests/e2e/test_fidelity.py): the NetCDF files R packages ship
# for their examples and tests (ncmeta: SeaWiFS L3, gridMET, Daymet, groups; stars: CMIP, TRMM,
# Stage IV, Lambert conformal...), 4 MB of .debs unpacked into a project-local folder, not installed.
SAMPLES="$PWD/.tools/debian-samples"
if [ "$tests" = 1 ] && [ ! -f "$SAMPLES/.complete" ]; then
  echo "setup: unpacking r-cran-ncmeta and r-cran-stars into $SAMPLES"
  unpack_debs "$SAMPLES" 2 r-cran-ncmeta r-cran-stars
fi

# cfgrib, the GRIB tests' oracle (tests/e2e/test_grib.py): python3-cfgrib cannot be installed here
# (python3-eccodes pulls ecmwflibs -> magics -> libcurl4-gnutls-dev, which removes our curl), so
# its pure-Python .debs are unpacked into a project-local folder; it loads Debian's libeccodes0.
GRIBPY="$PWD/.tools/cfgrib"
if [ "$tests" = 1 ] && [ ! -f "$GRIBPY/.complete" ]; then
  echo "setup: unpacking python3-cfgrib, python3-eccodes and python3-findlibs into $GRIBPY"
  unpack_debs "$GRIBPY" 3 python3-cfgrib python3-eccodes python3-findlibs
fi

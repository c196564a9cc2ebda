#!/usr/bin/env bash
# The benchmark's extra packages (baselines): GDAL's gdalmdimtranslate. Idempotent.
set -euo pipefail
bash "$(dirname "$0")/../scripts/setup.sh"
if ! command -v gdalmdimtranslate > /dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends gdal-bin
fi

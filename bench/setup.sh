#!/usr/bin/env bash
# The benchmark's extra packages (baselines): GDAL's gdalmdimtranslate. Idempotent.
set -euo pipefail
bash "$(dirname "$0")/../scripts/setup.sh"
# kerchunk 0.1.2 (../shared/vendor, R1 and W7's reference sets) needs h5py and ujson.
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
for p in python3-h5py python3-ujson; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$p"
done
if ! command -v gdalmdimtranslate > /dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends gdal-bin
fi

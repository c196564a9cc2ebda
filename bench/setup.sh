#!/usr/bin/env bash
# The benchmark's extra packages (baselines): GDAL's gdalmdimtranslate. Idempotent.
set -euo pipefail
# kerchunk 0.1.2 (../shared/vendor, R1 and W7's reference sets) needs h5py and ujson. Installed as
# scripts/setup.sh installs everything: simulated first, never removing a package.
bash "$(dirname "$0")/../scripts/setup.sh" --tests python3-h5py python3-ujson gdal-bin

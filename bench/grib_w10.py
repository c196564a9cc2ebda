#!/usr/bin/python3
"""W10 (issue 30): N days of hourly ERA5-like single-level GRIB2 (one file a day, 2t and 2d on a
regular 1-degree grid, written by ecCodes) cached into Zarr with chunks (24, 91, 180), against
xarray's open_mfdataset(engine="cfgrib") + to_zarr (dask threads), same machine, same run.
Usage: bench/grib_w10.py [DAYS] (default 7); needs scripts/setup.sh --tests (cfgrib in .tools)
and build/bin/zarr-parallel. Prints seconds and the speed-up; both stores are checked equal."""
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import grib_files as gf  # noqa: E402

assert gf.load_oracle() is None, gf.load_oracle()
import xarray as xr  # noqa: E402


def main(days):
    work = Path(tempfile.mkdtemp(prefix="grib_w10_"))
    try:
        for d in range(1, days + 1):
            gf.era5_day(work / f"era5_202401{d:02d}.grib2", d, hours=24, ni=360, nj=181)
        files = sorted(work.glob("era5_*.grib2"))
        size = sum(f.stat().st_size for f in files)
        chunks = {"time": 24, "latitude": 91, "longitude": 180}
        cfg = work / "w10.yaml"
        cfg.write_text(json.dumps({"data_uri": str(work / "era5_*.grib2"), "chunks": chunks,
                                   "cache_store": str(work / "zp.zarr"), "recommend_changes": False}))
        t0 = time.perf_counter()
        subprocess.run([str(REPO / "build" / "bin" / "zarr-parallel"), "cache", str(cfg), "--yes"],
                       check=True, capture_output=True)
        ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = xr.open_mfdataset([str(f) for f in files], engine="cfgrib", combine="nested",
                               concat_dim="time", backend_kwargs={"indexpath": ""}, parallel=True)
        ds.chunk(chunks).to_zarr(work / "xr.zarr", mode="w")
        theirs = time.perf_counter() - t0
        a, b = xr.open_zarr(work / "zp.zarr").load(), xr.open_zarr(work / "xr.zarr").load()
        for v in ("t2m", "d2m"):
            assert np.array_equal(a[v].values, b[v].values, equal_nan=True), v
        print(f"W10 {days} days, {len(files) * 48} messages, {size / 1e6:.1f} MB: "
              f"zarr-parallel {ours:.2f} s, cfgrib+xarray (threads) {theirs:.2f} s, "
              f"x{theirs / ours:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)

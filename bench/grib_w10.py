#!/usr/bin/python3
"""W10 (issue 30): a month of hourly ERA5-like single-level GRIB2 (one file a day, 2t and 2d,
16-bit simple packing as ERA5's, written by ecCodes) cached into Zarr with chunks (24, 91, 180),
against xarray's open_mfdataset(engine="cfgrib", parallel=True) + to_zarr (dask threads), same
machine, same run, alternating; W10s: a `sel` box of it (8 days, latitude 60 .. -30, longitude
40 .. 100). Both stores are compared equal before any time counts.

Usage: bench/grib_w10.py [--days 31] [--grid 1.0] [--runs 3] [--data DIR] [--workloads W10,W10s]
                         [--bin build/bin/zarr-parallel]
Needs scripts/setup.sh --tests (cfgrib in .tools) and build/bin/zarr-parallel. --grid 0.25 is
ERA5's 721 x 1440 (150 MB a day at 24 bits: a month is ~3 GB and cfgrib needs minutes a run); the
default is 1.0 degree (181 x 360). Prints one JSON line per workload (medians, every run, load)."""
import argparse
import json
import os
import shutil
import statistics
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

CHUNKS = {"time": 24, "latitude": 91, "longitude": 180}
SEL = {"time": ["2024-01-02T00:00", "2024-01-09T23:00"], "latitude": [60.0, -30.0],
       "longitude": [40.0, 100.0]}


def make_day(path, day, grid):
    ni, nj = int(round(360 / grid)), int(round(180 / grid)) + 1
    rng = np.random.default_rng(day)
    lat = np.linspace(90, -90, nj)[:, None]
    lon = np.linspace(0, 360 - grid, ni)[None, :]
    base = 250 + 40 * np.cos(np.radians(lat)) + 5 * np.sin(np.radians(3 * lon))
    msgs = []
    for h in range(24):
        for p, off in (("2t", 0.0), ("2d", -5.0)):
            msgs.append({"sample": "regular_ll_sfc_grib2", **gf.grid(ni, nj, step=grid),
                         "dataDate": 20240100 + day, "dataTime": h * 100, "shortName": p,
                         "bitsPerValue": 16,
                         "values": base + off + np.sin(h / 4) + rng.standard_normal((nj, ni))})
    gf.write_messages(path, msgs)


BIN = REPO / "build" / "bin" / "zarr-parallel"


def ours(cfg_path, store):
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([str(BIN), "cache", str(cfg_path), "--yes"], check=True, capture_output=True)
    return time.perf_counter() - t0


def theirs(files, store, sel):
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.perf_counter()
    ds = xr.open_mfdataset([str(f) for f in files], engine="cfgrib", combine="nested",
                           concat_dim="time", backend_kwargs={"indexpath": ""}, parallel=True)
    if sel:
        ds = ds.sel(time=slice(*SEL["time"]), latitude=slice(*SEL["latitude"]),
                    longitude=slice(*SEL["longitude"]))
    ds.chunk(CHUNKS).to_zarr(store, mode="w")
    return time.perf_counter() - t0


def run(workload, files, work, runs):
    sel = workload == "W10s"
    cfg = {"data_uri": str(files[0].parent / "era5_*.grib2"), "chunks": CHUNKS,
           "cache_store": str(work / "zp.zarr"), "recommend_changes": False,
           "deploy_mode": "local", "simultaneous_worker_limit": 2, "generate_stats": True,
           "log_level": 0}
    if sel:
        cfg["preprocessors"] = [{"type": "sel", **SEL}]
    cfg_path = work / f"{workload}.yaml"
    cfg_path.write_text(json.dumps(cfg))
    a, b, loads = [], [], []
    for _ in range(runs):
        loads.append(os.getloadavg()[0])
        a.append(ours(cfg_path, work / "zp.zarr"))
        b.append(theirs(files, work / "xr.zarr", sel))
        print(f"{workload} run: ours {a[-1]:.3f} s, cfgrib+xarray {b[-1]:.3f} s, load {loads[-1]}",
              file=sys.stderr, flush=True)
    got, exp = xr.open_zarr(work / "zp.zarr").load(), xr.open_zarr(work / "xr.zarr").load()
    for v in ("t2m", "d2m"):
        assert np.array_equal(got[v].values, exp[v].values, equal_nan=True), v
    stats = json.loads((work / "zp.zarr" / ".zarr-parallel" / "stats.json").read_text())
    return {"workload": workload, "messages": len(files) * 48, "shape": list(got.t2m.shape),
            "ours_median": round(statistics.median(a), 3), "ours": [round(x, 3) for x in a],
            "cfgrib_threads_median": round(statistics.median(b), 3),
            "cfgrib_threads": [round(x, 3) for x in b],
            "speedup": round(statistics.median(b) / statistics.median(a), 1),
            "read_amplification": stats.get("read_amplification"), "load_1min": loads}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--grid", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", type=Path, help="keep the GRIB files here (made once)")
    ap.add_argument("--workloads", default="W10,W10s")
    ap.add_argument("--bin", type=Path, default=BIN, help="the zarr-parallel binary to time")
    args = ap.parse_args()
    globals()["BIN"] = args.bin
    data = args.data or Path(tempfile.mkdtemp(prefix="grib_w10_"))
    data.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="grib_w10_out_"))
    try:
        files = []
        for d in range(1, args.days + 1):
            f = data / f"era5_202401{d:02d}.grib2"
            if not f.exists():
                make_day(f.with_suffix(".tmp"), d, args.grid)
                f.with_suffix(".tmp").rename(f)
            files.append(f)
        size = sum(f.stat().st_size for f in files)
        for w in args.workloads.split(","):
            r = run(w, files, work, args.runs)
            r.update(days=args.days, grid=args.grid, grib_mb=round(size / 1e6, 1))
            print(json.dumps(r), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.data:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()

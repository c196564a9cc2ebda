"""A1 (issue 28): a cache of 365 small daily files, then one more day. Measures the first cache, the
cache-hit check, what a rerun does once the 366th file matches the glob (an append), caching that
day alone, a rebuild (on_source_change: rebuild, with a 367th file), and xarray's
to_zarr(append_dim="time") of the day into a copy of the store. Counts the files each writes. Run by hand: /usr/bin/python3 bench/a1_growth.py"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("ZP_BIN", REPO / "build" / "bin" / "zarr-parallel"))
SAMPLE = BIN.parent / "zp-make-sample"


def make_days(folder, first, count):
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(SAMPLE), "--out", str(folder), "--files", str(count), "--first-day", str(first),
                    "--lat", "73", "--lon", "144", "--chunks", "24", "73", "144", "--deflate", "1"],
                   check=True, capture_output=True)


def files_newer(folder, since):
    return sum(1 for p in Path(folder).rglob("*")
               if p.is_file() and p.stat().st_mtime_ns > since and ".zarr-parallel" not in p.parts)


TIME_CHUNK = 24


def cache(work, data_uri, store, label, **extra):
    cfg = work / f"{label}.yaml"
    cfg.write_text(json.dumps({"data_uri": str(data_uri), "cache_store": str(store), "deploy_mode": "local",
                               "chunks": {"time": TIME_CHUNK, "latitude": 73, "longitude": 144},
                               "recommend_changes": False, "log_level": 1, **extra}))
    since = time.time_ns()
    t0 = time.perf_counter()
    proc = subprocess.run([str(BIN), "cache", str(cfg)], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    first = proc.stderr.splitlines()[0] if proc.stderr else ""
    return {"step": label, "seconds": round(wall, 3), "files_written": files_newer(store, since),
            "first_line": first[:160]}


def xarray_append(store, day_file):
    import xarray as xr
    copy = Path(str(store) + ".xr")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns(".zarr-parallel"))
    since = time.time_ns()
    t0 = time.perf_counter()
    ds = xr.open_dataset(day_file).chunk({"time": TIME_CHUNK})
    for v in ds.variables.values():
        v.encoding = {}
    ds.drop_vars(["latitude", "longitude"]).to_zarr(copy, append_dim="time", consolidated=True)
    wall = time.perf_counter() - t0
    return {"step": "xarray to_zarr(append_dim) of the day", "seconds": round(wall, 3),
            "files_written": files_newer(copy, since)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--work", default=str(REPO / "bench" / "data" / "a1"))
    ap.add_argument("--time-chunk", type=int, default=24,
                    help="output chunk along time (48: the year ends in a partial chunk, rewritten)")
    args = ap.parse_args()
    global TIME_CHUNK
    TIME_CHUNK = args.time_chunk
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    make_days(work / "src", 0, args.days)
    make_days(work / "next", args.days, 2)
    day, day2 = sorted((work / "next").glob("*.nc"))
    store = work / "year.zarr"
    rows = [cache(work, work / "src" / "*.nc", store, "first cache of the year")]
    rows.append(cache(work, work / "src" / "*.nc", store, "rerun, nothing new (hit check)"))
    shutil.copy2(day, work / "src" / day.name)
    rows.append(xarray_append(store, day))
    rows.append(cache(work, work / "src" / "*.nc", store, "rerun with day 366 in the glob"))
    rows.append(cache(work, day, work / "day.zarr", "the new day cached alone"))
    shutil.copy2(day2, work / "src" / day2.name)
    rows.append(cache(work, work / "src" / "*.nc", store, "rerun with day 367, on_source_change: rebuild",
                      on_source_change="rebuild"))
    for r in rows:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())

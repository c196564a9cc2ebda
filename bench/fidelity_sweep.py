#!/usr/bin/python3
"""Fidelity sweep: every NetCDF file under a folder (default /usr/share/ncarg/data, Debian's
libncarg-data) that xarray opens is cached with default settings and compared with xarray's
reading: the same data variables and coordinates, dims, dtypes, values (undecoded, bit for bit) and
attributes. Prints one line a file and "N identical of M". Not part of CI (the data is a 27 MB
package): `apt-get install libncarg-data`, then
    /usr/bin/python3 bench/fidelity_sweep.py [FOLDER] [--bin build/bin/zarr-parallel]"""
import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

warnings.simplefilter("ignore")


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return np.array_equal(a, b, equal_nan=True)
    return np.array_equal(a, b)


def attrs_equal(x, y):
    if set(x) != set(y):
        return False
    for k in x:
        a, b = np.asarray(x[k]), np.asarray(y[k])
        if a.dtype.kind in "iuf" and b.dtype.kind in "iuf":
            if a.shape != b.shape or not np.array_equal(a.astype(float), b.astype(float), equal_nan=True):
                return False
        elif not (a.shape == b.shape and np.array_equal(a, b)):
            return False
    return True


def raw_attrs(v, source_attrs):
    """Undecoded attributes; a NaN _FillValue on a float variable that the source has none of is
    what xarray's own to_zarr adds too."""
    a = dict(v.attrs)
    fv = a.get("_FillValue")
    if "_FillValue" not in source_attrs and v.dtype.kind == "f" and fv is not None and np.isnan(fv):
        del a["_FillValue"]
    return a


def compare(store, src):
    want = xr.open_dataset(src, mask_and_scale=False, decode_times=False)
    got = xr.open_zarr(store, mask_and_scale=False, decode_times=False)
    if set(got.data_vars) != set(want.data_vars):
        return f"data variables differ: {sorted(set(want.data_vars) ^ set(got.data_vars))}"
    if set(got.coords) != set(want.coords):
        return f"coordinates differ: {sorted(set(want.coords) ^ set(got.coords))}"
    for name in want.variables:
        g, w = got[name], want[name]
        if g.dims != w.dims:
            return f"{name}: dims {g.dims} != {w.dims}"
        if not same(g.values, w.values):
            return f"{name}: values or dtype differ ({g.dtype} vs {w.dtype})"
        if not attrs_equal(raw_attrs(g, w.attrs), w.attrs):
            return f"{name}: attributes differ: {sorted(set(g.attrs) ^ set(w.attrs)) or 'values'}"
    extra = {k: v for k, v in got.attrs.items() if not k.startswith("zarr_parallel_")}
    if not attrs_equal(extra, want.attrs):
        return "global attributes differ"
    return ""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("folder", nargs="?", default="/usr/share/ncarg/data")
    p.add_argument("--bin", default=str(Path(__file__).resolve().parents[1] / "build" / "bin" / "zarr-parallel"))
    args = p.parse_args()
    files = sorted(Path(args.folder).rglob("*.nc"))
    opened = identical = 0
    for f in files:
        try:
            xr.open_dataset(f).close()
        except Exception:  # noqa: BLE001 - xarray cannot open it: not counted
            continue
        opened += 1
        with tempfile.TemporaryDirectory() as tmp:
            store = Path(tmp) / "c.zarr"
            cfg = Path(tmp) / "c.yaml"
            cfg.write_text(json.dumps({"data_uri": str(f), "cache_store": str(store), "deploy_mode": "series",
                                       "recommend_changes": False}))
            proc = subprocess.run([args.bin, "cache", str(cfg)], capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                why = f"exit {proc.returncode}: " + proc.stderr.strip().splitlines()[-1][:160]
            else:
                try:
                    why = compare(store, f)
                except Exception as e:  # noqa: BLE001
                    why = f"comparison failed: {type(e).__name__}: {str(e)[:120]}"
        identical += why == ""
        print(f"{'identical' if not why else 'DIFFERENT'}  {f.relative_to(args.folder)}  {why}")
    print(f"{identical} identical of {opened} that xarray opens ({len(files)} .nc files)")
    return 0 if identical == opened else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Fidelity sweep: every NetCDF file under a folder (default /usr/share/ncarg/data, Debian's
libncarg-data) that xarray opens is cached with default settings and compared with xarray's
reading: the same data variables and coordinates, dims, dtypes, values (undecoded, bit for bit) and
attributes. A file the tool refuses (exit 2 or 4) is listed REFUSED with the tool's reason, one
that differs DIFFERENT. With --refs, `zarr-parallel refs` of each file is also read back through
fsspec's reference filesystem and compared the same way (refs identical / refs REFUSED / refs
DIFFERENT). Prints one line a file and, last, "N identical of M". The suite runs it over
libncarg-data and over the files R packages ship for their examples (scripts/setup.sh):
    /usr/bin/python3 bench/fidelity_sweep.py [FOLDER] [--bin build/bin/zarr-parallel] [--refs]"""
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


def compare_datasets(got, want):
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
    # xarray's zarr backend hides global attributes starting with "_NC" (NCZarr's), of any store.
    want_attrs = {k: v for k, v in want.attrs.items() if not k.startswith("_NC")}
    if not attrs_equal(extra, want_attrs):
        return "global attributes differ"
    return ""


def compare(store, src):
    want = xr.open_dataset(src, mask_and_scale=False, decode_times=False)
    got = xr.open_zarr(store, mask_and_scale=False, decode_times=False)
    return compare_datasets(got, want)


def reason(proc):
    lines = proc.stderr.strip().splitlines() or ["(no message)"]
    return f"exit {proc.returncode}: " + lines[-1][:200]


def check_cache(binary, f):
    """'' when identical, else (status, why)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "c.zarr"
        cfg = Path(tmp) / "c.yaml"
        cfg.write_text(json.dumps({"data_uri": str(f), "cache_store": str(store), "deploy_mode": "series",
                                   "recommend_changes": False}))
        proc = subprocess.run([binary, "cache", str(cfg)], capture_output=True, text=True, timeout=600)
        if proc.returncode in (2, 4):
            return "REFUSED", reason(proc)
        if proc.returncode != 0:
            return "DIFFERENT", reason(proc)
        try:
            why = compare(store, f)
        except Exception as e:  # noqa: BLE001
            why = f"comparison failed: {type(e).__name__}: {str(e)[:120]}"
        return ("identical", "") if not why else ("DIFFERENT", why)


def check_refs(binary, f):
    """`refs` of the file read back through fsspec + xarray, raw, as xarray reads the file."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        proc = subprocess.run([binary, "refs", str(f), "-o", str(out)], capture_output=True, text=True,
                              timeout=600)
        if proc.returncode in (2, 4):
            return "refs REFUSED", reason(proc)
        if proc.returncode != 0:
            return "refs DIFFERENT", reason(proc)
        try:
            got = xr.open_dataset("reference://", engine="zarr", mask_and_scale=False, decode_times=False,
                                  backend_kwargs={"consolidated": False,
                                                  "storage_options": {"fo": json.loads(out.read_text())}})
            why = compare_datasets(got.load(), xr.open_dataset(f, mask_and_scale=False, decode_times=False))
        except Exception as e:  # noqa: BLE001
            why = f"reading back failed: {type(e).__name__}: {str(e)[:160]}"
        return ("refs identical", "") if not why else ("refs DIFFERENT", why)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("folder", nargs="?", default="/usr/share/ncarg/data")
    p.add_argument("--bin", default=str(Path(__file__).resolve().parents[1] / "build" / "bin" / "zarr-parallel"))
    p.add_argument("--refs", action="store_true", help="also read `refs` of each file back through fsspec")
    args = p.parse_args()
    files = sorted(Path(args.folder).rglob("*.nc"))
    opened = identical = refused = refs_identical = refs_refused = 0
    for f in files:
        try:  # as the comparison reads it: times undecoded (some files' times do not decode)
            xr.open_dataset(f, decode_times=False).close()
        except Exception:  # noqa: BLE001 - xarray cannot open it: not counted
            continue
        opened += 1
        status, why = check_cache(args.bin, f)
        identical += status == "identical"
        refused += status == "REFUSED"
        print(f"{status}  {f.relative_to(args.folder)}  {why}".rstrip())
        if args.refs:
            status, why = check_refs(args.bin, f)
            refs_identical += status == "refs identical"
            refs_refused += status == "refs REFUSED"
            print(f"{status}  {f.relative_to(args.folder)}  {why}".rstrip())
    if args.refs:
        print(f"refs: {refs_identical} identical, {refs_refused} refused of {opened}")
    print(f"{identical} identical of {opened} that xarray opens ({len(files)} .nc files, {refused} refused)")
    different = opened - identical - refused
    refs_different = opened - refs_identical - refs_refused if args.refs else 0
    return 0 if different == 0 and refs_different == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

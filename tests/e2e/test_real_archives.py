"""Archives as real producers write them, joined along concat_dim as xarray's open_mfdataset(...,
combine="nested", concat_dim=...) joins them (issue 27, items 1-5): months of 28-31 days in fixed
(not unlimited) dimensions, contiguous or NetCDF-3 fixed; chunking and compression that change
partway; time axes counted from each file's own start; `months since`; coordinate-only files and
Zarr roots of groups."""
import hashlib
import json
import shutil
import subprocess

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from conftest import BIN, run_cache, same_bits

MONTHS = [(2000, 1), (2000, 2), (2000, 3), (2000, 4)]  # 31, 29, 31, 30 days


def days_of(year, month):
    return pd.date_range(f"{year}-{month:02d}-01", periods=pd.Period(f"{year}-{month:02d}").days_in_month, freq="D")


def grid_values(times, seed):
    rng = np.random.default_rng(seed)
    return (250 + 20 * rng.random((len(times), 4, 5))).astype("f4")


def xarray_months(folder, dim="time", encoding=None):
    """Monthly files as plain xarray `to_netcdf` writes them: `dim` a fixed dimension, every
    variable contiguous; `encoding` of time as given (else xarray's default: days since the file's
    own first day)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, (y, m) in enumerate(MONTHS):
        times = days_of(y, m)
        ds = xr.Dataset({"t2m": ((dim, "lat", "lon"), grid_values(times, k), {"units": "K"})},
                        coords={dim: times, "lat": np.arange(4.0), "lon": np.arange(5.0)})
        ds.to_netcdf(folder / f"m{y}{m:02d}.nc", encoding={dim: encoding} if encoding else None)
    return sorted(folder.glob("m*.nc"))


def xarray_join(files, dim="time", **kw):
    return xr.open_mfdataset([str(f) for f in files], combine="nested", concat_dim=dim, data_vars="minimal",
                             coords="minimal", compat="override", **kw).load()


def cache_files(tmp_path, pattern, name, check=0, **extra):
    store = tmp_path / name
    dim = extra.pop("dim", "time")
    env = extra.pop("env", None)
    cfg = {"data_uri": str(pattern), "cache_store": str(store), "deploy_mode": "series", "concat_dim": dim,
           "recommend_changes": False, "chunks": {dim: 10, "lat": 4, "lon": 5}}
    cfg.update(extra)
    proc = run_cache(tmp_path, cfg, check=check, env=env)
    return store, proc


def assert_like_xarray(store, files, dim="time", raw_names=None):
    """Decoded: every variable and attribute as open_mfdataset shows it. Raw (decode_cf=False): the
    stored numbers of `raw_names` bit for bit (time numbers differ where files count from their
    own start: xarray joins those undecoded, we convert them to the first file's units)."""
    want = xarray_join(files, dim)
    got = xr.open_zarr(store).load()
    assert set(got.variables) == set(want.variables), (sorted(got.variables), sorted(want.variables))
    for name in want.variables:
        assert got[name].dims == want[name].dims, name
        assert got[name].dtype == want[name].dtype, (name, got[name].dtype, want[name].dtype)
        assert np.array_equal(got[name].values, want[name].values, equal_nan=want[name].dtype.kind == "f"), name
        assert got[name].attrs == want[name].attrs, name
    raw = xr.open_zarr(store, decode_cf=False).load()
    want_raw = xarray_join(files, dim, decode_cf=False)
    for name in raw_names if raw_names is not None else want_raw.variables:
        assert same_bits(raw[name].values, want_raw[name].values), name
    return got


def test_xarray_months_of_28_to_31_days_in_a_fixed_time_are_joined(tmp_path):
    """Item 1: plain `to_netcdf` months (fixed `time`, contiguous variables) with one time unit."""
    files = xarray_months(tmp_path / "src", encoding={"units": "hours since 1990-01-01", "dtype": "i4"})
    with netCDF4.Dataset(files[0]) as nc:
        assert not nc.dimensions["time"].isunlimited() and nc["t2m"].chunking() == "contiguous"
    store, _ = cache_files(tmp_path, tmp_path / "src" / "m*.nc", "m.zarr")
    got = assert_like_xarray(store, files)
    assert got.sizes["time"] == 121
    dec, _ = cache_files(tmp_path, tmp_path / "src" / "m*.nc", "d.zarr", encoding="decoded")
    assert np.array_equal(xr.open_zarr(dec).t2m.values, got.t2m.values)


def test_xarray_days_each_counted_from_its_own_start_are_joined(tmp_path):
    """Item 3: xarray's default time encoding ("hours since <the file's first hour>"), one file a
    day, no unlimited dimension: the coordinate is converted to the first file's units, as for an
    unlimited one."""
    folder = tmp_path / "src"
    folder.mkdir()
    for day in range(5):
        times = pd.date_range(f"2000-01-{day + 1:02d}", periods=24, freq="h")
        xr.Dataset({"t2m": (("time", "lat", "lon"), grid_values(times, day))},
                   coords={"time": times, "lat": np.arange(4.0), "lon": np.arange(5.0)}
                   ).to_netcdf(folder / f"d{day}.nc")
    files = sorted(folder.glob("d*.nc"))
    with netCDF4.Dataset(files[1]) as nc:
        assert nc["time"].units == "hours since 2000-01-02 00:00:00"
    store, _ = cache_files(tmp_path, folder / "d*.nc", "d.zarr")
    assert_like_xarray(store, files, raw_names=["t2m", "lat", "lon"])
    raw = xr.open_zarr(store, decode_times=False).time
    assert raw.attrs["units"] == "hours since 2000-01-01 00:00:00"
    assert np.array_equal(raw.values[24:27], [24, 25, 26])


def test_cds_months_in_a_fixed_valid_time_are_joined(tmp_path):
    """Item 1: the new CDS layout (netCDF4-python here): fixed `valid_time` (int64 seconds since
    1970), data chunked and compressed, months of different lengths."""
    folder = tmp_path / "src"
    folder.mkdir()
    for k, (y, m) in enumerate(MONTHS):
        times = days_of(y, m)
        with netCDF4.Dataset(folder / f"era5_{y}{m:02d}.nc", "w") as nc:
            nc.createDimension("valid_time", len(times))
            nc.createDimension("latitude", 4)
            nc.createDimension("longitude", 5)
            t = nc.createVariable("valid_time", "i8", ("valid_time",))
            t.units, t.calendar = "seconds since 1970-01-01", "proleptic_gregorian"
            t[:] = (times - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")
            for name in ("latitude", "longitude"):
                nc.createVariable(name, "f8", (name,))[:] = np.arange(nc.dimensions[name].size)
            v = nc.createVariable("t2m", "f4", ("valid_time", "latitude", "longitude"), zlib=True,
                                  chunksizes=(12, 4, 5), fill_value=np.float32(np.nan))
            v[:] = grid_values(times, k)
    files = sorted(folder.glob("era5_*.nc"))
    store, _ = cache_files(tmp_path, folder / "era5_*.nc", "c.zarr", dim="valid_time", chunks={"valid_time": 10, "latitude": 4, "longitude": 5})
    assert_like_xarray(store, files, dim="valid_time")


@pytest.mark.parametrize("fmt", ["NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET"])
def test_netcdf3_months_in_a_fixed_time_are_joined(tmp_path, fmt):
    """Item 1: NetCDF-3 months (packed shorts, as grib_to_netcdf writes them) with a fixed time."""
    folder = tmp_path / "src"
    folder.mkdir()
    for k, (y, m) in enumerate(MONTHS):
        times = days_of(y, m)
        with netCDF4.Dataset(folder / f"n{y}{m:02d}.nc", "w", format=fmt) as nc:
            nc.createDimension("time", len(times))
            nc.createDimension("lat", 4)
            nc.createDimension("lon", 5)
            t = nc.createVariable("time", "i4", ("time",))
            t.units, t.calendar = "hours since 1900-01-01 00:00:00.0", "gregorian"
            t[:] = (times - pd.Timestamp("1900-01-01")) // pd.Timedelta("1h")
            for name in ("lat", "lon"):
                nc.createVariable(name, "f4", (name,))[:] = np.arange(nc.dimensions[name].size)
            v = nc.createVariable("t2m", "i2", ("time", "lat", "lon"), fill_value=np.int16(-32767))
            v.scale_factor, v.add_offset, v.units = 0.001, 260.0, "K"
            v[:] = grid_values(times, k)
    files = sorted(folder.glob("n*.nc"))
    store, _ = cache_files(tmp_path, folder / "n*.nc", "n.zarr")
    assert_like_xarray(store, files)


def chunked_months(folder):
    """Monthly files from netCDF4-python, t2m chunked (8, 4, 5) with zlib."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, (y, m) in enumerate(MONTHS):
        times = days_of(y, m)
        with netCDF4.Dataset(folder / f"c{y}{m:02d}.nc", "w") as nc:
            nc.createDimension("time", None)
            nc.createDimension("lat", 4)
            nc.createDimension("lon", 5)
            t = nc.createVariable("time", "f8", ("time",))
            t.units, t.calendar = "days since 2000-01-01", "standard"
            t[:] = (times - pd.Timestamp("2000-01-01")) // pd.Timedelta("1D")
            for name in ("lat", "lon"):
                nc.createVariable(name, "f4", (name,))[:] = np.arange(nc.dimensions[name].size)
            v = nc.createVariable("t2m", "f4", ("time", "lat", "lon"), zlib=True, chunksizes=(8, 4, 5))
            v[:] = grid_values(times, k)
    return sorted(folder.glob("c*.nc"))


def nccopy(path, *args):
    tmp = path.with_suffix(".tmp")
    subprocess.run(["nccopy", *args, str(path), str(tmp)], check=True, capture_output=True)
    tmp.replace(path)


def test_chunking_and_compression_that_change_partway_are_joined(tmp_path):
    """Item 2: an archive rechunked and recompressed in the middle of its life (`nccopy -c`,
    `-d`, `-s` on some files): each file's chunks decode with their own shape and codecs; the
    output grid stays regular. A reference set, which holds one chunk shape and one codec chain,
    is refused naming the file that differs."""
    files = chunked_months(tmp_path / "src")
    nccopy(files[1], "-c", "time/5,lat/4,lon/5", "-d", "0")  # uncompressed, 5 days a chunk
    nccopy(files[2], "-c", "time/31,lat/4,lon/5", "-d", "4", "-s")  # shuffle + deflate, a month
    with netCDF4.Dataset(files[1]) as a, netCDF4.Dataset(files[2]) as b:
        assert a["t2m"].chunking() == [5, 4, 5] and not a["t2m"].filters()["zlib"]
        assert b["t2m"].chunking() == [31, 4, 5] and b["t2m"].filters()["shuffle"]
    pattern = tmp_path / "src" / "c*.nc"
    inspect = subprocess.run([str(BIN), "inspect", str(pattern)], capture_output=True, text=True, timeout=60)
    assert "per file: from file 0: chunks [8,4,5]" in inspect.stdout, inspect.stdout
    assert "from file 1: chunks [5,4,5] codecs none; from file 2: chunks [31,4,5]" in inspect.stdout
    for scan in ("1", "0"):
        store, _ = cache_files(tmp_path, pattern, f"c{scan}.zarr", chunks={"time": 7, "lat": 2, "lon": 5},
                               deploy_mode="local", simultaneous_worker_limit=2)
        assert_like_xarray(store, files)
        cfg = {"data_uri": str(pattern), "cache_store": str(store), "deploy_mode": "series",
               "concat_dim": "time", "recommend_changes": False, "chunks": {"time": 7, "lat": 2, "lon": 5}}
        assert run_cache(tmp_path, cfg, command="verify", env={"ZP_PARALLEL_SCAN": scan}).returncode == 0
    refs = subprocess.run([str(BIN), "refs", str(pattern), "-o", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=120)
    assert refs.returncode == 4, refs.stderr
    assert "variable 't2m': the files lay out its chunks differently (" in refs.stderr, refs.stderr
    assert "c200002.nc: chunks [5,4,5], codecs none; the first file: chunks [8,4,5], codecs shuffle+zlib" in refs.stderr
    assert not (tmp_path / "r.json").exists()


def test_chunking_that_changes_across_the_join_is_refused_naming_the_dimension(tmp_path):
    """Chunks that change along another dimension than the join cannot form one chunk grid:
    exit 4 naming the file, the variable and the dimension."""
    files = chunked_months(tmp_path / "src")
    nccopy(files[3], "-c", "time/8,lat/2,lon/5")
    _, proc = cache_files(tmp_path, tmp_path / "src" / "c*.nc", "x.zarr", check=4)
    assert "c200004.nc, variable 't2m': chunk shape along 'lat' (2) differs from the first file's (4)" in proc.stderr, proc.stderr
    assert not (tmp_path / "x.zarr").exists()


def test_plan_of_unequal_months_reads_each_source_chunk_once(tmp_path):
    """`plan --json` for months of 31, 29, 31, 30 contiguous days into 10-day chunks: every
    source chunk is read, none twice (read amplification 1 with the memory to spare), and the
    jobs cover the 121 days."""
    xarray_months(tmp_path / "src", encoding={"units": "hours since 1990-01-01", "dtype": "i4"})
    cfg = {"data_uri": str(tmp_path / "src" / "m*.nc"), "cache_store": str(tmp_path / "p.zarr"),
           "recommend_changes": False, "concat_dim": "time", "chunks": {"time": 10, "lat": 4, "lon": 5}}
    proc = run_cache(tmp_path, cfg, "--json", command="plan", check=0)
    plan = json.loads(proc.stdout)
    t2m = next(a for a in plan["arrays"] if a["name"] == "t2m")
    assert t2m["source"]["edges"][0] == [0, 31, 60, 91, 121]
    assert t2m["source"]["chunk_shape"] == [31, 4, 5]
    assert [r["chunk_shape"][0] for r in t2m["source"]["layout_runs"]] == [31, 29, 31, 30]
    jobs = [j for j in plan["jobs"] if j["array"] == plan["arrays"].index(t2m)]
    read = sorted(c for j in jobs for start, n in j["source_chunks"] for c in range(start, start + n))
    assert read == [0, 1, 2, 3]
    assert abs(plan["summary"]["read_amplification"] - 1.0) < 1e-9
    covered = sorted((j["region"]["lo"][0], j["region"]["hi"][0]) for j in jobs)
    assert covered[0][0] == 0 and covered[-1][1] == 13  # 13 ten-day output chunks
    assert plan["summary"]["peak_memory_per_worker"] > 0


def cdo(*args):
    subprocess.run(["cdo", "-s", "-f", "nc", *args], check=True, capture_output=True, timeout=120)


@pytest.mark.skipif(shutil.which("cdo") is None, reason="needs CDO")
@pytest.mark.parametrize("calendar", ["standard", "365_day"])
def test_months_since_are_kept_as_numbers_as_xarray_keeps_them(tmp_path, calendar):
    """Item 4: CDO's `settunits,months` + `settaxis ...,1mon`: 'months since' outside the 360_day
    calendar is no CF time xarray can decode; its numbers are kept as they are, and joined as
    xarray joins them undecoded (decode_times=False), with a note in the plan."""
    folder = tmp_path / "src"
    folder.mkdir()
    for y in (2000, 2001):
        cdo("-settunits,months", f"-settaxis,{y}-01-15,12:00:00,1mon", f"-setcalendar,{calendar}",
            "-duplicate,12", "-const,1.5,r4x3", str(folder / f"mon{y}.nc"))
    files = sorted(folder.glob("mon*.nc"))
    with netCDF4.Dataset(files[1]) as nc:
        assert nc["time"].units.startswith("months since 2001-1-15")
    store = tmp_path / "m.zarr"
    cfg = {"data_uri": str(folder / "mon*.nc"), "cache_store": str(store), "deploy_mode": "series",
           "recommend_changes": False}
    proc = run_cache(tmp_path, cfg, check=0)
    want = xarray_join(files, decode_times=False)
    got = xr.open_zarr(store, decode_times=False).load()
    for name in want.variables:
        assert same_bits(got[name].values, want[name].values), name
        assert got[name].attrs == want[name].attrs, name
    plan = json.loads(run_cache(tmp_path, cfg, "--json", command="plan", check=0).stdout)
    assert any(n["key"] == "time" and "kept as the numbers the source holds" in n["message"] for n in plan["notes"]), plan["notes"]
    del proc


def test_coordinate_only_files_are_cached_as_xarray_opens_them(tmp_path):
    """Item 5: a file of coordinates alone (a grid description, as xarray's to_netcdf writes a
    Dataset of coords): xarray opens it; its coordinates are cached, joined too."""
    folder = tmp_path / "src"
    folder.mkdir()
    for k, (y, m) in enumerate(MONTHS[:2]):
        xr.Dataset(coords={"time": days_of(y, m), "lat": ("lat", np.arange(4.0), {"units": "degrees_north"})}
                   ).to_netcdf(folder / f"g{k}.nc", encoding={"time": {"units": "days since 2000-01-01"}})
    files = sorted(folder.glob("g*.nc"))
    store = tmp_path / "one.zarr"
    run_cache(tmp_path, {"data_uri": str(files[0]), "cache_store": str(store), "deploy_mode": "series",
                         "recommend_changes": False}, check=0)
    want = xr.open_dataset(files[0]).load()
    got = xr.open_zarr(store).load()
    assert set(got.variables) == set(want.variables) == {"time", "lat"} and not got.data_vars
    for name in want.variables:
        assert np.array_equal(got[name].values, want[name].values) and got[name].attrs == want[name].attrs
    joined = tmp_path / "two.zarr"
    run_cache(tmp_path, {"data_uri": str(folder / "g*.nc"), "cache_store": str(joined), "deploy_mode": "series",
                         "recommend_changes": False, "concat_dim": "time"}, check=0)
    assert np.array_equal(xr.open_zarr(joined).time.values, xarray_join(files).time.values)


def test_a_zarr_root_of_groups_lists_them_and_refs_takes_a_group(tmp_path):
    """Item 5: a Zarr store whose root holds only groups (xarray to_zarr(group=...)) is listed as
    a NetCDF root of groups is: `inspect` names them, `cache` without `group:` says which to
    set, with it the group is cached as xarray opens it. `refs --group` writes one group."""
    zstore = tmp_path / "groups.zarr"
    for k, g in enumerate(("atmos", "ocean")):
        xr.Dataset({"v": (("time", "x"), np.arange(12.0).reshape(3, 4) + k)},
                   coords={"time": np.arange(3), "x": np.arange(4)}).to_zarr(zstore, group=g, consolidated=False)
    inspect = subprocess.run([str(BIN), "inspect", str(zstore)], capture_output=True, text=True, timeout=60)
    assert inspect.returncode == 0, inspect.stderr
    assert "atmos" in inspect.stdout and "ocean" in inspect.stdout
    cfg = {"data_uri": str(zstore), "cache_store": str(tmp_path / "c.zarr"), "deploy_mode": "series",
           "recommend_changes": False}
    proc = run_cache(tmp_path, cfg, check=4)
    assert "its groups: atmos, ocean (set group:)" in proc.stderr, proc.stderr
    run_cache(tmp_path, {**cfg, "group": "ocean"}, check=0)
    want = xr.open_zarr(zstore, group="ocean").load()
    assert np.array_equal(xr.open_zarr(tmp_path / "c.zarr").v.values, want.v.values)
    # refs --group on a NetCDF-4 file with groups
    nc_path = tmp_path / "g.nc"
    with netCDF4.Dataset(nc_path, "w") as nc:
        grp = nc.createGroup("obs")
        grp.createDimension("n", 5)
        grp.createVariable("n", "i4", ("n",))[:] = np.arange(5)
        grp.createVariable("t", "f4", ("n",))[:] = np.linspace(0, 1, 5)
    out = tmp_path / "r.json"
    refs = subprocess.run([str(BIN), "refs", str(nc_path), "--group", "obs", "-o", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert refs.returncode == 0, refs.stderr
    got = xr.open_dataset("reference://", engine="zarr", backend_kwargs={
        "consolidated": False, "storage_options": {"fo": json.loads(out.read_text())}}).load()
    assert np.array_equal(got.t.values, xr.open_dataset(nc_path, group="obs").t.values)


def test_a_year_of_xarray_months_scanned_in_parallel_and_from_the_manifest_cache(tmp_path):
    """Items 1 and 3 together, as plain xarray writes a year of months (fixed `time` in days
    since each file's own first day, contiguous variables): scanned by child processes that each
    join a run of months (their per-file layouts travel in the joined description), and again
    from the manifest cache; identical to open_mfdataset each time."""
    folder = tmp_path / "src"
    folder.mkdir()
    for m in range(1, 13):
        times = days_of(2001, m)
        xr.Dataset({"t2m": (("time", "lat", "lon"), grid_values(times, m), {"units": "K"})},
                   coords={"time": times, "lat": np.arange(4.0), "lon": np.arange(5.0)}
                   ).to_netcdf(folder / f"y2001{m:02d}.nc")
    files = sorted(folder.glob("y*.nc"))
    cache_dir = tmp_path / "manifests"
    for i, scan in enumerate(("1", "1", "0")):
        store = tmp_path / f"y{i}.zarr"
        cfg = {"data_uri": str(folder / "y*.nc"), "cache_store": str(store), "deploy_mode": "local",
               "simultaneous_worker_limit": 2, "concat_dim": "time", "recommend_changes": False,
               "chunks": {"time": 30, "lat": 4, "lon": 5}}
        run_cache(tmp_path, cfg, env={"ZP_PARALLEL_SCAN": scan, "ZP_CACHE_DIR": str(cache_dir)}, check=0)
        got = assert_like_xarray(store, files, raw_names=["t2m", "lat", "lon"])
        assert got.sizes["time"] == 365


def time_files(folder, specs, dtype="f8"):
    """One netCDF4-python file per (units, values): a fixed `time` of its own units and `v`."""
    folder.mkdir()
    for k, (units, values) in enumerate(specs):
        with netCDF4.Dataset(folder / f"t{k}.nc", "w") as nc:
            nc.createDimension("time", len(values))
            t = nc.createVariable("time", dtype, ("time",))
            t.units = units
            t[:] = values
            nc.createVariable("v", "f4", ("time",))[:] = np.arange(len(values)) + 10.0 * k
    return sorted(folder.glob("t*.nc"))


def test_float32_times_that_the_first_files_units_cannot_hold_are_refused(tmp_path):
    """float32 seconds since each file's own start, the first file counting from 1970: in the
    first file's units float32 holds 64-second steps, so 00:00:01, :02 and :03 of the second day
    would all read 00:00:00 (xarray decodes each file's own numbers exactly). Refused naming the
    value; before: exit 0 and three equal times."""
    start = 946684800  # 2000-01-01, a float32 value
    files = time_files(tmp_path / "src", [("seconds since 1970-01-01", [start, start + 64, start + 128]),
                                          ("seconds since 2000-01-02", [1, 2, 3])], dtype="f4")
    want = xarray_join(files).time.values
    assert len(set(want)) == 6
    _, proc = cache_files(tmp_path, tmp_path / "src" / "t*.nc", "f.zarr", check=4, chunks={"time": 6})
    assert "t1.nc, variable 'time': value 1.000000 seconds since 2000-01-02 has no exact float32 value in seconds since 1970-01-01" in proc.stderr, proc.stderr
    assert not (tmp_path / "f.zarr").exists()
    # float32 hours since each file's own day hold the half hours exactly in the first file's units
    files = time_files(tmp_path / "ok", [(f"hours since 2000-01-0{d + 1}", [0.5, 1.5, 2.5]) for d in range(3)], dtype="f4")
    store, _ = cache_files(tmp_path, tmp_path / "ok" / "t*.nc", "h.zarr", chunks={"time": 9})
    assert np.array_equal(xr.open_zarr(store).time.values, xarray_join(files).time.values)


def test_a_file_whose_time_units_xarray_cannot_decode_after_one_it_can_is_refused(tmp_path):
    """'days since' in the first file, 'months since' (no time outside 360_day) in the next: its
    numbers 0, 1, 2 kept as they are would read as the first file's 1-3 January again. xarray's
    open_mfdataset cannot decode the second file either; refused naming it (before: exit 0 and
    the April file's data dated in January)."""
    files = time_files(tmp_path / "src", [("days since 2000-01-01", [0, 1, 2]), ("months since 2000-04-01", [0, 1, 2])])
    with pytest.raises(ValueError, match="unable to decode time units 'months since 2000-04-01'"):
        xarray_join(files)
    _, proc = cache_files(tmp_path, tmp_path / "src" / "t*.nc", "m.zarr", check=4, chunks={"time": 6})
    assert "t1.nc, variable 'time': units 'months since 2000-04-01' are no time xarray decodes, while the first file's 'days since 2000-01-01' are" in proc.stderr, proc.stderr
    assert not (tmp_path / "m.zarr").exists()


def test_files_that_disagree_on_unsigned_are_refused(tmp_path):
    """_Unsigned = "true" on the first file's byte flags only (as `ncatted` set it on part of an
    archive): xarray reads each file with its own signedness (uint8 255, 156, then int8 -1,
    -100, joined as int16). The join holds one: refused naming the file (before: exit 0 and the
    second file read as unsigned, 255 and 156 where xarray reads -1 and -100)."""
    folder = tmp_path / "src"
    folder.mkdir()
    for k, unsigned in enumerate(["true", None]):
        with netCDF4.Dataset(folder / f"u{k}.nc", "w") as nc:
            nc.createDimension("time", 3)
            t = nc.createVariable("time", "i4", ("time",))
            t.units = "days since 2000-01-01"
            t[:] = np.arange(3) + 3 * k
            q = nc.createVariable("q", "i1", ("time",))
            q.set_auto_maskandscale(False)
            if unsigned:
                q._Unsigned = unsigned
            q[:] = np.array([-1, 5, -100], "i1")
    files = sorted(folder.glob("u*.nc"))
    want = xarray_join(files).q
    assert want.dtype == np.int16 and list(want.values) == [255, 5, 156, -1, 5, -100]
    _, proc = cache_files(tmp_path, folder / "u*.nc", "u.zarr", check=4, chunks={"time": 6})
    assert "u1.nc, variable 'q': _Unsigned none differs from the first file's \"true\"; files are joined with one signedness" in proc.stderr, proc.stderr
    assert not (tmp_path / "u.zarr").exists()


def test_packed_times_counted_from_each_files_own_start_are_refused(tmp_path):
    """A packed time (int16 days * 0.25 since the file's own first day): converting the stored
    numbers to the first file's units as if unpacked shifted the second day by a quarter day
    (xarray reads 2000-01-02T00, we wrote 01-01T06 with exit 0). Refused naming the file."""
    folder = tmp_path / "src"
    folder.mkdir()
    for k in range(3):
        with netCDF4.Dataset(folder / f"p{k}.nc", "w") as nc:
            nc.createDimension("time", 3)
            t = nc.createVariable("time", "i2", ("time",))
            t.set_auto_maskandscale(False)
            t.units, t.scale_factor = f"days since 2000-01-0{k + 1}", 0.25
            t[:] = [0, 1, 2]
            nc.createVariable("v", "f4", ("time",))[:] = np.arange(3.0)
    want = xarray_join(sorted(folder.glob("p*.nc"))).time.values
    assert str(want[3]) == "2000-01-02T00:00:00.000000000"
    _, proc = cache_files(tmp_path, folder / "p*.nc", "p.zarr", check=4, chunks={"time": 9})
    assert "p1.nc, variable 'time': units 'days since 2000-01-02' differ from the first file's 'days since 2000-01-01' and the times are packed" in proc.stderr, proc.stderr
    assert not (tmp_path / "p.zarr").exists()


def test_a_manifest_cache_entry_that_drops_a_files_codecs_is_refused(tmp_path):
    """The manifest cache is untrusted: an entry (its checksum recomputed) whose first layout run
    says its zlib chunks are uncompressed had their compressed bytes padded and written as data
    with exit 0; then the chunk reader refused it (an uncompressed chunk must hold exactly its
    cells); now the entry itself is refused (HMAC with the user's key)."""
    files = chunked_months(tmp_path / "src")
    nccopy(files[1], "-c", "time/5,lat/4,lon/5", "-d", "0")
    env = {"ZP_CACHE_DIR": str(tmp_path / "manifests"), "ZP_PARALLEL_SCAN": "0", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    store, _ = cache_files(tmp_path, tmp_path / "src" / "c*.nc", "a.zarr", env=env)
    entry = next((tmp_path / "manifests").rglob("join-*.json"))
    head, body = entry.read_bytes().split(b"\n", 1)
    described = json.loads(body)
    t2m = next(v for v in described["variables"] if v["name"] == "t2m")
    assert t2m["layout_runs"][0]["codecs"]
    t2m["layout_runs"][0]["codecs"] = []
    body = json.dumps(described, separators=(",", ":")).encode() + b"\n"
    head = json.loads(head)
    head["sha256"] = hashlib.sha256(body).hexdigest()
    entry.write_bytes(json.dumps(head, separators=(",", ":")).encode() + b"\n" + body)
    # Entries are signed with the user's own key now (session 16): one whose checksum was merely
    # recomputed is ignored, the files are scanned again, and the store is the right one.
    other, _ = cache_files(tmp_path, tmp_path / "src" / "c*.nc", "b.zarr", check=0, env=env)
    assert xr.open_zarr(other).load().identical(xr.open_zarr(store).load())
    # Signed with the user's key itself (a stolen key, or a bug of our own that wrote it): the chunk
    # reader still refuses the padded bytes, naming the chunk, and completes nothing.
    import hmac
    key = (tmp_path / "xdg" / "zarr-parallel" / "manifest-key").read_bytes()
    size = f"{entry.name}\nbytes {len(body)}".encode()
    head = {"zp_entry": head["zp_entry"], "scanner": head["scanner"],  # the head as the tool writes it
            "bytes": len(body), "size_hmac": hmac.new(key, size, hashlib.sha256).hexdigest(),
            "hmac": hmac.new(key, entry.name.encode() + b"\n" + body, hashlib.sha256).hexdigest()}
    entry.write_bytes(json.dumps(head, separators=(",", ":")).encode() + b"\n" + body)
    _, proc = cache_files(tmp_path, tmp_path / "src" / "c*.nc", "c.zarr", check=4, env=env)
    assert "c200001.nc, variable 't2m', chunk (" in proc.stderr and "uncompressed chunk of" in proc.stderr, proc.stderr
    assert not (tmp_path / "c.zarr" / ".zarr-parallel" / "complete.json").exists()

"""Caches the fixtures (made by netCDF4-python and kerchunk) and data made by our own generator,
then compares what xarray reads from the store with xarray's reading of the source."""
import glob
import json
import subprocess

import netCDF4
import numpy as np
import xarray as xr

from conftest import (ERA5, FIXTURES, SAMPLE_BIN, assert_matches, need_fixtures, open_kerchunk,
                      open_netcdf, run_cache)

BOX = dict(time=slice("2000-01-02 00:00", "2000-01-03 23:00"), latitude=slice(60, -30), longitude=slice(40, 100))


def test_kerchunk_multifile_sel_descending_latitude_source_encoding(tmp_path):
    need_fixtures()
    store = tmp_path / "k.zarr"
    cfg = {"data_uri": str(ERA5 / "refs.json"),
           "preprocessors": [{"type": "sel", "time": ["2000-01-02 00:00", "2000-01-03 23:00"],
                              "latitude": [60, -30], "longitude": [40, 100]}],
           "chunks": {"time": 24, "latitude": 19, "longitude": 36},
           "add_attrs": {"preprocessor_hash": "abc123"},
           "cache_store": str(store), "simultaneous_worker_limit": 2}
    run_cache(tmp_path, cfg, "--yes", check=0)
    expected = open_kerchunk(ERA5 / "refs.json").sel(**BOX)
    raw = open_kerchunk(ERA5 / "refs.json", mask_and_scale=False, decode_times=False)
    raw = raw.isel(time=slice(24, 72), latitude=slice(12, 49), longitude=slice(16, 41))
    got = assert_matches(store, expected, raw, extra_attrs={"preprocessor_hash": "abc123"})
    assert got.d2m.encoding["chunks"] == (24, 19, 25)
    assert int(np.isnan(got.d2m.values).sum()) > 0  # the fixture's missing values survive as NaN


def test_netcdf_glob_reverse_rename_decoded_series(tmp_path):
    need_fixtures()
    store = tmp_path / "n.zarr"
    cfg = {"data_uri": str(ERA5 / "era5_small_*.nc"), "engine": "netcdf",
           "preprocessors": [{"type": "subset", "latitude": [-30, 60], "longitude": [100, 40]},
                             {"type": "reverse_axis", "dim": "latitude"},
                             {"type": "rename", "var_id": "latitude", "new_name": "lat"}],
           "variables": {"d2m": [], "t2m": [{"type": "rename", "new_name": "air_temperature"}]},
           "chunks": {"time": 48, "lat": 10, "longitude": 25},
           "encoding": "decoded", "deploy_mode": "series", "recommend_changes": False,
           "cache_store": str(store)}
    run_cache(tmp_path, cfg, check=0)
    expected = open_netcdf(ERA5 / "era5_small_*.nc").sel(latitude=slice(60, -30), longitude=slice(40, 100))
    expected = expected.isel(latitude=slice(None, None, -1))
    got = assert_matches(store, expected, renames={"latitude": "lat", "t2m": "air_temperature"})
    assert got.d2m.dtype == np.float32 and "scale_factor" not in got.d2m.encoding
    assert got.lat.values[0] < got.lat.values[-1]


def test_kerchunk_single_file_auto_chunks_all_variables(tmp_path):
    need_fixtures()
    store = tmp_path / "s.zarr"
    cfg = {"data_uri": str(ERA5 / "single_20000101.json"), "chunks": "auto", "cache_store": str(store),
           "deploy_mode": "series"}
    run_cache(tmp_path, cfg, check=0)
    expected = open_kerchunk(ERA5 / "single_20000101.json")
    raw = open_kerchunk(ERA5 / "single_20000101.json", mask_and_scale=False, decode_times=False)
    got = assert_matches(store, expected, raw)
    # The source chunks (24, 19, 36) and (12, 73, 72) are 32 and 126 kB: auto keeps the source chunks but
    # grows those under 64 kB by whole source chunks, first dimension first (time is whole already).
    assert got.d2m.encoding["chunks"] == (24, 73, 36)
    assert got.t2m.encoding["chunks"] == (12, 73, 72)


def test_auto_chunks_are_the_source_chunks_of_an_era5_like_archive(tmp_path):
    """The original's series.py: chunks='auto' on ERA5 (int16 chunks (24, 91, 180), 786 kB) and a subset, then
    asserts a second time chunk (d2m/1.0.0). Auto means the source chunks: an output chunk never spans two
    source chunks along time."""
    src = tmp_path / "src"
    subprocess.run([str(SAMPLE_BIN), "--out", str(src), "--files", "3", "--lat", "181", "--lon", "360",
                    "--chunks", "24", "91", "180", "--deflate", "1"], check=True, capture_output=True)
    store = tmp_path / "s.zarr"
    cfg = {"data_uri": str(src / "*.nc"), "chunks": "auto", "cache_store": str(store), "deploy_mode": "series",
           "recommend_changes": False,
           "preprocessors": [{"type": "subset", "time": ["2000-01-01 00:00", "2000-01-03 23:00"], "latitude": [60, -30],
                              "longitude": [40, 100]}]}
    run_cache(tmp_path, cfg, check=0)
    got = xr.open_zarr(store)
    assert (store / "d2m" / "1.0.0").is_file()
    assert got.d2m.encoding["chunks"] == (24, 91, 61) and got.t2m.encoding["chunks"] == (24, 91, 61)
    want = xr.open_mfdataset(sorted(src.glob("*.nc")), combine="nested", concat_dim="time").sel(
        time=slice("2000-01-01", "2000-01-03"), latitude=slice(60, -30), longitude=slice(40, 100))
    assert np.array_equal(got.d2m.values, want.d2m.values, equal_nan=True)


def test_netcdf3_records_with_auto_chunks_are_not_a_file_per_record(tmp_path):
    """A netCDF-3 record is one source chunk: auto chunks group records (about 4 MB a chunk)."""
    src = tmp_path / "src"
    subprocess.run([str(SAMPLE_BIN), "--out", str(src), "--files", "1", "--lat", "19", "--lon", "36",
                    "--classic"], check=True, capture_output=True)
    nc = next(src.glob("*.nc"))
    store = tmp_path / "c3.zarr"
    run_cache(tmp_path, {"data_uri": str(nc), "cache_store": str(store), "deploy_mode": "series"}, check=0)
    got = xr.open_zarr(store)
    name = next(v for v in got.data_vars if got[v].ndim == 3)
    assert got[name].encoding["chunks"][0] == got.sizes["time"] > 1  # not (1, 19, 36)
    expected = xr.open_dataset(nc)
    assert np.array_equal(got[name].values, expected[name].values, equal_nan=True)
    # Tiny chunks asked for explicitly: the plan says so.
    plan = json.loads(run_cache(tmp_path, {"data_uri": str(nc), "cache_store": str(tmp_path / "t.zarr"),
                                           "chunks": {"time": 1, "latitude": 2, "longitude": 2}},
                                "--json", command="plan", check=0).stdout)
    assert any("chunks of 1-16 MB" in r["message"] for r in plan["recommendations"]), plan["recommendations"]


def test_classic_netcdf3_noleap_time_selection(tmp_path):
    need_fixtures()
    src = FIXTURES / "classic" / "tp_classic.nc"
    store = tmp_path / "c.zarr"
    cfg = {"data_uri": str(src),
           "preprocessors": [{"type": "sel", "time": ["2001-02-28", "2001-02-01"], "lat": [30, -30]}],
           "chunks": {"time": 7, "lat": 12, "lon": 72}, "cache_store": str(store),
           "recommend_changes": False, "encoding": "decoded"}
    run_cache(tmp_path, cfg, check=0)
    ds = xr.open_dataset(src).load()
    expected = ds.sel(time=slice("2001-02-01", "2001-02-28"), lat=slice(-30, 30))
    got = assert_matches(store, expected)
    assert got.sizes["time"] == 28  # noleap: February has 28 days, and the end label covers its day


def test_own_sample_local_workers_isel(tmp_path):
    files = tmp_path / "src"
    subprocess.run([str(SAMPLE_BIN), "--out", str(files), "--files", "3", "--lat", "41", "--lon", "80",
                    "--chunks", "24", "10", "16"], check=True, capture_output=True)
    store = tmp_path / "o.zarr"
    cfg = {"data_uri": str(files / "*.nc"),
           "preprocessors": [{"type": "isel", "time": [10, 60]}],
           "chunks": {"time": 48, "latitude": 20, "longitude": 40}, "cache_store": str(store),
           "num_jobs": 6, "simultaneous_worker_limit": 3, "recommend_changes": False}
    run_cache(tmp_path, cfg, check=0)
    expected = open_netcdf(files / "*.nc").isel(time=slice(10, 60))
    raw = open_netcdf(files / "*.nc", mask_and_scale=False, decode_times=False).isel(time=slice(10, 60))
    assert_matches(store, expected, raw)


def test_hdf5_layouts_fletcher32_contiguous_bigendian(tmp_path):
    """Storage layouts the ERA5 fixtures do not have, written by netCDF4-python."""
    path = tmp_path / "layouts.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("y", 30)
        nc.createDimension("x", 20)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "days since 2001-01-01"
        t.calendar = "360_day"
        rng = np.random.default_rng(1)
        a = nc.createVariable("checked", "f4", ("time", "y", "x"), zlib=True, fletcher32=True, chunksizes=(4, 7, 20))
        b = nc.createVariable("flat", "i4", ("y", "x"), contiguous=True)
        c = nc.createVariable("big", "i2", ("time", "y", "x"), endian="big", chunksizes=(5, 30, 20))
        t[:] = np.arange(10)
        a[:] = rng.normal(size=(10, 30, 20)).astype("f4")
        b[:] = rng.integers(-1000, 1000, size=(30, 20))
        c[:] = rng.integers(-3000, 3000, size=(10, 30, 20))
    store = tmp_path / "l.zarr"
    cfg = {"data_uri": str(path), "chunks": {"time": 3, "y": 30, "x": 20}, "cache_store": str(store),
           "recommend_changes": False, "preprocessors": [{"type": "sel", "time": ["2001-01-02", "2001-01-09"]}]}
    run_cache(tmp_path, cfg, check=0)
    expected = xr.open_dataset(path).load().sel(time=slice("2001-01-02", "2001-01-09"))
    raw = xr.open_dataset(path, mask_and_scale=False, decode_times=False).load().isel(time=slice(1, 9))
    assert_matches(store, expected, raw)


def test_zarr_store_as_source(tmp_path):
    need_fixtures()
    first = tmp_path / "first.zarr"
    run_cache(tmp_path, {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(first), "deploy_mode": "series"},
              check=0)
    second = tmp_path / "second.zarr"
    run_cache(tmp_path, {"data_uri": str(first), "cache_store": str(second), "deploy_mode": "series",
                         "chunks": {"time": 96, "latitude": 73, "longitude": 144}}, check=0)
    expected = xr.open_zarr(first).load()
    assert_matches(second, expected)


def test_every_compressor_is_readable_by_zarr_python(tmp_path):
    need_fixtures()
    import zarr
    expected = open_kerchunk(ERA5 / "single_20000101.json")[["t2m"]]
    for comp in [{"id": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 2}, {"id": "zlib", "level": 5},
                 {"id": "gzip", "level": 1}, {"id": "zstd", "level": 3}, {"id": "lz4", "acceleration": 1}, None]:
        store = tmp_path / f"c_{comp['id'] if comp else 'none'}.zarr"
        cfg = {"data_uri": str(ERA5 / "single_20000101.json"), "variables": ["t2m"], "cache_store": str(store),
               "compressor": comp, "deploy_mode": "series"}
        run_cache(tmp_path, cfg, check=0)
        assert_matches(store, expected)
        arr = zarr.open_consolidated(str(store))["t2m"]
        assert (arr.compressor is None) == (comp is None)
        if comp:
            assert arr.compressor.codec_id == comp["id"]


def test_generate_stats_reports_what_was_read(tmp_path):
    need_fixtures()
    import json
    store = tmp_path / "stats.zarr"
    cfg = {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(store), "generate_stats": True,
           "chunks": {"time": 48, "latitude": 73, "longitude": 72}, "memory_limit": "500MB"}
    run_cache(tmp_path, cfg, check=0)
    stats = json.loads((store / ".zarr-parallel" / "stats.json").read_text())
    assert stats["read_amplification"] == 1.0  # bytes the workers read == bytes of the chunks needed
    assert stats["bytes_read"] == stats["bytes_needed"] > 0
    assert 0 < stats["peak_rss_per_worker"] <= 500_000_000
    assert len(stats["per_job"]) == stats["jobs"] and stats["wall_seconds"] > 0

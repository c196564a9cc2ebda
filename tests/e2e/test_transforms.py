"""Transforms beyond a slice, against xarray's own computation: roll (integer shifts, and shifts:
auto turning 0..360 longitudes into -180..180, then a sel across the old seam). Sources are made by
netCDF4-python and the shared ERA5-like fixtures (NetCDF files and a kerchunk reference set)."""
import json

import netCDF4
import numpy as np
import pytest
import xarray as xr

from conftest import ERA5, assert_matches, need_fixtures, open_kerchunk, open_netcdf, run_cache


def grid_file(path, nlon=40, lon0=0.0):
    """Two steps on a 9 x nlon global grid, longitudes lon0 .. lon0+360, chunks that a roll cuts."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", None)
        ds.createDimension("lat", 9)
        ds.createDimension("lon", nlon)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "days since 2000-01-01"
        t[:] = [0, 1]
        lat = ds.createVariable("lat", "f4", ("lat",))
        lat[:] = np.linspace(-80, 80, 9)
        lat.units = "degrees_north"
        lon = ds.createVariable("lon", "f4", ("lon",))
        lon[:] = lon0 + np.arange(nlon) * (360.0 / nlon)
        lon.units, lon.standard_name = "degrees_east", "longitude"
        v = ds.createVariable("tas", "i2", ("time", "lat", "lon"), chunksizes=(1, 4, 7), zlib=True,
                              fill_value=np.int16(-999))
        v.scale_factor, v.add_offset, v.units = 0.01, 273.15, "K"
        v[:] = np.random.default_rng(3).uniform(-40, 40, (2, 9, nlon))
        v[0, 0, 0] = np.ma.masked
    return path


def cache(tmp_path, source, name, preprocessors, **extra):
    store = tmp_path / name
    cfg = {"data_uri": str(source), "cache_store": str(store), "deploy_mode": "series",
           "recommend_changes": False, "preprocessors": preprocessors}
    cfg.update(extra)
    proc = run_cache(tmp_path, cfg, check=0)
    return store, cfg, proc


@pytest.mark.parametrize("shift", [3, -11, 47, 0])
@pytest.mark.parametrize("mode", ["series", "local"])
def test_integer_roll_equals_xarray(tmp_path, shift, mode):
    src = grid_file(tmp_path / "g.nc")
    store, cfg, _ = cache(tmp_path, src, "r.zarr", [{"type": "roll", "dim": "lon", "shifts": shift}],
                          deploy_mode=mode, simultaneous_worker_limit=2, chunks={"time": 1, "lat": 9, "lon": 10})
    ds = xr.open_dataset(src)
    assert_matches(store, ds.roll(lon=shift, roll_coords=True).load(),
                   raw_expected=xr.open_dataset(src, mask_and_scale=False, decode_times=False).roll(
                       lon=shift, roll_coords=True).load())
    verify = run_cache(tmp_path, cfg, command="verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_roll_auto_then_a_box_across_the_seam(tmp_path):
    """`shifts: auto` (and null, as the original's examples write it) is
    assign_coords(lon=((lon + 180) % 360) - 180).sortby(lon), attributes kept."""
    src = grid_file(tmp_path / "g.nc")
    ds = xr.open_dataset(src)
    with xr.set_options(keep_attrs=True):
        want = ds.assign_coords(lon=((ds.lon + 180) % 360) - 180).sortby("lon")
    for shifts, box in (("auto", None), (None, [-40, 60])):
        pre = [{"type": "roll", "dim": "lon", "shifts": shifts}]
        expected = want
        if box:
            pre.append({"type": "sel", "lon": box, "lat": [-60, 60]})
            expected = want.sel(lon=slice(*box), lat=slice(-60, 60))
        store, cfg, _ = cache(tmp_path, src, f"auto_{shifts}.zarr", pre, chunks={"lon": 8})
        assert_matches(store, expected.load())
        assert xr.open_zarr(store).lon.dtype == np.float32
        assert run_cache(tmp_path, cfg, command="verify").returncode == 0


def test_roll_auto_on_era5_netcdf_and_kerchunk_sources(tmp_path):
    need_fixtures()
    pre = [{"type": "roll", "dim": "longitude", "shifts": None},
           {"type": "sel", "longitude": [-40, 60], "latitude": [70, 30]}]
    for source, expected in ((str(ERA5 / "era5_small_*.nc"), open_netcdf(ERA5 / "era5_small_*.nc")),
                             (str(ERA5 / "refs.json"), open_kerchunk(ERA5 / "refs.json"))):
        with xr.set_options(keep_attrs=True):
            want = expected.assign_coords(longitude=((expected.longitude + 180) % 360) - 180)
        want = want.sortby("longitude").sel(longitude=slice(-40, 60), latitude=slice(70, 30))
        engine = "netcdf" if source.endswith(".nc") else "kerchunk"
        store, cfg, proc = cache(tmp_path, source, f"era5_{engine}.zarr", pre, engine=engine,
                                 chunks={"time": 24, "latitude": 19, "longitude": 36})
        assert_matches(store, want)
        plan = run_cache(tmp_path, cfg, "--json", command="plan")
        assert json.loads(plan.stdout)["summary"]["read_amplification"] <= 1.05


def test_a_roll_that_cuts_a_source_chunk_reads_it_at_most_twice_and_says_so(tmp_path):
    src = grid_file(tmp_path / "g.nc")
    _, cfg, _ = cache(tmp_path, src, "p.zarr", [{"type": "roll", "dim": "lon", "shifts": 3}],
                      chunks={"time": 1, "lat": 9, "lon": 40})
    plan = json.loads(run_cache(tmp_path, cfg, "--json", command="plan").stdout)
    # One output chunk along lon: the seam chunk is read once.
    assert plan["summary"]["read_amplification"] == 1.0
    _, cfg, _ = cache(tmp_path, src, "p2.zarr", [{"type": "roll", "dim": "lon", "shifts": 3}],
                      chunks={"time": 1, "lat": 9, "lon": 10})
    plan = json.loads(run_cache(tmp_path, cfg, "--json", command="plan").stdout)
    # The seam chunk (source 35..39) is read for output 0..2 and again for output 35..39: once
    # more per time step and lat chunk, which the plan counts (6 of 36 chunks twice: 1.16).
    assert 1.0 < plan["summary"]["read_amplification"] < 1.3


@pytest.mark.parametrize("pre, message", [
    ([{"type": "roll", "dim": "lon", "shifts": "auto"}], "already runs from -180"),
    ([{"type": "sel", "lon": [0, 90]}, {"type": "roll", "dim": "lon", "shifts": "auto"}], "periodic"),
    ([{"type": "roll", "dim": "lon", "shifts": 5}, {"type": "sel", "lon": [-40, 60]}], "not monotonic"),
    ([{"type": "roll", "dim": "lon", "shifts": "east"}], "expected an integer"),
    ([{"type": "roll", "dim": "time", "shifts": None}], "numeric (longitude) labels"),
])
def test_roll_refusals_name_the_key(tmp_path, pre, message):
    src = grid_file(tmp_path / "g.nc", lon0=-180.0)
    store = tmp_path / "x.zarr"
    proc = run_cache(tmp_path, {"data_uri": str(src), "cache_store": str(store), "deploy_mode": "series",
                                "preprocessors": pre})
    assert proc.returncode == 2 and message in proc.stderr and "preprocessors[" in proc.stderr, proc.stderr
    assert not store.exists()

"""Transforms beyond a slice, against xarray's own computation: roll (integer shifts, and shifts:
auto turning 0..360 longitudes into -180..180, then a sel across the old seam). Sources are made by
netCDF4-python and the shared ERA5-like fixtures (NetCDF files and a kerchunk reference set)."""
import json

import netCDF4
import numpy as np
import pytest
import xarray as xr

from conftest import (ERA5, assert_matches, need_fixtures, open_kerchunk, open_netcdf, run_cache, store_files,
                      tile_like_the_original)


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


def counts_file(path):
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("x", 6)
        c = ds.createVariable("counts", "i4", ("x",))
        c[:] = [1, -2, 3, 40000, 5, 2**30]
        f = ds.createVariable("ratio", "f8", ("x",))
        f[:] = [0.1, 1 / 3, np.nan, 1e300, -2.5, 7.0]
    return path


@pytest.mark.parametrize("encoding", ["source", "decoded"])
def test_scale_and_astype_equal_numpy_on_decoded_values(tmp_path, encoding):
    """Per-variable steps after CF decoding, in list order, as numpy computes them on xarray's
    decoded arrays (float32 stays float32 under a float scale; int times int stays int)."""
    src = grid_file(tmp_path / "g.nc")
    ds = xr.open_dataset(src)
    variables = {"tas": [{"type": "scale", "multiply": 1.8, "add": -459.67},
                         {"type": "attrs", "units": "degF"}]}
    store, cfg, _ = cache(tmp_path, src, "f.zarr", [], variables=variables, encoding=encoding,
                          deploy_mode="local", simultaneous_worker_limit=2)
    got = xr.open_zarr(store).load()
    want = (ds.tas * 1.8 + (-459.67)).values
    assert got.tas.dtype == np.float32 and np.array_equal(got.tas.values, want, equal_nan=True)
    assert got.tas.attrs["units"] == "degF" and "scale_factor" not in got.tas.attrs
    assert run_cache(tmp_path, cfg, command="verify").returncode == 0
    # astype float64 after the scale, then a second scale in float64.
    variables = {"tas": [{"type": "scale", "multiply": 1.8, "add": -459.67}, {"type": "astype", "dtype": "float64"},
                         {"type": "scale", "multiply": 0.5}]}
    store, _, _ = cache(tmp_path, src, "f64.zarr", [], variables=variables, encoding=encoding)
    want = (ds.tas * 1.8 + (-459.67)).astype("float64") * 0.5
    got = xr.open_zarr(store).load()
    assert got.tas.dtype == np.float64 and np.array_equal(got.tas.values, want.values, equal_nan=True)
    # Integers: int * int stays int32 (numpy wraps); int * float is float64; float64 -> float32.
    src = counts_file(tmp_path / "c.nc")
    ds = xr.open_dataset(src)
    variables = {"counts": [{"type": "scale", "multiply": 3, "add": 1}],
                 "ratio": [{"type": "astype", "dtype": "f4"}, {"type": "scale", "multiply": 2.5}]}
    store, _, _ = cache(tmp_path, src, "c.zarr", [], variables=variables, encoding=encoding)
    got = xr.open_zarr(store).load()
    with np.errstate(over="ignore"):
        want_counts = ds.counts.values * 3 + 1
        want_ratio = ds.ratio.values.astype("f4") * 2.5
    assert got.counts.dtype == np.int32 and np.array_equal(got.counts.values, want_counts)
    assert got.ratio.dtype == np.float32 and np.array_equal(got.ratio.values, want_ratio, equal_nan=True)
    variables = {"counts": [{"type": "scale", "multiply": 0.5}]}
    store, _, _ = cache(tmp_path, src, "c2.zarr", [], variables=variables, encoding=encoding)
    assert np.array_equal(xr.open_zarr(store).counts.values, ds.counts.values * 0.5)


def test_scale_sets_or_drops_units_and_drops_ranges_it_invalidates(tmp_path):
    """K to degF with scale: `units` is the one given, or is dropped (never a silent "K" on degF
    values); valid_range/actual_range no longer hold after the arithmetic. astype on a packed
    variable unpacks it: its ranges are in packed units, so they go too; it keeps units."""
    src = grid_file(tmp_path / "g.nc")
    with netCDF4.Dataset(src, "a") as nc:
        nc["tas"].valid_range = np.array([-4000, 4000], "i2")
        nc["tas"].actual_range = np.array([233.2, 313.1], "f4")
        nc["tas"].long_name = "air temperature"
    ds = xr.open_dataset(src)
    assert ds.tas.attrs["valid_range"].tolist() == [-4000, 4000]
    to_f = {"type": "scale", "multiply": 1.8, "add": -459.67}
    for name, transforms, units in (("given", [dict(to_f, units="degF")], "degF"), ("none", [to_f], None),
                                    ("later_attrs", [to_f, {"type": "attrs", "units": "F"}], "F")):
        store, cfg, _ = cache(tmp_path, src, f"{name}.zarr", [], variables={"tas": transforms})
        got = xr.open_zarr(store)
        assert got.tas.attrs.get("units") == units, (name, got.tas.attrs)
        assert "valid_range" not in got.tas.attrs and "actual_range" not in got.tas.attrs, got.tas.attrs
        assert got.tas.attrs["long_name"] == "air temperature"
        assert np.array_equal(got.tas.values, (ds.tas * 1.8 - 459.67).values, equal_nan=True)
        assert run_cache(tmp_path, cfg, command="verify").returncode == 0
    store, _, _ = cache(tmp_path, src, "astype.zarr", [], variables={"tas": [{"type": "astype", "dtype": "float64"}]})
    got = xr.open_zarr(store)
    assert got.tas.attrs["units"] == "K" and "valid_range" not in got.tas.attrs, got.tas.attrs
    # Without a cast, the source's own attributes stay as xarray shows them.
    store, _, _ = cache(tmp_path, src, "plain.zarr", [])
    assert list(xr.open_zarr(store).tas.attrs["valid_range"]) == [-4000, 4000]
    proc = run_cache(tmp_path, {"data_uri": str(src), "cache_store": str(tmp_path / "bad.zarr"), "deploy_mode": "series",
                                "variables": {"tas": [dict(to_f, units=5)]}})
    assert proc.returncode == 2 and "variables.tas[0].units" in proc.stderr, proc.stderr


def test_astype_to_integer_puts_missing_values_at_the_fill_value(tmp_path):
    """NaN has no integer value: astype to an integer dtype needs a _FillValue of that dtype, and
    missing values are written as it (xarray then masks them again)."""
    src = grid_file(tmp_path / "g.nc")
    ds = xr.open_dataset(src)
    variables = {"tas": [{"type": "scale", "multiply": 100}, {"type": "astype", "dtype": "int16"}]}
    store, _, _ = cache(tmp_path, src, "i.zarr", [], variables=variables)
    raw = xr.open_zarr(store, mask_and_scale=False).load()
    x = (ds.tas * 100).values
    want = np.where(np.isnan(x), -999, np.trunc(np.nan_to_num(x))).astype("int16")
    assert raw.tas.dtype == np.int16 and np.array_equal(raw.tas.values, want)
    assert raw.tas.attrs["_FillValue"] == -999
    decoded = xr.open_zarr(store).load()
    assert np.isnan(decoded.tas.values[0, 0, 0]) and np.isnan(decoded.tas.values).sum() == 1
    src = counts_file(tmp_path / "c.nc")
    proc = run_cache(tmp_path, {"data_uri": str(src), "cache_store": str(tmp_path / "r.zarr"),
                                "deploy_mode": "series",
                                "variables": {"ratio": [{"type": "astype", "dtype": "int16"}]}})
    assert proc.returncode == 2 and "variables.ratio[0]" in proc.stderr and "_FillValue" in proc.stderr, proc.stderr
    for bad, msg in (({"type": "astype", "dtype": "complex64"}, "unknown numeric dtype"),
                     ({"type": "scale", "mul": 2}, "unknown field of scale"),
                     ({"type": "scale", "multiply": "2"}, "expected a number")):
        proc = run_cache(tmp_path, {"data_uri": str(src), "cache_store": str(tmp_path / "r.zarr"),
                                    "deploy_mode": "series", "variables": {"ratio": [bad]}})
        assert proc.returncode == 2 and msg in proc.stderr, proc.stderr


TILE_PRE = [{"type": "reverse_axis", "dim": "latitude"}, {"type": "sel", "latitude": [-60, 60]}]
TILES = {"time": 24, "latitude": 10, "longitude": 36}


@pytest.mark.parametrize("engine", ["netcdf", "kerchunk"])
@pytest.mark.parametrize("encoding", ["decoded", "source"])
def test_tiled_equals_the_originals_xarray_tiling(tmp_path, engine, encoding):
    """reverse_axis + sel + tiled with tile sizes that do (time, longitude) and do not (latitude: 49
    values, tiles of 10) divide the selection; packed int16 under encoding: source pads with the
    _FillValue, which xarray masks back to NaN."""
    need_fixtures()
    source = ERA5 / ("era5_small_*.nc" if engine == "netcdf" else "refs.json")
    src = open_netcdf(source) if engine == "netcdf" else open_kerchunk(source)
    want = tile_like_the_original(src.isel(latitude=slice(None, None, -1)).sel(latitude=slice(-60, 60)), TILES)
    store, cfg, _ = cache(tmp_path, source, "t.zarr", TILE_PRE + [dict(type="tiled", **TILES)], engine=engine,
                          encoding=encoding, deploy_mode="local", simultaneous_worker_limit=2)
    got = xr.open_zarr(store).load()
    assert set(got.coords) == set(want.coords) and set(got.data_vars) == set(want.data_vars)
    for name in want.variables:
        assert got[name].dims == want[name].dims, name
        assert np.array_equal(got[name].values, want[name].values, equal_nan=True), name
    assert got.attrs["tiler_boundary"] == "pad" and got.attrs["tiler_original_sizes"]["latitude"] == 49
    raw = xr.open_zarr(store, mask_and_scale=False)
    if encoding == "source":
        assert raw.d2m.dtype == np.int16 and int(raw.d2m.values[-1, 0, -1, 0]) == raw.d2m.attrs["_FillValue"]
    # One tile a chunk along batch_dim; verify re-reads it all.
    assert json.loads((store / "d2m" / ".zarray").read_text())["chunks"] == [1, 24, 10, 36]
    assert run_cache(tmp_path, cfg, command="verify").returncode == 0


def test_tiled_trim_and_resume_after_a_killed_worker(tmp_path):
    need_fixtures()
    src = open_kerchunk(ERA5 / "refs.json")
    want = tile_like_the_original(src.isel(latitude=slice(None, None, -1)).sel(latitude=slice(-60, 60)),
                                  TILES, boundary="trim")
    pre = TILE_PRE + [dict(type="tiled", boundary="trim", **TILES)]
    store, cfg, _ = cache(tmp_path, ERA5 / "refs.json", "trim.zarr", pre)
    got = xr.open_zarr(store).load()
    assert got.sizes["batch_dim"] == 4 * 4 * 4
    for name in want.variables:
        assert np.array_equal(got[name].values, want[name].values, equal_nan=True), name
    # A local run whose worker is killed after 5 tiles, then resumed: the same bytes.
    flag = tmp_path / "fired"
    cfg2 = dict(cfg, cache_store=str(tmp_path / "killed.zarr"), deploy_mode="local", num_jobs=4,
                simultaneous_worker_limit=2)
    run_cache(tmp_path, cfg2, env={"ZP_FAULT_KILL_ONCE": str(flag), "ZP_FAULT_AFTER_CHUNKS": "5"}, check=0)
    assert flag.exists()
    assert store_files(tmp_path / "killed.zarr") == store_files(store)


@pytest.mark.parametrize("pre, extra, message", [
    ([{"type": "tiled", "latitude": 10}], {}, "must ascend"),
    ([{"type": "roll", "dim": "longitude", "shifts": 5}, {"type": "tiled", "longitude": 36}], {}, "jumps"),
    ([{"type": "tiled", "time": 24}, {"type": "isel", "time": [0, 24]}], {}, "last preprocessor"),
    ([{"type": "tiled", "time": 24, "longitude": 36}], {"chunks": {"batch_dim": 3}}, "must divide 4"),
    ([{"type": "tiled", "time": 0}], {}, "positive integer"),
    ([{"type": "tiled", "time": 200, "boundary": "trim"}], {}, "leaves nothing"),
    ([{"type": "tiled", "depth": 3}], {}, "no dimension 'depth'"),
])
def test_tiled_refusals_name_the_key(tmp_path, pre, extra, message):
    need_fixtures()
    store = tmp_path / "x.zarr"
    cfg = {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(store), "deploy_mode": "series",
           "preprocessors": pre}
    cfg.update(extra)
    proc = run_cache(tmp_path, cfg)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not store.exists()


def test_tile_sizes_that_cut_source_chunks_are_recommended_with_aligned_ones(tmp_path):
    need_fixtures()
    cfg = {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(tmp_path / "x.zarr"),
           "preprocessors": TILE_PRE + [{"type": "tiled", "time": 24, "latitude": 10, "longitude": 40}]}
    proc = run_cache(tmp_path, cfg, command="plan")
    assert proc.returncode == 0, proc.stderr
    assert "preprocessors[2].longitude: tiles of 40 along 'longitude' cut source chunks (every 36" in proc.stdout
    assert "tile size 36: reads" in proc.stdout and "preprocessors[2].time" not in proc.stdout
    # Every source chunk is read once either way (read amplification 1.00) and the memory barely
    # changes: advice that saves nothing, printed, and the cache goes on.
    proc = run_cache(tmp_path, cfg)
    assert proc.returncode == 0 and (tmp_path / "x.zarr").exists(), proc.stderr
    assert "recommendation (saves no reads or memory for the same output; going on): preprocessors[2].longitude" in proc.stderr


def test_several_tiles_a_chunk_along_batch_dim(tmp_path):
    """chunks: {batch_dim: 2} stores two consecutive tiles a chunk; the values are the same."""
    need_fixtures()
    src = open_kerchunk(ERA5 / "refs.json")
    want = tile_like_the_original(src.isel(latitude=slice(None, None, -1)).sel(latitude=slice(-60, 60)), TILES)
    store, cfg, _ = cache(tmp_path, ERA5 / "refs.json", "k2.zarr", TILE_PRE + [dict(type="tiled", **TILES)],
                          chunks={"batch_dim": 2}, deploy_mode="local", simultaneous_worker_limit=2)
    assert json.loads((store / "d2m" / ".zarray").read_text())["chunks"] == [2, 24, 10, 36]
    got = xr.open_zarr(store).load()
    for name in want.variables:
        assert np.array_equal(got[name].values, want[name].values, equal_nan=True), name
    assert run_cache(tmp_path, cfg, command="verify").returncode == 0


def test_a_variable_lacking_a_tiled_dimension_is_repeated_as_xarray_stacks_it(tmp_path):
    """A static field (lat, lon) and a series (time) beside tas (time, lat, lon), tiled over all
    three: xarray's stack broadcasts each over the tiles of the dimensions it lacks, so the same
    tile appears under every batch index that differs only there."""
    src = grid_file(tmp_path / "g.nc")
    with netCDF4.Dataset(src, "a") as ds:
        m = ds.createVariable("orog", "f4", ("lat", "lon"))
        m[:] = np.arange(9 * 40, dtype="f4").reshape(9, 40)
        m.units = "m"
        g = ds.createVariable("gmean", "f8", ("time",))
        g[:] = [1.5, 2.5]
    sizes = {"time": 1, "lat": 3, "lon": 10}
    want = tile_like_the_original(xr.open_dataset(src), sizes)
    store, cfg, _ = cache(tmp_path, src, "b.zarr", [dict(type="tiled", **sizes)], deploy_mode="local",
                          simultaneous_worker_limit=2)
    got = xr.open_zarr(store).load()
    assert got.orog.dims == want.orog.dims == ("batch_dim", "lat_fine", "lon_fine")
    for name in want.variables:
        assert np.array_equal(got[name].values, want[name].values, equal_nan=True), name
    assert run_cache(tmp_path, cfg, command="verify").returncode == 0
    assert got.gmean.dims == ("batch_dim", "time_fine")
    proc = run_cache(tmp_path, dict(cfg, cache_store=str(tmp_path / "k.zarr"),
                                    preprocessors=[{"type": "tiled", "time": 1, "lat": 3}], chunks={"batch_dim": 3}))
    assert proc.returncode == 2 and "lacks 'lat'" in proc.stderr, proc.stderr

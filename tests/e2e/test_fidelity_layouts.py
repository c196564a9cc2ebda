"""Fidelity on the layouts of real archives, made here with netCDF4-python as their producers lay them
out: a GOES ABI L1b-like file (x/y int16 radians with scale_factor/add_offset, `Rad` int16 and `DQF`
byte flags with `_Unsigned = "true"`, a scalar `t` and a `band` coordinate listed in `coordinates`)
and a gridMET-like file (a grid mapping `crs(crs)` that is its own dimension coordinate, which no
data variable uses). The cache, read by xarray, must be what xarray reads from the source."""
import json
import shutil
import subprocess

import netCDF4
import numpy as np
import pytest
import xarray as xr

from conftest import run_cache


def goes_file(path):
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("y", 6)
        ds.createDimension("x", 8)
        ds.createDimension("band", 1)
        ds.title = "ABI L1b-like"
        for name, scale, offset in (("x", 5.6e-05, -0.101332), ("y", -5.6e-05, 0.128212)):
            v = ds.createVariable(name, "i2", (name,))
            v.set_auto_maskandscale(False)
            v.scale_factor, v.add_offset = np.float32(scale), np.float32(offset)
            v.units, v.axis = "rad", name.upper()
            v[:] = np.arange(ds.dimensions[name].size, dtype="i2") * 100 + 1000
        t = ds.createVariable("t", "f8", ())
        t.units = "seconds since 2000-01-01 12:00:00"
        t[...] = 5.3e8
        band_id = ds.createVariable("band_id", "i1", ("band",))
        band_id._Unsigned = "true"
        band_id[:] = 2
        wavelength = ds.createVariable("band_wavelength", "f4", ("band",))
        wavelength.units = "um"
        wavelength[:] = 0.64
        gp = ds.createVariable("goes_imager_projection", "i4", ())
        gp.grid_mapping_name, gp.perspective_point_height = "geostationary", 35786023.0
        coords = "band_id band_wavelength t y x"
        rad = ds.createVariable("Rad", "i2", ("y", "x"), fill_value=np.int16(1023), chunksizes=(3, 4), zlib=True)
        rad.set_auto_maskandscale(False)
        rad._Unsigned = "true"
        rad.scale_factor, rad.add_offset = np.float32(0.8121064), np.float32(-25.936647)
        rad.coordinates, rad.grid_mapping = coords, "goes_imager_projection"
        counts = (np.arange(48).reshape(6, 8) * 1300 + 200) % 65536  # half of them >= 32768
        raw = counts.astype(np.uint16).view(np.int16)
        raw[0, 0] = 1023
        rad[:] = raw
        flags = (np.arange(48).reshape(6, 8) * 37 % 256).astype(np.uint8).view(np.int8)
        flags[1, 1] = -1
        dqf = ds.createVariable("DQF", "i1", ("y", "x"), fill_value=np.int8(-1), chunksizes=(3, 4), zlib=True)
        dqf.set_auto_maskandscale(False)
        dqf._Unsigned = "true"
        dqf.valid_range = np.array([0, 3], "i1")
        dqf.coordinates, dqf.grid_mapping = coords, "goes_imager_projection"
        dqf[:] = flags
        plain = ds.createVariable("flags", "i1", ("y", "x"))  # no fill value: read as uint8 as it is
        plain.set_auto_maskandscale(False)
        plain._Unsigned = "true"
        plain[:] = flags
        signed = ds.createVariable("counts", "u2", ("y", "x"), fill_value=np.uint16(65535))
        signed.set_auto_maskandscale(False)
        signed._Unsigned = "false"  # the other way round: uint16 bytes read as int16
        signed[:] = (np.arange(48).reshape(6, 8) * 1500).astype(np.uint16)
    return path


def gridmet_file(path):
    with netCDF4.Dataset(path, "w") as ds:
        for name, size in (("lon", 5), ("lat", 4), ("day", 3), ("crs", 1), ("height", 2)):
            ds.createDimension(name, size)
        lon = ds.createVariable("lon", "f8", ("lon",))
        lon[:], lon.units = np.linspace(-124, -120, 5), "degrees_east"
        lat = ds.createVariable("lat", "f8", ("lat",))
        lat[:], lat.units = np.linspace(49, 46, 4), "degrees_north"
        day = ds.createVariable("day", "f8", ("day",))
        day.units = "days since 1900-01-01 00:00:00"
        day[:] = [28854, 28855, 28856]
        crs = ds.createVariable("crs", "u2", ("crs",))
        crs[:] = 3
        crs.grid_mapping_name, crs.semi_major_axis = "latitude_longitude", 6378137.0
        height = ds.createVariable("height", "f4", ("height",))
        height[:] = [2, 10]
        pr = ds.createVariable("pr", "u2", ("day", "lat", "lon"), fill_value=np.uint16(32767))
        pr.set_auto_maskandscale(False)
        pr.scale_factor, pr.add_offset = 0.1, 0.0
        pr.grid_mapping, pr.coordinates = "crs", "lon lat"
        pr[:] = np.arange(60).reshape(3, 4, 5)
    return path


def cache(tmp_path, source, name="out.zarr", check=0, **extra):
    store = tmp_path / name
    cfg = {"data_uri": str(source), "cache_store": str(store), "deploy_mode": "series",
           "recommend_changes": False}
    cfg.update(extra)
    proc = run_cache(tmp_path, cfg, check=check)
    return store if check == 0 else proc


def assert_same(got, expected):
    """Same coordinate/data split, dims, dtypes, values and attributes."""
    got, expected = got.load(), expected.load()
    assert set(got.coords) == set(expected.coords), (sorted(got.coords), sorted(expected.coords))
    assert set(got.data_vars) == set(expected.data_vars), (sorted(got.data_vars), sorted(expected.data_vars))
    for name in expected.variables:
        g, e = got[name], expected[name]
        assert g.dims == e.dims and g.dtype == e.dtype, (name, g.dims, e.dims, g.dtype, e.dtype)
        assert np.array_equal(g.values, e.values, equal_nan=e.dtype.kind in "fc"), (name, g.values, e.values)
        assert same_attrs(g.attrs, e.attrs), (name, g.attrs, e.attrs)


def same_attrs(a, b):
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        # JSON attributes hold numbers, not their width: [0, 3] is int8 [0, 3] in a store
        if x.dtype.kind != y.dtype.kind and {x.dtype.kind, y.dtype.kind} - set("iu"):
            return False
        if not np.array_equal(x, y):
            return False
    return True


@pytest.mark.parametrize("encoding", ["source", "decoded"])
def test_unsigned_flags_and_counts_read_as_xarray_reads_them(tmp_path, encoding):
    src = goes_file(tmp_path / "goes.nc")
    store = cache(tmp_path, src, encoding=encoding)
    expected = xr.open_dataset(src)
    # The premise: flags >= 128 and counts >= 32768 are there, and xarray reads them unsigned.
    assert expected.flags.dtype == np.uint8 and int(expected.flags.max()) >= 128
    assert float(expected.DQF.max()) >= 128 and np.isnan(expected.DQF.values[1, 1])
    assert expected.counts.dtype == np.float32 and float(expected.counts.min()) < 0
    assert_same(xr.open_zarr(store), expected)
    if encoding == "source":  # the stored integers and their attributes, bit for bit
        raw = xr.open_zarr(store, decode_cf=False).load()
        for v in raw.variables.values():  # a float without fill value gets NaN, as to_zarr gives it
            if v.dtype.kind == "f" and np.isnan(v.attrs.get("_FillValue", 0)):
                del v.attrs["_FillValue"]
        assert_same(raw, xr.open_dataset(src, decode_cf=False))
    else:  # the written values are the decoded ones, with nothing left for a reader to redo
        for name, dtype in (("Rad", "<f4"), ("DQF", "<f4"), ("flags", "|u1"), ("counts", "<f4")):
            meta = json.loads((store / name / ".zarray").read_text())
            attrs = json.loads((store / name / ".zattrs").read_text())
            assert meta["dtype"] == dtype and "_Unsigned" not in attrs, (name, meta, attrs)


def test_value_steps_start_from_the_unsigned_values(tmp_path):
    src = goes_file(tmp_path / "goes.nc")
    store = cache(tmp_path, src, variables={
        "flags": [{"type": "astype", "dtype": "int32"}],
        "DQF": [{"type": "scale", "multiply": 2, "add": 1}],
        "Rad": [{"type": "astype", "dtype": "float64"}]})
    src_ds = xr.open_dataset(src)
    got = xr.open_zarr(store).load()
    for name, want in (("flags", src_ds.flags.astype("int32")), ("DQF", src_ds.DQF * 2 + 1),
                       ("Rad", src_ds.Rad.astype("float64"))):
        assert got[name].dtype == want.dtype, (name, got[name].dtype, want.dtype)
        assert np.array_equal(got[name].values, want.values, equal_nan=True), (name, got[name].values)
    assert int(got.flags.max()) >= 128


@pytest.mark.parametrize("encoding", ["source", "decoded"])
def test_a_subset_keeps_its_listed_coordinates_coordinates(tmp_path, encoding):
    src = goes_file(tmp_path / "goes.nc")
    store = cache(tmp_path, src, variables=["Rad"], encoding=encoding)
    # ds[["Rad"]] keeps t, y and x (band_id and band_wavelength have a dimension Rad lacks); the grid
    # mapping comes along too.
    expected = xr.open_dataset(src)[["Rad", "goes_imager_projection"]]
    assert "t" in expected.coords
    assert_same(xr.open_zarr(store), expected)
    attrs = json.loads((store / "Rad" / ".zattrs").read_text())
    assert attrs["coordinates"] == "t y x", attrs


def test_dimension_coordinates_no_variable_uses_are_kept(tmp_path):
    src = gridmet_file(tmp_path / "gridmet.nc")
    expected = xr.open_dataset(src)
    assert {"crs", "height"} <= set(expected.coords)
    assert_same(xr.open_zarr(cache(tmp_path, src)), expected)
    # variables: [pr] brings the grid mapping its grid_mapping names, as the README says.
    subset = cache(tmp_path, src, name="pr.zarr", variables=["pr"])
    assert_same(xr.open_zarr(subset), expected[["pr", "crs"]])


def test_sel_on_packed_coordinates_selects_decoded_values(tmp_path):
    src = goes_file(tmp_path / "goes.nc")
    ds = xr.open_dataset(src)
    # radians, as xarray shows them: x ascends, y descends
    store = cache(tmp_path, src, preprocessors=[{"type": "sel", "x": [-0.04, -0.02], "y": [0.07, 0.05]}])
    expected = ds.sel(x=slice(-0.04, -0.02), y=slice(0.07, 0.05))
    assert expected.sizes["x"] == 4 and expected.sizes["y"] == 3
    assert_same(xr.open_zarr(store), expected)
    # the stored integers are no labels: xarray selects nothing there, so the range is refused
    assert ds.sel(x=slice(100, 200)).sizes["x"] == 0
    proc = cache(tmp_path, src, name="none.zarr", check=2,
                 preprocessors=[{"type": "sel", "x": [1100, 1200]}])
    assert "selects nothing" in proc.stderr, proc.stderr


@pytest.mark.skipif(shutil.which("ncatted") is None, reason="NCO not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("fmt", ["NETCDF3_CLASSIC", "NETCDF4_CLASSIC"])
@pytest.mark.parametrize("encoding", ["source", "decoded"])
def test_unsigned_set_by_nco_on_netcdf3_bytes_and_shorts(tmp_path, fmt, encoding):
    src = tmp_path / "flags.nc"
    with netCDF4.Dataset(src, "w", format=fmt) as ds:
        ds.createDimension("time", None)
        ds.createDimension("x", 5)
        x = ds.createVariable("x", "f4", ("x",))
        x[:] = np.arange(5)
        qc = ds.createVariable("qc", "i1", ("time", "x"), fill_value=np.int8(-127))
        qc.set_auto_maskandscale(False)
        qc[:] = np.array([[0, 1, -128, -2, -127], [5, -1, 3, -100, 7]], "i1")
        bt = ds.createVariable("bt", "i2", ("time", "x"))
        bt.set_auto_maskandscale(False)
        bt.scale_factor, bt.add_offset = np.float32(0.01), np.float32(150.0)
        bt[:] = np.array([[0, 100, -30000, -1, 32767], [1, 2, 3, -2, -3]], "i2")
    subprocess.run(["ncatted", "-O", "-h", "-a", "_Unsigned,qc,o,c,true", "-a", "_Unsigned,bt,o,c,true",
                    str(src)], check=True)
    store = cache(tmp_path, src, encoding=encoding)
    expected = xr.open_dataset(src)
    assert float(expected.qc.max()) == 255 and np.isnan(expected.qc.values[0, 4])
    assert float(expected.bt.min()) >= 150 and float(expected.bt.max()) > 150 + 327.67
    assert_same(xr.open_zarr(store), expected)


def test_a_coordinate_that_cannot_be_cached_yet_leaves_the_others_coordinates(tmp_path):
    """`variables:` leaves out a complex coordinate (not cached yet): the attribute names what the
    store holds, so `lat` stays a coordinate, as in ds[["temp"]]."""
    import zarr
    src = tmp_path / "complex.zarr"
    root = zarr.open_group(str(src), mode="w")
    for name, data in (("z", np.array([1 + 2j, 3j], "c8")), ("lat", np.array([10.0, 20.0])),
                       ("temp", np.array([1.0, 2.0]))):
        root.create_dataset(name, data=data).attrs["_ARRAY_DIMENSIONS"] = ["x"]
    root["temp"].attrs["coordinates"] = "z lat"
    expected = xr.open_zarr(src)[["temp"]].drop_vars("z")
    assert "lat" in expected.coords
    store = cache(tmp_path, src, variables=["temp"])
    assert_same(xr.open_zarr(store), expected)


def test_tiles_of_packed_coordinates_are_labelled_with_decoded_values(tmp_path):
    src = goes_file(tmp_path / "goes.nc")
    ds = xr.open_dataset(src)
    store = cache(tmp_path, src, variables=["Rad"], preprocessors=[{"type": "tiled", "x": 4}])
    got = xr.open_zarr(store).load()
    assert got.x.dtype == ds.x.dtype and np.array_equal(got.x.values.ravel(), ds.x.values)
    assert "scale_factor" not in got.x.encoding and got.x.attrs == ds.x.attrs
    # y descends in radians (its stored integers ascend): refused as the original tiler refuses it
    proc = cache(tmp_path, src, name="y.zarr", check=2, preprocessors=[{"type": "tiled", "y": 3}])
    assert "must ascend" in proc.stderr, proc.stderr
    # roll auto would relabel the stored integers: refused, naming why
    proc = cache(tmp_path, src, name="roll.zarr", check=2,
                 preprocessors=[{"type": "roll", "dim": "x", "shifts": "auto"}])
    assert "packed" in proc.stderr, proc.stderr


def test_a_subset_keeps_coordinates_that_other_variables_name(tmp_path):
    """`variables: [W]` where W's `coordinates` names band_id only, and Rad's names the scalar
    time t too (GOES: t is listed by the radiances, not by every variable): ds[["W"]] keeps t as
    a coordinate (its dimensions, none, are within W's). Before: t left out of the store."""
    path = tmp_path / "g.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("y", 4)
        nc.createDimension("band", 2)
        nc.createVariable("y", "f4", ("y",))[:] = np.arange(4)
        nc.createVariable("band", "i4", ("band",))[:] = [7, 8]
        nc.createVariable("band_id", "i1", ("band",))[:] = [1, 2]
        t = nc.createVariable("t", "f8")
        t.units = "seconds since 2000-01-01"
        t[:] = 5
        rad = nc.createVariable("Rad", "f4", ("y",))
        rad.coordinates = "band_id t"
        rad[:] = np.arange(4.0)
        w = nc.createVariable("W", "f4", ("band", "y"))
        w.coordinates = "band_id"
        w[:] = np.ones((2, 4))
    want = xr.open_dataset(path)[["W"]].load()
    assert "t" in want.coords
    store = tmp_path / "w.zarr"
    run_cache(tmp_path, {"data_uri": str(path), "cache_store": str(store), "deploy_mode": "series",
                         "recommend_changes": False, "variables": {"W": []}}, check=0)
    got = xr.open_zarr(store).load()
    assert sorted(got.coords) == sorted(want.coords) == ["band", "band_id", "t", "y"]
    assert list(got.data_vars) == ["W"]
    assert got.t.values == want.t.values and got.W.attrs == want.W.attrs

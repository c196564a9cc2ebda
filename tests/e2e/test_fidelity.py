"""Fidelity: what xarray reads from a source reaches the cache — scalar (0-d) variables such as grid
mappings and scalar coordinates, auxiliary coordinates (also with a `variables:` subset, and after a
rename), with the same coordinate/data-variable split, dtypes and values. Sources are made by other
tools: netCDF4-python, NCO, zarr-python."""
import shutil
import subprocess

import netCDF4
import numpy as np
import pytest
import xarray as xr

from conftest import run_cache, same_bits


def rotated_pole_file(path, fmt="NETCDF4"):
    """A CORDEX-shaped file: tas on a rotated grid with 2-D lat/lon, a scalar height coordinate and
    a scalar grid mapping."""
    classic = fmt.startswith("NETCDF3")
    with netCDF4.Dataset(path, "w", format=fmt) as ds:
        ds.createDimension("time", None)
        ds.createDimension("rlat", 6)
        ds.createDimension("rlon", 8)
        ds.title = "rotated pole test"
        t = ds.createVariable("time", "f8", ("time",))
        t.units, t.calendar = "hours since 2000-01-01", "standard"
        t[:] = np.arange(4)
        for name, size in (("rlat", 6), ("rlon", 8)):
            v = ds.createVariable(name, "f4", (name,))
            v[:] = np.linspace(-2, 2, size)
            v.units, v.standard_name = "degrees", f"grid_{name[1:]}itude"
        for name, scale in (("lat", 0.5), ("lon", 0.25)):
            v = ds.createVariable(name, "f8", ("rlat", "rlon"))
            v[:] = np.arange(48).reshape(6, 8) * scale
            v.units = "degrees_north" if name == "lat" else "degrees_east"
        h = ds.createVariable("height", "f8", ())
        h[...] = 2.0
        h.units, h.axis, h.positive = "m", "Z", "up"
        rp = ds.createVariable("rotated_pole", "i4", ())
        rp.grid_mapping_name = "rotated_latitude_longitude"
        rp.grid_north_pole_latitude, rp.grid_north_pole_longitude = 39.25, -162.0
        kw = {} if classic else {"chunksizes": (2, 3, 4), "zlib": True}
        tas = ds.createVariable("tas", "f4", ("time", "rlat", "rlon"), fill_value=np.float32(1e20), **kw)
        tas[:] = np.random.default_rng(0).normal(280, 5, (4, 6, 8))
        tas.coordinates, tas.grid_mapping, tas.units = "lat lon height", "rotated_pole", "K"
        pr = ds.createVariable("pr", "i2", ("time", "rlat", "rlon"), fill_value=np.int16(-999))
        pr.scale_factor, pr.add_offset = np.float32(0.01), np.float32(0.0)
        pr[:] = np.random.default_rng(1).uniform(0, 5, (4, 6, 8))
        pr.coordinates, pr.grid_mapping = "lat lon", "rotated_pole"
    return path


def cache(tmp_path, source, name="out.zarr", **extra):
    store = tmp_path / name
    cfg = {"data_uri": str(source), "cache_store": str(store), "deploy_mode": "series",
           "recommend_changes": False}
    cfg.update(extra)
    run_cache(tmp_path, cfg, check=0)
    return store


def assert_same_as_xarray(store, expected, **open_kw):
    """Same variables, the same coordinate/data split, dtypes, values and attributes as xarray's
    reading of the source."""
    got = xr.open_zarr(store, **open_kw).load()
    assert set(got.coords) == set(expected.coords), (sorted(got.coords), sorted(expected.coords))
    assert set(got.data_vars) == set(expected.data_vars), (sorted(got.data_vars), sorted(expected.data_vars))
    for name in expected.variables:
        g, e = got[name], expected[name]
        # Loading a 0-d bytes value drops its trailing NULs from the dtype (xarray's own to_zarr
        # round trip does the same); the stored dtype is in the encoding.
        dtype = g.encoding.get("dtype", g.dtype) if e.dtype.kind == "S" else g.dtype
        assert g.dims == e.dims and dtype == e.dtype, (name, g.dims, e.dims, dtype, e.dtype)
        assert np.array_equal(g.values, e.values, equal_nan=e.dtype.kind in "fc"), name
        assert g.attrs == e.attrs, (name, g.attrs, e.attrs)


@pytest.mark.parametrize("fmt", ["NETCDF4", "NETCDF3_CLASSIC"])
def test_scalars_grid_mapping_and_aux_coordinates_are_kept(tmp_path, fmt):
    src = rotated_pole_file(tmp_path / "rp.nc", fmt)
    store = cache(tmp_path, src)
    expected = xr.open_dataset(src).load()
    assert "height" in expected.coords and "rotated_pole" in expected.data_vars  # what xarray shows
    assert_same_as_xarray(store, expected)
    raw = xr.open_zarr(store, mask_and_scale=False, decode_times=False).load()
    want = xr.open_dataset(src, mask_and_scale=False, decode_times=False).load()
    for name in want.variables:
        assert same_bits(raw[name].values, want[name].values), name
    # decoded encoding too
    decoded = cache(tmp_path, src, "decoded.zarr", encoding="decoded")
    assert_same_as_xarray(decoded, expected)


def test_variable_subset_keeps_what_ds_subset_keeps_and_its_grid_mapping(tmp_path):
    src = rotated_pole_file(tmp_path / "rp.nc")
    store = cache(tmp_path, src, variables=["tas"])
    ds = xr.open_dataset(src)
    got = xr.open_zarr(store)
    assert set(got.coords) == set(ds[["tas"]].coords)  # lat, lon, height stay coordinates
    assert set(got.data_vars) == {"tas", "rotated_pole"}  # and the grid mapping tas names
    assert int(got.rotated_pole) == int(ds.rotated_pole)
    assert got.rotated_pole.attrs == ds.rotated_pole.attrs


def test_renamed_aux_coordinate_stays_a_coordinate(tmp_path):
    src = rotated_pole_file(tmp_path / "rp.nc")
    store = cache(tmp_path, src, preprocessors=[{"type": "rename", "var_id": "lat", "new_name": "latitude"},
                                                {"type": "rename", "var_id": "rotated_pole", "new_name": "crs"}])
    expected = xr.open_dataset(src).rename({"lat": "latitude", "rotated_pole": "crs"})
    got = xr.open_zarr(store)
    assert "latitude" in got.coords and "lat" not in got.variables
    assert set(got.coords) == set(expected.coords) and set(got.data_vars) == set(expected.data_vars)
    assert got.tas.attrs["grid_mapping"] == "crs"
    assert np.array_equal(got.latitude.values, expected.latitude.values)


@pytest.mark.skipif(shutil.which("ncwa") is None, reason="NCO not installed (scripts/setup.sh installs it)")
def test_scalars_that_nco_leaves_are_kept(tmp_path):
    src = rotated_pole_file(tmp_path / "rp.nc")
    avg = tmp_path / "avg.nc"
    subprocess.run(["ncwa", "-O", "-a", "time", str(src), str(avg)], check=True, capture_output=True)
    expected = xr.open_dataset(avg).load()
    assert expected["time"].ndim == 0  # ncwa leaves the averaged dimension as a scalar
    store = cache(tmp_path, avg)
    assert_same_as_xarray(store, expected)


def test_zarr_python_store_with_scalars(tmp_path):
    src = rotated_pole_file(tmp_path / "rp.nc")
    zsrc = tmp_path / "src.zarr"
    xr.open_dataset(src).to_zarr(zsrc)
    store = cache(tmp_path, zsrc)
    assert_same_as_xarray(store, xr.open_zarr(zsrc).load())


def same_attrs(a, b):
    """Attribute dicts equal, NaN equal to NaN, types kept (a float NaN is not the string 'NaN')."""
    if set(a) != set(b):
        return False
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        if x.dtype.kind != y.dtype.kind and not (x.dtype.kind in "iuf" and y.dtype.kind in "iuf"):
            return False
        if x.dtype.kind == "f" or y.dtype.kind == "f":
            if not np.array_equal(x.astype(float), y.astype(float), equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def test_nonfinite_attributes_stay_floats(tmp_path):
    src = tmp_path / "nan.nc"
    with netCDF4.Dataset(src, "w") as ds:
        ds.createDimension("x", 5)
        ds.setncattr("global_inf", np.float64(np.inf))
        x = ds.createVariable("x", "f4", ("x",))
        x[:] = np.arange(5)
        v = ds.createVariable("v", "f4", ("x",), fill_value=np.float32(np.nan))
        v[:] = [1, np.nan, 3, 4, 5]
        v.valid_max = np.float32(np.inf)
        v.missing_value = np.float32(np.nan)
        v.bounds_hint = np.array([np.nan, -np.inf, 1.5])
        v.label = "NaN"  # a string that only looks like one
    expected = xr.open_dataset(src, mask_and_scale=False).load()
    for source in (src, tmp_path / "src.zarr"):
        if source.suffix == ".zarr":
            xr.open_dataset(src).to_zarr(source)  # zarr-python writes the bare NaN tokens
        store = cache(tmp_path, source, f"cache_{source.stem}.zarr")
        got = xr.open_zarr(store, mask_and_scale=False).load()
        want = expected if source.suffix == ".nc" else xr.open_zarr(source, mask_and_scale=False).load()
        assert same_attrs(got.v.attrs, want.v.attrs), (got.v.attrs, want.v.attrs)
        assert isinstance(got.v.attrs["valid_max"], float) and got.v.attrs["label"] == "NaN"
        assert np.isinf(got.attrs["global_inf"])
        assert np.isnan(got.v.encoding.get("_FillValue", got.v.attrs.get("_FillValue")))
        decoded = xr.open_zarr(store).load()
        assert np.array_equal(decoded.v.values, xr.open_dataset(src).v.values, equal_nan=True)
    text = subprocess.run([str(__import__("conftest").BIN), "inspect", str(src)], capture_output=True,
                          text=True).stdout
    assert "_FillValue=NaN" in text and '"NaN"' not in text.split("label")[0], text


@pytest.mark.skipif(shutil.which("ncatted") is None, reason="NCO not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("encoding", ["source", "decoded"])
def test_nco_fill_value_that_does_not_fit_int16_reads_as_xarray_reads_it(tmp_path, encoding):
    """NCO lets a packed int16 variable carry _FillValue = 1e20. Zarr's fill_value cannot hold it,
    so it stays an attribute; xarray reads the cache as it reads the file."""
    packed = tmp_path / "packed.nc"
    with netCDF4.Dataset(packed, "w", format="NETCDF3_CLASSIC") as ds:
        ds.createDimension("x", 6)
        v = ds.createVariable("v", "i2", ("x",))
        v.scale_factor, v.add_offset = np.float32(0.5), np.float32(10.0)
        v[:] = [1, 2, 3, 4, 5, 6]
    src = tmp_path / "nco.nc"
    subprocess.run(["ncatted", "-O", "-a", "_FillValue,v,o,d,1e20", str(packed), str(src)], check=True,
                   capture_output=True)
    assert xr.open_dataset(src).v.encoding["_FillValue"] == 1e20  # xarray reads it as it is
    store = cache(tmp_path, src, encoding=encoding)
    assert_same_as_xarray(store, xr.open_dataset(src).load())
    if encoding == "source":
        raw = xr.open_zarr(store, mask_and_scale=False).load()
        want = xr.open_dataset(src, mask_and_scale=False).load()
        assert same_bits(raw.v.values, want.v.values) and raw.v.attrs["_FillValue"] == 1e20


def test_strings_are_never_dropped_silently(tmp_path):
    """Strings cannot be cached yet: by default the run stops naming them; a `variables:` list that
    leaves them out caches the rest (a Zarr store with one string array is no longer refused)."""
    src = tmp_path / "st.nc"
    with netCDF4.Dataset(src, "w") as ds:
        ds.createDimension("station", 3)
        ds.createDimension("nchar", 4)
        t = ds.createVariable("temp", "f4", ("station",))
        t[:] = [1, 2, 3]
        names = ds.createVariable("name", "S1", ("station", "nchar"))
        names[:] = netCDF4.stringtochar(np.array(["abcd", "ef", "g"], dtype="S4"))
        label = ds.createVariable("label", str, ("station",))
        label[:] = np.array(["one", "two", "three"], dtype=object)
    zsrc = tmp_path / "st_src.zarr"
    xr.open_dataset(src).to_zarr(zsrc)
    for source in (src, zsrc):
        store = tmp_path / f"cache_{source.stem}.zarr"
        cfg = {"data_uri": str(source), "cache_store": str(store), "deploy_mode": "series",
               "recommend_changes": False}
        proc = run_cache(tmp_path, cfg)
        assert proc.returncode == 4 and "name (" in proc.stderr and "label (" in proc.stderr, proc.stderr
        assert "`variables:`" in proc.stderr and not store.exists()
        run_cache(tmp_path, dict(cfg, variables=["temp"]), check=0)
        assert np.array_equal(xr.open_zarr(store).temp.values, [1, 2, 3])
        proc = run_cache(tmp_path, dict(cfg, variables=["label"]))
        assert proc.returncode == 2 and "cannot cache yet" in proc.stderr, proc.stderr
    out = subprocess.run([str(__import__("conftest").BIN), "inspect", str(src)], capture_output=True,
                         text=True).stdout
    assert "name" in out and "a char array: not cacheable yet" in out, out


def numcodecs_store(path):
    """A store written by zarr-python with numcodecs' filters and compressors."""
    import numcodecs
    import zarr
    rng = np.random.default_rng(2)
    temp = rng.normal(280, 10, (6, 20)).astype("f8")
    counts = np.cumsum(rng.integers(-3, 4, (6, 20)), axis=1).astype("i4")
    root = zarr.open_group(str(path), mode="w")
    specs = {
        "delta_i4": (counts, [numcodecs.Delta(dtype="i4", astype="i2")], numcodecs.Zlib(1)),
        "scaled": (temp, [numcodecs.FixedScaleOffset(offset=280, scale=100, dtype="f8", astype="i2")],
                   numcodecs.Blosc()),
        "quantized": (temp.astype("f4"), [numcodecs.Quantize(digits=2, dtype="f4")], numcodecs.Zstd()),
        "astype": (temp, [numcodecs.AsType(encode_dtype="f4", decode_dtype="f8")], None),
        "bz2": (temp, None, numcodecs.BZ2(5)),
        "lzma": (temp, None, numcodecs.LZMA()),
        "delta_f8": (temp, [numcodecs.Delta(dtype="f8")], numcodecs.Zlib(1)),
    }
    for name, (data, filters, compressor) in specs.items():
        a = root.create_dataset(name, data=data, chunks=(4, 8), filters=filters, compressor=compressor)
        a.attrs["_ARRAY_DIMENSIONS"] = ["t", "x"]
    zarr.consolidate_metadata(str(path))
    return path


def test_numcodecs_filters_and_compressors_in_zarr_sources(tmp_path):
    src = numcodecs_store(tmp_path / "nc_src.zarr")
    store = cache(tmp_path, src)
    expected = xr.open_zarr(src, mask_and_scale=False).load()
    got = xr.open_zarr(store, mask_and_scale=False).load()
    for name in expected.data_vars:
        assert got[name].dtype == expected[name].dtype, name
        assert same_bits(got[name].values, expected[name].values), name


def test_months_since_in_360_day_and_refused_dates_elsewhere(tmp_path):
    """'months since' decodes in the 360_day calendar as cftime decodes it; elsewhere xarray cannot
    decode it either, and a date selection says so."""
    for cal in ("360_day", "standard"):
        src = tmp_path / f"m_{cal}.nc"
        with netCDF4.Dataset(src, "w") as ds:
            ds.createDimension("time", None)
            t = ds.createVariable("time", "f8", ("time",))
            t.units, t.calendar = "months since 2000-01-01", cal
            t[:] = np.arange(24)
            v = ds.createVariable("v", "f4", ("time",))
            v[:] = np.arange(24)
        sel = [{"type": "sel", "time": ["2000-06", "2001-01"]}]
        if cal == "360_day":
            store = cache(tmp_path, src, f"m_{cal}.zarr", preprocessors=sel)
            want = xr.open_dataset(src).sel(time=slice("2000-06", "2001-01"))
            got = xr.open_zarr(store)
            assert list(got.time.values) == list(want.time.values) and got.time.size == 8
            assert np.array_equal(got.v.values, want.v.values)
        else:
            proc = run_cache(tmp_path, {"data_uri": str(src), "cache_store": str(tmp_path / "m.zarr"),
                                        "preprocessors": sel})
            assert proc.returncode == 2 and "not supported for decoding" in proc.stderr, proc.stderr


def test_groups_are_read_with_group_and_never_ignored_silently(tmp_path):
    src = tmp_path / "grouped.nc"
    with netCDF4.Dataset(src, "w") as ds:
        ds.createDimension("time", None)  # a parent's dimension, used inside the groups
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "hours since 2000-01-01"
        t[:] = np.arange(6)
        fc = ds.createGroup("forecast")
        fc.createDimension("x", 4)
        x = fc.createVariable("x", "f4", ("x",))
        x[:] = np.arange(4)
        tas = fc.createVariable("tas", "f4", ("time", "x"), chunksizes=(3, 4), zlib=True)
        tas[:] = np.arange(24).reshape(6, 4)
        tas.units = "K"
        fc.description = "group attrs"
        members = fc.createGroup("members")
        m = members.createVariable("spread", "f8", ("time",))
        m[:] = np.linspace(0, 1, 6)
    cfg = {"data_uri": str(src), "cache_store": str(tmp_path / "root.zarr"), "deploy_mode": "series",
           "recommend_changes": False}
    proc = run_cache(tmp_path, cfg)
    assert proc.returncode == 4 and "forecast" in proc.stderr and "group:" in proc.stderr, proc.stderr
    for group in ("forecast", "forecast/members"):
        store = cache(tmp_path, src, group.replace("/", "_") + ".zarr", group=group)
        expected = xr.open_dataset(src, group=group).load()
        assert_same_as_xarray(store, expected)
        assert {k: v for k, v in xr.open_zarr(store).attrs.items() if not k.startswith("zarr_parallel")} == \
            expected.attrs
    proc = run_cache(tmp_path, dict(cfg, group="nope"))
    assert proc.returncode == 2 and "forecast/members" in proc.stderr, proc.stderr
    out = subprocess.run([str(__import__("conftest").BIN), "inspect", str(src)], capture_output=True,
                         text=True).stdout
    assert "groups     forecast, forecast/members" in out, out
    # A Zarr store with subgroups, written by xarray.
    zsrc = tmp_path / "grouped_src.zarr"
    xr.open_dataset(src, group="forecast").to_zarr(zsrc, group="g1")
    xr.Dataset({"a": ("y", np.arange(3.0))}).to_zarr(zsrc, mode="a")
    store = cache(tmp_path, zsrc, "g1.zarr", group="g1")
    assert_same_as_xarray(store, xr.open_zarr(zsrc, group="g1").load())
    store = cache(tmp_path, zsrc, "zroot.zarr")
    assert set(xr.open_zarr(store).data_vars) == {"a"}


@pytest.mark.parametrize("fmt", ["NETCDF4", "NETCDF3_CLASSIC"])
def test_char_scalars_such_as_cordex_grid_mappings(tmp_path, fmt):
    """CORDEX files declare `char rotated_pole;`; xarray reads a char scalar, or a char variable of
    one string dimension, as 0-d fixed-width bytes."""
    src = tmp_path / "cordex.nc"
    with netCDF4.Dataset(src, "w", format=fmt) as ds:
        ds.createDimension("x", 3)
        ds.createDimension("nchar", 5)
        rp = ds.createVariable("rotated_pole", "S1", ())
        rp.grid_mapping_name = "rotated_latitude_longitude"
        rp.grid_north_pole_latitude = 39.25
        label = ds.createVariable("label", "S1", ("nchar",))
        label[:] = netCDF4.stringtochar(np.array(["abc"], dtype="S5"))[0]
        tas = ds.createVariable("tas", "f4", ("x",))
        tas[:] = [1, 2, 3]
        tas.grid_mapping = "rotated_pole"
    expected = xr.open_dataset(src).load()
    assert expected.rotated_pole.dtype == "S1" and expected.label.dtype == "S5"
    store = cache(tmp_path, src)
    assert_same_as_xarray(store, expected)
    store = cache(tmp_path, src, "subset.zarr", variables=["tas"])
    assert xr.open_zarr(store).rotated_pole.attrs["grid_north_pole_latitude"] == 39.25

"""GRIB sources (issue 30): files written by ecCodes (its own samples, through its Python binding)
and CDO, cached by zarr-parallel and compared with what xarray's cfgrib engine reads from them:
values bit for bit, dtypes, coordinates, attributes (cfgrib's `history` holds a timestamp: left
out)."""
import subprocess

import numpy as np
import pytest
import xarray as xr

import grib_files as gf
from conftest import run_cache, same_bits

SKIP = gf.load_oracle()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=str(SKIP))


def cfgrib(paths, **kw):
    """xarray + cfgrib: open_dataset for one file, open_mfdataset along time for several."""
    kwargs = {"indexpath": ""}
    kwargs.update(kw)
    if len(paths) == 1:
        return xr.open_dataset(paths[0], engine="cfgrib", backend_kwargs=kwargs).load()
    return xr.open_mfdataset([str(p) for p in paths], engine="cfgrib", backend_kwargs=kwargs,
                             combine="nested", concat_dim="time").load()


def same_attrs(got, expected):
    """Equal attributes; an array attribute (GRIB_pl of a reduced grid: cfgrib's numpy array, a
    JSON list in Zarr) equal element by element, in the same type."""
    if set(got) != set(expected):
        return False
    for k, e in expected.items():
        g = got[k]
        if isinstance(e, (list, np.ndarray)):
            if not (np.asarray(g).dtype == np.asarray(e).dtype and np.array_equal(g, e)):
                return False
        elif type(g) is not type(e) or g != e:
            return False
    return True


def assert_same_as_cfgrib(store, expected):
    got = xr.open_zarr(store).load()
    assert set(got.data_vars) == set(expected.data_vars), (got.data_vars, expected.data_vars)
    assert set(got.coords) == set(expected.coords), (got.coords, expected.coords)
    for name in expected.variables:
        g, e = got[name], expected[name]
        assert g.dims == e.dims, (name, g.dims, e.dims)
        assert g.dtype == e.dtype, (name, g.dtype, e.dtype)
        assert same_bits(g.values, e.values), name
        assert same_attrs(g.attrs, e.attrs), (name, g.attrs, e.attrs)
    for k, v in expected.attrs.items():
        if k != "history":
            assert got.attrs[k] == v, k
    return got


def cache(tmp_path, data_uri, check=0, name="out.zarr", **cfg):
    store = tmp_path / name
    config = {"data_uri": str(data_uri), "cache_store": str(store), "recommend_changes": False}
    config.update(cfg)
    proc = run_cache(tmp_path, config, "--yes", check=check)
    return store, proc


def test_era5_like_daily_series_equals_cfgrib_mfdataset(tmp_path):
    days = [gf.era5_day(tmp_path / f"era5_202401{d:02d}.grib2", d, hours=6) for d in (1, 2, 3)]
    store, _ = cache(tmp_path, tmp_path / "era5_*.grib2", chunks={"time": 12, "latitude": 10, "longitude": 36})
    got = assert_same_as_cfgrib(store, cfgrib(days))
    assert got.t2m.shape == (18, 19, 36) and got.t2m.dtype == np.float32
    assert got.time.dtype == "datetime64[ns]" and got.valid_time.dims == ("time",)


def test_single_grib1_file_equals_cfgrib(tmp_path):
    path = gf.era5_day(tmp_path / "one.grib", 5, hours=4, edition=1)
    store, _ = cache(tmp_path, path, engine="cfgrib")
    got = assert_same_as_cfgrib(store, cfgrib([path]))
    assert int(got.number) == 0  # GRIB1's ECMWF local section has an ensemble number


def pressure_levels(path, levels=(1000, 850, 500), params=("t", "u"), hours=2, seed=3):
    rng = np.random.default_rng(seed)
    msgs = [{"sample": "regular_ll_pl_grib2", **gf.grid(), "dataDate": 20240101, "dataTime": h * 100,
             "shortName": p, "typeOfLevel": "isobaricInhPa", "level": lev,
             "values": gf.field(rng, 19, 36, 250.0)}
            for h in range(hours) for p in params for lev in levels]
    return gf.write_messages(path, msgs)


def test_pressure_levels_decreasing_and_filter_by_keys(tmp_path):
    path = pressure_levels(tmp_path / "pl.grib2")
    store, _ = cache(tmp_path, path)
    got = assert_same_as_cfgrib(store, cfgrib([path]))
    assert list(got.isobaricInhPa.values) == [1000.0, 850.0, 500.0]
    store2, _ = cache(tmp_path, path, name="t.zarr", filter_by_keys={"shortName": "t"})
    assert_same_as_cfgrib(store2, cfgrib([path], filter_by_keys={"shortName": "t"}))


def test_ensemble_members_and_forecast_steps(tmp_path):
    rng = np.random.default_rng(7)
    msgs = [{"sample": "regular_ll_sfc_grib2", **gf.grid(), "productDefinitionTemplateNumber": 1,
             "dataDate": 20240101, "dataTime": t, "shortName": "2t", "typeOfEnsembleForecast": 3,
             "numberOfForecastsInEnsemble": 4, "perturbationNumber": n, "stepUnits": 1,
             "forecastTime": s, "values": gf.field(rng, 19, 36, 280.0)}
            for t in (0, 1200) for n in range(4) for s in (0, 6, 12)]
    path = gf.write_messages(tmp_path / "ens.grib2", msgs)
    store, _ = cache(tmp_path, path)
    got = assert_same_as_cfgrib(store, cfgrib([path]))
    assert got.t2m.dims == ("number", "time", "step", "latitude", "longitude")
    assert got.valid_time.dims == ("time", "step")


def test_missing_message_and_bitmap_read_as_nan(tmp_path):
    rng = np.random.default_rng(11)
    msgs = []
    for t in (0, 1200):
        for s in (0, 6, 12):
            for p in ("2t", "2d"):
                if (t, s, p) == (1200, 6, "2d"):
                    continue  # a step absent from one time: cfgrib fills that field with NaN
                v = gf.field(rng, 19, 36, 280.0)
                v[2:5, 3:9] = 9999.0  # marked missing in the bitmap
                msgs.append({**gf.grid(), "dataDate": 20240101, "dataTime": t, "stepUnits": 1,
                             "forecastTime": s, "shortName": p, "bitmapPresent": 1,
                             "missingValue": 9999.0, "values": v})
    path = gf.write_messages(tmp_path / "holes.grib2", msgs)
    store, _ = cache(tmp_path, path)
    got = assert_same_as_cfgrib(store, cfgrib([path]))
    assert np.isnan(got.d2m.values[1, 1]).all() and not np.isnan(got.d2m.values[1, 0]).all()
    assert np.isnan(got.t2m.values[0, 0, 2:5, 3:9]).all()


def test_ccsds_packing_and_reduced_gaussian_grid(tmp_path):
    import eccodes
    rng = np.random.default_rng(5)
    h = eccodes.codes_grib_new_from_samples("reduced_gg_sfc_grib2")
    n = eccodes.codes_get(h, "numberOfPoints")
    eccodes.codes_release(h)
    msgs = [{"sample": "reduced_gg_sfc_grib2", "dataDate": 20240101, "dataTime": t * 600,
             "shortName": "2t", "values": 280 + rng.standard_normal(n)} for t in range(3)]
    gg = gf.write_messages(tmp_path / "gg.grib2", msgs)
    store, _ = cache(tmp_path, gg)
    got = assert_same_as_cfgrib(store, cfgrib([gg]))
    assert got.t2m.dims == ("time", "values") and got.latitude.dims == ("values",)
    ccsds = [{**m, **gf.grid(), "sample": "regular_ll_sfc_grib2", "packingType": "grid_ccsds",
              "values": gf.field(rng, 19, 36, 280.0)} for m in msgs]
    path = gf.write_messages(tmp_path / "ccsds.grib2", ccsds)
    store2, _ = cache(tmp_path, path, name="ccsds.zarr")
    assert_same_as_cfgrib(store2, cfgrib([path]))


def test_heterogeneous_file_refused_with_the_filters_then_read_with_one(tmp_path):
    rng = np.random.default_rng(9)
    msgs = [{"sample": "regular_ll_pl_grib2", **gf.grid(), "dataDate": 20240101, "dataTime": 0,
             "shortName": "t", "typeOfLevel": "isobaricInhPa", "level": 500,
             "values": gf.field(rng, 19, 36, 250.0)},
            {"sample": "regular_ll_sfc_grib2", **gf.grid(), "dataDate": 20240101, "dataTime": 0,
             "shortName": "t", "typeOfLevel": "surface", "values": gf.field(rng, 19, 36, 280.0)}]
    path = gf.write_messages(tmp_path / "mixed.grib2", msgs)
    with pytest.raises(Exception, match="multiple values for unique key"):
        cfgrib([path])
    _, proc = cache(tmp_path, path, check=4)
    assert "filter_by_keys={'typeOfLevel': 'isobaricInhPa'}" in proc.stderr, proc.stderr
    assert "filter_by_keys={'typeOfLevel': 'surface'}" in proc.stderr, proc.stderr
    store, _ = cache(tmp_path, path, name="sfc.zarr", filter_by_keys={"typeOfLevel": "surface"})
    assert_same_as_cfgrib(store, cfgrib([path], filter_by_keys={"typeOfLevel": "surface"}))


@pytest.mark.parametrize("fmt", ["grb", "grb2"])
def test_cdo_written_grib1_and_grib2_equal_cfgrib(tmp_path, fmt):
    nc = tmp_path / "in.nc"
    ds = xr.Dataset({"var167": (("time", "lat", "lon"),
                                (270 + np.random.default_rng(1).random((4, 10, 20))).astype("f4"))},
                    coords={"time": ("time", np.arange(4), {"units": "hours since 2024-01-01", "calendar": "standard"}),
                            "lat": ("lat", np.linspace(-45, 45, 10), {"units": "degrees_north"}),
                            "lon": ("lon", np.linspace(0, 342, 20), {"units": "degrees_east"})})
    ds.to_netcdf(nc)
    out = tmp_path / f"cdo.{fmt}"
    subprocess.run(["cdo", "-s", "-f", fmt, "copy", str(nc), str(out)], check=True, capture_output=True)
    store, _ = cache(tmp_path, out)
    assert_same_as_cfgrib(store, cfgrib([out]))


def test_truncated_and_garbage_grib_refused_without_crash(tmp_path):
    path = gf.era5_day(tmp_path / "t.grib2", 1, hours=2)
    data = path.read_bytes()
    bad = tmp_path / "cut.grib2"
    bad.write_bytes(data[: len(data) - 300])
    _, proc = cache(tmp_path, bad, check=4)
    assert "cut.grib2" in proc.stderr, proc.stderr
    garbage = tmp_path / "junk.grib2"
    garbage.write_bytes(b"GRIB" + bytes(range(256)) * 8)
    _, proc = cache(tmp_path, garbage, check=4, name="junk.zarr")
    assert "junk.grib2" in proc.stderr, proc.stderr


# Grids far over the GRIB points budget, made by ecCodes' grib_set from its own samples: ecCodes
# allocates the grid's latitudes (or values) whole and aborted the process (exit 134) when malloc
# failed; the 179-byte GRIB2 file asked for ~14 GB.
HUGE_GRIDS = [
    ("GRIB1.tmpl", "Ni=65535,Nj=65535,iDirectionIncrement=MISSING,jDirectionIncrement=MISSING"),
    ("GRIB2.tmpl", "Ni=30000,Nj=30000,numberOfDataPoints=900000000,numberOfValues=900000000"),
]


@pytest.mark.parametrize("sample,keys", HUGE_GRIDS)
def test_huge_declared_grid_refused_without_abort(tmp_path, sample, keys):
    path = tmp_path / "big.grib"
    subprocess.run(["grib_set", "-s", keys, f"/usr/share/eccodes/samples/{sample}", str(path)],
                   check=True, timeout=60)
    assert path.stat().st_size < 200
    store, proc = cache(tmp_path, path, check=4, deploy_mode="series")
    assert "big.grib" in proc.stderr and "key numberOf" in proc.stderr, proc.stderr
    assert not (store / ".zarr-parallel" / "complete.json").exists()
    assert not any(p.name == "complete.json" for p in tmp_path.rglob("*")), list(tmp_path.rglob("*"))
    out = subprocess.run([str(__import__("conftest").BIN), "inspect", str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 4, (out.returncode, out.stderr)
    assert "big.grib" in out.stderr and "key numberOf" in out.stderr, out.stderr


def open_with_kerchunk_codec(refs_path):
    """A reference set read as kerchunk's users read it: fsspec's reference:// and zarr, with the
    vendored kerchunk's "grib" codec registered (its eccodes from .tools/cfgrib)."""
    import json
    import sys
    from pathlib import Path
    vendor = str(gf.REPO.parent / "shared" / "vendor")
    if vendor not in sys.path:
        sys.path.insert(0, vendor)
    import kerchunk.codecs  # noqa: F401  (registers "grib" with numcodecs)
    return xr.open_dataset("reference://", engine="zarr", backend_kwargs={
        "consolidated": False,
        "storage_options": {"fo": json.loads(Path(refs_path).read_text())}}).load()


def refs_grib(tmp_path, hole):
    """Two daily files of steps 0, 6, 12 (bitmap holes), one message absent when `hole`; `refs`."""
    rng = np.random.default_rng(5)
    days = []
    for d in (1, 2):
        msgs = []
        for step in (0, 6, 12):
            for p in ("2t", "2d"):
                if hole and (d, step, p) == (2, 6, "2d"):
                    continue
                v = gf.field(rng, 19, 36, 280.0)
                v[2:5, 3:9] = 9999.0  # missing in the bitmap
                msgs.append({**gf.grid(), "dataDate": 20240100 + d, "dataTime": 0,
                             "stepUnits": 1, "forecastTime": step, "shortName": p,
                             "bitmapPresent": 1, "missingValue": 9999.0, "values": v})
        days.append(gf.write_messages(tmp_path / f"era5_2024010{d}.grib2", msgs))
    out = tmp_path / "refs.json"
    from conftest import BIN
    proc = subprocess.run([str(BIN), "refs", str(tmp_path / "era5_*.grib2"), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    return days, out, proc


def test_refs_of_grib_read_back_through_kerchunks_codec_equal_cfgrib(tmp_path):
    """`refs` of a daily GRIB series: kerchunk's grib2 layout, a reference per message, read back
    through kerchunk's own codec (fsspec + zarr) equal to cfgrib's reading, bit for bit."""
    import json
    days, out, proc = refs_grib(tmp_path, hole=False)
    assert proc.returncode == 0, proc.stderr
    refs = json.loads(out.read_text())["refs"]
    zarray = json.loads(refs["t2m/.zarray"])
    assert zarray["filters"] == [{"id": "grib", "var": "t2m", "dtype": "float32"}]
    assert zarray["chunks"] == [1, 1, 19, 36] and zarray["compressor"] is None
    assert refs["t2m/0.0.0.0"][1:] == [0, days[0].stat().st_size // 6]  # the first message
    got = open_with_kerchunk_codec(out)
    expected = cfgrib(days)
    assert set(got.variables) == set(expected.variables), (got.variables, expected.variables)
    for name in expected.variables:
        g, e = got[name], expected[name]
        assert g.dims == e.dims and g.dtype == e.dtype, (name, g.dims, e.dims, g.dtype, e.dtype)
        assert same_bits(g.values, e.values), name
    assert np.isnan(got.t2m.values[0, 0, 2:5, 3:9]).all()


def test_refs_of_grib_with_an_absent_message_refused(tmp_path):
    """An absent message would be an absent key, which Debian's fsspec (2022.11) raises KeyError
    for, and the grib codec cannot write a stand-in: refused naming the variable, nothing written."""
    _, out, proc = refs_grib(tmp_path, hole=True)
    assert proc.returncode == 4, proc.stderr
    assert "d2m" in proc.stderr and "'grib' cannot be written" in proc.stderr, proc.stderr
    assert not out.exists()

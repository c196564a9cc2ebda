"""The preview: the original's `_transform_ds()` (its transf_ds.py example) and `preview()`, and
xr.open_dataset(CONFIG, engine=...), give the Dataset the cache would hold, lazily, read through
the engine. Compared with xarray's own lazy reading of the source with the same selection."""
import json
import sys
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from conftest import ERA5, need_fixtures, open_kerchunk, tile_like_the_original  # noqa: E402

from zarr_parallel import ZarrParallelAssembler  # noqa: E402
from zarr_parallel.preview import ZarrParallelBackendEntrypoint  # noqa: E402


def lazy(ds):
    """True when no variable's values have been read (xarray keeps them behind lazy indexing)."""
    return not any(v._in_memory for v in ds.variables.values() if v.ndim and v.dims[0] not in ds.indexes)


def test_transform_ds_as_the_originals_transf_ds_example_calls_it(tmp_path, monkeypatch):
    """transf_ds.py's arguments (subset with tuples, chunks='auto', engine='kerchunk', cache_label),
    with the local fixture for its URL: the lazy Dataset equals xarray's reading with that subset."""
    need_fixtures()
    monkeypatch.chdir(tmp_path)
    zp = ZarrParallelAssembler(
        data_uri=str(ERA5 / "refs.json"),
        preprocessors=[{"type": "subset", "time": ("2000-01-01 00:00:00", "2000-02-28 23:00:00"),
                        "latitude": (60, -30), "longitude": (40, 100)}],
        chunks="auto", engine="kerchunk", cache_label="_vtest")
    ds = zp._transform_ds()
    assert isinstance(ds, xr.Dataset) and lazy(ds)
    want = open_kerchunk(ERA5 / "refs.json").sel(time=slice("2000-01-01", "2000-02-28"),
                                                 latitude=slice(60, -30), longitude=slice(40, 100))
    assert set(ds.data_vars) == set(want.data_vars) and dict(ds.sizes) == dict(want.sizes)
    for name in ds.variables:
        assert ds[name].dtype == want[name].dtype, name
        assert np.array_equal(ds[name].values, want[name].values, equal_nan=True), name
    assert ds.d2m.attrs["units"] == want.d2m.attrs["units"]
    assert not list(tmp_path.iterdir())  # nothing written
    # A window of the lazy array reads only what it needs, and equals the same window.
    part = zp.preview().d2m[5:40:7, ::-3, 2]
    assert np.array_equal(part.values, want.d2m[5:40:7, ::-3, 2].values, equal_nan=True)


def test_open_dataset_of_a_config_with_transforms(tmp_path):
    """xr.open_dataset("config.yaml", engine=<the entry point>): reverse_axis, renames and a scale
    with units, as the cache will hold them; chunks={} gives dask arrays on the output chunks."""
    need_fixtures()
    cfg = {"data_uri": str(ERA5 / "refs.json"),
           "preprocessors": [{"type": "sel", "time": ["2000-01-02 00:00", "2000-01-09 23:00"], "latitude": [60, -30],
                              "longitude": [40, 100]},
                             {"type": "reverse_axis", "dim": "latitude"},
                             {"type": "rename", "var_id": "latitude", "new_name": "lat"}],
           "variables": {"d2m": [], "t2m": [{"type": "rename", "new_name": "air_temperature"},
                                            {"type": "scale", "multiply": 1.8, "add": -459.67, "units": "degF"}]},
           "chunks": {"time": 48, "lat": 10, "longitude": 25}}
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(cfg))
    ds = xr.open_dataset(path, engine=ZarrParallelBackendEntrypoint)
    assert lazy(ds)
    src = open_kerchunk(ERA5 / "refs.json")
    want = src.sel(time=slice("2000-01-02", "2000-01-09"), latitude=slice(60, -30), longitude=slice(40, 100))
    want = want.isel(latitude=slice(None, None, -1)).rename(latitude="lat", t2m="air_temperature")
    want["air_temperature"] = want.air_temperature * 1.8 - 459.67
    assert np.array_equal(ds.lat.values, want.lat.values)
    assert np.array_equal(ds.d2m.values, want.d2m.values, equal_nan=True)
    assert np.array_equal(ds.air_temperature.values, want.air_temperature.values, equal_nan=True)
    assert ds.air_temperature.attrs["units"] == "degF"
    chunked = xr.open_dataset(path, engine=ZarrParallelBackendEntrypoint, chunks={})
    assert chunked.d2m.chunks[0][0] == 48 and chunked.d2m.chunks[1][0] == 10
    assert np.array_equal(chunked.d2m.compute().values, want.d2m.values, equal_nan=True)
    raw = xr.open_dataset(path, engine=ZarrParallelBackendEntrypoint, mask_and_scale=False)
    assert raw.d2m.dtype == src.d2m.encoding["dtype"]  # encoding: source keeps the packed integers


def test_preview_of_a_tiled_selection_equals_the_originals_tiler(tmp_path, monkeypatch):
    """tiled after reverse_axis and sel (the original's tiled.py order): the preview has the stored layout
    (batch_dim first) and the values of the original's TilerTransform on xarray's reading."""
    need_fixtures()
    monkeypatch.chdir(tmp_path)
    zp = ZarrParallelAssembler(
        data_uri=str(ERA5 / "refs.json"),
        preprocessors=[{"type": "reverse_axis", "dim": "latitude"},
                       {"type": "sel", "time": ("2000-01-01 00:00:00", "2000-01-04 23:00:00"), "latitude": (-30, 60),
                        "longitude": (40, 100)},
                       {"type": "tiled", "time": 24, "latitude": 30, "longitude": 20}])
    ds = zp.preview()
    assert lazy(ds)
    src = open_kerchunk(ERA5 / "refs.json").isel(latitude=slice(None, None, -1)).sel(
        time=slice("2000-01-01", "2000-01-04"), latitude=slice(-30, 60), longitude=slice(40, 100))
    want = tile_like_the_original(src, {"time": 24, "latitude": 30, "longitude": 20})
    for name in want.variables:
        assert ds[name].dims == want[name].dims, (name, ds[name].dims, want[name].dims)
        assert np.array_equal(ds[name].values, want[name].values, equal_nan=True), name
    assert np.array_equal(ds.d2m[3:1:-1, ..., ::-4].values, want.d2m[3:1:-1, ..., ::-4].values, equal_nan=True)


def test_preview_keeps_text_variables_and_auxiliary_coordinates(tmp_path):
    """A station file made by netCDF4-python: a vlen string variable (station names), a char array and an
    auxiliary coordinate, previewed with a selection, equal to xarray's reading."""
    src = tmp_path / "stations.nc"
    with netCDF4.Dataset(src, "w") as nc:
        nc.createDimension("station", 5)
        nc.createDimension("time", 4)
        nc.createDimension("nchar", 3)
        name = nc.createVariable("name", str, ("station",))
        for i, text in enumerate(["Reading", "", "Zürich", "Ny-Ålesund", "x"]):
            name[i] = text
        code = nc.createVariable("code", "S1", ("station", "nchar"))
        code[:] = netCDF4.stringtochar(np.array(["ABC", "D", "", "EFG", "HI"], "S3"))
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "hours since 2000-01-01"
        t[:] = [0, 1, 2, 3]
        alt = nc.createVariable("altitude", "f4", ("station",))
        alt[:] = [66, 10, 408, 8, 1]
        tas = nc.createVariable("tas", "f4", ("time", "station"), fill_value=np.float32(-1e20))
        tas.coordinates = "altitude name"
        tas[:] = np.arange(20, dtype="f4").reshape(4, 5)
        tas[1, 2] = np.ma.masked
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"data_uri": str(src), "preprocessors": [{"type": "isel", "station": [1, 5]}]}))
    ds = xr.open_dataset(cfg, engine=ZarrParallelBackendEntrypoint)
    want = xr.open_dataset(src).isel(station=slice(1, 5))
    for name in want.variables:
        assert ds[name].dims == want[name].dims, name
        assert np.array_equal(ds[name].values, want[name].values, equal_nan=want[name].dtype.kind == "f"), \
            (name, ds[name].values, want[name].values)

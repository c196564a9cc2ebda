"""The Python module with GRIB sources: cfgrib's `backend_kwargs={"filter_by_keys": {...}}`
spelling, as xarray takes it beside `engine`, selects the same messages cfgrib reads."""
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import grib_files as gf  # noqa: E402

from zarr_parallel import ZarrParallelAssembler  # noqa: E402

SKIP = gf.load_oracle()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=str(SKIP))
FILTER = {"typeOfLevel": "surface"}


def mixed_file(path):
    """Temperature on a pressure level and at the surface: cfgrib needs a filter to read it."""
    rng = np.random.default_rng(9)
    msgs = [{"sample": "regular_ll_pl_grib2", **gf.grid(), "dataDate": 20240101, "dataTime": h * 100,
             "shortName": "t", "typeOfLevel": "isobaricInhPa", "level": 500,
             "values": gf.field(rng, 19, 36, 250.0)} for h in range(3)]
    msgs += [{"sample": "regular_ll_sfc_grib2", **gf.grid(), "dataDate": 20240101, "dataTime": h * 100,
              "shortName": "t", "typeOfLevel": "surface", "values": gf.field(rng, 19, 36, 280.0)}
             for h in range(3)]
    return gf.write_messages(path, msgs)


def test_backend_kwargs_filter_by_keys_reads_what_cfgrib_reads(tmp_path):
    path = mixed_file(tmp_path / "mixed.grib2")
    kwargs = {"filter_by_keys": FILTER, "indexpath": ""}
    expected = xr.open_dataset(path, engine="cfgrib", backend_kwargs=kwargs).load()
    zp = ZarrParallelAssembler(data_uri=str(path), engine="cfgrib", backend_kwargs=kwargs,
                               chunks={"time": 3, "latitude": 19, "longitude": 36})
    shapes = {v["name"]: v["shape"] for v in zp.inspect()["variables"]}
    assert shapes["t"] == [3, 19, 36], shapes
    zp.cache(cache_store=str(tmp_path / "out.zarr"), deploy_mode="series", recommend_changes=False)
    got = xr.open_zarr(zp.cache_store).load()
    assert got.t.dtype == expected.t.dtype and np.array_equal(got.t.values, expected.t.values)
    assert float(got.surface) == float(expected.surface)
    # filter_by_keys itself, as the config key is spelled, reads the same.
    zp2 = ZarrParallelAssembler(data_uri=str(path), engine="grib", filter_by_keys=FILTER,
                                chunks={"time": 3, "latitude": 19, "longitude": 36})
    zp2.cache(cache_store=str(tmp_path / "out2.zarr"), deploy_mode="series", recommend_changes=False)
    assert np.array_equal(xr.open_zarr(zp2.cache_store).t.values, expected.t.values)


def test_without_the_filter_the_mixed_file_is_refused_naming_it(tmp_path):
    path = mixed_file(tmp_path / "mixed.grib2")
    with pytest.raises(Exception, match="filter_by_keys"):
        ZarrParallelAssembler(data_uri=str(path), engine="cfgrib").inspect()


def test_backend_kwargs_not_read_here_are_refused(tmp_path):
    with pytest.raises(ValueError, match="read_keys"):
        ZarrParallelAssembler(data_uri=str(tmp_path / "x.grib2"), engine="cfgrib",
                              backend_kwargs={"read_keys": ["name"]})
    with pytest.raises(ValueError, match="given twice"):
        ZarrParallelAssembler(data_uri=str(tmp_path / "x.grib2"), engine="cfgrib",
                              backend_kwargs={"filter_by_keys": FILTER},
                              filter_by_keys={"typeOfLevel": "isobaricInhPa"})

"""NetCDF-4/HDF5 and NetCDF-3 files by URL (HTTP with nginx, S3 with s3rver, through a fault-injecting proxy):
described by HDF5 reading ranges through our own store interface, cached identical to the same
files read from disk, and compared with xarray's reading of the local files."""
import json
import shutil
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from conftest import ERA5, need_fixtures, run_cache, store_files  # noqa: E402
from servers import FaultProxy, Nginx, S3rver  # noqa: E402
from test_fidelity import assert_same_as_xarray, rotated_pole_file, text_file  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                                reason="nginx-light not installed (scripts/setup.sh --tests)")

DAY = "era5_small_20000102.nc"


def data_keys(store):
    return {k: v for k, v in store_files(store).items() if k not in (".zattrs", ".zmetadata")}


def cache(tmp_path, uri, name, check=0, **extra):
    store = tmp_path / name
    proc = run_cache(tmp_path, {"data_uri": uri, "cache_store": str(store), "deploy_mode": "local",
                                "simultaneous_worker_limit": 2, "recommend_changes": False, **extra}, check=check)
    return store, proc


def grouped_file(path):
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("x", 5)
        ds.title = "root"
        g = ds.createGroup("forecast")
        g.createDimension("step", 3)
        g.source = "group attrs"
        v = g.createVariable("t", "f4", ("step", "x"), zlib=True, chunksizes=(1, 5), fill_value=-1.0)
        v[:] = np.arange(15.0).reshape(3, 5)
        g.createVariable("step", "i4", ("step",))[:] = [0, 6, 12]
    return path


@pytest.fixture
def www(tmp_path):
    need_fixtures()
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(ERA5 / DAY, root / DAY)
    rotated_pole_file(root / "rotated.nc")
    text_file(root / "text.nc")
    grouped_file(root / "grouped.nc")
    shutil.copy(Path(ERA5).parent / "classic" / "tp_classic.nc", root / "classic.nc")
    return root


def test_netcdf_over_http_equals_the_local_file(tmp_path, www):
    with Nginx(www, tmp_path / "nginx") as server:
        for name, extra in ((DAY, {}), ("rotated.nc", {}), ("text.nc", {}), ("grouped.nc", {"group": "forecast"}),
                            ("classic.nc", {})):
            local, _ = cache(tmp_path, str(www / name), f"local-{name}.zarr", **extra)
            remote, proc = cache(tmp_path, f"{server.url}/{name}", f"remote-{name}.zarr", **extra)
            assert data_keys(remote) == data_keys(local), (name, proc.stderr)
            group = extra.get("group")
            assert_same_as_xarray(remote, xr.open_dataset(www / name, group=group).load())
        requests = server.requests()
    # Only ranges were asked (no whole-file downloads), and few of them for the description.
    day = [r for r in requests if r[0] == f"/{DAY}"]
    assert day and all(rng for _, _, _, rng in day), day
    assert sum(n for _, _, n, _ in day) <= 1.6 * (www / DAY).stat().st_size, day


def test_netcdf4_over_s3_with_storage_options(tmp_path, www):
    with S3rver(tmp_path / "s3") as s3:
        s3.upload_folder("data", www, prefix="nc/")
        local, _ = cache(tmp_path, str(www / DAY), "local.zarr")
        remote, proc = cache(tmp_path, f"s3://data/nc/{DAY}", "s3.zarr", storage_options=s3.options())
        assert data_keys(remote) == data_keys(local), proc.stderr
        # An unknown key is a 403 naming the URL; a missing object names it too.
        _, proc = cache(tmp_path, f"s3://data/nc/{DAY}", "denied.zarr", check=4,
                        storage_options={**s3.options(), "key": "NOBODY", "secret": "x"})
        assert f"s3://data/nc/{DAY}" in proc.stderr and "403" in proc.stderr, proc.stderr
        _, proc = cache(tmp_path, "s3://data/nc/nothing.nc", "none.zarr", check=4, storage_options=s3.options())
        assert "s3://data/nc/nothing.nc" in proc.stderr, proc.stderr


def test_netcdf4_through_a_flaky_server_is_identical(tmp_path, www):
    local, _ = cache(tmp_path, str(www / "rotated.nc"), "local.zarr")
    faults = ["503", None, "drop", None, "short", "429", None]
    with Nginx(www, tmp_path / "nginx") as server:
        with FaultProxy(server.port, lambda n: faults[n % len(faults)]) as proxy:
            remote, proc = cache(tmp_path, f"{proxy.url}/rotated.nc", "flaky.zarr")
    assert data_keys(remote) == data_keys(local), proc.stderr
    assert all(proxy.injected.get(f, 0) > 0 for f in ("503", "drop", "short", "429")), proxy.injected


def test_refusals_name_the_url(tmp_path, www):
    with Nginx(www, tmp_path / "nginx") as server:
        _, proc = cache(tmp_path, f"{server.url}/missing.nc", "m.zarr", check=4)
        assert f"{server.url}/missing.nc" in proc.stderr, proc.stderr
        _, proc = cache(tmp_path, f"{server.url}/*.nc", "g.zarr", check=4)
        assert "glob" in proc.stderr and "refs" in proc.stderr, proc.stderr
        (www / "junk.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
        _, proc = cache(tmp_path, f"{server.url}/junk.nc", "j.zarr", check=4)
        assert "junk.nc" in proc.stderr, proc.stderr
        _, proc = cache(tmp_path, f"{server.url}/grouped.nc", "nogroup.zarr", check=2, group="nope")
        assert "forecast" in proc.stderr, proc.stderr

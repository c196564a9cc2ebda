"""Zarr v3 caches, plain and sharded, read back by zarrita (an independent implementation, npm)
and compared bit for bit with xarray's raw reading of the source; v3 stores as sources; verify,
kill/resume and the config's refusals."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, ERA5, REPO, need_fixtures, open_kerchunk, run_cache, store_files  # noqa: E402

MODULES = REPO / ".tools" / "node" / "node_modules"
READER = Path(__file__).parent / "zarrita_read.mjs"

pytestmark = pytest.mark.skipif(not (MODULES / "zarrita" / "package.json").exists(),
                                reason="zarrita not installed (scripts/setup.sh)")

SHARDED = {"chunks": {"time": 24, "latitude": 10, "longitude": 16},
           "shards": {"time": 48, "latitude": 40, "longitude": 48}}


def zarrita(store, names, tmp_path):
    """{name: numpy array} as zarrita reads them, and its report (attributes, types)."""
    out = tmp_path / f"zarrita_{Path(store).name}"
    out.mkdir(exist_ok=True)
    proc = subprocess.run(["node", str(READER), str(MODULES), str(store), str(out), *names], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    arrays = {}
    for name, info in report["arrays"].items():
        dtype = np.dtype("bool" if info["dtype"] == "bool" else info["dtype"]).newbyteorder("<")
        arrays[name] = np.fromfile(out / f"{name}.bin", dtype=dtype).reshape(info["shape"])
    return arrays, report


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype.itemsize != b.dtype.itemsize:
        return False
    return a.tobytes() == b.astype(b.dtype.newbyteorder("<")).tobytes()


@pytest.fixture(scope="module")
def raw():
    need_fixtures()
    return open_kerchunk(ERA5 / "refs.json", mask_and_scale=False, decode_times=False)


def v3_config(store, **extra):
    return {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(store), "zarr_format": 3,
            "deploy_mode": "local", "simultaneous_worker_limit": 2, **extra}


@pytest.mark.parametrize("layout", ["plain", "sharded"])
def test_zarrita_reads_v3_caches_identical_to_the_source(tmp_path, raw, layout):
    store = tmp_path / f"{layout}.zarr"
    run_cache(tmp_path, v3_config(store, **(SHARDED if layout == "sharded" else {"chunks": {"time": 24}})),
              check=0)
    names = ["d2m", "t2m", "time", "latitude", "longitude"]
    got, report = zarrita(store, names, tmp_path)
    for name in names:
        assert same_bits(got[name], raw[name].values), name
    assert report["group_attrs"]["Conventions"] == "CF-1.6"
    meta = json.loads((store / "d2m" / "zarr.json").read_text())
    assert meta["dimension_names"] == ["time", "latitude", "longitude"]
    assert meta["attributes"]["scale_factor"] == raw["d2m"].attrs["scale_factor"]
    assert meta["attributes"]["units"] == "K"
    root = json.loads((store / "zarr.json").read_text())
    assert set(root["consolidated_metadata"]["metadata"]) == set(names)
    if layout == "sharded":
        codec = meta["codecs"][0]
        assert codec["name"] == "sharding_indexed" and codec["configuration"]["chunk_shape"] == [24, 10, 16]
        assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [48, 40, 48]
        # 2 x 2 x 3 shards (the last along latitude and longitude are edge shards)
        shards = [p for p in (store / "d2m" / "c").rglob("*") if p.is_file()]
        assert len(shards) == 12, shards
    proc = subprocess.run([str(BIN), "verify", str(next(tmp_path.glob("config_*.yaml")))], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("compressor", ["blosc", "zlib", "gzip", "zstd", "lz4", "none"])
def test_every_compressor_in_a_sharded_v3_cache(tmp_path, raw, compressor):
    store = tmp_path / "c.zarr"
    run_cache(tmp_path, v3_config(store, compressor=compressor, **SHARDED), check=0)
    got, _ = zarrita(store, ["d2m", "t2m"], tmp_path)
    assert same_bits(got["d2m"], raw["d2m"].values) and same_bits(got["t2m"], raw["t2m"].values)


def test_fill_only_shards_are_not_stored(tmp_path):
    """A variable whose first half is _FillValue only: its shards there are left out, and zarrita reads
    the fill value for them, as the source has."""
    import netCDF4
    path = tmp_path / "holes.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 8)
        nc.createDimension("x", 12)
        nc.createVariable("time", "i4", ("time",))[:] = np.arange(8)
        nc.createVariable("x", "f4", ("x",))[:] = np.arange(12)
        v = nc.createVariable("v", "f4", ("time", "x"), fill_value=np.float32(-999.0), zlib=True)
        data = np.ma.masked_all((8, 12), dtype="f4")
        data[4:, :] = np.arange(48, dtype="f4").reshape(4, 12)
        v[:] = data
    store = tmp_path / "h.zarr"
    run_cache(tmp_path, {"data_uri": str(path), "cache_store": str(store), "zarr_format": 3,
                         "chunks": {"time": 2, "x": 4}, "shards": {"time": 4, "x": 12}, "deploy_mode": "series"},
              check=0)
    shards = sorted(p.relative_to(store / "v").as_posix() for p in (store / "v").rglob("*") if p.is_file()
                    and p.name != "zarr.json")
    assert shards == ["c/1/0"], shards
    got, report = zarrita(store, ["v"], tmp_path)
    import xarray as xr
    expected = xr.open_dataset(path, mask_and_scale=False)["v"].values
    assert same_bits(got["v"], expected)
    meta = json.loads((store / "v" / "zarr.json").read_text())
    assert meta["fill_value"] == -999.0
    import base64
    import struct
    assert struct.unpack("<d", base64.b64decode(meta["attributes"]["_FillValue"]))[0] == -999.0


def test_v3_caches_as_sources_round_trip_to_identical_v2(tmp_path):
    need_fixtures()
    direct = tmp_path / "direct.zarr"
    # Chunks named whole: `auto` keeps the source's (24, 19, 36) grown only to (24, 73, 36).
    run_cache(tmp_path, {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(direct), "deploy_mode": "series",
                         "chunks": {"time": 24, "latitude": 73, "longitude": 144}}, check=0)
    for layout, extra in (("plain", {"chunks": {"time": 24}}), ("sharded", SHARDED)):
        v3 = tmp_path / f"{layout}_v3.zarr"
        run_cache(tmp_path, v3_config(v3, **extra), check=0)
        back = tmp_path / f"{layout}_back.zarr"
        run_cache(tmp_path, {"data_uri": str(v3), "cache_store": str(back), "deploy_mode": "series",
                             "chunks": {"time": 24, "latitude": 73, "longitude": 144}}, check=0)
        a, b = store_files(direct), store_files(back)
        for key in a:
            if key.startswith(("d2m/", "t2m/", "time/", "latitude/", "longitude/")) and not key.endswith(".zattrs"):
                assert a[key] == b.get(key), (layout, key)
        import xarray as xr
        x, y = xr.open_zarr(direct).load(), xr.open_zarr(back).load()
        for name in ("d2m", "t2m"):
            assert np.array_equal(x[name].values, y[name].values, equal_nan=True), name
            assert x[name].attrs == y[name].attrs, name
            assert x[name].dims == y[name].dims


def test_verify_finds_a_damaged_shard(tmp_path):
    need_fixtures()
    store = tmp_path / "d.zarr"
    cfg = v3_config(store, **SHARDED)
    run_cache(tmp_path, cfg, check=0)
    shard = store / "d2m" / "c" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[10] ^= 0xFF
    shard.write_bytes(bytes(data))
    proc = run_cache(tmp_path, cfg, command="verify")
    assert proc.returncode == 1 and "d2m/c/0/0/0" in proc.stdout, proc.stdout


def test_killed_worker_with_shards_resumes_to_an_identical_store(tmp_path):
    need_fixtures()
    reference = tmp_path / "ref.zarr"
    run_cache(tmp_path, v3_config(reference, **SHARDED), check=0)
    store = tmp_path / "k.zarr"
    flag = tmp_path / "killed"
    run_cache(tmp_path, v3_config(store, num_jobs=4, **SHARDED), env={"ZP_FAULT_KILL_ONCE": str(flag)}, check=0)
    assert flag.exists()
    a, b = store_files(reference), store_files(store)
    assert {k: v for k, v in a.items() if "/c/" in k} == {k: v for k, v in b.items() if "/c/" in k}


def test_shards_config_errors(tmp_path):
    need_fixtures()
    proc = run_cache(tmp_path, {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(tmp_path / "a.zarr"),
                                "shards": {"time": 48}}, check=2)
    assert "zarr_format: 3" in proc.stderr
    proc = run_cache(tmp_path, v3_config(tmp_path / "b.zarr", chunks={"time": 24}, shards={"time": 30}), check=2)
    assert "shards.time" in proc.stderr and "multiple" in proc.stderr, proc.stderr


def test_v3_store_over_http_reads_as_the_local_one(tmp_path):
    """A sharded v3 store served by nginx: its root zarr.json's consolidated metadata names the
    arrays, HEAD finds the shards, their indexes are read by range."""
    import shutil
    from servers import Nginx
    need_fixtures()
    v3 = tmp_path / "www" / "s.zarr"
    run_cache(tmp_path, v3_config(v3, **SHARDED), check=0)
    local = tmp_path / "local.zarr"
    run_cache(tmp_path, {"data_uri": str(v3), "cache_store": str(local), "deploy_mode": "series"}, check=0)
    shutil.rmtree(v3 / ".zarr-parallel")  # only the Zarr keys are served
    with Nginx(tmp_path / "www", tmp_path / "nginx") as server:
        remote = tmp_path / "remote.zarr"
        run_cache(tmp_path, {"data_uri": f"{server.url}/s.zarr", "cache_store": str(remote), "deploy_mode": "local"},
                  check=0)
        sent = [n for path, status, n, rng in server.requests() if "/c/" in path and status == 206]
    # Every key but the root attributes (which name the config and its source) is the same.
    a, b = store_files(local), store_files(remote)
    assert {k: v for k, v in a.items() if k not in (".zattrs", ".zmetadata")} == \
        {k: v for k, v in b.items() if k not in (".zattrs", ".zmetadata")}
    assert sent, "no ranged shard reads"

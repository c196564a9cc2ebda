"""Caches on S3 from deploy_mode local and from the Python module (issue 31): worker processes
write chunks and done records straight to the prefix while the coordinator holds the claim and the
lease; their logs, heartbeats and plan file stay in a local scratch folder. Judged against the
series run's objects (s3rver on loopback, read with boto3), xarray over plain HTTP and zarrita."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import numpy as np
import pytest
import xarray as xr

from conftest import BIN, ERA5, need_fixtures, run_cache  # noqa: E402
from servers import S3rver  # noqa: E402
from test_s3_output import BUCKET, keys, s3_config  # noqa: E402

SHARDED = {"zarr_format": 3, "chunks": {"time": 24, "latitude": 10, "longitude": 16},
           "shards": {"time": 48, "latitude": 40, "longitude": 48}}


@pytest.fixture
def s3(tmp_path):
    with S3rver(tmp_path / "s3") as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


def objects(s3, prefix):
    """The store's data and metadata objects (not its .zarr-parallel records), by key."""
    get = s3.client().get_object
    return {k[len(prefix):]: get(Bucket=BUCKET, Key=k)["Body"].read() for k in keys(s3, prefix)
            if "/.zarr-parallel/" not in "/" + k[len(prefix):]}


def local_config(s3, prefix, **extra):
    return s3_config(s3, prefix, deploy_mode="local", simultaneous_worker_limit=2, **extra)


def scratch_env(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return tmp, {"TMPDIR": str(tmp)}


def test_local_mode_on_s3_writes_what_series_writes_and_keeps_its_files_off_the_bucket(tmp_path, s3):
    need_fixtures()
    run_cache(tmp_path, s3_config(s3, "ser/era5.zarr"), check=0)
    tmp, env = scratch_env(tmp_path)
    proc = run_cache(tmp_path, local_config(s3, "loc/era5.zarr"), env=env, check=0)
    series, local = objects(s3, "ser/era5.zarr/"), objects(s3, "loc/era5.zarr/")
    assert len(series) > 10 and local == series
    side = [k for k in keys(s3, "loc/era5.zarr/.zarr-parallel/")]
    assert "loc/era5.zarr/.zarr-parallel/complete.json" in side
    assert not any("/logs/" in k or "/heartbeats/" in k or k.endswith(".log") for k in side), side
    done = [k for k in side if k.endswith(".done")]
    assert len(done) == 4
    for key in done:  # written by the worker processes, not the coordinator
        record = s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert b'"worker":"local-' in record.replace(b" ", b""), record
    assert list(tmp.iterdir()) == []  # scratch folder and secrets file gone
    for key in keys(s3, "loc/era5.zarr/"):
        assert b"S3RVER" not in s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read(), key
    assert "S3RVER" not in proc.stdout + proc.stderr
    # Decoded by xarray over plain HTTP: the same dataset as a folder store of the same config.
    folder = tmp_path / "folder.zarr"
    run_cache(tmp_path, {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(folder),
                         "deploy_mode": "series", "num_jobs": 4}, check=0)
    mapper = fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/loc/era5.zarr")
    xr.testing.assert_identical(xr.open_zarr(mapper, consolidated=True).load(), xr.open_zarr(folder).load())
    run_cache(tmp_path, local_config(s3, "loc/era5.zarr"), command="verify", check=0)
    again = run_cache(tmp_path, local_config(s3, "loc/era5.zarr"), check=0)
    assert "cache hit" in again.stderr + again.stdout


def inner_chunks(shard, n=2 * 4 * 3):  # inner chunks by index entry: their order may differ
    index = np.frombuffer(shard[-16 * n - 4:-4], dtype="<u8").reshape(n, 2)
    return [None if o == 2 ** 64 - 1 else shard[o:o + m] for o, m in index]


def test_local_mode_on_s3_with_v3_shards_equals_series(tmp_path, s3):
    need_fixtures()
    run_cache(tmp_path, s3_config(s3, "ser/sh.zarr", **SHARDED), check=0)
    run_cache(tmp_path, local_config(s3, "loc/sh.zarr", **SHARDED), check=0)
    series, local = objects(s3, "ser/sh.zarr/"), objects(s3, "loc/sh.zarr/")
    assert sorted(local) == sorted(series)
    shards = [k for k in series if k.startswith(("d2m/c/", "t2m/c/"))]
    assert len(shards) > 10
    for key in series:
        if key in shards:
            assert inner_chunks(local[key]) == inner_chunks(series[key]), key
        else:
            assert local[key] == series[key], key


def test_a_worker_killed_midway_is_replaced_and_the_s3_store_equals_series(tmp_path, s3):
    need_fixtures()
    run_cache(tmp_path, s3_config(s3, "ser/era5.zarr"), check=0)
    flag = tmp_path / "killed"
    proc = run_cache(tmp_path, local_config(s3, "kw/era5.zarr"),
                     env={"ZP_FAULT_KILL_ONCE": str(flag), "ZP_FAULT_AFTER_CHUNKS": "2"}, check=0)
    assert flag.exists(), "the fault was not injected"
    assert "running it again" in proc.stderr, proc.stderr
    assert objects(s3, "kw/era5.zarr/") == objects(s3, "ser/era5.zarr/")
    run_cache(tmp_path, local_config(s3, "kw/era5.zarr"), command="verify", check=0)


def wait_for(predicate, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_killed_coordinator_is_resumed_and_the_s3_store_equals_series(tmp_path, s3):
    need_fixtures()
    run_cache(tmp_path, s3_config(s3, "ser/era5.zarr"), check=0)
    cfg = tmp_path / "kc.yaml"
    cfg.write_text(json.dumps(local_config(s3, "kc/era5.zarr")))
    slow = tmp_path / "slept"  # one worker sleeps mid-job: the run cannot finish before the kill
    env = dict(os.environ, ZP_FAULT_SLEEP_ONCE=str(slow), ZP_FAULT_SLEEP_SECONDS="60", ZP_FAULT_NO_COPIES="1")
    with open(tmp_path / "coordinator.log", "w") as log:
        coordinator = subprocess.Popen([str(BIN), "cache", str(cfg)], env=env, stdout=log, stderr=log)
    try:
        done = lambda: any(k.endswith(".done") for k in keys(s3, "kc/era5.zarr/.zarr-parallel/"))  # noqa: E731
        assert wait_for(lambda: slow.exists() and done(), 120), "no job finished"
    finally:
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait(timeout=60)
    names = keys(s3, "kc/era5.zarr/")
    assert "kc/era5.zarr/.zarr-parallel/complete.json" not in names
    assert "kc/era5.zarr/.zmetadata" not in names
    resumed = run_cache(tmp_path, local_config(s3, "kc/era5.zarr"), check=0)
    assert "resuming" in resumed.stderr, resumed.stderr
    assert objects(s3, "kc/era5.zarr/") == objects(s3, "ser/era5.zarr/")
    run_cache(tmp_path, local_config(s3, "kc/era5.zarr"), command="verify", check=0)


def test_dask_from_the_command_line_says_where_it_writes_to_s3(tmp_path, s3):
    proc = run_cache(tmp_path, s3_config(s3, "dk/era5.zarr", deploy_mode="dask_distributed"), check=2)
    assert "dask_distributed (from the Python module)" in proc.stderr, proc.stderr
    assert keys(s3, "dk/") == []


def test_python_module_caches_to_s3_with_cache_storage_options(tmp_path, s3):
    need_fixtures()
    module_dir = Path(BIN).parent.parent / "python"
    if not list(module_dir.glob("zarr_parallel/_zarr_parallel*.so")):
        pytest.skip("the Python module is not built here (sanitizer builds leave it out)")
    run_cache(tmp_path, s3_config(s3, "ser/era5.zarr"), check=0)
    tmp, scratch = scratch_env(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(module_dir), **scratch)
    script = f"""
import zarr_parallel
zp = zarr_parallel.ZarrParallelAssembler({str(ERA5 / 'refs.json')!r}, log_level=1)
out = zp.cache(cache_store="s3://{BUCKET}/py/era5.zarr", cache_storage_options={s3.options()!r},
               deploy_mode="local", num_jobs=4, simultaneous_worker_limit=2)
assert out == "s3://{BUCKET}/py/era5.zarr" and zp.cache_store == out, out
zp.cache(cache_store="s3://{BUCKET}/py/era5.zarr", cache_storage_options={s3.options()!r},
         deploy_mode="local", num_jobs=4)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "cache hit" in proc.stderr, proc.stderr
    # The same data objects; the root attributes name each config's hash, so they are compared decoded.
    py, cli = objects(s3, "py/era5.zarr/"), objects(s3, "ser/era5.zarr/")
    root = {".zattrs", ".zmetadata"}
    assert {k: v for k, v in py.items() if k not in root} == {k: v for k, v in cli.items() if k not in root}

    def opened(prefix):
        ds = xr.open_zarr(fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/{prefix}"), consolidated=True).load()
        ds.attrs = {k: v for k, v in ds.attrs.items() if "config_hash" not in k}
        return ds
    xr.testing.assert_identical(opened("py/era5.zarr"), opened("ser/era5.zarr"))
    assert list(tmp.iterdir()) == []
    assert "S3RVER" not in proc.stdout + proc.stderr

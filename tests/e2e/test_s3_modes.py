"""Caches on S3 from deploy_mode local and from the Python module (issue 31): worker processes
write chunks and done records straight to the prefix while the coordinator holds the claim and the
lease; their logs, heartbeats and plan file stay in a local scratch folder. Judged against the
series run's objects (s3rver on loopback, read with boto3), xarray over plain HTTP and zarrita."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import fsspec
import numpy as np
import pytest
import xarray as xr

from conftest import BIN, ERA5, need_fixtures, none_alive_within, open_kerchunk, run_cache  # noqa: E402
from test_s3_output import BUCKET, S3StandIn, keys, s3_config  # noqa: E402

SHARDED = {"zarr_format": 3, "chunks": {"time": 24, "latitude": 10, "longitude": 16},
           "shards": {"time": 48, "latitude": 40, "longitude": 48}}


def assert_same_store_but_config_hash(s3, a, b):
    """Stores under prefixes `a` and `b` of the bucket hold the same data objects, and xarray reads
    the same Dataset from both; their root attributes name each config's hash, so those are compared
    decoded, without it."""
    ours, theirs = objects(s3, a + "/"), objects(s3, b + "/")
    root = {".zattrs", ".zmetadata"}
    assert {k: v for k, v in ours.items() if k not in root} == {k: v for k, v in theirs.items() if k not in root}

    def opened(prefix):
        ds = xr.open_zarr(fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/{prefix}"), consolidated=True).load()
        ds.attrs = {k: v for k, v in ds.attrs.items() if "config_hash" not in k}
        return ds
    xr.testing.assert_identical(opened(a), opened(b))


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
    assert_same_store_but_config_hash(s3, "py/era5.zarr", "ser/era5.zarr")
    assert list(tmp.iterdir()) == []
    assert "S3RVER" not in proc.stdout + proc.stderr


def scratch_workers(tmp):
    """Pids of the processes whose command line names the scratch folder under `tmp` (the workers)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(tmp).encode() in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            pass
    return pids


def start_slow_local_run(tmp_path, s3, prefix, seconds, **env):
    """A local run on S3 whose first worker to write a chunk sleeps `seconds` mid-job (heartbeats
    go on); returns (process, scratch TMPDIR, flag) once that worker sleeps."""
    tmp, scratch = scratch_env(tmp_path)
    cfg = tmp_path / f"{prefix.replace('/', '_')}.yaml"
    cfg.write_text(json.dumps(local_config(s3, prefix)))
    flag = tmp_path / f"slept_{prefix.replace('/', '_')}"
    full = dict(os.environ, ZP_FAULT_SLEEP_ONCE=str(flag), ZP_FAULT_SLEEP_SECONDS=str(seconds),
                ZP_FAULT_NO_COPIES="1", **scratch, **env)
    run = subprocess.Popen([str(BIN), "cache", str(cfg)], env=full, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not wait_for(lambda: flag.exists() or run.poll() is not None, 120):
        run.kill()
    assert flag.exists(), run.communicate(timeout=60)
    return run, tmp, flag


def test_a_lost_lease_stops_the_local_workers_at_once(tmp_path, s3):
    """Issue 31: a local run whose lease was taken over kept its workers writing until they had
    finished every job (it stopped only before the consolidated metadata). Here another run's lease
    replaces ours while a worker sleeps 40 s mid-job: on main the run went on until that worker woke
    (no exit within 20 s); now the next renewal finds the lease gone and the workers are killed."""
    need_fixtures()
    run, tmp, _ = start_slow_local_run(tmp_path, s3, "lost/era5.zarr", 40, ZP_S3_LEASE_SECONDS="4")
    try:
        workers = scratch_workers(tmp)
        assert workers, "no worker process found"
        forged = {"holder": "another-run", "host": "elsewhere", "pid": 1, "expires": time.time() + 600}
        s3.client().put_object(Bucket=BUCKET, Key="lost/era5.zarr/.zarr-parallel/lease.json",
                               Body=json.dumps(forged).encode())
        out, err = run.communicate(timeout=20)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=60)
    assert run.returncode == 5, err
    assert "another run took the store over" in err, err
    assert none_alive_within(workers, 3), "a worker outlived its coordinator's lost lease"
    names = keys(s3, "lost/era5.zarr/")
    assert "lost/era5.zarr/.zarr-parallel/complete.json" not in names
    assert "lost/era5.zarr/.zmetadata" not in names
    lease = s3.client().get_object(Bucket=BUCKET, Key="lost/era5.zarr/.zarr-parallel/lease.json")["Body"].read()
    assert json.loads(lease)["holder"] == "another-run"  # the other run's lease is left alone
    # Once the other run is gone (its lease deleted), the next run continues the store.
    s3.client().delete_object(Bucket=BUCKET, Key="lost/era5.zarr/.zarr-parallel/lease.json")
    again = run_cache(tmp_path, local_config(s3, "lost/era5.zarr"), check=0)
    assert "resuming" in again.stderr, again.stderr
    mapper = fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/lost/era5.zarr")
    xr.testing.assert_allclose(xr.open_zarr(mapper, consolidated=True).load(),
                               open_kerchunk(ERA5 / "refs.json").load())


def test_status_on_s3_shows_the_live_workers_of_a_local_run(tmp_path, s3):
    """Issue 31: the workers' heartbeats stayed in the coordinator's scratch folder, so `status
    s3://...` showed no live worker while a local run wrote the store. Now the coordinator mirrors
    them into the prefix (every 3 s) and deletes the copies at the end."""
    need_fixtures()
    env = dict(os.environ, AWS_ACCESS_KEY_ID=s3.KEY, AWS_SECRET_ACCESS_KEY=s3.SECRET,
               AWS_ENDPOINT_URL=s3.endpoint, AWS_REGION="us-east-1")

    def status():
        proc = subprocess.run([str(BIN), "status", f"s3://{BUCKET}/live/era5.zarr", "--json"],
                              capture_output=True, text=True, env=env, timeout=60)
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    run, tmp, _ = start_slow_local_run(tmp_path, s3, "live/era5.zarr", 20)
    try:
        seen = []
        assert wait_for(lambda: bool(seen.append(status()) or seen[-1].get("live_workers")), 15), seen[-1:]
        live = seen[-1]["live_workers"]
        workers = scratch_workers(tmp)
        assert {b["pid"] for b in live} <= set(workers), (live, workers)  # this run's worker processes
        assert all(b["job"] in range(4) for b in live if b.get("job") is not None), live
        assert seen[-1]["complete"] is False
        out, err = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=60)
    assert run.returncode == 0, err
    final = status()
    assert final["complete"] is True and final["live_workers"] == [], final
    assert not [k for k in keys(s3, "live/era5.zarr/") if "/heartbeats/" in k]  # the copies deleted


class HoldFirstPart:
    """Holds the first multipart part PUT (up to 60 s) until released: the test kills its worker
    meanwhile."""

    def __init__(self):
        self.held, self.release = threading.Event(), threading.Event()

    def before(self, method, path):
        if method == "PUT" and "partNumber=" in path and not self.held.is_set():
            self.held.set()
            self.release.wait(60)

    def after(self, method, path, status):
        pass


def test_a_worker_killed_mid_multipart_leaves_no_upload_behind(tmp_path, s3):
    """Issue 31: a worker SIGKILLed in the middle of a multipart upload (a chunk over
    ZP_S3_MULTIPART_MB) left that upload in progress for good; its job was rerun, the run
    succeeded, and the parts stayed billed. Now the coordinator lists the uploads under the prefix
    after its workers are gone and aborts those of keys its plan writes; another key's upload stays."""
    nc = tmp_path / "big.nc"
    rng = np.random.default_rng(31)
    data = rng.standard_normal((160, 200, 200)).astype("float32")  # incompressible: 12.8 MB chunks
    xr.Dataset({"v": (("time", "y", "x"), data)},
               coords={"time": np.arange(160), "y": np.arange(200), "x": np.arange(200)}).to_netcdf(nc)
    tmp, scratch = scratch_env(tmp_path)
    gate = HoldFirstPart()
    with S3StandIn(s3, gate=gate) as stand:
        via = boto3.client("s3", endpoint_url=stand.url, aws_access_key_id=s3.KEY,
                           aws_secret_access_key=s3.SECRET, region_name="us-east-1")
        theirs = via.create_multipart_upload(Bucket=BUCKET, Key="mp/s.zarr/theirs.bin")["UploadId"]
        cfg = dict(local_config(s3, "mp/s.zarr"), data_uri=str(nc), num_jobs=2, simultaneous_worker_limit=1,
                   chunks={"time": 80, "y": 200, "x": 200})
        cfg["cache_storage_options"] = dict(cfg["cache_storage_options"], endpoint_url=stand.url)
        cfg_path = tmp_path / "mp.yaml"
        cfg_path.write_text(json.dumps(cfg))
        env = dict(os.environ, ZP_S3_MULTIPART_MB="5", ZP_FAULT_NO_COPIES="1", **scratch)
        run = subprocess.Popen([str(BIN), "cache", str(cfg_path)], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert gate.held.wait(120), "no multipart upload started"
            workers = scratch_workers(tmp)
            assert len(workers) == 1, workers
            os.kill(workers[0], signal.SIGKILL)
            assert none_alive_within(workers, 5)
            gate.release.set()
            out, err = run.communicate(timeout=240)
        finally:
            gate.release.set()
            if run.poll() is None:
                run.kill()
                run.communicate(timeout=60)
        assert run.returncode == 0, err
        listed = via.list_multipart_uploads(Bucket=BUCKET, Prefix="mp/s.zarr/").get("Uploads", [])
    assert [(u["Key"], u["UploadId"]) for u in listed] == [("mp/s.zarr/theirs.bin", theirs)], listed
    assert "aborted 1 multipart upload" in err, err
    completed = [p for m, p in stand.log if m == "POST" and "uploadId=" in p]
    assert len(completed) == 2, completed  # each chunk uploaded whole once: the killed one again
    mapper = fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/mp/s.zarr")
    xr.testing.assert_equal(xr.open_zarr(mapper, consolidated=True).load(), xr.open_dataset(nc).load())


def test_an_overwrite_killed_midway_leaves_no_readable_mix_and_finishes_on_the_next_run(tmp_path, s3):
    """Issue 31: an `overwrite: true` on S3 deletes the old consolidated metadata and completion
    marker before its first chunk, so a coordinator killed midway leaves a store a reader refuses
    (no .zmetadata, no complete.json) rather than old and new chunks mixed; the next run with the
    same config finishes it, equal to a fresh series store of the new selection."""
    need_fixtures()
    run_cache(tmp_path, s3_config(s3, "ser/era5.zarr"), check=0)  # the new config's store, for comparison
    old = local_config(s3, "ow/era5.zarr", variables={"d2m": []})
    run_cache(tmp_path, old, check=0)
    assert "ow/era5.zarr/.zmetadata" in keys(s3, "ow/era5.zarr/")
    cfg = tmp_path / "ow.yaml"
    new = local_config(s3, "ow/era5.zarr", overwrite=True)
    cfg.write_text(json.dumps(new))
    slow = tmp_path / "slept"
    env = dict(os.environ, ZP_FAULT_SLEEP_ONCE=str(slow), ZP_FAULT_SLEEP_SECONDS="60", ZP_FAULT_NO_COPIES="1")
    with open(tmp_path / "coordinator.log", "w") as log:
        coordinator = subprocess.Popen([str(BIN), "cache", str(cfg)], env=env, stdout=log, stderr=log)
    try:
        assert wait_for(lambda: slow.exists(), 120), "no worker reached its chunks"
    finally:
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait(timeout=60)
    names = keys(s3, "ow/era5.zarr/")
    assert "ow/era5.zarr/.zmetadata" not in names and "ow/era5.zarr/.zarr-parallel/complete.json" not in names
    with pytest.raises(Exception):
        xr.open_zarr(fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/ow/era5.zarr"), consolidated=True)
    run_cache(tmp_path, new, check=0)
    assert objects(s3, "ow/era5.zarr/") == objects(s3, "ser/era5.zarr/")
    run_cache(tmp_path, new, command="verify", check=0)

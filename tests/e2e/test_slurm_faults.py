"""SLURM's untested cluster paths (issues 31 and 34), against the real single-node SLURM of
test_slurm.py: a slow array task on a store on S3 whose job a copy finishes, also one hung in a
multipart upload (the upload it leaves aborted); a task whose heartbeats stop (SIGSTOP, not
cancelled by the test) found by the coordinator after worker_timeout, cancelled and its job run
by another task; the Python module's deploy_mode slurm writing to S3. Judged against series /
local runs' stores, xarray reading over plain HTTP, boto3 through an S3 stand-in."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import boto3
import fsspec
import numpy as np
import xarray as xr

from conftest import BIN, ERA5, alive, need_fixtures, run_cache, store_files  # noqa: E402
from test_s3_cluster import body, no_secret_in_bucket, python_env, slurm_config, workers_of  # noqa: E402
from test_s3_modes import HoldFirstPart, assert_same_store_but_config_hash, objects  # noqa: E402
from test_s3_output import BUCKET, S3StandIn, keys, s3_config  # noqa: E402  (BUCKET: conftest's s3 fixture)
from test_slurm import config, find_stopped_task, local_copy, slurm  # noqa: E402,F401  (slurm: the fixture)


# As test_slurm.py's: 6 jobs or more for the 2 array tasks to share.
CHUNKS = {"time": 24, "latitude": 19, "longitude": 36}


def series_store(tmp_path, s3):
    run_cache(tmp_path, s3_config(s3, "ser/era5.zarr", chunks=CHUNKS), check=0)
    return objects(s3, "ser/era5.zarr/")


def uploads_in_progress(stand, prefix):
    """ListMultipartUploads under `prefix`, through the stand-in (s3rver cannot list them)."""
    via = boto3.client("s3", endpoint_url=stand.url, aws_access_key_id=stand.s3.KEY,
                       aws_secret_access_key=stand.s3.SECRET, region_name="us-east-1")
    return via.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])


def test_slow_task_on_s3_gets_a_copy_that_wins(tmp_path, s3, slurm):  # noqa: F811
    """Store on S3, one array task sleeping 150 s in the middle of its first job (its heartbeats,
    PUTs into the prefix, go on): the other task takes the other jobs from the queue in the
    scratch folder, then a copy of the sleeper's job from the done records and heartbeats in the
    bucket, and wins. The run ends long before the sleep would, with series' objects, no upload
    left in progress, no temporary object, the scratch folder removed; verify 0. Fails with the
    copies off (the run waits out the sleep)."""
    need_fixtures()
    series = series_store(tmp_path, s3)
    scratch = tmp_path / "scratch"
    flag = tmp_path / "slept"
    env = dict(slurm, ZP_FAULT_SLEEP_ONCE=str(flag), ZP_FAULT_SLEEP_SECONDS="150")
    with S3StandIn(s3) as stand:  # lists the multipart uploads in progress, as S3 does
        cfg = slurm_config(s3, "slow/era5.zarr", scratch, num_jobs=6, chunks=CHUNKS)
        cfg["cache_storage_options"] = dict(cfg["cache_storage_options"], endpoint_url=stand.url)
        t0 = time.monotonic()
        proc = run_cache(tmp_path, cfg, env=env, check=0)
        seconds = time.monotonic() - t0
        uploads = uploads_in_progress(stand, "slow/")
    print(f"SLURM run on S3 with a task sleeping 150 s: {seconds:.1f} s")
    assert flag.exists(), "the fault was not injected"
    won = re.findall(r"job (\d+): the copy on task (slurm-[0-9_]+) finished first", proc.stderr)
    assert len(won) == 1, proc.stderr
    job, task = won[0]
    done = json.loads(body(s3, f"slow/era5.zarr/.zarr-parallel/jobs/{job}.done"))
    assert done["worker"] == task, done
    assert seconds < 120, (seconds, proc.stderr)
    assert objects(s3, "slow/era5.zarr/") == series
    assert uploads == [], uploads
    assert not [k for k in keys(s3, "slow/") if ".zptmp" in k]
    assert list(scratch.iterdir()) == []  # scripts, queue, logs and secrets: gone with the run
    assert all(w.startswith("slurm-") for w in workers_of(s3, "slow/era5.zarr/"))
    no_secret_in_bucket(s3, "slow/era5.zarr/")
    run_cache(tmp_path, slurm_config(s3, "slow/era5.zarr", scratch, num_jobs=6, chunks=CHUNKS), command="verify", check=0)


def test_task_hung_in_a_multipart_upload_on_s3_is_copied_and_its_upload_aborted(tmp_path, s3, slurm):  # noqa: F811
    """Chunks of 6 MB as multipart uploads (ZP_S3_MULTIPART_MB=5); the first part PUT of the run
    is held at the S3 stand-in, so the task uploading it hangs mid-upload (its heartbeats go on).
    The other task runs the other jobs, then a copy of that one, which wins; the coordinator
    cancels the hung task and, its tasks gone, aborts the upload it left in progress. The store
    reads back as the NetCDF file; each chunk was completed once. Fails without the abort after a
    SLURM run (the upload stays listed) and with the copies off (the run waits for the held part)."""
    nc = tmp_path / "big.nc"
    data = np.random.default_rng(34).standard_normal((360, 160, 160)).astype("float32")  # incompressible
    xr.Dataset({"v": (("time", "y", "x"), data)},
               coords={"time": np.arange(360), "y": np.arange(160), "x": np.arange(160)}).to_netcdf(
        nc, encoding={"v": {"chunksizes": (60, 160, 160)}})  # 6 source chunks: 6 jobs
    scratch = tmp_path / "scratch"
    gate = HoldFirstPart()
    env = dict(slurm, ZP_S3_MULTIPART_MB="5", ZP_HTTP_TIMEOUT="300")  # the held PUT is not retried
    with S3StandIn(s3, gate=gate) as stand:
        cfg = slurm_config(s3, "mps/s.zarr", scratch, data_uri=str(nc), num_jobs=6,
                           chunks={"time": 60, "y": 160, "x": 160})
        cfg["cache_storage_options"] = dict(cfg["cache_storage_options"], endpoint_url=stand.url)
        t0 = time.monotonic()
        try:
            proc = run_cache(tmp_path, cfg, env=env)
        finally:
            seconds = time.monotonic() - t0
            gate.release.set()
        uploads = uploads_in_progress(stand, "mps/")
        completed = [p for m, p in stand.log if m == "POST" and "uploadId=" in p]
    print(f"SLURM run on S3 with a task hung mid-upload: {seconds:.1f} s")
    assert proc.returncode == 0, proc.stderr
    assert gate.held.is_set(), "no multipart upload started"
    assert re.search(r"job \d+: the copy on task slurm-[0-9_]+ finished first", proc.stderr), proc.stderr
    assert "aborted 1 multipart upload" in proc.stderr, proc.stderr
    assert uploads == [], uploads
    assert len(completed) == 6, completed  # each chunk once: the held upload was never completed
    assert seconds < 50, (seconds, proc.stderr)  # the held part is let go after 60 s
    mapper = fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/mps/s.zarr")
    xr.testing.assert_equal(xr.open_zarr(mapper, consolidated=True).load(), xr.open_dataset(nc).load())
    assert list(scratch.iterdir()) == []


def gone_after(pid, deadline):
    """Seconds until process `pid` is gone (polled), or None by `deadline`."""
    t0 = time.monotonic()
    while time.monotonic() < deadline:
        if not alive(pid):
            return time.monotonic() - t0
        time.sleep(0.1)
    return None


def test_task_whose_heartbeats_stop_is_cancelled_and_its_job_run_again(tmp_path, slurm):  # noqa: F811
    """One array task stops itself (SIGSTOP) at its first chunk; nobody cancels it but the
    coordinator, which sees its heartbeat older than worker_timeout (10 s here), cancels it with
    scancel, releases its claim and has another task run the job (copies off: only this path can
    finish it). Exit 0, the local store, verify 0. Without the coordinator's scancel the task stays
    stopped until SLURM's time limit (a minute) ends it (fails on the time)."""
    need_fixtures()
    local = local_copy(tmp_path)
    store = tmp_path / "hung.zarr"
    cfg = config(store, worker_timeout="0:10")
    cfg_path = tmp_path / "hung.yaml"
    cfg_path.write_text(json.dumps(cfg))
    flag = tmp_path / "stopped"
    t0 = time.monotonic()
    proc = subprocess.Popen([str(BIN), "cache", str(cfg_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(slurm, ZP_FAULT_STOP_ONCE=str(flag), ZP_FAULT_NO_COPIES="1"))
    pid = None
    try:
        task, pid = find_stopped_task(store, time.monotonic() + 120)
        assert task, "no array task stopped itself"
        ended = gone_after(pid, time.monotonic() + 90)  # never signalled by this test
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if pid and alive(pid):  # a failed test's stopped task outlives the cluster: never left behind
            os.kill(pid, signal.SIGKILL)
    seconds = time.monotonic() - t0
    print(f"the stopped task ended {ended} s after it stopped; the run took {seconds:.1f} s")
    assert proc.returncode == 0, err
    assert f"task {task}: no heartbeat for 10 s, cancelling it" in err, err
    assert ended is not None and ended < 40, (ended, err)
    assert f"task slurm-{task} (job " in err and "ended without finishing its job" in err, err
    job = int(err.split(f"task slurm-{task} (job ")[1].split(")")[0])
    claim = json.loads((store / ".zarr-parallel" / "slurm" / "queue" / "claims" / str(job)).read_text())
    assert claim["task"] != f"slurm-{task}", claim
    done = json.loads((store / ".zarr-parallel" / "jobs" / f"{job}.done").read_text())
    assert done["worker"] == claim["task"], (done, claim)
    assert store_files(store) == store_files(local)
    assert run_cache(tmp_path, config(store), command="verify").returncode == 0


def test_task_stopped_before_its_first_heartbeat_is_cancelled(tmp_path, slurm):  # noqa: F811
    """The only array task (one worker slot) stops itself as it starts, before writing any heartbeat
    (a task hung on its file system). The coordinator judges a running task without a heartbeat as
    silent from when it first saw it running: after worker_timeout (10 s) it cancels it and starts
    another task; exit 0, the local store. Before, a task without a heartbeat was never judged: the
    run waited for SLURM's time limit (a minute) to end it (fails on the time)."""
    need_fixtures()
    local = local_copy(tmp_path)
    store = tmp_path / "mute.zarr"
    cfg_path = tmp_path / "mute.yaml"
    cfg_path.write_text(json.dumps(config(store, worker_timeout="0:10", simultaneous_worker_limit=1)))
    t0 = time.monotonic()
    proc = subprocess.Popen([str(BIN), "cache", str(cfg_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(slurm, ZP_FAULT_STOP_AT_START=str(tmp_path / "stopped")))
    pid = None
    try:
        task, pid = find_stopped_task(store, time.monotonic() + 120)
        assert task, "no array task stopped itself"
        assert not (store / ".zarr-parallel" / "heartbeats" / f"slurm-{task}.json").exists()
        ended = gone_after(pid, time.monotonic() + 90)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)
    print(f"the mute task ended {ended} s after it stopped; the run took {time.monotonic() - t0:.1f} s")
    assert proc.returncode == 0, err
    assert f"task {task}: no heartbeat for 10 s, cancelling it" in err, err
    assert ended is not None and ended < 40, (ended, err)
    assert store_files(store) == store_files(local)


PY_SLURM = """
import zarr_parallel
zp = zarr_parallel.ZarrParallelAssembler({refs!r}, chunks={chunks!r}, log_level=1)
out = zp.cache(cache_store="s3://{bucket}/{prefix}", cache_storage_options={options!r}, deploy_mode="slurm",
               num_jobs=6, simultaneous_worker_limit=2, memory_limit="300MB", worker_timeout="2:00",
               slurm={slurm!r})
assert out == "s3://{bucket}/{prefix}" and zp.cache_store == out, out
"""


def test_python_slurm_mode_writes_to_s3_what_series_writes(tmp_path, s3, slurm):  # noqa: F811
    """ZarrParallelAssembler.cache(deploy_mode="slurm", cache_store="s3://...") as the original
    examples call it: an sbatch array whose tasks write to the bucket; the store equals the
    command line's series store (but the root attributes naming each config's hash), xarray
    reads the same Dataset over plain HTTP, the scratch folder is removed, no secret in the bucket."""
    need_fixtures()
    scratch = tmp_path / "scratch"
    env = dict(python_env(tmp_path, s3), SLURM_CONF=slurm["SLURM_CONF"])
    series_store(tmp_path, s3)
    script = tmp_path / "py_slurm.py"
    script.write_text(PY_SLURM.format(refs=str(ERA5 / "refs.json"), chunks=CHUNKS, bucket=BUCKET, prefix="pys/era5.zarr",
                                      options=s3.options(),
                                      slurm={"partition": "debug", "extra": ["--nice=0"], "scratch": str(scratch)}))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "submitted SLURM job" in proc.stderr, proc.stderr[-3000:]
    assert "pys/era5.zarr/.zarr-parallel/complete.json" in keys(s3, "pys/")
    assert workers_of(s3, "pys/era5.zarr/") and all(w.startswith("slurm-") for w in workers_of(s3, "pys/era5.zarr/"))
    assert_same_store_but_config_hash(s3, "pys/era5.zarr", "ser/era5.zarr")
    assert list(scratch.iterdir()) == []
    no_secret_in_bucket(s3, "pys/era5.zarr/")
    assert "S3RVER" not in proc.stdout + proc.stderr

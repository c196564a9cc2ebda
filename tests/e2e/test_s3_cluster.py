"""Caches on S3 from deploy_mode slurm, mpi and dask_distributed (issue 31): the workers need only
the plan's URL in the prefix and the SHA-256 their coordinator read; chunks, done records and
heartbeats go to the prefix, SLURM's scripts and logs to a scratch folder. Judged against the
series run's objects (s3rver on loopback, read with boto3) and xarray reading over plain HTTP."""
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest
import xarray as xr

from conftest import BIN, ERA5, need_fixtures, run_cache  # noqa: E402
from test_s3_modes import objects  # noqa: E402
from test_s3_output import BUCKET, keys, s3_config  # noqa: E402
from test_slurm import slurm  # noqa: E402,F401  (the fixture: a real single-node SLURM)
from test_mpi import MPI_ENV, mpi_ready  # noqa: E402

PLAN = ".zarr-parallel/plan.json"


def aws_env(s3):
    """The credentials as a worker's environment gives them (the config then holds none)."""
    return {"AWS_ACCESS_KEY_ID": s3.KEY, "AWS_SECRET_ACCESS_KEY": s3.SECRET, "AWS_ENDPOINT_URL": s3.endpoint}


def body(s3, key):
    return s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()


def no_secret_in_bucket(s3, prefix):
    for key in keys(s3, prefix):
        assert b"S3RVER" not in body(s3, key), key


def workers_of(s3, prefix):
    """The worker named in each done record (written by the worker that ran the job)."""
    done = [k for k in keys(s3, prefix + ".zarr-parallel/") if k.endswith(".done")]
    return {json.loads(body(s3, k))["worker"] for k in done}


def series_store(tmp_path, s3):
    run_cache(tmp_path, s3_config(s3, "ser/era5.zarr"), check=0)
    return objects(s3, "ser/era5.zarr/")


def slurm_config(s3, prefix, scratch, **extra):
    return s3_config(s3, prefix, deploy_mode="slurm", simultaneous_worker_limit=2, memory_limit="300MB",
                     worker_timeout="2:00", slurm={"partition": "debug", "extra": ["--nice=0"], "scratch": str(scratch)},
                     **extra)


def test_slurm_array_on_s3_writes_what_series_writes(tmp_path, s3, slurm):  # noqa: F811
    need_fixtures()
    series = series_store(tmp_path, s3)
    scratch = tmp_path / "scratch"
    proc = run_cache(tmp_path, slurm_config(s3, "sl/era5.zarr", scratch), env=slurm, check=0)
    assert "submitted SLURM job" in proc.stderr, proc.stderr
    assert objects(s3, "sl/era5.zarr/") == series
    assert all(w.startswith("slurm-") for w in workers_of(s3, "sl/era5.zarr/"))
    # The tasks beat into the prefix (what `status` reads); their scripts and logs were in the
    # scratch folder, removed with the completed run; the config's key went by the secrets channel.
    beats = [k for k in keys(s3, "sl/era5.zarr/.zarr-parallel/heartbeats/")]
    assert beats, keys(s3, "sl/era5.zarr/.zarr-parallel/")
    assert list(scratch.iterdir()) == []
    status = subprocess.run([str(BIN), "status", f"s3://{BUCKET}/sl/era5.zarr"], capture_output=True, text=True,
                            env=dict(os.environ, **aws_env(s3)), timeout=60)
    assert status.returncode == 0 and "slurm-" in status.stdout, status.stdout + status.stderr
    no_secret_in_bucket(s3, "sl/era5.zarr/")
    assert "S3RVER" not in proc.stdout + proc.stderr
    mapper = fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/sl/era5.zarr")
    series_ds = xr.open_zarr(fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/ser/era5.zarr"), consolidated=True).load()
    xr.testing.assert_identical(xr.open_zarr(mapper, consolidated=True).load(), series_ds)
    run_cache(tmp_path, slurm_config(s3, "sl/era5.zarr", scratch), command="verify", check=0)


def test_slurm_on_s3_submitted_then_resumed_with_status_and_no_secrets_in_scripts(tmp_path, s3, slurm):  # noqa: F811
    need_fixtures()
    series = series_store(tmp_path, s3)
    scratch = tmp_path / "scratch"
    cfg = slurm_config(s3, "later/era5.zarr", scratch, await_completion=False)
    proc = run_cache(tmp_path, cfg, env=slurm, check=0)
    assert "squeue -j" in proc.stderr and f"s3://{BUCKET}/later/era5.zarr" in proc.stderr, proc.stderr
    [run] = list(scratch.iterdir())
    scripts = sorted(run.glob(".zarr-parallel/slurm/submit-*.sh"))
    assert scripts
    for script in scripts:
        text = script.read_text()
        assert f"s3://{BUCKET}/later/era5.zarr/{PLAN}" in text and "--plan-sha256" in text, text
        assert "S3RVER" not in text, text
    status = subprocess.run([str(BIN), "status", f"s3://{BUCKET}/later/era5.zarr"], capture_output=True, text=True,
                            env=dict(os.environ, **aws_env(s3)), timeout=60)
    assert status.returncode in (0, 1) and "jobs" in status.stdout, status.stdout + status.stderr
    proc = run_cache(tmp_path, dict(cfg, await_completion=True, resume=True), env=slurm, check=0)
    assert "following SLURM job" in proc.stderr or "0 jobs" in proc.stderr or "resuming" in proc.stderr, proc.stderr
    assert "later/era5.zarr/.zarr-parallel/complete.json" in keys(s3, "later/")
    assert objects(s3, "later/era5.zarr/") == series
    logs = "".join(p.read_text(errors="replace") for p in scratch.rglob("*.log"))
    assert "S3RVER" not in logs
    no_secret_in_bucket(s3, "later/era5.zarr/")
    run_cache(tmp_path, cfg, command="verify", check=0)


def test_slurm_task_killed_midway_is_run_again_and_the_s3_store_equals_series(tmp_path, s3, slurm):  # noqa: F811
    need_fixtures()
    series = series_store(tmp_path, s3)
    flag = tmp_path / "killed"
    # Copies off: the other array task would otherwise copy the killed task's job (SLURM's queue).
    env = dict(slurm, ZP_FAULT_KILL_ONCE=str(flag), ZP_FAULT_AFTER_CHUNKS="2", ZP_FAULT_NO_COPIES="1")
    proc = run_cache(tmp_path, slurm_config(s3, "kill/era5.zarr", tmp_path / "scratch"), env=env, check=0)
    assert flag.exists(), "the fault was not injected"
    assert "running it again" in proc.stderr, proc.stderr
    assert objects(s3, "kill/era5.zarr/") == series
    run_cache(tmp_path, slurm_config(s3, "kill/era5.zarr", tmp_path / "scratch"), command="verify", check=0)


def mpirun(cfg_path, ranks, env=None):
    return subprocess.run(["mpirun", "-n", str(ranks), str(BIN), "cache", str(cfg_path), "--set", "deploy_mode=mpi"],
                          capture_output=True, text=True, env=dict(MPI_ENV, **(env or {})), timeout=300)


def test_mpi_ranks_write_to_s3_what_series_writes_and_a_killed_rank_resumes(tmp_path, s3):
    need_fixtures()
    mpi_ready()
    series = series_store(tmp_path, s3)
    cfg_path = tmp_path / "mpi.yaml"
    cfg_path.write_text(json.dumps(s3_config(s3, "mpi/era5.zarr")))
    proc = mpirun(cfg_path, 3)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert objects(s3, "mpi/era5.zarr/") == series
    assert workers_of(s3, "mpi/era5.zarr/") == {"mpi-rank-1", "mpi-rank-2"}
    no_secret_in_bucket(s3, "mpi/era5.zarr/")
    assert "S3RVER" not in proc.stdout + proc.stderr
    run_cache(tmp_path, s3_config(s3, "mpi/era5.zarr"), command="verify", check=0)
    # A rank killed mid-job ends the whole mpirun; the next one resumes the store (its lease, left
    # behind by the killed coordinator, expires first).
    flag = tmp_path / "killed"
    cfg_path.write_text(json.dumps(s3_config(s3, "mpk/era5.zarr")))
    fault = {"ZP_FAULT_KILL_ONCE": str(flag), "ZP_FAULT_AFTER_CHUNKS": "2", "ZP_S3_LEASE_SECONDS": "3"}
    proc = mpirun(cfg_path, 3, fault)
    assert flag.exists(), "the fault was not injected"
    assert proc.returncode != 0
    assert "mpk/era5.zarr/.zarr-parallel/complete.json" not in keys(s3, "mpk/")
    time.sleep(4)
    proc = mpirun(cfg_path, 3, {"ZP_S3_LEASE_SECONDS": "3"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resuming" in proc.stderr, proc.stderr
    assert objects(s3, "mpk/era5.zarr/") == series
    run_cache(tmp_path, s3_config(s3, "mpk/era5.zarr"), command="verify", check=0)


def python_env(tmp_path, s3, **extra):
    module_dir = Path(BIN).parent.parent / "python"
    if not list(module_dir.glob("zarr_parallel/_zarr_parallel*.so")):
        pytest.skip("the Python module is not built here (sanitizer builds leave it out)")
    return dict(os.environ, PYTHONPATH=str(module_dir), **extra)


DASK_SCRIPT = """
import sys
import zarr_parallel
if __name__ == "__main__":
    zp = zarr_parallel.ZarrParallelAssembler({refs!r}, log_level=1)
    out = zp.cache(cache_store="s3://{bucket}/{prefix}", cache_storage_options={options!r},
                   deploy_mode="dask_distributed", num_jobs=4, simultaneous_worker_limit=2, memory_limit="1GB")
    assert out == "s3://{bucket}/{prefix}", out
"""


def test_dask_tasks_write_to_s3_with_credentials_from_their_environment(tmp_path, s3):
    """One dask worker is killed mid-job (dask runs its task again): the store still equals series."""
    need_fixtures()
    flag = tmp_path / "killed"
    env = python_env(tmp_path, s3, **aws_env(s3))
    fault = dict(env, ZP_FAULT_KILL_ONCE=str(flag), ZP_FAULT_AFTER_CHUNKS="2")
    run_cache(tmp_path, s3_config(s3, "ser/era5.zarr"), check=0)
    script = tmp_path / "dask_s3.py"
    script.write_text(DASK_SCRIPT.format(refs=str(ERA5 / "refs.json"), bucket=BUCKET, prefix="dk/era5.zarr",
                                         options={"endpoint_url": s3.endpoint}))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=fault, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert flag.exists(), "the fault was not injected"
    py, cli = objects(s3, "dk/era5.zarr/"), objects(s3, "ser/era5.zarr/")
    root = {".zattrs", ".zmetadata"}  # the root attributes name each config's hash
    assert {k: v for k, v in py.items() if k not in root} == {k: v for k, v in cli.items() if k not in root}
    assert all(w.startswith("dask-") for w in workers_of(s3, "dk/era5.zarr/"))
    assert "dk/era5.zarr/.zarr-parallel/complete.json" in keys(s3, "dk/")
    no_secret_in_bucket(s3, "dk/era5.zarr/")
    assert "S3RVER" not in proc.stdout + proc.stderr
    verify = s3_config(s3, "dk/era5.zarr", cache_storage_options={"endpoint_url": s3.endpoint})
    # Every chunk as the source has it; the only difference from the CLI's config is its hash.
    checked = run_cache(tmp_path, verify, command="verify", env=aws_env(s3)).stdout
    assert " 0 different" in checked, checked
    differences = [line for line in checked.splitlines()[1:] if line.strip()]
    assert differences and all("zarr_parallel_config_hash" in d or "'.zattrs' differs" in d for d in differences), checked
    # Secrets in the config would have to travel in the tasks: refused, nothing written.
    script.write_text(DASK_SCRIPT.format(refs=str(ERA5 / "refs.json"), bucket=BUCKET, prefix="dks/era5.zarr",
                                         options=s3.options()))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode != 0 and "own environment" in proc.stderr, proc.stderr[-3000:]
    assert keys(s3, "dks/") == []


def test_a_worker_reads_a_plan_on_s3_only_with_its_coordinators_digest(tmp_path, s3):
    """The plan in the bucket is untrusted: a worker reads it only with the SHA-256 its coordinator
    handed it, so one rewritten to read a local file of the worker's host (its digest in state.json
    rewritten too) is refused whole; without a digest nothing is read."""
    need_fixtures()
    run_cache(tmp_path, s3_config(s3, "w/era5.zarr"), check=0)
    url = f"s3://{BUCKET}/w/era5.zarr/{PLAN}"
    text = body(s3, f"w/era5.zarr/{PLAN}")
    digest = hashlib.sha256(text).hexdigest()
    env = dict(os.environ, **aws_env(s3))
    options = json.dumps({"endpoint_url": s3.endpoint})

    def worker(*args):
        return subprocess.run([str(BIN), "worker", url, "0", "--store-options", options, *args], capture_output=True,
                              text=True, env=env, timeout=120)
    ok = worker("--plan-sha256", digest)
    assert ok.returncode == 0, ok.stderr  # job 0 is done: nothing to do
    missing = worker()
    assert missing.returncode == 2 and "--plan-sha256" in missing.stderr, missing.stderr
    secret = subprocess.run([str(BIN), "worker", url, "0", "--plan-sha256", digest, "--store-options",
                             json.dumps(s3.options())], capture_output=True, text=True, env=env, timeout=60)
    assert secret.returncode == 2 and "secret" in secret.stderr and "S3RVER" not in secret.stderr, secret.stderr
    mine = tmp_path / "private.nc"
    mine.write_bytes(b"not for the bucket's writer")
    edited = text.replace(str(ERA5).encode(), str(tmp_path).encode())
    assert edited != text
    s3.client().put_object(Bucket=BUCKET, Key=f"w/era5.zarr/{PLAN}", Body=edited)
    state = json.loads(body(s3, "w/era5.zarr/.zarr-parallel/state.json"))
    state["plan_sha256"] = hashlib.sha256(edited).hexdigest()
    s3.client().put_object(Bucket=BUCKET, Key="w/era5.zarr/.zarr-parallel/state.json", Body=json.dumps(state))
    s3.client().delete_object(Bucket=BUCKET, Key="w/era5.zarr/.zarr-parallel/jobs/0.done")
    refused = worker("--plan-sha256", digest)
    assert refused.returncode == 5 and "changed after the run's coordinator read it" in refused.stderr, refused.stderr
    assert not any(k.endswith("jobs/0.done") for k in keys(s3, "w/era5.zarr/"))

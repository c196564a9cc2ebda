"""What review 16 left open (session 17): a store's forged done records are read only for the
plan's jobs; an S3 listing stops at the bound it was asked for; Zarr v3 group metadata follows the
must-understand rule; log lines show source names escaped; a server that sends neither ETag nor
Last-Modified is never a cache hit unless the config says assume_unchanged. Each test runs the
binary on the hostile input and checks the outcome with xarray or the server's own counts."""
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, ERA5, SAMPLE_BIN, need_fixtures, run_cache, store_files  # noqa: E402
from servers import FileServer, HostileS3  # noqa: E402

SANITIZED = BIN.exists() and b"__asan_init" in BIN.read_bytes()


def limited(gigabytes):
    def apply():
        if not SANITIZED:
            resource.setrlimit(resource.RLIMIT_AS, (gigabytes << 30, gigabytes << 30))
    return apply


def run(*args, cwd=None, env=None, gigabytes=3, timeout=300):
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, **(env or {})), timeout=timeout, errors="replace",
                          preexec_fn=limited(gigabytes))


def sample(folder, files=2):
    subprocess.run([str(SAMPLE_BIN), "--out", str(folder), "--prefix", "d_", "--files", str(files),
                    "--steps", "4", "--lat", "9", "--lon", "12"], check=True, capture_output=True)
    return folder


def sample_store(tmp_path, **extra):
    """A complete series-mode store of two sample files; its plan's job count."""
    sample(tmp_path / "data")
    (tmp_path / "c.yaml").write_text(json.dumps({
        "data_uri": "data/d_*.nc", "cache_store": "out.zarr", "recommend_changes": False,
        "deploy_mode": "series", "num_jobs": 3, **extra}))
    proc = run("cache", "c.yaml", "--yes", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads((tmp_path / "out.zarr/.zarr-parallel/plan.json").read_text())
    return tmp_path / "out.zarr", len(plan["jobs"])


def big_json_record(path, megabytes):
    """A valid JSON object of `megabytes` MB (one long string)."""
    with open(path, "w") as f:
        f.write('{"bytes_read": 1, "pad": "')
        f.write("x" * (megabytes << 20))
        f.write('"}')


# 1. Done records: only the plan's jobs, each small, are read.

def test_stats_read_only_the_plans_done_records(tmp_path):
    """Before: stats.json's per_job held every forged record (ids beyond the plan, a 3 MB one),
    and a record that is a JSON array ended the run with an internal error."""
    store, jobs = sample_store(tmp_path, generate_stats=True)
    side = store / ".zarr-parallel"
    (side / "complete.json").unlink()  # an interrupted store of this config: continued
    for i in range(jobs, jobs + 50):
        (side / f"jobs/{i}.done").write_text('{"bytes_read": 1000000000, "worker": "forged"}')
    (side / "jobs/0.done").write_text("[]")
    big_json_record(side / "jobs/1.done", 3)
    proc = run("cache", "c.yaml", "--yes", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((side / "stats.json").read_text())
    assert all(j.get("worker") != "forged" and j.get("job", 0) < jobs for j in stats["per_job"]), stats
    assert len(stats["per_job"]) == jobs - 2, stats["per_job"]  # jobs 0 and 1: records not read
    assert stats["bytes_read"] < 1000000000
    assert (side / "stats.json").stat().st_size < 100_000
    assert xr.open_zarr(store)["t2m"].shape[0] == 8


def test_verify_of_an_incomplete_store_does_not_read_its_done_records(tmp_path):
    """Before: verify read every N.done of the store into memory (40 links to one 40 MB record:
    1.6 GB) to count them for its message; under a 1 GB address-space limit it died."""
    store, jobs = sample_store(tmp_path)
    side = store / ".zarr-parallel"
    (side / "complete.json").unlink()
    big_json_record(tmp_path / "big.json", 40)
    for i in range(jobs, jobs + 40):
        os.link(tmp_path / "big.json", side / f"jobs/{i}.done")
    t0 = time.monotonic()
    proc = run("verify", "c.yaml", cwd=tmp_path, gigabytes=1)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert f"is incomplete ({jobs + 40} jobs done" in proc.stderr, proc.stderr
    assert time.monotonic() - t0 < 30


# 2. An S3 listing stops at its bound.

def s3_status(tmp_path, **server):
    """`status s3://bkt/store` of a real store's side folder behind a hostile listing."""
    store, jobs = sample_store(tmp_path)
    bucket = tmp_path / "s3" / "bkt" / "store"
    shutil.copytree(store / ".zarr-parallel", bucket / ".zarr-parallel")
    (bucket / ".zarr-parallel/store.json").write_text('{"store_id": "x"}')
    home = tmp_path / "home"
    home.mkdir()
    with HostileS3(tmp_path / "s3", **server) as s3:
        t0 = time.monotonic()
        proc = run("status", "s3://bkt/store", "--json", env={
            "AWS_ENDPOINT_URL": s3.endpoint, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
            "HOME": str(home), "ZP_HTTP_RETRIES": "0"}, gigabytes=2)
        return proc, s3.pages, time.monotonic() - t0, jobs


@pytest.mark.parametrize("how", ["declared", "undeclared", "slow"])
def test_s3_bookkeeping_read_stops_at_its_bound(tmp_path, how):
    """Before: S3Writer::get_at_most read the whole answer, then checked its size: a heartbeat
    answered with an endless body was read up to ZP_HTTP_MAX_DOCUMENT_MB (512 MB sent, held in
    memory) and status ended with exit 5 for a record it reads at most 64 KiB of. Now the read
    stops at the bound (a Content-Length over it: before the body) and the heartbeat reads as
    absent, as a planted large heartbeat in a folder store does."""
    store, jobs = sample_store(tmp_path)
    bucket = tmp_path / "s3" / "bkt" / "store"
    shutil.copytree(store / ".zarr-parallel", bucket / ".zarr-parallel")
    (bucket / ".zarr-parallel/store.json").write_text('{"store_id": "x"}')
    (bucket / ".zarr-parallel/heartbeats/w.json").write_text("{}")  # listed; its GET never ends
    home = tmp_path / "home"
    home.mkdir()
    with HostileS3(tmp_path / "s3", per_page=0,
                   endless={"/bkt/store/.zarr-parallel/heartbeats/w.json": how}) as s3:
        t0 = time.monotonic()
        proc = subprocess.run(["/usr/bin/time", "-v", str(BIN), "status", "s3://bkt/store", "--json"],
                              capture_output=True, text=True, timeout=300, errors="replace", env=dict(
                                  os.environ, AWS_ENDPOINT_URL=s3.endpoint, AWS_ACCESS_KEY_ID="",
                                  AWS_SECRET_ACCESS_KEY="", HOME=str(home), ZP_HTTP_RETRIES="0"))
        seconds = time.monotonic() - t0
    rss_mb = [int(line.split(":")[1]) for line in proc.stderr.splitlines() if "Maximum resident" in line][0] / 1024
    assert proc.returncode == 0, proc.stderr[-2000:]
    status = json.loads(proc.stdout)
    assert status["jobs_done"] == jobs and status["complete"], status
    assert [b.get("worker") for b in status["heartbeats"]] == ["series"], status["heartbeats"]
    # Read no further than 64 KiB: what the kernel's socket buffers took besides is a few MB.
    assert s3.sent < 32 << 20, s3.sent
    assert rss_mb < 400, rss_mb
    assert seconds < 60, seconds


def test_s3_status_listing_stops_at_its_bound(tmp_path):
    """Before: each listing paged until the server stopped (2,000 pages of 1,000 keys for jobs/,
    as many for heartbeats/); now at most the plan's jobs + 100,000 names, 1,000 a page."""
    proc, pages, seconds, jobs = s3_status(tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert pages <= 2 * 101 + 2, pages
    status = json.loads(proc.stdout)
    assert status["jobs_done"] == 0, status  # forged names, none of a plan job's


def test_s3_listing_page_too_large_is_refused(tmp_path):
    """Before: a 20 MB listing page was read (up to ZP_HTTP_MAX_DOCUMENT_MB, 512 MB, each)."""
    proc, pages, seconds, jobs = s3_status(tmp_path, per_page=300_000, max_pages=3)
    assert proc.returncode != 0, proc.stdout[-500:]
    assert "s3://bkt/store/.zarr-parallel/jobs" in proc.stderr and "listing page over" in proc.stderr, \
        proc.stderr[-2000:]
    assert pages == 1


# 3. Zarr v3 groups: fields that must be understood.

V3_ARRAY = {"zarr_format": 3, "node_type": "array", "shape": [4], "data_type": "float64",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0, "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
            "attributes": {}, "dimension_names": ["t"]}


def v3_group_store(root, root_extra=None, sub_extra=None):
    """A v3 root group holding array x and group g (with its own array x)."""
    for folder, extra in ((root, root_extra), (root / "g", sub_extra)):
        (folder / "x" / "c").mkdir(parents=True)
        (folder / "zarr.json").write_text(json.dumps(
            {"zarr_format": 3, "node_type": "group", "attributes": {}, **(extra or {})}))
        (folder / "x" / "zarr.json").write_text(json.dumps(V3_ARRAY))
        (folder / "x" / "c" / "0").write_bytes(struct.pack("<4d", 1, 2, 3, 4))
    return root


@pytest.mark.parametrize("where", ["root", "subgroup", "parent"])
@pytest.mark.parametrize("field,value,shown", [
    ("storage_transformers", [{"name": "some_unknown_transformer", "configuration": {}}],
     "some_unknown_transformer"),
    ("some_extension", {"must_understand": True, "name": "scale_by_1000"}, "some_extension"),
])
def test_v3_group_fields_not_understood_are_refused(tmp_path, where, field, value, shown):
    """Before: exit 0, the group's extension ignored. 'parent': the root group has it and the
    config reads subgroup g."""
    src = v3_group_store(tmp_path / "src.zarr", root_extra={field: value} if where != "subgroup" else None,
                         sub_extra={field: value} if where == "subgroup" else None)
    out = tmp_path / "out.zarr"
    cfg = {"data_uri": str(src), "cache_store": str(out), "recommend_changes": False, "deploy_mode": "series"}
    if where != "root":
        cfg["group"] = "g"
    p = run_cache(tmp_path, cfg, "--yes")
    assert p.returncode == 4, (p.returncode, p.stderr)
    named = "zarr.json" if where == "parent" or where == "root" else "g/zarr.json"
    assert str(src) in p.stderr and named in p.stderr and shown in p.stderr, p.stderr
    assert not out.exists()


def test_v3_group_with_optional_fields_is_read(tmp_path):
    """zarr-python 3 writes "consolidated_metadata": null into a group it did not consolidate; a
    field with must_understand: false is ignored."""
    src = v3_group_store(tmp_path / "src.zarr", root_extra={
        "consolidated_metadata": None, "storage_transformers": [],
        "some_extension": {"must_understand": False}})
    out = tmp_path / "out.zarr"
    run_cache(tmp_path, {"data_uri": str(src), "cache_store": str(out), "recommend_changes": False,
                         "deploy_mode": "series"}, "--yes", check=0)
    np.testing.assert_array_equal(xr.open_zarr(out)["x"].values, [1, 2, 3, 4])


# 4. Log lines name files from the source: escaped.

def test_log_lines_escape_source_file_names(tmp_path):
    """Before: the run's first line (the decision, naming the new file) reached the terminal with
    the file name's escapes raw (retitle the window, clear the screen)."""
    sample_store(tmp_path)
    hostile = tmp_path / "data" / "d_\x1b]0;PWNED\x07\x1b[2J.nc"
    shutil.copy(sorted((tmp_path / "data").glob("d_*.nc"))[-1], hostile)
    proc = run("cache", "c.yaml", "--yes", cwd=tmp_path)
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr, proc.stderr
    assert "d_\\x1b]0;PWNED\\x07\\x1b[2J.nc" in proc.stderr, proc.stderr


# 5. A server without ETag and Last-Modified: never a cache hit unless assume_unchanged.

def test_source_without_versions_is_no_cache_hit(tmp_path):
    """Before: the second run was a cache hit on the size alone (a same-size replacement kept the
    old values). Now a rebuild naming the reference set; with assume_unchanged: true, a hit."""
    need_fixtures()
    shutil.copytree(ERA5, tmp_path / "www" / "era5")
    refs = json.loads((ERA5 / "refs.json").read_text())
    with FileServer(tmp_path / "www", versions=False) as srv:
        refs["refs"] = {k: ([f"{srv.url}/era5/{v[0]}"] + v[1:] if isinstance(v, list) else v)
                        for k, v in refs["refs"].items()}
        (tmp_path / "www" / "era5" / "r.json").write_text(json.dumps(refs))
        cfg = {"data_uri": f"{srv.url}/era5/r.json", "cache_store": str(tmp_path / "o.zarr"),
               "recommend_changes": False, "deploy_mode": "series"}
        run_cache(tmp_path, cfg, check=0)
        first = store_files(tmp_path / "o.zarr")
        again = run_cache(tmp_path, cfg, check=0)
        assert "cache hit" not in again.stderr, again.stderr
        assert "rebuild" in again.stderr and f"{srv.url}/era5/r.json" in again.stderr, again.stderr
        assert "came without ETag or Last-Modified" in again.stderr, again.stderr
        assert store_files(tmp_path / "o.zarr") == first
        trusted = run_cache(tmp_path, dict(cfg, assume_unchanged=True), check=0)
        assert "cache hit" in trusted.stderr, trusted.stderr

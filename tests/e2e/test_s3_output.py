"""Caches written to S3 (issue 31), the writing half: the S3Writer store (src/store/s3_writer.*)
against s3rver on loopback, and against an S3 stand-in in front of it that honours If-None-Match
(s3rver 3.7 does not) and injects faults for real (500s, a corrupted body that no longer matches
its Content-MD5, a multipart part that keeps failing). The writer is driven by the unit-test
binary's S3Writer tests (skipped when run alone); what they leave in the bucket is judged here,
with boto3 and with xarray reading the uploaded store over plain HTTP (fsspec), not our reader."""
import http.client
import http.server
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import botocore.exceptions
import fsspec
import numpy as np
import pytest
import xarray as xr

from conftest import BIN, ERA5, need_fixtures, open_kerchunk, run_cache  # noqa: E402
from servers import LoopbackHttp, S3rver, free_port  # noqa: E402

UNIT = Path(os.environ.get("ZP_UNIT_BIN") or Path(BIN).parent / "zp_unit_tests")
BUCKET = "out"
HOP = ("connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection")


class S3StandIn(LoopbackHttp):
    """Forwards every request to s3rver as it came (method, path, headers with the signed Host,
    body), honours `If-None-Match: *` on PUT (412 when the key exists; checked and put under one
    lock, so atomic here), and injects faults: fault(method, path, n) -> None, "500" (answered
    without forwarding) or "corrupt" (one body byte flipped on the way: Content-MD5 no longer
    matches) or "slow" (answered after 6 s). Records (method, path) of every request in `.log`."""

    def __init__(self, s3, fault=None):
        self.s3 = s3
        self.upstream_port = s3.port
        self.fault = fault or (lambda method, path, n: None)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.log = []

    def upstream(self, method, path, headers, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers:
            if k.lower() not in HOP:
                conn.putheader(k, v)
        conn.endheaders(body or None)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, r.getheaders(), data

    def __enter__(self):
        stand = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, headers, body):
                self.send_response(status)
                head = self.command == "HEAD"
                for k, v in headers:
                    if k.lower() not in HOP + ("date", "server") + (() if head else ("content-length",)):
                        self.send_header(k, v)
                if not head:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _conditional(self, headers, body):
                bucket, key = unquote(self.path.split("?")[0]).lstrip("/").split("/", 1)
                with stand.lock:  # the check and the put as one step
                    try:
                        stand.s3.client().head_object(Bucket=bucket, Key=key)
                        return 412, [], b"<Error><Code>PreconditionFailed</Code></Error>"
                    except botocore.exceptions.ClientError:
                        pass
                    return stand.upstream("PUT", self.path, headers, body)

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stand.lock:
                    n = len(stand.log)
                    stand.log.append((self.command, self.path))
                    fault = stand.fault(self.command, self.path, n)
                if fault == "slow":
                    time.sleep(6)  # a long job: outside the lock, other requests go on
                if fault == "500":
                    return self._reply(500, [], b"<Error><Code>InternalError</Code></Error>")
                if fault == "corrupt" and body:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                headers = list(self.headers.items())
                if self.command == "PUT" and self.headers.get("If-None-Match") == "*":
                    return self._reply(*self._conditional(headers, body))
                self._reply(*stand.upstream(self.command, self.path, headers, body))

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _any

        return self.serve(Handler)


def run_unit(name, endpoint, prefix, **env):
    full = dict(os.environ, ZP_TEST_S3_ENDPOINT=endpoint, ZP_TEST_S3_BUCKET=BUCKET, ZP_TEST_S3_PREFIX=prefix,
                ZP_HTTP_RETRIES=env.pop("retries", "2"), **env)
    proc = subprocess.run([str(UNIT), f"--gtest_filter=S3Writer.{name}"], capture_output=True, text=True,
                          env=full, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[  SKIPPED ]" not in proc.stdout, proc.stdout
    return proc.stdout + proc.stderr


@pytest.fixture
def s3(tmp_path):
    with S3rver(tmp_path / "s3") as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


def keys(s3, prefix):
    out = s3.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in out.get("Contents", []))


def test_put_get_list_delete_and_what_if_none_match_does(s3):
    out = run_unit("PutGetListDeleteAndPutIfAbsent", s3.endpoint, "plain")
    assert "conditional puts honoured: no" in out  # s3rver 3.7.1 ignores If-None-Match: said
    assert keys(s3, "plain/") == ["plain/a/c", "plain/lease"]  # the probe object was deleted
    with S3StandIn(s3) as stand:
        out = run_unit("PutGetListDeleteAndPutIfAbsent", stand.url, "conditional")
    assert "conditional puts honoured: yes" in out
    body = s3.client().get_object(Bucket=BUCKET, Key="conditional/lease")["Body"].read()
    assert body == b"one"  # the second creator was refused, the first one's value kept


def test_a_prefix_is_claimed_leased_and_a_foreign_one_refused(s3):
    run_unit("ClaimAndLease", s3.endpoint, "claimed.zarr")  # s3rver: leases not exclusive
    with S3StandIn(s3) as stand:
        run_unit("ClaimAndLease", stand.url, "claimed2.zarr")  # If-None-Match: a held lease refuses
    assert keys(s3, "foreign/") == ["foreign/data.bin"]  # the foreign object untouched, no marker
    for prefix in ("claimed.zarr/", "claimed2.zarr/"):
        assert keys(s3, prefix) == [prefix + ".zarr-parallel/store.json"]  # lease released


def test_a_store_uploaded_in_batches_reads_back_with_xarray_over_http(tmp_path, s3):
    need_fixtures()
    store = tmp_path / "k.zarr"
    run_cache(tmp_path, {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(store),
                         "deploy_mode": "local"}, check=0)
    with S3StandIn(s3) as stand:
        out = run_unit("BatchUploadsAStore", stand.url, "era5.zarr", ZP_TEST_S3_FOLDER=str(store))
    puts = [p for m, p in stand.log if m == "PUT"]
    files = [p for p in store.rglob("*") if p.is_file()]
    assert f"uploaded {len(files)} objects" in out
    assert len(puts) == len(files)  # one request an object: no retries, no probes
    # zarr-python through fsspec's HTTP file system: plain GETs, nothing of ours.
    mapper = fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/era5.zarr")
    remote = xr.open_zarr(mapper, consolidated=True)
    xr.testing.assert_identical(remote.load(), xr.open_zarr(store).load())
    xr.testing.assert_allclose(remote.load(), open_kerchunk(ERA5 / "refs.json").load())
    for key in keys(s3, "era5.zarr/"):
        body = s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert b"S3RVER" not in body, key  # no credential in any object
    assert "S3RVER" not in out


def test_large_objects_go_as_multipart_uploads(s3):
    with S3StandIn(s3) as stand:
        run_unit("LargeObjectsGoAsMultipartUploads", stand.url, "mp")
    methods = [(m, p.split("?")[1] if "?" in p else "") for m, p in stand.log if "/big/shard" in p]
    assert methods[0] == ("POST", "uploads=")
    parts = [q for m, q in methods if m == "PUT"]
    assert len(parts) == 3 and all(q.startswith("partNumber=") for q in parts)  # 5 + 5 + 2 MiB
    assert methods[4][0] == "POST" and methods[4][1].startswith("uploadId=")
    assert s3.client().head_object(Bucket=BUCKET, Key="mp/big/shard")["ContentLength"] == (12 << 20) + 17


def fault_run(s3, fault, what, retries="2"):
    with S3StandIn(s3, fault) as stand:
        out = run_unit("InjectedFaults", stand.url, what, ZP_TEST_S3_FAULT=what, retries=retries)
    return out, stand.log


def test_server_500s_are_retried_and_the_object_is_whole(s3):
    first_two = lambda m, p, n: "500" if m == "PUT" and n < 2 else None  # noqa: E731
    out, log = fault_run(s3, first_two, "flaky")
    assert "put: ok" in out
    assert [m for m, _ in log].count("PUT") == 3


def test_a_body_changed_on_the_way_is_put_again_or_refused_and_never_left(s3):
    # s3rver ignores Content-MD5 and stores the changed body: the writer sees it by the ETag.
    once = lambda m, p, n: "corrupt" if m == "PUT" and n == 0 else None  # noqa: E731
    out, log = fault_run(s3, once, "corrupt-once")
    assert "put: ok" in out, out
    assert [m for m, _ in log].count("PUT") == 2
    out, log = fault_run(s3, lambda m, p, n: "corrupt" if m == "PUT" else None, "corrupt")
    assert "put: error 5:" in out and "other bytes than were sent" in out, out
    assert [m for m, _ in log].count("PUT") == 3  # ZP_HTTP_RETRIES=2
    assert keys(s3, "corrupt/") == []  # the wrong object deleted
    assert "S3RVER" not in out


def test_a_multipart_upload_that_keeps_failing_is_aborted(s3):
    part2 = lambda m, p, n: "500" if m == "PUT" and "partNumber=2" in p else None  # noqa: E731
    out, log = fault_run(s3, part2, "multipart", retries="1")
    assert "put: error 8:" in out, out  # Transient, after the retries
    assert any(m == "DELETE" and "uploadId=" in p for m, p in log), log  # aborted: no orphan parts
    assert keys(s3, "multipart/") == []


def test_a_multipart_part_changed_on_the_way_is_refused_and_the_upload_aborted(s3):
    part1 = lambda m, p, n: "corrupt" if m == "PUT" and "partNumber=1" in p else None  # noqa: E731
    out, log = fault_run(s3, part1, "multipart")
    assert "put: error 5:" in out and "part 1 of its multipart upload" in out, out
    assert any(m == "DELETE" and "uploadId=" in p for m, p in log), log
    assert not any(m == "POST" and "uploadId=" in p for m, p in log), log  # never completed
    assert keys(s3, "multipart/") == []


# The CLI with cache_store on S3 (series mode): the whole run through the Writable interface.

def s3_config(s3, prefix, **extra):
    return {"data_uri": str(ERA5 / "refs.json"), "cache_store": f"s3://{BUCKET}/{prefix}",
            "cache_storage_options": s3.options(), "deploy_mode": "series", "num_jobs": 4, **extra}


def test_cache_to_s3_reads_back_hits_and_keeps_credentials_out(tmp_path, s3):
    need_fixtures()
    local = tmp_path / "local.zarr"
    run_cache(tmp_path, {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(local),
                         "deploy_mode": "series", "num_jobs": 4}, check=0)
    proc = run_cache(tmp_path, s3_config(s3, "c/era5.zarr"), check=0)
    mapper = fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/c/era5.zarr")
    xr.testing.assert_identical(xr.open_zarr(mapper, consolidated=True).load(), xr.open_zarr(local).load())
    names = keys(s3, "c/era5.zarr/")
    assert "c/era5.zarr/.zarr-parallel/complete.json" in names
    assert "c/era5.zarr/.zarr-parallel/lease.json" not in names  # released
    data = {k[len("c/era5.zarr/"):] for k in names if "/.zarr-parallel/" not in k}
    assert data == {str(p.relative_to(local)) for p in local.rglob("*")
                    if p.is_file() and ".zarr-parallel" not in p.parts}
    for key in names:
        assert b"S3RVER" not in s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read(), key
    assert "S3RVER" not in proc.stdout + proc.stderr
    again = run_cache(tmp_path, s3_config(s3, "c/era5.zarr"), check=0)
    assert "cache hit" in again.stderr + again.stdout
    # verify reads the store on S3 and finds a changed object.
    run_cache(tmp_path, s3_config(s3, "c/era5.zarr"), command="verify", check=0)
    chunk = next(k for k in sorted(data) if k.startswith("d2m/") and not k.endswith((".zarray", ".zattrs")))
    body = s3.client().get_object(Bucket=BUCKET, Key="c/era5.zarr/" + chunk)["Body"].read()
    s3.client().put_object(Bucket=BUCKET, Key="c/era5.zarr/" + chunk, Body=body[:-1] + bytes([body[-1] ^ 1]))
    changed = run_cache(tmp_path, s3_config(s3, "c/era5.zarr"), command="verify", check=1)
    assert chunk in changed.stdout, changed.stdout


def test_a_foreign_prefix_is_refused_on_s3(tmp_path, s3):
    s3.client().put_object(Bucket=BUCKET, Key="theirs.zarr/data.bin", Body=b"x")
    proc = run_cache(tmp_path, s3_config(s3, "theirs.zarr"), check=5)
    assert "no .zarr-parallel/store.json of ours" in proc.stderr
    assert keys(s3, "theirs.zarr/") == ["theirs.zarr/data.bin"]


def test_resume_on_s3_after_sigkill_and_a_live_lease_refuses(tmp_path, s3):
    need_fixtures()
    flag = tmp_path / "killed"
    env = {"ZP_FAULT_KILL_ONCE": str(flag), "ZP_FAULT_AFTER_CHUNKS": "2"}
    first = run_cache(tmp_path, s3_config(s3, "k/era5.zarr"), env=env)
    assert first.returncode == -9 and flag.exists(), first.stderr
    names = keys(s3, "k/era5.zarr/")
    assert "k/era5.zarr/.zarr-parallel/complete.json" not in names
    assert "k/era5.zarr/.zmetadata" not in names  # a reader gets an error, not a partial store
    assert "k/era5.zarr/.zarr-parallel/lease.json" in names  # the killed run's, until it expires
    # Behind a server that honours If-None-Match the live lease keeps a second run out.
    with S3StandIn(s3) as stand:
        cfg = s3_config(s3, "k/era5.zarr")
        cfg["cache_storage_options"] = dict(cfg["cache_storage_options"], endpoint_url=stand.url)
        refused = run_cache(tmp_path, cfg, check=5)
    assert "holds its lease" in refused.stderr
    # s3rver ignores it (said in a note): the run continues the store, the done jobs kept.
    second = run_cache(tmp_path, s3_config(s3, "k/era5.zarr"), check=0)
    assert "resuming" in second.stderr and "If-None-Match" in second.stderr
    local = tmp_path / "local.zarr"
    run_cache(tmp_path, {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(local),
                         "deploy_mode": "series", "num_jobs": 4}, check=0)
    mapper = fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/k/era5.zarr")
    xr.testing.assert_identical(xr.open_zarr(mapper, consolidated=True).load(), xr.open_zarr(local).load())


def small_netcdf(path, value):
    import numpy as np
    ds = xr.Dataset({"t": (("time", "x"), np.full((4, 3), value, dtype="float32"))},
                    coords={"time": np.arange(4), "x": np.arange(3)})
    ds.to_netcdf(path)


def test_a_source_changed_after_caching_to_s3_is_no_hit(tmp_path, s3):
    """Issue 31 item 1: the hit compared the config only; a changed source gave stale data."""
    nc = tmp_path / "src.nc"
    small_netcdf(nc, 1.0)
    cfg = dict(s3_config(s3, "chg/s.zarr"), data_uri=str(nc), num_jobs=2)
    run_cache(tmp_path, cfg, check=0)
    small_netcdf(nc, 2.0)  # a value rewritten: same size, a later mtime
    st = nc.stat()
    os.utime(nc, (st.st_atime, st.st_mtime + 10))
    refused = run_cache(tmp_path, dict(cfg, on_source_change="error"), check=4)
    assert str(nc) in refused.stderr and "on_source_change: error" in refused.stderr
    again = run_cache(tmp_path, cfg, check=0)
    assert "cache hit" not in again.stderr + again.stdout
    assert "append is not supported on S3" in again.stderr
    mapper = fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/chg/s.zarr")
    xr.testing.assert_equal(xr.open_zarr(mapper, consolidated=True).load(), xr.open_dataset(nc).load())


def test_switching_zarr_format_on_s3_leaves_no_old_consolidated_metadata(tmp_path, s3):
    """Issue 31 item 3: a v2 store rebuilt as v3 kept its .zmetadata, readable with old data."""
    nc = tmp_path / "src.nc"
    small_netcdf(nc, 1.0)
    cfg = dict(s3_config(s3, "fmt/s.zarr"), data_uri=str(nc), num_jobs=2)
    run_cache(tmp_path, dict(cfg, zarr_format=2), check=0)
    assert "fmt/s.zarr/.zmetadata" in keys(s3, "fmt/s.zarr/")
    run_cache(tmp_path, dict(cfg, zarr_format=3, overwrite=True), check=0)
    names = keys(s3, "fmt/s.zarr/")
    assert "fmt/s.zarr/zarr.json" in names
    assert "fmt/s.zarr/.zmetadata" not in names


def test_a_run_longer_than_its_lease_keeps_it_and_a_second_run_is_refused(tmp_path, s3):
    """Issue 31 item 2: the lease was renewed only after each job: a job longer than the lease let a
    second run take the store over while the first kept writing. Now a timer renews it."""
    nc = tmp_path / "src.nc"
    small_netcdf(nc, 3.0)
    slowed = []

    def slow_first_chunk(method, path, n):
        chunk = "/lease/s.zarr/t/" in path and not path.split("?")[0].rsplit("/", 1)[1].startswith(".")
        if method == "PUT" and chunk and not slowed:
            slowed.append(path)
            return "slow"
        return None

    with S3StandIn(s3, slow_first_chunk) as stand:
        cfg = dict(s3_config(s3, "lease/s.zarr"), data_uri=str(nc), num_jobs=2)
        cfg["cache_storage_options"] = dict(cfg["cache_storage_options"], endpoint_url=stand.url)
        cfg_path = tmp_path / "first.yaml"
        cfg_path.write_text(json.dumps(cfg))
        env = dict(os.environ, ZP_S3_LEASE_SECONDS="2")
        first = subprocess.Popen([str(BIN), "cache", str(cfg_path)], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(300):  # until the first chunk is in flight (bounded: 30 s)
            if slowed or first.poll() is not None:
                break
            time.sleep(0.1)
        assert slowed, first.communicate(timeout=60)
        time.sleep(3)  # longer than the lease: only renewals keep it
        second = run_cache(tmp_path, cfg, env={"ZP_S3_LEASE_SECONDS": "2"})
        if second.returncode != 5:
            first.kill()
            print(first.communicate(timeout=60), stand.log)
        assert second.returncode == 5, second.stderr
        assert "holds its lease" in second.stderr
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
    mapper = fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/lease/s.zarr")
    xr.testing.assert_equal(xr.open_zarr(mapper, consolidated=True).load(), xr.open_dataset(nc).load())


def test_sharded_v3_cache_on_s3_equals_the_local_one(tmp_path, s3):
    """Shards are streamed piece by piece (issue 32, W8); on S3 the pieces are held and put whole
    at the end of each shard: every object equals the one the local store holds."""
    need_fixtures()
    sharded = {"zarr_format": 3, "chunks": {"time": 24, "latitude": 10, "longitude": 16},
               "shards": {"time": 48, "latitude": 40, "longitude": 48}}
    local = tmp_path / "local.zarr"
    run_cache(tmp_path, {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(local), "deploy_mode": "series",
                         "num_jobs": 4, **sharded}, check=0)
    run_cache(tmp_path, s3_config(s3, "sh/era5.zarr", **sharded), check=0)
    shards = [p for v in ("d2m", "t2m") for p in (local / v / "c").rglob("*") if p.is_file()]
    assert len(shards) > 10

    def inner_chunks(shard, n=2 * 4 * 3):  # inner chunks by index entry: their order may differ
        index = np.frombuffer(shard[-16 * n - 4:-4], dtype="<u8").reshape(n, 2)
        return [None if o == 2 ** 64 - 1 else shard[o:o + m] for o, m in index]

    for p in shards:
        key = "sh/era5.zarr/" + str(p.relative_to(local))
        got = s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert len(got) == p.stat().st_size and inner_chunks(got) == inner_chunks(p.read_bytes()), key

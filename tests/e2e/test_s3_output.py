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
import re
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

import botocore.exceptions
import fsspec
import numpy as np
import xarray as xr

from conftest import BIN, ERA5, need_fixtures, open_kerchunk, run_cache  # noqa: E402
from servers import LoopbackHttp, QuietHandler, free_port  # noqa: E402

UNIT = Path(os.environ.get("ZP_UNIT_BIN") or Path(BIN).parent / "zp_unit_tests")
BUCKET = "out"
HOP = ("connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection")


class S3StandIn(LoopbackHttp):
    """Forwards every request to s3rver as it came (method, path, headers with the signed Host,
    body), honours `If-None-Match: *` on PUT (412 when the key exists; checked and put under one
    lock, so atomic here), and injects faults: fault(method, path, n) -> None, "500" (answered
    without forwarding) or "corrupt" (one body byte flipped on the way: Content-MD5 no longer
    matches) or "slow" (answered after 6 s). Records (method, path) of every request in `.log`.
    `gate`: an object with before(method, path) (may block, outside the lock) and after(method,
    path, status), to order the requests of racing runs.
    Multipart uploads (s3rver 3.7 can neither list nor abort them): the uploads s3rver started and
    that were neither completed nor aborted are kept in `.uploads` ({upload id: key}) and listed
    (ListMultipartUploads, GET /bucket?uploads&prefix=); an abort (DELETE ?uploadId=) is answered
    here, 204, or 404 NoSuchUpload."""

    def __init__(self, s3, fault=None, gate=None):
        self.s3 = s3
        self.gate = gate
        self.upstream_port = s3.port
        self.fault = fault or (lambda method, path, n: None)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.log = []
        self.headers = []  # of every request, as sent
        self.uploads = {}  # upload id -> "bucket/key", in progress

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

        class Handler(QuietHandler):
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

            def _conditional(self, headers, body, if_match=None):
                bucket, key = unquote(self.path.split("?")[0]).lstrip("/").split("/", 1)
                with stand.lock:  # the check and the put as one step
                    try:
                        etag = stand.s3.client().head_object(Bucket=bucket, Key=key)["ETag"]
                    except botocore.exceptions.ClientError:
                        etag = None
                    if (etag is not None) if if_match is None else (etag is None or etag.strip('"') != if_match.strip('"')):
                        return 412, [], b"<Error><Code>PreconditionFailed</Code></Error>"
                    return stand.upstream("PUT", self.path, headers, body)

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stand.lock:
                    n = len(stand.log)
                    stand.log.append((self.command, self.path))
                    stand.headers.append(dict(self.headers))
                    fault = stand.fault(self.command, self.path, n)
                if fault == "slow":
                    time.sleep(6)  # a long job: outside the lock, other requests go on
                if fault == "500":
                    return self._reply(500, [], b"<Error><Code>InternalError</Code></Error>")
                if fault == "corrupt" and body:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                headers = list(self.headers.items())
                if stand.gate:
                    stand.gate.before(self.command, self.path)
                multipart = stand.multipart(self.command, self.path)
                if multipart:
                    return self._reply(*multipart)
                if self.command == "PUT" and self.headers.get("If-None-Match") == "*":
                    answer = self._conditional(headers, body)
                elif self.command == "PUT" and self.headers.get("If-Match"):
                    answer = self._conditional(headers, body, self.headers.get("If-Match"))
                else:
                    answer = stand.upstream(self.command, self.path, headers, body)
                stand.multipart_answered(self.command, self.path, answer)
                if stand.gate:
                    stand.gate.after(self.command, self.path, answer[0])
                self._reply(*answer)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _any

        return self.serve(Handler)


    def multipart(self, method, path):
        """The answer to a multipart request s3rver cannot give (list, abort), else None."""
        target, _, query = path.partition("?")
        q = parse_qs(query, keep_blank_values=True)
        name = unquote(target).lstrip("/")
        if method == "GET" and "uploads" in q and "/" not in name.rstrip("/"):
            prefix = q.get("prefix", [""])[0]
            with self.lock:
                listed = sorted((k.split("/", 1)[1], i) for i, k in self.uploads.items()
                                if k.split("/", 1)[0] == name.rstrip("/") and k.split("/", 1)[1].startswith(prefix))
            items = "".join(f"<Upload><Key>{escape(k)}</Key><UploadId>{i}</UploadId>"
                            "<Initiated>2026-01-01T00:00:00.000Z</Initiated><StorageClass>STANDARD</StorageClass>"
                            "</Upload>" for k, i in listed)
            body = ('<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult '
                    'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    f"<Bucket>{escape(name.rstrip('/'))}</Bucket><Prefix>{escape(prefix)}</Prefix>"
                    f"<MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>{items}"
                    "</ListMultipartUploadsResult>").encode()
            return 200, [("Content-Type", "application/xml")], body
        if method == "DELETE" and "uploadId" in q:
            with self.lock:
                gone = self.uploads.pop(q["uploadId"][0], None)
            if gone is None:
                return 404, [], b"<Error><Code>NoSuchUpload</Code></Error>"
            return 204, [], b""
        return None

    def multipart_answered(self, method, path, answer):
        """Keeps track of the uploads s3rver started and completed."""
        target, _, query = path.partition("?")
        q = parse_qs(query, keep_blank_values=True)
        if method != "POST" or answer[0] != 200:
            return
        if "uploads" in q:
            upload = re.search(rb"<UploadId>([^<]+)</UploadId>", answer[2])
            if upload:
                with self.lock:
                    self.uploads[upload.group(1).decode()] = unquote(target).lstrip("/")
        elif "uploadId" in q:
            with self.lock:
                self.uploads.pop(q["uploadId"][0], None)


def run_unit(name, endpoint, prefix, **env):
    full = dict(os.environ, ZP_TEST_S3_ENDPOINT=endpoint, ZP_TEST_S3_BUCKET=BUCKET, ZP_TEST_S3_PREFIX=prefix,
                ZP_HTTP_RETRIES=env.pop("retries", "2"), **env)
    proc = subprocess.run([str(UNIT), f"--gtest_filter=S3Writer.{name}"], capture_output=True, text=True,
                          env=full, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[  SKIPPED ]" not in proc.stdout, proc.stdout
    return proc.stdout + proc.stderr


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
    assert body == b"three"  # the second creator and the stale If-Match were refused


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


def test_an_edited_plan_on_s3_cannot_make_a_resume_read_a_local_file(tmp_path, s3):
    """Hostile review (session 15): whoever may write the cache's prefix rewrote plan.json's files
    to a local file of the user's (its digest in state.json too) and deleted the done records; the
    next run resumed, exit 0, and uploaded the file's bytes. Now a resumed plan must read exactly
    the files a fresh plan of this config reads (as the local resume does)."""
    import hashlib
    secret = tmp_path / "id_secret"
    secret.write_bytes(b"AWS_SECRET_ACCESS_KEY=MY-VERY-SECRET\n" * 20000)
    nc = tmp_path / "src.nc"
    small_netcdf(nc, 1.0)
    cfg = dict(s3_config(s3, "t/s.zarr"), data_uri=str(nc), num_jobs=2)
    run_cache(tmp_path, cfg, check=0)
    c = s3.client()
    get = lambda k: c.get_object(Bucket=BUCKET, Key="t/s.zarr/" + k)["Body"].read()  # noqa: E731
    plan = json.loads(get(".zarr-parallel/plan.json"))
    plan["files"] = [str(secret)]
    text = json.dumps(plan).encode()
    state = json.loads(get(".zarr-parallel/state.json"))
    state["plan_sha256"] = hashlib.sha256(text).hexdigest()
    c.put_object(Bucket=BUCKET, Key="t/s.zarr/.zarr-parallel/plan.json", Body=text)
    c.put_object(Bucket=BUCKET, Key="t/s.zarr/.zarr-parallel/state.json", Body=json.dumps(state).encode())
    for k in keys(s3, "t/s.zarr/"):
        if k.endswith(("complete.json", ".done", ".zmetadata")):
            c.delete_object(Bucket=BUCKET, Key=k)
    refused = run_cache(tmp_path, cfg, check=5)
    assert "reads other files than the source has now" in refused.stderr, refused.stderr
    for k in keys(s3, "t/s.zarr/"):
        assert b"MY-VERY-SECRET" not in c.get_object(Bucket=BUCKET, Key=k)["Body"].read(), k


def test_a_sources_http_headers_never_reach_the_caches_s3_endpoint(tmp_path, s3):
    """Hostile review (session 15): without cache_storage_options the source's storage_options,
    headers included, were sent to the cache's S3 endpoint (another host)."""
    nc = tmp_path / "src.nc"
    small_netcdf(nc, 1.0)
    with S3StandIn(s3) as stand:
        cfg = {"data_uri": str(nc), "storage_options": {"headers": {"X-Api-Key": "SECRET-API-KEY-42"}},
               "cache_store": f"s3://{BUCKET}/h/s.zarr", "deploy_mode": "series"}
        env = {"AWS_ENDPOINT_URL": stand.url, "AWS_ACCESS_KEY_ID": s3.KEY, "AWS_SECRET_ACCESS_KEY": s3.SECRET}
        run_cache(tmp_path, cfg, check=0, env=env)
    assert stand.headers, "the run sent nothing to the cache's endpoint"
    for h in stand.headers:
        assert "SECRET-API-KEY-42" not in json.dumps(h), h
    mapper = fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/h/s.zarr")
    xr.testing.assert_equal(xr.open_zarr(mapper, consolidated=True).load(), xr.open_dataset(nc).load())
class LeaseRace:
    """Orders two coordinators' requests for the worst case: each run reads the lease twice before
    it decides (after its create is refused, then to judge it); the reads go in pairs, one of each
    run (both runs see it expired), and a second DELETE of it (what a takeover by delete
    and re-create sent) waits until a PUT of the lease succeeded (the other run's new lease).
    Every wait is bounded (20 s)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.reads = 0
        self.deletes = 0
        self.created = False

    @staticmethod
    def lease(path):
        return path.split("?")[0].endswith("/.zarr-parallel/lease.json")

    def before(self, method, path):
        if not self.lease(path):
            return
        with self.cond:
            if method == "GET":
                self.reads += 1
                pair_done = (self.reads + 1) // 2 * 2
                self.cond.notify_all()
                if self.reads <= 4:
                    self.cond.wait_for(lambda: self.reads >= pair_done, timeout=20)
            elif method == "DELETE":
                self.deletes += 1
                if self.deletes == 2:
                    self.cond.wait_for(lambda: self.created, timeout=20)

    def after(self, method, path, status):
        if self.lease(path) and method == "PUT" and status == 200:
            with self.cond:
                self.created = True
                self.cond.notify_all()


def test_of_two_coordinators_taking_over_an_expired_lease_one_proceeds(tmp_path, s3):
    """Issue 31: a takeover deleted the expired lease and created its own with If-None-Match: of
    two takers, the second could delete the first's new lease and both ran. Now a takeover replaces
    the expired version only (If-Match on its ETag): the other taker is refused."""
    need_fixtures()
    flag = tmp_path / "killed"
    env = {"ZP_FAULT_KILL_ONCE": str(flag), "ZP_FAULT_AFTER_CHUNKS": "2", "ZP_S3_LEASE_SECONDS": "1"}
    dead = run_cache(tmp_path, s3_config(s3, "race/era5.zarr"), env=env)
    assert dead.returncode == -9 and flag.exists(), dead.stderr
    assert "race/era5.zarr/.zarr-parallel/lease.json" in keys(s3, "race/era5.zarr/")
    time.sleep(1.5)  # the dead run's lease expired
    with S3StandIn(s3, gate=LeaseRace()) as stand:
        cfg = s3_config(s3, "race/era5.zarr")
        cfg["cache_storage_options"] = dict(cfg["cache_storage_options"], endpoint_url=stand.url)
        cfg_path = tmp_path / "race.yaml"
        cfg_path.write_text(json.dumps(cfg))
        runs = [subprocess.Popen([str(BIN), "cache", str(cfg_path)], env=dict(os.environ, ZP_S3_LEASE_SECONDS="30"),
                                 text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        outs = [r.communicate(timeout=240) for r in runs]
    codes = sorted(r.returncode for r in runs)
    assert codes == [0, 5], outs
    loser = outs[[r.returncode for r in runs].index(5)][1]
    assert "holds its lease" in loser, loser  # refused before writing anything, not stopped later
    local = tmp_path / "local.zarr"
    run_cache(tmp_path, {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(local),
                         "deploy_mode": "series", "num_jobs": 4}, check=0)
    mapper = fsspec.get_mapper(f"{s3.endpoint}/{BUCKET}/race/era5.zarr")
    xr.testing.assert_identical(xr.open_zarr(mapper, consolidated=True).load(), xr.open_zarr(local).load())
    assert "race/era5.zarr/.zarr-parallel/lease.json" not in keys(s3, "race/era5.zarr/")


def test_overwrite_on_s3_leaves_no_object_of_the_old_store_behind(tmp_path, s3):
    """Issue 31: a rewrite in place left the old store's objects the new plan did not write: an
    array dropped from the config, and an all-fill v3 shard (never stored) kept its old values.
    Only our old plan's keys go; an object of the user's under the prefix stays."""
    import numpy as np
    nc = tmp_path / "src.nc"
    ones = np.ones((8, 3), dtype="float32")
    coords = {"time": np.arange(8), "x": np.arange(3)}
    xr.Dataset({"t": (("time", "x"), ones), "u": (("time", "x"), 2 * ones)}, coords=coords).to_netcdf(nc)
    cfg = dict(s3_config(s3, "ow/s.zarr"), data_uri=str(nc), num_jobs=2, zarr_format=3,
               chunks={"time": 2, "x": 3}, shards={"time": 4, "x": 3})
    run_cache(tmp_path, cfg, check=0)
    before = keys(s3, "ow/s.zarr/")
    assert "ow/s.zarr/t/c/0/0" in before and any(k.startswith("ow/s.zarr/u/") for k in before), before
    s3.client().put_object(Bucket=BUCKET, Key="ow/s.zarr/notes.txt", Body=b"mine")
    t = ones.copy()
    t[:4] = np.nan  # the first shard all fill: not stored by the new run
    xr.Dataset({"t": (("time", "x"), t), "u": (("time", "x"), 2 * ones)}, coords=coords).to_netcdf(nc)
    st = nc.stat()
    os.utime(nc, (st.st_atime, st.st_mtime + 10))
    run_cache(tmp_path, dict(cfg, variables={"t": []}, overwrite=True), check=0)
    after = keys(s3, "ow/s.zarr/")
    assert not any(k.startswith("ow/s.zarr/u/") for k in after), after
    assert "ow/s.zarr/t/c/0/0" not in after and "ow/s.zarr/t/c/1/0" in after, after
    assert s3.client().get_object(Bucket=BUCKET, Key="ow/s.zarr/notes.txt")["Body"].read() == b"mine"
    # Read back by zarrita (this xarray reads no v3) from a mirror of the prefix.
    from test_zarr_v3 import zarrita
    mirror = tmp_path / "mirror.zarr"
    for key in after:
        path = mirror / key[len("ow/s.zarr/"):]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read())
    arrays, report = zarrita(mirror, ["t"], tmp_path)
    assert np.array_equal(arrays["t"], t, equal_nan=True), arrays["t"]


def test_status_on_s3(tmp_path, s3):
    need_fixtures()
    env = dict(os.environ, AWS_ACCESS_KEY_ID=s3.KEY, AWS_SECRET_ACCESS_KEY=s3.SECRET,
               AWS_ENDPOINT_URL=s3.endpoint, AWS_REGION="us-east-1")
    status = lambda prefix, *a: subprocess.run([str(BIN), "status", f"s3://{BUCKET}/{prefix}", *a],  # noqa: E731
                                               capture_output=True, text=True, env=env, timeout=120)
    flag = tmp_path / "killed"
    killed = run_cache(tmp_path, s3_config(s3, "st/era5.zarr"),
                       env={"ZP_FAULT_KILL_ONCE": str(flag), "ZP_FAULT_AFTER_CHUNKS": "2"})
    assert killed.returncode == -9, killed.stderr
    done = len([k for k in keys(s3, "st/era5.zarr/.zarr-parallel/jobs/") if k.endswith(".done")])
    half = status("st/era5.zarr", "--json")
    assert half.returncode == 1, half.stderr
    j = json.loads(half.stdout)
    assert (j["complete"], j["jobs_done"], j["jobs_total"]) == (False, done, 4), j
    run_cache(tmp_path, s3_config(s3, "st/era5.zarr"), check=0)
    whole = status("st/era5.zarr")
    assert whole.returncode == 0, whole.stderr
    assert "complete" in whole.stdout and "4 / 4 done" in whole.stdout, whole.stdout
    assert "S3RVER" not in whole.stdout + whole.stderr
    s3.client().put_object(Bucket=BUCKET, Key="notours/data.bin", Body=b"x")
    foreign = status("notours")
    assert foreign.returncode == 5 and "no zarr-parallel state" in foreign.stderr, foreign.stderr
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

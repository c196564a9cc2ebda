"""Remote sources: kerchunk reference sets and Zarr stores behind HTTP (nginx) and S3 (s3rver),
through a fault-injecting proxy, and the SigV4 signature checked against botocore's signer. Every
store is compared with xarray's reading of the local files."""
import datetime
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, ERA5, assert_matches, children_of, need_fixtures, open_kerchunk, run_cache, store_files  # noqa: E402
from servers import FaultProxy, Nginx, Recorder, S3rver  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                                reason="nginx-light not installed (scripts/setup.sh --tests)")


@pytest.fixture(scope="module")
def expected():
    need_fixtures()
    return open_kerchunk(ERA5 / "refs.json"), open_kerchunk(ERA5 / "refs.json", mask_and_scale=False,
                                                            decode_times=False)


@pytest.fixture
def served(tmp_path):
    """The ERA5 fixture folder copied and served by nginx."""
    need_fixtures()
    root = tmp_path / "www"
    shutil.copytree(ERA5, root / "era5")
    with Nginx(root, tmp_path / "nginx") as server:
        yield server, root


def data_keys(store):
    """The store's keys and bytes but its root attributes, which name the config (hash, source)."""
    files = store_files(store)
    return {k: v for k, v in files.items() if k not in (".zattrs", ".zmetadata")}


def chunk_bytes_needed(refs_path):
    refs = json.loads(Path(refs_path).read_text())["refs"]
    return sum(v[2] for v in refs.values() if isinstance(v, list) and len(v) == 3)


def test_kerchunk_over_http_equals_local_and_reads_only_the_chunks(tmp_path, served, expected):
    server, root = served
    store = tmp_path / "out.zarr"
    # Copies off: a speculative copy of a job that a loaded machine slowed reads its chunks again.
    proc = run_cache(tmp_path, {"data_uri": f"{server.url}/era5/refs.json", "cache_store": str(store),
                                "deploy_mode": "local", "simultaneous_worker_limit": 2}, check=0,
                     env={"ZP_FAULT_NO_COPIES": "1"})
    assert_matches(store, expected[0], raw_expected=expected[1])
    # Bytes nginx sent for the NetCDF files: the chunks' byte ranges, no whole-file downloads.
    sent = sum(n for path, status, n, _ in server.requests() if path.endswith(".nc"))
    needed = chunk_bytes_needed(ERA5 / "refs.json")
    assert needed <= sent <= 1.05 * needed, (sent, needed, proc.stderr)
    assert all(rng for path, status, n, rng in server.requests() if path.endswith(".nc") and status != 404)


def test_absolute_chunk_urls_and_remote_protocol(tmp_path, served, expected):
    """Chunk URLs written absolute, and written without a scheme with remote_protocol (fsspec's)."""
    server, root = served
    refs = json.loads((ERA5 / "refs.json").read_text())
    absolute = {k: ([f"{server.url}/era5/{v[0]}"] + v[1:] if isinstance(v, list) else v)
                for k, v in refs["refs"].items()}
    (tmp_path / "abs.json").write_text(json.dumps({"version": 1, "refs": absolute}))
    store = tmp_path / "abs.zarr"
    run_cache(tmp_path, {"data_uri": str(tmp_path / "abs.json"), "cache_store": str(store),
                         "deploy_mode": "series"}, check=0)
    assert_matches(store, expected[0], raw_expected=expected[1])
    host = server.url.split("://")[1]
    bare = {k: ([f"{host}/era5/{v[0]}"] + v[1:] if isinstance(v, list) else v) for k, v in refs["refs"].items()}
    (tmp_path / "bare.json").write_text(json.dumps({"version": 1, "refs": bare}))
    store2 = tmp_path / "bare.zarr"
    run_cache(tmp_path, {"data_uri": str(tmp_path / "bare.json"), "cache_store": str(store2),
                         "remote_protocol": "http", "deploy_mode": "series"}, check=0)
    assert data_keys(store2) == data_keys(store)


def test_missing_object_names_the_url_and_404(tmp_path, served):
    server, root = served
    (root / "era5" / "era5_small_20000103.nc").unlink()
    proc = run_cache(tmp_path, {"data_uri": f"{server.url}/era5/refs.json", "cache_store": str(tmp_path / "m.zarr"),
                                "deploy_mode": "series"}, check=4)
    assert f"{server.url}/era5/era5_small_20000103.nc" in proc.stderr and "404" in proc.stderr, proc.stderr
    proc = run_cache(tmp_path, {"data_uri": f"{server.url}/era5/nothing.json", "cache_store": str(tmp_path / "n.zarr")},
                     check=4)
    assert "nothing.json" in proc.stderr and "does not exist" in proc.stderr, proc.stderr


def test_unknown_scheme_is_a_clear_error(tmp_path):
    proc = run_cache(tmp_path, {"data_uri": "ftp://example.invalid/x.json", "cache_store": str(tmp_path / "a.zarr")},
                     check=4)
    assert "unsupported URL scheme 'ftp://'" in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def zarr_source(tmp_path_factory, expected):
    """A consolidated Zarr v2 store written by xarray from the fixture."""
    d = tmp_path_factory.mktemp("zsrc")
    ds = expected[0].chunk({"time": 24, "latitude": 8, "longitude": 16})
    for v in ds.variables.values():
        v.encoding.pop("chunks", None)
        v.encoding.pop("preferred_chunks", None)
    ds.to_zarr(d / "src.zarr", consolidated=True)
    return d / "src.zarr"


def test_zarr_over_http_with_consolidated_metadata(tmp_path, zarr_source):
    root = tmp_path / "www"
    shutil.copytree(zarr_source, root / "src.zarr")
    local = tmp_path / "local.zarr"
    run_cache(tmp_path, {"data_uri": str(zarr_source), "cache_store": str(local), "deploy_mode": "series"}, check=0)
    with Nginx(root, tmp_path / "nginx") as server:
        store = tmp_path / "remote.zarr"
        run_cache(tmp_path, {"data_uri": f"{server.url}/src.zarr", "cache_store": str(store),
                             "deploy_mode": "local"}, check=0)
    assert data_keys(store) == data_keys(local)
    expected = xr.open_zarr(zarr_source).load()
    assert_matches(store, expected)
    os.remove(root / "src.zarr" / ".zmetadata")
    with Nginx(root, tmp_path / "nginx2") as server:
        proc = run_cache(tmp_path, {"data_uri": f"{server.url}/src.zarr", "cache_store": str(tmp_path / "x.zarr")},
                         check=4)
    assert ".zmetadata" in proc.stderr, proc.stderr


def test_kerchunk_and_zarr_over_s3(tmp_path, expected, zarr_source):
    need_fixtures()
    with S3rver(tmp_path / "s3") as s3:
        s3.upload_folder("era5", ERA5, prefix="daily/")
        s3.upload_folder("stores", zarr_source, prefix="src.zarr/")
        opts = s3.options()
        # Reference set and chunks on S3; the chunk paths are relative to the JSON's URL.
        store = tmp_path / "k.zarr"
        run_cache(tmp_path, {"data_uri": "s3://era5/daily/refs.json", "storage_options": opts,
                             "cache_store": str(store), "deploy_mode": "local"}, check=0)
        assert_matches(store, expected[0], raw_expected=expected[1])
        # Credentials from the standard AWS environment; chunks through remote_options.
        refs = json.loads((ERA5 / "refs.json").read_text())
        absolute = {k: ([f"s3://era5/daily/{v[0]}"] + v[1:] if isinstance(v, list) else v)
                    for k, v in refs["refs"].items()}
        (tmp_path / "s3refs.json").write_text(json.dumps({"version": 1, "refs": absolute}))
        env = {"AWS_ACCESS_KEY_ID": s3.KEY, "AWS_SECRET_ACCESS_KEY": s3.SECRET, "AWS_ENDPOINT_URL": s3.endpoint}
        store2 = tmp_path / "k2.zarr"
        run_cache(tmp_path, {"data_uri": str(tmp_path / "s3refs.json"), "remote_protocol": "s3",
                             "remote_options": {"endpoint_url": s3.endpoint}, "cache_store": str(store2),
                             "deploy_mode": "local"}, env=env, check=0)
        assert data_keys(store2) == data_keys(store)
        # A Zarr store on S3 (listed, not consolidated metadata).
        store3 = tmp_path / "z.zarr"
        run_cache(tmp_path, {"data_uri": "s3://stores/src.zarr", "storage_options": opts,
                             "cache_store": str(store3), "deploy_mode": "series"}, check=0)
        assert_matches(store3, xr.open_zarr(zarr_source).load())
        # Anonymous (unsigned) requests, as for a public bucket (s3rver serves them).
        proc = subprocess.run([str(BIN), "inspect", "s3://era5/daily/refs.json", "--storage-options",
                               json.dumps({"anon": True, "endpoint_url": s3.endpoint})],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "kerchunk engine, 4 files" in proc.stdout, proc.stderr
        # An unknown access key: exit 4, the URL and the 403 named.
        proc = run_cache(tmp_path, {"data_uri": "s3://era5/daily/refs.json",
                                    "storage_options": {**opts, "key": "NOBODY", "secret": "x"},
                                    "cache_store": str(tmp_path / "denied.zarr")}, check=4)
        assert "s3://era5/daily/refs.json" in proc.stderr and "403" in proc.stderr, proc.stderr
        # A missing object: exit 4, named.
        proc = run_cache(tmp_path, {"data_uri": "s3://era5/daily/nothing.json", "storage_options": opts,
                                    "cache_store": str(tmp_path / "none.zarr")}, check=4)
        assert "s3://era5/daily/nothing.json" in proc.stderr, proc.stderr


def test_secrets_are_never_written_to_the_store(tmp_path):
    need_fixtures()
    with S3rver(tmp_path / "s3") as s3:
        s3.upload_folder("era5", ERA5, prefix="daily/")
        store = tmp_path / "k.zarr"
        run_cache(tmp_path, {"data_uri": "s3://era5/daily/refs.json", "storage_options": s3.options(),
                             "cache_store": str(store), "deploy_mode": "local"}, check=0)
    for p in store.rglob("*"):
        if p.is_file():
            assert b"S3RVER" not in p.read_bytes(), p


def test_flaky_server_gives_an_identical_store(tmp_path, served, expected):
    server, root = served
    reference = tmp_path / "ref.zarr"
    run_cache(tmp_path, {"data_uri": str(root / "era5" / "refs.json"), "cache_store": str(reference),
                         "deploy_mode": "series"}, check=0)
    faults = ["503", "drop", None, "429", "short", None, "slow", None, None]
    with FaultProxy(server.port, lambda n: faults[n % len(faults)] if n > 0 else None) as proxy:
        store = tmp_path / "flaky.zarr"
        proc = run_cache(tmp_path, {"data_uri": f"{proxy.url}/era5/refs.json", "cache_store": str(store),
                                    "deploy_mode": "local"}, check=0)
    assert data_keys(store) == data_keys(reference), proc.stderr
    assert all(proxy.injected.get(f, 0) > 0 for f in ("503", "drop", "429", "short", "slow")), proxy.injected
    assert_matches(store, expected[0], raw_expected=expected[1])


def test_a_server_that_keeps_failing_is_a_transient_error(tmp_path, served):
    server, root = served
    with FaultProxy(server.port, lambda n: "503" if n > 0 else None) as proxy:
        proc = run_cache(tmp_path, {"data_uri": f"{proxy.url}/era5/refs.json", "cache_store": str(tmp_path / "x.zarr"),
                                    "deploy_mode": "series"}, env={"ZP_HTTP_RETRIES": "2"})
    assert proc.returncode == 8, (proc.returncode, proc.stderr)
    assert "503" in proc.stderr and "after 2 retries" in proc.stderr and proxy.url in proc.stderr, proc.stderr


def test_an_s3_listing_that_fails_transiently_is_tried_again(tmp_path, zarr_source):
    """The S3 listing goes through the same retries as every other request: a 503 on the listing
    (the proxy's first request) is tried again, and a listing that keeps failing is exit 8."""
    need_fixtures()
    with S3rver(tmp_path / "s3") as s3:
        s3.upload_folder("stores", zarr_source, prefix="src.zarr/")
        with FaultProxy(s3.port, lambda n: "503" if n == 0 else None) as proxy:
            proc = subprocess.run([str(BIN), "inspect", "s3://stores/src.zarr", "--storage-options",
                                   json.dumps({"anon": True, "endpoint_url": proxy.url})],
                                  capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "zarr engine" in proc.stdout, proc.stderr
        assert proxy.injected == {"503": 1}, proxy.injected
        with FaultProxy(s3.port, lambda n: "503") as proxy:
            proc = subprocess.run([str(BIN), "inspect", "s3://stores/src.zarr", "--storage-options",
                                   json.dumps({"anon": True, "endpoint_url": proxy.url})],
                                  capture_output=True, text=True, timeout=60, env={**os.environ, "ZP_HTTP_RETRIES": "2"})
        assert proc.returncode == 8, (proc.returncode, proc.stderr)
        assert "cannot list the bucket" in proc.stderr and "503" in proc.stderr, proc.stderr
        assert proxy.injected == {"503": 3}, proxy.injected


def test_worker_killed_during_a_remote_job_is_rerun(tmp_path, served):
    server, root = served
    reference = tmp_path / "ref.zarr"
    run_cache(tmp_path, {"data_uri": str(root / "era5" / "refs.json"), "cache_store": str(reference),
                         "deploy_mode": "series", "chunks": {"time": 24}}, check=0)
    marker = tmp_path / "killed"
    store = tmp_path / "k.zarr"
    run_cache(tmp_path, {"data_uri": f"{server.url}/era5/refs.json", "cache_store": str(store),
                         "deploy_mode": "local", "chunks": {"time": 24}, "num_jobs": 4},
              env={"ZP_FAULT_KILL_ONCE": str(marker)}, check=0)
    assert marker.exists()
    assert data_keys(store) == data_keys(reference)


def test_changed_remote_object_is_no_cache_hit(tmp_path, served):
    server, root = served
    store = tmp_path / "c.zarr"
    cfg = {"data_uri": f"{server.url}/era5/refs.json", "cache_store": str(store), "deploy_mode": "series"}
    run_cache(tmp_path, cfg, check=0)
    proc = run_cache(tmp_path, cfg, check=0)
    assert "cache hit" in proc.stderr + proc.stdout
    f = root / "era5" / "era5_small_20000102.nc"
    t = f.stat().st_mtime + 5
    os.utime(f, (t, t))  # nginx's ETag is mtime and size: a replaced object
    proc = run_cache(tmp_path, cfg, check=0)
    assert "source changed" in proc.stderr + proc.stdout and "ETag" in proc.stderr + proc.stdout, proc.stderr


def test_sigv4_signature_equals_botocores(tmp_path):
    """Our signed GET, captured by a loopback server, carries the Authorization botocore computes for
    the same request, time and credentials."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    with Recorder() as rec:
        proc = subprocess.run([str(BIN), "inspect", "s3://bucket/some dir/refs+1.json", "--storage-options",
                               json.dumps({"key": "AKIDEXAMPLE", "secret": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                           "token": "session-token", "endpoint_url": rec.url,
                                           "region": "eu-west-2"})],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4, proc.stderr
    method, path, raw_headers = rec.seen[0]
    headers = {k.lower(): v for k, v in raw_headers.items()}
    assert method == "GET" and path == "/bucket/some%20dir/refs%2B1.json", path
    when = datetime.datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    req = AWSRequest(method="GET", url=rec.url + path,
                     headers={"x-amz-content-sha256": headers["x-amz-content-sha256"],
                              "x-amz-security-token": headers["x-amz-security-token"]})
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")

    class FixedTime(S3SigV4Auth):
        def add_auth(self, request):
            import botocore.auth as ba
            real = ba.datetime.datetime

            class Frozen(real):
                @classmethod
                def utcnow(cls):
                    return when
            ba.datetime.datetime = Frozen
            try:
                super().add_auth(request)
            finally:
                ba.datetime.datetime = real

    FixedTime(creds, "s3", "eu-west-2").add_auth(req)
    ours = headers["authorization"]
    theirs = req.headers["Authorization"]
    assert ours.split("Signature=")[1] == theirs.split("Signature=")[1], (ours, theirs)


def test_python_module_with_storage_options(tmp_path, expected):
    need_fixtures()
    module_dir = Path(BIN).parent.parent / "python"
    if not list(module_dir.glob("zarr_parallel/_zarr_parallel*.so")):
        pytest.skip("the Python module is not built here (sanitizer builds leave it out)")
    env = dict(os.environ, PYTHONPATH=str(module_dir))
    with S3rver(tmp_path / "s3") as s3:
        s3.upload_folder("era5", ERA5, prefix="daily/")
        script = f"""
import zarr_parallel
zp = zarr_parallel.ZarrParallelAssembler("s3://era5/daily/refs.json", storage_options={s3.options()!r},
                                         chunks={{"time": 24}})
info = zp.inspect()
assert any(v["name"] == "d2m" for v in info["variables"]), info
zp.cache(cache_store={str(tmp_path / 'py.zarr')!r}, deploy_mode="local")
"""
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                              cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = xr.open_zarr(tmp_path / "py.zarr").load()
    assert np.array_equal(got["d2m"].values, expected[0]["d2m"].values, equal_nan=True)


def test_remote_object_replaced_under_a_worker_or_before_resume_is_refused(tmp_path, served):
    """A worker checks each answer's size and ETag against the plan (no extra request); a resume
    checks them with HEAD. Either way a replaced object is refused, named."""
    server, root = served
    store = tmp_path / "r.zarr"
    cfg = {"data_uri": f"{server.url}/era5/refs.json", "cache_store": str(store), "deploy_mode": "series",
           "num_jobs": 4, "recommend_changes": False, "chunks": {"time": 24}}
    flag = tmp_path / "fired"
    proc = run_cache(tmp_path, cfg, env={"ZP_FAULT_KILL_ONCE": str(flag), "ZP_FAULT_AFTER_CHUNKS": "1"})
    assert proc.returncode == -9, proc.stderr
    f = root / "era5" / "era5_small_20000104.nc"
    with open(f, "ab") as h:  # same bytes where the chunks are, one more at the end: a new version
        h.write(b"\0")
    plan = store / ".zarr-parallel" / "plan.json"
    jobs = len(json.loads(plan.read_text())["jobs"])
    proc = subprocess.run([str(BIN), "worker", str(plan), *map(str, range(jobs))], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 4, proc.stderr
    assert f"{server.url}/era5/era5_small_20000104.nc" in proc.stderr and "since the plan was made" in proc.stderr
    proc = run_cache(tmp_path, dict(cfg, resume=True))
    assert proc.returncode == 4 and "era5_small_20000104.nc" in proc.stderr, proc.stderr
    assert not (store / ".zarr-parallel" / "complete.json").exists()


def test_workers_killed_while_their_remote_read_is_in_flight(tmp_path, served):
    """A worker's chunk request is held at the proxy; the workers are SIGKILLed while it is in flight;
    the jobs are rerun and the store equals the one made from the local files."""
    import signal
    import time
    server, root = served
    reference = tmp_path / "ref.zarr"
    run_cache(tmp_path, {"data_uri": str(root / "era5" / "refs.json"), "cache_store": str(reference),
                         "deploy_mode": "series", "chunks": {"time": 24}}, check=0)
    coordinator = None

    def workers():
        return children_of(coordinator.pid) if coordinator is not None else []

    # The coordinator reads coordinate chunks itself: only a request made while workers run is held.
    hold = lambda method, path: method == "GET" and path.endswith(".nc") and bool(workers())  # noqa: E731
    with FaultProxy(server.port, lambda n: None, hold=hold) as proxy:
        store = tmp_path / "k.zarr"
        cfg = tmp_path / "k.yaml"
        cfg.write_text(json.dumps({"data_uri": f"{proxy.url}/era5/refs.json", "cache_store": str(store),
                                   "deploy_mode": "local", "simultaneous_worker_limit": 2, "num_jobs": 4,
                                   "chunks": {"time": 24}}))
        coordinator = subprocess.Popen([str(BIN), "cache", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
        try:
            assert proxy.holding.wait(60), "no worker's chunk read reached the proxy"
            killed = workers()
            assert killed, "no worker process"
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        finally:
            proxy.release.set()
        out, err = coordinator.communicate(timeout=300)
    assert coordinator.returncode == 0, err
    assert "killed by signal 9" in err, err
    assert data_keys(store) == data_keys(reference)

"""Session 17 hostile review, findings 2, 5, 6, 7 and 8 (branch fixnet), each from its reproducer.

The network cases run in a user and network namespace of their own (`unshare -rn`): a "public"
server has 10.231.0.1, the "metadata service" 169.254.169.254 and "this machine's LAN address"
10.231.0.2, all on the namespace's loopback device; nothing leaves the namespace."""
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, SAMPLE_BIN, namespaces_work  # noqa: E402

PUBLIC, OWN, METADATA = "10.231.0.1", "10.231.0.2", "169.254.169.254"
CREDS = b'{"AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG", "Token": "IQoJ"}'


in_namespace = pytest.mark.skipif(not namespaces_work("-rn"), reason="needs unshare -rn (user and network namespaces) and ip")


def run_in_namespace(tmp_path, case):
    """Runs ns_CASE(tmp_path) of this file in a namespace of its own; what it printed last (JSON)."""
    proc = subprocess.run(["unshare", "-rn", sys.executable, __file__, case, str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def serve(host, handler):
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def recorder(seen, status=200, body=b"", location=None):
    """A handler class answering every method with `status` (and `location`), recording requests."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self):
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n) if n else b""
            seen.append([self.command, self.path])
            self.send_response(status)
            if location:
                self.send_header("Location", location(self.path))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = answer

        def log_message(self, *a):
            pass
    return Handler


def one_chunk_refs(url, n):
    """A kerchunk reference set of one uint8 array `x` whose only chunk is `n` bytes at `url`."""
    zarray = {"shape": [n], "chunks": [n], "dtype": "|u1", "compressor": None, "filters": None,
              "fill_value": None, "order": "C", "zarr_format": 2}
    return {"version": 1, "refs": {".zgroup": json.dumps({"zarr_format": 2}), "x/.zarray": json.dumps(zarray),
                                   "x/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["i"]}), "x/0": [url, 0, n]}}


def cache(tmp, name, config):
    (tmp / f"{name}.yaml").write_text(json.dumps(config))
    proc = subprocess.run([str(BIN), "cache", str(tmp / f"{name}.yaml")], capture_output=True, text=True,
                          timeout=180, env=dict(os.environ, ZP_HTTP_RETRIES="0"))
    return {"exit": proc.returncode, "stderr": proc.stderr[-3000:]}


def add_addresses(*addresses):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for a in addresses:
        subprocess.run(["ip", "addr", "add", f"{a}/32", "dev", "lo"], check=True)


def complete(store):
    return (store / ".zarr-parallel" / "complete.json").exists()


# --- Finding 2: a local reference set's public servers redirecting to the metadata service -------

def ns_local_refs_redirect(tmp):
    add_addresses(PUBLIC, METADATA)
    meta_seen, pub_seen = [], []
    meta = serve(METADATA, recorder(meta_seen, body=CREDS))
    meta_url = f"http://{METADATA}:{meta.server_address[1]}"
    pub = serve(PUBLIC, recorder(pub_seen, status=302, location=lambda p: meta_url + "/latest/meta-data/iam"))
    out = {}
    cases = {"redirect": f"http://{PUBLIC}:{pub.server_address[1]}/public/data.bin",  # 302 to the metadata service
             "named": f"{meta_url}/latest/meta-data/iam"}  # the user's own set naming it: exempt, as before
    for name, url in cases.items():
        (tmp / f"{name}.json").write_text(json.dumps(one_chunk_refs(url, len(CREDS))))
        for allow in (False, True):
            key = name + ("_allowed" if allow else "")
            meta_seen.clear()
            store = tmp / f"{key}.zarr"
            out[key] = cache(tmp, key, {"data_uri": str(tmp / f"{name}.json"), "cache_store": str(store),
                                        "deploy_mode": "series", "recommend_changes": False,
                                        "allow_local_references": allow})
            out[key].update(reached=list(meta_seen), complete=complete(store))
    print(json.dumps(out))


@in_namespace
def test_a_local_reference_set_s_public_server_cannot_redirect_to_the_metadata_service(tmp_path):
    """Before the fix: exit 0, the metadata service's answer (instance credentials) cached as `x`.
    The user's own set naming the address stays exempt; allow_local_references allows the redirect."""
    got = run_in_namespace(tmp_path, "local_refs_redirect")
    bad = got["redirect"]
    assert bad["exit"] == 4, bad
    assert f"refused: http://{METADATA}:" in bad["stderr"], bad
    assert f"(a redirect from http://{PUBLIC}:" in bad["stderr"], bad
    assert not bad["reached"] and not bad["complete"], bad
    for name in ("named", "named_allowed", "redirect_allowed"):
        assert got[name]["exit"] == 0 and got[name]["complete"] and got[name]["reached"], (name, got[name])


# --- Finding 5: an S3 cache store's endpoint redirecting PUT/POST/DELETE to loopback -------------

def ns_s3_store_redirect(tmp):
    add_addresses(PUBLIC)
    subprocess.run([str(SAMPLE_BIN), "--out", str(tmp / "data"), "--prefix", "d_", "--files", "1", "--steps", "2",
                    "--lat", "5", "--lon", "6"], check=True, capture_output=True)
    local_seen = []
    local = serve("127.0.0.1", recorder(local_seen))
    local_url = f"http://127.0.0.1:{local.server_address[1]}"

    class HostileS3(http.server.BaseHTTPRequestHandler):
        def reply(self, code, body=b"", location=None):
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n) if n else b""
            self.send_response(code)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            if "list-type=2" in self.path:
                return self.reply(200, b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")
            self.reply(404)

        do_HEAD = do_GET

        def redirect(self):
            self.reply(307, location=f"{local_url}/internal-admin/api?from={self.command}")

        do_PUT = do_POST = do_DELETE = redirect

        def log_message(self, *a):
            pass
    s3 = serve(PUBLIC, HostileS3)
    config = {"data_uri": str(next((tmp / "data").glob("*.nc"))), "cache_store": "s3://bucket/cache.zarr",
              "deploy_mode": "series", "recommend_changes": False,
              "cache_storage_options": {"key": "AKIDEXAMPLE", "secret": "s3cr3t",
                                        "endpoint_url": f"http://{PUBLIC}:{s3.server_address[1]}"}}
    out = cache(tmp, "s3", config)
    out["reached"] = local_seen
    print(json.dumps(out))


@in_namespace
def test_an_s3_store_endpoint_cannot_redirect_writes_to_loopback(tmp_path):
    """Before the fix the endpoint's 307 answers sent the PUT of store.json (and of chunks, DELETE,
    POST), body and all, to the loopback-only service."""
    got = run_in_namespace(tmp_path, "s3_store_redirect")
    assert not got["reached"], got
    assert got["exit"] != 0 and "refused" in got["stderr"] and "127.0.0.1" in got["stderr"], got
    assert "a redirect from http://" + PUBLIC in got["stderr"], got


# --- Finding 8: this machine's own interface address ---------------------------------------------

def ns_own_address(tmp):
    add_addresses(PUBLIC, OWN)
    seen = []
    svc = serve("0.0.0.0", recorder(seen, body=b"local-only admin page" * 4))
    www = tmp / "www"
    www.mkdir()
    (www / "own.json").write_text(json.dumps(one_chunk_refs(f"http://{OWN}:{svc.server_address[1]}/admin", 84)))
    pub = serve(PUBLIC, lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(www)))
    store = tmp / "own.zarr"
    out = cache(tmp, "own", {"data_uri": f"http://{PUBLIC}:{pub.server_address[1]}/own.json",
                             "cache_store": str(store), "deploy_mode": "series", "recommend_changes": False})
    out.update(reached=seen, complete=complete(store))
    print(json.dumps(out))


@in_namespace
def test_a_public_reference_set_cannot_reach_this_machine_s_own_address(tmp_path):
    """Before the fix: exit 0, the service listening on 0.0.0.0 answered on 10.231.0.2 and its page
    was cached. The public server, also one of the namespace's addresses, is named: still read."""
    got = run_in_namespace(tmp_path, "own_address")
    assert got["exit"] == 4 and f"resolves to {OWN}" in got["stderr"], got
    assert not got["reached"] and not got["complete"], got


# --- Finding 7: a forged heartbeat time ------------------------------------------------------------

def test_a_heartbeat_from_the_future_does_not_hide_a_hung_worker(tmp_path):
    """Before the fix the run never ended (killed by the test after 60 s): the stopped worker's
    heartbeat said time=1e12, so worker_timeout (5 s) never fired."""
    subprocess.run([str(SAMPLE_BIN), "--out", str(tmp_path / "data"), "--prefix", "d_", "--files", "2", "--steps", "4",
                    "--lat", "9", "--lon", "12"], check=True, capture_output=True)
    store, flag = tmp_path / "out.zarr", tmp_path / "stopped"
    config = {"data_uri": str(tmp_path / "data" / "d_*.nc"), "cache_store": str(store), "deploy_mode": "local",
              "simultaneous_worker_limit": 1, "worker_timeout": "0:05", "chunks": {"time": 4},
              "recommend_changes": False}
    (tmp_path / "c.yaml").write_text(json.dumps(config))
    env = dict(os.environ, ZP_FORK_WORKERS="0", ZP_FAULT_STOP_ONCE=str(flag), ZP_FAULT_NO_COPIES="1")
    proc = subprocess.Popen([str(BIN), "cache", str(tmp_path / "c.yaml")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        for _ in range(1200):
            if flag.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert flag.exists(), "no worker stopped itself"
        forged = 0
        for _ in range(40):  # whoever can write the side folder: "alive, in the year 33658"
            for beat in (store / ".zarr-parallel" / "heartbeats").glob("*.json"):
                try:
                    j = json.loads(beat.read_text())
                except (OSError, ValueError):
                    continue
                j["time"] = 1e12
                beat.write_text(json.dumps(j))
                forged += 1
            time.sleep(0.25)
        assert forged
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "no heartbeat for 5 s" in err and complete(store), err[-3000:]


# --- Finding 6: a planted sparse manifest-cache entry ----------------------------------------------

def plan_rss_kb(tmp_path, env):
    """Runs `plan` at log level 2; its exit, stderr and peak resident memory in kB."""
    proc = subprocess.Popen([str(BIN), "plan", str(tmp_path / "c.yaml"), "--set", "log_level=2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err, usage.ru_maxrss


def test_a_planted_sparse_manifest_cache_entry_is_not_read(tmp_path):
    """Before the fix each planted entry (a 1 GiB sparse file, with or without a genuine head line)
    was read whole before its HMAC was checked: 'plan' peaked above 1 GiB of memory."""
    subprocess.run([str(SAMPLE_BIN), "--out", str(tmp_path / "data"), "--prefix", "d_", "--files", "2", "--steps", "4",
                    "--lat", "9", "--lon", "12"], check=True, capture_output=True)
    (tmp_path / "c.yaml").write_text(json.dumps({"data_uri": str(tmp_path / "data" / "d_*.nc"),
                                                 "cache_store": str(tmp_path / "out.zarr")}))
    env = dict(os.environ, ZP_CACHE_DIR=str(tmp_path / "cache"), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    code, err, genuine = plan_rss_kb(tmp_path, env)
    assert code == 0, err
    entries = sorted((tmp_path / "cache" / "parts").glob("*-*.json*"))
    assert entries, list((tmp_path / "cache").rglob("*"))
    heads = {e: e.read_bytes().split(b"\n", 1)[0] + b"\n" for e in entries}
    for planted in ("zeros", "genuine head"):
        for e in entries:
            e.unlink()
            with open(e, "wb") as f:
                if planted == "genuine head":
                    f.write(heads[e])
                f.truncate((1 << 30) - 1)
        code, err, rss = plan_rss_kb(tmp_path, env)
        assert code == 0, err
        assert rss < genuine + 200 * 1024, (planted, rss, genuine)
        assert err.count("ignored, scanning again") == len(entries), err


if __name__ == "__main__":
    globals()["ns_" + sys.argv[1]](Path(sys.argv[2]))

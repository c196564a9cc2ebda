"""A remote source cannot reach local addresses (SSRF): a reference set or a redirect from a public
server that names a loopback, link-local (a cloud's metadata service, 169.254.169.254) or
unspecified address, or a host name resolving there, is refused where the connection is made; the
bytes never land in the cache. Each test runs in a network and mount namespace of its own
(`unshare -rnm`), where the "public" server has 10.231.0.1 and the "metadata service"
169.254.169.254, both on the namespace's own loopback device, and /etc/hosts names them: nothing
leaves the namespace."""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, ERA5, namespaces_work, need_fixtures  # noqa: E402
from servers import FileServer, QuietHandler  # noqa: E402

PUBLIC, METADATA = "10.231.0.1", "169.254.169.254"
HOSTS = (f"127.0.0.1 localhost\n::1 localhost\n{PUBLIC} data.example.test\n{METADATA} imds.example.test\n"
         f"{PUBLIC} mirror.example.test\n")


pytestmark = pytest.mark.skipif(not namespaces_work("-rnm"),
                                reason="needs unshare -rnm (user, network and mount namespaces) and ip")


class HostServer(FileServer):
    """FileServer bound to `host` (an address of the namespace) instead of 127.0.0.1."""

    def __init__(self, root, host, **kw):
        super().__init__(root, **kw)
        with socket.socket() as s:
            s.bind((host, 0))
            self.port = s.getsockname()[1]
        self.host = host
        self.url = f"http://{host}:{self.port}"

    def serve(self, handler):
        import http.server
        import threading
        self.server = http.server.ThreadingHTTPServer((self.host, self.port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self


class ForwardProxy(FileServer):
    """A plain HTTP forward proxy on 127.0.0.1 (absolute-form GET and HEAD, as libcurl sends them to
    an http_proxy): it resolves the host itself, as a site's proxy does, and keeps each URL in
    `seen`."""

    def __enter__(self):
        import http.client
        import http.server
        import urllib.parse
        srv = self

        class Handler(QuietHandler):
            def _relay(self, head):
                srv.seen.append((self.command, self.path, {}))
                u = urllib.parse.urlsplit(self.path)
                hop = {"proxy-connection", "connection", "host", "keep-alive"}
                try:
                    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
                    c.request(self.command, (u.path or "/") + (f"?{u.query}" if u.query else ""),
                              headers={k: v for k, v in self.headers.items() if k.lower() not in hop})
                    r = c.getresponse()
                    body = r.read()
                except OSError as e:
                    r, body = None, str(e).encode()
                self.send_response(r.status if r else 502)
                for k, v in (r.getheaders() if r else []):
                    if k.lower() not in hop | {"transfer-encoding", "content-length"}:
                        self.send_header(k, v)
                length = r.getheader("Content-Length", "0") if r and head else str(len(body))
                self.send_header("Content-Length", length)
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def do_GET(self):
                self._relay(False)

            def do_HEAD(self):
                self._relay(True)

        return self.serve(Handler)


def hostile_refs(public, target):
    """The fixture's reference set, its coordinates on the public server and the d2m chunks (read
    by the workers) at `target`/era5/FILE."""
    refs = json.loads((ERA5 / "refs.json").read_text())
    refs["refs"] = {k: ([f"{target if k.startswith('d2m/') else public}/era5/{v[0]}"] + v[1:]
                        if isinstance(v, list) else v) for k, v in refs["refs"].items()}
    return refs


def in_namespace(tmp):
    """Inside the namespace: the addresses, /etc/hosts, three servers, then each case's run."""
    for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", f"{PUBLIC}/32", "dev", "lo"],
                ["ip", "addr", "add", f"{METADATA}/32", "dev", "lo"]):
        subprocess.run(cmd, check=True)
    (tmp / "hosts").write_text(HOSTS)
    subprocess.run(["mount", "--bind", str(tmp / "hosts"), "/etc/hosts"], check=True)
    for side in ("public", "metadata", "loop"):
        shutil.copytree(ERA5, tmp / side / "era5")
    cases = json.loads((tmp / "cases.json").read_text())
    out = {}
    with HostServer(tmp / "metadata", METADATA) as meta, FileServer(tmp / "loop") as loop, \
            ForwardProxy(tmp) as proxy:
        # /hop/X on the public server answers 302 to X at the metadata service, by a name.
        hop = lambda p: f"http://imds.example.test:{meta.port}{p[4:]}" if p.startswith("/hop/") else None  # noqa: E731
        with HostServer(tmp / "public", PUBLIC, redirect=hop) as pub:
            named = {"META": meta.url, "LOOP": loop.url, "LOOPNAME": f"http://localhost:{loop.port}",
                     "LOOP6": f"http://[::1]:{loop.port}", "METANAME": f"http://imds.example.test:{meta.port}",
                     "PUB": f"http://data.example.test:{pub.port}", "HOP": f"http://data.example.test:{pub.port}/hop",
                     "PUBLOOP": loop.url, "NOWHERE": f"http://nowhere.example.test:{meta.port}",
                     "MIRROR": f"http://mirror.example.test:{pub.port}"}
            for name, case in cases.items():
                meta.seen.clear()
                loop.seen.clear()
                home = tmp / ("loop" if case.get("served_from") == "loop" else "public")
                (home / f"{name}.json").write_text(json.dumps(hostile_refs(named["PUB"], named[case["target"]])))
                data_uri = case.get("data_uri", f"{named['PUBLOOP' if home.name == 'loop' else 'PUB']}/{name}.json")
                store = tmp / f"{name}.zarr"
                config = {"data_uri": data_uri.replace("NAME", name).replace("PUB", named["PUB"]),
                          "cache_store": str(store), "deploy_mode": "local", "simultaneous_worker_limit": 2,
                          **case.get("config", {})}
                (tmp / f"{name}.yaml").write_text(json.dumps(config))
                env = dict(os.environ, ZP_HTTP_RETRIES="0")
                if case.get("proxy"):  # every request goes through the proxy, which resolves names
                    env.update(http_proxy=proxy.url, no_proxy="")
                proc = subprocess.run([str(BIN), "cache", str(tmp / f"{name}.yaml")], capture_output=True,
                                      text=True, timeout=300, env=env)
                reached = [p for _, p, _ in meta.seen + loop.seen if p.endswith(".nc")]
                proxied = [p for _, p, _ in proxy.seen]
                proxy.seen.clear()
                out[name] = {"exit": proc.returncode, "stderr": proc.stderr[-3000:], "reached": reached,
                             "proxied": proxied,
                             "complete": (store / ".zarr-parallel" / "complete.json").exists()}
    print(json.dumps(out))


def run_cases(tmp_path, cases):
    need_fixtures()
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    proc = subprocess.run(["unshare", "-rnm", sys.executable, __file__, str(tmp_path)], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_refused(result, address):
    """Exit 4, or 6 when a local worker met it (its log's tail is in the message)."""
    assert result["exit"] in (4, 6), result
    assert "refused" in result["stderr"] and address in result["stderr"], result["stderr"]
    assert "allow_local_references" in result["stderr"], result["stderr"]
    assert not result["reached"] and not result["complete"], result


def test_a_public_reference_set_cannot_reach_local_addresses(tmp_path):
    """Before: each case ended with exit 0, the chunks copied from the 'metadata service' or the
    loopback server into the store (or, for [::1], exit 8 after trying to connect)."""
    got = run_cases(tmp_path, {
        "metadata": {"target": "META"},        # 169.254.169.254 written in the reference
        "loopback": {"target": "LOOP"},        # 127.0.0.1
        "loopback6": {"target": "LOOP6"},      # [::1]: refused before any connection
        "localhost": {"target": "LOOPNAME"},   # the name localhost
        "dns": {"target": "METANAME"},         # a name that resolves to 169.254.169.254
        "redirect": {"target": "HOP"},         # the public server answers 302 to imds.example.test
    })
    assert_refused(got["metadata"], METADATA)
    assert_refused(got["loopback"], "127.0.0.1")
    assert_refused(got["loopback6"], "::1")
    assert_refused(got["localhost"], "localhost")
    assert_refused(got["dns"], f"resolves to {METADATA}")
    assert_refused(got["redirect"], f"resolves to {METADATA}")


def test_what_may_reach_local_addresses(tmp_path):
    """The same references are read when the user allows it, when the reference set itself is on
    a local address, and a NetCDF data_uri redirected to the metadata service is still refused. The
    public control reads the public server only."""
    got = run_cases(tmp_path, {
        "public": {"target": "PUB"},
        "allowed": {"target": "META", "config": {"allow_local_references": True}},
        "from_loopback": {"target": "META", "served_from": "loop"},
        "netcdf_redirect": {"target": "PUB", "data_uri": "PUB/hop/era5/era5_small_20000101.nc"},
    })
    for name in ("public", "allowed", "from_loopback"):
        assert got[name]["exit"] == 0 and got[name]["complete"], (name, got[name])
    assert not got["public"]["reached"]
    assert got["allowed"]["reached"] and got["from_loopback"]["reached"]
    assert_refused(got["netcdf_redirect"], f"resolves to {METADATA}")


def test_behind_a_proxy_names_are_resolved_here_first(tmp_path):
    """Behind http_proxy the proxy resolves names, so the connect-time check never saw where
    imds.example.test leads. Before: 'dns' ended with exit 0, the 'metadata service's' bytes
    cached through the proxy, and 'nowhere' with the proxy's 502. Now the name is resolved here
    first: a local answer is refused as without a proxy, no answer is refused as uncheckable. The
    public control goes through the proxy as before."""
    got = run_cases(tmp_path, {
        "dns": {"target": "METANAME", "proxy": True},
        "nowhere": {"target": "NOWHERE", "proxy": True},
        "public": {"target": "MIRROR", "proxy": True},  # another public host than data_uri's
    })
    assert_refused(got["dns"], f"resolves to {METADATA}")
    assert_refused(got["nowhere"], "does not resolve here")
    assert got["public"]["exit"] == 0 and got["public"]["complete"], got["public"]
    assert got["public"]["proxied"], got["public"]


if __name__ == "__main__":
    in_namespace(Path(sys.argv[1]))

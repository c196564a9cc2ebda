"""Real servers for the remote-source tests, started on loopback on free ports and stopped after:
nginx (Debian's nginx-light) serving a folder with range requests, s3rver (npm, installed by
scripts/setup.sh into .tools/node) as a local S3, and a small fault-injecting HTTP proxy."""
import email.utils
import http.client
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
S3RVER = REPO / ".tools" / "node" / "node_modules" / "s3rver" / "bin" / "s3rver.js"
S3RVER_ATOMIC = Path(__file__).resolve().parent / "s3rver_atomic.js"  # S3's all-or-nothing PUT
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """The request handler of every server here: HTTP/1.1 (keep-alive, as S3 and nginx answer) and
    no log lines on stderr."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass


def wait_for_port(port, proc, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class Nginx:
    """nginx serving `root` at http://127.0.0.1:PORT/. `requests()` reads its access log:
    (path, status, body bytes sent, Range header) per request."""

    def __init__(self, root, workdir):
        self.root = Path(root)
        self.dir = Path(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        d = self.dir
        user = "user root;" if os.geteuid() == 0 else ""  # pytest's folders are private to us
        (d / "nginx.conf").write_text(f"""
{user}
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
  log_format zp '$uri $status $body_bytes_sent "$http_range"';
  access_log {d}/access.log zp;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  types {{ application/json json; application/octet-stream nc; }}
  default_type application/octet-stream;
  keepalive_requests 10000;
  server {{
    listen 127.0.0.1:{self.port};
    root {self.root};
    location / {{ }}
  }}
}}
""")
        self.proc = subprocess.Popen([NGINX, "-c", str(d / "nginx.conf"), "-p", str(d), "-e", str(d / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port, self.proc)
        return self

    def __exit__(self, *exc):
        stop(self.proc)

    def requests(self):
        log = self.dir / "access.log"
        if not log.exists():
            return []
        out = []
        for line in log.read_text().splitlines():
            path, status, sent, rng = line.split(" ", 3)
            out.append((path, int(status), int(sent), rng.strip('"')))
        return out


class S3rver:
    """s3rver (a local S3) at http://127.0.0.1:PORT with the access key S3RVER/S3RVER."""

    KEY = "S3RVER"
    SECRET = "S3RVER"

    def __init__(self, workdir):
        self.dir = Path(workdir)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        if not S3RVER.exists():
            raise RuntimeError(f"s3rver is not installed at {S3RVER}: run scripts/setup.sh")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(["node", str(S3RVER_ATOMIC), str(S3RVER), "--directory", str(self.dir),
                                      "--address", "127.0.0.1", "--port", str(self.port), "--silent"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port, self.proc)
        return self

    def __exit__(self, *exc):
        stop(self.proc)

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.KEY,
                            aws_secret_access_key=self.SECRET, region_name="us-east-1")

    def upload_folder(self, bucket, folder, prefix=""):
        c = self.client()
        try:
            c.create_bucket(Bucket=bucket)
        except c.exceptions.BucketAlreadyOwnedByYou:
            pass
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file():
                key = prefix + p.relative_to(folder).as_posix()
                c.put_object(Bucket=bucket, Key=key, Body=p.read_bytes())

    def options(self, **extra):
        return {"key": self.KEY, "secret": self.SECRET, "endpoint_url": self.endpoint, **extra}


class LoopbackHttp:
    """A threaded HTTP server on 127.0.0.1:self.port for a handler class that subclasses make."""

    def serve(self, handler):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class FaultProxy(LoopbackHttp):
    """An HTTP proxy to `upstream` (http://127.0.0.1:PORT) that injects faults into responses.
    `plan(n)` gives the fault of the n-th request (0-based): None, "503", "429", "drop" (closes the
    connection halfway through the body), "short" (sends half the body with the full length and
    closes), "slow" (waits 1.5 s before answering). Counts what it did in `.injected`."""

    def __init__(self, upstream_port, plan, delay=0.0, hold=None):
        self.upstream_port = upstream_port
        self.plan = plan
        self.delay = delay  # seconds added before every answer: a long round trip
        # hold(method, path) -> True: that request (the first one only) waits for `release`, after
        # `holding` is set: a read in flight, for as long as the test needs.
        self.hold = hold
        self.holding = threading.Event()
        self.release = threading.Event()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.count = 0
        self.injected = {}
        self.lock = threading.Lock()

    def __enter__(self):
        proxy = self

        class Handler(QuietHandler):
            def _forward(self, head):
                with proxy.lock:
                    n = proxy.count
                    proxy.count += 1
                fault = proxy.plan(n)
                if proxy.hold and not proxy.holding.is_set() and proxy.hold("HEAD" if head else "GET", self.path):
                    proxy.holding.set()
                    proxy.release.wait(60)
                if proxy.delay:
                    time.sleep(proxy.delay)
                if fault:
                    with proxy.lock:
                        proxy.injected[fault] = proxy.injected.get(fault, 0) + 1
                if fault in ("503", "429"):
                    body = b"injected fault"
                    self.send_response(int(fault))
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if not head:
                        self.wfile.write(body)
                    return
                if fault == "slow":
                    time.sleep(1.5)
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("range", "if-match", "authorization")}
                conn.request("HEAD" if head else "GET", self.path, headers=headers)
                r = conn.getresponse()
                body = r.read()
                conn.close()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() in ("content-length", "content-range", "etag", "last-modified", "content-type",
                                     "accept-ranges"):
                        self.send_header(k, v)
                if fault in ("drop", "short"):
                    self.send_header("Connection", "close")
                self.end_headers()
                if head:
                    return
                if fault in ("drop", "short") and len(body) > 1:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                self.wfile.write(body)

            def do_GET(self):
                self._forward(False)

            def do_HEAD(self):
                self._forward(True)

        return self.serve(Handler)


class Recorder(LoopbackHttp):
    """A loopback HTTP server that answers 404 to everything and keeps each request's method,
    path and headers: what our client sent, to compare with botocore's signer."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.seen = []

    def __enter__(self):
        rec = self

        class Handler(QuietHandler):
            def _answer(self):
                rec.seen.append((self.command, self.path, dict(self.headers.items())))
                body = b"<Error><Code>NoSuchKey</Code></Error>"
                self.send_response(404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = _answer
            do_HEAD = _answer

        return self.serve(Handler)


class LatencyProxy:
    """A TCP relay to 127.0.0.1:`upstream_port` that delays every byte by `one_way` seconds in each
    direction (a round trip of 2 x one_way), as netem would; this kernel has no netem qdisc. Bytes
    flow as fast as asyncio relays them otherwise."""

    def __init__(self, upstream_port, one_way):
        self.upstream_port = upstream_port
        self.one_way = one_way
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        import asyncio
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        async def pump(reader, writer):
            queue = asyncio.Queue()

            async def send():
                while True:
                    at, data = await queue.get()
                    if data is None:
                        break
                    wait = at + self.one_way - self.loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    writer.write(data)
                    await writer.drain()
                writer.close()

            sender = asyncio.ensure_future(send())
            try:
                while True:
                    data = await reader.read(1 << 16)
                    if not data:
                        break
                    await queue.put((self.loop.time(), data))
            except (ConnectionError, OSError):
                pass
            await queue.put((0, None))
            try:
                await sender
            except (ConnectionError, OSError):
                pass

        async def handle(client_r, client_w):
            try:
                up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            except OSError:
                client_w.close()
                return
            await asyncio.gather(pump(client_r, up_w), pump(up_r, client_w), return_exceptions=True)

        async def main():
            self.server = await asyncio.start_server(handle, "127.0.0.1", self.port)
            started.set()
            async with self.server:
                await self.server.serve_forever()

        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(self._run(main)), daemon=True)
        self.thread.start()
        started.wait(10)
        return self

    async def _run(self, main):
        import asyncio
        try:
            await main()
        except asyncio.CancelledError:
            pass

    def __exit__(self, *exc):
        def close():
            self.server.close()
            for task in __import__("asyncio").all_tasks(self.loop):
                task.cancel()
        self.loop.call_soon_threadsafe(close)
        self.thread.join(10)


class FileServer(LoopbackHttp):
    """A loopback HTTP server of the files under `root` (GET with one Range, HEAD) that keeps each
    request's (method, path, headers) in `seen`. Hostile behaviours for the untrusted-server tests:
    `redirect(path)` -> a URL answers 302 to it; `answer(handler, path, data, start, end)` -> True
    when it answered a GET itself (a shifted Content-Range, an endless body...); start and end are
    the Range asked for, None for a whole object. `etag=False`: no ETag, only Last-Modified (the
    file's mtime), as many static servers answer; `versions=False`: neither ETag nor Last-Modified."""

    def __init__(self, root, redirect=None, answer=None, etag=True, versions=True):
        self.root = Path(root)
        self.etag = etag
        self.versions = versions
        self.redirect = redirect
        self.answer = answer
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.seen = []
        self.lock = threading.Lock()

    def header_values(self):
        """Every header value any request carried, lower-cased names: what a leak would show."""
        with self.lock:
            return [f"{k.lower()}: {v}" for _, _, h in self.seen for k, v in h.items()]

    def __enter__(self):
        srv = self

        class Handler(QuietHandler):
            def _reply(self, status, headers, body, head):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _serve(self, head):
                with srv.lock:
                    srv.seen.append((self.command, self.path, dict(self.headers.items())))
                path = self.path.split("?", 1)[0]
                target = srv.redirect(path) if srv.redirect else None
                if target:
                    return self._reply(302, {"Location": target}, b"", head)
                f = srv.root / path.lstrip("/")
                if not f.is_file():
                    return self._reply(404, {}, b"not found", head)
                data = f.read_bytes()
                rng = self.headers.get("Range")
                start = end = None
                if rng:
                    start, end = (int(x) for x in rng.split("=", 1)[1].split("-"))
                    end = min(end, len(data) - 1)
                if srv.answer and not head and srv.answer(self, path, data, start, end):
                    return
                version = {"ETag": '"v1"'} if srv.etag else {
                    "Last-Modified": email.utils.formatdate(f.stat().st_mtime, usegmt=True)}
                if not srv.versions:
                    version = {}
                if not rng:
                    return self._reply(200, version, data, head)
                self._reply(206, dict(version, **{"Content-Range": f"bytes {start}-{end}/{len(data)}"}),
                            data[start:end + 1], head)

            def do_GET(self):
                self._serve(False)

            def do_HEAD(self):
                self._serve(True)

        return self.serve(Handler)


class HostileS3(LoopbackHttp):
    """Path-style S3 at 127.0.0.1 for the untrusted-store and untrusted-source tests: objects from
    `root` (GET, HEAD; without a root every object is 404), and a ListObjectsV2 of any prefix that
    never ends: every page has `per_page` keys (`key` formatted with the prefix, the page n, i and
    k = n * per_page + i; each of `size` bytes) and says IsTruncated with a continuation token,
    always the same one (`repeat`) or a new one each page, until `max_pages`, so a client without
    a budget still finishes. `per_page=0`: the files under `root` as one page instead. `pages`
    counts the listing pages served. A GET of a path in `endless` ({"/bkt/key": how}) answers a
    body of zeros that does not end (bounded: 1 GiB or 60 s): "declared" says Content-Length
    4 GiB, "undeclared" says none and closes at the end, "slow" is that at 1 MiB/s; `sent` counts
    the bytes of such bodies the kernel took."""

    def __init__(self, root=None, per_page=1000, max_pages=2000, repeat=False, key="{prefix}{k}.done",
                 size=2, endless=None):
        self.root = Path(root) if root else None
        self.per_page = per_page
        self.max_pages = max_pages
        self.repeat = repeat
        self.key = key
        self.size = size
        self.endless = endless or {}
        self.sent = 0
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.pages = 0

    def __enter__(self):
        from urllib.parse import parse_qs, urlsplit
        srv = self

        class Handler(QuietHandler):
            def reply(self, status, body, head=False):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"e1"')
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def files(self, bucket, prefix):
                top = srv.root / bucket
                keys = sorted(p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file())
                body = ("<?xml version=\"1.0\"?><ListBucketResult>" + "".join(
                    f"<Contents><Key>{k}</Key><Size>{(top / k).stat().st_size}</Size></Contents>"
                    for k in keys if k.startswith(prefix)) + "<IsTruncated>false</IsTruncated></ListBucketResult>")
                self.reply(200, body.encode())

            def without_end(self, how):
                self.send_response(200)
                if how == "declared":
                    self.send_header("Content-Length", str(4 << 30))
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                block, deadline = b"\0" * (1 << 14 if how == "slow" else 1 << 16), time.monotonic() + 60
                try:
                    while srv.sent < (1 << 30) and time.monotonic() < deadline:
                        self.wfile.write(block)
                        srv.sent += len(block)
                        if how == "slow":
                            time.sleep(1 / 64)
                except OSError:
                    pass  # the client stopped reading and closed: what we want

            def listing(self, q):
                srv.pages += 1
                prefix = q.get("prefix", [""])[0]
                if srv.per_page == 0:
                    return self.files(urlsplit(self.path).path.strip("/"), prefix)
                n = srv.pages
                keys = "".join(f"<Contents><Key>{srv.key.format(prefix=prefix, n=n, i=i, k=n * srv.per_page + i)}"
                               f"</Key><Size>{srv.size}</Size></Contents>" for i in range(srv.per_page))
                more = n < srv.max_pages
                token = "same-token" if srv.repeat else f"token-{n}"
                body = ("<?xml version=\"1.0\"?><ListBucketResult>" + keys +
                        f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>" +
                        (f"<NextContinuationToken>{token}</NextContinuationToken>" if more else "") +
                        "</ListBucketResult>").encode()
                self.reply(200, body)

            def serve(self, head):
                u = urlsplit(self.path)
                q = parse_qs(u.query)
                if q.get("list-type") == ["2"]:
                    return self.listing(q)
                if not head and u.path in srv.endless:
                    return self.without_end(srv.endless[u.path])
                f = srv.root / u.path.lstrip("/") if srv.root else None
                if f and f.is_file():
                    return self.reply(200, f.read_bytes(), head)
                self.reply(404, b"<Error><Code>NoSuchKey</Code></Error>", head)

            def do_GET(self):
                self.serve(False)

            def do_HEAD(self):
                self.serve(True)

        return self.serve(Handler)

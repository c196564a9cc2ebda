"""Session 18 hostile review, finding 4 (branch fixhttp18): a server that ignores Range answers a
range request with 200 and the whole object. The bytes before the range are dropped as they arrive
(never stored), a range further in than ZP_HTTP_MAX_SKIP_MB (64 MiB) is refused at once naming the
URL and the range (exit 4), and a small object still reads right, merged ranges included."""
import http.server
import json
import sys
import threading
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from conftest import run_cache  # noqa: E402

CHUNK = 10  # float32 values a chunk: 40 bytes


class IgnoresRange:
    """A loopback server of /refs.json and /data.bin that answers every GET with 200 and the whole
    object, whatever Range says. `data` is bytes, or an int: that many zero bytes, sent in blocks of
    1 MiB (never held). It counts the body bytes it sent for data.bin and keeps the Range headers."""

    def __init__(self, data):
        self.data, self.sent, self.ranges = data, 0, []
        self.refs = b""
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def head(self, n):
                self.send_response(200)
                self.send_header("Content-Length", str(n))
                self.send_header("ETag", '"v1"')
                self.end_headers()

            def do_HEAD(self):
                self.head(len(outer.refs) if self.path == "/refs.json" else outer.size())

            def do_GET(self):
                if self.path == "/refs.json":
                    self.head(len(outer.refs))
                    self.wfile.write(outer.refs)
                    return
                outer.ranges.append(self.headers.get("Range"))
                self.head(outer.size())
                try:
                    for block in outer.blocks():
                        self.wfile.write(block)
                        outer.sent += len(block)
                except OSError:  # the client stopped reading: what a range needs is sent
                    pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    def size(self):
        return self.data if isinstance(self.data, int) else len(self.data)

    def blocks(self):
        if not isinstance(self.data, int):
            yield self.data
            return
        block, left = bytes(1 << 20), self.data
        while left > 0:
            yield block[:min(left, len(block))]
            left -= len(block)

    def __enter__(self):
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.srv.shutdown()
        self.srv.server_close()


def refs_for(url, offsets):
    """A reference set of one float32 variable `v` whose chunk i (CHUNK values) is at offsets[i]."""
    refs = {".zgroup": json.dumps({"zarr_format": 2}),
            "v/.zarray": json.dumps({"shape": [CHUNK * len(offsets)], "chunks": [CHUNK], "dtype": "<f4",
                                     "compressor": None, "fill_value": 0, "order": "C", "filters": None,
                                     "zarr_format": 2}),
            "v/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["x"]})}
    for i, at in enumerate(offsets):
        refs[f"v/{i}"] = [f"{url}/data.bin", at, CHUNK * 4]
    return json.dumps({"version": 1, "refs": refs}).encode()


def cache(tmp_path, srv, env=None):
    store = tmp_path / "s.zarr"
    proc = run_cache(tmp_path, {"data_uri": f"{srv.url}/refs.json", "cache_store": str(store),
                                "deploy_mode": "series", "memory_limit": "300MB", "recommend_changes": False},
                     env={"ZP_HTTP_RETRIES": "0", **(env or {})})
    return proc, store


def assert_refused(proc, srv, first, last):
    assert proc.returncode == 4, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    err = proc.stderr
    assert f"{srv.url}/data.bin" in err and "the server ignored Range" in err, err[-3000:]
    assert f"bytes {first}-{last}" in err and "ZP_HTTP_MAX_SKIP_MB" in err, err[-3000:]
    # Refused at the first bytes: what the server got out before the connection closed is socket
    # buffers, not the 256 MiB before the range (before the fix: all of it, held in memory).
    assert srv.sent < 32 << 20, srv.sent


def test_a_200_to_a_range_far_into_the_object_is_refused_unstored(tmp_path):
    """The reproducer's case at 256 MiB (8 GiB there): before the fix 256 MiB were received and
    held, the slice cut out afterwards, and the run succeeded (exit 0)."""
    at = 256 << 20
    with IgnoresRange(at + 4 * CHUNK) as srv:
        srv.refs = refs_for(srv.url, [at])
        proc, _ = cache(tmp_path, srv)
    assert_refused(proc, srv, at, at + 4 * CHUNK - 1)


def test_merged_ranges_far_in_are_refused_alike(tmp_path):
    """Two neighbouring chunks go as one request (read_many merges them): the same refusal."""
    at = 256 << 20
    with IgnoresRange(at + 8 * CHUNK + 100) as srv:
        srv.refs = refs_for(srv.url, [at, at + 4 * CHUNK + 100])
        proc, _ = cache(tmp_path, srv)
    assert f"bytes={at}-{at + 8 * CHUNK + 99}" in srv.ranges, srv.ranges  # one merged request
    assert_refused(proc, srv, at, at + 8 * CHUNK + 99)


def small_object(pad, gaps):
    """`pad` bytes of 0xFF (NaN as float32), then chunk i of arange values after gaps[i] more of
    them: wrong bytes kept decode as NaN or as the wrong numbers. The bytes and the offsets."""
    data, offsets = bytearray(b"\xff" * pad), []
    values = np.arange(CHUNK * len(gaps), dtype="<f4") + 0.5
    for i, gap in enumerate(gaps):
        data += b"\xff" * gap
        offsets.append(len(data))
        data += values[i * CHUNK:(i + 1) * CHUNK].tobytes()
    return bytes(data + b"\xff" * 1000), offsets, values


def test_a_small_object_that_ignores_range_still_reads_right(tmp_path):
    """Chunks 700 KB in, some merged with gaps between them, under a skip bound of 1 MiB: the values
    xarray reads back are the ones written (the merged pieces cut at the right places)."""
    import xarray as xr
    data, offsets, values = small_object(700_000, [0, 0, 100, 5000, 20_000, 3])
    with IgnoresRange(data) as srv:
        srv.refs = refs_for(srv.url, offsets)
        proc, store = cache(tmp_path, srv, {"ZP_HTTP_MAX_SKIP_MB": "1"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert any(r and int(r.split("-")[1]) - int(r.split("=")[1].split("-")[0]) + 1 > 4 * CHUNK
                   for r in srv.ranges), srv.ranges  # some ranges went merged
    with xr.open_zarr(store, consolidated=False) as ds:
        np.testing.assert_array_equal(ds["v"].values, values)


def test_the_skip_bound_is_the_ranges_offset(tmp_path):
    """ZP_HTTP_MAX_SKIP_MB=1: a chunk starting 1 MiB in is read, one starting 4 bytes later is
    refused (before the fix: any offset was read)."""
    import xarray as xr
    for shift, ok in ((0, True), (4, False)):
        data, offsets, values = small_object((1 << 20) + shift, [0])
        run = tmp_path / str(shift)
        run.mkdir()
        with IgnoresRange(data) as srv:
            srv.refs = refs_for(srv.url, offsets)
            proc, store = cache(run, srv, {"ZP_HTTP_MAX_SKIP_MB": "1"})
        if ok:
            assert proc.returncode == 0, proc.stderr[-3000:]
            with xr.open_zarr(store, consolidated=False) as ds:
                np.testing.assert_array_equal(ds["v"].values, values)
        else:
            assert_refused(proc, srv, offsets[0], offsets[0] + 4 * CHUNK - 1)

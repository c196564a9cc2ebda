"""Round trips behind a network. A remote job decodes and writes its first units while its later
bytes are still on their way: it fetches a small first batch, then each next batch while the one
before is decoded, never more than kRemoteBatchBytes held (a proxy holds the last file's read:
the first files' chunks must be in the store meanwhile). Planning reads all coordinates in one
round of requests (nginx's log counts them)."""
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, SAMPLE_BIN, assert_matches, open_netcdf
from servers import FaultProxy, FileServer, Nginx

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                                reason="nginx-light not installed (scripts/setup.sh --tests)")


def written_chunks(store):
    """d2m's chunk keys in the store (not temporaries on their way)."""
    folder = store / "d2m"
    return sorted(p.name for p in folder.iterdir() if re.fullmatch(r"\d+\.\d+\.\d+", p.name)) if folder.is_dir() else []


def test_first_units_are_written_while_the_last_bytes_are_held(tmp_path):
    root = tmp_path / "www"
    # 4 files of one uncompressed 3.1 MB chunk each: one job of 4 units, 12.5 MB in all.
    subprocess.run([str(SAMPLE_BIN), "--out", str(root), "--files", "4", "--lat", "181", "--lon", "360",
                    "--chunks", "24", "181", "360", "--no-t2m"], check=True, capture_output=True, timeout=300)
    subprocess.run([str(BIN), "refs", str(root / "*.nc"), "-o", str(root / "refs.json"), "--relative"],
                   check=True, capture_output=True, timeout=300)
    last = sorted(p.name for p in root.glob("*.nc"))[-1]
    store = tmp_path / "p.zarr"
    with Nginx(root, tmp_path / "nginx") as server:
        hold = lambda method, path: method == "GET" and last in path  # noqa: E731
        with FaultProxy(server.port, lambda n: None, hold=hold) as proxy:
            cfg = {"data_uri": f"{proxy.url}/refs.json", "cache_store": str(store), "deploy_mode": "series",
                   "chunks": {"time": 24, "latitude": -1, "longitude": -1}, "recommend_changes": False}
            path = tmp_path / "c.yaml"
            path.write_text(json.dumps(cfg))
            proc = subprocess.Popen([str(BIN), "cache", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                assert proxy.holding.wait(120), "the last file was never read"
                end = time.monotonic() + 30
                while time.monotonic() < end and len(written_chunks(store)) < 2:
                    time.sleep(0.05)
                # Held: the last file's chunk is not there, the first two files' are (the third's
                # may be, by how the batches fell).
                held = written_chunks(store)
                assert {"0.0.0", "1.0.0"} <= set(held) and "3.0.0" not in held, held
            finally:
                proxy.release.set()
                out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert len(written_chunks(store)) == 4
    assert_matches(store, open_netcdf(root / "*.nc"), open_netcdf(root / "*.nc", mask_and_scale=False,
                                                                  decode_times=False))


def two_files_and_their_refs(tmp_path):
    """Two sample files in tmp_path/www and their reference set, nothing inlined: latitude and
    longitude are byte ranges of the first file, side by side. (root, the refs)."""
    root = tmp_path / "www"
    subprocess.run([str(SAMPLE_BIN), "--out", str(root), "--files", "2", "--lat", "73", "--lon", "144",
                    "--chunks", "24", "73", "144", "--no-t2m"], check=True, capture_output=True, timeout=300)
    subprocess.run([str(BIN), "refs", str(root / "*.nc"), "-o", str(root / "refs.json"), "--relative",
                    "--inline-threshold", "0"], check=True, capture_output=True, timeout=300)
    return root, json.loads((root / "refs.json").read_text())["refs"]


def cache_the_box(url, store, tmp_path):
    """`cache` of the reference set at `url` (series, latitude 60..-30) into `store`; exit 0."""
    cfg = {"data_uri": f"{url}/refs.json", "cache_store": str(store), "deploy_mode": "series",
           "recommend_changes": False, "preprocessors": [{"type": "sel", "latitude": [60, -30]}]}
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(cfg))
    proc = subprocess.run([str(BIN), "cache", str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_the_coordinates_are_read_in_one_round_of_requests(tmp_path):
    root, refs = two_files_and_their_refs(tmp_path)
    assert all(isinstance(refs[f"{c}/0"], list) for c in ("latitude", "longitude"))
    with Nginx(root, tmp_path / "nginx") as server:
        cfg = {"data_uri": f"{server.url}/refs.json", "cache_store": str(tmp_path / "p.zarr"),
               "recommend_changes": False, "preprocessors": [{"type": "sel", "latitude": [60, -30]}]}
        path = tmp_path / "c.yaml"
        path.write_text(json.dumps(cfg))
        proc = subprocess.run([str(BIN), "plan", str(path), "--json"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        ranged = [r for r in server.requests() if r[0].endswith(".nc") and r[3] not in ("", "-")]
    # Planning reads the two coordinates (the selection needs them) and no chunk of d2m: one request,
    # the two ranges merged (they used to be read one after the other, a round trip each).
    assert len(ranged) == 1, ranged
    lat, lon = refs["latitude/0"], refs["longitude/0"]
    assert ranged[0][2] == lon[1] + lon[2] - lat[1], ranged


def test_the_coordinate_arrays_are_written_from_one_round_of_requests(tmp_path):
    root, refs = two_files_and_their_refs(tmp_path)
    lat, lon = refs["latitude/0"], refs["longitude/0"]
    store = tmp_path / "p.zarr"
    with Nginx(root, tmp_path / "nginx") as server:
        cache_the_box(server.url, store, tmp_path)
        ranged = [r for r in server.requests() if r[0].endswith(".nc") and r[3] not in ("", "-")]
    # The coordinates are read once, latitude and longitude in one request: the arrays written
    # before the jobs reuse the plan's read, its ETag being the fingerprint's (they were read a
    # second time before, and before that one request each).
    both = lon[1] + lon[2] - lat[1]
    coordinate_reads = [r for r in ranged if r[2] <= both and lat[0] in r[0]]
    assert [r[2] for r in coordinate_reads] == [both], ranged
    assert_matches(store, open_netcdf(root / "*.nc").sel(latitude=slice(60, -30)),
                   open_netcdf(root / "*.nc", mask_and_scale=False, decode_times=False).sel(latitude=slice(60, -30)))


def test_the_coordinates_are_read_again_when_their_first_answer_was_another_version(tmp_path):
    root, refs = two_files_and_their_refs(tmp_path)
    first = Path(refs["latitude/0"][0]).name
    answered = []

    # The first read of the coordinates (for the plan) carries ETag "v0", every later answer and
    # the fingerprint's HEAD "v1": the bytes of that first read are of another version than the
    # plan's fingerprint, so the coordinate arrays must not be written from them.
    def answer(handler, path, data, start, end):
        if start is None or not path.endswith(first) or answered:
            return False
        answered.append(path)
        handler._reply(206, {"ETag": '"v0"', "Content-Range": f"bytes {start}-{end}/{len(data)}"},
                       data[start:end + 1], False)
        return True

    store = tmp_path / "p.zarr"
    with FileServer(root, answer=answer) as server:
        cache_the_box(server.url, store, tmp_path)
        lat, lon = refs["latitude/0"], refs["longitude/0"]
        both = f"bytes={lat[1]}-{lon[1] + lon[2] - 1}"
        reads = [p for m, p, h in server.seen if m == "GET" and h.get("Range") == both]
    assert answered and len(reads) == 2, server.seen
    assert_matches(store, open_netcdf(root / "*.nc").sel(latitude=slice(60, -30)),
                   open_netcdf(root / "*.nc", mask_and_scale=False, decode_times=False).sel(latitude=slice(60, -30)))

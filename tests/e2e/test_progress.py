"""Progress as a user sees it during a run: the --json events carry the bytes read and the chunks
written so far (not 0 until the end), and the terminal bar fits a narrow terminal. A reference set
served by nginx through a proxy that holds the second job's first read, so the run is caught
between jobs for as long as the test needs, whatever the machine's speed."""
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import termios
import threading
import time

import pytest

from conftest import BIN, SAMPLE_BIN
from servers import FaultProxy, Nginx


@pytest.fixture
def held_run(tmp_path):
    """(proxy, config path): two jobs of one output chunk each (one file a job); the proxy holds the
    first GET of the second file until proxy.release is set."""
    root = tmp_path / "www"
    subprocess.run([str(SAMPLE_BIN), "--out", str(root), "--files", "2", "--lat", "73", "--lon", "144",
                    "--chunks", "24", "73", "144", "--no-t2m"], check=True, capture_output=True)
    subprocess.run([str(BIN), "refs", str(root / "*.nc"), "-o", str(root / "refs.json"), "--relative"],
                   check=True, capture_output=True)
    second = sorted(p.name for p in root.glob("*.nc"))[1]
    with Nginx(root, tmp_path / "nginx") as server:
        with FaultProxy(server.port, lambda n: None, hold=lambda method, path: method == "GET" and second in path) as proxy:
            cfg = {"data_uri": f"{proxy.url}/refs.json", "cache_store": str(tmp_path / "p.zarr"),
                   "deploy_mode": "local", "simultaneous_worker_limit": 1, "num_jobs": 2,
                   "chunks": {"time": 24, "latitude": -1, "longitude": -1}, "recommend_changes": False}
            path = tmp_path / "c.yaml"
            path.write_text(json.dumps(cfg))
            yield proxy, path
            proxy.release.set()


def read_until(fd, done, seconds):
    """Reads `fd` until done(text so far) or `seconds` pass; returns the text."""
    text = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not done(text.decode(errors="replace")):
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # a pty whose other side closed
                break
            if not chunk:
                break
            text += chunk
    return text.decode(errors="replace")


def test_json_progress_counts_bytes_and_chunks_between_jobs(held_run):
    proxy, cfg = held_run
    proc = subprocess.Popen([str(BIN), "cache", str(cfg), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def caught(text):
            events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
            return any(e["event"] == "progress" and e["jobs_done"] == 1 for e in events)
        assert proxy.holding.wait(60), "the second job never read its file"
        text = read_until(proc.stdout.fileno(), caught, 30)
        assert caught(text), text
        mid = [e for e in map(json.loads, text.splitlines()) if e["event"] == "progress" and e["jobs_done"] == 1]
        # One job of two done, the second held: its bytes are counted, its chunks are half of the run's.
        assert all(e["bytes_read"] > 0 and e["bytes_written"] > 0 for e in mid), mid
        assert all(e["chunks_done"] == 1 and e["chunks_total"] == 2 for e in mid), mid
        assert all(e["eta_s"] >= 0 for e in mid), mid
    finally:
        proxy.release.set()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    done = [json.loads(line) for line in out.decode().splitlines() if '"event":"done"' in line]
    assert done and done[0]["bytes_read"] > 0 and done[0]["chunks_done"] == 2, out


def test_the_bar_fits_a_narrow_terminal(held_run):
    proxy, cfg = held_run
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))
    env = dict(os.environ, COLUMNS="200")  # the terminal's own width wins over a stale COLUMNS
    proc = subprocess.Popen([str(BIN), "cache", str(cfg), "--log-level", "1"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=child, env=env)
    os.close(child)
    try:
        assert proxy.holding.wait(60), "the second job never read its file"
        text = read_until(parent, lambda t: t.count("\r") >= 3 and "jobs" in t.rsplit("\r", 1)[-1], 20)
    finally:
        proxy.release.set()
        text += read_until(parent, lambda t: False, 5) if proc.wait(timeout=120) is not None else ""
        os.close(parent)
    assert proc.returncode == 0, text
    bars = [seg.replace("\x1b[K", "") for line in text.split("\n") for seg in line.split("\r")]
    bars = [b for b in bars if "jobs" in b and not b.startswith("zarr-parallel:")]  # not the log lines
    assert bars, repr(text)
    assert all(len(b) <= 39 for b in bars), [b for b in bars if len(b) > 39]



def test_json_progress_is_prompt_at_the_start_and_after_each_job(held_run):
    """The first `progress` record comes right after `start`, and a finished job is reported by a
    `progress` record at once. Before, records were throttled to one a second on the coordinator's
    1 s tick: the first came 1-2 s after `start`, a finished job's state a tick or two late."""
    proxy, cfg = held_run
    proc = subprocess.Popen([str(BIN), "cache", str(cfg), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []  # (when read, event)

    def reader():
        for line in proc.stdout:
            lines.append((time.monotonic(), json.loads(line)))
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert proxy.holding.wait(60), "the second job never read its file"
        deadline = time.monotonic() + 30
        while not any(e["event"] == "job_done" for _, e in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.5)  # past the old throttle and a heartbeat, whatever came late
    finally:
        proxy.release.set()
        proc.wait(timeout=120)
        thread.join(timeout=30)
    assert proc.returncode == 0, proc.stderr.read()
    names = [e["event"] for _, e in lines]
    first = names.index("start")
    assert names[first + 1] == "progress", names
    assert lines[first + 1][0] - lines[first][0] < 0.3, (names, [t for t, _ in lines])
    done = names.index("job_done")  # the first job's; the second is held meanwhile
    after = lines[done + 1]
    assert after[1]["event"] == "progress" and after[1]["jobs_done"] == 1, names
    assert after[0] - lines[done][0] < 0.3, (names, [t for t, _ in lines])
    assert names[-2:] == ["done", "complete"], names

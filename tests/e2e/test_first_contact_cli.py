"""What a newcomer following the README meets first: a reader that leaves the pipe early, the
status of dead workers, verify on a store whose run was cut short, and counts in messages that read
as English. Our binary, judged by xarray opening what it wrote and by the shell's own rules."""
import json
import os
import re
import socket
import subprocess
import time

from conftest import BIN, ERA5, base_config, need_fixtures, run_cache


def write_config(tmp_path, cfg, name="c.yaml"):
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return path


def test_a_reader_that_leaves_does_not_stop_the_run(tmp_path):
    """`cache --json | head -1`: the run's product is the store, its stdout only a view of the work,
    so the reader leaving silences the stream and the run finishes (exit 0, store complete and
    equal to the source), with no exception printed. Before: killed by SIGPIPE midway (-13)."""
    need_fixtures()
    store = tmp_path / "pipe.zarr"
    cfg = write_config(tmp_path, base_config(store, deploy_mode="local", recommend_changes=False))
    err = open(tmp_path / "stderr.txt", "w+")
    proc = subprocess.Popen([str(BIN), "cache", str(cfg), "--json", "--log-level", "2"],
                            stdout=subprocess.PIPE, stderr=err)
    first = json.loads(proc.stdout.readline())
    assert first["event"] == "plan", first
    proc.stdout.close()  # as `head -1` does once it has its line
    code = proc.wait(timeout=120)
    err.seek(0)
    text = err.read()
    assert code == 0, (code, text[-2000:])
    assert "internal error" not in text and "terminate" not in text and "Broken pipe" not in text, text
    assert (store / ".zarr-parallel" / "complete.json").exists()
    assert run_cache(tmp_path, base_config(store, deploy_mode="local", recommend_changes=False),
                     command="verify").returncode == 0


def test_both_streams_closed_still_finish_the_store(tmp_path):
    """`cache --log-level 2 2>&1 | head -1`: stdout and stderr are the same pipe, closed early."""
    need_fixtures()
    store = tmp_path / "both.zarr"
    cfg = write_config(tmp_path, base_config(store, deploy_mode="local", recommend_changes=False))
    proc = subprocess.Popen([str(BIN), "cache", str(cfg), "--log-level", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    assert (store / ".zarr-parallel" / "complete.json").exists()


def test_plan_into_a_closed_pipe_ends_quietly(tmp_path):
    """`plan | head -1`, whose output is its product: with its reader gone it stops quietly with the
    status a shell shows for a tool SIGPIPE ended (141), never an internal error. (Before, SIGPIPE
    itself ended it: -13 here; ignoring SIGPIPE for the cache run must not turn it into an error.)"""
    need_fixtures()
    cfg = write_config(tmp_path, base_config(tmp_path / "p.zarr"))
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first line
    try:
        proc = subprocess.run([str(BIN), "plan", str(cfg)], stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, (proc.returncode, proc.stderr)
    assert proc.stderr == "", proc.stderr


def finished_store(tmp_path):
    store = tmp_path / "st.zarr"
    run_cache(tmp_path, base_config(store, deploy_mode="series", recommend_changes=False), check=0)
    return store


def write_beat(store, worker, **fields):
    folder = store / ".zarr-parallel" / "heartbeats"
    folder.mkdir(exist_ok=True)
    (folder / f"{worker}.json").write_text(json.dumps(dict(worker=worker, **fields)))


def test_status_shows_dead_and_stale_workers_with_their_age(tmp_path):
    need_fixtures()
    store = finished_store(tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its pid names no process
    now, here = time.time(), socket.gethostname()
    for old in (store / ".zarr-parallel" / "heartbeats").glob("*.json"):
        old.unlink()
    write_beat(store, "alive-here", host=here, pid=os.getpid(), time=now, job=1)
    write_beat(store, "gone-here", host=here, pid=gone.pid, time=now - 3, job=2)
    # Another host's worker silent for a minute: its process cannot be seen from here; five missed
    # beats make it stale (the coordinator waits worker_timeout, 30 min, before declaring it lost).
    write_beat(store, "silent-far", host="elsewhere.invalid", pid=4242, time=now - 60, job=3)
    write_beat(store, "lost-far", host="elsewhere.invalid", pid=4243, time=now - 7200, job=4)
    write_beat(store, "odd", host=here, pid="12", time="yesterday", chunks_done=[])  # untrusted file
    proc = subprocess.run([str(BIN), "status", str(store)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "workers    1 live, 1 stale, 3 dead" in proc.stdout, proc.stdout
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert "alive" in lines["alive-here"]
    # Ages as written a moment ago; a loaded machine may take a second to run status.
    assert re.search(r"dead \(process gone\), last heartbeat [34] s ago", lines["gone-here"]), lines
    assert re.search(r"stale.*, last heartbeat 6[01] s ago", lines["silent-far"]), lines
    assert re.search(r"dead \(lost.*, last heartbeat 720[01] s ago", lines["lost-far"]), lines
    out = json.loads(subprocess.run([str(BIN), "status", str(store), "--json"], capture_output=True,
                                    text=True, timeout=60).stdout)
    assert [b["worker"] for b in out["live_workers"]] == ["alive-here"], out["live_workers"]
    assert out["workers"] == {"alive": 1, "stale": 1, "dead": 3}, out["workers"]
    states = {b["worker"]: (b["state"], int(b["age_s"])) for b in out["heartbeats"]}
    assert states["silent-far"] in (("stale", 60), ("stale", 61)), states
    assert states["gone-here"] in (("dead", 3), ("dead", 4)), states


def test_status_does_not_count_a_future_dated_heartbeat_alive(tmp_path):
    """Before: a beat dated an hour (or 31,000 years) ahead showed as alive, 0 s ago, and counted
    in live_workers: a forged file, or a node whose clock runs ahead, hid a hung worker. Beyond the
    60 s of clock skew the executors allow (beat_time), it is untrusted; within it, alive."""
    need_fixtures()
    store = finished_store(tmp_path)
    now, here = time.time(), socket.gethostname()
    for old in (store / ".zarr-parallel" / "heartbeats").glob("*.json"):
        old.unlink()
    write_beat(store, "alive-here", host=here, pid=os.getpid(), time=now, job=1)
    write_beat(store, "skewed", host=here, pid=os.getpid(), time=now + 30, job=2)  # within the skew
    write_beat(store, "ahead", host=here, pid=os.getpid(), time=now + 3600, job=3)
    write_beat(store, "year-33658", host="elsewhere.invalid", pid=4242, time=1e12, job=4)
    proc = subprocess.run([str(BIN), "status", str(store)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "workers    2 live, 2 untrusted" in proc.stdout, proc.stdout
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert re.search(r"untrusted \(clock ahead: dated 3[56]\d\d s in the future", lines["ahead"]), lines
    assert "untrusted (clock ahead" in lines["year-33658"] and "ago" not in lines["year-33658"], lines
    assert "alive" in lines["skewed"], lines
    out = json.loads(subprocess.run([str(BIN), "status", str(store), "--json"], capture_output=True,
                                    text=True, timeout=60).stdout)
    assert sorted(b["worker"] for b in out["live_workers"]) == ["alive-here", "skewed"], out["live_workers"]
    assert out["workers"] == {"alive": 2, "untrusted": 2}, out["workers"]
    states = {b["worker"]: b["state"] for b in out["heartbeats"]}
    assert states == {"alive-here": "alive", "skewed": "alive", "ahead": "untrusted", "year-33658": "untrusted"}


def test_verify_on_an_interrupted_store_says_incomplete_with_exit_2(tmp_path):
    """The README's verify codes: 0 identical, 1 different, 2 could not verify. A store whose run
    was cut short cannot be compared: 2, saying it is incomplete and how to finish it."""
    need_fixtures()
    store = tmp_path / "cut.zarr"
    cfg = base_config(store, deploy_mode="series", recommend_changes=False)
    killed = run_cache(tmp_path, cfg, env={"ZP_FAULT_KILL_ONCE": str(tmp_path / "fired")})
    assert killed.returncode == -9, killed.stderr
    proc = run_cache(tmp_path, cfg, command="verify")
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "incomplete" in proc.stderr and "--set resume=true" in proc.stderr, proc.stderr
    assert "different" not in proc.stdout, proc.stdout  # no chunk list of what is not written yet
    run_cache(tmp_path, dict(cfg, resume=True), check=0)
    run_cache(tmp_path, cfg, command="verify", check=0)


ONE = re.compile(r"(?<![\d./])1 (jobs|workers|chunks|files|variables|threads|values|tiles|times|retries|"
                 r"array tasks|chunk references|output chunks|source chunks|dimensions)\b")


def test_counts_of_one_read_as_english(tmp_path):
    """One job on one worker writing one chunk of one variable from one file: every message says
    "1 job", "1 worker", "1 chunk", "1 file"; none says "1 jobs" or "file(s)"."""
    need_fixtures()
    src = ERA5 / "era5_small_20000101.nc"
    store = tmp_path / "one.zarr"
    cfg = {"data_uri": str(src), "variables": ["d2m"], "cache_store": str(store), "num_jobs": 1,
           "chunks": {"time": -1, "latitude": -1, "longitude": -1}, "deploy_mode": "local",
           "simultaneous_worker_limit": 1, "recommend_changes": False}
    texts = []
    for command, extra in (("cache", ["--log-level", "2"]), ("plan", []), ("verify", [])):
        proc = run_cache(tmp_path, cfg, *extra, command=command, check=0)
        texts.append(proc.stdout + proc.stderr)
    assert "1/1 job done" in texts[0] and "1 worker at most" in texts[0], texts[0]
    assert "1 job to run" in texts[0], texts[0]
    for args in (["inspect", str(src)], ["status", str(store)],
                 ["refs", str(src), "-o", str(tmp_path / "one.json")]):
        proc = subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (args, proc.stderr)
        texts.append(proc.stdout + proc.stderr)
    assert "engine, 1 file)" in texts[3], texts[3][:400]
    assert "over 1 file" in texts[5], texts[5]
    for text in texts:
        assert not ONE.search(text) and "(s)" not in text, (ONE.search(text), text[:3000])

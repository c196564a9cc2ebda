"""Small local runs (issue 32): when a plan has at most two jobs a worker, the workers are forks of
the coordinator that run the plan it holds (no exec, no plan.json read again), and every guarantee
of a local run still holds: a hung worker is found by its heartbeats and replaced, a signal stops
the run resumably with no worker left, a killed coordinator takes its workers along. A worker's
command line tells the two kinds apart: an exec'd one runs `zarr-parallel worker PLAN ...`, a
forked one still shows its coordinator's `zarr-parallel cache CONFIG`."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (BIN, ERA5, none_alive_within, assert_matches, base_config, children_of, need_fixtures, open_kerchunk,
                      run_cache, store_files)


def expected_source():
    return open_kerchunk(ERA5 / "refs.json").sel(time=slice("2000-01-01 00:00", "2000-01-04 23:00"))


def command_line(pid):
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]


def start_held_run(tmp_path, cfg, env=None):
    """Starts `cache` with its first worker stopping itself after one chunk (SIGSTOP); returns once
    that worker has stopped: the process, the workers' pids, and their command lines."""
    path = tmp_path / f"cfg_{Path(cfg['cache_store']).name}.yaml"
    path.write_text(json.dumps(cfg))
    flag = tmp_path / f"stopped_{Path(cfg['cache_store']).name}"
    full_env = dict(os.environ, ZP_FAULT_STOP_ONCE=str(flag), **(env or {}))
    proc = subprocess.Popen([str(BIN), "cache", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full_env)
    for _ in range(600):
        if flag.exists() and children_of(proc.pid):
            break
        time.sleep(0.05)
    assert flag.exists(), "the fault was not injected"
    workers = children_of(proc.pid)
    return proc, workers, {w: command_line(w) for w in workers}


def small_config(store, **extra):
    """base_config's four days in 2 jobs on 2 workers: one job a worker slot."""
    return base_config(store, num_jobs=2, **extra)


def test_small_run_workers_are_forks_and_a_hung_one_is_replaced(tmp_path):
    need_fixtures()
    clean = tmp_path / "clean.zarr"
    run_cache(tmp_path, small_config(clean, deploy_mode="series"), check=0)
    store = tmp_path / "small.zarr"
    # Copies off: the other worker would copy the stopped one's job before its heartbeat timeout.
    proc, workers, lines = start_held_run(tmp_path, small_config(store, worker_timeout="0:02"),
                                          env={"ZP_FAULT_NO_COPIES": "1"})
    _, err = proc.communicate(timeout=60)
    coordinator = [str(BIN).encode(), b"cache"]
    assert workers and all(line[:2] == coordinator for line in lines.values()), lines
    assert proc.returncode == 0, err
    assert "no heartbeat for 2 s" in err and "running it again" in err, err
    assert len(list((store / ".zarr-parallel" / "jobs").glob("*.done"))) == 2
    assert store_files(store) == store_files(clean)
    assert_matches(store, expected_source())

    # Eight jobs on two workers is not a small run: its workers are exec'd as before.
    big = tmp_path / "big.zarr"
    proc, workers, lines = start_held_run(tmp_path, base_config(big, worker_timeout="0:02"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert workers and all(line[1] == b"worker" for line in lines.values()), lines
    assert store_files(big) == store_files(clean)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_small_run_resumably_with_no_fork_left(tmp_path, sig):
    need_fixtures()
    store = tmp_path / "sig.zarr"
    cfg = small_config(store, worker_timeout="10:00")
    proc, workers, lines = start_held_run(tmp_path, cfg)
    assert workers and all(line[1] == b"cache" for line in lines.values()), lines
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 128 + sig, err
    assert "resume: true" in err
    assert none_alive_within(workers), "a worker outlived its coordinator"
    assert not (tmp_path / ".sig.zarr.zp-lock").exists()
    again = run_cache(tmp_path, dict(cfg, resume=True), check=0)
    assert "resuming" in again.stderr
    assert_matches(store, expected_source())


def test_a_killed_coordinator_takes_its_forked_workers_along(tmp_path):
    need_fixtures()
    store = tmp_path / "orphan.zarr"
    proc, workers, lines = start_held_run(tmp_path, small_config(store, worker_timeout="10:00"))
    assert workers and all(line[1] == b"cache" for line in lines.values()), lines
    proc.kill()
    proc.wait()
    assert none_alive_within(workers)


def test_fork_workers_off_runs_exec_workers(tmp_path):
    """ZP_FORK_WORKERS=0 (for measuring both ways) gives a small run exec'd workers, same store."""
    need_fixtures()
    forked, execd = tmp_path / "forked.zarr", tmp_path / "execd.zarr"
    run_cache(tmp_path, small_config(forked), check=0)
    proc, workers, lines = start_held_run(tmp_path, small_config(execd, worker_timeout="0:02"),
                                          env={"ZP_FORK_WORKERS": "0"})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert workers and all(line[1] == b"worker" for line in lines.values()), lines
    assert store_files(execd) == store_files(forked)

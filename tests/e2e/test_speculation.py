"""Stragglers (issue 34): two copies of a job may run at once (deterministic output, atomic renames),
and a local run starts a copy of a job whose worker is slow instead of waiting on it."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from conftest import (BIN, ERA5, REPO, assert_matches, base_config, need_fixtures, open_kerchunk, resume_when_all_done,
                      run_cache, store_files)


def expected_source():
    return open_kerchunk(ERA5 / "refs.json").sel(time=slice("2000-01-01 00:00", "2000-01-04 23:00"))


def stopped(pid):
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def leftovers(store):
    return [p for p in Path(store).rglob("*") if ".zptmp." in p.name]


def test_two_copies_of_a_job_at_once_write_what_one_writes(tmp_path):
    """Copy A starts job 0 and stops after its first chunk; copy B runs job 0 whole; A then goes on
    and rewrites every chunk and the done marker while B's are already there."""
    need_fixtures()
    clean = tmp_path / "clean.zarr"
    run_cache(tmp_path, base_config(clean, deploy_mode="series"), check=0)
    store = tmp_path / "twice.zarr"
    cfg = base_config(store, deploy_mode="series")
    # A plan in the store and no job done: the coordinator is killed at its first chunk.
    proc = run_cache(tmp_path, cfg, env={"ZP_FAULT_KILL_ONCE": str(tmp_path / "killed")})
    assert proc.returncode == -9, proc.stderr
    plan = store / ".zarr-parallel" / "plan.json"
    done = store / ".zarr-parallel" / "jobs" / "0.done"
    assert not done.exists()
    flag = tmp_path / "a-stopped"
    a = subprocess.Popen([str(BIN), "worker", str(plan), "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=dict(os.environ, ZP_FAULT_STOP_ONCE=str(flag)))
    try:
        for _ in range(600):
            if flag.exists() and stopped(a.pid):
                break
            time.sleep(0.05)
        assert flag.exists() and stopped(a.pid), "copy A did not stop mid-job"
        b = subprocess.run([str(BIN), "worker", str(plan), "0"], capture_output=True, text=True, timeout=120)
        assert b.returncode == 0, b.stderr
        assert done.exists()
        os.kill(a.pid, signal.SIGCONT)
        _, err = a.communicate(timeout=120)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    assert a.returncode == 0, err
    assert [p.name for p in done.parent.glob("0.done*")] == ["0.done"]
    assert not leftovers(store)
    run_cache(tmp_path, dict(cfg, resume=True), check=0)
    assert store_files(store) == store_files(clean)
    assert run_cache(tmp_path, cfg, command="verify").returncode == 0
    assert_matches(store, expected_source())


def test_a_stopped_worker_no_longer_decides_the_end(tmp_path):
    """One worker stops itself mid-job (SIGSTOP: heartbeats stop too) and the worker timeout is 10
    minutes. The other worker runs out of jobs, starts a copy of the stopped one's job, and the run
    ends with the copy's result; the stopped worker is stopped for good."""
    need_fixtures()
    clean = tmp_path / "clean.zarr"
    run_cache(tmp_path, base_config(clean, deploy_mode="series"), check=0)
    store = tmp_path / "strag.zarr"
    cfg = base_config(store, deploy_mode="local", worker_timeout="10:00")
    cfg_path = tmp_path / "strag.yaml"
    cfg_path.write_text(json.dumps(cfg))
    flag = tmp_path / "stopped"
    t0 = time.monotonic()
    proc = subprocess.Popen([str(BIN), "cache", str(cfg_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, ZP_FAULT_STOP_ONCE=str(flag)))
    try:
        _, err = proc.communicate(timeout=90)  # without copies: 10 minutes, the worker timeout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - t0
    assert flag.exists(), "the fault was not injected"
    assert proc.returncode == 0, err
    assert "started a copy" in err and "the first was slow" in err, err
    assert "the copy finished first" in err and "stopping the other copy" in err, err
    assert "no heartbeat" not in err and "running it again" not in err, err
    assert elapsed < 60, elapsed
    jobs = len(json.loads((store / ".zarr-parallel" / "plan.json").read_text())["jobs"])
    assert len(list((store / ".zarr-parallel" / "jobs").glob("*.done"))) == jobs
    assert not leftovers(store)
    assert store_files(store) == store_files(clean)
    assert run_cache(tmp_path, cfg, command="verify").returncode == 0
    assert_matches(store, expected_source())


def test_a_slow_worker_gets_its_copy_once_it_runs_past_the_median(tmp_path):
    """One worker sleeps 30 s in the middle of its first job, its heartbeats going on. Once no job
    is left to start and 3 jobs have finished, its job has run longer than the median finished job:
    an idle worker copies it (the progress rule), well before the old rule's 5 s floor, and the run
    ends long before the sleep would."""
    need_fixtures()
    clean = tmp_path / "clean.zarr"
    run_cache(tmp_path, base_config(clean, deploy_mode="series"), check=0)
    store = tmp_path / "slow.zarr"
    cfg = base_config(store, deploy_mode="local", worker_timeout="10:00")
    flag = tmp_path / "slept"
    t0 = time.monotonic()
    proc = run_cache(tmp_path, cfg, env={"ZP_FAULT_SLEEP_ONCE": str(flag), "ZP_FAULT_SLEEP_SECONDS": "30"},
                     check=0)
    elapsed = time.monotonic() - t0
    assert flag.exists(), "the fault was not injected"
    copy = re.search(r"started a copy on worker \S+, the first was slow \(ran ([0-9.]+) s", proc.stderr)
    assert copy and float(copy.group(1)) < 5, proc.stderr
    assert "the copy finished first" in proc.stderr and "stopping the other copy" in proc.stderr, proc.stderr
    assert elapsed < 25, elapsed
    assert not leftovers(store)
    assert store_files(store) == store_files(clean)
    assert run_cache(tmp_path, cfg, command="verify").returncode == 0


PY_DASK = """
import json, sys, zarr_parallel
if __name__ == "__main__":
    cfg = json.loads(sys.argv[1])
    zp = zarr_parallel.ZarrParallelAssembler(cfg["data_uri"], preprocessors=cfg["preprocessors"],
                                             chunks=cfg["chunks"], log_level=1)
    zp.cache(cache_store=cfg["cache_store"], num_jobs=cfg["num_jobs"], deploy_mode=sys.argv[2],
             simultaneous_worker_limit=2, recommend_changes=False, worker_timeout="10:00")
"""


def test_dask_copies_the_job_of_a_stopped_worker(tmp_path):
    """A dask worker stops itself mid-job (its whole process: dask still counts it as busy). The
    other worker runs out of jobs and gets a copy of the stopped job; every job is done while the
    worker is still stopped, and the store equals a series run's. Without copies the run waits for
    the stopped worker, which this test lets go on after 60 s."""
    import sys
    import threading
    need_fixtures()
    module_dir = Path(BIN).parent.parent / "python"
    if not list(module_dir.glob("zarr_parallel/_zarr_parallel*.so")):
        import pytest
        pytest.skip("the Python module is not built here (sanitizer builds leave it out)")
    script = tmp_path / "dask_run.py"
    script.write_text(PY_DASK)
    env = dict(os.environ, PYTHONPATH=str(module_dir))
    clean = tmp_path / "clean.zarr"
    subprocess.run([sys.executable, str(script), json.dumps(base_config(clean)), "series"], check=True,
                   cwd=tmp_path, env=env, capture_output=True, timeout=300)
    store = tmp_path / "dask.zarr"
    cfg = base_config(store)
    flag = tmp_path / "stopped"
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(script), json.dumps(cfg), "dask_distributed"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, start_new_session=True,
                            env=dict(env, ZP_FAULT_STOP_ONCE=str(flag)))
    log = []
    helper = threading.Thread(target=resume_when_all_done,
                              args=(proc, flag, store / ".zarr-parallel", 60, log))
    helper.start()
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        helper.join()
    elapsed = time.monotonic() - t0
    assert flag.exists(), "the fault was not injected"
    assert proc.returncode == 0, err[-3000:]
    assert "started a copy" in err and "the first was slow" in err, err[-3000:]
    assert log and log[0] == "all done while stopped", (log, err[-3000:])
    assert elapsed < 55, elapsed
    assert not leftovers(store)
    assert store_files(store) == store_files(clean)
    # verify with the config the Python module made (it names the engine).
    assert run_cache(tmp_path, dict(cfg, engine="kerchunk"), command="verify").returncode == 0
    assert_matches(store, expected_source())


def test_plan_simulate_on_one_worker_is_the_sum_of_the_jobs(tmp_path):
    """`plan --simulate 1`: one worker runs every job in turn, so the makespan is each job's read
    bytes at 100 MB/s plus 50 ms, summed over the plan's own jobs; the ideal has no start-up. A bad
    spec is refused (exit 2, naming --simulate) before anything is planned or written."""
    need_fixtures()
    store = tmp_path / "sim.zarr"
    cfg = base_config(store)
    plan = json.loads(run_cache(tmp_path, cfg, "--json", "--simulate", "1", command="plan", check=0).stdout)
    read = sum(j["read_bytes"] for j in plan["jobs"]) / 100e6
    sim = plan["simulation"]
    assert sim["workers"] == 1 and sim["slow_workers"] == 0 and sim["seeds"] == 5, sim
    assert abs(sim["ideal_seconds"] - read) < 1e-9, (sim, read)
    assert abs(sim["makespan_seconds"] - (read + 0.05 * len(plan["jobs"]))) < 1e-9, sim
    assert sim["ratio"] == sim["ratio_without_copies"] > 1, sim
    text = run_cache(tmp_path, cfg, "--simulate", "4,slow=25%x3,fail=1%", command="plan", check=0).stdout
    assert "4 workers (1 of them 3x slower), 1% of job attempts failing" in text, text
    assert "this plan was made for 2 workers" in text, text
    for bad in ["0", "4,slow=25%", "4,fail=80%", "4,speed=2"]:
        proc = run_cache(tmp_path, cfg, "--simulate", bad, command="plan", check=2)
        assert "--simulate" in proc.stderr and f"'{bad}'" in proc.stderr, proc.stderr
    assert not store.exists()


def test_dask_jobs_take_a_winner_and_its_cancelled_copy_from_one_wait():
    """Both futures of a job can come back from one wait(): the winner cancels the other, which is
    then met in the same loop. That raised KeyError and ended the dask run (CI, session 16)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("speculation", REPO / "python" / "zarr_parallel" / "speculation.py")
    speculation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(speculation)

    class Future:
        def __init__(self, key):
            self.key, self.status = key, "finished"

        def cancel(self):
            self.status = "cancelled"

        def result(self):
            return None

    made = []

    def submit(job, worker):
        made.append(Future(f"job-{job}{'' if worker is None else '-copy'}"))
        return made[-1]

    jobs = speculation.DaskJobs(client=None, submit=submit, jobs=[0, 1], log=lambda text: None)
    copy = submit(0, "tcp://idle")
    jobs.live[copy] = 0
    jobs.copied.add(0)
    assert jobs._finished(made[0]) is True and copy.status == "cancelled"
    assert jobs._finished(copy) is False
    assert jobs.unfinished == {1}


def test_dask_slow_worker_gets_a_copy_and_the_local_store(tmp_path):
    """A dask worker sleeps 60 s in the middle of its first job, its process and heartbeats alive (a
    slow node, not a stopped one). An idle worker gets a copy of that job, which wins: the run ends
    long before the sleep, and its store equals a local run's from the same Python call. Without
    copies the run waits out the sleep (checked with speculation.py's copies turned off)."""
    import sys
    need_fixtures()
    module_dir = Path(BIN).parent.parent / "python"
    if not list(module_dir.glob("zarr_parallel/_zarr_parallel*.so")):
        import pytest
        pytest.skip("the Python module is not built here (sanitizer builds leave it out)")
    script = tmp_path / "dask_run.py"
    script.write_text(PY_DASK)
    env = dict(os.environ, PYTHONPATH=str(module_dir))
    local = tmp_path / "local.zarr"
    subprocess.run([sys.executable, str(script), json.dumps(base_config(local)), "local"], check=True, cwd=tmp_path,
                   env=env, capture_output=True, timeout=300)
    store = tmp_path / "dask.zarr"
    flag = tmp_path / "slept"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(script), json.dumps(base_config(store)), "dask_distributed"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300, start_new_session=True,
                          env=dict(env, ZP_FAULT_SLEEP_ONCE=str(flag), ZP_FAULT_SLEEP_SECONDS="60"))
    elapsed = time.monotonic() - t0
    assert flag.exists(), "the fault was not injected"
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "started a copy" in proc.stderr and "the first was slow" in proc.stderr, proc.stderr[-3000:]
    assert elapsed < 45, elapsed
    assert not leftovers(store)
    assert store_files(store) == store_files(local)
    assert run_cache(tmp_path, dict(base_config(store), engine="kerchunk"), command="verify").returncode == 0

"""deploy_mode: slurm against a real single-node SLURM (slurmctld, slurmd, munge) that
scripts/slurm_local.sh starts on localhost for this module and stops afterwards."""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, ERA5, REPO, need_fixtures, run_cache, store_files

SCRIPT = REPO / "scripts" / "slurm_local.sh"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if not shutil.which("slurmctld") or not shutil.which("munged") or os.geteuid() != 0:
        pytest.skip("SLURM daemons not installed, or not root")
    folder = tmp_path_factory.mktemp("slurm")
    # Arrays of at most 4 tasks (sites set MaxArraySize; 1001 by default): every plan here, of 6 jobs
    # or more, is submitted as several arrays.
    proc = subprocess.run(["bash", str(SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, ZP_SLURM_MAX_ARRAY_SIZE="4"))
    assert proc.returncode == 0, proc.stderr
    env = dict(os.environ, SLURM_CONF=str(folder / "slurm.conf"))
    yield env
    subprocess.run(["bash", str(SCRIPT), "stop", str(folder)], timeout=60)


def config(store, **extra):
    cfg = {"data_uri": str(ERA5 / "refs.json"), "chunks": {"time": 24, "latitude": 19, "longitude": 36},
           "variables": ["d2m"], "cache_store": str(store), "num_jobs": 6, "recommend_changes": False,
           "deploy_mode": "slurm", "simultaneous_worker_limit": 2, "memory_limit": "300MB",
           "worker_timeout": "2:00", "slurm": {"partition": "debug", "extra": ["--nice=0"]}}
    cfg.update(extra)
    return cfg


def local_copy(tmp_path):
    store = tmp_path / "local.zarr"
    run_cache(tmp_path, config(store, deploy_mode="local"), check=0)
    return store


def claims_by_task(store):
    """The shared queue's claims: task -> job ids it took (copies as "J.copy")."""
    out = {}
    for claim in (store / ".zarr-parallel" / "slurm" / "queue" / "claims").iterdir():
        if claim.name.split(".")[0].isdigit():
            out.setdefault(json.loads(claim.read_text())["task"], []).append(claim.name)
    return out


def plan_jobs(store):
    return len(json.loads((store / ".zarr-parallel" / "plan.json").read_text())["jobs"])


def slurm_logs(store):
    return "".join(p.read_text(errors="replace") for p in (store / ".zarr-parallel" / "logs").glob("slurm-*.log"))


def test_slurm_job_array_gives_the_local_store(tmp_path, slurm):
    """An array of as many tasks as worker slots (2) whose tasks take the plan's jobs (6 or more)
    from the queue in the store: each job claimed once, by one of the two tasks, each task taking
    several. Fails before the queue (one job a task, no claims)."""
    need_fixtures()
    store = tmp_path / "slurm.zarr"
    proc = run_cache(tmp_path, config(store), env=slurm, check=0)
    assert "submitted SLURM job" in proc.stderr
    script = (store / ".zarr-parallel" / "slurm" / "submit-0.sh").read_text()
    assert "#SBATCH --array=0-1%2" in script and "#SBATCH --mem=287M" in script
    assert "#SBATCH --partition='debug'" in script and "#SBATCH --time=0-00:02:00" in script
    assert " --queue " in script and "--dependency" not in script
    jobs = plan_jobs(store)
    assert jobs >= 6
    subs = json.loads((store / ".zarr-parallel" / "slurm" / "submissions.json").read_text())
    assert [s["tasks"] for s in subs] == [2], subs
    claims = claims_by_task(store)
    tasks = {f"slurm-{subs[0]['id']}_{t}" for t in range(2)}
    assert set(claims) <= tasks and max(len(c) for c in claims.values()) >= 2, claims
    assert sorted(int(c) for c in sum(claims.values(), []) if c.isdigit()) == list(range(jobs)), claims
    assert store_files(store) == store_files(local_copy(tmp_path))
    assert run_cache(tmp_path, config(store), command="verify").returncode == 0


def find_stopped_task(store, deadline):
    """The array task (JOBID_TASK) and pid of the worker that, running the plan of `store` (not
    another test's on this machine), stopped itself (SIGSTOP), or (None, None) by `deadline`."""
    while time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                state = stat.read_text().rsplit(")", 1)[1].split()[0]
                argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if state == "T" and str(store / ".zarr-parallel" / "plan.json").encode() in argv and b"--worker-id" in argv:
                return argv[argv.index(b"--worker-id") + 1].decode().removeprefix("slurm-"), int(stat.parent.name)
        time.sleep(0.1)
    return None, None


def test_task_killed_midway_has_its_job_queued_again(tmp_path, slurm):
    """One array task stops itself in the middle of its first job (copies off, so only the queue
    can finish that job) and is then cancelled with scancel. The coordinator sees the task gone,
    releases its claim, another task takes the job: the run ends with exit 0 and the local store.
    Before the queue the job was resubmitted as an array of its own, never claimed (fails on the
    claims)."""
    need_fixtures()
    store = tmp_path / "killed.zarr"
    cfg_path = tmp_path / "killed.yaml"
    cfg_path.write_text(json.dumps(config(store)))
    flag = tmp_path / "stopped"
    proc = subprocess.Popen([str(BIN), "cache", str(cfg_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(slurm, ZP_FAULT_STOP_ONCE=str(flag), ZP_FAULT_NO_COPIES="1"))
    try:
        task, pid = find_stopped_task(store, time.monotonic() + 120)
        assert task, "no array task stopped itself"
        (store / "d2m" / f"0.0.0.zptmp.{pid}.999").write_bytes(b"")
        subprocess.run(["scancel", task], env=slurm, check=True, timeout=30)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"task slurm-{task} (job " in err and "ended without finishing its job" in err, err
    job = int(err.split(f"task slurm-{task} (job ")[1].split(")")[0])
    claim = json.loads((store / ".zarr-parallel" / "slurm" / "queue" / "claims" / str(job)).read_text())
    assert claim["task"] != f"slurm-{task}", claim
    assert store_files(store) == store_files(local_copy(tmp_path))
    assert run_cache(tmp_path, config(store), command="verify").returncode == 0


def test_slow_task_gets_a_copy_and_no_longer_decides_the_end(tmp_path, slurm):
    """One array task sleeps 90 s in the middle of its first job, its heartbeats going on. The other
    task takes every other job from the queue, then a copy of the slow one's (the copy rule), which
    wins: the run ends long before the sleep would, with the local store. Before the SLURM queue
    the run waited for the sleeping task (fails on the time)."""
    need_fixtures()
    local = local_copy(tmp_path)
    clean = tmp_path / "clean.zarr"
    t0 = time.monotonic()
    run_cache(tmp_path, config(clean), env=slurm, check=0)
    clean_seconds = time.monotonic() - t0
    store = tmp_path / "slow.zarr"
    flag = tmp_path / "slept"
    t0 = time.monotonic()
    proc = run_cache(tmp_path, config(store), env=dict(slurm, ZP_FAULT_SLEEP_ONCE=str(flag), ZP_FAULT_SLEEP_SECONDS="90"),
                     check=0)
    slow_seconds = time.monotonic() - t0
    print(f"clean SLURM run {clean_seconds:.1f} s, with a task sleeping 90 s {slow_seconds:.1f} s")
    assert flag.exists(), "the fault was not injected"
    assert slow_seconds < 60, (slow_seconds, clean_seconds, proc.stderr)
    assert "started a copy on task" in slurm_logs(store), slurm_logs(store)[-3000:]
    assert "finished first" in proc.stderr, proc.stderr
    claims = claims_by_task(store)
    slow = [t for t, c in claims.items() if len(c) == 1]
    assert len(slow) == 1 and sum(len(c) for c in claims.values()) == plan_jobs(store) + 1, claims
    assert store_files(store) == store_files(local) == store_files(clean)
    assert run_cache(tmp_path, config(store), command="verify").returncode == 0


def test_without_a_coordinator_the_slow_task_stops_at_the_copys_done_marker(tmp_path, slurm):
    """Submitted without waiting: no coordinator follows or cancels the tasks. One task sleeps 20 s
    mid-job; the other takes the rest and a copy of that job; the sleeper wakes, finds the job's done
    marker at its next unit and stops on its own (exit 0, its log says so). A resume then finishes
    the store, equal to the local one. Before the queue the sleeper finished its job itself (no
    copy, no such line)."""
    need_fixtures()
    store = tmp_path / "alone.zarr"
    flag = tmp_path / "slept"
    env = dict(slurm, ZP_FAULT_SLEEP_ONCE=str(flag), ZP_FAULT_SLEEP_SECONDS="20")
    run_cache(tmp_path, config(store, await_completion=False), env=env, check=0)
    subs = json.loads((store / ".zarr-parallel" / "slurm" / "submissions.json").read_text())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-j", ",".join(s["id"] for s in subs)], env=slurm, capture_output=True,
                             text=True, timeout=30).stdout
        if not out.strip():
            break
        time.sleep(0.5)
    assert flag.exists(), "the fault was not injected"
    logs = slurm_logs(store)
    assert "started a copy on task" in logs and "another copy finished it first; this one stopped" in logs, logs
    assert "error" not in logs.lower() and "CANCELLED" not in logs, logs
    assert len(list((store / ".zarr-parallel" / "jobs").glob("*.done"))) == plan_jobs(store)
    proc = run_cache(tmp_path, config(store, resume=True), env=slurm, check=0)
    assert (store / ".zarr-parallel" / "complete.json").exists(), proc.stderr
    assert not [p for p in store.rglob("*") if ".zptmp." in p.name]
    assert store_files(store) == store_files(local_copy(tmp_path))
    assert run_cache(tmp_path, config(store), command="verify").returncode == 0


def test_submit_without_waiting_then_resume(tmp_path, slurm):
    need_fixtures()
    store = tmp_path / "later.zarr"
    proc = run_cache(tmp_path, config(store, await_completion=False), env=slurm, check=0)
    assert "squeue -j" in proc.stderr and not (store / ".zarr-parallel" / "complete.json").exists()
    status = subprocess.run([str(BIN), "status", str(store)], capture_output=True, text=True)
    assert status.returncode == 1 and "incomplete" in status.stdout
    proc = run_cache(tmp_path, config(store, resume=True), env=slurm, check=0)
    assert "following SLURM job" in proc.stderr or "0 jobs to run" in proc.stderr
    assert (store / ".zarr-parallel" / "complete.json").exists()
    assert store_files(store) == store_files(local_copy(tmp_path))


FAKE_SLURM = """#!/bin/bash
# Stand-in for {name}: records its argv (one JSON list a line) and answers as an idle cluster.
/usr/bin/python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' {name} "$@" >> {log}
[ {name} = sbatch ] && echo 4242
[ {name} = scontrol ] && echo MaxArraySize = {max_array}
exit 0
"""


def fake_slurm(tmp_path, max_array=1001):
    """A PATH folder with sbatch, squeue, scancel and scontrol that record their argv: no daemons."""
    folder = tmp_path / "fake-slurm"
    folder.mkdir()
    log = tmp_path / "slurm-calls.jsonl"
    for name in ("sbatch", "squeue", "scancel", "scontrol"):
        (folder / name).write_text(FAKE_SLURM.format(name=name, log=log, max_array=max_array))
        (folder / name).chmod(0o755)
    return dict(PATH=f"{folder}:{os.environ['PATH']}"), log


def test_job_id_from_the_store_never_reaches_a_shell(tmp_path):
    """A submissions.json planted in the store with a shell command as the job id: the resume refuses
    it as a store error (exit 5) and runs nothing; every SLURM command ran as an argv."""
    need_fixtures()
    env, log = fake_slurm(tmp_path)
    store = tmp_path / "planted.zarr"
    run_cache(tmp_path, config(store, await_completion=False), env=env, check=0)
    pwned = tmp_path / "PWNED"
    subs = store / ".zarr-parallel" / "slurm" / "submissions.json"
    tasks = json.loads(subs.read_text())[0]["tasks"]
    for bad in (f"1;touch {pwned};", f"$(touch {pwned})", f"1 `touch {pwned}`"):
        subs.write_text(json.dumps([{"id": bad, "tasks": tasks}]))
        proc = run_cache(tmp_path, config(store, resume=True, await_completion=False), env=env)
        assert not pwned.exists(), bad
        assert proc.returncode == 5, proc.stderr
        assert "submissions.json" in proc.stderr and "not a SLURM job id" in proc.stderr
    # A task count the plan cannot have is refused too (the coordinator would follow that many).
    for bad in (10**9, 0, "2"):
        subs.write_text(json.dumps([{"id": "4242", "tasks": bad}]))
        proc = run_cache(tmp_path, config(store, resume=True, await_completion=False), env=env)
        assert proc.returncode == 5 and "not a number of array tasks" in proc.stderr, proc.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls and all(len(c) > 1 for c in calls)
    assert not any("touch" in word for c in calls for word in c)


def test_more_worker_slots_than_max_array_size_make_arrays_that_run_together(tmp_path):
    """6 worker slots and MaxArraySize 4: arrays of 4 and 2 tasks, without a dependency (together
    they are the 6 slots), the second's tasks looking first at the queue's places 4 and 5. Before
    the queue: one task a job, each array waiting for the one before (fails on the dependency)."""
    need_fixtures()
    env, log = fake_slurm(tmp_path, max_array=4)
    store = tmp_path / "slots.zarr"
    run_cache(tmp_path, config(store, await_completion=False, simultaneous_worker_limit=6), env=env, check=0)
    first = (store / ".zarr-parallel" / "slurm" / "submit-0.sh").read_text()
    second = (store / ".zarr-parallel" / "slurm" / "submit-1.sh").read_text()
    assert "#SBATCH --array=0-3%6" in first and '--task "$((0 + SLURM_ARRAY_TASK_ID))"' in first, first
    assert "#SBATCH --array=0-1%6" in second and '--task "$((4 + SLURM_ARRAY_TASK_ID))"' in second, second
    assert "--dependency" not in first + second
    order = (store / ".zarr-parallel" / "slurm" / "queue" / "order.txt").read_text().split()
    assert sorted(map(int, order)) == list(range(plan_jobs(store)))


def test_slurm_workers_get_the_secrets_from_the_store_and_none_stays(tmp_path, slurm):
    """SLURM's workers read the run's secrets from an 0600 file in the store's side folder
    (shared with the nodes), removed when the run ends; none is in the job's environment."""
    from servers import FileServer
    from test_remote_untrusted import SECRET_HEADERS, era5_copy, files_with_secrets
    era5_copy(tmp_path / "www")
    with FileServer(tmp_path / "www") as srv:
        store = tmp_path / "slurm.zarr"
        cfg = config(store, data_uri=f"{srv.url}/era5/refs.json", storage_options={"headers": SECRET_HEADERS})
        run_cache(tmp_path, cfg, env=slurm, check=0)
        nc = [h for _, p, h in srv.seen if p.endswith(".nc")]
        assert nc and all(h.get("X-Api-Key") == SECRET_HEADERS["X-Api-Key"] for h in nc), nc[:2]
    assert not list((store / ".zarr-parallel").glob("zp-secrets-*"))
    assert not files_with_secrets(store)


def test_workers_send_secrets_only_where_the_coordinator_said(tmp_path, slurm):
    """Jobs submitted (held) without waiting; then the store's plan.json is edited, its digest in
    state.json too, so that the files and the hosts allowed the secrets name another server. The
    workers took where secrets may go from plan.json and sent the headers there; then they took it
    from what the coordinator handed them (the other server got requests without them); now they
    refuse the edited plan whole (its SHA-256 is not the one in their sbatch script)."""
    from servers import FileServer
    from test_remote_untrusted import SECRET_HEADERS, era5_copy
    import hashlib
    need_fixtures()
    era5_copy(tmp_path / "www")
    store = tmp_path / "slurm.zarr"
    with FileServer(tmp_path / "www") as a, FileServer(tmp_path / "www") as b:
        cfg = config(store, data_uri=f"{a.url}/era5/refs.json", storage_options={"headers": SECRET_HEADERS},
                     await_completion=False, slurm={"partition": "debug", "extra": ["--nice=0", "--hold"]})
        run_cache(tmp_path, cfg, env=slurm, check=0)
        side = store / ".zarr-parallel"
        text = (side / "plan.json").read_text().replace(a.url, b.url)
        (side / "plan.json").write_text(text)
        state = json.loads((side / "state.json").read_text())
        state["plan_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        (side / "state.json").write_text(json.dumps(state))
        for sub in json.loads((side / "slurm" / "submissions.json").read_text()):
            subprocess.run(["scontrol", "release", str(sub["id"])], env=slurm, check=True, timeout=30)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            out = subprocess.run(["squeue", "-h"], env=slurm, capture_output=True, text=True, timeout=30).stdout
            if not out.strip():
                break
            time.sleep(1)
        to_b = [h for _, p, h in b.seen if p.endswith(".nc")]
    assert not to_b, "the workers read from the server the edited plan names"
    logs = "".join(p.read_text(errors="replace") for p in (side / "logs").glob("slurm-*.log"))
    assert "changed after the run's coordinator read it" in logs, logs[-2000:]


def test_an_append_runs_as_a_slurm_job_array(tmp_path, slurm):
    """Issue 28: an append is a plan like any other; SLURM's tasks run its jobs from plan.json."""
    from test_source_growth import assert_store_is_the_glob, daily_config, first_line, make_days
    store = tmp_path / "daily.zarr"
    make_days(tmp_path / "src", 0, 4)
    cfg = daily_config(tmp_path, store, chunks={"time": 36, "latitude": 19, "longitude": 36}, num_jobs=4,
                       deploy_mode="slurm", simultaneous_worker_limit=2, memory_limit="300MB",
                       worker_timeout="2:00", slurm={"partition": "debug", "extra": ["--nice=0"]})
    run_cache(tmp_path, dict(cfg, deploy_mode="local"), check=0)
    make_days(tmp_path / "src", 4, 1)
    proc = run_cache(tmp_path, cfg, env=slurm, check=0)
    assert first_line(proc).startswith("zarr-parallel: append") and "submitted SLURM job" in proc.stderr, proc.stderr
    assert_store_is_the_glob(store, tmp_path / "src" / "*.nc")
    assert run_cache(tmp_path, cfg, command="verify").returncode == 0


def test_a_task_takes_no_job_it_has_no_time_left_for(tmp_path, slurm):
    """worker_timeout is each array task's --time, and a task takes job after job from the queue: it
    must not start a job that would outlast its time (SLURM would kill it midway). One worker slot,
    worker_timeout 6 s, the first job slowed to 4 s: the task stops after it ("takes no more jobs"),
    the coordinator starts another task for the rest; exit 0, the local store. Before, the one task
    took every job (fails on the claims)."""
    need_fixtures()
    store = tmp_path / "timed.zarr"
    env = dict(slurm, ZP_FAULT_SLEEP_ONCE=str(tmp_path / "slept"), ZP_FAULT_SLEEP_SECONDS="4",
               ZP_FAULT_NO_COPIES="1")
    run_cache(tmp_path, config(store, simultaneous_worker_limit=1, worker_timeout="0:06"), env=env, check=0)
    claims = claims_by_task(store)
    assert len(claims) >= 2, claims
    assert "takes no more jobs" in slurm_logs(store), slurm_logs(store)[-3000:]
    assert store_files(store) == store_files(local_copy(tmp_path))
    assert run_cache(tmp_path, config(store), command="verify").returncode == 0

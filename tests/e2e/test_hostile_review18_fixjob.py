"""Hostile review 18, findings 3, 5, 6 and suspected (a), (b) (branch fixjob18), against stand-ins
for sbatch, squeue, scancel and scontrol on PATH (no daemons): a SLURM job named in the store is
followed or cancelled only when squeue shows it ours (our uid, the job name of this store and plan);
submissions.json is read with a bound; an S3 SLURM coordinator stopped by a signal cancels its tasks
and leaves no secret; claim and done-marker names other than a job's own are no job's; a heartbeat
dated ahead by its node's clock is alive while it changes, and not once it stops changing."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, ERA5, need_fixtures, run_cache, store_files  # noqa: E402
from servers import S3rver  # noqa: E402
from test_s3_output import BUCKET, s3_config  # noqa: E402

FAKE = r'''#!/usr/bin/python3
# Stand-in for sbatch, squeue, scancel, scontrol (by its name): records its argv. sbatch remembers
# the job name it was given and, when the file run-tasks exists, runs the script as slurmd would
# (task 0 of array 4242) before answering. squeue prints the lines of queue.txt of the job asked
# for, with {uid} and {name} filled in (our uid, the name sbatch was given).
import json, os, subprocess, sys
name = os.path.basename(sys.argv[0])
here = os.path.dirname(os.path.abspath(sys.argv[0]))
with open(os.path.join(here, "calls.jsonl"), "a") as f:
    f.write(json.dumps([name] + sys.argv[1:]) + "\n")
if name == "scontrol":
    print("MaxArraySize = 1001")
elif name == "sbatch":
    for word in sys.argv[1:]:
        if word.startswith("--job-name="):
            open(os.path.join(here, "job-name"), "w").write(word.split("=", 1)[1])
    if os.path.exists(os.path.join(here, "run-tasks")):
        env = dict(os.environ, SLURM_ARRAY_TASK_ID="0", SLURM_ARRAY_JOB_ID="4242")
        try:
            subprocess.run(["bash", sys.argv[-1]], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=40)
        except subprocess.TimeoutExpired:
            pass
    print("4242")
elif name == "squeue":
    job = sys.argv[sys.argv.index("-j") + 1]
    named = os.path.join(here, "job-name")
    ours = open(named).read() if os.path.exists(named) else "zarr-parallel"
    queue = os.path.join(here, "queue.txt")
    for line in (open(queue).read().splitlines() if os.path.exists(queue) else []):
        if line.startswith(job + "_"):
            print(line.replace("{uid}", str(os.geteuid())).replace("{name}", ours))
'''


class FakeSlurm:
    def __init__(self, tmp_path):
        self.dir = tmp_path / "fake-slurm"
        self.dir.mkdir()
        for name in ("sbatch", "squeue", "scancel", "scontrol"):
            (self.dir / name).write_text(FAKE)
            (self.dir / name).chmod(0o755)
        self.env = dict(os.environ, PATH=f"{self.dir}:{os.environ['PATH']}")

    def calls(self, name=None):
        log = self.dir / "calls.jsonl"
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return [c for c in calls if name is None or c[0] == name]

    def run_tasks(self, on=True):
        (self.dir / "run-tasks").write_text("") if on else (self.dir / "run-tasks").unlink(missing_ok=True)

    def queue(self, *lines):
        (self.dir / "queue.txt").write_text("".join(line + "\n" for line in lines))

    def job_name(self):
        return (self.dir / "job-name").read_text()


def config(store, **extra):
    cfg = {"data_uri": str(ERA5 / "refs.json"), "chunks": {"time": 24, "latitude": 19, "longitude": 36},
           "variables": ["d2m"], "cache_store": str(store), "num_jobs": 6, "recommend_changes": False,
           "deploy_mode": "slurm", "simultaneous_worker_limit": 2, "memory_limit": "300MB",
           "worker_timeout": "2:00", "slurm": {"partition": "debug"}}
    cfg.update(extra)
    return cfg


def write_config(tmp_path, cfg):
    path = tmp_path / f"config_{abs(hash(json.dumps(cfg, sort_keys=True)))}.yaml"
    path.write_text(json.dumps(cfg))
    return path


def finish_or_interrupt(proc, seconds):
    """The run's (returncode, stderr); one still running after `seconds` gets SIGINT first."""
    try:
        _, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        err += "\n[still running after %d s: interrupted by the test]" % seconds
    return proc.returncode, err


def test_a_job_named_in_submissions_json_is_followed_and_cancelled_only_when_ours(tmp_path):
    """Finding 3: submissions.json rewritten to name job 777 (our uid, another job's name: the same
    user's unrelated job) and 778 (another uid, our job name). Both are ignored with a log line and
    never cancelled; the resume submits its own array and finishes the store. Before: both adopted,
    their 4 pending tasks counted as our 2 workers, nothing submitted, the run waited for them (here
    interrupted after 60 s, and the interrupt scancel'ed 777 and 778)."""
    need_fixtures()
    slurm = FakeSlurm(tmp_path)
    store = tmp_path / "forged.zarr"
    run_cache(tmp_path, config(store, await_completion=False), env=slurm.env, check=0)
    script = (store / ".zarr-parallel" / "slurm" / "submit-0.sh").read_text()
    subs = store / ".zarr-parallel" / "slurm" / "submissions.json"
    subs.write_text(json.dumps([{"id": "777", "tasks": 2}, {"id": "778", "tasks": 2}]))
    slurm.queue("777_0 PENDING {uid} someone-elses-job", "777_1 PENDING {uid} someone-elses-job",
                "778_0 PENDING 12345 {name}", "778_1 PENDING 12345 {name}")
    (slurm.dir / "calls.jsonl").unlink()
    slurm.run_tasks()
    proc = subprocess.Popen([str(BIN), "cache", str(write_config(tmp_path, config(store, resume=True)))],
                            env=slurm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rc, err = finish_or_interrupt(proc, 60)
    assert not [c for c in slurm.calls("scancel") if any(w.startswith(("777", "778")) for w in c)], slurm.calls()
    assert rc == 0, err[-3000:]
    assert "SLURM job 777" in err and "SLURM job 778" in err and "not this run's" in err, err
    assert "following SLURM job" not in err, err
    assert slurm.calls("sbatch"), slurm.calls()
    assert (store / ".zarr-parallel" / "complete.json").exists()
    # The next save names only our own array; its name is this store's and plan's.
    assert [s["id"] for s in json.loads(subs.read_text())] == ["4242"]
    ours = slurm.job_name()
    assert ours.startswith("zarr-parallel-") and len(ours) == len("zarr-parallel-") + 16, ours
    assert f"#SBATCH --job-name={ours}\n" in script, script


def test_a_huge_submissions_json_is_a_store_error_read_no_further_than_its_bound(tmp_path):
    """Finding 5: a sparse submissions.json of 1 GiB. Before: read whole (peak RSS over 1 GiB), then
    refused as not JSON; 4 GiB under a 1.5 GiB address-space limit was bad_alloc (exit 1). Now exit 5
    naming the file and its bound, nothing of it read."""
    need_fixtures()
    slurm = FakeSlurm(tmp_path)
    store = tmp_path / "huge.zarr"
    run_cache(tmp_path, config(store, await_completion=False), env=slurm.env, check=0)
    subs = store / ".zarr-parallel" / "slurm" / "submissions.json"
    subs.unlink()
    with open(subs, "wb") as f:
        f.truncate(1 << 30)  # sparse: no disk space used
    cfg = write_config(tmp_path, config(store, resume=True, await_completion=False))
    with open(tmp_path / "err.txt", "w") as err:
        proc = subprocess.Popen([str(BIN), "cache", str(cfg)], env=slurm.env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this process's own peak RSS (KiB)
    stderr = (tmp_path / "err.txt").read_text()
    assert os.waitstatus_to_exitcode(status) == 5, stderr[-2000:]
    assert str(subs) in stderr and "larger than" in stderr, stderr
    assert usage.ru_maxrss < 768 * 1024, f"peak RSS {usage.ru_maxrss} KiB"  # was 1.1 GiB (ASan: some more)
    # Many small entries are bounded too: more submissions than a plan of 6 jobs can make.
    subs.write_text(json.dumps([{"id": str(1000 + i), "tasks": 1} for i in range(1100)]))
    proc = run_cache(tmp_path, config(store, resume=True, await_completion=False), env=slurm.env)
    assert proc.returncode == 5 and "more than this plan can make" in proc.stderr, proc.stderr[-2000:]
    assert not [c for c in slurm.calls("squeue") if "1000" in c]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_s3_slurm_coordinator_stopped_by_a_signal_cancels_its_tasks_and_leaves_no_secret(tmp_path, signum):
    """Finding 6: Ctrl-C / SIGTERM to a slurm coordinator of a store on S3. Before: killed outright
    (rc -2 / -15), the config's S3 secret left in scratch/s3-*/zp-secrets-*/secrets.json, no scancel.
    Now as for a folder store: its array scancel'ed (only if still ours: --user, --name), the secrets
    folder removed, exit 130 / 143."""
    need_fixtures()
    slurm = FakeSlurm(tmp_path)
    slurm.queue("4242_0 RUNNING {uid} {name}", "4242_1 RUNNING {uid} {name}")
    scratch = tmp_path / "scratch"
    with S3rver(tmp_path / "s3") as s3:
        s3.client().create_bucket(Bucket=BUCKET)
        cfg = s3_config(s3, "sig/era5.zarr", deploy_mode="slurm", memory_limit="300MB", worker_timeout="2:00",
                        slurm={"partition": "debug", "scratch": str(scratch)})
        proc = subprocess.Popen([str(BIN), "cache", str(write_config(tmp_path, cfg))], env=slurm.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not slurm.calls("sbatch") and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert slurm.calls("sbatch"), proc.communicate(timeout=60)[1][-2000:]
        assert list(scratch.rglob("secrets.json")), "the run wrote no secrets: the test tests nothing"
        time.sleep(1.5)  # the coordinator follows its tasks
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, (proc.returncode, err[-2000:])
    assert ["scancel", "--user=" + str(os.geteuid()), "--name=" + slurm.job_name(), "4242"] in slurm.calls("scancel")
    assert not list(scratch.rglob("secrets.json")), list(scratch.rglob("*"))
    assert not list(scratch.rglob("zp-secrets-*"))


@pytest.mark.parametrize("planted", ["jobs/01.done", "slurm/queue/claims/01", "slurm/queue/claims/-0"])
def test_a_claim_or_done_marker_not_named_as_its_job_holds_no_job(tmp_path, planted):
    """Suspected (a): "01.done" read as job 1's done marker (the tasks skipped job 1 and the resume
    failed with 'job 1 has no done marker'); a claim "01" or "-0" of a task that is gone held its job
    for good (release() removes "1", never "01": the task waited for a copy that never comes). Now a
    name that is not a job's own decimal is ignored: the resume runs the job and finishes the store."""
    need_fixtures()
    slurm = FakeSlurm(tmp_path)
    series = tmp_path / "series.zarr"
    run_cache(tmp_path, config(series, deploy_mode="series"), check=0)
    store = tmp_path / "planted.zarr"
    run_cache(tmp_path, config(store, deploy_mode="series"), check=0)
    side = store / ".zarr-parallel"
    job = 0 if planted.endswith("-0") else 1
    (side / "complete.json").unlink()
    (side / "jobs" / f"{job}.done").unlink()
    target = side / planted
    target.parent.mkdir(parents=True, exist_ok=True)
    if planted.endswith(".done"):
        target.write_text(json.dumps({"job": job, "worker": "slurm-99_0", "seconds": 1}))
    else:
        target.write_text(json.dumps({"task": "slurm-99_0", "started": time.time()}))
    slurm.run_tasks()
    # No speculative copy: one could run the held job anyway, as a copy.
    proc = subprocess.Popen([str(BIN), "cache", str(write_config(tmp_path, config(store, resume=True)))],
                            env=dict(slurm.env, ZP_FAULT_NO_COPIES="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    rc, err = finish_or_interrupt(proc, 90)
    assert rc == 0, err[-3000:]
    assert (side / "jobs" / f"{job}.done").exists() and (side / "complete.json").exists()
    assert target.exists()  # left alone: not ours to remove
    assert store_files(store) == store_files(series)


def test_a_heartbeat_dated_ahead_is_alive_while_it_changes_and_not_once_it_stops(tmp_path):
    """Suspected (b): a task whose node's clock runs an hour ahead. Before: its beats were taken for
    none (beat_time 0) and the coordinator scancel'ed the task at its first poll. Now liveness is
    judged by the coordinator's clock: a beat that changes is fresh whatever its date; the same beat
    (a forged one, or a hung task's) for worker_timeout (5 s here) gets the task cancelled."""
    need_fixtures()
    slurm = FakeSlurm(tmp_path)
    slurm.queue("4242_0 RUNNING {uid} {name}")
    store = tmp_path / "ahead.zarr"
    beats = store / ".zarr-parallel" / "heartbeats"
    proc = subprocess.Popen([str(BIN), "cache", str(write_config(tmp_path, config(store, worker_timeout="0:05")))],
                            env=slurm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    changing = threading.Event()
    changing.set()
    stop = threading.Event()

    def beat():
        text, n = "", 0
        while not stop.is_set():
            if beats.parent.is_dir():
                beats.mkdir(exist_ok=True)
                if changing.is_set() or not text:
                    n += 1
                    text = json.dumps({"worker": "slurm-4242_0", "time": time.time() + 3600, "chunks_done": n})
                tmp = beats / ".slurm-4242_0.json.test"
                tmp.write_text(text)
                tmp.replace(beats / "slurm-4242_0.json")
            time.sleep(0.3)

    writer = threading.Thread(target=beat)
    writer.start()
    try:
        deadline = time.monotonic() + 120
        while not slurm.calls("sbatch") and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert slurm.calls("sbatch") and proc.poll() is None
        time.sleep(12)  # more than twice worker_timeout, the beat changing all along
        early = [c for c in slurm.calls("scancel") if c[-1] == "4242_0"]
        changing.clear()  # the same beat from now on
        deadline = time.monotonic() + 30
        while not [c for c in slurm.calls("scancel") if c[-1] == "4242_0"] and time.monotonic() < deadline:
            time.sleep(0.5)
        late = [c for c in slurm.calls("scancel") if c[-1] == "4242_0"]
    finally:
        stop.set()
        writer.join()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert not early, (early, err[-2000:])
    assert late and late[0] == ["scancel", "--user=" + str(os.geteuid()), "--name=" + slurm.job_name(), "4242_0"], (
        slurm.calls(), err[-2000:])
    assert "task 4242_0: no heartbeat for 5 s, cancelling it" in err, err[-2000:]
    assert proc.returncode == 130, err[-2000:]

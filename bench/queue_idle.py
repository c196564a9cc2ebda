#!/usr/bin/env python3
"""What an idle SLURM array task costs while it waits on the shared queue (issue 34): one
`zarr-parallel worker PLAN --queue STORE` process on a store whose jobs are all claimed by other
(fake) tasks, so it only looks at the queue every 2 s, as the last tasks of a large run do.
  waiting:  no job done yet (the copy rule has no durations: it lists and reads claims only)
  watching: JOBS-2 jobs done, 2 claimed (their claims start in the future, so no copy pays): it
            also reads the two running tasks' heartbeats each look
Prints, per case, the task's CPU over SECONDS (from /proc, no tracer attached) and, with strace
attached to a second such task for SECONDS, per second: its listings of claims/ and jobs/, claims
and heartbeats read, its own heartbeats written, and every openat (FileStore opens each path one
component at a time from the store root, O_NOFOLLOW).
The store is made with a stand-in sbatch (no daemons): bench/queue_idle.py [JOBS [SECONDS]]."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("ZP_BIN", REPO / "build" / "bin" / "zarr-parallel"))
ERA5 = Path(os.environ.get("ZP_FIXTURES", REPO.parent / "shared" / "fixtures")) / "era5_small"
FAKE = "#!/bin/bash\n[ $(basename $0) = sbatch ] && echo 4242\n[ $(basename $0) = scontrol ] && echo MaxArraySize = 1001\nexit 0\n"


def make_store(tmp, jobs):
    fake = tmp / "fake-slurm"
    fake.mkdir()
    for name in ("sbatch", "squeue", "scancel", "scontrol"):
        (fake / name).write_text(FAKE)
        (fake / name).chmod(0o755)
    store = tmp / "idle.zarr"
    cfg = {"data_uri": str(ERA5 / "refs.json"), "chunks": {"time": 24, "latitude": 19, "longitude": 36},
           "cache_store": str(store), "num_jobs": jobs, "recommend_changes": False, "deploy_mode": "slurm",
           "simultaneous_worker_limit": 2, "await_completion": False}
    (tmp / "c.yaml").write_text(json.dumps(cfg))
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
    subprocess.run([str(BIN), "cache", str(tmp / "c.yaml")], check=True, capture_output=True, env=env, timeout=300)
    return store


def claim(store, job, task, started):
    path = store / ".zarr-parallel" / "slurm" / "queue" / "claims" / str(job)
    path.write_text(json.dumps({"task": task, "started": started}) + "\n")


def prepare(store, case, sha, plan):
    side = store / ".zarr-parallel"
    for p in list((side / "slurm" / "queue" / "claims").iterdir()) + list((side / "jobs").glob("*.done")):
        p.unlink()
    n = len(plan["jobs"])
    running = range(n) if case == "waiting" else range(n - 2, n)
    if case == "watching":
        for job in range(n - 2):  # real done records (with their seconds), by the worker command
            subprocess.run([str(BIN), "worker", str(side / "plan.json"), str(job), "--plan-sha256", sha],
                           check=True, capture_output=True, timeout=300)
    for job in running:
        task = f"slurm-1_{job}"
        claim(store, job, task, time.time() if case == "waiting" else 9e9)
        (side / "heartbeats").mkdir(exist_ok=True)
        (side / "heartbeats" / f"{task}.json").write_text(json.dumps(
            {"job": job, "chunks_done": 0, "chunks_total": 1, "time": time.time()}))


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_task(store, sha, seconds, trace=None):
    """Runs the idle task; after its start (3 s), its CPU over `seconds`, or with `trace` the
    syscalls of those seconds (strace attached, then detached by SIGINT)."""
    side = store / ".zarr-parallel"
    argv = [str(BIN), "worker", str(side / "plan.json"), "--queue", str(store), "--task", "0", "--threads", "1",
            "--worker-id", "slurm-4242_0", "--plan-sha256", sha]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)  # past the start (plan read, store checked)
        assert proc.poll() is None, proc.stderr.read()
        before = cpu_seconds(proc.pid)
        t0 = time.monotonic()
        if trace:
            subprocess.run(["timeout", "-s", "INT", str(seconds), "strace", "-f", "-qq", "-y", "-e",
                            "trace=openat,getdents64", "-o", str(trace), "-p", str(proc.pid)], timeout=seconds + 30)
        else:
            time.sleep(seconds)
        used, wall = cpu_seconds(proc.pid) - before, time.monotonic() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return used, wall


def count(trace, pattern):
    return sum(1 for line in trace.read_text().splitlines() if re.search(pattern, line.split(None, 1)[-1]))


def main():
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        store = make_store(tmp, jobs)
        sha = json.loads((store / ".zarr-parallel" / "state.json").read_text())["plan_sha256"]
        plan = json.loads((store / ".zarr-parallel" / "plan.json").read_text())
        print(f"plan: {len(plan['jobs'])} jobs; {seconds:.0f} s a case; load {os.getloadavg()[0]:.2f}")
        for case in ("waiting", "watching"):
            prepare(store, case, sha, plan)
            used, wall = idle_task(store, sha, seconds)
            trace = tmp / f"{case}.strace"
            _, twall = idle_task(store, sha, seconds, trace)
            n = {what: count(trace, pattern) for what, pattern in (
                ("claims/ listings", r'^getdents64\(\d+<[^>]*/queue/claims>.* = 0$'),
                ("jobs/ listings", r'^getdents64\(\d+<[^>]*/\.zarr-parallel/jobs>.* = 0$'),
                ("claims read", r'^openat\(\d+<[^>]*/claims>, "\d+", O_RDONLY'),
                ("heartbeats read", r'^openat\(\d+<[^>]*>, "slurm-1_\d+\.json", O_RDONLY'),
                ("own heartbeats written", r'^openat\(\d+<[^>]*>, "slurm-4242_0\.json\.zptmp'),
                ("opens (each path walked from the store root, a component an open)", r"^openat\("))}
            print(f"{case}: CPU {used:.3f} s in {wall:.1f} s ({100 * used / wall:.2f}% of a core); strace attached "
                  f"{twall:.1f} s, per second: " + ", ".join(f"{v / twall:.2f} {k}" for k, v in n.items()) +
                  f"; load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

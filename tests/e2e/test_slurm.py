"""deploy_mode: slurm against a real single-node SLURM (slurmctld, slurmd, munge) that
scripts/slurm_local.sh starts on localhost for this module and stops afterwards."""
import json
import os
import shutil
import subprocess
import time

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


def test_slurm_job_array_gives_the_local_store(tmp_path, slurm):
    need_fixtures()
    store = tmp_path / "slurm.zarr"
    proc = run_cache(tmp_path, config(store), env=slurm, check=0)
    assert "submitted SLURM job" in proc.stderr
    script = (store / ".zarr-parallel" / "slurm" / "submit-0.sh").read_text()
    assert "#SBATCH --array=0-3%2" in script and "#SBATCH --mem=287M" in script
    assert "#SBATCH --partition='debug'" in script and "#SBATCH --time=0-00:02:00" in script
    plan = json.loads((store / ".zarr-parallel" / "plan.json").read_text())
    assert len(plan["jobs"]) >= 6
    # More jobs than MaxArraySize: arrays of 4 tasks, each waiting for the one before (so that
    # simultaneous_worker_limit holds overall), together running every job once.
    subs = json.loads((store / ".zarr-parallel" / "slurm" / "submissions.json").read_text())
    assert len(subs) == (len(plan["jobs"]) + 3) // 4 and all(len(s["jobs"]) <= 4 for s in subs)
    assert sorted(j for s in subs for j in s["jobs"]) == list(range(len(plan["jobs"])))
    second = (store / ".zarr-parallel" / "slurm" / "submit-1.sh").read_text()
    assert f"#SBATCH --dependency=afterany:{subs[0]['id']}" in second
    assert store_files(store) == store_files(local_copy(tmp_path))


def test_cancelled_pending_task_is_noticed_and_resubmitted(tmp_path, slurm):
    need_fixtures()
    store = tmp_path / "cancel.zarr"
    cfg_path = tmp_path / "cancel.yaml"
    cfg_path.write_text(json.dumps(config(store)))
    proc = subprocess.Popen([str(BIN), "cache", str(cfg_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=slurm)
    cancelled = None
    deadline = time.monotonic() + 60
    while cancelled is None and time.monotonic() < deadline:
        subs = store / ".zarr-parallel" / "slurm" / "submissions.json"
        if subs.exists():
            job = json.loads(subs.read_text())[0]["id"]
            out = subprocess.run(["squeue", "-h", "-r", "-j", job, "-t", "PENDING", "-o", "%i"], capture_output=True,
                                 text=True, env=slurm).stdout.split()
            if out:
                cancelled = out[-1]
                subprocess.run(["scancel", cancelled], env=slurm, check=True)
        time.sleep(0.1)
    out, err = proc.communicate(timeout=300)
    assert cancelled, "no pending task to cancel"
    assert proc.returncode == 0, err
    assert "ended without finishing its job" in err
    assert store_files(store) == store_files(local_copy(tmp_path))


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
[ {name} = scontrol ] && echo MaxArraySize = 1001
exit 0
"""


def fake_slurm(tmp_path):
    """A PATH folder with sbatch, squeue, scancel and scontrol that record their argv: no daemons."""
    folder = tmp_path / "fake-slurm"
    folder.mkdir()
    log = tmp_path / "slurm-calls.jsonl"
    for name in ("sbatch", "squeue", "scancel", "scontrol"):
        (folder / name).write_text(FAKE_SLURM.format(name=name, log=log))
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
    jobs = json.loads(subs.read_text())[0]["jobs"]
    for bad in (f"1;touch {pwned};", f"$(touch {pwned})", f"1 `touch {pwned}`"):
        subs.write_text(json.dumps([{"id": bad, "jobs": jobs}]))
        proc = run_cache(tmp_path, config(store, resume=True, await_completion=False), env=env)
        assert not pwned.exists(), bad
        assert proc.returncode == 5, proc.stderr
        assert "submissions.json" in proc.stderr and "not a SLURM job id" in proc.stderr
    # A job index outside the plan is refused too (it would index the done markers).
    subs.write_text(json.dumps([{"id": "4242", "jobs": [10**9]}]))
    proc = run_cache(tmp_path, config(store, resume=True, await_completion=False), env=env)
    assert proc.returncode == 5 and "not a job of the plan" in proc.stderr, proc.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls and all(len(c) > 1 for c in calls)
    assert not any("touch" in word for c in calls for word in c)


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

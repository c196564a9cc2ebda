"""Hostile review 17, findings 1, 3 and 4 (branch fixplan): workers load only the plan their
coordinator read (a plan.json rewritten during the run, state.json's digest with it, is refused);
a worker of an earlier run that wakes after an append in place writes nothing (the appended day
keeps its values, checked with xarray); a control character in the store path never reaches an
sbatch script (a fake sbatch runs the script with bash, as slurmd would)."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, ERA5, SAMPLE_BIN, need_fixtures, run_cache, store_files  # noqa: E402

MODULE_DIR = Path(BIN).parent.parent / "python"


def need_module():
    if not list(MODULE_DIR.glob("zarr_parallel/_zarr_parallel*.so")):
        pytest.skip("the Python module is not built here (sanitizer builds leave it out)")


def stopped(pid):
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def sample_with_victim(tmp_path):
    """Three sample files, and a file of the user's no config names (every t2m value 12345)."""
    import netCDF4
    data = tmp_path / "data"
    subprocess.run([str(SAMPLE_BIN), "--out", str(data), "--prefix", "d_", "--files", "3", "--steps", "4",
                    "--lat", "9", "--lon", "12", "--classic"], check=True, capture_output=True)
    files = sorted(data.glob("*.nc"))
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    victim = private / "not-in-any-config.nc"
    shutil.copy(files[1], victim)
    with netCDF4.Dataset(victim, "a") as nc:
        nc.variables["t2m"][:] = 12345.0
    return data, files, victim


def rewrite_plan(side, original, victim):
    """What another user who can write the store does: plan.json names `victim` instead of
    `original`, its sources record and state.json's digest follow."""
    text = (side / "plan.json").read_text()
    assert str(original) in text
    plan = json.loads(text.replace(str(original), str(victim)))
    st = victim.stat()
    plan["sources"] = [[str(victim), st.st_size, st.st_mtime_ns] if s[0] == str(victim) else s
                       for s in plan["sources"]]
    text = json.dumps(plan)
    (side / "plan.json").write_text(text)
    state = json.loads((side / "state.json").read_text())
    state["plan_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    (side / "state.json").write_text(json.dumps(state))


def victim_values(store):
    if not (store / "t2m").exists():
        return 0
    return int((xr.open_zarr(store)["t2m"].values == 12345.0).sum())


def test_a_worker_started_after_the_plan_was_rewritten_refuses_it(tmp_path):
    """Finding 1: the worker hangs (SIGSTOP) after its first chunk; meanwhile plan.json and
    state.json are rewritten to read a file no config names. The replacement worker the coordinator
    starts after worker_timeout must refuse the plan (before the fix it was handed the digest of
    the rewritten file, loaded it and copied the file into a store marked complete)."""
    data, files, victim = sample_with_victim(tmp_path)
    store = tmp_path / "out.zarr"
    cfg = {"data_uri": str(data / "d_*.nc"), "cache_store": str(store), "deploy_mode": "local",
           "simultaneous_worker_limit": 1, "worker_timeout": "0:05", "chunks": {"time": 4},
           "recommend_changes": False}
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(json.dumps(cfg))
    flag = tmp_path / "stopped"
    env = dict(os.environ, ZP_FORK_WORKERS="0", ZP_FAULT_STOP_ONCE=str(flag), ZP_FAULT_NO_COPIES="1")
    proc = subprocess.Popen([str(BIN), "cache", str(cfg_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    try:
        for _ in range(1200):
            if flag.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert flag.exists(), "the fault was not injected"
        rewrite_plan(store / ".zarr-parallel", files[1].resolve(), victim)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    logs = "".join(p.read_text(errors="replace") for p in (store / ".zarr-parallel" / "logs").glob("*.log"))
    assert proc.returncode != 0, err[-2000:]
    assert not (store / ".zarr-parallel" / "complete.json").exists()
    assert victim_values(store) == 0
    assert "changed after the run's coordinator read it" in logs, (err[-2000:], logs[-2000:])


def test_python_run_and_finish_refuse_a_plan_rewritten_after_begin(tmp_path):
    """Finding 1, the Python session: run() and finish() load the plan begin() wrote only with the
    digest begin() returned (before the fix, with none: the rewritten plan ran)."""
    need_module()
    data, files, victim = sample_with_victim(tmp_path)
    store = tmp_path / "py.zarr"
    script = tmp_path / "session.py"
    script.write_text(f"""
import json, sys
sys.path.insert(0, {str(MODULE_DIR)!r})
sys.path.insert(0, {str(Path(__file__).parent)!r})
from zarr_parallel import _zarr_parallel as engine
from test_hostile_review17_fixplan import rewrite_plan
from pathlib import Path
config = json.dumps({{"data_uri": {str(data / 'd_*.nc')!r}, "cache_store": {str(store)!r},
                      "deploy_mode": "series", "chunks": {{"time": 4}}, "recommend_changes": False}})
s = json.loads(engine.begin(config, ".", True))
rewrite_plan(Path({str(store)!r}) / ".zarr-parallel", Path({str(files[1].resolve())!r}), Path({str(victim)!r}))
def call(f, *args):
    try:
        return f(*args, s["plan_sha256"])
    except TypeError:  # the module before the fix took no digest: shows what it did then
        return f(*args)
for name, args in [("run", (engine.run, config, ".", s["plan_path"], s["pending"], s["started"])),
                   ("finish", (engine.finish, config, ".", s["plan_path"], s["started"]))]:
    try:
        call(*args)
        print(name, "ran")
    except Exception as e:
        print(name, "refused:", e)
""")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "run refused:" in proc.stdout and "finish refused:" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert "changed after the run's coordinator read it" in proc.stdout, proc.stdout
    assert not (store / ".zarr-parallel" / "complete.json").exists()
    assert victim_values(store) == 0


def day_files(src, n):
    src.mkdir(exist_ok=True)
    for f in sorted(ERA5.glob("era5_small_2000010*.nc"))[:n]:
        if not (src / f.name).exists():
            shutil.copy(f, src)


def test_a_late_worker_of_an_earlier_run_does_not_overwrite_an_append(tmp_path):
    """Finding 3: a worker of run 1 (a dask copy's cancelled loser, which dask cannot stop, or any
    orphan) stops mid-job; run 1 completes, a fourth day is appended in place (same store id); the
    late worker then goes on. It must write nothing: day 4 keeps every value (before the fix it
    rewrote the boundary chunk from run 1's plan, day 4 became fill in a store marked complete)."""
    need_fixtures()
    src = tmp_path / "src"
    day_files(src, 3)
    store = tmp_path / "cache.zarr"
    cfg = {"data_uri": str(src / "era5_small_*.nc"), "cache_store": str(store), "deploy_mode": "series",
           "chunks": {"time": 48}, "num_jobs": 2, "recommend_changes": False}
    # Run 1 leaves its plan and no job done (killed at its first chunk).
    proc = run_cache(tmp_path, cfg, env={"ZP_FAULT_KILL_ONCE": str(tmp_path / "killed")})
    assert proc.returncode == -9, proc.stderr
    side = store / ".zarr-parallel"
    plan = side / "plan.json"
    digest = hashlib.sha256(plan.read_bytes()).hexdigest()
    jobs = [str(j["id"]) for j in json.loads(plan.read_text())["jobs"]]
    flag = tmp_path / "late-stopped"
    late = subprocess.Popen([str(BIN), "worker", str(plan), *jobs, "--threads", "1", "--plan-sha256", digest],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, ZP_FAULT_STOP_ONCE=str(flag)))
    try:
        for _ in range(1200):
            if flag.exists() and stopped(late.pid):
                break
            time.sleep(0.05)
        assert flag.exists() and stopped(late.pid), "the late worker did not stop mid-job"
        run_cache(tmp_path, dict(cfg, resume=True), check=0)  # run 1 completes without it
        day_files(src, 4)
        proc = run_cache(tmp_path, cfg, check=0)  # run 2: the fourth day, appended in place
        assert "append" in (proc.stdout + proc.stderr).lower(), proc.stderr
        before = store_files(store)
        late.send_signal(signal.SIGCONT)
        _, err = late.communicate(timeout=120)
    finally:
        if late.poll() is None:
            late.kill()
            late.wait()
    truth = xr.open_dataset(sorted(src.glob("*.nc"))[3])
    day4 = xr.open_zarr(store).isel(time=slice(72, 96)).load()
    for name in ("d2m", "t2m"):
        assert int(day4[name].notnull().sum()) == int(truth[name].notnull().sum()), (name, err[-2000:])
        assert (day4[name].values == truth[name].values).all(), name
    assert store_files(store) == before
    assert late.returncode == 5, err[-2000:]
    assert "state.json names another plan" in err, err[-2000:]


def fake_slurm(tmp_path):
    """sbatch runs the script with bash as slurmd would (task 0); nothing reaches a real SLURM."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sbatch").write_text("#!/bin/bash\nscript=\"${@: -1}\"\n"
                                   "SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_JOB_ID=4242 timeout 60 bash \"$script\" "
                                   ">/dev/null 2>&1\necho 4242\n")
    (bindir / "squeue").write_text("#!/bin/bash\nexit 0\n")
    (bindir / "scontrol").write_text("#!/bin/bash\necho 'MaxArraySize = 1001'\n")
    for f in bindir.iterdir():
        f.chmod(0o755)
    return dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")


@pytest.mark.parametrize("key", ["cache_label", "cache_dir", "cache_store"])
def test_a_newline_in_the_store_path_never_reaches_the_sbatch_script(tmp_path, key):
    """Finding 4: a newline in cache_label / cache_dir / cache_store ended the `#SBATCH --output=`
    line and the rest ran as a command. Now exit 2 naming the key, before anything is written."""
    subprocess.run([str(SAMPLE_BIN), "--out", str(tmp_path / "data"), "--prefix", "d_", "--files", "1",
                    "--steps", "4", "--lat", "5", "--lon", "6"], check=True, capture_output=True)
    pwned = tmp_path / "PWNED"
    evil = f"_v1\ntouch {pwned}\n#"
    caches = tmp_path / "caches"
    cfg = {"data_uri": str(next((tmp_path / "data").glob("*.nc"))), "deploy_mode": "slurm", "num_jobs": 1,
           "recommend_changes": False}
    if key == "cache_label":
        cfg.update(cache_dir=str(caches), cache_label=evil)
    elif key == "cache_dir":
        cfg.update(cache_dir=str(caches) + evil)
    else:
        cfg.update(cache_store=str(caches) + evil + ".zarr")
    proc = run_cache(tmp_path, cfg, env=fake_slurm(tmp_path))
    assert not pwned.exists()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"'{key}'" in proc.stderr and "control character" in proc.stderr, proc.stderr
    assert not list(tmp_path.rglob("*.zarr")), list(tmp_path.rglob("*.zarr"))


def test_a_newline_in_a_python_cache_label_never_reaches_the_sbatch_script(tmp_path):
    """Finding 4 as the reproducer had it: cache(cache_label=...) from Python."""
    need_module()
    subprocess.run([str(SAMPLE_BIN), "--out", str(tmp_path / "data"), "--prefix", "d_", "--files", "1",
                    "--steps", "4", "--lat", "5", "--lon", "6"], check=True, capture_output=True)
    pwned = tmp_path / "PWNED"
    script = tmp_path / "label.py"
    script.write_text(f"""
import sys
sys.path.insert(0, {str(MODULE_DIR)!r})
import zarr_parallel
a = zarr_parallel.ZarrParallelAssembler({str(next((tmp_path / 'data').glob('*.nc')))!r},
                                        cache_label="_v1\\ntouch {pwned}\\n#")
try:
    a.cache(cache_dir={str(tmp_path / 'caches')!r}, deploy_mode="slurm", num_jobs=1, recommend_changes=False)
    print("ran")
except Exception as e:
    print("refused:", e)
""")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=fake_slurm(tmp_path))
    assert not pwned.exists()
    assert "refused:" in proc.stdout and "cache_label" in proc.stdout, proc.stdout + proc.stderr[-2000:]

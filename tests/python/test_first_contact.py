"""The Python path as a new user meets it: the README's example run as a script with no terminal
(with and without the `__main__` guard), Ctrl-C and Jupyter's "interrupt kernel" during a local
run, SLURM and MPI from Python, dask's spellings of the arguments."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from conftest import BIN, ERA5, alive, children_of, need_fixtures, open_kerchunk, store_files  # noqa: E402

from zarr_parallel import ZarrParallelAssembler  # noqa: E402

# The README's Python block (as the README gives it), data_uri pointed at the fixture.
README_BLOCK = '''
from zarr_parallel.assembler import ZarrParallelAssembler   # or: from zarr_parallel import ...
import xarray as xr

if __name__ == "__main__":   # dask's worker processes run this file again: the work goes under it
    zp = ZarrParallelAssembler(data_uri="era5_d2m.json", preprocessors=[
            {"type": "subset", "time": ("2000-01-01 00:00:00", "2000-02-28 23:00:00"),
             "latitude": (60, -30), "longitude": (40, 100)}],
        chunks={"time": 24, "latitude": 91, "longitude": 180},
        engine="kerchunk", variables={"d2m": {}}, cache_label="_v1")
    zp.cache(cache_dir="zarr_cache", deploy_mode="dask_distributed", simultaneous_worker_limit=4)

    ds = xr.open_zarr(zp.cache_store)
    print(ds.d2m.shape)
'''


def readme_script(tmp_path, guarded=True):
    text = README_BLOCK.replace('"era5_d2m.json"', repr(str(ERA5 / "refs.json")))
    if not guarded:  # what users write when they leave the guard out
        head, body = text.split('if __name__ == "__main__":', 1)
        text = head + textwrap.dedent(body.split("\n", 1)[1])
    script = tmp_path / ("readme.py" if guarded else "readme_unguarded.py")
    script.write_text(text)
    return script


def run_script(script, cwd, timeout=300, **kw):
    """As a user runs it from cron or a batch job: no terminal, nothing on stdin."""
    return subprocess.run([sys.executable, str(script)], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, **kw)


def test_readme_example_runs_as_a_script_without_a_terminal(tmp_path):
    need_fixtures()
    proc = run_script(readme_script(tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The selection cuts source chunks, but no alternative saves a read or memory: advice, not a stop.
    zp = ZarrParallelAssembler(str(ERA5 / "refs.json"), preprocessors=[
        {"type": "subset", "time": ("2000-01-01 00:00:00", "2000-02-28 23:00:00"), "latitude": (60, -30),
         "longitude": (40, 100)}], chunks={"time": 24, "latitude": 91, "longitude": 180}, variables={"d2m": {}})
    recs = zp.plan(cache_store=str(tmp_path / "p.zarr"))["recommendations"]
    assert recs and not any(r["saves"] for r in recs), recs
    store = tmp_path / "zarr_cache" / "refs_v1.zarr"
    expected = open_kerchunk(ERA5 / "refs.json")[["d2m"]].sel(
        time=slice("2000-01-01", "2000-02-28 23:00"), latitude=slice(60, -30), longitude=slice(40, 100))
    got = xr.open_zarr(store)
    assert np.array_equal(got.d2m.values, expected.d2m.values, equal_nan=True)


def test_without_the_main_guard_one_clear_message_and_no_loop(tmp_path):
    need_fixtures()
    t0 = time.monotonic()
    proc = run_script(readme_script(tmp_path, guarded=False), tmp_path, timeout=120)
    assert proc.returncode != 0
    assert time.monotonic() - t0 < 60
    assert proc.stderr.count('if __name__ == "__main__":') == 1, proc.stderr[-3000:]
    assert "readme_unguarded.py, line" in proc.stderr
    assert proc.stderr.count("Traceback") <= 1  # the script's own, nothing from restarted workers
    assert not (tmp_path / "zarr_cache").exists()  # refused before anything was written


def test_the_guard_is_found_where_scripts_put_it(tmp_path):
    script = tmp_path / "where.py"
    script.write_text(textwrap.dedent("""
        from zarr_parallel import _main_guard

        def check():
            return _main_guard.unguarded_script_line()

        print("top", check())
        try:
            if __name__ == "__main__":
                print("in-try", check())
        finally:
            pass
        if "__main__" == __name__:
            print("reversed", check())
    """))
    out = run_script(script, tmp_path, timeout=60).stdout.splitlines()
    assert out == [f"top ({str(script)!r}, 7)", "in-try None", "reversed None"], out


def test_a_spawned_process_re_running_the_script_refuses_to_cache(tmp_path):
    """What dask's workers do at start (multiprocessing's spawn re-runs the script as __mp_main__),
    for a script whose top-level check the coordinator could not see."""
    need_fixtures()
    script = tmp_path / "spawned.py"
    store = tmp_path / "child.zarr"
    script.write_text(textwrap.dedent(f"""
        import multiprocessing
        from zarr_parallel import ZarrParallelAssembler

        zp = ZarrParallelAssembler({str(ERA5 / 'refs.json')!r}, variables=["d2m"])
        if __name__ != "__main__":  # only in the spawned process, while it re-runs this file
            try:
                zp.cache(cache_store={str(store)!r}, deploy_mode="series")
            except RuntimeError as e:
                print("REFUSED:", e, flush=True)

        def nothing():
            pass

        if __name__ == "__main__":
            p = multiprocessing.get_context("spawn").Process(target=nothing)
            p.start()
            p.join()
    """))
    proc = run_script(script, tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "REFUSED: zarr-parallel: ZarrParallelAssembler.cache() was called again inside a dask worker" \
        in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert not store.exists()


def test_a_recommendation_that_saves_still_stops_without_a_terminal(tmp_path):
    need_fixtures()
    # 46 MB forces re-reads (read amplification > 1): raising memory_limit saves them.
    zp = ZarrParallelAssembler(str(ERA5 / "refs.json"), variables=["t2m"],
                               chunks={"time": 96, "latitude": 73, "longitude": 10})
    store = tmp_path / "m.zarr"
    plan = zp.plan(cache_store=str(store), memory_limit="46MB")
    assert [r["saves"] for r in plan["recommendations"] if r["key"] == "memory_limit"] == [True]
    script = tmp_path / "stop.py"
    script.write_text(textwrap.dedent(f"""
        from zarr_parallel import ZarrParallelAssembler
        zp = ZarrParallelAssembler({str(ERA5 / 'refs.json')!r}, variables=["t2m"],
                                   chunks={{"time": 96, "latitude": 73, "longitude": 10}})
        zp.cache(cache_store={str(store)!r}, deploy_mode="series", memory_limit="46MB")
    """))
    proc = run_script(script, tmp_path)
    assert proc.returncode == 1 and "ValueError: stopped on recommendations" in proc.stderr, proc.stderr[-2000:]
    assert not store.exists()


# Ctrl-C and Jupyter's interrupt during cache(deploy_mode='local').

def interrupt_script(tmp_path, store, **extra):
    cfg = dict(deploy_mode="local", simultaneous_worker_limit=2, worker_timeout="10:00", num_jobs=8)
    cfg.update(extra)
    script = tmp_path / "interrupt.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from zarr_parallel import ZarrParallelAssembler
        zp = ZarrParallelAssembler({str(ERA5 / 'refs.json')!r},
            preprocessors=[{{"type": "sel", "time": ["2000-01-01 00:00", "2000-01-04 23:00"]}}],
            chunks={{"time": 24, "latitude": 19, "longitude": 36}}, log_level=1)
        try:
            zp.cache(cache_store={str(store)!r}, **{cfg!r})
        except KeyboardInterrupt as e:
            print("KeyboardInterrupt:", e, flush=True)
            sys.exit(42)
        print("finished", flush=True)
    """))
    return script


@pytest.mark.parametrize("target", ["process", "group"])
def test_interrupt_stops_a_local_run_and_leaves_it_resumable(tmp_path, target):
    """`process`: SIGINT to Python alone (Jupyter's "interrupt kernel"); `group`: Ctrl-C in a
    terminal (SIGINT to Python and its workers). A worker has stopped itself mid-job, so the run
    would otherwise wait on it for worker_timeout (10 minutes)."""
    need_fixtures()
    store = tmp_path / "int.zarr"
    flag = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, str(interrupt_script(tmp_path, store))], cwd=tmp_path,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, ZP_FAULT_STOP_ONCE=str(flag)), start_new_session=True)
    try:
        for _ in range(600):
            if flag.exists() and len(children_of(proc.pid)) == 2:
                break
            time.sleep(0.05)
        assert flag.exists(), "the fault was not injected"
        workers = children_of(proc.pid)
        assert workers
        t0 = time.monotonic()
        if target == "group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 42, (out, err[-3000:])
    assert "KeyboardInterrupt: the cache run was stopped by signal 2" in out and "resume: true" in out, out
    assert time.monotonic() - t0 < 5
    assert "lost" not in err, err[-2000:]  # no worker was rerun as lost
    deadline = time.monotonic() + 3
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(w) for w in workers), "a worker outlived the interrupt"
    status = subprocess.run([str(BIN), "status", str(store)], capture_output=True, text=True)
    assert status.returncode == 1 and "incomplete" in status.stdout, status.stdout
    # Resumable: the same call with resume=True finishes it, equal to an uninterrupted run.
    zp = ZarrParallelAssembler(str(ERA5 / "refs.json"),
                               preprocessors=[{"type": "sel", "time": ["2000-01-01 00:00", "2000-01-04 23:00"]}],
                               chunks={"time": 24, "latitude": 19, "longitude": 36})
    zp.cache(cache_store=str(store), deploy_mode="series", num_jobs=8, worker_timeout="10:00", resume=True)
    clean = tmp_path / "clean.zarr"
    zp.cache(cache_store=str(clean), deploy_mode="series", num_jobs=8, worker_timeout="10:00")
    assert store_files(store) == store_files(clean)


def test_numpy_integers_and_dask_memory_spelling_are_accepted(tmp_path):
    need_fixtures()
    zp = ZarrParallelAssembler(str(ERA5 / "refs.json"), variables=["d2m"],
                               chunks={"time": 24, "latitude": 19, "longitude": 36})
    store = tmp_path / "np.zarr"
    zp.cache(cache_store=str(store), deploy_mode="local", num_jobs=np.int64(4),
             simultaneous_worker_limit=np.int32(2), memory_limit="2gb")
    plan = json.loads((store / ".zarr-parallel" / "plan.json").read_text())
    assert len(plan["jobs"]) == 4 and plan["memory_limit"] == 2_000_000_000
    with pytest.raises(ValueError, match="num_jobs"):
        zp.cache(cache_store=str(tmp_path / "x.zarr"), num_jobs=2.5)


# SLURM and MPI from Python.

@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """The test cluster (scripts/slurm_local.sh), as tests/e2e/test_slurm.py starts it."""
    if not shutil.which("slurmctld") or not shutil.which("munged") or os.geteuid() != 0:
        pytest.skip("SLURM daemons not installed, or not root")
    folder = tmp_path_factory.mktemp("slurm")
    script = REPO / "scripts" / "slurm_local.sh"
    proc = subprocess.run(["bash", str(script), "start", str(folder)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    yield dict(os.environ, SLURM_CONF=str(folder / "slurm.conf"))
    subprocess.run(["bash", str(script), "stop", str(folder)], timeout=60)


def test_slurm_from_python(tmp_path, slurm):
    need_fixtures()
    store = tmp_path / "slurm.zarr"
    script = tmp_path / "slurm.py"
    script.write_text(textwrap.dedent(f"""
        from zarr_parallel import ZarrParallelAssembler
        zp = ZarrParallelAssembler({str(ERA5 / 'refs.json')!r}, variables=["d2m"],
                                   chunks={{"time": 24, "latitude": 19, "longitude": 36}})
        print(zp.cache(cache_store={str(store)!r}, deploy_mode="slurm", num_jobs=4, simultaneous_worker_limit=2,
                       memory_limit="300MB", worker_timeout="2:00", slurm={{"partition": "debug"}}))
    """))
    proc = run_script(script, tmp_path, timeout=600, env=slurm)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith(str(store))
    assert (store / ".zarr-parallel" / "slurm" / "submit-0.sh").exists()
    reference = tmp_path / "ref.zarr"  # the same call in series mode
    ZarrParallelAssembler(str(ERA5 / "refs.json"), variables=["d2m"],
                          chunks={"time": 24, "latitude": 19, "longitude": 36}).cache(
        cache_store=str(reference), deploy_mode="series", num_jobs=4, memory_limit="300MB", worker_timeout="2:00")
    assert store_files(store) == store_files(reference)


def test_mpi_from_python(tmp_path):
    need_fixtures()
    if not shutil.which("mpirun"):
        pytest.skip("mpirun not installed")
    store = tmp_path / "mpi.zarr"
    script = tmp_path / "mpi.py"
    script.write_text(textwrap.dedent(f"""
        from zarr_parallel import ZarrParallelAssembler
        zp = ZarrParallelAssembler({str(ERA5 / 'refs.json')!r}, variables=["d2m"],
                                   chunks={{"time": 24, "latitude": 19, "longitude": 36}})
        print(zp.cache(cache_store={str(store)!r}, deploy_mode="mpi", num_jobs=6))
    """))
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    proc = subprocess.run(["mpirun", "--oversubscribe", "-n", "3", sys.executable, str(script)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count(str(store)) >= 3  # every rank returns the store
    reference = tmp_path / "ref.zarr"  # the same call in series mode
    ZarrParallelAssembler(str(ERA5 / "refs.json"), variables=["d2m"],
                          chunks={"time": 24, "latitude": 19, "longitude": 36}).cache(
        cache_store=str(reference), deploy_mode="series", num_jobs=6)
    assert store_files(store) == store_files(reference)


def test_mpi_from_python_raises_on_every_rank(tmp_path):
    """The module's MPI entry point (whole_run) when rank 0 fails before the jobs (a variable the
    source lacks): every rank's cache() raises rank 0's ValueError. Before, only rank 0 raised and
    rank 1's cache() returned the store's path as if it were there."""
    need_fixtures()
    if not shutil.which("mpirun"):
        pytest.skip("mpirun not installed")
    store = tmp_path / "bad.zarr"
    script = tmp_path / "bad.py"
    script.write_text(textwrap.dedent(f"""
        from zarr_parallel import ZarrParallelAssembler
        zp = ZarrParallelAssembler({str(ERA5 / 'refs.json')!r}, variables=["nope"])
        try:
            print("RESULT returned", zp.cache(cache_store={str(store)!r}, deploy_mode="mpi", num_jobs=2), flush=True)
        except Exception as e:
            print("RESULT", type(e).__name__, e, flush=True)
    """))
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    proc = subprocess.run(["mpirun", "--oversubscribe", "-n", "2", sys.executable, str(script)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert len(results) == 2, proc.stdout
    assert all(r.startswith("RESULT ValueError config key 'variables.nope'") for r in results), results
    assert not store.exists()


def test_a_python_without_wheel_is_told_what_to_do(tmp_path):
    """pyenv/conda Pythons often lack `wheel`; offline pip then failed with "invalid command
    'bdist_wheel'". setup.py names the Python and the ways out."""
    code = ("import os, runpy, sys; sys.modules['wheel'] = None; sys.argv = ['setup.py', 'bdist_wheel']; "
            f"os.chdir({str(REPO)!r}); runpy.run_path('setup.py', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode != 0
    assert f"this Python ({sys.executable}) cannot build wheels" in proc.stderr, proc.stderr[-2000:]
    assert "pip install wheel" in proc.stderr and "/usr/bin/python3" in proc.stderr

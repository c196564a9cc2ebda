"""deploy_mode: mpi under a real mpirun (OpenMPI): rank 0 plans and hands out jobs, the store is
identical to a local run; a stopped rank's job is copied to an idle one."""
import json
import os
import shutil
import signal
import subprocess
import threading

import pytest

from conftest import BIN, ERA5, need_fixtures, resume_when_all_done, run_cache, store_files

MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1")
# In the sanitizer build, OpenMPI's plugins leak from modules they unload (no symbol a suppression
# could name): leak checks are off under mpirun; ASan still checks every access.
MPI_ENV["ASAN_OPTIONS"] = (MPI_ENV.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")


def mpi_ready():
    if not shutil.which("mpirun"):
        pytest.skip("mpirun not installed")
    if "(mpi)" not in subprocess.run([str(BIN), "--version"], capture_output=True, text=True).stdout:
        pytest.skip("zarr-parallel built without MPI")


@pytest.mark.parametrize("ranks", [3, 1])
def test_mpi_store_is_identical_to_local(tmp_path, ranks):
    need_fixtures()
    mpi_ready()
    cfg = {"data_uri": str(ERA5 / "refs.json"), "chunks": {"time": 24, "latitude": 19, "longitude": 36},
           "num_jobs": 8, "recommend_changes": False, "generate_stats": True}
    local = tmp_path / "local.zarr"
    run_cache(tmp_path, dict(cfg, cache_store=str(local)), check=0)
    store = tmp_path / "mpi.zarr"
    cfg_path = tmp_path / "mpi.yaml"
    cfg_path.write_text(json.dumps(dict(cfg, cache_store=str(store))))  # JSON is YAML
    proc = subprocess.run(["mpirun", "-n", str(ranks), str(BIN), "cache", str(cfg_path), "--set", "deploy_mode=mpi"],
                          capture_output=True, text=True, env=MPI_ENV, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(str(store)) == 2  # only rank 0 prints the store and the open line
    assert (store / ".zarr-parallel" / "complete.json").exists()
    assert store_files(store) == store_files(local)
    stats = json.loads((store / ".zarr-parallel" / "stats.json").read_text())
    workers = {j["worker"] for j in stats["per_job"]}
    assert workers == ({"mpi-rank-1", "mpi-rank-2"} if ranks == 3 else {"mpi-rank-0"})


def test_mpi_mode_errors_reach_every_rank(tmp_path):
    need_fixtures()
    mpi_ready()
    cfg_path = tmp_path / "bad.yaml"
    cfg_path.write_text(f'data_uri: "{ERA5 / "refs.json"}"\nvariables: [nope]\ncache_store: "{tmp_path / "b.zarr"}"\n')
    proc = subprocess.run(["mpirun", "-n", "2", str(BIN), "cache", str(cfg_path), "--set", "deploy_mode=mpi"],
                          capture_output=True, text=True, env=MPI_ENV, timeout=120)
    assert proc.returncode != 0 and "nope" in proc.stderr
    assert not (tmp_path / "b.zarr").exists()


def test_mpi_ranks_get_the_storage_secrets_over_mpi(tmp_path):
    """Ranks other than 0 never received the storage secrets (their chunk requests went without
    the headers, a private server refused them); now rank 0 hands them over MPI, with the access
    options, so nothing of them is read from the store's plan.json, a file or the environment."""
    need_fixtures()
    mpi_ready()
    from servers import FileServer
    from test_remote_untrusted import SECRET_HEADERS, era5_copy, files_with_secrets
    era5_copy(tmp_path / "www")
    store = tmp_path / "mpi.zarr"
    with FileServer(tmp_path / "www") as srv:
        cfg_path = tmp_path / "mpi.yaml"
        cfg_path.write_text(json.dumps({"data_uri": f"{srv.url}/era5/refs.json", "cache_store": str(store),
                                        "storage_options": {"headers": SECRET_HEADERS}, "num_jobs": 4,
                                        "recommend_changes": False}))
        proc = subprocess.run(["mpirun", "-n", "3", str(BIN), "cache", str(cfg_path), "--set", "deploy_mode=mpi"],
                              capture_output=True, text=True, env=MPI_ENV, timeout=300)
        nc = [h for _, p, h in srv.seen if p.endswith(".nc")]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert nc and all(h.get("X-Api-Key") == SECRET_HEADERS["X-Api-Key"] for h in nc), nc[:2]
    assert not files_with_secrets(store)


def test_mpi_copies_the_job_of_a_stopped_rank(tmp_path):
    """A rank stops itself (SIGSTOP) at its first chunk. The other rank runs the other jobs, then,
    held by rank 0 once none is left, a copy of the stopped job: every job is done while the rank
    is still stopped. Let go, that rank finds its job done at its next unit of chunks and stops it;
    the run ends, one done marker a job, no temporaries, the store equals a local run's, verify 0.
    Without copies every job is never done while the rank is stopped (this test waits 60 s)."""
    need_fixtures()
    mpi_ready()
    cfg = {"data_uri": str(ERA5 / "refs.json"), "chunks": {"time": 24, "latitude": 19, "longitude": 36},
           "num_jobs": 8, "recommend_changes": False}
    local = tmp_path / "local.zarr"
    run_cache(tmp_path, dict(cfg, cache_store=str(local)), check=0)
    store = tmp_path / "mpi.zarr"
    cfg_path = tmp_path / "mpi.yaml"
    cfg_path.write_text(json.dumps(dict(cfg, cache_store=str(store))))
    flag = tmp_path / "stopped"
    proc = subprocess.Popen(["mpirun", "-n", "3", str(BIN), "cache", str(cfg_path), "--set", "deploy_mode=mpi"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=dict(MPI_ENV, ZP_FAULT_STOP_ONCE=str(flag)))
    log = []
    helper = threading.Thread(target=resume_when_all_done, args=(proc, flag, store / ".zarr-parallel", 60, log))
    helper.start()
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        helper.join()
    assert flag.exists(), "the fault was not injected"
    assert proc.returncode == 0, out + err
    assert log and log[0] == "all done while stopped", (log, err[-3000:])
    assert "started a copy on rank" in err and "the copy finished first" in err, err[-3000:]
    jobs = len(json.loads((store / ".zarr-parallel" / "plan.json").read_text())["jobs"])
    assert len(list((store / ".zarr-parallel" / "jobs").glob("*.done"))) == jobs
    assert not [p for p in store.rglob("*") if ".zptmp." in p.name]
    assert store_files(store) == store_files(local)
    assert run_cache(tmp_path, dict(cfg, cache_store=str(store)), command="verify").returncode == 0


def test_only_the_mpi_program_loads_open_mpi(tmp_path):
    """Open MPI's libraries are loaded by zarr-parallel-mpi (what deploy_mode mpi execs), not by every
    run of zarr-parallel; a zarr-parallel installed without its MPI program says so by name."""
    mpi_ready()
    loaded = subprocess.run([str(BIN), "--version"], capture_output=True, text=True,
                            env=dict(os.environ, LD_DEBUG="files")).stderr
    assert "libmpi.so" not in loaded and "libopen-pal" not in loaded, loaded[-2000:]
    mpi_loaded = subprocess.run([str(BIN.parent / "zarr-parallel-mpi"), "--version"], capture_output=True,
                                text=True, env=dict(os.environ, LD_DEBUG="files")).stderr
    assert "libmpi.so" in mpi_loaded
    alone = tmp_path / "bin" / "zarr-parallel"
    alone.parent.mkdir()
    shutil.copy2(BIN, alone)
    assert "(no mpi)" in subprocess.run([str(alone), "--version"], capture_output=True, text=True).stdout
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"data_uri": str(ERA5 / "refs.json"), "cache_store": str(tmp_path / "c.zarr"),
                               "deploy_mode": "mpi"}))
    proc = subprocess.run([str(alone), "cache", str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "zarr-parallel-mpi" in proc.stderr, proc.stderr
    assert not (tmp_path / "c.zarr").exists()

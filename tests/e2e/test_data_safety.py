"""Whose data is whose: the tool never deletes, replaces or writes into what it did not create,
never completes a store from two versions of its source, and never leaves workers writing after
their coordinator is gone. Each test reproduces a way main once lost or corrupted data."""
import errno
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from conftest import (BIN, ERA5, SAMPLE_BIN, alive, none_alive_within, assert_matches, children_of, need_fixtures, open_kerchunk, open_netcdf,
                      run_cache, store_files)


def snapshot(folder):
    """{relative path: (bytes, mtime_ns)} of every file under `folder`, hidden ones included."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            out[p.relative_to(folder).as_posix()] = (p.read_bytes(), p.stat().st_mtime_ns)
    return out


def era5_config(store, **extra):
    cfg = {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(store), "deploy_mode": "series",
           "preprocessors": [{"type": "sel", "time": ["2000-01-01 00:00", "2000-01-04 23:00"]}],
           "chunks": {"time": 24, "latitude": 19, "longitude": 36}, "num_jobs": 8}
    cfg.update(extra)
    return cfg


def make_netcdf(folder, files=3):
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(SAMPLE_BIN), "--out", str(folder), "--files", str(files), "--lat", "37", "--lon", "72",
                    "--chunks", "6", "19", "36"], check=True, capture_output=True)
    return sorted(folder.glob("*.nc"))


def verify(tmp_path, cfg):
    return run_cache(tmp_path, cfg, command="verify")


# 1. Ownership: a folder that is not our store is refused before anything is created there.

def test_user_folder_current_directory_and_source_folders_are_never_touched(tmp_path):
    need_fixtures()
    user = tmp_path / "thesis"
    (user / "chapters").mkdir(parents=True)
    (user / "chapters" / "one.tex").write_text("irreplaceable")
    (user / "notes.txt").write_text("also irreplaceable")
    sources = tmp_path / "sources"
    nc_files = make_netcdf(sources)
    zarr_src = tmp_path / "zsrc.zarr"
    ds = open_kerchunk(ERA5 / "refs.json").isel(time=slice(0, 24))
    for v in ds.variables.values():
        v.encoding = {}
    ds.to_zarr(zarr_src)
    old_style = tmp_path / "old.zarr"  # a side folder but no marker: not provably ours
    (old_style / ".zarr-parallel").mkdir(parents=True)
    (old_style / "data.bin").write_bytes(b"x" * 10)
    before = snapshot(tmp_path)

    nc_cfg = {"data_uri": str(sources / "*.nc"), "deploy_mode": "series", "recommend_changes": False}
    cases = [
        (era5_config(user), "did not create"),
        (dict(era5_config(user), overwrite=True, resume=True), "did not create"),
        (dict(nc_cfg, cache_store="."), "did not create"),             # the config's folder: tmp_path
        (dict(nc_cfg, cache_store=str(sources)), "did not create"),      # the folder of the sources
        (dict(nc_cfg, cache_store=str(sources / "new.zarr")), None),        # beside them: fine, checked below
        ({"data_uri": str(zarr_src), "cache_dir": str(zarr_src), "deploy_mode": "series",
          "recommend_changes": False}, "inside the source"),                 # cache_dir = a Zarr source
        ({"data_uri": str(zarr_src), "cache_store": str(zarr_src), "deploy_mode": "series",
          "recommend_changes": False}, "did not create"),                    # the Zarr source itself
        (era5_config(nc_files[0]), "not a folder"),
        (era5_config(old_style), "no store marker"),
    ]
    for cfg, why in cases:
        if why is None:
            continue
        proc = run_cache(tmp_path, cfg)
        assert proc.returncode == 5, (cfg, proc.returncode, proc.stderr)
        assert why in proc.stderr, (why, proc.stderr)
        after = snapshot(tmp_path)
        after = {k: v for k, v in after.items() if not k.startswith("config_")}
        assert after == {k: v for k, v in before.items() if not k.startswith("config_")}, cfg
    # A store beside the sources is fine, and they stay as they were.
    run_cache(tmp_path, dict(nc_cfg, cache_store=str(sources / "new.zarr")), check=0)
    for name, (data, mtime) in before.items():
        assert (tmp_path / name).read_bytes() == data and (tmp_path / name).stat().st_mtime_ns == mtime, name


def test_an_empty_folder_is_claimed_and_then_ours(tmp_path):
    need_fixtures()
    store = tmp_path / "made_by_hand.zarr"
    store.mkdir()
    run_cache(tmp_path, era5_config(store), check=0)
    assert (store / ".zarr-parallel" / "store.json").exists()
    run_cache(tmp_path, era5_config(store, encoding="decoded"), check=0)  # ours now: replaced
    assert xr.open_zarr(store).d2m.dtype.kind == "f"


def test_a_huge_store_marker_is_not_ours_and_never_read_whole(tmp_path):
    """A store whose marker (.zarr-parallel/store.json) is a 4 GiB sparse file (no disk used) is not
    our store: the run refuses it as a foreign folder, in bounded memory, and changes nothing. Before,
    the marker was read whole (ifstream, links followed): ~2 GB RSS and seconds for the refusal."""
    need_fixtures()
    store = tmp_path / "planted.zarr"
    (store / ".zarr-parallel").mkdir(parents=True)
    with open(store / ".zarr-parallel" / "store.json", "wb") as f:
        f.truncate(4 << 30)
    before = snapshot_meta(store)
    cfg = tmp_path / "huge_marker.yaml"
    cfg.write_text(json.dumps(era5_config(store)))
    # The peak RSS of the run alone: a fresh Python measures its only child.
    measure = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(p.stderr)")
    out = subprocess.run(["/usr/bin/python3", "-c", measure, str(BIN), "cache", str(cfg)], capture_output=True,
                         text=True, timeout=300).stdout
    code, rss_kb = (int(x) for x in out.split("\n", 1)[0].split())
    assert code == 5 and "no store marker" in out and str(store) in out, out
    assert rss_kb < 300_000, rss_kb
    assert snapshot_meta(store) == before


def snapshot_meta(folder):
    """{relative path: (size, mtime_ns)} of every file under `folder` (without reading them)."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


# 2. Atomic replacement: the old complete store stays whole until the new one is complete.

LAYOUTS = {
    "v2": {},
    "v3 sharded": {"zarr_format": 3, "chunks": {"time": 24, "latitude": 10, "longitude": 16},
                   "shards": {"time": 48, "latitude": 40, "longitude": 48}},
    "tiled": {"preprocessors": [{"type": "sel", "time": ["2000-01-01 00:00", "2000-01-02 23:00"]},
                                {"type": "reverse_axis", "dim": "latitude"},
                                {"type": "sel", "latitude": [-60, 60]},
                                {"type": "tiled", "time": 24, "latitude": 10, "longitude": 36}],
              "recommend_changes": False},
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_what_users_added_to_a_store_is_never_deleted_by_a_replacement(tmp_path, layout):
    """Users add to a cache: a variable with xarray's to_zarr(mode="a"), steps appended along time, a
    note. A replacement ends by deleting the old store, so it is refused before any work (exit 5,
    naming what was added); the old store stays a complete cache hit and the additions read back.
    Without additions the same replacement goes through: every file the tool writes, in each layout,
    is known to be its own."""
    need_fixtures()
    store = tmp_path / "c.zarr"
    first = era5_config(store, **LAYOUTS[layout])
    second = dict(first, add_attrs={"edition": 2})
    run_cache(tmp_path, first, check=0)
    run_cache(tmp_path, second, check=0)  # nothing added: replaced
    if "zarr_format" in first:
        assert json.loads((store / "zarr.json").read_text())["attributes"]["edition"] == 2
    else:
        assert xr.open_zarr(store).attrs["edition"] == 2
    assert not any(p.name.startswith(".c.zarr.zp-") for p in tmp_path.iterdir())

    if layout == "v2":  # xarray and zarr-python 2 write v2 only
        ds = xr.open_zarr(store)
        xr.Dataset({"dew_c": ds.d2m - 273.15}).to_zarr(store, mode="a")
        added = ["dew_c/"]
    else:
        (store / "README.txt").write_text("my notes on this cache")
        added = ["README.txt"]
    before = snapshot(store)
    proc = run_cache(tmp_path, first)
    assert proc.returncode == 5, proc.stderr
    for name in added:
        assert f"'{name}'" in proc.stderr and "did not write" in proc.stderr, proc.stderr
    assert snapshot(store) == before
    assert not any(p.name.startswith(".c.zarr.zp-") for p in tmp_path.iterdir())  # no work begun
    run_cache(tmp_path, second, check=0)  # still its cache hit
    assert "cache hit" in run_cache(tmp_path, second, "--log-level", "1").stderr
    assert snapshot(store) == before
    if layout == "v2":
        got = xr.open_zarr(store)
        np.testing.assert_allclose(got.dew_c.values, got.d2m.values - np.float32(273.15), rtol=1e-6)

        # Steps appended along time by xarray: chunks past the grid the tool wrote.
        other = tmp_path / "a.zarr"
        run_cache(tmp_path, dict(first, cache_store=str(other)), check=0)
        more = xr.open_zarr(other).isel(time=slice(0, 24))
        for v in more.variables.values():
            v.encoding = {}
        more.to_zarr(other, append_dim="time")
        proc = run_cache(tmp_path, dict(second, cache_store=str(other)))
        assert proc.returncode == 5 and re.search(r"'(d2m|t2m|time)/4[.0-9]*'", proc.stderr), proc.stderr
        assert xr.open_zarr(other).sizes["time"] == 120


def test_replacement_killed_midway_keeps_the_old_store_complete(tmp_path):
    need_fixtures()
    store = tmp_path / "r.zarr"
    old_cfg = era5_config(store)
    run_cache(tmp_path, old_cfg, check=0)
    old_files = store_files(store)
    new_cfg = era5_config(store, encoding="decoded")
    flag = tmp_path / "fired"
    proc = run_cache(tmp_path, new_cfg, env={"ZP_FAULT_KILL_ONCE": str(flag), "ZP_FAULT_AFTER_CHUNKS": "5"})
    assert flag.exists() and proc.returncode == -9, proc.stderr
    staging = tmp_path / ".r.zarr.zp-new"
    assert staging.is_dir()  # the replacement was being built beside the store
    assert store_files(store) == old_files
    assert verify(tmp_path, old_cfg).returncode == 0
    assert "cache hit" in run_cache(tmp_path, old_cfg, check=0).stderr
    # The interrupted replacement resumes where it stopped, then is swapped in.
    proc = run_cache(tmp_path, dict(new_cfg, resume=True), check=0)
    assert "resuming" in proc.stderr and str(staging) in proc.stderr
    assert not staging.exists()
    assert verify(tmp_path, new_cfg).returncode == 0
    assert xr.open_zarr(store).d2m.dtype.kind == "f"
    clean = tmp_path / "clean.zarr"
    run_cache(tmp_path, era5_config(clean, encoding="decoded"), check=0)
    assert store_files(store) == store_files(clean)
    # A failed replacement (a bad chunk) also leaves the old store as it was.
    run_cache(tmp_path, old_cfg, check=0)
    files = store_files(store)
    refs = json.loads((ERA5 / "refs.json").read_text())
    url, offset, length = refs["refs"]["d2m/1.0.0"]
    refs["refs"]["d2m/1.0.0"] = [url, offset + 7, length]
    bad = tmp_path / "refs.json"
    for key, value in refs["refs"].items():
        if isinstance(value, list):
            value[0] = str(ERA5 / Path(value[0]).name)
    bad.write_text(json.dumps(refs))
    proc = run_cache(tmp_path, dict(old_cfg, data_uri=str(bad)))
    assert proc.returncode == 4, proc.stderr
    assert store_files(store) == files and verify(tmp_path, old_cfg).returncode == 0


# 3. Source fingerprints: never a complete store from two versions of its source.

def rewrite_in_place(path):
    import netCDF4
    with netCDF4.Dataset(path, "a") as ds:
        name = next(v for v in ds.variables if ds.variables[v].ndim == 3)
        var = ds.variables[name]
        var[0, 0, 0] = var[0, 0, 0] + 1
    return name


def interrupted_then_rewritten(tmp_path, store, after_chunks):
    """A series run of NetCDF sources killed after some chunks, then its last file rewritten."""
    sources = tmp_path / "src"
    files = make_netcdf(sources)
    cfg = {"data_uri": str(sources / "*.nc"), "cache_store": str(store), "deploy_mode": "series",
           "num_jobs": 6, "recommend_changes": False}
    flag = tmp_path / "fired"
    env = {"ZP_FAULT_KILL_ONCE": str(flag), "ZP_FAULT_AFTER_CHUNKS": str(after_chunks)}
    assert run_cache(tmp_path, cfg, env=env).returncode == -9
    time.sleep(0.01)
    rewrite_in_place(files[-1])
    return files, cfg


def test_source_rewritten_before_resume_is_refused_and_a_changed_source_is_no_cache_hit(tmp_path):
    store = tmp_path / "f.zarr"
    files, cfg = interrupted_then_rewritten(tmp_path, store, 2)
    proc = run_cache(tmp_path, dict(cfg, resume=True))
    assert proc.returncode == 4, proc.stderr
    assert files[-1].name in proc.stderr and "resume: false" in proc.stderr
    assert not (store / ".zarr-parallel" / "complete.json").exists()
    run_cache(tmp_path, cfg, check=0)  # rebuilt from the new source
    assert verify(tmp_path, cfg).returncode == 0
    # A cache hit checks the source: a changed file means a rebuild, not a hit.
    time.sleep(0.01)
    name = rewrite_in_place(files[0])
    proc = verify(tmp_path, cfg)
    assert proc.returncode == 1 and files[0].name in proc.stdout, proc.stdout
    proc = run_cache(tmp_path, cfg, check=0)
    assert "cache hit" not in proc.stderr and "source changed" in proc.stderr
    assert verify(tmp_path, cfg).returncode == 0
    got = xr.open_zarr(store)[name].values
    want = xr.open_mfdataset(sorted(str(f) for f in files), combine="nested", concat_dim="time")[name].values
    assert np.array_equal(got, want, equal_nan=True)


def test_a_worker_refuses_a_source_that_changed_after_planning(tmp_path):
    store = tmp_path / "w.zarr"
    files, cfg = interrupted_then_rewritten(tmp_path, store, 1)
    plan = store / ".zarr-parallel" / "plan.json"
    jobs = len(json.loads(plan.read_text())["jobs"])
    proc = subprocess.run([str(BIN), "worker", str(plan), *map(str, range(jobs))], capture_output=True, text=True)
    assert proc.returncode == 4 and files[-1].name in proc.stderr, proc.stderr
    assert "since the plan was made" in proc.stderr and "resume: false" in proc.stderr


def test_a_source_rewritten_while_a_job_reads_it_fails_that_job(tmp_path):
    """Each job (d2m, then t2m) reads every file (one time chunk across them). The first stops after
    its first chunk, when every file has been read once and checked. A file rewritten now, in place,
    would give the rest of that job the new version: the job is refused at its end (exit 4, naming
    the file) and has no done marker, the store is not complete and a resume is refused."""
    store = tmp_path / "m.zarr"
    sources = tmp_path / "src"
    files = make_netcdf(sources)
    cfg = {"data_uri": str(sources / "*.nc"), "cache_store": str(store), "deploy_mode": "series",
           "chunks": {"time": 72, "latitude": 19, "longitude": 36}, "num_jobs": 1,
           "recommend_changes": False}
    cfg_path = tmp_path / "m.yaml"
    cfg_path.write_text(json.dumps(cfg))
    flag = tmp_path / "stopped"
    proc = subprocess.Popen([str(BIN), "cache", str(cfg_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, ZP_FAULT_STOP_ONCE=str(flag)))
    try:
        for _ in range(600):
            if flag.exists() and Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T":
                break
            time.sleep(0.05)
        assert flag.exists(), "the fault was not injected"
        rewrite_in_place(files[1])
        os.kill(proc.pid, signal.SIGCONT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 4, err
    assert files[1].name in err and "while it was read" in err, err
    state = store / ".zarr-parallel"
    assert not list(state.rglob("*.done"))
    assert not (state / "complete.json").exists()
    again = run_cache(tmp_path, dict(cfg, resume=True))
    assert again.returncode == 4 and files[1].name in again.stderr, again.stderr


# 4. Process lifetime: workers never outlive their coordinator.

def start_hung_local_run(tmp_path, store, cfg_extra=None):
    cfg = era5_config(store, deploy_mode="local", simultaneous_worker_limit=2, worker_timeout="10:00",
                      **(cfg_extra or {}))
    path = tmp_path / f"cfg_{store.name}.yaml"
    path.write_text(json.dumps(cfg))
    flag = tmp_path / f"stopped_{store.name}"
    # Copies off: the other worker would otherwise copy the stopped job and end the run.
    env = dict(os.environ, ZP_FAULT_STOP_ONCE=str(flag), ZP_FAULT_NO_COPIES="1")
    proc = subprocess.Popen([str(BIN), "cache", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    for _ in range(300):  # a worker has stopped itself mid-job: the run is now waiting on it
        if flag.exists() and children_of(proc.pid):
            break
        time.sleep(0.05)
    assert flag.exists(), "the fault was not injected"
    return proc, path, cfg


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_to_a_local_coordinator_leaves_no_worker_behind(tmp_path, sig):
    need_fixtures()
    store = tmp_path / "sig.zarr"
    proc, path, cfg = start_hung_local_run(tmp_path, store)
    workers = children_of(proc.pid)
    assert workers
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 128 + sig, err
    assert "resume: true" in err
    deadline = t0 + 3
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(w) for w in workers), "a worker outlived its coordinator"
    assert time.monotonic() - t0 < 3.5
    assert not (tmp_path / ".sig.zarr.zp-lock").exists()  # released
    done = run_cache(tmp_path, dict(cfg, resume=True, deploy_mode="series"), check=0)
    assert "resuming" in done.stderr
    assert verify(tmp_path, cfg).returncode == 0


def test_killed_coordinator_takes_its_workers_along(tmp_path):
    """SIGKILL cannot be handled: the workers die by PR_SET_PDEATHSIG, so none of them is left to
    write the old config's chunks into a store that another run has taken over."""
    need_fixtures()
    store = tmp_path / "orphan.zarr"
    proc, path, cfg = start_hung_local_run(tmp_path, store)
    workers = children_of(proc.pid)
    proc.kill()
    proc.wait()
    assert none_alive_within(workers)
    other = era5_config(store, encoding="decoded")
    run_cache(tmp_path, other, check=0)
    time.sleep(1)
    assert verify(tmp_path, other).returncode == 0


def test_a_worker_of_a_replaced_store_writes_nothing(tmp_path):
    """An array task of an old run that starts after its store was replaced (a queued SLURM task)
    finds another store id at its plan's location and refuses."""
    need_fixtures()
    store = tmp_path / "old.zarr"
    flag = tmp_path / "fired"
    cfg = era5_config(store)
    run_cache(tmp_path, cfg, env={"ZP_FAULT_KILL_ONCE": str(flag)})
    saved = tmp_path / "old_side"
    subprocess.run(["cp", "-a", str(store / ".zarr-parallel"), str(saved)], check=True)
    other = era5_config(store, encoding="decoded")
    run_cache(tmp_path, other, check=0)
    before = store_files(store)
    # The old plan, put back where the store is now: its store id is not this store's.
    plan = store / ".zarr-parallel" / "old-plan.json"
    subprocess.run(["cp", str(saved / "plan.json"), str(plan)], check=True)
    proc = subprocess.run([str(BIN), "worker", str(plan), "0", "1", "2"], capture_output=True, text=True)
    assert proc.returncode == 5 and "not the store this plan was made for" in proc.stderr, proc.stderr
    assert store_files(store) == before
    assert verify(tmp_path, other).returncode == 0


# 5. Locking: two coordinators started together never both build a store.

def test_concurrent_coordinators_on_a_new_store_never_mix(tmp_path):
    need_fixtures()
    pairs = int(os.environ.get("ZP_LOCK_TRIALS", "20"))
    a_wins = b_wins = both = 0
    for trial in range(pairs):
        store = tmp_path / f"race{trial}.zarr"
        cfgs = [era5_config(store), era5_config(store, encoding="decoded")]
        paths = []
        for k, cfg in enumerate(cfgs):
            p = tmp_path / f"race{trial}_{k}.yaml"
            p.write_text(json.dumps(cfg))
            paths.append(p)
        procs = [subprocess.Popen([str(BIN), "cache", str(p)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for p in paths]
        outs = [p.communicate(timeout=120) for p in procs]
        codes = [p.returncode for p in procs]
        assert all(c in (0, 5) for c in codes), (codes, outs)
        assert 0 in codes, outs
        for c, (_, err) in zip(codes, outs):
            if c == 5:
                assert "another zarr-parallel run holds it" in err, err
        both += codes == [0, 0]
        # Whatever happened, the store is complete for exactly one of the two configs, and equal to it.
        results = [verify(tmp_path, cfg).returncode for cfg in cfgs]
        assert sorted(results) == [0, 1], (trial, codes, results, outs)
        a_wins += results[0] == 0
        b_wins += results[1] == 0
    print(f"{pairs} pairs: config A's store {a_wins}, B's {b_wins}, both exited 0 (one after the other) {both}")


def without_locks(err, flock_only=False):
    """preexec_fn: in the child and every process it starts, flock(2) (and unless `flock_only`,
    fcntl's locks) fail with `err`, as on a file system without them: Lustre mounted without
    `flock` (ENOSYS), NFS without its lock daemon (ENOLCK), Cray DVS (flock only, ENOTSUPP 524)."""
    import seccomp
    rules = [("flock", None)]
    if not flock_only:  # F_SETLK, F_SETLKW, F_OFD_SETLK, F_OFD_SETLKW
        rules += [("fcntl", seccomp.Arg(1, seccomp.EQ, cmd)) for cmd in (6, 7, 37, 38)]

    def apply():
        f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        for call, arg in rules:
            f.add_rule(seccomp.ERRNO(err), call, *([arg] if arg else []))
        f.load()
    return apply


def netcdf_config(tmp_path, store, **extra):
    make_netcdf(tmp_path / "src")
    cfg = {"data_uri": str(tmp_path / "src" / "*.nc"), "cache_store": str(store), "deploy_mode": "local",
           "simultaneous_worker_limit": 2, "chunks": {"time": 24, "latitude": 19, "longitude": 36},
           "worker_timeout": "10:00", "recommend_changes": False}
    cfg.update(extra)
    path = tmp_path / f"cfg_{store.name}.yaml"
    path.write_text(json.dumps(cfg))
    return cfg, path


@pytest.mark.parametrize("err", [errno.ENOLCK, errno.ENOSYS], ids=["nfs-without-lockd", "lustre-without-flock"])
def test_a_file_system_without_locks_is_used_and_said_so(tmp_path, err):
    # Before: ENOLCK failed HDF5's own lock on each NetCDF-4 source ("HDF5 cannot open the file",
    # exit 4); ENOSYS failed the store's lock (exit 5). Either way nothing could be cached there.
    store = tmp_path / "nl.zarr"
    cfg, path = netcdf_config(tmp_path, store)
    proc = subprocess.run([str(BIN), "cache", str(path)], capture_output=True, text=True, timeout=120,
                          preexec_fn=without_locks(err))
    assert proc.returncode == 0, proc.stderr
    assert "this file system has no file locks" in proc.stderr, proc.stderr
    assert_matches(store, open_netcdf(tmp_path / "src" / "*.nc"))


@pytest.mark.parametrize("flock_only", [True, False], ids=["fcntl-locks-only", "no-locks"])
def test_a_second_run_is_refused_where_flock_is_missing(tmp_path, flock_only):
    store = tmp_path / "nl.zarr"
    cfg, path = netcdf_config(tmp_path, store)
    flag = tmp_path / "stopped"
    first = subprocess.Popen([str(BIN), "cache", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, ZP_FAULT_STOP_ONCE=str(flag), ZP_FAULT_NO_COPIES="1"),
                             preexec_fn=without_locks(524 if flock_only else errno.ENOLCK, flock_only))
    try:
        for _ in range(300):
            if flag.exists():
                break
            time.sleep(0.05)
        assert flag.exists(), "the fault was not injected"
        second = subprocess.run([str(BIN), "cache", str(path)], capture_output=True, text=True, timeout=60,
                                preexec_fn=without_locks(524 if flock_only else errno.ENOLCK, flock_only))
        assert second.returncode == 5, second.stderr
        assert "another zarr-parallel run holds it" in second.stderr and f"pid {first.pid}" in second.stderr
    finally:
        first.kill()
        _, first_err = first.communicate()
    # Without flock the lock is an fcntl lock, a real one; without any, the note says so.
    assert ("has no file locks" in first_err) == (not flock_only), first_err


# 6. Paths: a moved store resumes where it is now.

def test_moved_store_resumes_in_place(tmp_path):
    need_fixtures()
    old = tmp_path / "old_place.zarr"
    flag = tmp_path / "fired"
    cfg = era5_config(old)
    assert run_cache(tmp_path, cfg, env={"ZP_FAULT_KILL_ONCE": str(flag)}).returncode == -9
    new = tmp_path / "moved" / "new_place.zarr"
    new.parent.mkdir()
    old.rename(new)
    decoy = tmp_path / "old_place.zarr"
    decoy.mkdir()
    (decoy / "someone_elses.txt").write_text("not yours")
    moved = dict(cfg, cache_store=str(new), resume=True)
    proc = run_cache(tmp_path, moved, check=0)
    assert "resuming" in proc.stderr
    assert sorted(p.name for p in decoy.iterdir()) == ["someone_elses.txt"]
    assert verify(tmp_path, moved).returncode == 0
    clean = tmp_path / "clean.zarr"
    run_cache(tmp_path, era5_config(clean), check=0)
    assert store_files(new) == store_files(clean)


# 6b. Links: nothing planted inside a store leads a resume's writes outside it.

def plant_link(store, where, elsewhere):
    """Replaces `where` in an unfinished store by a symbolic link to the folder `elsewhere` (which
    gets what was there, so the link is a working one), or each chunk file by a link to a file there."""
    elsewhere.mkdir()
    if where == "chunk":
        planted = sorted(p for p in (store / "d2m").iterdir() if not p.name.startswith("."))
        assert planted
        for p in planted:
            victim = elsewhere / p.name
            victim.write_bytes(b"victim")
            p.unlink()
            p.symlink_to(victim)
        return planted[0].relative_to(store).as_posix()
    rel = {"array": "d2m", "logs": ".zarr-parallel/logs", "side": ".zarr-parallel"}[where]
    path = store / rel
    if path.exists():
        for p in path.iterdir():
            p.rename(elsewhere / p.name)
        path.rmdir()
    for i in range(20):  # what a resume would append to
        (elsewhere / f"job-{i}.log").write_text("victim")
    path.symlink_to(elsewhere, target_is_directory=True)
    return rel


@pytest.mark.parametrize("where", ["array", "logs", "chunk", "side"])
def test_a_link_planted_in_a_store_is_refused_and_nothing_outside_changes(tmp_path, where):
    need_fixtures()
    store = tmp_path / "linked.zarr"
    cfg = era5_config(store)
    assert run_cache(tmp_path, cfg, env={"ZP_FAULT_KILL_ONCE": str(tmp_path / "fired")}).returncode == -9
    elsewhere = tmp_path / "elsewhere"
    rel = plant_link(store, where, elsewhere)
    before = snapshot(elsewhere)
    time.sleep(0.01)
    # Local workers write the job logs; a series run writes all else in the coordinator, where a
    # store error ends the run as itself (a worker's would be a failed job, exit 6).
    mode = "local" if where == "logs" else "series"
    proc = run_cache(tmp_path, dict(cfg, resume=True, deploy_mode=mode, simultaneous_worker_limit=2))
    assert proc.returncode == 5, proc.stderr
    assert rel in proc.stderr and "link" in proc.stderr, proc.stderr
    assert snapshot(elsewhere) == before
    assert not (store / ".zarr-parallel" / "complete.json").exists()
    assert not (elsewhere / "complete.json").exists()


def test_plan_picture_never_follows_a_link_nor_waits_on_a_fifo(tmp_path):
    need_fixtures()
    cfg = era5_config(tmp_path / "x.zarr")
    dangling = tmp_path / "picture.svg"
    target = tmp_path / "created-by-us.svg"
    dangling.symlink_to(target)
    fifo = tmp_path / "pipe.svg"
    os.mkfifo(fifo)
    (tmp_path / "c.yaml").write_text(json.dumps(cfg))
    for path in (dangling, fifo):
        start = time.monotonic()
        proc = subprocess.run([str(BIN), "plan", str(tmp_path / "c.yaml"), "--svg", str(path)], capture_output=True,
                              text=True, timeout=30)
        assert time.monotonic() - start < 20
        assert proc.returncode == 5 and str(path) in proc.stderr, proc.stderr
    assert not target.exists() and dangling.is_symlink() and fifo.is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "picture.svg", "pipe.svg"]


# 6c. plan.json is input like any other: a damaged or edited plan never crashes a command nor
# completes a store with wrong values.

def numbers_in(node, path=()):
    """Paths to every number (not bool) in a JSON tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from numbers_in(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from numbers_in(v, path + (i,))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path


def mutated(plan, path, rng):
    import copy
    out = copy.deepcopy(plan)
    node = out
    for k in path[:-1]:
        node = node[k]
    v = node[path[-1]]
    node[path[-1]] = rng.choice([v + 1, v - 1, 0, -1, v * 2, -v, 2**31, 2**62 + 3, -(2**63), 2**64 + 1, 1e300,
                                 v + 0.5, v * 1000003])
    return out


def plan_digest_signed(store, text):
    """Records the SHA-256 of `text` as the store's plan digest, as one who rewrites the state would."""
    import hashlib
    state_file = store / ".zarr-parallel" / "state.json"
    state = json.loads(state_file.read_text())
    if "plan_sha256" in state:
        state["plan_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        state_file.write_text(json.dumps(state))


def test_mutated_plans_end_in_documented_exit_codes_and_never_complete_wrong(tmp_path):
    import random
    need_fixtures()
    base = tmp_path / "base.zarr"
    cfg = era5_config(base, num_jobs=4)
    assert run_cache(tmp_path, cfg, env={"ZP_FAULT_KILL_ONCE": str(tmp_path / "fired")}).returncode == -9
    clean = tmp_path / "clean.zarr"
    run_cache(tmp_path, era5_config(clean, num_jobs=4), check=0)
    want = store_files(clean)
    plan = json.loads((base / ".zarr-parallel" / "plan.json").read_text())
    paths = [p for p in numbers_in(plan) if p[0] not in ("summary", "global_attrs") and "attrs" not in p]
    rng = random.Random(26)
    # A mutant may not take much longer than the unmutated plan's round of the same commands, timed
    # here on this machine now: a bound that follows the load instead of a fixed wall budget.
    start = time.monotonic()
    mutant_round(tmp_path, cfg, base, tmp_path / "unmutated.zarr", json.dumps(plan), False, "unmutated")
    allowed = 10 * (time.monotonic() - start) + 5
    outcomes = {}
    for i in range(150):
        path = rng.choice(paths)
        start = time.monotonic()
        code = mutant_round(tmp_path, cfg, base, tmp_path / f"m{i}.zarr", json.dumps(mutated(plan, path, rng)),
                            i % 2 == 1, path, want)  # half also rewrote the digest: only validation stands
        assert time.monotonic() - start < allowed, (path, "took more than", allowed, "s")
        outcomes[code] = outcomes.get(code, 0) + 1
    print("resume exit codes over 150 mutants:", outcomes)


def mutant_round(tmp_path, cfg, base, store, text, signed, label, want=None):
    """status, a worker and a resume on a copy of `base` whose plan is `text`: documented exit codes
    only, and never a completed store with other contents than `want`. Returns the resume's code."""
    import shutil
    shutil.copytree(base, store, symlinks=True)
    (store / ".zarr-parallel" / "plan.json").write_text(text)
    if signed:
        plan_digest_signed(store, text)
    runs = [("status", [str(BIN), "status", str(store)]),
            ("worker", [str(BIN), "worker", str(store / ".zarr-parallel" / "plan.json"), "0", "1"])]
    for name, argv in runs:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        ok = proc.returncode in (0, 2, 3, 4, 5, 6, 8) or (name == "status" and proc.returncode == 1)
        assert ok and "internal error" not in proc.stderr, (name, label, proc.returncode, proc.stderr[-2000:])
    proc = run_cache(tmp_path, dict(cfg, cache_store=str(store), resume=True), env={"ZP_CACHE_DIR": "off"})
    assert proc.returncode in (0, 2, 4, 5, 6, 8), (label, proc.returncode, proc.stderr[-2000:])
    if want is not None and (store / ".zarr-parallel" / "complete.json").exists() and not signed:
        assert store_files(store) == want, ("a mutated plan completed a wrong store", label)
    shutil.rmtree(store)
    return proc.returncode


# 7. verify reads what xarray reads: .zmetadata.

def test_verify_checks_consolidated_metadata(tmp_path):
    need_fixtures()
    store = tmp_path / "m.zarr"
    cfg = era5_config(store)
    run_cache(tmp_path, cfg, check=0)
    meta_path = store / ".zmetadata"
    meta = json.loads(meta_path.read_text())
    meta["metadata"]["d2m/.zattrs"]["units"] = "furlongs"
    meta_path.write_text(json.dumps(meta))
    proc = verify(tmp_path, cfg)
    assert proc.returncode == 1 and ".zmetadata: 'd2m/.zattrs' differs" in proc.stdout, proc.stdout
    assert "furlongs" not in proc.stdout  # keys, not whole documents
    meta_path.unlink()
    proc = verify(tmp_path, cfg)
    assert proc.returncode == 1 and ".zmetadata: missing" in proc.stdout, proc.stdout


# 8. Hostile input: bounded in time and memory.

HOSTILE = ["configs/yaml_alias_bomb.yaml", "configs/yaml_deep.yaml", "configs/duplicate_key.yaml",
           "configs/workers_2_31.yaml", "configs/workers_2_32.yaml", "kerchunk/attrs_deep.json",
           "kerchunk/refs_deep.json", "kerchunk/gen_huge.json", "kerchunk/ref_length_2_63.json",
           "kerchunk/zarray_length_2_63.json"]


def sanitized():
    return b"__asan_init" in BIN.read_bytes()


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input_ends_in_30_s_and_3_gb(tmp_path, name):
    need_fixtures()
    import resource
    corpus = Path(__file__).resolve().parents[1] / "corpus"
    path = corpus / name
    if name.startswith("configs/"):
        cfg = tmp_path / path.name
        cfg.write_text(path.read_text().replace("../../../../shared/fixtures", str(ERA5.parent)))
    else:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(json.dumps({"data_uri": str(path), "cache_store": str(tmp_path / "out.zarr"),
                                   "deploy_mode": "series", "recommend_changes": False}))

    def limit():  # ASan reserves terabytes of address space: there the limit cannot apply
        if not sanitized_build:
            resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    sanitized_build = sanitized()
    t0 = time.monotonic()
    proc = subprocess.run([str(BIN), "cache", str(cfg), "--yes"], capture_output=True, text=True, timeout=30,
                          preexec_fn=limit)
    assert proc.returncode in (2, 4), (proc.returncode, proc.stderr[-2000:])
    assert time.monotonic() - t0 < 30
    assert "internal error" not in proc.stderr and proc.stderr.startswith("zarr-parallel: error:"), proc.stderr


# 9. status.

def test_status_does_not_count_dead_workers_as_live(tmp_path):
    need_fixtures()
    store = tmp_path / "st.zarr"
    proc, path, cfg = start_hung_local_run(tmp_path, store)
    proc.kill()  # the workers die with it (see above), their last heartbeats are recent
    proc.wait()
    time.sleep(0.5)
    out = subprocess.run([str(BIN), "status", str(store), "--json"], capture_output=True, text=True)
    status = json.loads(out.stdout)
    assert status["heartbeats"] and status["live_workers"] == [], status
    text = subprocess.run([str(BIN), "status", str(store)], capture_output=True, text=True).stdout
    assert "0 live" in text and "process gone" in text, text


# 10. Crashes of the machine: what a store claims survives a power loss or a node crash.
#
# The store lives on ext4 in a loop-mounted image that commits its journal every second, while the
# kernel writes file data back only after 30 s. A copy of the image, taken while every process of
# the run is stopped, is the disk as a power loss at that moment leaves it; mounted again in the
# same place it is the store a user finds after the reboot.

class Ext4Disk:
    def __init__(self, tmp_path):
        self.image = tmp_path / "disk.img"
        self.mount_point = tmp_path / "disk"
        self.mount_point.mkdir()
        subprocess.run(["truncate", "-s", "64M", str(self.image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(self.image)], check=True, capture_output=True)
        self.mount(self.image)

    def mount(self, image):
        subprocess.run(["mount", "-o", "loop,commit=1", str(image), str(self.mount_point)], check=True,
                       capture_output=True)

    def unmount(self):
        for _ in range(100):  # killed workers may hold files open for a moment
            if subprocess.run(["umount", str(self.mount_point)], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        subprocess.run(["umount", str(self.mount_point)], check=True, capture_output=True)

    def power_loss(self):
        """The disk as it is now, remounted in place of the live one; call with the run stopped."""
        time.sleep(2.5)  # past a journal commit: the names are on disk, unflushed data is not
        crashed = self.image.with_name("crashed.img")
        subprocess.run(["cp", "--sparse=always", str(self.image), str(crashed)], check=True)
        return crashed


@pytest.fixture
def ext4_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a loop device needs root")
    if int(Path("/proc/sys/vm/dirty_expire_centisecs").read_text()) < 1000:
        pytest.skip("file data is written back within 10 s here: a crash cannot lose it")
    try:
        disk = Ext4Disk(tmp_path)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        pytest.skip(f"cannot mount an ext4 image here: {e}")
    yield disk
    subprocess.run(["umount", str(disk.mount_point)], capture_output=True)


def crash_config(tmp_path, disk):
    files = make_netcdf(tmp_path / "src", files=4)
    return {"data_uri": str(tmp_path / "src" / "*.nc"), "cache_store": str(disk.mount_point / "c.zarr"),
            "chunks": {"time": 24, "latitude": 19, "longitude": 36}, "deploy_mode": "local",
            "simultaneous_worker_limit": 2, "num_jobs": 8, "worker_timeout": "10:00", "recommend_changes": False}, files


def test_a_store_completed_just_before_a_power_loss_is_complete_after_it(tmp_path, ext4_disk):
    cfg, files = crash_config(tmp_path, ext4_disk)
    run_cache(tmp_path, cfg, check=0)
    crashed = ext4_disk.power_loss()
    ext4_disk.unmount()
    ext4_disk.mount(crashed)
    store = Path(cfg["cache_store"])
    # Before: complete.json, the done markers and every chunk were empty files (names on disk, data
    # never flushed), and the store was refused as "no store marker".
    again = run_cache(tmp_path, cfg, check=0)
    assert "cache hit" in again.stderr, again.stderr
    assert_matches(store, open_netcdf(tmp_path / "src" / "*.nc"))
    assert verify(tmp_path, cfg).returncode == 0


def test_a_run_cut_by_a_power_loss_resumes_to_the_right_store(tmp_path, ext4_disk):
    cfg, files = crash_config(tmp_path, ext4_disk)
    store = Path(cfg["cache_store"])
    # A first run dies after two jobs; the kernel writes its data back (as it does within 30 s).
    first = run_cache(tmp_path, dict(cfg, deploy_mode="series"),
                      env={"ZP_FAULT_KILL_ONCE": str(tmp_path / "killed"), "ZP_FAULT_AFTER_CHUNKS": "9"})
    assert first.returncode == -signal.SIGKILL, first.stderr
    subprocess.run(["sync"], check=True)
    # The resumed run: one worker stops itself in a job, the other finishes every other job.
    path = tmp_path / "crash.yaml"
    path.write_text(json.dumps(dict(cfg, resume=True)))
    flag = tmp_path / "stopped"
    proc = subprocess.Popen([str(BIN), "cache", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, ZP_FAULT_STOP_ONCE=str(flag), ZP_FAULT_AFTER_CHUNKS="2",
                                                      ZP_FAULT_NO_COPIES="1"))  # the stopped job stays undone
    status = {}
    try:
        for _ in range(600):
            if flag.exists():
                out = subprocess.run([str(BIN), "status", str(store), "--json"], capture_output=True, text=True)
                status = json.loads(out.stdout or "{}")
                if status and status["jobs_done"] == status["jobs_total"] - 1:
                    break
            time.sleep(0.05)
        assert flag.exists() and status["jobs_done"] == status["jobs_total"] - 1, status
        for pid in [proc.pid] + children_of(proc.pid):
            os.kill(pid, signal.SIGSTOP)
        crashed = ext4_disk.power_loss()
    finally:
        for pid in [proc.pid] + children_of(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.communicate()
    ext4_disk.unmount()
    ext4_disk.mount(crashed)
    # Before: the second run's done markers were on disk but its chunks were empty files; the resume
    # kept them, ran the one job left and marked the store complete.
    resumed = run_cache(tmp_path, dict(cfg, resume=True, deploy_mode="series"), check=0)
    assert "resuming" in resumed.stderr, resumed.stderr
    assert verify(tmp_path, cfg).returncode == 0
    assert_matches(store, open_netcdf(tmp_path / "src" / "*.nc"))

"""Shared helpers for the end-to-end tests: run the zarr-parallel binary on a config, open what it
wrote with xarray and zarr-python, and compare with xarray's own reading of the source."""
import json
import time
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("ZP_BIN", REPO / "build" / "bin" / "zarr-parallel"))
SAMPLE_BIN = Path(os.environ.get("ZP_SAMPLE_BIN", BIN.parent / "zp-make-sample"))
FIXTURES = Path(os.environ.get("ZP_FIXTURES", REPO.parent / "shared" / "fixtures"))
ERA5 = FIXTURES / "era5_small"


def need_fixtures():
    if not (ERA5 / "refs.json").exists():
        pytest.skip(f"shared fixtures not found at {FIXTURES}")


def namespaces_work(flags):
    """Whether `unshare FLAGS` (-rn: user and network namespaces; -rnm: and mount) can bring up
    the new namespace's loopback device with `ip`: the tests that need one are skipped otherwise."""
    import shutil
    try:
        return shutil.which("unshare") is not None and shutil.which("ip") is not None and subprocess.run(
            ["unshare", flags, "ip", "link", "set", "lo", "up"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def planted_libraries(folder, elf):
    """Puts a file that is no library under each name `elf` needs (DT_NEEDED) into `folder`, for
    running from there: a binary whose run path searches the working directory fails to start."""
    out = subprocess.run(["readelf", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    names = [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]
    assert names, out
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("not a shared library\n")
    return folder


def run_cache(tmp_path, config, *args, command="cache", env=None, check=None):
    """Writes `config` (YAML is a superset of JSON) and runs `zarr-parallel COMMAND`."""
    cfg_path = tmp_path / f"config_{abs(hash(json.dumps(config, sort_keys=True)))}.yaml"
    cfg_path.write_text(json.dumps(config, indent=1))
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([str(BIN), command, str(cfg_path), *args], capture_output=True, text=True,
                          env=full_env, timeout=300)
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture
def s3(tmp_path, request):
    """s3rver on loopback (servers.S3rver) holding the empty bucket named by the test module's
    BUCKET; stopped after the test."""
    from servers import S3rver
    with S3rver(tmp_path / "s3") as server:
        server.client().create_bucket(Bucket=request.module.BUCKET)
        yield server


def alive(pid):
    """Whether process `pid` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def none_alive_within(pids, seconds=3):
    """Whether every process of `pids` has ended within `seconds` (polled, bounded)."""
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(alive(p) for p in pids)


def stopped_in_session(sid):
    """Processes of session `sid` that are stopped (SIGSTOP)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "T" and int(fields[3]) == sid:
            found.append(int(stat.parent.name))
    return found


def children_of(pid):
    """Pids of the live processes whose parent is `pid`."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def open_kerchunk(path, **kw):
    refs = json.loads(Path(path).read_text())
    cwd = os.getcwd()
    os.chdir(Path(path).parent)  # chunk paths in the fixtures are relative to the JSON's folder
    try:
        ds = xr.open_dataset("reference://", engine="zarr",
                             backend_kwargs={"consolidated": False, "storage_options": {"fo": refs}}, **kw)
        return ds.load()
    finally:
        os.chdir(cwd)


def open_netcdf(pattern, **kw):
    files = sorted(Path(p) for p in __import__("glob").glob(str(pattern)))
    if len(files) == 1:
        return xr.open_dataset(files[0], **kw).load()
    return xr.open_mfdataset(files, combine="nested", concat_dim="time", data_vars="minimal",
                             coords="minimal", compat="override", **kw).load()


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return np.array_equal(a.view(f"i{a.dtype.itemsize}"), b.view(f"i{b.dtype.itemsize}"))
    return np.array_equal(a, b)


def assert_matches(store, expected, raw_expected=None, renames=None, extra_attrs=None):
    """The store equals `expected` (decoded) and, when given, `raw_expected` bit for bit."""
    renames = renames or {}
    got = xr.open_zarr(store).load()
    assert set(got.data_vars) == {renames.get(v, v) for v in expected.data_vars}, (got.data_vars, expected.data_vars)
    for name in expected.data_vars:
        g, e = got[renames.get(name, name)], expected[name]
        assert g.dims == tuple(renames.get(d, d) for d in e.dims), (g.dims, e.dims)
        assert g.dtype == e.dtype, (name, g.dtype, e.dtype)
        assert np.array_equal(g.values, e.values, equal_nan=True), name
        assert g.attrs == e.attrs, (name, g.attrs, e.attrs)
    for dim in expected.dims:
        assert np.array_equal(got[renames.get(dim, dim)].values, expected[dim].values), dim
        assert got[renames.get(dim, dim)].attrs == expected[dim].attrs, dim
    for k, v in expected.attrs.items():
        if not k.startswith("zarr_parallel_"):  # our own provenance, recomputed per config
            assert got.attrs[k] == v, k
    for k, v in (extra_attrs or {}).items():
        assert got.attrs[k] == v, k
    assert "zarr_parallel_config_hash" in got.attrs and "zarr_parallel_version" in got.attrs
    if raw_expected is not None:
        raw = xr.open_zarr(store, mask_and_scale=False, decode_times=False).load()
        for name in raw_expected.data_vars:
            assert same_bits(raw[renames.get(name, name)].values, raw_expected[name].values), name
        for dim in raw_expected.dims:
            assert same_bits(raw[renames.get(dim, dim)].values, raw_expected[dim].values), dim
    return got


def store_files(store):
    """{relative path: bytes} of a store's Zarr keys (the .zarr-parallel side folder excluded)."""
    out = {}
    for p in Path(store).rglob("*"):
        rel = p.relative_to(store).as_posix()
        if p.is_file() and not rel.startswith(".zarr-parallel"):
            out[rel] = p.read_bytes()
    return out


def tile_like_the_original(ds, sizes, boundary="pad"):
    """The original's TilerTransform in xarray: coarsen + construct, stack the coarse dimensions (in
    the data's dimension order) into batch_dim, batch_dim first, reset_index."""
    c = ds.coarsen(sizes, boundary=boundary).construct({d: (f"{d}_coarse", f"{d}_fine") for d in sizes})
    first = next(v for v in ds.data_vars.values() if all(d in v.dims for d in sizes))
    order = [d for d in first.dims if d in sizes]
    return c.stack(batch_dim=[f"{d}_coarse" for d in order]).transpose("batch_dim", ...).reset_index("batch_dim")


def base_config(store, **extra):
    """The ERA5 fixture's first four days in 8 jobs on 2 local workers: the lifecycle tests' run."""
    cfg = {"data_uri": str(ERA5 / "refs.json"),
           "preprocessors": [{"type": "sel", "time": ["2000-01-01 00:00", "2000-01-04 23:00"]}],
           "chunks": {"time": 24, "latitude": 19, "longitude": 36},
           "cache_store": str(store), "num_jobs": 8, "simultaneous_worker_limit": 2}
    cfg.update(extra)
    return cfg


def resume_when_all_done(proc, flag, state, limit, log):
    """Once a worker or rank has stopped itself (`flag` written, SIGSTOP), waits until every job of
    the plan in `state` is done (by a copy) or `limit` seconds, then lets what stopped in `proc`'s
    session go on; `log` says which came first."""
    deadline = time.monotonic() + 120
    while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    until = time.monotonic() + limit
    jobs = len(json.loads((state / "plan.json").read_text())["jobs"]) if flag.exists() else -1
    while proc.poll() is None and time.monotonic() < until:
        if len(list((state / "jobs").glob("*.done"))) == jobs:
            log.append("all done while stopped")
            break
        time.sleep(0.1)
    pids = []
    for _ in range(50):  # the stop shows in /proc a moment after the flag
        pids = stopped_in_session(proc.pid)
        if pids:
            break
        time.sleep(0.1)
    for pid in pids:
        os.kill(pid, signal.SIGCONT)
    log.append(f"resumed {len(pids)}")


def traced_env(**extra):
    """The environment of a command run under strace: LeakSanitizer cannot work under ptrace and
    turns a clean exit into 1 (the sanitizer stage), so leaks are not looked for there."""
    env = dict(os.environ, **extra)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    return env

"""The manifest cache and the (opt-in) parallel scan of large NetCDF globs: a cache made by child processes,
a warm cache and no cache give byte-identical stores; a changed file is scanned again; a file
that fails to scan is named."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, ERA5, FIXTURES, SAMPLE_BIN, need_fixtures, run_cache, store_files, traced_env  # noqa: E402


def make_files(folder, n=24):
    subprocess.run([str(SAMPLE_BIN), "--out", str(folder), "--files", str(n), "--steps", "6", "--lat", "37",
                    "--lon", "72", "--chunks", "6", "37", "72"], check=True, capture_output=True, timeout=300)
    return sorted(folder.glob("*.nc"))


def cached(tmp_path, cfg, cache, name, parallel=False):
    store = tmp_path / f"{name}.zarr"
    run_cache(tmp_path, dict(cfg, cache_store=str(store)),
              env={"ZP_CACHE_DIR": cache, "ZP_PARALLEL_SCAN": "1" if parallel else "0"}, check=0)
    files = store_files(store)
    return {k: v for k, v in files.items() if k not in (".zattrs", ".zmetadata")}


def entry_files(folder):
    """The files held by the source entry of the cache (one entry for the whole glob)."""
    entries = list(folder.glob("source-*.jsonl"))
    assert len(entries) == 1, entries
    lines = entries[0].read_text().splitlines()[2:]  # the checksum line, the version line, the parts
    return sorted(json.loads(h)["path"] for h in lines[::3])


def test_parallel_scan_and_warm_cache_give_the_same_store(tmp_path):
    files = make_files(tmp_path / "src")
    cache = str(tmp_path / "cache")
    folder = tmp_path / "cache" / "parts"
    cfg = {"data_uri": str(tmp_path / "src" / "*.nc"), "deploy_mode": "series", "recommend_changes": False}
    none = cached(tmp_path, cfg, "off", "none")
    assert not folder.exists()
    cold = cached(tmp_path, cfg, cache, "cold", parallel=True)
    assert entry_files(folder) == sorted(str(f) for f in files)
    joins = list(folder.glob("join-*.json"))
    assert len(joins) == 1  # the joined glob
    # Warm: the joined entry alone serves (the source entry is not even read).
    source = next(folder.glob("source-*.jsonl"))
    saved = source.read_bytes()
    source.unlink()
    warm = cached(tmp_path, cfg, cache, "warm")
    assert none == cold == warm
    assert not source.exists()
    source.write_bytes(saved)
    # A file touched (same bytes, new mtime) misses the joined entry and is scanned again; the
    # others come from the source entry, trusted by size and mtime: a file whose bytes were
    # replaced with garbage under its old size and mtime is not read.
    time.sleep(0.01)
    os.utime(files[5])
    st = files[3].stat()
    original = files[3].read_bytes()
    files[3].write_bytes(b"\0" * st.st_size)
    os.utime(files[3], ns=(st.st_atime_ns, st.st_mtime_ns))
    run_cache(tmp_path, dict(cfg, cache_store=str(tmp_path / "plan.zarr")), command="plan",
              env={"ZP_CACHE_DIR": cache}, check=0)
    # A new joined entry replaced the old one (the cache does not grow by a join per change).
    assert len(list(folder.glob("join-*.json"))) == 1 and not joins[0].exists()
    files[3].write_bytes(original)
    os.utime(files[3], ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cached(tmp_path, cfg, cache, "touched") == none
    # A day appended to the glob: a new join, the new file in the store; a file removed from the
    # glob leaves the source entry.
    extra = make_files(tmp_path / "more", n=25)[-1]
    os.rename(extra, tmp_path / "src" / "zz_last.nc")
    grown = cached(tmp_path, cfg, cache, "grown")
    assert grown == cached(tmp_path, cfg, "off", "grown_none") and grown != none
    os.remove(tmp_path / "src" / "zz_last.nc")
    os.utime(files[0])
    cached(tmp_path, cfg, cache, "shrunk")
    assert entry_files(folder) == sorted(str(f) for f in files)


def test_scan_parts_children_print_each_files_part(tmp_path):
    files = make_files(tmp_path / "src", n=3)
    proc = subprocess.run([str(BIN), "scan-parts", "--group", "", "--", *map(str, files)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 9  # a header, the join coordinates and the dataset per file
    assert [json.loads(h)["path"] for h in lines[::3]] == [str(f) for f in files]
    assert all(set(json.loads(c)["digests"]) == {"time", "latitude", "longitude"} for c in lines[1::3])
    # The unlimited dimension's coordinate travels with its values (the join holds them inline).
    assert all(set(json.loads(c)["values"]) == {"time"} for c in lines[1::3])
    assert all(json.loads(b)["engine"] == "netcdf" for b in lines[2::3])


def test_a_joining_scanner_prints_every_part_only_for_the_cache(tmp_path):
    # Without the manifest cache nothing keeps the per-file parts: a joining child prints the
    # first file's (the join check reads its coordinates) and the joined dataset, the same either
    # way. Printing the others was an eighth of a cold `refs`.
    files = make_files(tmp_path / "src", n=5)

    def scan(cache):
        proc = subprocess.run([str(BIN), "scan-parts", "--group", "", "--join", "--", *map(str, files)],
                              capture_output=True, text=True, timeout=60, env=dict(os.environ, ZP_CACHE_DIR=cache))
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[-2] == "#joined", lines[-2:]
        return [json.loads(h)["path"] for h in lines[:-2][::3]], json.loads(lines[-1])

    with_cache, joined = scan(str(tmp_path / "cache"))
    assert with_cache == [str(f) for f in files]
    without, joined_off = scan("off")
    assert without == [str(files[0])]
    assert joined_off == joined and joined["dims"]


def test_a_file_that_fails_to_scan_is_named(tmp_path):
    files = make_files(tmp_path / "src")
    with open(files[7], "r+b") as f:
        f.truncate(2000)
    proc = run_cache(tmp_path, {"data_uri": str(tmp_path / "src" / "*.nc"), "cache_store": str(tmp_path / "x.zarr")},
                     env={"ZP_CACHE_DIR": str(tmp_path / "cache"), "ZP_PARALLEL_SCAN": "1"})
    assert proc.returncode == 4 and files[7].name in proc.stderr, proc.stderr


def test_fixture_sources_read_the_same_through_the_cache(tmp_path):
    need_fixtures()
    cache = str(tmp_path / "cache")
    for name, uri in (("era5", str(ERA5 / "era5_small_*.nc")), ("classic", str(FIXTURES / "classic" / "tp_classic.nc"))):
        cfg = {"data_uri": uri, "deploy_mode": "series", "recommend_changes": False}
        none = cached(tmp_path, cfg, "off", name + "_none")
        cached(tmp_path, cfg, cache, name + "_cold")
        assert cached(tmp_path, cfg, cache, name + "_warm") == none, name


def test_the_join_coordinate_is_held_from_the_scan_across_files_of_different_lengths(tmp_path):
    """Monthly files (28 to 31 steps, time stored big-endian with HDF5 chunks of 1024) joined by the
    children and by one process: the joined time is one inline chunk of its values, so a plan reads
    no file for it; selections across file boundaries and the store equal xarray's reading."""
    import netCDF4
    import numpy as np
    import xarray as xr
    from conftest import assert_matches
    src = tmp_path / "src"
    src.mkdir()
    start = 0
    rng = np.random.default_rng(3)
    for m, n in enumerate([31, 28, 31, 30, 31, 30, 31, 31, 30]):
        with netCDF4.Dataset(src / f"m{m:02d}.nc", "w") as nc:
            nc.createDimension("time", None)
            nc.createDimension("y", 5)
            t = nc.createVariable("time", "f8", ("time",), chunksizes=(1024,), endian="big")
            t.units, t.calendar = "days since 2001-01-01", "standard"
            v = nc.createVariable("v", "f4", ("time", "y"), zlib=True, chunksizes=(7, 5))
            t[:] = np.arange(start, start + n) + 0.5
            v[:] = rng.normal(size=(n, 5)).astype("f4")
        start += n
    files = sorted(src.glob("*.nc"))
    expected = xr.open_mfdataset(files, combine="nested", concat_dim="time").load()
    box = slice("2001-02-20", "2001-05-03")
    for parallel in ("1", "0"):
        cache = str(tmp_path / f"cache{parallel}")
        store = tmp_path / f"s{parallel}.zarr"
        cfg = {"data_uri": str(src / "*.nc"), "cache_store": str(store), "deploy_mode": "series",
               "recommend_changes": False, "chunks": {"time": 20, "y": 5},
               "preprocessors": [{"type": "sel", "time": [box.start, box.stop]}]}
        env = {"ZP_CACHE_DIR": cache, "ZP_PARALLEL_SCAN": parallel}
        plan = json.loads(run_cache(tmp_path, cfg, "--json", command="plan", env=env, check=0).stdout)
        time_source = next(a for a in plan["arrays"] if a["name"] == "time")["source"]
        assert time_source["chunks"]["range"]["count"] == 0 and len(time_source["chunks"]["inline"]) == 1
        assert time_source["dtype"] == "<f8" and time_source["shape"] == [int(expected.sizes["time"])]
        run_cache(tmp_path, cfg, env=env, check=0)
        assert_matches(store, expected.sel(time=box))
        got = xr.open_zarr(store)
        assert np.array_equal(got.time.values, expected.time.sel(time=box).values)
        assert got.time.attrs == expected.time.attrs


def test_a_job_reads_more_files_than_the_process_may_hold_open(tmp_path):
    """One job reads 150 files under a limit of 64 descriptors (soft and hard: nothing can raise it),
    as a decade of daily files does under the common limit of 1,024. Descriptors are reused, not
    kept per file, and the values equal xarray's reading of each file."""
    import resource

    import numpy as np
    import xarray as xr
    files = make_files(tmp_path / "src", n=150)
    store = tmp_path / "many.zarr"
    cfg = {"data_uri": str(tmp_path / "src" / "*.nc"), "cache_store": str(store), "deploy_mode": "series",
           "variables": ["d2m"], "chunks": {"time": 900, "latitude": 37, "longitude": 72}, "recommend_changes": False}
    cfg_path = tmp_path / "many.yaml"
    cfg_path.write_text(json.dumps(cfg))
    proc = subprocess.run([str(BIN), "cache", str(cfg_path)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, ZP_CACHE_DIR="off"),
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)))
    assert proc.returncode == 0, proc.stderr
    plan = json.loads((store / ".zarr-parallel" / "plan.json").read_text())
    assert len(plan["jobs"]) == 1 and len(plan["files"]) == 150
    want = np.concatenate([xr.open_dataset(f).d2m.values for f in files])
    np.testing.assert_array_equal(xr.open_zarr(store).d2m.values, want)


# The manifest cache folder may be shared (ZP_CACHE_DIR): what is planted or edited there is input.

def test_a_link_planted_at_a_cache_temporary_name_is_never_followed(tmp_path):
    """Before: ENTRY.tmp.<pid> was opened with O_TRUNC, so a link planted there for the next pids made
    the run overwrite the link's target. Temporaries are new files (O_EXCL | O_NOFOLLOW, random names)."""
    make_files(tmp_path / "src", n=3)
    cache = tmp_path / "cache"
    folder = cache / "parts"
    cfg = {"data_uri": str(tmp_path / "src" / "*.nc"), "cache_store": str(tmp_path / "x.zarr")}
    env = {"ZP_CACHE_DIR": str(cache), "ZP_PARALLEL_SCAN": "0"}
    run_cache(tmp_path, cfg, command="plan", env=env, check=0)
    entries = sorted(p.name for p in folder.iterdir())
    assert any(e.startswith("join-") for e in entries) and any(e.startswith("source-") for e in entries)
    for e in entries:
        (folder / e).unlink()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    last = int(Path("/proc/sys/kernel/ns_last_pid").read_text())
    for pid in range(last + 1, last + 2000):
        for e in entries:
            (folder / f"{e}.tmp.{pid}").symlink_to(victim)
    run_cache(tmp_path, cfg, command="plan", env=env, check=0)
    assert victim.read_text() == "precious"
    for e in entries:
        assert (folder / e).is_file() and not (folder / e).is_symlink(), e


def edit_join_time(entry, days, resign):
    """Shifts the joined `time` values held inline in a join entry by `days`; with `resign`, also
    rewrites the entry's checksum line as one who can write the cache folder but cannot read the
    user's key can: a SHA-256 of the edited payload (the checksum before entries were signed)."""
    import base64
    import hashlib

    import numpy as np
    text = entry.read_text()
    head, _, payload = text.partition("\n")
    if "sha256" not in head and "hmac" not in head:  # an entry without a checksum line (before)
        head, payload = None, text
    ds = json.loads(payload)
    var = next(v for v in ds["variables"] if v["name"] == "time")
    unit = var["attrs"]["units"].split()[0]
    step = days * {"days": 1, "hours": 24, "minutes": 1440, "seconds": 86400}[unit]
    dtype = np.dtype(var["dtype"])
    edited = 0
    for item in var["chunks"]["inline"]:
        values = np.frombuffer(base64.b64decode(item[-1]), dtype=dtype) + np.asarray(step).astype(dtype)
        item[-1] = base64.b64encode(values.astype(dtype).tobytes()).decode()
        edited += 1
    assert edited, "no inline time values in the join entry"
    payload = json.dumps(ds)
    if head is not None:
        h = json.loads(head)
        if resign:
            h.pop("hmac", None)
            h["zp_entry"] = 1
            h["sha256"] = hashlib.sha256(payload.encode()).hexdigest()
        head = json.dumps(h, separators=(",", ":"))  # as the tool writes it
    entry.write_text(payload if head is None else head + "\n" + payload)


def test_an_edited_join_entry_is_never_cached_and_verify_reads_the_sources(tmp_path):
    import numpy as np
    import xarray as xr
    files = make_files(tmp_path / "src", n=3)
    cache = tmp_path / "cache"
    env = {"ZP_CACHE_DIR": str(cache), "ZP_PARALLEL_SCAN": "0"}
    base = {"data_uri": str(tmp_path / "src" / "*.nc"), "deploy_mode": "series", "recommend_changes": False}
    run_cache(tmp_path, dict(base, cache_store=str(tmp_path / "first.zarr")), env=env, check=0)
    want = xr.open_mfdataset(files, combine="nested", concat_dim="time").time.values
    (entry,) = (cache / "parts").glob("join-*.json")
    # Edited by a day, files untouched: the entry no longer matches its checksum and is not used.
    edit_join_time(entry, 1, resign=False)
    store = tmp_path / "edited.zarr"
    proc = run_cache(tmp_path, dict(base, cache_store=str(store)), "--log-level", "2", env=env, check=0)
    assert "checksum" in proc.stderr, proc.stderr
    np.testing.assert_array_equal(xr.open_zarr(store).time.values, want)
    # Forged: edited with its checksum made to match, as anyone who can write the folder could. Before
    # entries were signed with the user's key the store held the edit (only verify, which reads the
    # sources, said so); now the entry is ignored and the store equals a cold run's.
    (entry,) = (cache / "parts").glob("join-*.json")
    edit_join_time(entry, 1, resign=True)
    forged = tmp_path / "forged.zarr"
    proc = run_cache(tmp_path, dict(base, cache_store=str(forged)), "--log-level", "2", env=env, check=0)
    assert "checksum" in proc.stderr, proc.stderr
    np.testing.assert_array_equal(xr.open_zarr(forged).time.values, want)
    proc = run_cache(tmp_path, dict(base, cache_store=str(forged)), command="verify", env=env)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)


def resign_as_anyone_could(entry, edit):
    """Rewrites a cache entry's payload with `edit` and its checksum line as one who can write the
    cache folder but not read the user's key can: a SHA-256 of the payload (the form before)."""
    import hashlib
    head, payload = entry.read_text().split("\n", 1)
    payload = edit(payload)
    h = {"zp_entry": 1, "scanner": json.loads(head)["scanner"],
         "sha256": hashlib.sha256(payload.encode()).hexdigest()}
    entry.write_text(json.dumps(h, separators=(",", ":")) + "\n" + payload)


def forge_attrs(payload):
    """Every part's variables gain an attribute: what a forged part says lands in the store."""
    out = []
    for line in payload.split("\n"):
        doc = json.loads(line) if line.startswith("{") else None
        if isinstance(doc, dict) and "variables" in doc:
            for v in doc["variables"]:
                v.setdefault("attrs", {})["forged"] = "yes"
            line = json.dumps(doc, separators=(",", ":"))
        out.append(line)
    return "\n".join(out)


def test_forged_and_replayed_entries_are_ignored_and_the_key_is_the_users_own(tmp_path):
    """Before entries were signed with the user's key: a part entry edited with its checksum line
    rewritten put its edit into the store, and a genuine join entry of an earlier state of the
    files, copied under the name of the current state, made the run read the new file at the old
    file's ranges (exit 4 at decompression). Now both are ignored (said at --log-level 2) and the
    stores equal a cold run's. The key is a 0600 file in the user's own cache folder, not in the
    shared ZP_CACHE_DIR; keys planted by another user are refused (the cache is off)."""
    import xarray as xr
    files = make_files(tmp_path / "a", n=3)
    cache, home = tmp_path / "shared", tmp_path / "home"
    env = {"ZP_CACHE_DIR": str(cache), "ZP_PARALLEL_SCAN": "0", "XDG_CACHE_HOME": str(home)}
    cfg = {"data_uri": str(tmp_path / "a" / "*.nc"), "deploy_mode": "series", "recommend_changes": False}

    def cache_into(name, **kw):
        proc = run_cache(tmp_path, dict(cfg, cache_store=str(tmp_path / name)), "--log-level", "2",
                         env={**env, **kw}, check=0)
        return proc, xr.open_zarr(tmp_path / name).load()

    _, cold = cache_into("cold.zarr", ZP_CACHE_DIR="off")
    cache_into("warm.zarr")
    key = home / "zarr-parallel" / "manifest-key"
    assert key.stat().st_mode & 0o777 == 0o600 and key.stat().st_size == 32
    assert not list(cache.glob("manifest-key*"))
    (part,) = (cache / "parts").glob("source-*.jsonl")
    (join,) = (cache / "parts").glob("join-*.json")
    join.unlink()  # the part entry alone then describes the files
    resign_as_anyone_could(part, forge_attrs)
    proc, got = cache_into("forged.zarr")
    assert "checksum" in proc.stderr, proc.stderr
    xr.testing.assert_identical(got, cold)
    # Replayed: the last file rewritten uncompressed (same values, other ranges), then the join entry
    # of the files as they were copied under the name of the join of the files as they are.
    (join,) = (cache / "parts").glob("join-*.json")
    before = join.read_bytes()
    subprocess.run([str(SAMPLE_BIN), "--out", str(tmp_path / "raw"), "--files", "3", "--steps", "6", "--lat", "37",
                    "--lon", "72", "--chunks", "6", "37", "72", "--deflate", "0"], check=True, capture_output=True,
                   timeout=300)
    shutil.copy(tmp_path / "raw" / files[-1].name, files[-1])
    _, cold = cache_into("cold2.zarr", ZP_CACHE_DIR="off")
    cache_into("warm2.zarr")
    (join,) = (cache / "parts").glob("join-*.json")
    join.write_bytes(before)
    proc, got = cache_into("replayed.zarr")
    assert "checksum" in proc.stderr, proc.stderr
    xr.testing.assert_identical(got, cold)
    if os.geteuid() != 0:
        return
    # Keys planted by another user where ours would be made: refused; no cache rather than theirs.
    other = tmp_path / "other"
    planted = [other / "zarr-parallel" / "manifest-key", tmp_path / "c2" / f"manifest-key-{os.geteuid()}"]
    for p in planted:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"k" * 32)
        os.chmod(p, 0o600)
        os.chown(p, 65534, 65534)
    proc, got = cache_into("planted.zarr", XDG_CACHE_HOME=str(other), ZP_CACHE_DIR=str(tmp_path / "c2"))
    assert "manifest cache off" in proc.stderr and all(str(p) in proc.stderr for p in planted), proc.stderr
    assert not (tmp_path / "c2" / "parts").exists()
    xr.testing.assert_identical(got, cold)


def scanner_execs(tmp_path, pattern, out, env):
    """`refs` of `pattern` under strace: its reference set and how many `scan-parts` it exec'd."""
    trace = tmp_path / f"{out.stem}.trace"
    proc = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace), str(BIN), "refs",
                           str(pattern), "-o", str(out)], capture_output=True, text=True, timeout=300,
                          env=traced_env(ZP_CACHE_DIR="off", **env))
    assert proc.returncode == 0, proc.stderr
    return sum('"scan-parts"' in line for line in trace.read_text().splitlines())


@pytest.mark.skipif(not shutil.which("strace") or (os.cpu_count() or 1) < 2, reason="needs strace and 2 cores")
def test_a_cold_parallel_scan_starts_no_scanner_for_the_first_file_alone(tmp_path):
    # 9 files: two children of 4+ files each. The first file used to be described by a child of
    # its own, before the others started (3 scanners, the first one alone on the clock).
    make_files(tmp_path / "src", n=9)
    pattern = tmp_path / "src" / "*.nc"
    assert scanner_execs(tmp_path, pattern, tmp_path / "exec.json", {"ZP_FORK_SCANNERS": "0"}) == 2
    # From the command line they are forks: no program started at all.
    assert scanner_execs(tmp_path, pattern, tmp_path / "fork.json", {}) == 0
    serial = tmp_path / "serial.json"
    proc = subprocess.run([str(BIN), "refs", str(pattern), "-o", str(serial)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, ZP_CACHE_DIR="off", ZP_PARALLEL_SCAN="0"))
    assert proc.returncode == 0, proc.stderr
    refs = [json.loads((tmp_path / n).read_text())["refs"] for n in ("exec.json", "fork.json", "serial.json")]
    assert refs[0] == refs[1] == refs[2]
    # ... and read by fsspec + xarray as xarray reads the files.
    import xarray as xr
    got = xr.open_dataset("reference://", engine="zarr", backend_kwargs={
        "consolidated": False, "storage_options": {"fo": json.loads((tmp_path / "fork.json").read_text())}})
    want = xr.open_mfdataset(sorted(map(str, (tmp_path / "src").glob("*.nc"))), combine="nested", concat_dim="time",
                             data_vars="minimal", coords="minimal", compat="override")
    for v in want.variables:
        assert np.array_equal(got[v].values, want[v].values, equal_nan=got[v].dtype.kind == "f"), v

"""Caches of a growing archive (issue 28) and reruns of an interrupted cache (issue 33 item 9).

A cache hit means: the same config, the same expanded list of sources with the same fingerprints,
and the same output-format version. Each test runs the same config twice, as a cron job would, with
the source changed in between, and compares the store with xarray's reading of the glob as it is
now. The first line the run prints says hit / append / rebuild / continue and why. Files added
after the end of the glob are appended in place (on_source_change: append, the default)."""
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from conftest import BIN, SAMPLE_BIN, open_netcdf, run_cache, same_bits


def make_days(folder, first_day, days):
    """`days` daily NetCDF-4 files (24 hourly steps each), made by netCDF-C."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(SAMPLE_BIN), "--out", str(folder), "--files", str(days), "--first-day",
                    str(first_day), "--lat", "19", "--lon", "36", "--chunks", "24", "19", "36"],
                   check=True, capture_output=True)
    return sorted(folder.glob("*.nc"))


def daily_config(tmp_path, store, **extra):
    cfg = {"data_uri": str(tmp_path / "src" / "*.nc"), "cache_store": str(store),
           "deploy_mode": "series", "chunks": {"time": 24, "latitude": 19, "longitude": 36},
           "recommend_changes": False}
    cfg.update(extra)
    return cfg


def first_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[0] if lines else ""


def assert_store_is_the_glob(store, pattern):
    got = xr.open_zarr(store).load()
    want = open_netcdf(pattern)
    assert got.sizes["time"] == want.sizes["time"], (got.sizes, want.sizes)
    assert np.array_equal(got["time"].values, want["time"].values)
    for name in want.data_vars:
        assert np.array_equal(got[name].values, want[name].values, equal_nan=True), name


def cached_four_days(tmp_path, **extra):
    store = tmp_path / "daily.zarr"
    files = make_days(tmp_path / "src", 0, 4)
    cfg = daily_config(tmp_path, store, **extra)
    run_cache(tmp_path, cfg, check=0)
    assert xr.open_zarr(store).sizes["time"] == 96
    again = run_cache(tmp_path, cfg, check=0)
    assert first_line(again).startswith("zarr-parallel: cache hit"), again.stderr
    return store, files, cfg


# Issue 28 item 1: a file added to the glob was a cache hit (96 steps served, 120 in the source).
# It is appended now (on_source_change: append, the default); with rebuild it is rebuilt.
def test_a_new_file_matching_the_glob_is_no_hit(tmp_path):
    store, files, cfg = cached_four_days(tmp_path)
    new = make_days(tmp_path / "src", 4, 1)[-1]
    proc = run_cache(tmp_path, cfg, check=0)
    line = first_line(proc)
    assert "cache hit" not in proc.stderr, proc.stderr
    assert line.startswith("zarr-parallel: append") and new.name in line and "new" in line, proc.stderr
    assert_store_is_the_glob(store, tmp_path / "src" / "*.nc")
    assert xr.open_zarr(store).sizes["time"] == 120
    new = make_days(tmp_path / "src", 5, 1)[-1]
    proc = run_cache(tmp_path, dict(cfg, on_source_change="rebuild"), check=0)
    line = first_line(proc)
    assert line.startswith("zarr-parallel: rebuild") and new.name in line and "new" in line, proc.stderr
    assert_store_is_the_glob(store, tmp_path / "src" / "*.nc")
    assert xr.open_zarr(store).sizes["time"] == 144


# Issue 28 item 2: a file removed from the glob was a cache hit (the removed day still served).
def test_a_removed_file_is_no_hit(tmp_path):
    store, files, cfg = cached_four_days(tmp_path)
    files[1].unlink()
    proc = run_cache(tmp_path, cfg, check=0)
    line = first_line(proc)
    assert "cache hit" not in proc.stderr, proc.stderr
    assert line.startswith("zarr-parallel: rebuild") and files[1].name in line, proc.stderr
    assert_store_is_the_glob(store, tmp_path / "src" / "*.nc")
    assert xr.open_zarr(store).sizes["time"] == 72


# A file renamed inside the glob (same count, other names) is no hit either.
def test_a_renamed_file_is_no_hit(tmp_path):
    store, files, cfg = cached_four_days(tmp_path)
    files[3].rename(files[3].with_name("era5_sample_20000110.nc"))
    proc = run_cache(tmp_path, cfg, check=0)
    assert "cache hit" not in proc.stderr and first_line(proc).startswith("zarr-parallel: rebuild")
    assert_store_is_the_glob(store, tmp_path / "src" / "*.nc")


# Issue 28 item 3: a store written by a build with another output format (main wrote none) is no
# hit after an upgrade; the same format version is.
def test_another_output_format_version_is_no_hit(tmp_path):
    store, files, cfg = cached_four_days(tmp_path)
    marker = store / ".zarr-parallel" / "complete.json"
    done = json.loads(marker.read_text())
    assert isinstance(done.get("format_version"), int), done
    del done["format_version"]  # what a build before format versions wrote
    marker.write_text(json.dumps(done))
    proc = run_cache(tmp_path, cfg, check=0)
    line = first_line(proc)
    assert line.startswith("zarr-parallel: rebuild") and "output format" in line, proc.stderr
    assert isinstance(json.loads(marker.read_text()).get("format_version"), int)
    done = json.loads(marker.read_text())
    done["format_version"] += 1000  # a newer build's store, opened by this one
    marker.write_text(json.dumps(done))
    proc = run_cache(tmp_path, cfg, check=0)
    assert first_line(proc).startswith("zarr-parallel: rebuild") and "output format" in first_line(proc)
    proc = run_cache(tmp_path, cfg, check=0)
    assert first_line(proc).startswith("zarr-parallel: cache hit"), proc.stderr
    assert_store_is_the_glob(store, tmp_path / "src" / "*.nc")


# The decision in the --json events (cache_hit, or plan), with its reason.
def test_the_decision_is_in_the_json_events(tmp_path):
    store, files, cfg = cached_four_days(tmp_path)
    proc = run_cache(tmp_path, cfg, "--json", check=0)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[0]["event"] == "cache_hit" and events[0]["decision"] == "hit" and events[0]["reason"]
    files[0].unlink()
    proc = run_cache(tmp_path, cfg, "--json", check=0)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[0]["event"] == "plan" and events[0]["decision"] == "rebuild", events
    assert files[0].name in events[0]["reason"], events[0]
    proc = run_cache(tmp_path, dict(cfg, cache_store=str(tmp_path / "other.zarr")), "--json", check=0)
    assert json.loads(proc.stdout.splitlines()[0])["decision"] == "new"


# Issue 33 item 9: rerunning an interrupted, unchanged config without resume built a replacement
# from job 0; it continues the interrupted store, says so, and ends equal to the source.
def test_an_interrupted_unchanged_cache_continues_without_resume(tmp_path):
    store = tmp_path / "daily.zarr"
    make_days(tmp_path / "src", 0, 6)
    cfg = daily_config(tmp_path, store, num_jobs=6)
    flag = tmp_path / "fired"
    env = {"ZP_FAULT_KILL_ONCE": str(flag), "ZP_FAULT_AFTER_CHUNKS": "4"}
    assert run_cache(tmp_path, cfg, env=env).returncode == -9
    done_before = sorted(p.name for p in (store / ".zarr-parallel" / "jobs").glob("*.done"))
    total = len(json.loads((store / ".zarr-parallel" / "plan.json").read_text())["jobs"])
    assert 0 < len(done_before) < total, done_before
    stamps = {p.name: p.stat().st_mtime_ns for p in (store / ".zarr-parallel" / "jobs").glob("*.done")}
    proc = run_cache(tmp_path, cfg, check=0)
    line = first_line(proc)
    assert line.startswith("zarr-parallel: continue") and "unchanged" in line, proc.stderr
    assert not (tmp_path / ".daily.zarr.zp-new").exists()
    for name, ns in stamps.items():  # the finished jobs were kept, not redone
        assert (store / ".zarr-parallel" / "jobs" / name).stat().st_mtime_ns == ns, name
    left = total - len(done_before)
    assert f"{left} job{'' if left == 1 else 's'} to run ({len(done_before)} already done)" in proc.stderr, proc.stderr
    assert_store_is_the_glob(store, tmp_path / "src" / "*.nc")
    assert run_cache(tmp_path, cfg, command="verify").returncode == 0


# ... but not when a source changed in between: then the run rebuilds and says why.
def test_an_interrupted_cache_with_a_new_file_is_rebuilt(tmp_path):
    store = tmp_path / "daily.zarr"
    make_days(tmp_path / "src", 0, 6)
    cfg = daily_config(tmp_path, store, num_jobs=6)
    env = {"ZP_FAULT_KILL_ONCE": str(tmp_path / "fired"), "ZP_FAULT_AFTER_CHUNKS": "4"}
    assert run_cache(tmp_path, cfg, env=env).returncode == -9
    new = make_days(tmp_path / "src", 6, 1)[-1]
    proc = run_cache(tmp_path, cfg, check=0)
    line = first_line(proc)
    assert line.startswith("zarr-parallel: rebuild") and new.name in line, proc.stderr
    assert_store_is_the_glob(store, tmp_path / "src" / "*.nc")


# An interrupted replacement (the old store complete, its source grown) is continued by the next
# run, not started again; the old store stays whole until the replacement is swapped in.
def test_an_interrupted_replacement_continues_without_resume(tmp_path):
    store, files, cfg = cached_four_days(tmp_path)
    make_days(tmp_path / "src", 4, 4)
    cfg = dict(cfg, num_jobs=6, on_source_change="rebuild")
    env = {"ZP_FAULT_KILL_ONCE": str(tmp_path / "fired"), "ZP_FAULT_AFTER_CHUNKS": "6"}
    proc = run_cache(tmp_path, cfg, env=env)
    assert proc.returncode == -9 and first_line(proc).startswith("zarr-parallel: rebuild"), proc.stderr
    staging = tmp_path / ".daily.zarr.zp-new"
    done = list((staging / ".zarr-parallel" / "jobs").glob("*.done"))
    assert done and xr.open_zarr(store).sizes["time"] == 96  # the old store, whole
    proc = run_cache(tmp_path, cfg, check=0)
    line = first_line(proc)
    assert line.startswith("zarr-parallel: continue") and str(staging) in line, proc.stderr
    assert f"({len(done)} already done)" in proc.stderr, proc.stderr
    assert not staging.exists()
    assert_store_is_the_glob(store, tmp_path / "src" / "*.nc")
    assert first_line(run_cache(tmp_path, cfg, check=0)).startswith("zarr-parallel: cache hit")


# on_source_change: error stops a run on a changed source (exit 4, naming the file) and leaves the
# store as it was made; a config that differs only in this key is the same cache (a hit).
def test_on_source_change_error_leaves_the_store_and_names_the_file(tmp_path):
    store, files, cfg = cached_four_days(tmp_path)
    strict = dict(cfg, on_source_change="error")
    assert first_line(run_cache(tmp_path, strict, check=0)).startswith("zarr-parallel: cache hit")
    new = make_days(tmp_path / "src", 4, 1)[-1]
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    proc = run_cache(tmp_path, strict)
    assert proc.returncode == 4 and new.name in proc.stderr and "on_source_change" in proc.stderr, proc.stderr
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before
    bad = run_cache(tmp_path, dict(cfg, on_source_change="sometimes"))
    assert bad.returncode == 2 and "on_source_change" in bad.stderr and "rebuild" in bad.stderr, bad.stderr
    run_cache(tmp_path, dict(cfg, on_source_change="rebuild"), check=0)
    assert_store_is_the_glob(store, tmp_path / "src" / "*.nc")


# A local Zarr store as the source: one that zarr-python appended a day to (Array.append) has the
# same chunk files as before plus new ones; only its metadata changed, and it is no hit.
def test_a_zarr_source_that_grew_is_no_hit(tmp_path):
    days = xr.open_mfdataset(sorted(str(p) for p in make_days(tmp_path / "nc", 0, 3)), combine="nested",
                             concat_dim="time").load()
    source = tmp_path / "source.zarr"
    days.isel(time=slice(0, 48)).to_zarr(source, mode="w")
    store = tmp_path / "copy.zarr"
    cfg = {"data_uri": str(source), "cache_store": str(store), "deploy_mode": "series",
           "chunks": {"time": 24, "latitude": 19, "longitude": 36}, "recommend_changes": False}
    run_cache(tmp_path, cfg, check=0)
    assert first_line(run_cache(tmp_path, cfg, check=0)).startswith("zarr-parallel: cache hit")
    import zarr
    group = zarr.open_group(str(source), mode="r+")
    raw = xr.open_mfdataset(sorted(str(p) for p in (tmp_path / "nc").glob("*.nc")), combine="nested",
                            concat_dim="time", decode_cf=False).load()
    for name in ("d2m", "t2m", "time"):
        group[name].append(raw[name].values[48:72].astype(group[name].dtype))
    zarr.consolidate_metadata(str(source))
    assert sorted(p.name for p in (source / "latitude").iterdir()) == [".zarray", ".zattrs", "0"]
    proc = run_cache(tmp_path, cfg, check=0)
    assert first_line(proc).startswith("zarr-parallel: rebuild"), proc.stderr
    got, want = xr.open_zarr(store).load(), xr.open_zarr(source).load()
    assert got.sizes["time"] == 72
    for name in want.data_vars:
        assert np.array_equal(got[name].values, want[name].values, equal_nan=True), name


def three_days_as_zarr(tmp_path, source):
    """Three daily files read by xarray, written by xarray as a consolidated Zarr v2 store (one
    chunk a day); returns the undecoded values of all three days, for zarr-python to write."""
    files = sorted(str(p) for p in make_days(tmp_path / "nc", 0, 3))
    days = xr.open_mfdataset(files, combine="nested", concat_dim="time").load()
    first = days.isel(time=slice(0, 48)).chunk({"time": 24})
    for v in first.variables.values():
        v.encoding.pop("chunks", None)
        v.encoding.pop("preferred_chunks", None)
    first.to_zarr(source, mode="w", consolidated=True)
    return xr.open_mfdataset(files, combine="nested", concat_dim="time", decode_cf=False).load()


def assert_store_is_the_zarr(store, source):
    got, want = xr.open_zarr(store).load(), xr.open_zarr(source).load()
    assert got.sizes == want.sizes, (got.sizes, want.sizes)
    for name in want.variables:
        assert np.array_equal(got[name].values, want[name].values, equal_nan=True), name


# A Zarr store served over HTTP that zarr-python appended a day to: its consolidated metadata
# changed and new chunk objects appeared, while every chunk object read before is as it was. Its
# metadata was not fingerprinted, so this was a cache hit serving 48 of 72 steps.
def test_a_zarr_source_over_http_that_grew_is_no_hit(tmp_path):
    import zarr
    from servers import Nginx
    source = tmp_path / "www" / "src.zarr"
    raw = three_days_as_zarr(tmp_path, source)
    store = tmp_path / "copy.zarr"
    with Nginx(tmp_path / "www", tmp_path / "nginx") as server:
        cfg = {"data_uri": f"{server.url}/src.zarr", "cache_store": str(store), "deploy_mode": "series",
               "chunks": {"time": 24, "latitude": 19, "longitude": 36}, "recommend_changes": False}
        run_cache(tmp_path, cfg, check=0)
        assert first_line(run_cache(tmp_path, cfg, check=0)).startswith("zarr-parallel: cache hit")
        time.sleep(1.1)  # nginx's ETag has whole seconds: a day's cron is later than that
        group = zarr.open_group(str(source), mode="r+")
        for name in ("d2m", "t2m", "time"):
            group[name].append(raw[name].values[48:72].astype(group[name].dtype))
        zarr.consolidate_metadata(str(source))
        proc = run_cache(tmp_path, cfg, check=0)
        assert "cache hit" not in proc.stderr, proc.stderr
        assert first_line(proc).startswith("zarr-parallel: rebuild"), proc.stderr
        assert first_line(run_cache(tmp_path, cfg, check=0)).startswith("zarr-parallel: cache hit")
    assert_store_is_the_zarr(store, source)
    assert xr.open_zarr(store).sizes["time"] == 72


# A local Zarr store made whole in place (xarray's to_zarr(compute=False) template, then
# region writes): a chunk that was missing (read as the fill value) is written later. No
# metadata document and no chunk file read before changed; the new chunk file was not seen, so
# this was a cache hit serving fill values where the source now has data.
def test_a_zarr_chunk_written_where_there_was_none_is_no_hit(tmp_path):
    import zarr
    source = tmp_path / "src.zarr"
    raw = three_days_as_zarr(tmp_path, source)
    missing = source / "t2m" / "1.0.0"
    assert missing.is_file()
    missing.unlink()
    store = tmp_path / "copy.zarr"
    cfg = {"data_uri": str(source), "cache_store": str(store), "deploy_mode": "series",
           "chunks": {"time": 24, "latitude": 19, "longitude": 36}, "recommend_changes": False}
    run_cache(tmp_path, cfg, check=0)
    assert first_line(run_cache(tmp_path, cfg, check=0)).startswith("zarr-parallel: cache hit")
    t2m = zarr.open_group(str(source), mode="r+")["t2m"]
    t2m[24:48] = raw["t2m"].values[24:48].astype(t2m.dtype)
    assert missing.is_file()
    proc = run_cache(tmp_path, cfg, check=0)
    assert "cache hit" not in proc.stderr, proc.stderr
    assert first_line(proc).startswith("zarr-parallel: rebuild") and "1.0.0" in first_line(proc), proc.stderr
    assert_store_is_the_zarr(store, source)
    assert first_line(run_cache(tmp_path, cfg, check=0)).startswith("zarr-parallel: cache hit")


# ---- Append (issue 28): files after the end along concat_dim extend the store in place. ----

def files_of(store):
    """{key: (inode, mtime_ns)} of the store's Zarr files (not its side folder)."""
    out = {}
    for p in store.rglob("*"):
        rel = p.relative_to(store).as_posix()
        if p.is_file() and not rel.startswith(".zarr-parallel"):
            st = p.stat()
            out[rel] = (st.st_ino, st.st_mtime_ns)
    return out


def written_between(before, after):
    return sorted(k for k, v in after.items() if before.get(k) != v)


def chunk_key(zarr_format, name, *index):
    if zarr_format == 2:
        return f"{name}/" + ".".join(str(i) for i in index)
    return f"{name}/c/" + "/".join(str(i) for i in index)


def assert_store_is_the_glob_raw(store, pattern):
    got = xr.open_zarr(store, decode_cf=False).load()
    want = open_netcdf(pattern, decode_cf=False)
    for name in ["time", *want.data_vars]:
        assert same_bits(got[name].values, want[name].values), name


def assert_v3_store_is_the_glob_raw(store, pattern, tmp_path):
    """Debian's zarr-python reads no v3: zarrita (npm, an independent reader) reads the store."""
    from test_zarr_v3 import MODULES, zarrita
    from test_zarr_v3 import same_bits as same_le_bits
    if not (MODULES / "zarrita" / "package.json").exists():
        pytest.skip("zarrita not installed (scripts/setup.sh)")
    want = open_netcdf(pattern, mask_and_scale=False, decode_times=False)
    got, _ = zarrita(store, ["d2m", "t2m", "time"], tmp_path)
    for name in ("d2m", "t2m", "time"):
        assert same_le_bits(got[name], want[name].values), name


def expected_writes(fmt, old, new, write_chunk, coord_chunk):
    """The keys an append from `old` to `new` steps writes: the data chunks from the one holding
    step `old` (rewritten whole when partial) on, the time chunks likewise, then the metadata."""
    keys = set()
    for i in range(old // write_chunk, -(-new // write_chunk)):
        keys |= {chunk_key(fmt, "d2m", i, 0, 0), chunk_key(fmt, "t2m", i, 0, 0)}
    for i in range(old // coord_chunk, -(-new // coord_chunk)):
        keys.add(chunk_key(fmt, "time", i))
    meta = ".zarray" if fmt == 2 else "zarr.json"
    keys |= {f"{n}/{meta}" for n in ("d2m", "t2m", "time")}
    keys.add(".zmetadata" if fmt == 2 else "zarr.json")
    return sorted(keys)


# An appended store equals xarray's reading of the whole glob (decoded and raw), for v2 and v3,
# with a last chunk that ends on a chunk edge and one that is partial (rewritten whole), a sharded
# v3 array (its partial last shard rewritten whole); the append writes only the new chunks, the
# rewritten partial one and the grown arrays' metadata; the time coordinate keeps the chunk it was
# first written with (96), as xarray's to_zarr(append_dim=...) does; verify passes after each.
@pytest.mark.parametrize("fmt,time_chunk,shards", [(2, 24, None), (2, 36, None), (3, 36, None),
                                                   (3, 24, {"time": 48})],
                         ids=["v2-edge", "v2-partial", "v3-partial", "v3-sharded"])
def test_append_equals_the_glob(tmp_path, fmt, time_chunk, shards):
    store = tmp_path / "daily.zarr"
    make_days(tmp_path / "src", 0, 4)
    cfg = daily_config(tmp_path, store, zarr_format=fmt,
                       chunks={"time": time_chunk, "latitude": 19, "longitude": 36})
    if shards:
        cfg["shards"] = shards
    run_cache(tmp_path, cfg, check=0)
    write_chunk = (shards or {}).get("time", time_chunk)
    for old, day in ((96, 4), (120, 5)):
        before = files_of(store)
        new = make_days(tmp_path / "src", day, 1)[-1]
        proc = run_cache(tmp_path, cfg, check=0)
        line = first_line(proc)
        assert line.startswith("zarr-parallel: append") and new.name in line, proc.stderr
        assert f"from {old} to {old + 24}" in line, line
        assert written_between(before, files_of(store)) == expected_writes(fmt, old, old + 24,
                                                                           write_chunk, 96)
        if fmt == 2:
            assert_store_is_the_glob(store, tmp_path / "src" / "*.nc")
            assert_store_is_the_glob_raw(store, tmp_path / "src" / "*.nc")
        else:
            assert_v3_store_is_the_glob_raw(store, tmp_path / "src" / "*.nc", tmp_path)
        assert run_cache(tmp_path, cfg, command="verify").returncode == 0
        assert first_line(run_cache(tmp_path, cfg, check=0)).startswith("zarr-parallel: cache hit")


READER = r"""
import json, sys, time
import numpy as np, xarray as xr
store, want_path, stop, out = sys.argv[1:5]
want = np.load(want_path)
seen, bad = {}, []
deadline = time.time() + 120
ready = stop + ".ready"
while time.time() < deadline:
    try:
        ds = xr.open_zarr(store)
        n = ds.sizes["time"]
        got = ds["t2m"].values
        ok = n in (96, 120) and np.array_equal(got, want[:n], equal_nan=True)
        ok = ok and np.array_equal(ds["time"].values, np.load(want_path.replace(".npy", "_t.npy"))[:n])
    except Exception as e:
        n, ok = repr(e)[:200], False
    seen[str(n)] = seen.get(str(n), 0) + 1
    if not ok:
        bad.append(str(n))
    open(ready, "w").close()
    import os
    if os.path.exists(stop) and seen.get("120"):
        break
json.dump({"seen": seen, "bad": bad[:5]}, open(out, "w"))
"""


# A reader opening the store while an append runs sees the old dataset or the new one, never a
# mix: the append is paused for real (SIGSTOP once it has rewritten the partial last chunk) and
# read then, and a reader process opens the store in a loop from then until it has seen the end.
def test_a_reader_sees_the_old_or_the_new_dataset_during_an_append(tmp_path):
    import os
    import signal
    import sys
    store = tmp_path / "daily.zarr"
    make_days(tmp_path / "src", 0, 4)
    cfg = daily_config(tmp_path, store, chunks={"time": 36, "latitude": 19, "longitude": 36})
    run_cache(tmp_path, cfg, check=0)
    make_days(tmp_path / "src", 4, 1)
    want = open_netcdf(tmp_path / "src" / "*.nc")
    np.save(tmp_path / "want.npy", want["t2m"].values)
    np.save(tmp_path / "want_t.npy", want["time"].values)
    cfg_path = tmp_path / "append.yaml"
    cfg_path.write_text(json.dumps(cfg))
    flag = tmp_path / "paused"
    before = files_of(store)
    # Paused after its second chunk: the time coordinate's new chunk and a partial last data chunk
    # (36-step chunks: steps 72..107, of which 72..95 were there) rewritten whole.
    env = dict(os.environ, ZP_FAULT_STOP_ONCE=str(flag), ZP_FAULT_AFTER_CHUNKS="2")
    proc = subprocess.Popen([str(BIN), "cache", str(cfg_path)], env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    for _ in range(600):
        if flag.exists() and open(f"/proc/{proc.pid}/stat").read().split(") ")[1][0] == "T":
            break
        time.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError("the append never paused")
    assert {"d2m/2.0.0", "t2m/2.0.0"} & set(written_between(before, files_of(store)))
    paused = xr.open_zarr(store).load()  # mid-append: the old dataset, whole
    assert paused.sizes["time"] == 96
    assert np.array_equal(paused["t2m"].values, want["t2m"].values[:96], equal_nan=True)
    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(store), str(tmp_path / "want.npy"),
                               str(stop), str(out)])
    for _ in range(600):  # the reader has opened the paused store at least once
        if Path(str(stop) + ".ready").exists():
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGCONT)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    stop.touch()
    assert reader.wait(timeout=150) == 0
    result = json.loads(out.read_text())
    assert not result["bad"] and result["seen"].get("96") and result["seen"].get("120"), result


# A killed append (SIGKILL mid-run) is resumed by the next run, which says so, and ends with the
# same bytes as an append that was not interrupted.
def test_a_killed_append_resumes_to_the_same_bytes(tmp_path):
    make_days(tmp_path / "src", 0, 4)
    chunks = {"time": 36, "latitude": 19, "longitude": 36}
    twin, store = tmp_path / "twin.zarr", tmp_path / "daily.zarr"
    cfg = daily_config(tmp_path, store, chunks=chunks, num_jobs=4)
    twin_cfg = daily_config(tmp_path, twin, chunks=chunks, num_jobs=4)
    run_cache(tmp_path, cfg, check=0)
    run_cache(tmp_path, twin_cfg, check=0)
    make_days(tmp_path / "src", 4, 2)
    run_cache(tmp_path, twin_cfg, check=0)
    env = {"ZP_FAULT_KILL_ONCE": str(tmp_path / "fired"), "ZP_FAULT_AFTER_CHUNKS": "3"}
    killed = run_cache(tmp_path, cfg, env=env)
    assert killed.returncode == -9 and first_line(killed).startswith("zarr-parallel: append"), killed.stderr
    assert xr.open_zarr(store).sizes["time"] == 96  # still the old store
    proc = run_cache(tmp_path, cfg, check=0)
    assert first_line(proc).startswith("zarr-parallel: append"), proc.stderr
    assert "resuming the interrupted append" in proc.stderr, proc.stderr
    got = {k: (store / k).read_bytes() for k in files_of(store)}
    want = {k: (twin / k).read_bytes() for k in files_of(twin)}
    assert got == want
    assert_store_is_the_glob(store, tmp_path / "src" / "*.nc")
    assert run_cache(tmp_path, cfg, command="verify").returncode == 0


# Each reason an append cannot apply is said on the first line, and the run rebuilds safely.
@pytest.mark.parametrize("case", ["roll", "reverse", "tiled", "changed", "before"])
def test_each_reason_not_to_append_is_said_and_the_store_rebuilt(tmp_path, case):
    import os
    store = tmp_path / "daily.zarr"
    files = make_days(tmp_path / "src", 0, 4)
    pre = {"roll": [{"type": "roll", "dim": "time", "shifts": 5}],
           "reverse": [{"type": "reverse_axis", "dim": "time"}],
           "tiled": [{"type": "tiled", "longitude": 12, "boundary": "trim"}]}
    cfg = daily_config(tmp_path, store, preprocessors=pre.get(case, []))
    if case == "tiled":
        cfg["chunks"] = {"time": 24}
    run_cache(tmp_path, cfg, check=0)
    new = make_days(tmp_path / "src", 4, 1)[-1]
    if case == "changed":
        os.utime(files[1], ns=(files[1].stat().st_atime_ns, files[1].stat().st_mtime_ns + 10**9))
    if case == "before":
        new = new.rename(tmp_path / "src" / "a_late_file.nc")
    proc = run_cache(tmp_path, cfg, check=0)
    line = first_line(proc)
    assert line.startswith("zarr-parallel: rebuild") and "cannot be appended" in line, proc.stderr
    reason = {"roll": "roll", "reverse": "reverse_axis", "tiled": "tiled",
              "changed": files[1].name, "before": "sorts before"}[case]
    assert reason in line, line
    if case in ("changed", "before", "roll"):
        got = xr.open_zarr(store).load()
        want = open_netcdf(tmp_path / "src" / "*.nc")
        if case == "roll":
            want = want.roll(time=5, roll_coords=True)
        if case == "before":
            want = xr.open_mfdataset(sorted(str(p) for p in (tmp_path / "src").glob("*.nc")),
                                     combine="nested", concat_dim="time").load()
        assert np.array_equal(got["t2m"].values, want["t2m"].values, equal_nan=True)
    assert xr.open_zarr(store).sizes.get("time", 120) == 120


# Selections: an open-ended sel follows the growth (an append); a closed one the new files do not
# reach makes the run a hit (the sources record is updated, so the next run is a plain hit).
def test_an_open_sel_follows_growth_and_a_closed_one_is_a_hit(tmp_path):
    store, closed = tmp_path / "open.zarr", tmp_path / "closed.zarr"
    make_days(tmp_path / "src", 0, 4)
    open_cfg = daily_config(tmp_path, store, preprocessors=[
        {"type": "sel", "time": ["2000-01-02", None]}])
    closed_cfg = daily_config(tmp_path, closed, preprocessors=[
        {"type": "sel", "time": ["2000-01-01", "2000-01-02 23:00"]}])
    run_cache(tmp_path, open_cfg, check=0)
    run_cache(tmp_path, closed_cfg, check=0)
    make_days(tmp_path / "src", 4, 1)
    proc = run_cache(tmp_path, open_cfg, check=0)
    assert first_line(proc).startswith("zarr-parallel: append"), proc.stderr
    want = open_netcdf(tmp_path / "src" / "*.nc").sel(time=slice("2000-01-02", None))
    got = xr.open_zarr(store).load()
    assert got.sizes["time"] == 96 and np.array_equal(got["time"].values, want["time"].values)
    assert np.array_equal(got["t2m"].values, want["t2m"].values, equal_nan=True)
    before = files_of(closed)
    proc = run_cache(tmp_path, closed_cfg, check=0)
    line = first_line(proc)
    assert line.startswith("zarr-parallel: cache hit") and "adds nothing" in line, proc.stderr
    assert files_of(closed) == before
    assert first_line(run_cache(tmp_path, closed_cfg, check=0)).startswith("zarr-parallel: cache hit")
    assert xr.open_zarr(closed).sizes["time"] == 48


# The decision is "append" in --json's plan event, with its reason.
def test_the_append_decision_is_in_the_json_events(tmp_path):
    store, files, cfg = cached_four_days(tmp_path)
    make_days(tmp_path / "src", 4, 1)
    proc = run_cache(tmp_path, cfg, "--json", check=0)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    plan = [e for e in events if e["event"] == "plan"][0]
    assert plan["decision"] == "append" and "from 96 to 120" in plan["reason"], plan


PY_APPEND = """
import sys, zarr_parallel
if __name__ == "__main__":
    data_uri, store, mode = sys.argv[1:4]
    zp = zarr_parallel.ZarrParallelAssembler(data_uri, chunks={"time": 36, "latitude": 19, "longitude": 36})
    got = zp.cache(cache_store=store, deploy_mode=mode, simultaneous_worker_limit=2, recommend_changes=False,
                   on_source_change="append")
    print(got.decision, "|", got.reason)
"""


# The append is a plan: every deploy mode runs it (local workers, mpirun ranks, the Python module in
# series and dask_distributed mode, whose result says "append").
@pytest.mark.parametrize("mode", ["local", "mpi", "python-series", "python-dask"])
def test_an_append_runs_in_every_mode(tmp_path, mode):
    import os
    import sys
    store = tmp_path / "daily.zarr"
    make_days(tmp_path / "src", 0, 4)
    cfg = daily_config(tmp_path, store, deploy_mode="local", simultaneous_worker_limit=2,
                       chunks={"time": 36, "latitude": 19, "longitude": 36})
    run_cache(tmp_path, cfg, check=0)
    make_days(tmp_path / "src", 4, 1)
    if mode == "local":
        assert first_line(run_cache(tmp_path, cfg, check=0)).startswith("zarr-parallel: append")
    elif mode == "mpi":
        from test_mpi import MPI_ENV, mpi_ready
        mpi_ready()
        cfg_path = tmp_path / "mpi.yaml"
        cfg_path.write_text(json.dumps(cfg))
        proc = subprocess.run(["mpirun", "-n", "2", str(BIN), "cache", str(cfg_path), "--set", "deploy_mode=mpi"],
                              capture_output=True, text=True, env=MPI_ENV, timeout=300)
        assert proc.returncode == 0 and "append: " in proc.stderr, proc.stdout + proc.stderr
    else:
        module_dir = Path(BIN).parent.parent / "python"
        if not list(module_dir.glob("zarr_parallel/_zarr_parallel*.so")):
            pytest.skip("the Python module is not built here (sanitizer builds leave it out)")
        script = tmp_path / "append.py"
        script.write_text(PY_APPEND)
        py_mode = "series" if mode == "python-series" else "dask_distributed"
        proc = subprocess.run([sys.executable, str(script), cfg["data_uri"], str(store), py_mode],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path,
                              env=dict(os.environ, PYTHONPATH=str(module_dir)))
        assert proc.returncode == 0 and proc.stdout.startswith("append |"), proc.stdout + proc.stderr[-3000:]
        assert "from 96 to 120" in proc.stdout
    assert xr.open_zarr(store).sizes["time"] == 120
    assert_store_is_the_glob(store, tmp_path / "src" / "*.nc")
    assert run_cache(tmp_path, cfg, command="verify").returncode == 0


# `plan` says what a cache run would do now, and for an append shows the append's plan (only the
# chunks it would write), writing nothing.
def test_plan_says_append_and_shows_only_the_new_chunks(tmp_path):
    store, files, cfg = cached_four_days(tmp_path)
    text = run_cache(tmp_path, cfg, command="plan", check=0).stdout
    assert text.startswith("decision         hit: "), text
    make_days(tmp_path / "src", 4, 1)
    before = files_of(store)
    text = run_cache(tmp_path, cfg, command="plan", check=0).stdout
    assert text.startswith("decision         append: ") and "from 96 to 120" in text, text
    plan = json.loads(run_cache(tmp_path, cfg, "--json", command="plan", check=0).stdout)
    assert plan["decision"] == "append" and plan["append_dim"] == "time", plan.keys()
    regions = [(j["region"]["lo"][0], j["region"]["hi"][0]) for j in plan["jobs"]]
    assert regions and all(lo >= 4 for lo, hi in regions), regions
    assert files_of(store) == before

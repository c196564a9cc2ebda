"""The manifest cache and the (opt-in) parallel scan of large NetCDF globs: a cache made by child processes,
a warm cache and no cache give byte-identical stores; a changed file is scanned again; a file
that fails to scan is named."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, ERA5, FIXTURES, SAMPLE_BIN, need_fixtures, run_cache, store_files  # noqa: E402


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


def test_parallel_scan_and_warm_cache_give_the_same_store(tmp_path):
    files = make_files(tmp_path / "src")
    cache = str(tmp_path / "cache")
    cfg = {"data_uri": str(tmp_path / "src" / "*.nc"), "deploy_mode": "series", "recommend_changes": False}
    none = cached(tmp_path, cfg, "off", "none")
    cold = cached(tmp_path, cfg, cache, "cold", parallel=True)
    folder = tmp_path / "cache" / "parts"
    parts = [p for p in folder.glob("*.json") if not p.name.startswith("join-")]
    assert len(parts) == len(files)
    assert len(list(folder.glob("join-*.json"))) == 1  # the joined glob
    # Warm: the joined entry alone serves (the per-file parts are not even read).
    saved = {p: p.read_bytes() for p in parts}
    for p in parts:
        p.unlink()
    warm = cached(tmp_path, cfg, cache, "warm")
    assert none == cold == warm
    assert not any(p.exists() for p in parts)
    for p, b in saved.items():
        p.write_bytes(b)
    # A file touched (same bytes, new mtime) misses the joined entry and is scanned again; the
    # others are read from their parts.
    before = {p: p.stat().st_mtime_ns for p in parts}
    time.sleep(0.01)
    os.utime(files[5])
    assert cached(tmp_path, cfg, cache, "touched") == none
    rewritten = [p for p in parts if p.stat().st_mtime_ns != before[p]]
    assert len(rewritten) == 1, rewritten
    assert len(list(folder.glob("join-*.json"))) == 2
    # A day appended to the glob: a new join, the new file in the store.
    extra = make_files(tmp_path / "more", n=25)[-1]
    os.rename(extra, tmp_path / "src" / "zz_last.nc")
    grown = cached(tmp_path, cfg, cache, "grown")
    assert grown == cached(tmp_path, cfg, "off", "grown_none") and grown != none


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
